-- stg_gradebook_scores: the raw `GradebookScores` rows (table illuminate.gradebook_scores), one view row per raw row.
-- Grain: one row per API record. Natural key: (local_student_id, gradebook_name, assignment_name, _academic_year, _session_type), as declared in the endpoint catalog:
-- gradebook names recur across years and sessions, and the records name neither (the sync adds both).
-- Cleaning: the API's literal "NULL" and empty strings become NULL; dates outside 1900-2100 become NULL.
select
    case when trim(local_student_id) in ('', 'NULL', 'null') then null else local_student_id end as local_student_id,
    case when trim(gradebook_name) in ('', 'NULL', 'null') then null else gradebook_name end as gradebook_name,
    case when trim(assignment_name) in ('', 'NULL', 'null') then null else assignment_name end as assignment_name,
    case when trim(category_name) in ('', 'NULL', 'null') then null else category_name end as category_name,
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
    case when trim(mark) in ('', 'NULL', 'null') then null else mark end as mark,
    case when trim(entry) in ('', 'NULL', 'null') then null else entry end as entry,
    _academic_year,
    _session_type,
    _dlt_load_id
from illuminate.gradebook_scores
