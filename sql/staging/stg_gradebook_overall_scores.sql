-- stg_gradebook_overall_scores: the raw `GradebookOverallScores` rows (table illuminate.gradebook_overall_scores), one view row per raw row.
-- Grain: one row per API record. Natural key: (local_student_id, gradebook_name, _academic_year, _session_type), as declared in the endpoint catalog:
-- gradebook names recur across years and sessions, and the records name neither (the sync adds both).
-- Cleaning: the API's literal "NULL" and empty strings become NULL; dates outside 1900-2100 become NULL.
select
    null_if_blank(local_student_id) as local_student_id,
    null_if_blank(gradebook_name) as gradebook_name,
    cast(possible_points as double) as possible_points,
    cast(points_earned as double) as points_earned,
    cast(percentage as double) as percentage,
    null_if_blank(mark) as mark,
    null_if_blank(color) as color,
    cast(missing_count as bigint) as missing_count,
    cast(assignment_count as bigint) as assignment_count,
    cast(zero_count as bigint) as zero_count,
    cast(excused_count as bigint) as excused_count,
    case when time_frame_start_date between date '1900-01-01' and date '2100-12-31' then time_frame_start_date end as time_frame_start_date,
    case when time_frame_end_date between date '1900-01-01' and date '2100-12-31' then time_frame_end_date end as time_frame_end_date,
    case when calculated_at between timestamp '1900-01-01' and timestamp '2100-12-31' then calculated_at end as calculated_at,
    _academic_year,
    _session_type,
    _dlt_load_id
from illuminate.gradebook_overall_scores
