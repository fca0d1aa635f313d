"""A load job copied into DuckDB twice (dlt marks a job done only after its copy: a run killed in between copies it
again when the next run finishes the package) does not duplicate the records of a merged table."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dlt.destinations.impl.duckdb import duck
from sync_support import TODAY, loaded_keys, sync

from simulator import Simulator, SimulatorConfig
from sources.illuminate.catalog import load_catalog

FLAT_MERGED_TABLES = [
    table
    for table, endpoint in load_catalog().items()
    if endpoint.strategy not in ("replace", "per_user", "changed_documents")
]


@pytest.fixture(scope="module")
def copied_twice(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A sync in which every load job's copy into DuckDB ran twice (what a SIGKILL between copy and bookkeeping
    leads to once the next run finishes the package)."""
    copy_once = duck.DuckDbCopyJob.run

    def copy_twice(self: Any) -> None:
        copy_once(self)
        copy_once(self)

    db = tmp_path_factory.mktemp("reload") / "w.duckdb"
    sim = Simulator(SimulatorConfig(students=40, seed=11, today=TODAY))
    sim.start(port=0)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(duck.DuckDbCopyJob, "run", copy_twice)
        try:
            sync(sim, db, academic_years_back=0)
        finally:
            sim.stop()
    yield db


@pytest.mark.parametrize("table", FLAT_MERGED_TABLES)
def test_a_merged_table_stays_free_of_duplicates_when_its_load_job_is_copied_twice(
    copied_twice: Path, table: str
) -> None:
    keys = loaded_keys(copied_twice, table)
    assert len(keys) == len(set(keys)), f"{table}: {len(keys) - len(set(keys))} duplicated rows"


def test_the_view_table_stays_free_of_duplicates_when_its_load_job_is_copied_twice(copied_twice: Path) -> None:
    keys = loaded_keys(copied_twice, "assessment_view")
    assert len(keys) == len(set(keys))
