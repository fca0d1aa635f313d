-- fct_gradebook_overall: each student's overall score in each gradebook of each section
-- (GradebookOverallScoresWithSection).
-- Grain: one row per student, gradebook and section. Key: (student_id, gradebook_name, section_id).
-- Students are identified by local_student_id in the API and mapped to student_id (int_student_ids).
-- section_id is the system section id: the API's internal_section_id (its `section_id` field holds the district
-- section id when there is one), else the section whose district_section_id matches, else a numeric section_id.
-- percentage: total percentage earned; mark: the overall mark; missing/assignment/zero/excused counts; the time frame
-- the score was calculated over. When a score is in several academic-year slices, the latest year's is kept.
with scores as (
    select
        ids.student_id,
        score.*
    from analytics.stg_gradebook_overall_scores_with_section as score
    inner join analytics.int_student_ids as ids on trim(score.local_student_id) = ids.district_student_id
    where score.gradebook_name is not null
),

district_sections as (
    select district_section_id, min(section_id) as section_id
    from analytics.dim_sections
    where district_section_id is not null
    group by district_section_id
),

resolved as (
    select
        scores.*,
        coalesce(
            scores.internal_section_id,
            district_sections.section_id,
            try_cast(scores.section_id as bigint)
        ) as system_section_id
    from scores
    left join district_sections on coalesce(scores.district_section_id, scores.section_id) = district_sections.district_section_id
)

select
    resolved.student_id,
    resolved.gradebook_name,
    resolved.system_section_id as section_id,
    resolved.local_student_id,
    resolved.section_id as api_section_id,
    resolved.section_name,
    resolved.school_course_id,
    sections.course_id,
    sections.site_id,
    coalesce(sections.academic_year, resolved._academic_year) as academic_year,
    resolved.percentage,
    resolved.mark,
    resolved.color,
    resolved.points_earned,
    resolved.possible_points,
    resolved.missing_count,
    resolved.assignment_count,
    resolved.zero_count,
    resolved.excused_count,
    resolved.time_frame_start_date,
    resolved.time_frame_end_date,
    resolved.calculated_at
from resolved
left join analytics.dim_sections as sections on resolved.system_section_id = sections.section_id
where resolved.system_section_id is not null
qualify row_number() over (
    partition by resolved.student_id, resolved.gradebook_name, resolved.system_section_id
    order by resolved._academic_year desc nulls last, resolved.calculated_at desc nulls last
) = 1
