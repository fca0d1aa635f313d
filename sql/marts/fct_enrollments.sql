-- fct_enrollments: school enrollment spans (Enrollment): a student at a site from entry_date to leave_date.
-- Grain: one row per student, site and entry date (a re-enrolment is a new span). Key: (student_id, site_id, entry_date).
-- leave_date is the last day of membership (inclusive); NULL means open-ended.
-- academic_year: the ending year of the school year (2027 = 2026-27); session_type from Terms (Normal, Summer).
-- is_current: the span covers `today` (analytics.settings.today, setting MODELS__TODAY, default the build date).
with enrollment as (
    select *
    from analytics.stg_enrollment
    where student_id is not null and site_id is not null and entry_date is not null
    qualify row_number() over (
        partition by student_id, site_id, entry_date order by _academic_year desc nulls last, _dlt_load_id desc
    ) = 1
),

session_types as (
    select session_type_id, min(session_type) as session_type
    from analytics.stg_terms
    where session_type_id is not null
    group by session_type_id
),

settings as (
    select today from analytics.settings
)

select
    enrollment.student_id,
    enrollment.site_id,
    enrollment.entry_date,
    enrollment.leave_date,
    coalesce(enrollment.academic_year, enrollment._academic_year) as academic_year,
    enrollment.grade_level_id,
    enrollment.session_type_id,
    session_types.session_type,
    enrollment.is_primary_ada,
    enrollment.attendance_category,
    enrollment.entry_code,
    enrollment.exit_code,
    enrollment.enrollment_exit_reason as exit_reason,
    enrollment.district_student_id,
    enrollment.entry_date <= settings.today
        and coalesce(enrollment.leave_date, date '9999-12-31') >= settings.today as is_current
from enrollment
cross join settings
left join session_types on enrollment.session_type_id = session_types.session_type_id
