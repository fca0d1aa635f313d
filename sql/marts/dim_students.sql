-- dim_students: students with stable demographics, their current school and grade, special education, programs
-- and counselor.
-- Grain: one row per student. Key: student_id.
-- Demographics: the latest academic year's Students row (Students2 adds gifted, lunch status, 504 plan, ...).
-- current_site_id / current_grade_level_id: the enrollment covering `today` (analytics.settings.today), preferring
-- the primary-ADA span, else NULL; last_site_id / last_grade_level_id: the latest enrollment span, current or not.
-- is_special_ed / special_ed_*: StudentSpecialEd. programs: codes of the ProgramCode records whose participation
-- (else eligibility) period covers today. counselor_*: the StudentCounselors assignment covering today, else the
-- latest one.
with settings as (
    select today from analytics.settings
),

students as (
    select *
    from analytics.stg_students
    where student_id is not null
    qualify row_number() over (
        partition by student_id order by academic_year desc nulls last, _academic_year desc nulls last, _dlt_load_id desc
    ) = 1
),

students2 as (
    select *
    from analytics.stg_students2
    where student_id is not null
    qualify row_number() over (
        partition by student_id order by academic_year desc nulls last, _academic_year desc nulls last, _dlt_load_id desc
    ) = 1
),

enrollment_ids as (
    select student_id, arg_max(district_student_id, entry_date) as district_student_id
    from analytics.fct_enrollments
    group by student_id
),

ids as (
    select student_id from students
    union
    select student_id from students2
    union
    select student_id from enrollment_ids
),

current_enrollment as (
    select student_id, site_id, grade_level_id, entry_date
    from analytics.fct_enrollments
    where is_current
    qualify row_number() over (
        partition by student_id order by coalesce(is_primary_ada, false) desc, entry_date desc, site_id
    ) = 1
),

last_enrollment as (
    select student_id, site_id, grade_level_id, entry_date, leave_date, academic_year
    from analytics.fct_enrollments
    qualify row_number() over (
        partition by student_id
        order by coalesce(leave_date, date '9999-12-31') desc, entry_date desc, coalesce(is_primary_ada, false) desc,
            site_id
    ) = 1
),

special_ed as (
    select *
    from analytics.stg_student_special_ed
    where student_id is not null
    qualify row_number() over (partition by student_id order by _academic_year desc nulls last, _dlt_load_id desc) = 1
),

programs as (
    select
        program.student_id,
        string_agg(distinct program.program_code, ', ' order by program.program_code) as programs,
        string_agg(distinct program.program_description, ', ' order by program.program_description)
            as program_descriptions
    from analytics.stg_program_code as program
    cross join settings
    where program.student_id is not null
        and coalesce(program.participation_start_date, program.eligibility_start_date) <= settings.today
        and coalesce(program.participation_end_date, program.eligibility_end_date, date '9999-12-31') >= settings.today
    group by program.student_id
),

counselor as (
    select
        assignment.student_id,
        assignment.counselor_id,
        assignment.district_counselor_id,
        concat_ws(', ', assignment.counselor_last_name, assignment.counselor_name) as counselor_name,
        assignment.counselor_email,
        assignment.start_date as counselor_start_date
    from analytics.stg_student_counselors as assignment
    cross join settings
    where assignment.student_id is not null and assignment.counselor_id is not null
    qualify row_number() over (
        partition by assignment.student_id
        order by
            (assignment.start_date <= settings.today
                and coalesce(assignment.end_date, date '9999-12-31') >= settings.today) desc nulls last,
            assignment.start_date desc nulls last,
            assignment.counselor_id
    ) = 1
)

select
    ids.student_id,
    coalesce(students.district_student_id, students2.district_student_id, enrollment_ids.district_student_id)
        as district_student_id,
    coalesce(students.state_student_id, students2.state_student_id) as state_student_id,
    coalesce(students.first_name, students2.first_name) as first_name,
    coalesce(students.middle_name, students2.middle_name) as middle_name,
    coalesce(students.last_name, students2.last_name) as last_name,
    coalesce(students.birth_date, students2.birth_date) as birth_date,
    coalesce(students.gender, students2.gender) as gender,
    coalesce(students.ethnicity_1, students2.ethnicity_1) as ethnicity,
    coalesce(students.is_hispanic, students2.is_hispanic) as is_hispanic,
    coalesce(students.primary_language, students2.primary_language) as primary_language,
    coalesce(students.correspondence_language, students2.correspondence_language) as correspondence_language,
    coalesce(students.language_fluency, students2.language_fluency) as language_fluency,
    coalesce(students.reclassification_date, students2.reclassification_date) as reclassification_date,
    coalesce(students.parent_education_level, students2.parent_education_level) as parent_education_level,
    coalesce(students.district_entry_date, students2.district_entry_date) as district_entry_date,
    coalesce(students.school_entry_date, students2.school_entry_date) as school_entry_date,
    coalesce(students.us_school_entry_date, students2.us_school_entry_date) as us_school_entry_date,
    students2.gifted_slash_talented,
    students2.lunch_status,
    students2.plan as plan_504,
    students2.mobility,
    students2.service_code,
    students.current_homeroom_teacher_id as homeroom_teacher_user_id,
    current_enrollment.site_id as current_site_id,
    current_enrollment.grade_level_id as current_grade_level_id,
    current_enrollment.entry_date as current_entry_date,
    current_enrollment.student_id is not null as is_currently_enrolled,
    last_enrollment.site_id as last_site_id,
    last_enrollment.grade_level_id as last_grade_level_id,
    last_enrollment.academic_year as last_academic_year,
    last_enrollment.leave_date as last_leave_date,
    coalesce(special_ed.is_specialed, false) as is_special_ed,
    coalesce(special_ed.primary_disability, students.primary_disability_translation) as special_ed_disability,
    special_ed.primary_disability_state_code as special_ed_disability_state_code,
    special_ed.exit_date as special_ed_exit_date,
    programs.programs,
    programs.program_descriptions,
    counselor.counselor_id,
    counselor.district_counselor_id,
    counselor.counselor_name,
    counselor.counselor_email,
    counselor.counselor_start_date
from ids
left join students on ids.student_id = students.student_id
left join students2 on ids.student_id = students2.student_id
left join enrollment_ids on ids.student_id = enrollment_ids.student_id
left join current_enrollment on ids.student_id = current_enrollment.student_id
left join last_enrollment on ids.student_id = last_enrollment.student_id
left join special_ed on ids.student_id = special_ed.student_id
left join programs on ids.student_id = programs.student_id
left join counselor on ids.student_id = counselor.student_id
