-- stg_courses: the raw `Courses` rows (table illuminate.courses), one view row per raw row.
-- Grain: one row per API record. Natural key: (course_id), as declared in the endpoint catalog.
-- Cleaning: the API's literal "NULL" and empty strings become NULL; dates outside 1900-2100 become NULL.
select
    cast(course_id as bigint) as course_id,
    case when trim(school_course_id) in ('', 'NULL', 'null') then null else school_course_id end as school_course_id,
    case when trim(long_name) in ('', 'NULL', 'null') then null else long_name end as long_name,
    case when trim(short_name) in ('', 'NULL', 'null') then null else short_name end as short_name,
    case when trim(department_name) in ('', 'NULL', 'null') then null else department_name end as department_name,
    cast(start_grade_level_id as bigint) as start_grade_level_id,
    cast(end_grade_level_id as bigint) as end_grade_level_id,
    case when trim(site_ids) in ('', 'NULL', 'null') then null else site_ids end as site_ids,
    cast(is_active as boolean) as is_active,
    cast(weight as double) as weight,
    case when trim(description) in ('', 'NULL', 'null') then null else description end as description,
    cast(credits as double) as credits,
    cast(has_variable_credits as boolean) as has_variable_credits,
    cast(max_credits as double) as max_credits,
    cast(is_specialed as boolean) as is_specialed,
    cast(max_capacity as bigint) as max_capacity,
    cast(is_intervention as boolean) as is_intervention,
    case when trim(nclb_instructional_level) in ('', 'NULL', 'null') then null else nclb_instructional_level end as nclb_instructional_level,
    case when trim(course_content) in ('', 'NULL', 'null') then null else course_content end as course_content,
    case when trim(educational_service) in ('', 'NULL', 'null') then null else educational_service end as educational_service,
    case when trim(instructional_strategy) in ('', 'NULL', 'null') then null else instructional_strategy end as instructional_strategy,
    case when trim(program_funding_source) in ('', 'NULL', 'null') then null else program_funding_source end as program_funding_source,
    cast(tech_prep as boolean) as tech_prep,
    case when trim(cte_funding_provider) in ('', 'NULL', 'null') then null else cte_funding_provider end as cte_funding_provider,
    _dlt_load_id
from illuminate.courses
