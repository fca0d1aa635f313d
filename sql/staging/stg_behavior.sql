-- stg_behavior: the raw `Behavior` rows (table illuminate.behavior), one view row per raw row.
-- Grain: one row per API record. Natural key: (student_id, incident_unique_id, site_id), as declared in the endpoint catalog.
-- Cleaning: the API's literal "NULL" and empty strings become NULL; dates outside 1900-2100 become NULL.
select
    cast(site_id as bigint) as site_id,
    case when enrollment_start_date between date '1900-01-01' and date '2100-12-31' then enrollment_start_date end as enrollment_start_date,
    case when enrollment_end_date between date '1900-01-01' and date '2100-12-31' then enrollment_end_date end as enrollment_end_date,
    cast(student_id as bigint) as student_id,
    case when trim(district_student_id) in ('', 'NULL', 'null') then null else district_student_id end as district_student_id,
    case when trim(state_student_id) in ('', 'NULL', 'null') then null else state_student_id end as state_student_id,
    case when trim(incident_type) in ('', 'NULL', 'null') then null else incident_type end as incident_type,
    case when trim(incident_unique_id) in ('', 'NULL', 'null') then null else incident_unique_id end as incident_unique_id,
    case when incident_occurrence_date between date '1900-01-01' and date '2100-12-31' then incident_occurrence_date end as incident_occurrence_date,
    case when trim(action_authority_code) in ('', 'NULL', 'null') then null else action_authority_code end as action_authority_code,
    case when trim(action_taken_code) in ('', 'NULL', 'null') then null else action_taken_code end as action_taken_code,
    case when trim(primary_offense) in ('', 'NULL', 'null') then null else primary_offense end as primary_offense,
    case when trim(second_offense) in ('', 'NULL', 'null') then null else second_offense end as second_offense,
    case when trim(third_offense) in ('', 'NULL', 'null') then null else third_offense end as third_offense,
    case when trim(most_severe_offense_code) in ('', 'NULL', 'null') then null else most_severe_offense_code end as most_severe_offense_code,
    cast(duration_days as bigint) as duration_days,
    case when trim(instructional_support_indicator) in ('', 'NULL', 'null') then null else instructional_support_indicator end as instructional_support_indicator,
    case when trim(weapon_category_code) in ('', 'NULL', 'null') then null else weapon_category_code end as weapon_category_code,
    case when trim(modification_category_code) in ('', 'NULL', 'null') then null else modification_category_code end as modification_category_code,
    case when trim(primary_disability_code) in ('', 'NULL', 'null') then null else primary_disability_code end as primary_disability_code,
    _academic_year,
    _dlt_load_id
from illuminate.behavior
