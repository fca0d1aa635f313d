"""A persistent fault fails the run with one line naming the endpoint, the window and the last status; every table
keeps exactly what it held; the next run repairs everything, including a load package left pending by a crash."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import duckdb
import pytest
from sync_support import (
    CRASH_DURING_LOAD,
    TODAY,
    assert_same_data,
    cli_env,
    copy_warehouse,
    expected_keys,
    fast_retries,
    loaded_keys,
    simulator_env,
    sync,
    table_snapshot,
)

from illuminate_sync.pipelines.cli import main
from illuminate_sync.pipelines.duckdb_warehouse import default_data_dir
from illuminate_sync.simulator import Simulator, SimulatorConfig
from illuminate_sync.sources.illuminate.catalog import load_catalog

OPTIONS = {"academic_years_back": 0, "max_concurrency": 4, "gradebook_refresh_days": 1}
SMALL_RUN = {
    "SOURCES__ILLUMINATE__ACADEMIC_YEARS_BACK": "0",
    "SOURCES__ILLUMINATE__MAX_CONCURRENCY": "4",
    "SOURCES__ILLUMINATE__GRADEBOOK_REFRESH_DAYS": "1",
}
"""OPTIONS as settings, for runs through the command line."""
ENABLED_TABLES = [table for table, endpoint in load_catalog().items() if endpoint.enabled]


@pytest.fixture
def sim() -> Iterator[Simulator]:
    simulator = Simulator(SimulatorConfig(students=40, seed=12, today=TODAY))
    simulator.start(port=0)
    yield simulator
    simulator.stop()


def a_night_of_changes(sim: Simulator) -> None:
    """Changes that touch several tables, so a run after them has something to write almost everywhere."""
    sim.mutate("add_students", count=2, entry_date=(sim.today - timedelta(days=5)).isoformat())
    sim.mutate("change_assessment_result", count=3)
    sim.mutate("correct_attendance", date=(sim.today - timedelta(days=3)).isoformat(), flag_code="A")
    sim.mutate("update_assessment")
    sim.advance_today(1)


def completed_loads(db: Path) -> int:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute("select count(*) from illuminate._dlt_loads where status = 0").fetchone()[0]  # type: ignore[index]


def assert_tables_equal_the_api(sim: Simulator, db: Path) -> None:
    for table in ENABLED_TABLES:
        loaded = loaded_keys(db, table)
        assert len(loaded) == len(set(loaded)), f"{table} has duplicate natural keys"
        assert set(loaded) == expected_keys(sim, table, (2027,)), table


def test_an_endpoint_failing_every_time_fails_the_run_with_one_line_and_changes_no_table(
    sim: Simulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "w.duckdb"
    sync(sim, db, **OPTIONS)
    a_night_of_changes(sim)
    before, loads_before = table_snapshot(db), completed_loads(db)

    sim.inject_fault("Attendance/Section", "503")  # every request, every window
    with simulator_env(sim, **SMALL_RUN), fast_retries():
        code = main(["run", "--duckdb", str(db), "--skip-models"])
    output = capsys.readouterr()
    assert code != 0
    error_lines = [line for line in (output.out + output.err).splitlines() if line.startswith("illuminate-sync: error")]
    assert len(error_lines) == 1, output.err
    line = error_lines[0]
    assert "Traceback" not in output.err
    assert "Attendance/Section" in line, line  # the endpoint
    assert f"date={sim.today.year}-" in line or "date=20" in line, line  # the window's date ...
    assert "site_id=" in line, line  # ... and site
    assert "503" in line, line  # the last status
    assert table_snapshot(db) == before, "a failed run changed a table"
    assert completed_loads(db) == loads_before

    sim.clear_faults()
    sync(sim, db, **OPTIONS)  # the next night, the API is healthy again
    assert_tables_equal_the_api(sim, db)


def test_the_window_of_a_failing_academic_year_slice_is_named(
    sim: Simulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """For a per-year, per-site endpoint the line names the site and the session window's dates (its year)."""
    db = tmp_path / "w.duckdb"
    sim.inject_fault("Behavior", "500")
    with simulator_env(sim, **SMALL_RUN), fast_retries():
        code = main(["run", "--duckdb", str(db), "--resources", "sites,behavior", "--skip-models"])
    err = capsys.readouterr().err
    assert code != 0
    (line,) = [line for line in err.splitlines() if line.startswith("illuminate-sync: error")]
    assert "Behavior" in line and "site_id=" in line and "500" in line, line
    # windows are fetched concurrently: whichever session of academic year 2027 failed first is named
    start, end = re.search(r"start_date=(\S+?),.*end_date=(\S+?),", line).groups()  # type: ignore[union-attr]
    assert "2026-08-01" <= start <= end <= "2027-07-31", line


def test_a_crash_in_the_middle_of_loading_is_repaired_by_the_next_run(sim: Simulator, tmp_path: Path) -> None:
    """SIGKILL after part of the load package reached DuckDB: some tables hold the new run's data, others not.
    The next run first finishes the pending package, then syncs; the result equals that of the same nights
    without the crash."""
    db, clean = tmp_path / "w.duckdb", tmp_path / "clean.duckdb"
    sync(sim, db, **OPTIONS)
    copy_warehouse(db, clean)
    a_night_of_changes(sim)
    before = table_snapshot(db)

    env = cli_env(sim, CRASH_AFTER_COPY_JOBS="6", **SMALL_RUN)
    crashed = subprocess.run(
        [sys.executable, "-c", CRASH_DURING_LOAD, "run", "--duckdb", str(db), "--skip-models"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr[-2000:]
    normalized = default_data_dir(db) / "illuminate_sync" / "load" / "normalized"
    assert normalized.is_dir() and any(normalized.iterdir()), "the crash should leave a pending load package"
    assert table_snapshot(db) != before, "the crash came too late or too early to leave a half-written warehouse"

    sync(sim, db, **OPTIONS)
    assert not any(normalized.iterdir()), "the pending package was not loaded"
    sync(sim, clean, **OPTIONS)  # the same night without the crash
    assert_same_data(db, clean)
