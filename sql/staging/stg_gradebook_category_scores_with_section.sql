-- stg_gradebook_category_scores_with_section: the raw `GradebookCategoryScoresWithSection` rows (table illuminate.gradebook_category_scores_with_section), one view row per raw row.
-- Grain: one row per API record. Natural key: (local_student_id, gradebook_name, category_name, section_id), as declared in the endpoint catalog.
-- Cleaning: the API's literal "NULL" and empty strings become NULL; dates outside 1900-2100 become NULL.
select
    null_if_blank(local_student_id) as local_student_id,
    null_if_blank(gradebook_name) as gradebook_name,
    cast(possible_points as double) as possible_points,
    cast(points_earned as double) as points_earned,
    cast(percentage as double) as percentage,
    null_if_blank(category_name) as category_name,
    cast(weight as double) as weight,
    null_if_blank(mark) as mark,
    null_if_blank(mark_color) as mark_color,
    cast(missing_count as bigint) as missing_count,
    cast(assignment_count as bigint) as assignment_count,
    cast(zero_count as bigint) as zero_count,
    cast(excused_count as bigint) as excused_count,
    case when calculated_at between timestamp '1900-01-01' and timestamp '2100-12-31' then calculated_at end as calculated_at,
    case when time_frame_start_date between date '1900-01-01' and date '2100-12-31' then time_frame_start_date end as time_frame_start_date,
    case when time_frame_end_date between date '1900-01-01' and date '2100-12-31' then time_frame_end_date end as time_frame_end_date,
    null_if_blank(local_section_id) as local_section_id,
    cast(section_id as bigint) as section_id,
    null_if_blank(section_name) as section_name,
    null_if_blank(school_course_id) as school_course_id,
    _academic_year,
    _dlt_load_id
from illuminate.gradebook_category_scores_with_section
