-- rpt_chronic_absenteeism: chronic absenteeism per academic year, school and grade, plus a district row per year and
-- grade (site_id NULL) built from the students' district-wide attendance (so a student who moved counts once, with
-- all the days of the year).
-- Grain: one row per academic year, site (NULL = district) and grade level. Key: (academic_year, site_id, grade_level_id).
-- students: students enrolled at least chronic_absence_min_days days (the denominator; setting
-- MODELS__CHRONIC_ABSENCE_MIN_DAYS); students_any_days: every student with a day of membership;
-- chronically_absent: agg_student_attendance.is_chronically_absent; chronic_absence_rate = chronically_absent /
-- students; avg_attendance_rate: the mean of those students' attendance rates; attendance_rate: their days present /
-- days enrolled (average daily attendance). Grade: the student's grade on the last day of membership.
with grouped as (
    select
        academic_year,
        site_id,
        grade_level_id,
        is_district_row,
        count(*) filter (where meets_min_days) as students,
        count(*) as students_any_days,
        count(*) filter (where is_chronically_absent) as chronically_absent,
        avg(attendance_rate) filter (where meets_min_days) as avg_attendance_rate,
        sum(days_present) filter (where meets_min_days) as days_present,
        sum(days_enrolled) filter (where meets_min_days) as days_enrolled
    from analytics.agg_student_attendance
    group by academic_year, site_id, grade_level_id, is_district_row
)

select
    grouped.academic_year,
    grouped.site_id,
    grouped.grade_level_id,
    grouped.is_district_row,
    case when grouped.is_district_row then 'District' else sites.site_name end as site_name,
    grades.short_name as grade,
    grades.grade_order,
    grouped.students,
    grouped.students_any_days,
    grouped.chronically_absent,
    case when grouped.students > 0 then grouped.chronically_absent / grouped.students end as chronic_absence_rate,
    grouped.avg_attendance_rate,
    case when grouped.days_enrolled > 0 then grouped.days_present / grouped.days_enrolled end as attendance_rate
from grouped
left join analytics.dim_sites as sites on grouped.site_id = sites.site_id
left join analytics.dim_grade_levels as grades on grouped.grade_level_id = grades.grade_level_id
