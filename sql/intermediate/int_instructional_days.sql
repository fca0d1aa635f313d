-- int_instructional_days: the days on which a site took attendance (its instructional days).
-- Grain: one row per site and date. Key: (site_id, attendance_date).
-- A site took attendance on a date when it has a daily or section attendance record that date (is_recorded_at_site).
-- Sites that record only exceptions (absences, tardies) may have no record on a day nobody was absent, so a date on
-- which any site of the district recorded attendance also counts for every site with a term (of any session)
-- covering that date. With exception-only recording, a day on which no student of the whole district had an
-- exception cannot be told from a day off.
with recorded as (
    select distinct site_id, "date" as attendance_date
    from analytics.stg_attendance_daily
    where site_id is not null and "date" is not null
    union
    select distinct site_id, "date" as attendance_date
    from analytics.stg_attendance_section
    where site_id is not null and "date" is not null
),

district_days as (
    select distinct attendance_date from recorded
),

term_windows as (
    select distinct site_id, start_date, end_date
    from analytics.stg_terms
    where site_id is not null and start_date is not null and end_date is not null
),

inferred as (
    select distinct term_windows.site_id, district_days.attendance_date
    from district_days
    inner join term_windows
        on district_days.attendance_date between term_windows.start_date and term_windows.end_date
)

select
    coalesce(recorded.site_id, inferred.site_id) as site_id,
    coalesce(recorded.attendance_date, inferred.attendance_date) as attendance_date,
    recorded.site_id is not null as is_recorded_at_site
from recorded
full outer join inferred
    on recorded.site_id = inferred.site_id and recorded.attendance_date = inferred.attendance_date
