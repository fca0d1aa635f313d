"""A first sync appends into its empty tables (no staging copy, no merge); every later run merges."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
from sync_support import TODAY, expected_keys, loaded_keys, sync

from illuminate_sync.simulator import Simulator, SimulatorConfig
from illuminate_sync.sources.illuminate.catalog import load_catalog
from illuminate_sync.sources.illuminate.resources import APPENDS_INTO_AN_EMPTY_TABLE
from illuminate_sync.sources.illuminate.settings import DATASET_NAME, DELETED_COLUMN

MERGED_TABLES = [
    table
    for table, endpoint in load_catalog().items()
    if endpoint.enabled and endpoint.strategy in APPENDS_INTO_AN_EMPTY_TABLE
]


@pytest.fixture(scope="module")
def simulator() -> Simulator:
    sim = Simulator(SimulatorConfig(students=40, seed=11, today=TODAY))
    sim.start(port=0)
    yield sim
    sim.stop()


def _staging_tables(db: Path) -> set[str]:
    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute(
            "select table_name from information_schema.tables where table_schema = ?", [f"{DATASET_NAME}_staging"]
        ).fetchall()
    return {row[0] for row in rows}


def _tombstones(db: Path, table: str) -> int:
    with duckdb.connect(str(db), read_only=True) as con:
        columns = {row[0] for row in con.execute(f"describe {DATASET_NAME}.{table}").fetchall()}
        if DELETED_COLUMN not in columns:
            return 0
        return int(con.execute(f"select count(*) from {DATASET_NAME}.{table} where {DELETED_COLUMN}").fetchone()[0])


def test_a_first_sync_appends_without_staging_copies_and_keeps_no_tombstones(
    simulator: Simulator, tmp_path: Path
) -> None:
    db = tmp_path / "first.duckdb"
    sync(simulator, db, resources=MERGED_TABLES)
    assert not set(MERGED_TABLES) & _staging_tables(db), "a first sync should not copy rows through staging"
    for table in MERGED_TABLES:
        assert _tombstones(db, table) == 0, f"{table}: tombstones were loaded as rows"
        loaded = loaded_keys(db, table)
        assert len(loaded) == len(set(loaded)), f"{table} has duplicate natural keys"
        assert set(loaded) == expected_keys(simulator, table), table


def test_the_run_after_a_first_sync_merges_instead_of_appending_again(simulator: Simulator, tmp_path: Path) -> None:
    db = tmp_path / "twice.duckdb"
    sync(simulator, db, resources=MERGED_TABLES)
    sync(simulator, db, resources=MERGED_TABLES, full_refresh=True)  # every slice and key fetched again
    for table in MERGED_TABLES:
        loaded = loaded_keys(db, table)
        assert len(loaded) == len(set(loaded)), f"{table}: the second run appended its rows again"
        assert set(loaded) == expected_keys(simulator, table), table
