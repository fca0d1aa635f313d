-- stg_student_counselors: the raw `StudentCounselors` rows (table illuminate.student_counselors), one row per assignment.
-- Grain: one row per counselor assignment. Natural key: (student_id, counselor_id, start_date). The raw table's key is
-- (student_id, counselor_id, start_date, _academic_year), as declared in the endpoint catalog: an assignment spanning
-- two academic years is answered in both years' windows with no year in the record, so the raw table holds one copy
-- per year slice; the newest year's is kept here.
-- Cleaning: the API's literal "NULL" and empty strings become NULL; dates outside 1900-2100 become NULL.
select
    cast(student_id as bigint) as student_id,
    null_if_blank(district_student_id) as district_student_id,
    null_if_blank(state_student_id) as state_student_id,
    null_if_blank(last_name) as last_name,
    null_if_blank(first_name) as first_name,
    null_if_blank(middle_name) as middle_name,
    cast(counselor_id as bigint) as counselor_id,
    null_if_blank(district_counselor_id) as district_counselor_id,
    null_if_blank(counselor_last_name) as counselor_last_name,
    null_if_blank(counselor_name) as counselor_name,
    null_if_blank(counselor_email) as counselor_email,
    case when start_date between date '1900-01-01' and date '2100-12-31' then start_date end as start_date,
    case when end_date between date '1900-01-01' and date '2100-12-31' then end_date end as end_date,
    _academic_year,
    _dlt_load_id
from illuminate.student_counselors
qualify row_number() over (partition by student_id, counselor_id, start_date order by _academic_year desc) = 1
