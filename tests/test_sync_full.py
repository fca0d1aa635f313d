"""A full sync loads every GET endpoint exactly: the simulator's records, once each, with the catalog's types."""

from __future__ import annotations

from pathlib import Path

import pytest
from sync_support import TODAY, column_types, expected_keys, loaded_keys, sync

from illuminate_sync.simulator import Simulator, SimulatorConfig
from illuminate_sync.sources.illuminate.catalog import load_catalog

DUCKDB_TYPES = {
    "bigint": "BIGINT",
    "text": "VARCHAR",
    "date": "DATE",
    "timestamp": "TIMESTAMP",
    "bool": "BOOLEAN",
    "double": "DOUBLE",
}
ENABLED_TABLES = [table for table, endpoint in load_catalog().items() if endpoint.enabled]


@pytest.fixture(scope="module")
def simulator() -> Simulator:
    sim = Simulator(SimulatorConfig(students=150, seed=3, today=TODAY))
    sim.start(port=0)
    yield sim
    sim.stop()


@pytest.fixture(scope="module")
def warehouse(simulator: Simulator, tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("full") / "warehouse.duckdb"
    sync(simulator, db)
    return db


@pytest.mark.parametrize("table", ENABLED_TABLES)
def test_every_table_holds_exactly_the_apis_records_once(simulator: Simulator, warehouse: Path, table: str) -> None:
    loaded = loaded_keys(warehouse, table)
    assert len(loaded) == len(set(loaded)), f"{table} has duplicate natural keys"
    assert set(loaded) == expected_keys(simulator, table)


def test_the_district_is_not_trivially_empty(warehouse: Path) -> None:
    for table in ("students", "enrollment", "roster", "attendance_daily", "assessment_aggregate_student_responses"):
        assert len(loaded_keys(warehouse, table)) > 0, table


@pytest.mark.parametrize("table", list(load_catalog()))
def test_every_documented_column_exists_with_its_declared_type(warehouse: Path, table: str) -> None:
    endpoint = load_catalog()[table]
    actual = column_types(warehouse, table)
    assert actual, f"table {table} was not created"
    for column, column_type in endpoint.columns.items():
        assert actual.get(column) == DUCKDB_TYPES[column_type], f"{table}.{column}"


def test_both_academic_years_are_loaded_into_their_own_slices(warehouse: Path) -> None:
    import duckdb

    with duckdb.connect(str(warehouse), read_only=True) as con:
        years = {row[0] for row in con.execute("select distinct _academic_year from illuminate.enrollment").fetchall()}
    assert years == {2026, 2027}


@pytest.mark.parametrize("table", ENABLED_TABLES)
def test_every_row_has_its_own_row_id(warehouse: Path, table: str) -> None:
    """The source sets `_dlt_id` on Arrow rows (dlt's normalize no longer does): a load job copied twice is told by
    it, so ids must be present and never shared between rows."""
    import duckdb

    with duckdb.connect(str(warehouse), read_only=True) as con:
        rows, ids, missing = con.execute(
            f"select count(*), count(distinct _dlt_id), count(*) - count(_dlt_id) from illuminate.{table}"
        ).fetchone()
    assert missing == 0 and ids == rows, f"{table}: {rows} rows, {ids} distinct row ids, {missing} without one"
