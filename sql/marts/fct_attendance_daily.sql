-- fct_attendance_daily: one row per enrolled student per instructional day (a day of membership), with the day's
-- attendance flag and its meaning.
-- Grain: one row per student and date. Key: (student_id, attendance_date).
-- Instructional days: int_instructional_days (days the site took attendance). A day of membership is an
-- instructional day of the site inside a fct_enrollments span (entry_date..leave_date, inclusive).
-- Flag: the student's Attendance/Daily record that day (students matched by illuminate_student_id, else by
-- district_student_id); a member without a record was present (is_recorded = false, flag = the default present flag
-- of dim_attendance_flags), so exception-only and every-mark recording give the same numbers.
-- Overlapping enrollments give one row: the span at the site that recorded the day, else the primary-ADA span,
-- else the latest entry. site_id, grade_level_id and academic_year come from that span.
-- is_absent = not is_present; is_excused / is_unexcused split absences; is_tardy, is_suspension, is_truancy as flagged.
with membership as (
    select
        enrollment.student_id,
        day.attendance_date,
        enrollment.site_id,
        enrollment.entry_date as enrollment_entry_date,
        enrollment.academic_year,
        enrollment.grade_level_id,
        enrollment.is_primary_ada
    from analytics.fct_enrollments as enrollment
    inner join analytics.int_instructional_days as day
        on enrollment.site_id = day.site_id
        and day.attendance_date >= enrollment.entry_date
        and day.attendance_date <= coalesce(enrollment.leave_date, date '9999-12-31')
),

records as (
    select
        coalesce(daily.illuminate_student_id, ids.student_id) as student_id,
        daily."date" as attendance_date,
        daily.site_id,
        daily.flag_code,
        flags.precedence
    from analytics.stg_attendance_daily as daily
    left join analytics.int_student_ids as ids on trim(daily.district_student_id) = ids.district_student_id
    left join analytics.dim_attendance_flags as flags on daily.flag_code = flags.flag_code
    where daily."date" is not null and daily.flag_code is not null
),

days as (
    select
        membership.*,
        records.flag_code as recorded_flag_code
    from membership
    left join records
        on membership.student_id = records.student_id
        and membership.attendance_date = records.attendance_date
    qualify row_number() over (
        partition by membership.student_id, membership.attendance_date
        order by
            (records.site_id = membership.site_id) desc nulls last,
            coalesce(membership.is_primary_ada, false) desc,
            membership.enrollment_entry_date desc,
            membership.site_id,
            records.precedence nulls last,
            records.flag_code
    ) = 1
),

default_present as (
    select flag_code from analytics.dim_attendance_flags where is_default_present
)

select
    days.student_id,
    days.attendance_date,
    days.site_id,
    days.academic_year,
    days.grade_level_id,
    days.enrollment_entry_date,
    coalesce(days.recorded_flag_code, default_present.flag_code) as flag_code,
    flags.flag_title,
    days.recorded_flag_code is not null as is_recorded,
    coalesce(flags.is_present, days.recorded_flag_code is null) as is_present,
    not coalesce(flags.is_present, days.recorded_flag_code is null) as is_absent,
    coalesce(flags.is_excused, false) as is_excused,
    not coalesce(flags.is_present, days.recorded_flag_code is null) and not coalesce(flags.is_excused, false)
        as is_unexcused,
    coalesce(flags.is_tardy, false) as is_tardy,
    coalesce(flags.is_suspension, false) as is_suspension,
    coalesce(flags.is_truancy, false) as is_truancy
from days
left join default_present on true
left join analytics.dim_attendance_flags as flags
    on coalesce(days.recorded_flag_code, default_present.flag_code) = flags.flag_code
