-- dim_courses: courses (Courses), plus courses referenced only by sections or rosters (is_in_courses = false).
-- Grain: one row per course. Key: course_id.
with courses as (
    select *
    from analytics.stg_courses
    where course_id is not null
    qualify row_number() over (partition by course_id order by _dlt_load_id desc) = 1
),

referenced as (
    select course_id from courses
    union
    select course_id from analytics.stg_master_schedule where course_id is not null
    union
    select course_id from analytics.stg_roster where course_id is not null
)

select
    referenced.course_id,
    courses.school_course_id,
    courses.short_name,
    courses.long_name,
    courses.department_name,
    courses.start_grade_level_id,
    courses.end_grade_level_id,
    courses.site_ids,
    courses.credits,
    courses.max_credits,
    courses.has_variable_credits,
    courses.weight,
    courses.is_active,
    courses.is_specialed,
    courses.is_intervention,
    courses.max_capacity,
    courses.nclb_instructional_level,
    courses.description,
    courses.course_id is not null as is_in_courses
from referenced
left join courses on referenced.course_id = courses.course_id
