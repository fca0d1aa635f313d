-- stg_enrollment: the raw `Enrollment` rows (table illuminate.enrollment), one view row per raw row.
-- Grain: one row per API record. Natural key: (student_id, site_id, entry_date), as declared in the endpoint catalog.
-- Cleaning: the API's literal "NULL" and empty strings become NULL; dates outside 1900-2100 become NULL.
select
    cast(student_id as bigint) as student_id,
    case when trim(district_student_id) in ('', 'NULL', 'null') then null else district_student_id end as district_student_id,
    case when trim(state_student_id) in ('', 'NULL', 'null') then null else state_student_id end as state_student_id,
    case when trim(last_name) in ('', 'NULL', 'null') then null else last_name end as last_name,
    case when trim(first_name) in ('', 'NULL', 'null') then null else first_name end as first_name,
    case when trim(middle_name) in ('', 'NULL', 'null') then null else middle_name end as middle_name,
    case when birth_date between date '1900-01-01' and date '2100-12-31' then birth_date end as birth_date,
    cast(site_id as bigint) as site_id,
    case when entry_date between date '1900-01-01' and date '2100-12-31' then entry_date end as entry_date,
    case when leave_date between date '1900-01-01' and date '2100-12-31' then leave_date end as leave_date,
    cast(grade_level_id as bigint) as grade_level_id,
    cast(academic_year as bigint) as academic_year,
    cast(is_primary_ada as boolean) as is_primary_ada,
    case when trim(attendance_category) in ('', 'NULL', 'null') then null else attendance_category end as attendance_category,
    case when trim(enrollment_exit_reason) in ('', 'NULL', 'null') then null else enrollment_exit_reason end as enrollment_exit_reason,
    cast(session_type_id as bigint) as session_type_id,
    case when trim(school) in ('', 'NULL', 'null') then null else school end as school,
    case when trim(entry_code) in ('', 'NULL', 'null') then null else entry_code end as entry_code,
    case when trim(exit_code) in ('', 'NULL', 'null') then null else exit_code end as exit_code,
    _academic_year,
    _dlt_load_id
from illuminate.enrollment
