-- dim_assessments: assessments (Assessments) with what their View document adds: academic year, administration
-- date and the performance band set their overall scores are reported with, with its bands.
-- Grain: one row per assessment. Key: assessment_id.
-- Also holds assessments referenced only by results (is_in_assessments = false).
-- academic_year: the View's academic year, else the school year of administered_at, else of created_at
-- (school years start on 1 August and are named by their ending year).
-- performance_band_set_id: the set the View's assessment names, else the document's first set.
-- bands: "level label (minimum%+)" per band, lowest first, "*" marking mastery bands;
-- mastery_minimum_percent / mastery_minimum_level: the lowest mastery band.
-- grade_levels: the Assessments list of grade short names ("K, 1, 2"); grade_level_ids: the matching ids.
with assessments as (
    select *
    from analytics.stg_assessments
    where assessment_id is not null
    qualify row_number() over (partition by assessment_id order by _dlt_load_id desc) = 1
),

view_documents as (
    select *
    from analytics.stg_assessment_view
    where assessment_id is not null
    qualify row_number() over (partition by assessment_id order by _dlt_load_id desc) = 1
),

referenced as (
    select assessment_id from assessments
    union
    select assessment_id from view_documents
    union
    select assessment_id from analytics.stg_assessment_aggregate_student_responses where assessment_id is not null
),

band_sets as (
    select
        band_set.assessment_id,
        band_set.performance_band_set_id,
        band_set.description,
        row_number() over (
            partition by band_set.assessment_id
            order by
                (band_set.performance_band_set_id is not distinct from view_documents.performance_band_set_id) desc,
                band_set.list_position
        ) as set_rank
    from analytics.stg_assessment_view__performance_band_sets as band_set
    left join view_documents on band_set.assessment_id = view_documents.assessment_id
),

chosen_set as (
    select assessment_id, performance_band_set_id, description from band_sets where set_rank = 1
),

band_summary as (
    select
        bands.assessment_id,
        count(*) as band_count,
        string_agg(
            concat(bands.label_number, ' ', bands.label, ' (',
                -- the minimum as DuckDB writes a DOUBLE ("80.0"), spelled out for PostgreSQL, which writes "80"
                case
                    when bands.minimum_value = trunc(bands.minimum_value) and abs(bands.minimum_value) < 1e16
                        then concat(cast(cast(bands.minimum_value as bigint) as varchar), '.0')
                    else cast(bands.minimum_value as varchar)
                end,
                '%+)', case when bands.is_mastery then '*' else '' end),
            ', ' order by bands.minimum_value, bands.label_number
        ) as bands,
        min(bands.minimum_value) filter (where bands.is_mastery) as mastery_minimum_percent,
        min(bands.label_number) filter (where bands.is_mastery) as mastery_minimum_level
    from analytics.stg_assessment_view__performance_band_sets__performance_bands as bands
    inner join chosen_set
        on bands.assessment_id = chosen_set.assessment_id
        and bands.performance_band_set_id is not distinct from chosen_set.performance_band_set_id
    group by bands.assessment_id
),

grade_names as (
    select
        assessments.assessment_id,
        trim(grade_name.name) as short_name,
        grade_name.position
    from assessments
    cross join unnest(string_split(assessments.grade_levels, ',')) with ordinality as grade_name(name, position)
),

grade_ids as (
    select
        grade_names.assessment_id,
        string_agg(cast(grades.grade_level_id as varchar), ', ' order by grades.grade_order) as grade_level_ids,
        arg_min(grades.grade_level_id, grades.grade_order) as lowest_grade_level_id
    from grade_names
    inner join analytics.stg_grade_levels as grades on upper(grade_names.short_name) = upper(grades.short_name)
    group by grade_names.assessment_id
),

view_grades as (
    select assessment_id, string_agg(grade_short_name, ', ' order by list_position) as grade_levels
    from analytics.stg_assessment_view__assessment__grade_levels
    group by assessment_id
),

result_titles as (
    select assessment_id, max(title) as title
    from analytics.stg_assessment_aggregate_student_responses
    group by assessment_id
)

select
    referenced.assessment_id,
    assessments.local_assessment_id,
    coalesce(assessments.title, view_documents.title, result_titles.title) as title,
    coalesce(assessments.description, view_documents.description) as description,
    assessments.subject_id,
    coalesce(assessments.subject, view_documents.subject_area) as subject,
    assessments.scope_id,
    coalesce(assessments.scope, view_documents.scope) as scope,
    coalesce(assessments.grade_levels, view_grades.grade_levels) as grade_levels,
    grade_ids.grade_level_ids,
    grade_ids.lowest_grade_level_id,
    coalesce(
        view_documents.academic_year,
        year(view_documents.administered_at) + case when month(view_documents.administered_at) >= 8 then 1 else 0 end,
        year(assessments.created_at) + case when month(assessments.created_at) >= 8 then 1 else 0 end
    ) as academic_year,
    view_documents.administered_at,
    assessments.author_id,
    assessments.district_author_id,
    concat_ws(' ', assessments.author_first, assessments.author_last) as author_name,
    assessments.created_at,
    assessments.updated_at,
    chosen_set.performance_band_set_id,
    chosen_set.description as performance_band_set,
    band_summary.band_count,
    band_summary.bands,
    band_summary.mastery_minimum_percent,
    band_summary.mastery_minimum_level,
    view_documents.assessment_id is not null as has_view_document,
    assessments.assessment_id is not null as is_in_assessments
from referenced
left join assessments on referenced.assessment_id = assessments.assessment_id
left join view_documents on referenced.assessment_id = view_documents.assessment_id
left join chosen_set on referenced.assessment_id = chosen_set.assessment_id
left join band_summary on referenced.assessment_id = band_summary.assessment_id
left join grade_ids on referenced.assessment_id = grade_ids.assessment_id
left join view_grades on referenced.assessment_id = view_grades.assessment_id
left join result_titles on referenced.assessment_id = result_titles.assessment_id
