-- stg_grade_levels: the raw `GradeLevels` list (table illuminate.grade_levels), with the grades put in school order.
-- Grain: one row per grade level. Key: grade_level_id.
-- grade_number: PK = -2, TK = -1, K = 0, then the grade's number (NULL for other labels, e.g. "UG").
-- grade_order: 1, 2, ... in school order (K before 1): grade_number first, then the API's sort_order, then the id.
-- Cleaning: the API's literal "NULL" and empty strings become NULL.
with grade_levels as (
    select
        cast(grade_level_id as bigint) as grade_level_id,
        null_if_blank(trim(short_name)) as short_name,
        null_if_blank(long_name) as long_name,
        cast(standard_age as bigint) as standard_age,
        null_if_blank(state_id) as state_id,
        cast(sort_order as bigint) as sort_order,
        _dlt_load_id
    from illuminate.grade_levels
),

numbered as (
    select
        *,
        case
            when upper(short_name) in ('K', 'KN', 'KG', 'KINDERGARTEN') then 0
            when upper(short_name) in ('TK', 'T-K') then -1
            when upper(short_name) in ('PK', 'P', 'PS', 'PRE-K', 'PREK') then -2
            else try_cast(short_name as integer)
        end as grade_number
    from grade_levels
)

select
    grade_level_id,
    short_name,
    long_name,
    standard_age,
    state_id,
    sort_order,
    grade_number,
    row_number() over (order by grade_number nulls last, sort_order nulls last, grade_level_id) as grade_order,
    _dlt_load_id
from numbered
