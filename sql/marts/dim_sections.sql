-- dim_sections: class sections (MasterSchedule) with their course, term, site, period and primary teacher.
-- Grain: one row per section. Key: section_id.
-- MasterSchedule has one row per section and teacher; the primary teacher is the teacher flagged primary (the one
-- teaching latest when the flag moved during the year; any teacher when none is flagged). teacher_count counts
-- all teachers. Sections seen only in rosters are included with what the roster knows (is_in_master_schedule false).
with schedule as (
    select *
    from analytics.stg_master_schedule
    where section_id is not null
    qualify row_number() over (
        partition by section_id, user_id order by _academic_year desc nulls last, _dlt_load_id desc
    ) = 1
),

ranked_teachers as (
    select
        *,
        row_number() over (
            partition by section_id
            order by
                coalesce(primary_teacher, false) desc,
                coalesce(user_end_date, date '9999-12-31') desc,
                user_start_date desc nulls last,
                user_id
        ) as teacher_rank,
        count(distinct user_id) over (partition by section_id) as teacher_count
    from schedule
),

sections as (
    select * from ranked_teachers where teacher_rank = 1
),

roster_only as (
    select
        section_id,
        arg_max(site_id, entry_date) as site_id,
        arg_max(course_id, entry_date) as course_id,
        arg_max(user_id, entry_date) as user_id,
        arg_max(academic_year, entry_date) as academic_year,
        arg_max(session_type_id, entry_date) as session_type_id,
        arg_max(local_section_id, entry_date) as district_section_id
    from analytics.stg_roster
    where section_id is not null and section_id not in (select section_id from sections)
    group by section_id
),

terms as (
    select *
    from analytics.stg_terms
    where term_id is not null
    qualify row_number() over (partition by term_id order by _academic_year desc nulls last, _dlt_load_id desc) = 1
),

courses as (
    select course_id, short_name, long_name, department_name from analytics.stg_courses where course_id is not null
    qualify row_number() over (partition by course_id order by _dlt_load_id desc) = 1
),

users as (
    select user_id, first_name, last_name from analytics.stg_users where user_id is not null
    qualify row_number() over (partition by user_id order by _dlt_load_id desc) = 1
),

all_sections as (
    select
        section_id, district_section_id, section_name, site_id, course_id, term_id, term_name, period, room_number,
        academic_year, session_type_id, quarter_num, user_id as primary_teacher_user_id,
        user_start_date as primary_teacher_start_date, user_end_date as primary_teacher_end_date,
        teacher_count, true as is_in_master_schedule
    from sections
    union all by name
    select
        section_id, district_section_id, null as section_name, site_id, course_id, null as term_id,
        null as term_name, null as period, null as room_number, academic_year, session_type_id, null as quarter_num,
        user_id as primary_teacher_user_id, null as primary_teacher_start_date, null as primary_teacher_end_date,
        case when user_id is null then 0 else 1 end as teacher_count, false as is_in_master_schedule
    from roster_only
)

select
    all_sections.section_id,
    all_sections.district_section_id,
    all_sections.section_name,
    all_sections.site_id,
    all_sections.course_id,
    courses.short_name as course_short_name,
    courses.long_name as course_long_name,
    courses.department_name,
    all_sections.term_id,
    coalesce(all_sections.term_name, terms.term_name) as term_name,
    terms.term_type,
    terms.start_date as term_start_date,
    terms.end_date as term_end_date,
    coalesce(all_sections.academic_year, terms.academic_year) as academic_year,
    coalesce(all_sections.session_type_id, terms.session_type_id) as session_type_id,
    terms.session_type,
    all_sections.period,
    all_sections.room_number,
    all_sections.quarter_num,
    all_sections.primary_teacher_user_id,
    case when teacher.last_name is not null then concat_ws(', ', teacher.last_name, teacher.first_name) end
        as primary_teacher_name,
    all_sections.primary_teacher_start_date,
    all_sections.primary_teacher_end_date,
    all_sections.teacher_count,
    all_sections.is_in_master_schedule
from all_sections
left join terms on all_sections.term_id = terms.term_id
left join courses on all_sections.course_id = courses.course_id
left join users as teacher on all_sections.primary_teacher_user_id = teacher.user_id
