-- stg_sites: the raw `Sites` rows (table illuminate.sites), one view row per raw row.
-- Grain: one row per API record. Natural key: (site_id), as declared in the endpoint catalog.
-- Cleaning: the API's literal "NULL" and empty strings become NULL; dates outside 1900-2100 become NULL.
select
    cast(site_id as bigint) as site_id,
    null_if_blank(local_site_code) as local_site_code,
    null_if_blank(site_name) as site_name,
    null_if_blank(state_school_id) as state_school_id,
    cast(start_grade_level_id as bigint) as start_grade_level_id,
    cast(end_grade_level_id as bigint) as end_grade_level_id,
    null_if_blank(site_type_name) as site_type_name,
    null_if_blank(address) as address,
    null_if_blank(address2) as address2,
    null_if_blank(city) as city,
    null_if_blank(state) as state,
    null_if_blank(zip) as zip,
    cast(num_hours as double) as num_hours,
    cast(num_weeks as double) as num_weeks,
    cast(parent_site_id as bigint) as parent_site_id,
    _dlt_load_id
from illuminate.sites
