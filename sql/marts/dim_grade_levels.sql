-- dim_grade_levels: grade levels in school order (K before 1).
-- Grain: one row per grade level. Key: grade_level_id.
-- grade_order sorts grades (1 = lowest); grade_number is -2 PK, -1 TK, 0 K, 1..12 (NULL for other labels).
select
    grade_level_id,
    short_name,
    long_name,
    grade_number,
    grade_order,
    standard_age,
    state_id,
    sort_order
from analytics.stg_grade_levels
where grade_level_id is not null
qualify row_number() over (partition by grade_level_id order by _dlt_load_id desc) = 1
