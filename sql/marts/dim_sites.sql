-- dim_sites: the district and its schools (Sites).
-- Grain: one row per site. Key: site_id.
-- is_district: the site is the district itself (no parent, or its own parent); schools have the district as parent.
-- Grade span: start/end grade level ids with their short names from dim_grade_levels' source.
with sites as (
    select *
    from analytics.stg_sites
    where site_id is not null
    qualify row_number() over (partition by site_id order by _dlt_load_id desc) = 1
),

grades as (
    select grade_level_id, short_name from analytics.stg_grade_levels
)

select
    sites.site_id,
    sites.site_name,
    sites.local_site_code,
    sites.state_school_id,
    sites.site_type_name,
    sites.parent_site_id,
    sites.parent_site_id is null or sites.parent_site_id = sites.site_id as is_district,
    sites.start_grade_level_id,
    start_grade.short_name as start_grade,
    sites.end_grade_level_id,
    end_grade.short_name as end_grade,
    sites.address,
    sites.address2,
    sites.city,
    sites.state,
    sites.zip,
    sites.num_hours,
    sites.num_weeks
from sites
left join grades as start_grade on sites.start_grade_level_id = start_grade.grade_level_id
left join grades as end_grade on sites.end_grade_level_id = end_grade.grade_level_id
