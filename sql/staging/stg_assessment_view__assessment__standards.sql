-- stg_assessment_view__assessment__standards: the Academic Benchmark standards of an assessment's View document and
-- the band set its aggregate standard scores are reported with.
-- Grain: one row per assessment and standard. Key: (assessment_id, academic_benchmark_guid).
select
    cast(view_document.assessment_id as bigint) as assessment_id,
    null_if_blank(standard.guid) as academic_benchmark_guid,
    standard.performance_band_set_id,
    standard._dlt_list_idx as list_position
from illuminate.assessment_view__assessment__standards as standard
inner join illuminate.assessment_view as view_document
    on standard._dlt_parent_id = view_document._dlt_id
