-- stg_assessment_aggregate_student_responses_standard: the raw `AssessmentAggregateStudentResponsesStandard` rows (table illuminate.assessment_aggregate_student_responses_standard), one view row per raw row.
-- Grain: one row per API record. Natural key: (assessment_id, local_student_id, date_taken, academic_benchmark_guid), as declared in the endpoint catalog.
-- Cleaning: the API's literal "NULL" and empty strings become NULL; dates outside 1900-2100 become NULL.
select
    cast(assessment_id as bigint) as assessment_id,
    null_if_blank(title) as title,
    null_if_blank(local_student_id) as local_student_id,
    null_if_blank(first_name) as first_name,
    null_if_blank(last_name) as last_name,
    null_if_blank(middle_name) as middle_name,
    null_if_blank(academic_benchmark_guid) as academic_benchmark_guid,
    null_if_blank(standard_code) as standard_code,
    null_if_blank(standard_description) as standard_description,
    case when try_cast(left(trim(cast(date_taken as varchar)), 10) as date)
        between date '1900-01-01' and date '2100-12-31'
        then try_cast(left(trim(cast(date_taken as varchar)), 10) as date) end as date_taken,
    cast(points as double) as points,
    cast(points_possible as double) as points_possible,
    cast(percent_correct as double) as percent_correct,
    cast(performance_band_level as bigint) as performance_band_level,
    null_if_blank(performance_band_label) as performance_band_label,
    cast(mastered as boolean) as mastered,
    _dlt_load_id
from illuminate.assessment_aggregate_student_responses_standard
