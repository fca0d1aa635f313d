-- stg_assessments: the raw `Assessments` rows (table illuminate.assessments), one view row per raw row.
-- Grain: one row per API record. Natural key: (assessment_id), as declared in the endpoint catalog.
-- Cleaning: the API's literal "NULL" and empty strings become NULL; dates outside 1900-2100 become NULL.
select
    cast(assessment_id as bigint) as assessment_id,
    case when trim(local_assessment_id) in ('', 'NULL', 'null') then null else local_assessment_id end as local_assessment_id,
    case when trim(title) in ('', 'NULL', 'null') then null else title end as title,
    case when trim(description) in ('', 'NULL', 'null') then null else description end as description,
    cast(author_id as bigint) as author_id,
    case when trim(district_author_id) in ('', 'NULL', 'null') then null else district_author_id end as district_author_id,
    case when trim(author_first) in ('', 'NULL', 'null') then null else author_first end as author_first,
    case when trim(author_last) in ('', 'NULL', 'null') then null else author_last end as author_last,
    case when created_at between timestamp '1900-01-01' and timestamp '2100-12-31' then created_at end as created_at,
    case when updated_at between timestamp '1900-01-01' and timestamp '2100-12-31' then updated_at end as updated_at,
    cast(scope_id as bigint) as scope_id,
    case when trim(scope) in ('', 'NULL', 'null') then null else scope end as scope,
    cast(subject_id as bigint) as subject_id,
    case when trim(subject) in ('', 'NULL', 'null') then null else subject end as subject,
    case when trim(grade_levels) in ('', 'NULL', 'null') then null else grade_levels end as grade_levels,
    _dlt_load_id
from illuminate.assessments
