-- stg_assessments: the raw `Assessments` rows (table illuminate.assessments), one view row per raw row.
-- Grain: one row per API record. Natural key: (assessment_id), as declared in the endpoint catalog.
-- Cleaning: the API's literal "NULL" and empty strings become NULL; dates outside 1900-2100 become NULL.
select
    cast(assessment_id as bigint) as assessment_id,
    null_if_blank(local_assessment_id) as local_assessment_id,
    null_if_blank(title) as title,
    null_if_blank(description) as description,
    cast(author_id as bigint) as author_id,
    null_if_blank(district_author_id) as district_author_id,
    null_if_blank(author_first) as author_first,
    null_if_blank(author_last) as author_last,
    case when created_at between timestamp '1900-01-01' and timestamp '2100-12-31' then created_at end as created_at,
    case when updated_at between timestamp '1900-01-01' and timestamp '2100-12-31' then updated_at end as updated_at,
    cast(scope_id as bigint) as scope_id,
    null_if_blank(scope) as scope,
    cast(subject_id as bigint) as subject_id,
    null_if_blank(subject) as subject,
    null_if_blank(grade_levels) as grade_levels,
    _dlt_load_id
from illuminate.assessments
