-- stg_assessment_view__performance_band_sets__performance_bands: the bands of each band set of each View document.
-- Grain: one row per assessment, band set and band. Key: (assessment_id, performance_band_set_id, label_number).
-- minimum_value is the lowest percent correct of the band; is_mastery marks the bands that count as proficient.
select
    band_set.assessment_id,
    band_set.performance_band_set_id,
    band.label_number,
    null_if_blank(band.label) as label,
    band.minimum_value,
    null_if_blank(band.color) as color,
    band.is_mastery,
    band._dlt_list_idx as list_position
from illuminate.assessment_view__performance_band_sets__performance_bands as band
inner join (
    select cast(view_document.assessment_id as bigint) as assessment_id, parent.performance_band_set_id, parent._dlt_id
    from illuminate.assessment_view__performance_band_sets as parent
    inner join illuminate.assessment_view as view_document on parent._dlt_parent_id = view_document._dlt_id
) as band_set
    on band._dlt_parent_id = band_set._dlt_id
