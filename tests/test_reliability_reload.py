"""A load job copied into DuckDB twice (dlt marks a job done only after its copy: a run killed in between copies it
again when the next run finishes the package) leaves no record twice in any table, also when the run that loaded
it was killed before checking."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from dlt.destinations.impl.duckdb import duck
from sync_support import TODAY, loaded_keys, sync

from illuminate_sync.pipelines.sync import LoadRepairCheck
from illuminate_sync.simulator import Simulator, SimulatorConfig
from illuminate_sync.sources.illuminate.catalog import load_catalog

LOADED_TABLES = [table for table, endpoint in load_catalog().items() if endpoint.strategy != "per_user"]


@contextmanager
def every_job_copied_twice() -> Iterator[None]:
    copy_once = duck.DuckDbCopyJob.run

    def copy_twice(self: Any) -> None:
        copy_once(self)
        copy_once(self)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(duck.DuckDbCopyJob, "run", copy_twice)
        yield


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    simulator = Simulator(SimulatorConfig(students=40, seed=11, today=TODAY))
    simulator.start(port=0)
    yield simulator
    simulator.stop()


@pytest.fixture(scope="module")
def copied_twice(sim: Simulator, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A sync in which every load job's copy into DuckDB ran twice."""
    db = tmp_path_factory.mktemp("reload") / "w.duckdb"
    with every_job_copied_twice():
        sync(sim, db, academic_years_back=0)
    return db


def duplicated_rows(db: Path, table: str) -> int:
    keys = loaded_keys(db, table)
    return len(keys) - len(set(keys))


@pytest.mark.parametrize("table", LOADED_TABLES)
def test_a_table_stays_free_of_duplicates_when_its_load_job_is_copied_twice(copied_twice: Path, table: str) -> None:
    assert loaded_keys(copied_twice, table), f"{table}: the district should have rows here"
    assert duplicated_rows(copied_twice, table) == 0, table


def test_a_run_killed_before_its_check_is_repaired_by_the_next_run(sim: Simulator, tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"

    def killed(self: LoadRepairCheck) -> None:
        raise KeyboardInterrupt("killed after loading, before the check")

    with every_job_copied_twice(), pytest.MonkeyPatch.context() as patch:
        patch.setattr(LoadRepairCheck, "finish", killed)
        with pytest.raises(KeyboardInterrupt):
            sync(sim, db, academic_years_back=0, resources=["terms", "enrollment", "attendance_daily"])
    assert duplicated_rows(db, "enrollment") > 0, "the killed run left copies behind"

    sync(sim, db, academic_years_back=0, resources=["terms", "enrollment", "attendance_daily"])
    for table in ("terms", "enrollment", "attendance_daily"):
        assert duplicated_rows(db, table) == 0, table
