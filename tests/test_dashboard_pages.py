"""The dashboard's pages without a browser: captions, suppression carried into the charts, figures against the
marts, and student names (only where the warehouse keeps them, never under `--pii hash` or `exclude`)."""

from __future__ import annotations

import io
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest
from model_support import MODELS_TODAY, ModelWarehouse
from sync_support import simulator_env

from illuminate_sync.pipelines.dashboard import DashboardSettings, build_dashboard
from illuminate_sync.pipelines.dashboard.pages import README_QUOTES, Context, chronic_section, enrollment_section
from illuminate_sync.pipelines.dashboard.queries import ChronicCell, EnrollmentCell, Marts
from illuminate_sync.pipelines.dashboard.render import SUPPRESSED, Section
from illuminate_sync.pipelines.models import ModelSettings, build_models
from illuminate_sync.pipelines.sync import run_sync
from illuminate_sync.pipelines.warehouse import open_warehouse
from illuminate_sync.simulator import Simulator, SimulatorConfig

SQL_README = Path(__file__).resolve().parents[1] / "sql" / "README.md"


def normalized(text: str) -> str:
    return " ".join(text.replace("**", "").split())


def test_every_caption_definition_is_in_sql_readme() -> None:
    readme = normalized(SQL_README.read_text())
    for definition in README_QUOTES:
        for phrase in definition.split("; "):
            assert normalized(phrase).rstrip(".") in readme, phrase


def chart_values(section: Section) -> dict[tuple[str, str], float | int | None]:
    assert section.chart is not None
    return {
        (trace["name"], category): value
        for trace in section.chart.data
        for category, value in zip(trace["x"], trace["y"])
    }


def table_cells(section: Section) -> dict[tuple[str, str], str]:
    assert section.table is not None
    columns = section.table.columns
    return {
        (row.cells[0].text, column): cell.text
        for row in section.table.rows
        for column, cell in zip(columns[1:], row.cells[1:])
    }


def context(min_cell_size: int) -> Context:
    return Context(min_cell_size, None, names_kept=False)


def test_charts_leave_out_exactly_the_suppressed_cells() -> None:
    """School x grade grids: a chart's bar is None where the table says suppressed, and shown where it does not."""
    cells = [
        ChronicCell(2027, 1, 10, "Lake", "K", 1, 4, 1),
        ChronicCell(2027, 1, 11, "Lake", "1", 2, 30, 3),
        ChronicCell(2027, 2, 10, "Hill", "K", 1, 40, 4),
        ChronicCell(2027, 2, 11, "Hill", "1", 2, 50, 5),
        ChronicCell(2027, None, 10, "District", "K", 1, 44, 5),
        ChronicCell(2027, None, 11, "District", "1", 2, 80, 8),
        ChronicCell(2027, 1, None, "Lake", "All grades", 9, 34, 4),
        ChronicCell(2027, 2, None, "Hill", "All grades", 9, 90, 9),
        ChronicCell(2027, None, None, "District", "All grades", 9, 124, 13),
    ]
    section = chronic_section(context(10), 2027, cells, "")
    values, table = chart_values(section), table_cells(section)
    assert table[("Lake", "K")] == SUPPRESSED
    suppressed = {key for key, text in table.items() if text == SUPPRESSED}
    # Lake K alone would be Lake's total minus Lake 1, and the district's K minus Hill K: both complements go too
    assert suppressed == {("Lake", "K"), ("Lake", "1"), ("Hill", "K"), ("Hill", "1")}
    for key, text in table.items():
        assert (values[key] is None) == (text in (SUPPRESSED, "—")), key
    enrollment = [
        EnrollmentCell(2027, site, name, grade_id, grade, order, None, count)
        for site, name, grade_id, grade, order, count in [
            (1, "Lake", 10, "K", 1, 3),
            (1, "Lake", 11, "1", 2, 25),
            (2, "Hill", 10, "K", 1, 30),
            (2, "Hill", 11, "1", 2, 31),
        ]
    ]
    section = enrollment_section(context(10), 2027, enrollment, current=True)
    suppressed = {key for key, text in table_cells(section).items() if text == SUPPRESSED}
    assert suppressed == {("Lake", "K"), ("Lake", "1"), ("Hill", "K"), ("Hill", "1")}
    # nothing left to draw: no chart, a note saying why (the totals stay in the table)
    assert section.chart is None and section.chart_note and "suppressed" in section.chart_note
    assert table_cells(section)[("District", "All grades")] == "89"


