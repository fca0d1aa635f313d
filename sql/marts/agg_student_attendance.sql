-- agg_student_attendance: each student's attendance per school and academic year, plus a district-wide row per
-- student and year (site_id NULL, is_district_row) that follows the student across schools.
-- Grain: one row per student, site (NULL for the district row) and academic year.
-- Key: (student_id, site_id, academic_year), site_id NULL on district rows.
-- days_enrolled: days of membership (fct_attendance_daily rows); days_present: present (tardies included);
-- days_absent = days_enrolled - days_present; days_excused / days_unexcused split the absences; days_tardy,
-- days_suspended as flagged. attendance_rate = days_present / days_enrolled; absence_rate = days_absent / days_enrolled.
-- is_chronically_absent: days_enrolled >= chronic_absence_min_days and absence_rate >= chronic_absence_threshold
-- (analytics.settings; MODELS__CHRONIC_ABSENCE_MIN_DAYS default 10, MODELS__CHRONIC_ABSENCE_THRESHOLD default 0.10).
-- grade_level_id: the student's grade on the last day of membership in the row.
with per_site as (
    select
        student_id,
        site_id,
        academic_year,
        false as is_district_row,
        arg_max(grade_level_id, attendance_date) as grade_level_id,
        min(attendance_date) as first_day,
        max(attendance_date) as last_day,
        count(*) as days_enrolled,
        count(*) filter (where is_present) as days_present,
        count(*) filter (where is_absent) as days_absent,
        count(*) filter (where is_excused) as days_excused,
        count(*) filter (where is_unexcused) as days_unexcused,
        count(*) filter (where is_tardy) as days_tardy,
        count(*) filter (where is_suspension) as days_suspended
    from analytics.fct_attendance_daily
    group by student_id, site_id, academic_year
),

district as (
    select
        student_id,
        cast(null as bigint) as site_id,
        academic_year,
        true as is_district_row,
        arg_max(grade_level_id, attendance_date) as grade_level_id,
        min(attendance_date) as first_day,
        max(attendance_date) as last_day,
        count(*) as days_enrolled,
        count(*) filter (where is_present) as days_present,
        count(*) filter (where is_absent) as days_absent,
        count(*) filter (where is_excused) as days_excused,
        count(*) filter (where is_unexcused) as days_unexcused,
        count(*) filter (where is_tardy) as days_tardy,
        count(*) filter (where is_suspension) as days_suspended
    from analytics.fct_attendance_daily
    group by student_id, academic_year
),

combined as (
    select * from per_site
    union all
    select * from district
)

select
    combined.student_id,
    combined.site_id,
    combined.academic_year,
    combined.is_district_row,
    combined.grade_level_id,
    combined.first_day,
    combined.last_day,
    combined.days_enrolled,
    combined.days_present,
    combined.days_absent,
    combined.days_excused,
    combined.days_unexcused,
    combined.days_tardy,
    combined.days_suspended,
    combined.days_present / combined.days_enrolled as attendance_rate,
    combined.days_absent / combined.days_enrolled as absence_rate,
    combined.days_enrolled >= settings.chronic_absence_min_days as meets_min_days,
    combined.days_enrolled >= settings.chronic_absence_min_days
        and combined.days_absent / combined.days_enrolled >= settings.chronic_absence_threshold
        as is_chronically_absent
from combined
cross join analytics.settings as settings
