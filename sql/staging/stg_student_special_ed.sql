-- stg_student_special_ed: the raw `StudentSpecialEd` rows (table illuminate.student_special_ed), one row per student.
-- Grain: one row per student. Natural key: (student_id). The raw table's key is (student_id, _academic_year), as
-- declared in the endpoint catalog: a student in special education in two academic years is answered in both years'
-- windows with no year in the record, so the raw table holds one copy per year slice; the newest year's is kept here.
-- Cleaning: the API's literal "NULL" and empty strings become NULL; dates outside 1900-2100 become NULL.
select
    cast(student_id as bigint) as student_id,
    null_if_blank(local_student_id) as local_student_id,
    null_if_blank(district_student_id) as district_student_id,
    null_if_blank(state_student_id) as state_student_id,
    null_if_blank(last_name) as last_name,
    null_if_blank(first_name) as first_name,
    null_if_blank(middle_name) as middle_name,
    null_if_blank(username) as username,
    null_if_blank(email) as email,
    case when birth_date between date '1900-01-01' and date '2100-12-31' then birth_date end as birth_date,
    null_if_blank(gender) as gender,
    null_if_blank(primary_disability) as primary_disability,
    null_if_blank(primary_disability_state_code) as primary_disability_state_code,
    cast(is_specialed as boolean) as is_specialed,
    case when exit_date between date '1900-01-01' and date '2100-12-31' then exit_date end as exit_date,
    _academic_year,
    _dlt_load_id
from illuminate.student_special_ed
qualify row_number() over (partition by student_id order by _academic_year desc) = 1
