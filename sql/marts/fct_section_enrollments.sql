-- fct_section_enrollments: section roster spans (Roster): a student in a section from entry_date to leave_date,
-- with the section's course, term and teacher and the school enrollment that covers the span.
-- Grain: one row per student, section and roster entry date. Key: (student_id, section_id, entry_date).
-- leave_date is the last day in the section (inclusive); NULL means open-ended.
-- teacher_user_id: the roster's teacher, else the section's primary teacher.
-- enrollment_site_id / enrollment_entry_date: the fct_enrollments span of the same student at the section's site
-- that contains the roster entry date (else the latest one overlapping the roster span); NULL when none overlaps.
-- is_current: the roster span covers `today` (analytics.settings.today).
with roster as (
    select *
    from analytics.stg_roster
    where student_id is not null and section_id is not null and entry_date is not null
    qualify row_number() over (
        partition by student_id, section_id, entry_date order by _academic_year desc nulls last, _dlt_load_id desc
    ) = 1
),

sections as (
    select * from analytics.dim_sections
),

spans as (
    select
        roster.student_id,
        roster.section_id,
        roster.entry_date,
        roster.leave_date,
        coalesce(roster.site_id, sections.site_id) as site_id,
        coalesce(roster.course_id, sections.course_id) as course_id,
        coalesce(roster.user_id, sections.primary_teacher_user_id) as teacher_user_id,
        sections.term_id,
        coalesce(roster.academic_year, sections.academic_year, roster._academic_year) as academic_year,
        coalesce(roster.session_type_id, sections.session_type_id) as session_type_id,
        roster.grade_level_id,
        roster.district_student_id,
        roster.local_section_id
    from roster
    left join sections on roster.section_id = sections.section_id
),

covering as (
    select
        spans.student_id,
        spans.section_id,
        spans.entry_date,
        enrollment.site_id as enrollment_site_id,
        enrollment.entry_date as enrollment_entry_date
    from spans
    inner join analytics.fct_enrollments as enrollment
        on spans.student_id = enrollment.student_id
        and spans.site_id = enrollment.site_id
        and enrollment.entry_date <= coalesce(spans.leave_date, date '9999-12-31')
        and coalesce(enrollment.leave_date, date '9999-12-31') >= spans.entry_date
    qualify row_number() over (
        partition by spans.student_id, spans.section_id, spans.entry_date
        order by
            (enrollment.entry_date <= spans.entry_date
                and coalesce(enrollment.leave_date, date '9999-12-31') >= spans.entry_date) desc,
            enrollment.entry_date desc
    ) = 1
)

select
    spans.student_id,
    spans.section_id,
    spans.entry_date,
    spans.leave_date,
    spans.site_id,
    spans.course_id,
    spans.teacher_user_id,
    spans.term_id,
    spans.academic_year,
    spans.session_type_id,
    spans.grade_level_id,
    spans.district_student_id,
    spans.local_section_id,
    covering.enrollment_site_id,
    covering.enrollment_entry_date,
    spans.entry_date <= settings.today and coalesce(spans.leave_date, date '9999-12-31') >= settings.today
        as is_current
from spans
cross join analytics.settings as settings
left join covering
    on spans.student_id = covering.student_id
    and spans.section_id = covering.section_id
    and spans.entry_date = covering.entry_date
