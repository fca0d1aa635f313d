-- stg_assessment_view__assessment__grade_levels: the grade levels (short names, e.g. "K", "3") an assessment's View
-- document lists for filtering.
-- Grain: one row per assessment and listed grade. Key: (assessment_id, grade_short_name).
select
    cast(view_document.assessment_id as bigint) as assessment_id,
    null_if_blank(trim(grade.value)) as grade_short_name,
    grade._dlt_list_idx as list_position
from illuminate.assessment_view__assessment__grade_levels as grade
inner join illuminate.assessment_view as view_document
    on grade._dlt_parent_id = view_document._dlt_id
