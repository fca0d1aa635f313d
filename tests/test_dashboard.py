"""`illuminate-sync dashboard`: the static site of the simulated district's marts, opened in headless Chromium.

Every page is opened from file:// with no server: no console error, no request leaving the site's directory, every
chart drawn by plotly with marks. Screenshots of every page opened go to test-artifacts/dashboard/ (git-ignored).
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest
from browser_support import OpenedPage, browser, clear_artifacts, open_page
from model_support import ModelWarehouse

from illuminate_sync.pipelines.cli import demo_dashboard_dir, main
from illuminate_sync.pipelines.dashboard.render import NO_DATA, SUPPRESSED

PAGES = ["index", "attendance", "assessments", "enrollment", "sync"]
ASSETS = ["plotly.min.js", "dashboard.css", "dashboard.js"]
CONTENT_PAGES = ["attendance", "assessments", "enrollment", "sync"]


def build(warehouse: Path, out: Path, *options: str) -> int:
    return main(["dashboard", "--duckdb", str(warehouse), "--out", str(out), *options])


@pytest.fixture(scope="module")
def chrome(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with browser(tmp_path_factory.mktemp("chromium-profile")) as context:
        yield context


@pytest.fixture(scope="module")
def site(models_warehouse: ModelWarehouse, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The dashboard of the simulated district (300 students) with the default minimum cell size (10)."""
    out = tmp_path_factory.mktemp("dashboard") / "site"
    assert build(models_warehouse.path, out) == 0
    return out


