"""Records returned by more than one request window (overlapping sessions, as-of dates) are passed once."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pyarrow as pa
from sync_support import TODAY, sync

from illuminate_sync.pipelines.sync import make_pipeline
from illuminate_sync.simulator import Simulator, SimulatorConfig
from illuminate_sync.sources.illuminate.catalog import load_catalog
from illuminate_sync.sources.illuminate.resources import KeyFilter

KEY_FILTERED_MERGES = ("modified_after", "date_taken_window")

ENROLLMENT = load_catalog()["enrollment"]  # keyed by student, site and entry date


def window(*rows: tuple[int | None, int, str], extra: str = "x") -> pa.Table:
    return pa.table(
        {
            "student_id": pa.array([row[0] for row in rows], pa.int64()),
            "site_id": pa.array([row[1] for row in rows], pa.int64()),
            "entry_date": pa.array([row[2] for row in rows]).cast(pa.date32()),
            "note": pa.array([extra] * len(rows)),
        }
    )


def keys(tables: list[pa.Table]) -> list[tuple]:
    return [tuple(row.values())[:3] for table in tables for row in table.to_pylist()]


def test_a_record_seen_in_an_earlier_window_is_dropped_and_the_rest_kept_in_order() -> None:
    unique = KeyFilter(ENROLLMENT)
    first = window((1, 10, "2026-08-20"), (2, 10, "2026-08-20"))
    assert unique([first]) == [first], "nothing to drop: the same tables come back"
    second = unique([window((3, 10, "2026-08-21"), (1, 10, "2026-08-20"), (4, 11, "2026-08-21"), extra="y")])
    assert [row["student_id"] for row in second[0].to_pylist()] == [3, 4]
    assert second[0].schema == first.schema
    assert unique.kept == 4


def test_a_record_twice_within_one_window_is_kept_once_across_its_tables() -> None:
    unique = KeyFilter(ENROLLMENT)
    kept = unique([window((1, 10, "2026-08-20")), window((1, 10, "2026-08-20"), (2, 10, "2026-08-20"))])
    assert sorted(keys(kept)) == [(1, 10, date(2026, 8, 20)), (2, 10, date(2026, 8, 20))]
    assert unique.kept == 2


def test_keys_with_nulls_are_compared_like_any_other_value() -> None:
    unique = KeyFilter(ENROLLMENT)
    assert len(keys(unique([window((None, 10, "2026-08-20"))]))) == 1
    assert unique([window((None, 10, "2026-08-20"))]) == []
    assert len(keys(unique([window((None, 11, "2026-08-20"))]))) == 1


def test_empty_windows_pass_nothing() -> None:
    unique = KeyFilter(ENROLLMENT)
    assert unique([]) == []
    assert unique([window()]) == []
    assert unique.kept == 0


def test_merge_tables_whose_keys_were_filtered_are_not_deduplicated_again_by_dlt(tmp_path: Path) -> None:
    """dlt numbers every staging key with a window function unless told the keys are unique; that window ran DuckDB
    out of memory on a large district, and the key filter already made every key unique."""
    sim = Simulator(SimulatorConfig(students=20, seed=2, today=TODAY))
    sim.start(port=0)
    try:
        db = tmp_path / "w.duckdb"
        filtered = [table for table, endpoint in load_catalog().items() if endpoint.strategy in KEY_FILTERED_MERGES]
        sync(sim, db, academic_years_back=0, resources=["terms", *filtered])
    finally:
        sim.stop()
    tables = make_pipeline(db).default_schema.tables
    for table in filtered:
        assert tables[table].get("x-stage-data-deduplicated") is True, table