def test_figures_match_the_marts(models_warehouse: ModelWarehouse) -> None:
    warehouse = open_warehouse(models_warehouse.path)
    marts = Marts(warehouse, warehouse.model_dataset)
    cells = marts.chronic_cells()
    district = {
        year: (students, absent)
        for year, students, absent in models_warehouse.rows(
            "select academic_year, count(*) filter (where meets_min_days),"
            " count(*) filter (where is_chronically_absent)"
            " from analytics.agg_student_attendance where is_district_row group by all"
        )
    }
    for cell in cells:
        if cell.site_id is None and cell.grade_level_id is None:
            assert (cell.students, cell.chronically_absent) == district[cell.academic_year]
    # the trend's last month applies the rule to the whole year so far: the year's own figure
    trend = marts.monthly_chronic()
    for year, (students, absent) in district.items():
        last = max((m for m in trend if m.academic_year == year and m.site_id is None), key=lambda m: m.month)
        assert (last.students, last.chronically_absent) == (students, absent), year
    bins = marts.absence_bins()
    for year, (students, _) in district.items():
        assert sum(b.students for b in bins if b.academic_year == year) == students
    tested = dict(
        models_warehouse.rows("select assessment_id, count(*) from analytics.fct_assessment_results group by all")
    )
    by_assessment: dict[int, int] = {}
    for band in marts.band_counts():
        by_assessment[band.assessment_id] = by_assessment.get(band.assessment_id, 0) + band.students
    assert by_assessment == tested
    moves = marts.weekly_moves()
    snapshot = models_warehouse.rows(
        "select academic_year, sum(entries), sum(exits) from analytics.rpt_enrollment_snapshot group by all"
    )
    for year, entries, exits in snapshot:
        assert sum(m.entries for m in moves if m.academic_year == year) == entries
        assert sum(m.exits for m in moves if m.academic_year == year) == exits


# ------------------------------------------------------------------------------------------------------ names
PII_TABLES = ["sites", "grade_levels", "students", "enrollment", "attendance_daily", "attendance_flags", "terms"]
HASH_KEY = "dashboard-test-hash-key-51c3"


@pytest.fixture(scope="module")
def small_district() -> Iterator[Simulator]:
    simulator = Simulator(SimulatorConfig(students=40, seed=7, today=MODELS_TODAY))
    simulator.start(port=0)
    yield simulator
    simulator.stop()


def pii_warehouse(sim: Simulator, folder: Path, pii: str) -> Path:
    """The small district synced with `--pii <pii>` (the attendance tables only) and modelled."""
    db = folder / f"{pii}.duckdb"
    with simulator_env(sim, SOURCES__ILLUMINATE__PII_HASH_KEY=HASH_KEY):
        run_sync(
            db,
            resources=PII_TABLES,
            today=sim.today.isoformat(),
            out=io.StringIO(),
            build_models_after=False,
            academic_years_back=0,
            pii=pii,
        )
    build_models(db, out=io.StringIO(), settings=ModelSettings(today=MODELS_TODAY))
    return db


def site_text(db: Path, out: Path) -> str:
    warehouse = open_warehouse(db)
    build_dashboard(warehouse, warehouse.model_dataset, out, DashboardSettings(10), label=str(db))
    return "\n".join(path.read_text() for path in sorted(out.glob("*.html")))


def test_names_are_listed_only_where_the_warehouse_keeps_them(
    small_district: Simulator, models_warehouse: ModelWarehouse, tmp_path: Path
) -> None:
    absent = models_warehouse.rows(
        "select s.last_name || ', ' || s.first_name from analytics.agg_student_attendance as a"
        " join analytics.dim_students as s using (student_id) where a.is_district_row and a.is_chronically_absent"
    )
    assert absent, "the district has chronically absent students"
    html = site_text(models_warehouse.path, tmp_path / "keep-site")  # synced with --pii keep
    assert all(f"<td>{name}</td>" in html for (name,) in absent)
    clear = {
        value
        for row in small_district.query("Students", {"start_date": "2026-08-01", "end_date": "2026-11-27"})
        for value in (row.get("last_name"), row.get("first_name"))
        if value
    }
    for pii in ["hash", "exclude"]:
        db = pii_warehouse(small_district, tmp_path, pii)
        html = site_text(db, tmp_path / f"{pii}-site")
        assert "this warehouse holds no student names" in html, pii
        assert not [name for name in clear if f">{name}" in html or f"{name}<" in html or f", {name}" in html], pii
        with duckdb.connect(str(db), read_only=True) as con:
            stored = con.execute(
                "select last_name, first_name from analytics.dim_students where last_name is not null"
            ).fetchall()
        assert not [value for row in stored for value in row if value and value in html], pii
        if pii == "hash":
            assert stored and all(re.fullmatch(r"[0-9a-f]{32}", value) for row in stored for value in row if value)
        else:
            assert stored == []


def test_a_copy_with_names_hashed_afterwards_still_lists_none(models_warehouse: ModelWarehouse, tmp_path: Path) -> None:
    """Whatever the warehouse's history: one name that looks like `--pii hash`'s output turns the list off."""
    db = tmp_path / "mixed.duckdb"
    shutil.copy(models_warehouse.path, db)
    with duckdb.connect(str(db)) as con:
        con.execute("update analytics.dim_students set last_name = md5(last_name) where student_id % 7 = 0")
    html = site_text(db, tmp_path / "site")
    assert "this warehouse holds no student names" in html
