-- int_student_ids: the system student_id of every district (local) student id seen in the warehouse.
-- The aggregate assessment, attendance and gradebook endpoints identify students by local_student_id /
-- district_student_id (the same id); the marts key students by student_id.
-- Grain: one row per district_student_id. Key: district_student_id.
-- When one district id appears with several system ids (bad upstream data), the most frequent one wins.
with pairs as (
    select trim(district_student_id) as district_student_id, student_id from analytics.stg_students
    union all
    select trim(district_student_id), student_id from analytics.stg_students2
    union all
    select trim(district_student_id), student_id from analytics.stg_enrollment
    union all
    select trim(district_student_id), student_id from analytics.stg_roster
    union all
    select trim(district_student_id), student_id from analytics.stg_student_special_ed
),

counted as (
    select district_student_id, student_id, count(*) as occurrences
    from pairs
    where district_student_id is not null and student_id is not null
    group by district_student_id, student_id
)

select
    district_student_id,
    student_id,
    count(*) over (partition by district_student_id) as candidate_student_ids
from counted
qualify row_number() over (partition by district_student_id order by occurrences desc, student_id desc) = 1
