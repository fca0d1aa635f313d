-- stg_terms: the raw `Terms` rows (table illuminate.terms), one view row per raw row.
-- Grain: one row per API record. Natural key: (term_id), as declared in the endpoint catalog.
-- Cleaning: the API's literal "NULL" and empty strings become NULL; dates outside 1900-2100 become NULL.
select
    cast(term_id as bigint) as term_id,
    cast(site_id as bigint) as site_id,
    null_if_blank(term_name) as term_name,
    cast(term_num as bigint) as term_num,
    case when start_date between date '1900-01-01' and date '2100-12-31' then start_date end as start_date,
    case when end_date between date '1900-01-01' and date '2100-12-31' then end_date end as end_date,
    null_if_blank(term_type) as term_type,
    cast(session_type_id as bigint) as session_type_id,
    null_if_blank(session_type) as session_type,
    cast(academic_year as bigint) as academic_year,
    null_if_blank(district_term_id) as district_term_id,
    _academic_year,
    _dlt_load_id
from illuminate.terms
