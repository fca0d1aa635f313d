-- stg_student_special_ed: the raw `StudentSpecialEd` rows (table illuminate.student_special_ed), one row per student.
-- Grain: one row per student. Natural key: (student_id). The raw table's key is (student_id, _academic_year), as
-- declared in the endpoint catalog: a student in special education in two academic years is answered in both years'
-- windows with no year in the record, so the raw table holds one copy per year slice; the newest year's is kept here.
-- Cleaning: the API's literal "NULL" and empty strings become NULL; dates outside 1900-2100 become NULL.
select
    cast(student_id as bigint) as student_id,
    case when trim(local_student_id) in ('', 'NULL', 'null') then null else local_student_id end as local_student_id,
    case when trim(district_student_id) in ('', 'NULL', 'null') then null else district_student_id end as district_student_id,
    case when trim(state_student_id) in ('', 'NULL', 'null') then null else state_student_id end as state_student_id,
    case when trim(last_name) in ('', 'NULL', 'null') then null else last_name end as last_name,
    case when trim(first_name) in ('', 'NULL', 'null') then null else first_name end as first_name,
    case when trim(middle_name) in ('', 'NULL', 'null') then null else middle_name end as middle_name,
    case when trim(username) in ('', 'NULL', 'null') then null else username end as username,
    case when trim(email) in ('', 'NULL', 'null') then null else email end as email,
    case when birth_date between date '1900-01-01' and date '2100-12-31' then birth_date end as birth_date,
    case when trim(gender) in ('', 'NULL', 'null') then null else gender end as gender,
    case when trim(primary_disability) in ('', 'NULL', 'null') then null else primary_disability end as primary_disability,
    case when trim(primary_disability_state_code) in ('', 'NULL', 'null') then null else primary_disability_state_code end as primary_disability_state_code,
    cast(is_specialed as boolean) as is_specialed,
    case when exit_date between date '1900-01-01' and date '2100-12-31' then exit_date end as exit_date,
    _academic_year,
    _dlt_load_id
from illuminate.student_special_ed
qualify row_number() over (partition by student_id order by _academic_year desc) = 1
