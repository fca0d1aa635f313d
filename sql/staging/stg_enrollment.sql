-- stg_enrollment: the raw `Enrollment` rows (table illuminate.enrollment), one view row per raw row.
-- Grain: one row per API record. Natural key: (student_id, site_id, entry_date), as declared in the endpoint catalog.
-- Cleaning: the API's literal "NULL" and empty strings become NULL; dates outside 1900-2100 become NULL.
select
    cast(student_id as bigint) as student_id,
    null_if_blank(district_student_id) as district_student_id,
    null_if_blank(state_student_id) as state_student_id,
    null_if_blank(last_name) as last_name,
    null_if_blank(first_name) as first_name,
    null_if_blank(middle_name) as middle_name,
    case when birth_date between date '1900-01-01' and date '2100-12-31' then birth_date end as birth_date,
    cast(site_id as bigint) as site_id,
    case when entry_date between date '1900-01-01' and date '2100-12-31' then entry_date end as entry_date,
    case when leave_date between date '1900-01-01' and date '2100-12-31' then leave_date end as leave_date,
    cast(grade_level_id as bigint) as grade_level_id,
    cast(academic_year as bigint) as academic_year,
    cast(is_primary_ada as boolean) as is_primary_ada,
    null_if_blank(attendance_category) as attendance_category,
    null_if_blank(enrollment_exit_reason) as enrollment_exit_reason,
    cast(session_type_id as bigint) as session_type_id,
    null_if_blank(school) as school,
    null_if_blank(entry_code) as entry_code,
    null_if_blank(exit_code) as exit_code,
    _academic_year,
    _dlt_load_id
from illuminate.enrollment
