-- stg_terms: the raw `Terms` rows (table illuminate.terms), one view row per raw row.
-- Grain: one row per API record. Natural key: (term_id), as declared in the endpoint catalog.
-- Cleaning: the API's literal "NULL" and empty strings become NULL; dates outside 1900-2100 become NULL.
select
    cast(term_id as bigint) as term_id,
    cast(site_id as bigint) as site_id,
    case when trim(term_name) in ('', 'NULL', 'null') then null else term_name end as term_name,
    cast(term_num as bigint) as term_num,
    case when start_date between date '1900-01-01' and date '2100-12-31' then start_date end as start_date,
    case when end_date between date '1900-01-01' and date '2100-12-31' then end_date end as end_date,
    case when trim(term_type) in ('', 'NULL', 'null') then null else term_type end as term_type,
    cast(session_type_id as bigint) as session_type_id,
    case when trim(session_type) in ('', 'NULL', 'null') then null else session_type end as session_type,
    cast(academic_year as bigint) as academic_year,
    case when trim(district_term_id) in ('', 'NULL', 'null') then null else district_term_id end as district_term_id,
    _academic_year,
    _dlt_load_id
from illuminate.terms
