"""The dashboard's reads: aggregates of the marts, computed in SQL so that no student's row reaches the page.

Every query reads the model dataset (`analytics`, or `<dataset>_analytics` beside another raw dataset) through a
`Reader`: the warehouse's `fetch(query)`, which runs on a DuckDB file (read-only connection) or on a dlt destination
and answers [] when a relation does not exist yet. So an empty or half-built warehouse gives empty lists, which the
pages show as "no data yet".

The SQL is written once for DuckDB and PostgreSQL: no `group by all`, no `qualify`, no integer division (rates are
computed in Python from counts), literal values only. Numbers come back as int (PostgreSQL's sums are Decimal).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, NamedTuple, Protocol

import duckdb
from dlt.destinations.exceptions import DatabaseException

from illuminate_sync.pipelines.warehouse import quoted
from illuminate_sync.sources.illuminate.errors import IlluminateError


class Reader(Protocol):
    """What the dashboard needs of a warehouse: `pipelines.warehouse.Warehouse.fetch`."""

    def fetch(self, query: str) -> list[tuple[Any, ...]]: ...


HASHED_NAME = re.compile(r"[0-9a-f]{32}")
"""A name written by `--pii hash` (HMAC-SHA256 shortened to 128 bits, hex): `sources.illuminate.privacy`."""


def as_int(value: Any) -> int:
    return 0 if value is None else int(value)


def as_date(value: Any) -> date | None:
    """DuckDB's `date_trunc` answers a timestamp, PostgreSQL's too: the dashboard's weeks and months are dates."""
    if isinstance(value, datetime):
        return value.date()
    return value if isinstance(value, date) else None


# ------------------------------------------------------------------------------------------------------ results
class Settings(NamedTuple):
    today: date | None
    chronic_absence_threshold: float
    chronic_absence_min_days: int
    built_at: datetime | None


class ChronicCell(NamedTuple):
    """Chronic absenteeism of one year, school (None: the district) and grade (None: all grades)."""

    academic_year: int
    site_id: int | None
    grade_level_id: int | None
    site_name: str
    grade: str
    grade_order: int
    students: int
    chronically_absent: int


class MonthlyChronic(NamedTuple):
    """Year-to-date chronic absenteeism at the end of a month, for a school or the district (site_id None)."""

    academic_year: int
    site_id: int | None
    site_name: str
    month: date
    students: int
    chronically_absent: int


class AbsenceBin(NamedTuple):
    academic_year: int
    bin: int
    """0 .. 10: absence rates in [5 * bin %, 5 * (bin + 1) %), the last bin 50 % and more."""
    students: int


class AbsentStudent(NamedTuple):
    academic_year: int
    last_name: str | None
    first_name: str | None
    site_name: str | None
    grade: str | None
    days_enrolled: int
    days_absent: int


class ProficiencyCell(NamedTuple):
    """One row of rpt_assessment_proficiency, with its band counts by level."""

    academic_year: int
    assessment_id: int
    title: str
    site_id: int | None
    site_name: str
    grade_level_id: int | None
    grade: str
    grade_order: int
    students_tested: int
    students_proficient: int


class BandCount(NamedTuple):
    """Students of an assessment per band level (None: no band), for one student group key."""

    assessment_id: int
    level: int | None
    is_special_ed: bool
    programs: str | None
    students: int
    proficient: int


class Assessment(NamedTuple):
    assessment_id: int
    academic_year: int
    title: str
    subject: str | None
    scope: str | None
    bands: str | None


class BandLabel(NamedTuple):
    assessment_id: int
    level: int
    label: str
    is_mastery: bool


class Program(NamedTuple):
    code: str
    description: str | None


class EnrollmentCell(NamedTuple):
    academic_year: int
    site_id: int | None
    site_name: str
    grade_level_id: int | None
    grade: str
    grade_order: int
    snapshot_date: date | None
    enrolled: int


class WeeklyMoves(NamedTuple):
    academic_year: int
    week: date
    entries: int
    exits: int


class SyncTable(NamedTuple):
    table_name: str
    endpoint: str | None
    strategy: str | None
    rows: int
    last_loaded_at: datetime | None
    days_since_load: int | None


class SyncRun(NamedTuple):
    run_id: str
    started_at: datetime | None
    finished_at: datetime | None
    seconds: float | None
    status: str | None
    error: str | None
    requests: int
    retries: int
    rows_written: int
    rows_removed: int
    quarantined: int
    findings: str | None


