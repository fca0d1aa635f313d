-- stg_pool_assessment_aggregate_student_responses_standard: the raw `PoolAssessmentAggregateStudentResponsesStandard` rows (table illuminate.pool_assessment_aggregate_student_responses_standard), one view row per raw row.
-- Grain: one row per API record. Natural key: (pool_assessment_id, local_student_id, date_taken, academic_benchmark_guid), as declared in the endpoint catalog.
-- Cleaning: the API's literal "NULL" and empty strings become NULL; dates outside 1900-2100 become NULL.
select
    cast(pool_assessment_id as bigint) as pool_assessment_id,
    case when trim(title) in ('', 'NULL', 'null') then null else title end as title,
    case when trim(local_student_id) in ('', 'NULL', 'null') then null else local_student_id end as local_student_id,
    case when trim(first_name) in ('', 'NULL', 'null') then null else first_name end as first_name,
    case when trim(last_name) in ('', 'NULL', 'null') then null else last_name end as last_name,
    case when trim(middle_name) in ('', 'NULL', 'null') then null else middle_name end as middle_name,
    case when trim(academic_benchmark_guid) in ('', 'NULL', 'null') then null else academic_benchmark_guid end as academic_benchmark_guid,
    case when trim(standard_code) in ('', 'NULL', 'null') then null else standard_code end as standard_code,
    case when trim(standard_description) in ('', 'NULL', 'null') then null else standard_description end as standard_description,
    case when try_cast(left(trim(cast(date_taken as varchar)), 10) as date)
        between date '1900-01-01' and date '2100-12-31'
        then try_cast(left(trim(cast(date_taken as varchar)), 10) as date) end as date_taken,
    cast(points as double) as points,
    cast(points_possible as double) as points_possible,
    cast(percent_correct as double) as percent_correct,
    cast(performance_band_level as bigint) as performance_band_level,
    case when trim(performance_band_label) in ('', 'NULL', 'null') then null else performance_band_label end as performance_band_label,
    cast(mastered as boolean) as mastered,
    _dlt_load_id
from illuminate.pool_assessment_aggregate_student_responses_standard
