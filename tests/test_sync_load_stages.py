"""A first sync loads in stages: the rows of the first stages are in the warehouse while later resources still
download, each stage is its own load package, a failure in a later stage or in a background load ends the run with
one line and keeps what the earlier stages loaded, and the next run completes it. Later runs load in one package."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest
from dlt.common.destination.exceptions import DestinationTerminalException
from dlt.destinations.impl.duckdb import duck
from sync_support import TODAY, assert_same_data, fast_retries, simulator_env, sync

from illuminate_sync.pipelines.duckdb_settings import BACKGROUND_LOAD_CONFIG
from illuminate_sync.pipelines.load_stages import load_stages, stage_ends
from illuminate_sync.pipelines.sync import run_sync
from illuminate_sync.simulator import Simulator, SimulatorConfig
from illuminate_sync.sources.illuminate import resource_names
from illuminate_sync.sources.illuminate.errors import IlluminateError
from illuminate_sync.sources.illuminate.settings import DATASET_NAME

FIRST_OF_THE_LAST_STAGE = load_stages(resource_names())[-1][0]


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    simulator = Simulator(SimulatorConfig(students=40, seed=5, today=TODAY))
    simulator.start(port=0)
    yield simulator
    simulator.stop()


class WarehouseProbe(io.StringIO):
    """The run's progress output. When the progress line of `resource` is written (it has downloaded), counts the
    rows of `tables` in the warehouse, through the DuckDB instance the run's background load holds open."""

    def __init__(self, db: Path, resource: str, tables: list[str]) -> None:
        super().__init__()
        self.db, self.resource, self.tables = db, resource, tables
        self.rows: dict[str, int] | None = None

    def write(self, text: str) -> int:
        if text.startswith(f"  {self.resource}:"):
            with duckdb.connect(str(self.db), config=dict(BACKGROUND_LOAD_CONFIG)) as con:
                self.rows = {table: _rows(con, table) for table in self.tables}
        return super().write(text)


def _rows(con: duckdb.DuckDBPyConnection, table: str) -> int:
    try:
        return int(con.execute(f'select count(*) from {DATASET_NAME}."{table}"').fetchone()[0])  # type: ignore[index]
    except duckdb.CatalogException:
        return 0


def completed_loads(db: Path) -> int:
    with duckdb.connect(str(db), read_only=True) as con:
        return int(con.execute(f"select count(*) from {DATASET_NAME}._dlt_loads where status = 0").fetchone()[0])  # type: ignore[index]


def table_rows(db: Path, table: str) -> int:
    with duckdb.connect(str(db), read_only=True) as con:
        return _rows(con, table)


def test_stages_end_after_the_largest_endpoints_in_extraction_order() -> None:
    stages = load_stages(resource_names())
    assert [stage[-1] for stage in stages[:-1]] == stage_ends()
    assert [name for stage in stages for name in stage] == resource_names()
    assert load_stages(["students", "attendance_section"]) == [["students", "attendance_section"]]


def test_the_first_stages_are_in_the_warehouse_while_later_resources_download(sim: Simulator, tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    probe = WarehouseProbe(db, FIRST_OF_THE_LAST_STAGE, ["students", "attendance_daily", "gradebook_scores"])
    with simulator_env(sim):
        run_sync(db, today=sim.today.isoformat(), out=probe, build_models_after=False, academic_years_back=0)
    assert probe.rows is not None, f"no progress line for {FIRST_OF_THE_LAST_STAGE}"
    assert probe.rows["students"] > 0 and probe.rows["attendance_daily"] > 0, probe.rows
    assert probe.rows["gradebook_scores"] == 0, "the last stage loads after its download"
    assert table_rows(db, "gradebook_scores") > 0


def test_each_stage_is_its_own_load_package(sim: Simulator, tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    sync(sim, db, academic_years_back=0)
    with duckdb.connect(str(db), read_only=True) as con:
        loads = [
            row[0] for row in con.execute(f"select load_id from {DATASET_NAME}._dlt_loads where status = 0").fetchall()
        ]

        def load_ids(table: str) -> set[str]:
            query = f'select distinct _dlt_load_id from {DATASET_NAME}."{table}"'
            return {row[0] for row in con.execute(query).fetchall()}

        stage_of = {table: load_ids(table) for table in ("students", "attendance_daily", "attendance_section")}
        stage_of["gradebook_scores"] = load_ids("gradebook_scores")
    assert len(loads) == len(stage_ends()) + 1
    assert all(len(ids) == 1 for ids in stage_of.values()), stage_of
    assert stage_of["students"] == stage_of["attendance_daily"]
    assert (
        len({next(iter(stage_of[table])) for table in ("attendance_daily", "attendance_section", "gradebook_scores")})
        == 3
    )


def test_a_later_run_loads_in_one_package(sim: Simulator, tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    sync(sim, db, academic_years_back=0)
    loads_before = completed_loads(db)
    sync(sim, db, academic_years_back=0, full_refresh=True)
    assert completed_loads(db) == loads_before + 1


def test_a_first_sync_failing_in_a_later_stage_keeps_the_earlier_stages_and_the_next_run_completes_it(
    sim: Simulator, tmp_path: Path
) -> None:
    db, uninterrupted = tmp_path / "w.duckdb", tmp_path / "uninterrupted.duckdb"
    sync(sim, uninterrupted, academic_years_back=0)
    sim.inject_fault("GradebookScores", "503")  # the last stage: every request fails
    try:
        with fast_retries(), pytest.raises(IlluminateError) as failed:
            sync(sim, db, academic_years_back=0)
    finally:
        sim.clear_faults()
    assert "GradebookScores" in str(failed.value) and "\n" not in str(failed.value)
    assert table_rows(db, "attendance_daily") == table_rows(uninterrupted, "attendance_daily") > 0
    assert table_rows(db, "gradebook_scores") == 0

    sync(sim, db, academic_years_back=0)
    assert_same_data(db, uninterrupted)


def test_a_failed_background_load_ends_the_run_with_one_line_and_the_next_run_completes_it(
    sim: Simulator, tmp_path: Path
) -> None:
    db, uninterrupted = tmp_path / "w.duckdb", tmp_path / "uninterrupted.duckdb"
    sync(sim, uninterrupted, academic_years_back=0)
    copy = duck.DuckDbCopyJob.run

    def disk_full_for_attendance(self: Any) -> None:
        if self._load_table["name"] == "attendance_daily":  # a table of the first stage, loaded in the background
            raise DestinationTerminalException("disk full")
        copy(self)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(duck.DuckDbCopyJob, "run", disk_full_for_attendance)
        with pytest.raises(IlluminateError) as failed:
            sync(sim, db, academic_years_back=0)
    message = str(failed.value)
    assert "\n" not in message and "attendance_daily" in message and "disk full" in message, message

    sync(sim, db, academic_years_back=0)
    assert_same_data(db, uninterrupted)
