"""Every run that held the lock leaves a row in `illuminate.sync_runs` (and one per table in `sync_run_tables`),
succeeded or failed, with what its checks found; `rpt_sync_runs` and `rpt_sync_tables` read them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest
from sync_support import TODAY, sync

from illuminate_sync.pipelines.models import ModelSettings, build_models
from illuminate_sync.simulator import Simulator, SimulatorConfig
from illuminate_sync.sources.illuminate.errors import ShrinkGuardError

TABLES = ["terms", "students", "enrollment", "attendance_daily"]


@pytest.fixture
def sim() -> Iterator[Simulator]:
    simulator = Simulator(SimulatorConfig(students=30, seed=8, today=TODAY))
    simulator.start(port=0)
    yield simulator
    simulator.stop()


def rows(db: Path, sql: str) -> list[tuple[object, ...]]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(sql).fetchall()


def test_a_run_records_its_duration_requests_rows_and_tables(sim: Simulator, tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    summary = sync(sim, db, resources=TABLES, academic_years_back=0)
    [run] = rows(db, "select status, error, requests, retries, rows_written, seconds from illuminate.sync_runs")
    written = sum(change.rows_written or 0 for change in summary.tables.values())
    assert run[:5] == ("succeeded", None, summary.requests, summary.retries, written) and written > 0
    assert 0 < run[5] <= summary.seconds + 1
    tables = dict(rows(db, "select table_name, rows from illuminate.sync_run_tables"))
    assert tables == {table: change.rows_after for table, change in summary.tables.items()}
    synced = dict(rows(db, "select table_name, synced from illuminate.sync_run_tables"))
    assert synced["students"] is True


def test_a_refused_run_is_recorded_as_failed_with_the_shrink_guards_finding(sim: Simulator, tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    sync(sim, db, resources=TABLES, academic_years_back=0)
    sim.inject_fault("Students", "empty_result")
    with pytest.raises(ShrinkGuardError) as refused:
        sync(sim, db, resources=TABLES, academic_years_back=0)
    history = rows(db, "select status, error, findings from illuminate.sync_runs order by started_at")
    assert [status for status, _, _ in history] == ["succeeded", "failed"]
    assert history[1][1] == str(refused.value) and "students" in (history[1][2] or "")
    # a failed run's tables are not recorded: they hold what the previous run left
    assert rows(db, "select count(distinct run_id) from illuminate.sync_run_tables") == [(1,)]


def test_a_reconciling_run_records_what_it_compared(sim: Simulator, tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    sync(sim, db, resources=TABLES, academic_years_back=0)
    sim.advance_today(1)
    sync(sim, db, resources=TABLES, academic_years_back=0, reconcile=True)
    [(findings,)] = rows(db, "select findings from illuminate.sync_runs order by started_at desc limit 1")
    assert "attendance_daily: reconciled" in findings and "refetched" in findings


def test_the_reports_show_each_run_newest_first_and_each_tables_freshness(sim: Simulator, tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    sync(sim, db, resources=TABLES, academic_years_back=0)
    sync(sim, db, resources=["students"], academic_years_back=0)
    build_models(db, settings=ModelSettings(today=TODAY))
    runs = rows(db, "select run_number, status from analytics.rpt_sync_runs order by run_number")
    assert runs == [(1, "succeeded"), (2, "succeeded")]
    fresh = {table: (rows_, days) for table, rows_, days in rows(db, "select table_name, rows, days_since_load"
                                                                  " from analytics.rpt_sync_tables")}  # fmt: skip
    assert fresh["students"] == (30, 0) and fresh["enrollment"][1] == 0
    last = dict(rows(db, "select table_name, last_loaded_at from analytics.rpt_sync_tables"))
    assert last["students"] > last["enrollment"], "students was fetched by the later run, enrollment was not"