# ------------------------------------------------------------------------------------------------------ queries
@dataclass(frozen=True)
class Marts:
    """The model dataset of one warehouse, read through `reader`."""

    reader: Reader
    dataset: str

    def relation(self, name: str) -> str:
        return f"{quoted(self.dataset)}.{quoted(name)}"

    def rows(self, query: str) -> list[tuple[Any, ...]]:
        """`query` with `{name}` placeholders for the model relations it reads. A relation that does not exist gives
        []; one without the columns read (models built by an older version) fails in one line."""
        names = sorted(set(re.findall(r"\{(\w+)\}", query)))
        try:
            return self.reader.fetch(query.format(**{name: self.relation(name) for name in names}))
        except (duckdb.Error, DatabaseException) as error:
            reason = " ".join(str(error).split())[:300]
            raise IlluminateError(
                f"reading {', '.join(names)} of {self.dataset} failed ({reason}): rebuild the models with"
                " illuminate-sync models (they may be older than this version)"
            ) from None

    # -------------------------------------------------------------------- settings
    def settings(self) -> Settings | None:
        rows = self.rows("select today, chronic_absence_threshold, chronic_absence_min_days, built_at from {settings}")
        if not rows:
            return None
        today, threshold, min_days, built_at = rows[0]
        return Settings(as_date(today), float(threshold), as_int(min_days), built_at)

    # -------------------------------------------------------------------- attendance
    def chronic_cells(self) -> list[ChronicCell]:
        """rpt_chronic_absenteeism per school and grade (and its district rows), plus each school's and the
        district's all-grades figure from agg_student_attendance (a student counted once per school or district).
        Rows of an unknown grade count in the all-grades figures only (they are not a column of their own)."""
        by_grade = self.rows(
            "select academic_year, site_id, grade_level_id, site_name, grade, grade_order, students,"
            " chronically_absent from {rpt_chronic_absenteeism}"
            " where (site_id is not null or is_district_row) and grade_level_id is not null"
        )
        all_grades = self.rows(
            "select a.academic_year, a.site_id, s.site_name,"
            " count(case when a.meets_min_days then 1 end), count(case when a.is_chronically_absent then 1 end)"
            " from {agg_student_attendance} as a left join {dim_sites} as s on a.site_id = s.site_id"
            " where a.site_id is not null or a.is_district_row"
            " group by a.academic_year, a.site_id, s.site_name"
        )
        cells = [
            ChronicCell(
                as_int(year), site, grade_id, _site_label(site, site_name), grade or "?", as_int(order), *_ints(rest)
            )
            for year, site, grade_id, site_name, grade, order, *rest in by_grade
        ]
        cells += [
            ChronicCell(as_int(year), site, None, _site_label(site, site_name), "All grades", 1_000_000, *_ints(rest))
            for year, site, site_name, *rest in all_grades
        ]
        return cells

    def monthly_chronic(self) -> list[MonthlyChronic]:
        """Year to date at each month's end: `is_chronically_absent` (agg_student_attendance's rule and settings)
        applied to every student's days of membership up to the end of the month, per school and district-wide (a
        student who moved counted once, with all their days). A student stays counted in the months after they left."""
        rows = self.rows(
            """
            with per_month as (
                select academic_year, student_id, site_id,
                       cast(date_trunc('month', attendance_date) as date) as month_start,
                       count(*) as days_enrolled,
                       count(case when is_present then 1 end) as days_present
                from {fct_attendance_daily}
                where academic_year is not null
                group by academic_year, student_id, site_id, cast(date_trunc('month', attendance_date) as date)
            ),
            scoped as (
                select academic_year, student_id, coalesce(site_id, -1) as scope_id, month_start, days_enrolled,
                       days_present
                from per_month
                union all
                select academic_year, student_id, -2 as scope_id, month_start, sum(days_enrolled), sum(days_present)
                from per_month
                group by academic_year, student_id, month_start
            ),
            months as (
                select distinct academic_year, month_start from per_month
            ),
            firsts as (
                select academic_year, student_id, scope_id, min(month_start) as first_month
                from scoped
                group by academic_year, student_id, scope_id
            ),
            grid as (
                select f.academic_year, f.student_id, f.scope_id, m.month_start
                from firsts as f
                inner join months as m on m.academic_year = f.academic_year and m.month_start >= f.first_month
            ),
            cumulative as (
                select g.academic_year, g.scope_id, g.month_start,
                       sum(coalesce(s.days_enrolled, 0)) over (
                           partition by g.academic_year, g.student_id, g.scope_id order by g.month_start
                           rows between unbounded preceding and current row
                       ) as days_enrolled,
                       sum(coalesce(s.days_present, 0)) over (
                           partition by g.academic_year, g.student_id, g.scope_id order by g.month_start
                           rows between unbounded preceding and current row
                       ) as days_present
                from grid as g
                left join scoped as s
                    on s.academic_year = g.academic_year and s.student_id = g.student_id
                    and s.scope_id = g.scope_id and s.month_start = g.month_start
            )
            select c.academic_year, c.scope_id, sites.site_name, c.month_start,
                   count(case when c.days_enrolled >= settings.chronic_absence_min_days then 1 end),
                   count(case when c.days_enrolled >= settings.chronic_absence_min_days
                              and cast(c.days_enrolled - c.days_present as double precision) / c.days_enrolled
                                  >= settings.chronic_absence_threshold then 1 end)
            from cumulative as c
            cross join {settings} as settings
            left join {dim_sites} as sites on sites.site_id = c.scope_id
            group by c.academic_year, c.scope_id, sites.site_name, c.month_start
            """
        )
        trend = []
        for year, scope_id, site_name, month, students, absent in rows:
            site_id = None if scope_id == -2 else scope_id
            label = _site_label(site_id, site_name) if scope_id != -1 else "No school"
            trend.append(MonthlyChronic(as_int(year), site_id, label, as_date(month), as_int(students), as_int(absent)))
        return trend  # type: ignore[return-value]

    def absence_bins(self) -> list[AbsenceBin]:
        """District rows of students meeting the minimum days, by absence rate in 5-point bins (50 % and more last)."""
        rows = self.rows(
            "select academic_year, least(floor(cast(days_absent * 20 as double precision) / days_enrolled), 10)"
            " as bin, count(*) from {agg_student_attendance} where is_district_row and meets_min_days"
            " group by academic_year, least(floor(cast(days_absent * 20 as double precision) / days_enrolled), 10)"
        )
        return [AbsenceBin(as_int(year), as_int(bin_), as_int(students)) for year, bin_, students in rows]

    def chronically_absent_students(self) -> list[AbsentStudent]:
        """The students over the threshold, district-wide, with their current school: only called when the
        warehouse keeps names (`names_kept`)."""
        rows = self.rows(
            "select a.academic_year, s.last_name, s.first_name, site.site_name, g.short_name, a.days_enrolled,"
            " a.days_absent from {agg_student_attendance} as a"
            " inner join {dim_students} as s on s.student_id = a.student_id"
            " left join {dim_sites} as site on site.site_id = s.current_site_id"
            " left join {dim_grade_levels} as g on g.grade_level_id = a.grade_level_id"
            " where a.is_district_row and a.is_chronically_absent"
            " order by a.academic_year desc, cast(a.days_absent as double precision) / a.days_enrolled desc,"
            " s.last_name, s.first_name"
        )
        return [
            AbsentStudent(as_int(year), last, first, site, grade, as_int(enrolled), as_int(absent))
            for year, last, first, site, grade, enrolled, absent in rows
        ]

    def names_kept(self) -> bool:
        """Whether dim_students holds names as people wrote them: not under `--pii exclude` (the name columns are
        NULL, never loaded) nor `--pii hash` (every name is a 32-digit hex hash). Decided from a sample of names:
        one hash is enough to say no, since a warehouse keeps one PII mode."""
        rows = self.rows(
            "select last_name, first_name from {dim_students}"
            " where last_name is not null or first_name is not null limit 200"
        )
        if not rows:
            return False
        return not any(HASHED_NAME.fullmatch(str(name or "")) for row in rows for name in row)

    # -------------------------------------------------------------------- assessments
    def assessments(self) -> list[Assessment]:
        rows = self.rows(
            "select assessment_id, academic_year, title, subject, scope, bands from {dim_assessments}"
            " where academic_year is not null"
        )
        return [
            Assessment(as_int(aid), as_int(year), title or f"Assessment {aid}", subject, scope, bands)
            for aid, year, title, subject, scope, bands in rows
        ]

    def proficiency_cells(self) -> list[ProficiencyCell]:
        rows = self.rows(
            "select academic_year, assessment_id, title, site_id, site_name, grade_level_id, grade, grade_order,"
            " students_tested, students_proficient from {rpt_assessment_proficiency} where academic_year is not null"
        )
        return [
            ProficiencyCell(
                as_int(year),
                as_int(aid),
                title or f"Assessment {aid}",
                site,
                site_name or "Unknown school",
                grade_id,
                grade or "?",
                as_int(order),
                as_int(tested),
                as_int(proficient),
            )
            for year, aid, title, site, site_name, grade_id, grade, order, tested, proficient in rows
        ]

    def band_counts(self) -> list[BandCount]:
        """Students per assessment, band level and student-group key (special education, programs today), from the
        latest attempts (fct_assessment_results) and dim_students."""
        rows = self.rows(
            "select r.assessment_id, r.performance_band_level, coalesce(s.is_special_ed, false), s.programs,"
            " count(*), count(case when r.is_proficient then 1 end)"
            " from {fct_assessment_results} as r left join {dim_students} as s on s.student_id = r.student_id"
            " group by r.assessment_id, r.performance_band_level, coalesce(s.is_special_ed, false), s.programs"
        )
        return [
            BandCount(as_int(aid), None if level is None else int(level), bool(sped), programs, *_ints((n, p)))
            for aid, level, sped, programs, n, p in rows
        ]

    def band_labels(self) -> list[BandLabel]:
        rows = self.rows(
            "select assessment_id, label_number, label, is_mastery from {dim_assessment_bands}"
            " where is_assessment_band_set"
        )
        return [
            BandLabel(as_int(aid), as_int(level), label or "", bool(mastery)) for aid, level, label, mastery in rows
        ]

    def programs(self) -> list[Program]:
        rows = self.rows(
            "select program_code, min(program_description) from {stg_program_code}"
            " where program_code is not null group by program_code"
        )
        return [Program(str(code), description) for code, description in rows]

    # -------------------------------------------------------------------- enrollment
    def enrollment_cells(self) -> list[EnrollmentCell]:
        rows = self.rows(
            "select academic_year, site_id, site_name, grade_level_id, grade, grade_order, snapshot_date, enrolled"
            " from {rpt_enrollment_snapshot}"
        )
        return [
            EnrollmentCell(
                as_int(year),
                site,
                site_name or "Unknown school",
                grade_id,
                grade or "?",
                as_int(order),
                as_date(snapshot),
                as_int(enrolled),
            )
            for year, site, site_name, grade_id, grade, order, snapshot, enrolled in rows
        ]

    def weekly_moves(self) -> list[WeeklyMoves]:
        """Entries (spans started, up to the snapshot date) and exits (spans ended before the year's last day, up to
        the snapshot date) per week (weeks start on Monday), with rpt_enrollment_snapshot's dates per year."""
        rows = self.rows(
            """
            with years as (
                select distinct academic_year, snapshot_date, year_end_date from {rpt_enrollment_snapshot}
            ),
            moves as (
                select e.academic_year, cast(date_trunc('week', e.entry_date) as date) as week_start, 1 as entry,
                       0 as exit_
                from {fct_enrollments} as e
                inner join years as y on y.academic_year = e.academic_year
                where e.entry_date <= y.snapshot_date
                union all
                select e.academic_year, cast(date_trunc('week', e.leave_date) as date), 0, 1
                from {fct_enrollments} as e
                inner join years as y on y.academic_year = e.academic_year
                where e.leave_date < y.year_end_date and e.leave_date <= y.snapshot_date
            )
            select academic_year, week_start, sum(entry), sum(exit_)
            from moves
            group by academic_year, week_start
            """
        )
        return [WeeklyMoves(as_int(year), as_date(week), *_ints(rest)) for year, week, *rest in rows]  # type: ignore[arg-type]

    # -------------------------------------------------------------------- sync health
    def sync_tables(self) -> list[SyncTable]:
        rows = self.rows(
            'select table_name, endpoint, strategy, "rows", last_loaded_at, days_since_load from {rpt_sync_tables}'
            " order by table_name"
        )
        return [
            SyncTable(str(name), endpoint, strategy, as_int(count), loaded, None if days is None else int(days))
            for name, endpoint, strategy, count, loaded, days in rows
        ]

    def sync_runs(self, limit: int = 30) -> list[SyncRun]:
        """The last `limit` runs, newest first."""
        rows = self.rows(
            "select run_id, started_at, finished_at, seconds, status, error, requests, retries, rows_written,"
            f" rows_removed, quarantined, findings from {{rpt_sync_runs}} order by started_at desc limit {int(limit)}"
        )
        return [sync_run(row) for row in rows]

    def last_findings(self) -> SyncRun | None:
        """The newest run that left shrink-guard or reconciliation findings."""
        rows = self.rows(
            "select run_id, started_at, finished_at, seconds, status, error, requests, retries, rows_written,"
            " rows_removed, quarantined, findings from {rpt_sync_runs} where findings is not null"
            " order by started_at desc limit 1"
        )
        if not rows:
            return None
        return sync_run(rows[0])


def sync_run(row: Sequence[Any]) -> SyncRun:
    run_id, started, finished, seconds, status, error, *counts, findings = row
    duration = None if seconds is None else float(seconds)
    return SyncRun(str(run_id), started, finished, duration, status, error, *_ints(counts), findings)


def _ints(values: Sequence[Any]) -> tuple[int, ...]:
    return tuple(as_int(value) for value in values)


def _site_label(site_id: Any, site_name: str | None) -> str:
    if site_id is None:
        return "District"
    return site_name or f"School {site_id}"
