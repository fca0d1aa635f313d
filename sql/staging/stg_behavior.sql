-- stg_behavior: the raw `Behavior` rows (table illuminate.behavior), one view row per raw row.
-- Grain: one row per API record. Natural key: (student_id, incident_unique_id, site_id), as declared in the endpoint catalog.
-- Cleaning: the API's literal "NULL" and empty strings become NULL; dates outside 1900-2100 become NULL.
select
    cast(site_id as bigint) as site_id,
    case when enrollment_start_date between date '1900-01-01' and date '2100-12-31' then enrollment_start_date end as enrollment_start_date,
    case when enrollment_end_date between date '1900-01-01' and date '2100-12-31' then enrollment_end_date end as enrollment_end_date,
    cast(student_id as bigint) as student_id,
    null_if_blank(district_student_id) as district_student_id,
    null_if_blank(state_student_id) as state_student_id,
    null_if_blank(incident_type) as incident_type,
    null_if_blank(incident_unique_id) as incident_unique_id,
    case when incident_occurrence_date between date '1900-01-01' and date '2100-12-31' then incident_occurrence_date end as incident_occurrence_date,
    null_if_blank(action_authority_code) as action_authority_code,
    null_if_blank(action_taken_code) as action_taken_code,
    null_if_blank(primary_offense) as primary_offense,
    null_if_blank(second_offense) as second_offense,
    null_if_blank(third_offense) as third_offense,
    null_if_blank(most_severe_offense_code) as most_severe_offense_code,
    cast(duration_days as bigint) as duration_days,
    null_if_blank(instructional_support_indicator) as instructional_support_indicator,
    null_if_blank(weapon_category_code) as weapon_category_code,
    null_if_blank(modification_category_code) as modification_category_code,
    null_if_blank(primary_disability_code) as primary_disability_code,
    _academic_year,
    _dlt_load_id
from illuminate.behavior