@pytest.fixture(scope="module")
def strict_site(models_warehouse: ModelWarehouse, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same with a minimum cell size of 25, which suppresses many of a 300-student district's cells."""
    out = tmp_path_factory.mktemp("dashboard-strict") / "site"
    assert build(models_warehouse.path, out, "--min-cell-size", "25") == 0
    return out


def open_all(chrome: Any, site: Path, folder: str, pages: list[str] = PAGES) -> dict[str, OpenedPage]:
    """Every page opened, checked for errors and requests, and photographed."""
    clear_artifacts(folder)
    opened = {}
    for name in pages:
        page = open_page(chrome, site / f"{name}.html")
        page.screenshot(folder, name)
        assert page.console_errors == [], (name, page.console_errors)
        outside = [url for url in page.requests if not url.startswith(site.resolve().as_uri() + "/")]
        assert outside == [], (name, outside)  # nothing from the network, nothing from elsewhere on disk
        opened[name] = page
    return opened


def assert_charts_drawn(page: OpenedPage, name: str) -> int:
    charts = [chart for chart in page.charts() if chart["visible"]]
    for chart in charts:
        assert chart["drawn"] and chart["svg"] > 0 and chart["marks"] > 0, (name, chart)
    return len(charts)


def test_every_page_opens_offline_with_every_chart_drawn(chrome: Any, site: Path) -> None:
    opened = open_all(chrome, site, "default")
    index = opened["index"].page
    links = {link for link in index.eval_on_selector_all("a", "links => links.map(a => a.getAttribute('href'))")}
    assert {f"{name}.html" for name in CONTENT_PAGES} <= links
    drawn = {name: assert_charts_drawn(page, name) for name, page in opened.items()}
    assert drawn["attendance"] >= 6 and drawn["assessments"] >= 3 and drawn["enrollment"] >= 4, drawn
    for name in CONTENT_PAGES:  # every chart comes with the table behind it
        page = opened[name].page
        sections = page.eval_on_selector_all(
            "section.block", "s => s.map(x => [x.id, !!x.querySelector('div.chart'), !!x.querySelector('table')])"
        )
        assert all(has_table for _, has_chart, has_table in sections if has_chart), sections
    # the site is self-contained: the script and the stylesheet are files of the directory
    assert (site / "plotly.min.js").stat().st_size > 1_000_000
    html = (site / "attendance.html").read_text()
    assert 'src="plotly.min.js"' in html and "http://" not in html and "https://" not in html


def test_a_suppressed_cell_reads_suppressed_and_is_not_drawn(chrome: Any, strict_site: Path) -> None:
    opened = open_all(chrome, strict_site, "min-cell-size-25", ["attendance", "assessments", "enrollment"])
    for name in ["attendance", "assessments", "enrollment"]:
        page = opened[name].page
        suppressed = page.eval_on_selector_all("td.suppressed", "cells => cells.map(c => c.textContent)")
        assert suppressed and set(suppressed) == {SUPPRESSED}, name
        assert_charts_drawn(opened[name], name)
    # no figure about 1..24 students is shown (rates say "of N"; the student list and sync health are not aggregates)
    for name in ["attendance", "assessments", "enrollment"]:
        for section, body in sections_of((strict_site / f"{name}.html").read_text()):
            if section.endswith("-students"):
                continue
            table = body.split('<div class="table-wrap">', 1)[-1]
            shown = [
                int(n.replace(",", "")) for n in re.findall(r"<td class=\"num\">(?:[\d.]+% of )?([\d,]+)</td>", table)
            ]
            assert not [n for n in shown if 0 < n < 25], (name, section)


def sections_of(html: str) -> list[tuple[str, str]]:
    return re.findall(r'<section class="block" id="([^"]+)">(.*?)</section>', html, flags=re.S)


def test_choosing_a_student_group_draws_its_charts(chrome: Any, site: Path) -> None:
    page = open_page(chrome, site / "assessments.html")
    select = page.page.locator("select.chooser").first
    options = select.locator("option").all_text_contents()
    assert options[0] == "Special education" and any(option.startswith("Program ") for option in options)
    select.select_option(label=options[-1])
    page.wait_for_charts()
    key = select.input_value()
    visible = page.page.eval_on_selector_all(
        f'.choice[data-choice="{key}"] div.chart', "charts => charts.filter(c => c.offsetParent !== null).length"
    )
    assert visible > 0
    assert_charts_drawn(page, "assessments")
    assert page.console_errors == []
    page.screenshot("default", "assessments-group")


def test_sync_health_shows_the_runs_the_sync_recorded(site: Path) -> None:
    sections = dict(sections_of((site / "sync.html").read_text()))
    for anchor in ["sync-tables", "sync-runs"]:
        assert NO_DATA not in sections[anchor], anchor
    assert "succeeded" in sections["sync-runs"] and "attendance_daily" in sections["sync-tables"]


def test_sync_health_says_no_data_yet_without_a_run_history(models_warehouse: ModelWarehouse, tmp_path: Path) -> None:
    warehouse = tmp_path / "warehouse.duckdb"
    shutil.copy(models_warehouse.path, warehouse)
    with duckdb.connect(str(warehouse)) as con:  # a warehouse built before the sync kept its runs
        con.execute("drop table analytics.rpt_sync_runs")
        con.execute("drop table analytics.rpt_sync_tables")
    assert build(warehouse, tmp_path / "site") == 0
    html = (tmp_path / "site" / "sync.html").read_text()
    for anchor in ["sync-tables", "sync-runs", "sync-findings"]:
        body = dict(sections_of(html))[anchor]
        assert f'<p class="no-data">{NO_DATA}</p>' in body, anchor


def test_sync_health_renders_the_run_history(chrome: Any, models_warehouse: ModelWarehouse, tmp_path: Path) -> None:
    warehouse = tmp_path / "warehouse.duckdb"
    shutil.copy(models_warehouse.path, warehouse)
    with duckdb.connect(str(warehouse)) as con:
        con.execute(
            "create or replace table analytics.rpt_sync_runs as select * from (values"
            " ('run-1', timestamp '2026-11-25 02:00:00', timestamp '2026-11-25 02:01:05', 65.0, 'succeeded', null,"
            "  1851, 3, 12000, 40, 0, null),"
            " ('run-2', timestamp '2026-11-26 02:00:00', timestamp '2026-11-26 02:00:09', 9.5, 'failed',"
            "  'the API returned 0 rows where the warehouse holds 1,234', 12, 0, 0, 0, 0,"
            "  'shrink guard: attendance_daily date 2026-11-25: 0 rows where 1,234 are held'),"
            " ('run-3', timestamp '2026-11-27 02:00:00', timestamp '2026-11-27 02:01:10', 70.25, 'succeeded', null,"
            "  1900, 0, 12500, 35, 2, 'reconciliation: 2 assessments refetched')"
            ") as runs(run_id, started_at, finished_at, seconds, status, error, requests, retries, rows_written,"
            " rows_removed, quarantined, findings)"
        )
        con.execute(
            "create or replace table analytics.rpt_sync_tables as select * from (values"
            " ('students', 'Students', 'academic_year_slice', 595::bigint, timestamp '2026-11-27 02:01:00', 0::bigint),"
            " ('attendance_daily', 'Attendance/Daily', 'attendance_date', 78798, timestamp '2026-11-27 02:01:00', 0),"
            " ('behavior', 'Behavior', 'academic_year_slice', 0, timestamp '2026-11-20 02:01:00', 7)"
            ") as t(table_name, endpoint, strategy, rows, last_loaded_at, days_since_load)"
        )
    out = tmp_path / "site"
    assert build(warehouse, out) == 0
    page = open_page(chrome, out / "sync.html")
    page.screenshot("sync-history", "sync")
    assert page.console_errors == []
    assert assert_charts_drawn(page, "sync") == 2
    text = page.page.inner_text("main")
    assert NO_DATA not in text
    assert "run-2" in text and "the API returned 0 rows where the warehouse holds 1,234" in text
    findings = page.page.inner_text("#sync-findings")
    assert "reconciliation: 2 assessments refetched" in findings and "run-3" in findings
    assert "attendance_daily" in page.page.inner_text("#sync-tables")
    page.page.close()


def half_loaded(models_warehouse: ModelWarehouse, tmp_path: Path, kind: str) -> Path:
    """A copy of the warehouse with raw tables but no models, or with the models' tables emptied."""
    warehouse = tmp_path / f"{kind}.duckdb"
    shutil.copy(models_warehouse.path, warehouse)
    with duckdb.connect(str(warehouse)) as con:
        if kind == "raw-only":
            con.execute("drop schema analytics cascade")
        else:
            tables = con.execute(
                "select table_name from information_schema.tables where table_schema = 'analytics'"
                " and table_type = 'BASE TABLE' and table_name <> 'settings'"
            ).fetchall()
            for (table,) in tables:
                con.execute(f'delete from analytics."{table}"')
    return warehouse


@pytest.mark.parametrize("kind", ["raw-only", "empty-marts"])
def test_a_half_loaded_warehouse_says_no_data_yet(
    chrome: Any, models_warehouse: ModelWarehouse, tmp_path: Path, kind: str, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "site"
    assert build(half_loaded(models_warehouse, tmp_path, kind), out) == 0
    err = capsys.readouterr().err
    if kind == "raw-only":
        assert "no models yet" in err and "illuminate-sync models" in err and len(err.strip().splitlines()) == 1
    for name in PAGES:
        page = open_page(chrome, out / f"{name}.html")
        page.screenshot(kind, name)
        assert page.console_errors == [], (name, page.console_errors)
        assert page.charts() == []
        assert not any(url.endswith("plotly.min.js") for url in page.requests)  # no chart, no 4.8 MB script
        if name in CONTENT_PAGES:
            messages = page.page.eval_on_selector_all("p.no-data", "ps => ps.map(p => p.textContent)")
            assert messages and all(
                message.startswith(NO_DATA) or "no student names" in message for message in messages
            )
            assert page.page.locator("table").count() == 0
        page.page.close()


def test_bad_input_fails_with_one_line_and_writes_nothing(
    models_warehouse: ModelWarehouse,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    not_duckdb = tmp_path / "notes.duckdb"
    not_duckdb.write_text("not a database")
    empty = tmp_path / "empty.duckdb"
    duckdb.connect(str(empty)).close()
    cases = [
        (models_warehouse.path, tmp_path / "missing" / "site", "the directory", "create it first"),
        (not_duckdb, tmp_path / "site", "is not a DuckDB database", "a sync loaded"),
        (tmp_path / "nowhere.duckdb", tmp_path / "site", "no such file", "a sync loaded"),
        (empty, tmp_path / "site", "holds no illuminate-sync tables", "illuminate-sync run"),
    ]
    outdated = tmp_path / "outdated.duckdb"  # models of an older version: a column the dashboard reads is missing
    shutil.copy(models_warehouse.path, outdated)
    with duckdb.connect(str(outdated)) as con:
        con.execute("alter table analytics.rpt_chronic_absenteeism drop column chronically_absent")
    cases.append(
        (outdated, tmp_path / "site", "rpt_chronic_absenteeism", "rebuild the models with illuminate-sync models")
    )
    for warehouse, out, problem, fix in cases:
        assert build(warehouse, out) == 1
        captured = capsys.readouterr()
        lines = captured.err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("illuminate-sync: error: "), captured.err
        assert problem in lines[0] and fix in lines[0] and "Traceback" not in captured.err
        assert captured.out == ""
        assert not out.exists()
    assert not_duckdb.read_text() == "not a database"
    # a directory holding something else is not mixed with the site
    other = tmp_path / "other"
    other.mkdir()
    (other / "thesis.txt").write_text("mine")
    assert build(models_warehouse.path, other) == 1
    assert "holds other files" in capsys.readouterr().err
    assert sorted(p.name for p in other.iterdir()) == ["thesis.txt"]
    # a bad minimum cell size: as an option, a usage error; as a setting, one line naming the variable
    with pytest.raises(SystemExit) as usage:
        build(models_warehouse.path, tmp_path / "s", "--min-cell-size", "0")
    assert usage.value.code == 2 and "--min-cell-size: '0' is not a whole number" in capsys.readouterr().err
    monkeypatch.setenv("DASHBOARD__MIN_CELL_SIZE", "ten")
    assert build(models_warehouse.path, tmp_path / "s") == 1
    assert "DASHBOARD__MIN_CELL_SIZE: 'ten' is not a whole number" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()


def test_a_dashboard_directory_is_rebuilt_in_place(models_warehouse: ModelWarehouse, tmp_path: Path) -> None:
    out = tmp_path / "site"
    assert build(models_warehouse.path, out, "--min-cell-size", "12") == 0
    first = (out / "attendance.html").read_text()
    assert build(models_warehouse.path, out) == 0  # the nightly rebuild: same directory, new figures
    assert (out / "attendance.html").read_text() != first
    assert sorted(path.name for path in out.iterdir()) == sorted([*(f"{name}.html" for name in PAGES), *ASSETS])
    assert all(path.stat().st_mode & 0o077 == 0 for path in out.iterdir())  # owner-only, like the warehouse


def test_demo_writes_its_dashboard_beside_the_demo_file() -> None:
    assert demo_dashboard_dir(Path("data/district.duckdb"), None) == Path("data/district-dashboard")
    assert demo_dashboard_dir(None, None) == Path("demo-dashboard")
    assert demo_dashboard_dir(None, "postgres") == Path("demo-dashboard")
