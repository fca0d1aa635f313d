-- stg_sites: the raw `Sites` rows (table illuminate.sites), one view row per raw row.
-- Grain: one row per API record. Natural key: (site_id), as declared in the endpoint catalog.
-- Cleaning: the API's literal "NULL" and empty strings become NULL; dates outside 1900-2100 become NULL.
select
    cast(site_id as bigint) as site_id,
    case when trim(local_site_code) in ('', 'NULL', 'null') then null else local_site_code end as local_site_code,
    case when trim(site_name) in ('', 'NULL', 'null') then null else site_name end as site_name,
    case when trim(state_school_id) in ('', 'NULL', 'null') then null else state_school_id end as state_school_id,
    cast(start_grade_level_id as bigint) as start_grade_level_id,
    cast(end_grade_level_id as bigint) as end_grade_level_id,
    case when trim(site_type_name) in ('', 'NULL', 'null') then null else site_type_name end as site_type_name,
    case when trim(address) in ('', 'NULL', 'null') then null else address end as address,
    case when trim(address2) in ('', 'NULL', 'null') then null else address2 end as address2,
    case when trim(city) in ('', 'NULL', 'null') then null else city end as city,
    case when trim(state) in ('', 'NULL', 'null') then null else state end as state,
    case when trim(zip) in ('', 'NULL', 'null') then null else zip end as zip,
    cast(num_hours as double) as num_hours,
    cast(num_weeks as double) as num_weeks,
    cast(parent_site_id as bigint) as parent_site_id,
    _dlt_load_id
from illuminate.sites
