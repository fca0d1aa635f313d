-- stg_assessment_view__assessment__groups: the question (reporting) groups of an assessment's View document and the
-- band set their aggregate scores are reported with.
-- Grain: one row per assessment and group. Key: (assessment_id, reporting_group).
select
    cast(view_document.assessment_id as bigint) as assessment_id,
    null_if_blank(question_group.label) as reporting_group,
    question_group.sort_order,
    question_group.performance_band_set_id,
    question_group._dlt_list_idx as list_position
from illuminate.assessment_view__assessment__groups as question_group
inner join illuminate.assessment_view as view_document
    on question_group._dlt_parent_id = view_document._dlt_id
