-- fct_assessment_result_sections: each assessment result (latest attempt) linked to every section the student was
-- rostered in on date_taken, with the section's teacher, course and term.
-- Grain: one row per assessment, student and section. Key: (assessment_id, student_id, section_id).
-- A section counts when a fct_section_enrollments span of the student contains date_taken (entry_date <= date_taken
-- <= leave_date, open-ended when leave_date is NULL). Results taken on a day the student had no section are absent.
select
    result.assessment_id,
    result.student_id,
    roster.section_id,
    result.date_taken,
    roster.entry_date as roster_entry_date,
    roster.teacher_user_id,
    roster.course_id,
    roster.term_id,
    roster.site_id as section_site_id,
    result.site_id,
    result.grade_level_id,
    result.academic_year,
    result.percent_correct,
    result.performance_band_level,
    result.performance_band_label,
    result.is_proficient
from analytics.fct_assessment_results as result
inner join analytics.fct_section_enrollments as roster
    on result.student_id = roster.student_id
    and roster.entry_date <= result.date_taken
    and coalesce(roster.leave_date, date '9999-12-31') >= result.date_taken
qualify row_number() over (
    partition by result.assessment_id, result.student_id, roster.section_id order by roster.entry_date desc
) = 1
