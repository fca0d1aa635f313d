-- fct_assessment_results: each student's result on each assessment (AssessmentAggregateStudentResponses), latest
-- attempt only.
-- Grain: one row per assessment and student. Key: (assessment_id, student_id).
-- Students are identified by local_student_id in the API and mapped to student_id (int_student_ids); rows whose
-- local id matches no student are left out.
-- Retakes: the attempt with the latest date_taken is kept (attempts counts them, first_date_taken is the first).
-- performance_band_level / _label: as reported; is_proficient: the band is a mastery band of the assessment's band
-- set (dim_assessment_bands.is_mastery), else the API's `mastered` flag when the View document is missing.
-- site_id / grade_level_id: from the fct_enrollments span covering date_taken (preferring the primary-ADA span);
-- when none covers it, the latest span that started before (is_enrollment_covering = false).
with responses as (
    select
        ids.student_id,
        response.*
    from analytics.stg_assessment_aggregate_student_responses as response
    inner join analytics.int_student_ids as ids on trim(response.local_student_id) = ids.district_student_id
    where response.assessment_id is not null
),

attempts as (
    select
        *,
        count(*) over (partition by assessment_id, student_id) as attempts,
        min(date_taken) over (partition by assessment_id, student_id) as first_date_taken
    from responses
    qualify row_number() over (
        partition by assessment_id, student_id
        order by date_taken desc nulls last, percent_correct desc nulls last, version desc nulls last
    ) = 1
),

enrollment_on_day as (
    select
        attempts.assessment_id,
        attempts.student_id,
        enrollment.site_id,
        enrollment.grade_level_id,
        enrollment.entry_date as enrollment_entry_date,
        coalesce(enrollment.leave_date, date '9999-12-31') >= attempts.date_taken as is_enrollment_covering
    from attempts
    inner join analytics.fct_enrollments as enrollment
        on attempts.student_id = enrollment.student_id
        and enrollment.entry_date <= attempts.date_taken
    qualify row_number() over (
        partition by attempts.assessment_id, attempts.student_id
        order by
            (coalesce(enrollment.leave_date, date '9999-12-31') >= attempts.date_taken) desc,
            coalesce(enrollment.is_primary_ada, false) desc,
            enrollment.entry_date desc,
            enrollment.site_id
    ) = 1
),

assessments as (
    select assessment_id, academic_year, performance_band_set_id from analytics.dim_assessments
)

select
    attempts.assessment_id,
    attempts.student_id,
    attempts.local_student_id,
    assessments.academic_year,
    attempts.date_taken,
    attempts.first_date_taken,
    attempts.attempts,
    attempts.version,
    attempts.version_label,
    attempts.points,
    attempts.points_possible,
    attempts.percent_correct,
    attempts.performance_band_level,
    coalesce(attempts.performance_band_label, band.label) as performance_band_label,
    coalesce(band.is_mastery, attempts.mastered) as is_proficient,
    attempts.mastered as api_mastered,
    enrollment_on_day.site_id,
    enrollment_on_day.grade_level_id,
    enrollment_on_day.enrollment_entry_date,
    enrollment_on_day.is_enrollment_covering
from attempts
left join assessments on attempts.assessment_id = assessments.assessment_id
left join analytics.dim_assessment_bands as band
    on attempts.assessment_id = band.assessment_id
    and band.performance_band_set_id is not distinct from assessments.performance_band_set_id
    and attempts.performance_band_level = band.label_number
left join enrollment_on_day
    on attempts.assessment_id = enrollment_on_day.assessment_id
    and attempts.student_id = enrollment_on_day.student_id
