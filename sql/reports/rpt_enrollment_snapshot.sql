-- rpt_enrollment_snapshot: enrollment per academic year, school and grade: who is enrolled on the snapshot date and
-- how many entered and left during the year.
-- Grain: one row per academic year, site and grade level. Key: (academic_year, site_id, grade_level_id).
-- snapshot_date: `today` (analytics.settings.today) for the current year, the last day of the year's regular
-- (non-summer) enrollment spans for closed years: least(today, year_end_date).
-- enrolled: distinct students with a span covering snapshot_date. entries: spans that started on or before the
-- snapshot date; mid_year_entries: those that started after the year's first day (year_start_date).
-- exits: spans that ended before year_end_date and on or before the snapshot date (transfers, withdrawals).
-- Summer-session spans belong to their academic year and count like the others.
with settings as (
    select today from analytics.settings
),

enrollment as (
    select * from analytics.fct_enrollments where academic_year is not null
),

years as (
    select
        academic_year,
        coalesce(
            min(entry_date) filter (where coalesce(session_type, '') not ilike 'summer%'), min(entry_date)
        ) as year_start_date,
        coalesce(
            max(leave_date) filter (where coalesce(session_type, '') not ilike 'summer%'), max(leave_date)
        ) as year_end_date
    from enrollment
    group by academic_year
),

snapshot as (
    select
        years.academic_year,
        years.year_start_date,
        years.year_end_date,
        least(settings.today, coalesce(years.year_end_date, settings.today)) as snapshot_date
    from years
    cross join settings
),

counts as (
    select
        enrollment.academic_year,
        enrollment.site_id,
        enrollment.grade_level_id,
        count(distinct enrollment.student_id) filter (
            where enrollment.entry_date <= snapshot.snapshot_date
            and coalesce(enrollment.leave_date, date '9999-12-31') >= snapshot.snapshot_date
        ) as enrolled,
        count(*) filter (where enrollment.entry_date <= snapshot.snapshot_date) as entries,
        count(*) filter (
            where enrollment.entry_date <= snapshot.snapshot_date and enrollment.entry_date > snapshot.year_start_date
        ) as mid_year_entries,
        count(*) filter (
            where enrollment.leave_date < snapshot.year_end_date and enrollment.leave_date <= snapshot.snapshot_date
        ) as exits
    from enrollment
    inner join snapshot on enrollment.academic_year = snapshot.academic_year
    group by enrollment.academic_year, enrollment.site_id, enrollment.grade_level_id
)

select
    counts.academic_year,
    counts.site_id,
    counts.grade_level_id,
    sites.site_name,
    grades.short_name as grade,
    grades.grade_order,
    snapshot.snapshot_date,
    snapshot.year_start_date,
    snapshot.year_end_date,
    counts.enrolled,
    counts.entries,
    counts.mid_year_entries,
    counts.exits
from counts
inner join snapshot on counts.academic_year = snapshot.academic_year
left join analytics.dim_sites as sites on counts.site_id = sites.site_id
left join analytics.dim_grade_levels as grades on counts.grade_level_id = grades.grade_level_id
