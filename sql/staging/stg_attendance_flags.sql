-- stg_attendance_flags: the raw `Attendance/Flags` rows (table illuminate.attendance_flags), one view row per raw row.
-- Grain: one row per API record. Natural key: (flag_code), as declared in the endpoint catalog.
-- Cleaning: the API's literal "NULL" and empty strings become NULL; dates outside 1900-2100 become NULL.
select
    null_if_blank(flag_code) as flag_code,
    null_if_blank(flag_title) as flag_title,
    null_if_blank(char_code) as char_code,
    cast(precedence as bigint) as precedence,
    cast(is_present as boolean) as is_present,
    cast(is_excused as boolean) as is_excused,
    cast(is_reconciled as boolean) as is_reconciled,
    cast(is_tardy as boolean) as is_tardy,
    cast(is_extreme as boolean) as is_extreme,
    cast(is_truancy as boolean) as is_truancy,
    cast(is_suspension as boolean) as is_suspension,
    cast(is_verified as boolean) as is_verified,
    _dlt_load_id
from illuminate.attendance_flags
