-- stg_school_focus_permissions: the raw `SchoolFocusPermissions` rows (table illuminate.school_focus_permissions), one view row per raw row.
-- Grain: one row per API record. Natural key: (user_id), as declared in the endpoint catalog.
-- Cleaning: the API's literal "NULL" and empty strings become NULL; dates outside 1900-2100 become NULL.
select
    cast(user_id as bigint) as user_id,
    cast("module" as boolean) as "module",
    cast("create" as boolean) as "create",
    cast("view" as boolean) as "view",
    cast("update" as boolean) as "update",
    cast("delete" as boolean) as "delete",
    cast(erase as boolean) as erase,
    cast(no_photo as boolean) as no_photo,
    cast(no_video as boolean) as no_video,
    cast(review as boolean) as review,
    cast(download as boolean) as download,
    cast("search" as boolean) as "search",
    _dlt_load_id
from illuminate.school_focus_permissions
