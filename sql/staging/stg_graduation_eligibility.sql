-- stg_graduation_eligibility: the raw `GraduationEligibility` rows (table illuminate.graduation_eligibility), one view row per raw row.
-- Grain: one row per API record. Natural key: (student_id, enrollment_site_id, enrollment_start_date, course_requirement_name), as declared in the endpoint catalog.
-- Cleaning: the API's literal "NULL" and empty strings become NULL; dates outside 1900-2100 become NULL.
select
    cast(enrollment_site_id as bigint) as enrollment_site_id,
    cast(enrollment_year as bigint) as enrollment_year,
    case when enrollment_start_date between date '1900-01-01' and date '2100-12-31' then enrollment_start_date end as enrollment_start_date,
    case when enrollment_end_date between date '1900-01-01' and date '2100-12-31' then enrollment_end_date end as enrollment_end_date,
    cast(student_id as bigint) as student_id,
    null_if_blank(district_student_id) as district_student_id,
    null_if_blank(state_student_id) as state_student_id,
    cast(course_requirement_site_id as bigint) as course_requirement_site_id,
    cast(course_requirement_year as bigint) as course_requirement_year,
    null_if_blank(course_requirement_name) as course_requirement_name,
    _academic_year,
    _dlt_load_id
from illuminate.graduation_eligibility
