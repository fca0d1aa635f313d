-- stg_student_counselors: the raw `StudentCounselors` rows (table illuminate.student_counselors), one row per assignment.
-- Grain: one row per counselor assignment. Natural key: (student_id, counselor_id, start_date). The raw table's key is
-- (student_id, counselor_id, start_date, _academic_year), as declared in the endpoint catalog: an assignment spanning
-- two academic years is answered in both years' windows with no year in the record, so the raw table holds one copy
-- per year slice; the newest year's is kept here.
-- Cleaning: the API's literal "NULL" and empty strings become NULL; dates outside 1900-2100 become NULL.
select
    cast(student_id as bigint) as student_id,
    case when trim(district_student_id) in ('', 'NULL', 'null') then null else district_student_id end as district_student_id,
    case when trim(state_student_id) in ('', 'NULL', 'null') then null else state_student_id end as state_student_id,
    case when trim(last_name) in ('', 'NULL', 'null') then null else last_name end as last_name,
    case when trim(first_name) in ('', 'NULL', 'null') then null else first_name end as first_name,
    case when trim(middle_name) in ('', 'NULL', 'null') then null else middle_name end as middle_name,
    cast(counselor_id as bigint) as counselor_id,
    case when trim(district_counselor_id) in ('', 'NULL', 'null') then null else district_counselor_id end as district_counselor_id,
    case when trim(counselor_last_name) in ('', 'NULL', 'null') then null else counselor_last_name end as counselor_last_name,
    case when trim(counselor_name) in ('', 'NULL', 'null') then null else counselor_name end as counselor_name,
    case when trim(counselor_email) in ('', 'NULL', 'null') then null else counselor_email end as counselor_email,
    case when start_date between date '1900-01-01' and date '2100-12-31' then start_date end as start_date,
    case when end_date between date '1900-01-01' and date '2100-12-31' then end_date end as end_date,
    _academic_year,
    _dlt_load_id
from illuminate.student_counselors
qualify row_number() over (partition by student_id, counselor_id, start_date order by _academic_year desc) = 1
