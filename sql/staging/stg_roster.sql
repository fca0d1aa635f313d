-- stg_roster: the raw `Roster` rows (table illuminate.roster), one view row per raw row.
-- Grain: one row per API record. Natural key: (student_id, section_id, entry_date), as declared in the endpoint catalog.
-- Cleaning: the API's literal "NULL" and empty strings become NULL; dates outside 1900-2100 become NULL.
select
    cast(student_id as bigint) as student_id,
    case when trim(district_student_id) in ('', 'NULL', 'null') then null else district_student_id end as district_student_id,
    case when trim(state_student_id) in ('', 'NULL', 'null') then null else state_student_id end as state_student_id,
    case when trim(last_name) in ('', 'NULL', 'null') then null else last_name end as last_name,
    case when trim(first_name) in ('', 'NULL', 'null') then null else first_name end as first_name,
    case when trim(middle_name) in ('', 'NULL', 'null') then null else middle_name end as middle_name,
    case when birth_date between date '1900-01-01' and date '2100-12-31' then birth_date end as birth_date,
    cast(section_id as bigint) as section_id,
    case when trim(local_section_id) in ('', 'NULL', 'null') then null else local_section_id end as local_section_id,
    cast(site_id as bigint) as site_id,
    cast(course_id as bigint) as course_id,
    cast(user_id as bigint) as user_id,
    case when entry_date between date '1900-01-01' and date '2100-12-31' then entry_date end as entry_date,
    case when leave_date between date '1900-01-01' and date '2100-12-31' then leave_date end as leave_date,
    cast(grade_level_id as bigint) as grade_level_id,
    cast(academic_year as bigint) as academic_year,
    cast(session_type_id as bigint) as session_type_id,
    _academic_year,
    _dlt_load_id
from illuminate.roster
