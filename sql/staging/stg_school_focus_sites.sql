-- stg_school_focus_sites: the raw `SchoolFocusSites` rows (table illuminate.school_focus_sites), one view row per raw row.
-- Grain: one row per API record. Natural key: (user_id, site_id), as declared in the endpoint catalog.
-- Cleaning: the API's literal "NULL" and empty strings become NULL; dates outside 1900-2100 become NULL.
select
    cast(user_id as bigint) as user_id,
    cast(site_id as bigint) as site_id,
    null_if_blank(site_name) as site_name,
    _dlt_load_id
from illuminate.school_focus_sites
