-- stg_program_code: the raw `ProgramCode` rows (table illuminate.program_code), one view row per raw row.
-- Grain: one row per API record. Natural key: (student_id, enrollment_site_id, enrollment_start_date, program_code, eligibility_start_date), as declared in the endpoint catalog.
-- Cleaning: the API's literal "NULL" and empty strings become NULL; dates outside 1900-2100 become NULL.
select
    cast(enrollment_site_id as bigint) as enrollment_site_id,
    case when enrollment_start_date between date '1900-01-01' and date '2100-12-31' then enrollment_start_date end as enrollment_start_date,
    case when enrollment_end_date between date '1900-01-01' and date '2100-12-31' then enrollment_end_date end as enrollment_end_date,
    cast(student_id as bigint) as student_id,
    null_if_blank(district_student_id) as district_student_id,
    null_if_blank(state_student_id) as state_student_id,
    null_if_blank(program_code) as program_code,
    null_if_blank(program_description) as program_description,
    case when eligibility_start_date between date '1900-01-01' and date '2100-12-31' then eligibility_start_date end as eligibility_start_date,
    case when eligibility_end_date between date '1900-01-01' and date '2100-12-31' then eligibility_end_date end as eligibility_end_date,
    case when participation_start_date between date '1900-01-01' and date '2100-12-31' then participation_start_date end as participation_start_date,
    case when participation_end_date between date '1900-01-01' and date '2100-12-31' then participation_end_date end as participation_end_date,
    _academic_year,
    _dlt_load_id
from illuminate.program_code
