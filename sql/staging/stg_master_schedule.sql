-- stg_master_schedule: the raw `MasterSchedule` rows (table illuminate.master_schedule), one view row per raw row.
-- Grain: one row per API record. Natural key: (section_id, user_id), as declared in the endpoint catalog.
-- Cleaning: the API's literal "NULL" and empty strings become NULL; dates outside 1900-2100 become NULL.
select
    cast(section_id as bigint) as section_id,
    null_if_blank(district_section_id) as district_section_id,
    cast(site_id as bigint) as site_id,
    cast(term_id as bigint) as term_id,
    null_if_blank(term_name) as term_name,
    cast(course_id as bigint) as course_id,
    cast(user_id as bigint) as user_id,
    null_if_blank(period) as period,
    cast(academic_year as bigint) as academic_year,
    null_if_blank(room_number) as room_number,
    cast(session_type_id as bigint) as session_type_id,
    null_if_blank(district_term_id) as district_term_id,
    cast(quarter_num as bigint) as quarter_num,
    case when user_start_date between date '1900-01-01' and date '2100-12-31' then user_start_date end as user_start_date,
    case when user_end_date between date '1900-01-01' and date '2100-12-31' then user_end_date end as user_end_date,
    cast(primary_teacher as boolean) as primary_teacher,
    null_if_blank(section_name) as section_name,
    null_if_blank(hqtcc) as hqtcc,
    _academic_year,
    _dlt_load_id
from illuminate.master_schedule
