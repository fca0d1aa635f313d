-- stg_master_schedule: the raw `MasterSchedule` rows (table illuminate.master_schedule), one view row per raw row.
-- Grain: one row per API record. Natural key: (section_id, user_id), as declared in the endpoint catalog.
-- Cleaning: the API's literal "NULL" and empty strings become NULL; dates outside 1900-2100 become NULL.
select
    cast(section_id as bigint) as section_id,
    case when trim(district_section_id) in ('', 'NULL', 'null') then null else district_section_id end as district_section_id,
    cast(site_id as bigint) as site_id,
    cast(term_id as bigint) as term_id,
    case when trim(term_name) in ('', 'NULL', 'null') then null else term_name end as term_name,
    cast(course_id as bigint) as course_id,
    cast(user_id as bigint) as user_id,
    case when trim(period) in ('', 'NULL', 'null') then null else period end as period,
    cast(academic_year as bigint) as academic_year,
    case when trim(room_number) in ('', 'NULL', 'null') then null else room_number end as room_number,
    cast(session_type_id as bigint) as session_type_id,
    case when trim(district_term_id) in ('', 'NULL', 'null') then null else district_term_id end as district_term_id,
    cast(quarter_num as bigint) as quarter_num,
    case when user_start_date between date '1900-01-01' and date '2100-12-31' then user_start_date end as user_start_date,
    case when user_end_date between date '1900-01-01' and date '2100-12-31' then user_end_date end as user_end_date,
    cast(primary_teacher as boolean) as primary_teacher,
    case when trim(section_name) in ('', 'NULL', 'null') then null else section_name end as section_name,
    case when trim(hqtcc) in ('', 'NULL', 'null') then null else hqtcc end as hqtcc,
    _academic_year,
    _dlt_load_id
from illuminate.master_schedule
