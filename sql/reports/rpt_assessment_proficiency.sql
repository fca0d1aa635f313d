-- rpt_assessment_proficiency: proficiency per assessment, school and grade (latest attempts only).
-- Grain: one row per assessment, site and grade level. Key: (assessment_id, site_id, grade_level_id).
-- Site and grade: where the student was enrolled on date_taken (fct_assessment_results), so a student who changed
-- schools counts at the school of that day. students_tested: students with a result; students_proficient: results
-- in a mastery band; proficiency_rate = students_proficient / students_tested; avg_percent_correct: mean percent
-- correct; students_band_1 .. students_band_6: students per band level (label_number); band_counts: JSON object
-- band label -> students, for any number of bands.
with results as (
    select * from analytics.fct_assessment_results
),

per_band as (
    select
        assessment_id,
        site_id,
        grade_level_id,
        performance_band_level,
        coalesce(performance_band_label, cast(performance_band_level as varchar), 'no band') as band_label,
        count(*) as students
    from results
    group by all
),

band_json as (
    select
        assessment_id,
        site_id,
        grade_level_id,
        cast(json_group_object(band_label, students) as varchar) as band_counts
    from per_band
    group by all
),

totals as (
    select
        assessment_id,
        site_id,
        grade_level_id,
        count(*) as students_tested,
        count(*) filter (where is_proficient) as students_proficient,
        avg(percent_correct) as avg_percent_correct,
        count(*) filter (where performance_band_level = 1) as students_band_1,
        count(*) filter (where performance_band_level = 2) as students_band_2,
        count(*) filter (where performance_band_level = 3) as students_band_3,
        count(*) filter (where performance_band_level = 4) as students_band_4,
        count(*) filter (where performance_band_level = 5) as students_band_5,
        count(*) filter (where performance_band_level = 6) as students_band_6
    from results
    group by all
)

select
    totals.assessment_id,
    totals.site_id,
    totals.grade_level_id,
    assessments.title,
    assessments.subject,
    assessments.scope,
    assessments.academic_year,
    sites.site_name,
    grades.short_name as grade,
    grades.grade_order,
    totals.students_tested,
    totals.students_proficient,
    totals.students_proficient / totals.students_tested as proficiency_rate,
    totals.avg_percent_correct,
    totals.students_band_1,
    totals.students_band_2,
    totals.students_band_3,
    totals.students_band_4,
    totals.students_band_5,
    totals.students_band_6,
    band_json.band_counts
from totals
left join band_json
    on totals.assessment_id = band_json.assessment_id
    and totals.site_id is not distinct from band_json.site_id
    and totals.grade_level_id is not distinct from band_json.grade_level_id
left join analytics.dim_assessments as assessments on totals.assessment_id = assessments.assessment_id
left join analytics.dim_sites as sites on totals.site_id = sites.site_id
left join analytics.dim_grade_levels as grades on totals.grade_level_id = grades.grade_level_id
