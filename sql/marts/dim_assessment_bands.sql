-- dim_assessment_bands: the performance bands of every band set of every assessment (from its View document).
-- Grain: one row per assessment, band set and band level. Key: (assessment_id, performance_band_set_id, label_number).
-- is_assessment_band_set: the set the assessment's overall score is reported with (see dim_assessments).
-- minimum_value: lowest percent correct of the band; maximum_value: the next band's minimum (NULL for the top band).
-- is_mastery: the band counts as proficient.
with bands as (
    select *
    from analytics.stg_assessment_view__performance_band_sets__performance_bands
    where assessment_id is not null and label_number is not null
    qualify row_number() over (
        partition by assessment_id, performance_band_set_id, label_number order by list_position
    ) = 1
),

assessments as (
    select assessment_id, performance_band_set_id from analytics.dim_assessments
)

select
    bands.assessment_id,
    bands.performance_band_set_id,
    bands.label_number,
    bands.label,
    bands.minimum_value,
    lead(bands.minimum_value) over (
        partition by bands.assessment_id, bands.performance_band_set_id order by bands.minimum_value
    ) as maximum_value,
    bands.color,
    coalesce(bands.is_mastery, false) as is_mastery,
    bands.performance_band_set_id is not distinct from assessments.performance_band_set_id as is_assessment_band_set
from bands
left join assessments on bands.assessment_id = assessments.assessment_id
