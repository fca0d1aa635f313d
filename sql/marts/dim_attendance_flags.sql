-- dim_attendance_flags: the district's attendance flags (Attendance/Flags) and what each one means.
-- Grain: one row per flag. Key: flag_code.
-- is_present: the student counts as present (tardies are present); is_absent = not is_present; is_excused applies to
-- absences only; precedence: the lowest wins when a day has several marks.
-- is_default_present: the flag given to a member with no record on an instructional day (sites that record only
-- exceptions): the present, non-tardy flag with the lowest precedence.
with flags as (
    select *
    from analytics.stg_attendance_flags
    where flag_code is not null
    qualify row_number() over (partition by flag_code order by _dlt_load_id desc) = 1
)

select
    flag_code,
    flag_title,
    char_code,
    precedence,
    coalesce(is_present, false) as is_present,
    not coalesce(is_present, false) as is_absent,
    not coalesce(is_present, false) and coalesce(is_excused, false) as is_excused,
    coalesce(is_tardy, false) as is_tardy,
    coalesce(is_extreme, false) as is_extreme,
    coalesce(is_truancy, false) as is_truancy,
    coalesce(is_suspension, false) as is_suspension,
    coalesce(is_reconciled, false) as is_reconciled,
    coalesce(is_verified, false) as is_verified,
    coalesce(is_present, false) and not coalesce(is_tardy, false) and not coalesce(is_extreme, false)
    and row_number() over (
        partition by coalesce(is_present, false) and not coalesce(is_tardy, false) and not coalesce(is_extreme, false)
        order by precedence nulls last, flag_code
    ) = 1 as is_default_present
from flags
