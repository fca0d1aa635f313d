-- stg_gradebook_scores: the raw `GradebookScores` rows (table illuminate.gradebook_scores), one view row per raw row.
-- Grain: one row per API record. Natural key: (local_student_id, gradebook_name, assignment_name, _academic_year, _session_type), as declared in the endpoint catalog:
-- gradebook names recur across years and sessions, and the records name neither (the sync adds both).
-- Cleaning: the API's literal "NULL" and empty strings become NULL; dates outside 1900-2100 become NULL.
select
    null_if_blank(local_student_id) as local_student_id,
    null_if_blank(gradebook_name) as gradebook_name,
    null_if_blank(assignment_name) as assignment_name,
    null_if_blank(category_name) as category_name,
    cast(is_excused as boolean) as is_excused,
    cast(is_missing as boolean) as is_missing,
    cast(points as double) as points,
    cast(score as double) as score,
    cast(percentage as double) as percentage,
    cast(use_for_calc as boolean) as use_for_calc,
    cast(use_for_aggregate as boolean) as use_for_aggregate,
    cast(use_category_weights as boolean) as use_category_weights,
    case when last_updated between timestamp '1900-01-01' and timestamp '2100-12-31' then last_updated end as last_updated,
    case when calculated_at between timestamp '1900-01-01' and timestamp '2100-12-31' then calculated_at end as calculated_at,
    null_if_blank(mark) as mark,
    null_if_blank(entry) as entry,
    _academic_year,
    _session_type,
    _dlt_load_id
from illuminate.gradebook_scores
