-- stg_user_roles: the raw `UserRoles` rows (table illuminate.user_roles), one view row per raw row.
-- Grain: one row per API record. Natural key: (user_id, site_id, academic_year, term_id, role_id), as declared in the endpoint catalog.
-- Cleaning: the API's literal "NULL" and empty strings become NULL; dates outside 1900-2100 become NULL.
select
    cast(user_id as bigint) as user_id,
    null_if_blank(district_user_id) as district_user_id,
    cast(site_id as bigint) as site_id,
    cast(academic_year as bigint) as academic_year,
    cast(term_id as bigint) as term_id,
    cast(role_id as bigint) as role_id,
    null_if_blank(role_name) as role_name,
    _dlt_load_id
from illuminate.user_roles
