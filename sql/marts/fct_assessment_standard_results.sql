-- fct_assessment_standard_results: each student's score per standard of each assessment
-- (AssessmentAggregateStudentResponsesStandard), latest attempt only.
-- Grain: one row per assessment, student and standard. Key: (assessment_id, student_id, academic_benchmark_guid).
-- Same rules as fct_assessment_results: local ids mapped to student_id, the latest date_taken kept, site and grade
-- from the enrollment covering date_taken. is_proficient: the band is a mastery band of the band set the View
-- document names for the standard (else the assessment's set; else the API's `mastered` flag).
with responses as (
    select
        ids.student_id,
        response.*
    from analytics.stg_assessment_aggregate_student_responses_standard as response
    inner join analytics.int_student_ids as ids on trim(response.local_student_id) = ids.district_student_id
    where response.assessment_id is not null and response.academic_benchmark_guid is not null
),

attempts as (
    select
        *,
        count(*) over (partition by assessment_id, student_id, academic_benchmark_guid) as attempts
    from responses
    qualify row_number() over (
        partition by assessment_id, student_id, academic_benchmark_guid
        order by date_taken desc nulls last, percent_correct desc nulls last
    ) = 1
),

enrollment_on_day as (
    select
        attempts.assessment_id,
        attempts.student_id,
        attempts.academic_benchmark_guid,
        enrollment.site_id,
        enrollment.grade_level_id,
        coalesce(enrollment.leave_date, date '9999-12-31') >= attempts.date_taken as is_enrollment_covering
    from attempts
    inner join analytics.fct_enrollments as enrollment
        on attempts.student_id = enrollment.student_id
        and enrollment.entry_date <= attempts.date_taken
    qualify row_number() over (
        partition by attempts.assessment_id, attempts.student_id, attempts.academic_benchmark_guid
        order by
            (coalesce(enrollment.leave_date, date '9999-12-31') >= attempts.date_taken) desc,
            coalesce(enrollment.is_primary_ada, false) desc,
            enrollment.entry_date desc,
            enrollment.site_id
    ) = 1
),

standard_band_sets as (
    select assessment_id, academic_benchmark_guid, performance_band_set_id
    from analytics.stg_assessment_view__assessment__standards
    where performance_band_set_id is not null
    qualify row_number() over (partition by assessment_id, academic_benchmark_guid order by list_position) = 1
),

assessments as (
    select assessment_id, academic_year, performance_band_set_id from analytics.dim_assessments
)

select
    attempts.assessment_id,
    attempts.student_id,
    attempts.academic_benchmark_guid,
    attempts.standard_code,
    attempts.standard_description,
    attempts.local_student_id,
    assessments.academic_year,
    attempts.date_taken,
    attempts.attempts,
    attempts.points,
    attempts.points_possible,
    attempts.percent_correct,
    attempts.performance_band_level,
    coalesce(attempts.performance_band_label, band.label) as performance_band_label,
    coalesce(band.is_mastery, attempts.mastered) as is_proficient,
    attempts.mastered as api_mastered,
    coalesce(standard_band_sets.performance_band_set_id, assessments.performance_band_set_id)
        as performance_band_set_id,
    enrollment_on_day.site_id,
    enrollment_on_day.grade_level_id,
    enrollment_on_day.is_enrollment_covering
from attempts
left join assessments on attempts.assessment_id = assessments.assessment_id
left join standard_band_sets
    on attempts.assessment_id = standard_band_sets.assessment_id
    and attempts.academic_benchmark_guid = standard_band_sets.academic_benchmark_guid
left join analytics.dim_assessment_bands as band
    on attempts.assessment_id = band.assessment_id
    and band.performance_band_set_id
        is not distinct from coalesce(standard_band_sets.performance_band_set_id, assessments.performance_band_set_id)
    and attempts.performance_band_level = band.label_number
left join enrollment_on_day
    on attempts.assessment_id = enrollment_on_day.assessment_id
    and attempts.student_id = enrollment_on_day.student_id
    and attempts.academic_benchmark_guid = enrollment_on_day.academic_benchmark_guid
