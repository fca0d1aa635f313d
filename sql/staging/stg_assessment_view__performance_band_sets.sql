-- stg_assessment_view__performance_band_sets: the performance band sets listed in each assessment's View document.
-- Grain: one row per assessment and band set. Key: (assessment_id, performance_band_set_id).
-- assessment_id comes from the parent document (child `_dlt_parent_id` = document `_dlt_id`).
select
    cast(view_document.assessment_id as bigint) as assessment_id,
    band_set.performance_band_set_id,
    null_if_blank(band_set.description) as description,
    band_set._dlt_list_idx as list_position,
    band_set._dlt_id
from illuminate.assessment_view__performance_band_sets as band_set
inner join illuminate.assessment_view as view_document
    on band_set._dlt_parent_id = view_document._dlt_id
