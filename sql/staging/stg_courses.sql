-- stg_courses: the raw `Courses` rows (table illuminate.courses), one view row per raw row.
-- Grain: one row per API record. Natural key: (course_id), as declared in the endpoint catalog.
-- Cleaning: the API's literal "NULL" and empty strings become NULL; dates outside 1900-2100 become NULL.
select
    cast(course_id as bigint) as course_id,
    null_if_blank(school_course_id) as school_course_id,
    null_if_blank(long_name) as long_name,
    null_if_blank(short_name) as short_name,
    null_if_blank(department_name) as department_name,
    cast(start_grade_level_id as bigint) as start_grade_level_id,
    cast(end_grade_level_id as bigint) as end_grade_level_id,
    null_if_blank(site_ids) as site_ids,
    cast(is_active as boolean) as is_active,
    cast(weight as double) as weight,
    null_if_blank(description) as description,
    cast(credits as double) as credits,
    cast(has_variable_credits as boolean) as has_variable_credits,
    cast(max_credits as double) as max_credits,
    cast(is_specialed as boolean) as is_specialed,
    cast(max_capacity as bigint) as max_capacity,
    cast(is_intervention as boolean) as is_intervention,
    null_if_blank(nclb_instructional_level) as nclb_instructional_level,
    null_if_blank(course_content) as course_content,
    null_if_blank(educational_service) as educational_service,
    null_if_blank(instructional_strategy) as instructional_strategy,
    null_if_blank(program_funding_source) as program_funding_source,
    cast(tech_prep as boolean) as tech_prep,
    null_if_blank(cte_funding_provider) as cte_funding_provider,
    _dlt_load_id
from illuminate.courses
