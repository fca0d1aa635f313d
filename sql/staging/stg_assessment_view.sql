-- stg_assessment_view: one row per assessment whose `Assessment/{id}/View` document was fetched
-- (illuminate.assessment_view), with the document's `assessment` object flattened by dlt (assessment__title, ...).
-- Grain: one row per assessment. Key: assessment_id.
-- Cleaning: "NULL"/empty strings become NULL; dates outside 1900-2100 and years outside 1900-2100 become NULL.
select
    cast(assessment_id as bigint) as assessment_id,
    exported_at,
    cast(version as bigint) as version,
    null_if_blank(assessment__title) as title,
    null_if_blank(assessment__description)
        as description,
    assessment__created_at as created_at,
    assessment__updated_at as updated_at,
    case when assessment__administered_at between date '1900-01-01' and date '2100-12-31'
        then assessment__administered_at end as administered_at,
    case when assessment__academic_year between 1900 and 2100 then assessment__academic_year end as academic_year,
    null_if_blank(assessment__guid) as guid,
    null_if_blank(assessment__tags) as tags,
    assessment__performance_band_set_id as performance_band_set_id,
    null_if_blank(assessment__subject_area)
        as subject_area,
    null_if_blank(assessment__scope) as scope,
    _dlt_id,
    _dlt_load_id
from illuminate.assessment_view as view_document
