-- stg_course_requirement_checks: the raw `CourseRequirementChecks` rows (table illuminate.course_requirement_checks), one view row per raw row.
-- Grain: one row per API record. Natural key: (local_student_id, requirement_check_type, requirement_category_short_name), as declared in the endpoint catalog.
-- Cleaning: the API's literal "NULL" and empty strings become NULL; dates outside 1900-2100 become NULL.
select
    null_if_blank(local_student_id) as local_student_id,
    cast(site_id as bigint) as site_id,
    null_if_blank(requirement_check_type) as requirement_check_type,
    null_if_blank(requirement_category_short_name) as requirement_category_short_name,
    null_if_blank(requirement_category_full_name) as requirement_category_full_name,
    cast(requirement_category_is_non_credit as boolean) as requirement_category_is_non_credit,
    cast(requirement_category_credits_required as double) as requirement_category_credits_required,
    cast(requirement_category_is_satisfied as boolean) as requirement_category_is_satisfied,
    cast(requirement_category_credits_received as double) as requirement_category_credits_received,
    cast(requirement_category_credits_in_progress as double) as requirement_category_credits_in_progress,
    cast(requirement_category_credits_scheduled as double) as requirement_category_credits_scheduled,
    _dlt_load_id
from illuminate.course_requirement_checks
