-- dim_staff: staff members (Users) with their roles (UserRoles).
-- Grain: one row per user. Key: user_id.
-- Also holds users referenced only by roles, sections or counselor assignments (is_in_users = false, no names),
-- so that every staff foreign key of the marts finds its row.
-- roles: every role name the user held in any year; current_roles / current_site_ids: those of the latest academic
-- year the user has roles in (current_roles_academic_year). is_teacher / is_counselor / is_administrator: any year.
with users as (
    select *
    from analytics.stg_users
    where user_id is not null
    qualify row_number() over (partition by user_id order by _dlt_load_id desc) = 1
),

roles as (
    select * from analytics.stg_user_roles where user_id is not null
),

role_summary as (
    select
        user_id,
        string_agg(distinct role_name, ', ' order by role_name) as roles,
        max(academic_year) as current_roles_academic_year,
        coalesce(bool_or(role_name ilike '%teacher%'), false) as is_teacher,
        coalesce(bool_or(role_name ilike '%counselor%'), false) as is_counselor,
        coalesce(bool_or(role_name ilike '%admin%' or role_name ilike '%principal%'), false) as is_administrator
    from roles
    group by user_id
),

current_roles as (
    select
        roles.user_id,
        string_agg(distinct roles.role_name, ', ' order by roles.role_name) as current_roles,
        string_agg(distinct cast(roles.site_id as varchar), ', ' order by cast(roles.site_id as varchar))
            as current_site_ids
    from roles
    inner join role_summary
        on roles.user_id = role_summary.user_id
        and roles.academic_year is not distinct from role_summary.current_roles_academic_year
    group by roles.user_id
),

referenced as (
    select user_id from users
    union
    select user_id from roles
    union
    select user_id from analytics.stg_master_schedule where user_id is not null
    union
    select user_id from analytics.stg_roster where user_id is not null
    union
    select counselor_id from analytics.stg_student_counselors where counselor_id is not null
)

select
    referenced.user_id,
    users.district_user_id,
    users.state_user_id,
    users.first_name,
    users.middle_name,
    users.last_name,
    case when users.last_name is not null then concat_ws(', ', users.last_name, users.first_name) end as full_name,
    users.username,
    users.email1 as email,
    users.job_title,
    users.staff_education_level,
    users.gender,
    users.primary_ethnicity,
    users.is_hispanic,
    users.hire_date,
    users.exit_date,
    users.active as is_active,
    role_summary.roles,
    current_roles.current_roles,
    current_roles.current_site_ids,
    role_summary.current_roles_academic_year,
    coalesce(role_summary.is_teacher, false) as is_teacher,
    coalesce(role_summary.is_counselor, false) as is_counselor,
    coalesce(role_summary.is_administrator, false) as is_administrator,
    users.user_id is not null as is_in_users
from referenced
left join users on referenced.user_id = users.user_id
left join role_summary on referenced.user_id = role_summary.user_id
left join current_roles on referenced.user_id = current_roles.user_id
