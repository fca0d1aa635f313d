"""FERPA: the DuckDB file and the dlt data dir are readable by their owner only, from the moment they hold student
data: after a successful run, and also after a run that died while loading (with a permissive umask). A successful
run leaves no copy of the rows it loaded in the data dir."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest
from sync_support import CRASH_DURING_LOAD, TODAY, cli_env, sync

from illuminate_sync.pipelines.duckdb_warehouse import default_data_dir
from illuminate_sync.simulator import Simulator, SimulatorConfig
from illuminate_sync.sources.illuminate.settings import DATASET_NAME

TABLES = ["sites", "students", "enrollment"]


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    previous = os.umask(0o022)  # the usual default: new files world-readable
    yield
    os.umask(previous)


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    simulator = Simulator(SimulatorConfig(students=30, seed=20, today=TODAY))
    simulator.start(port=0)
    yield simulator
    simulator.stop()


def others_can_read(path: Path) -> bool:
    return bool(stat.S_IMODE(path.stat().st_mode) & 0o077)


def test_a_synced_warehouse_and_its_data_dir_are_owner_only(
    sim: Simulator, tmp_path: Path, permissive_umask: None
) -> None:
    db = tmp_path / "w.duckdb"
    sync(sim, db, resources=TABLES, academic_years_back=0)
    assert stat.S_IMODE(db.stat().st_mode) == 0o600
    assert stat.S_IMODE(default_data_dir(db).stat().st_mode) == 0o700
    lock = tmp_path / ".w.duckdb.lock"
    assert not lock.exists() or not others_can_read(lock)
    wal = tmp_path / "w.duckdb.wal"
    assert not wal.exists() or not others_can_read(wal)


def test_a_successful_run_leaves_no_copy_of_the_loaded_rows_in_its_data_dir(sim: Simulator, tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    sync(sim, db, resources=TABLES, academic_years_back=0)
    data_files = [
        path for path in default_data_dir(db).rglob("*") if path.is_file() and path.name.startswith(tuple(TABLES))
    ]
    assert data_files == [], "the rows live in the warehouse; dlt's loaded files should be gone"
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute(f"select count(*) from {DATASET_NAME}.students").fetchone()[0] > 0


def test_an_explicit_data_dir_is_owner_only_too(sim: Simulator, tmp_path: Path, permissive_umask: None) -> None:
    data_dir = tmp_path / "dlt-work"
    sync(sim, tmp_path / "w.duckdb", resources=["sites"], academic_years_back=0, data_dir=data_dir)
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700


def test_a_run_killed_while_loading_leaves_no_world_readable_student_data(
    sim: Simulator, tmp_path: Path, permissive_umask: None
) -> None:
    """The DuckDB file already holds part of the students when the process dies: it must not be readable by others
    (today the mode is only tightened after a successful run)."""
    db = tmp_path / "w.duckdb"
    crashed = subprocess.run(
        [sys.executable, "-c", CRASH_DURING_LOAD, "run", "--duckdb", str(db), "--resources", ",".join(TABLES)],
        env=cli_env(sim, CRASH_AFTER_COPY_JOBS="2", SOURCES__ILLUMINATE__ACADEMIC_YEARS_BACK="0"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr[-2000:]
    assert db.exists(), "the crash should come after DuckDB received data"
    assert not others_can_read(default_data_dir(db))
    leaking = [path.name for path in (db, tmp_path / "w.duckdb.wal") if path.exists() and others_can_read(path)]
    assert not leaking, f"readable by group/others after the crash: {leaking}"
