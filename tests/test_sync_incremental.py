"""Nightly reruns: after the district changes, a rerun makes the tables equal the API's data again, cheaply."""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path

import pytest
from sync_support import TODAY, expected_keys, loaded_keys, sync

from illuminate_sync.pipelines.duckdb_warehouse import default_data_dir
from illuminate_sync.simulator import Simulator, SimulatorConfig
from illuminate_sync.sources.illuminate.catalog import load_catalog
from illuminate_sync.sources.illuminate.errors import ShrinkGuardError

ENABLED_TABLES = [table for table, endpoint in load_catalog().items() if endpoint.enabled]
EVERY_NIGHT = {"gradebook_refresh_days": 1}
"""Every table exact after every run (the gradebook's refresh interval has its own tests)."""


def _mutate_the_district(sim: Simulator) -> dict[str, dict]:
    """A night's worth of changes, each of a kind the strategies must catch."""
    week_ago = (sim.today - timedelta(days=7)).isoformat()
    changes = {
        "added": sim.mutate("add_students", count=3, entry_date=week_ago),
        "rescored": sim.mutate("change_assessment_result", count=4),
        "emptied": sim.mutate("empty_slice", path="Behavior", academic_year=2027),
        "corrected": sim.mutate("correct_attendance", date=(sim.today - timedelta(days=10)).isoformat(), flag_code="A"),
        "retitled": sim.mutate("update_assessment"),
    }
    sim.advance_today(1)
    return changes


def _remove_a_no_show(sim: Simulator, student_id: int) -> None:
    """The next night the district deletes an enrollment entered by mistake (with its rosters and attendance)."""
    sim.mutate("delete_enrollment", student_id=student_id, academic_year=2027)
    sim.advance_today(1)


@pytest.fixture
def simulator() -> Simulator:
    sim = Simulator(SimulatorConfig(students=60, seed=5, today=TODAY))
    sim.start(port=0)
    yield sim
    sim.stop()


def _assert_tables_equal_the_api(sim: Simulator, db: Path, years: tuple[int, ...] = (2026, 2027)) -> None:
    for table in ENABLED_TABLES:
        loaded = loaded_keys(db, table)
        assert len(loaded) == len(set(loaded)), f"{table} has duplicate natural keys"
        assert set(loaded) == expected_keys(sim, table, years), table


def test_a_nightly_rerun_is_exact_and_makes_far_fewer_requests(simulator: Simulator, tmp_path: Path) -> None:
    db = tmp_path / "warehouse.duckdb"
    first = sync(simulator, db, **EVERY_NIGHT)
    changes = _mutate_the_district(simulator)
    second = sync(simulator, db, **EVERY_NIGHT, allow_shrink=True)  # the emptied Behavior slice is a real drop
    _assert_tables_equal_the_api(simulator, db)
    assert second.requests < first.requests * 0.5, (first.requests, second.requests)

    _remove_a_no_show(simulator, changes["added"]["student_ids"][0])
    third = sync(simulator, db, **EVERY_NIGHT)
    _assert_tables_equal_the_api(simulator, db)
    assert third.requests < first.requests * 0.5, (first.requests, third.requests)


def test_an_emptied_slice_is_refused_by_the_shrink_guard_then_emptied_when_allowed(
    simulator: Simulator, tmp_path: Path
) -> None:
    db = tmp_path / "warehouse.duckdb"
    sync(simulator, db, academic_years_back=0)
    before = loaded_keys(db, "behavior")
    assert before, "the district should have behavior incidents"
    simulator.mutate("empty_slice", path="Behavior", academic_year=2027)
    with pytest.raises(ShrinkGuardError, match="behavior academic year 2027"):
        sync(simulator, db, academic_years_back=0)
    assert loaded_keys(db, "behavior") == before, "a refused run loads nothing"
    sync(simulator, db, academic_years_back=0, allow_shrink=True)
    assert loaded_keys(db, "behavior") == []


def test_a_run_with_an_empty_data_dir_continues_incrementally_from_the_warehouse(
    simulator: Simulator, tmp_path: Path
) -> None:
    db = tmp_path / "warehouse.duckdb"
    first = sync(simulator, db, academic_years_back=0, **EVERY_NIGHT)
    shutil.rmtree(default_data_dir(db))
    _mutate_the_district(simulator)
    second = sync(simulator, db, allow_shrink=True, academic_years_back=0, **EVERY_NIGHT)
    _assert_tables_equal_the_api(simulator, db, years=(2027,))
    assert second.requests < first.requests * 0.5, (first.requests, second.requests)


def test_a_closed_year_is_left_alone_until_named(simulator: Simulator, tmp_path: Path) -> None:
    db = tmp_path / "warehouse.duckdb"
    sync(simulator, db, resources=["terms", "behavior", "enrollment"])
    closed_year_behavior = {key for key in loaded_keys(db, "behavior") if key[-1] == 2026}
    assert closed_year_behavior, "the district should have behavior incidents last year"
    simulator.mutate("empty_slice", path="Behavior", academic_year=2026)

    sync(simulator, db, resources=["terms", "behavior", "enrollment"])
    assert {key for key in loaded_keys(db, "behavior") if key[-1] == 2026} == closed_year_behavior

    sync(simulator, db, resources=["terms", "behavior", "enrollment"], academic_years=[2026], allow_shrink=True)
    assert {key for key in loaded_keys(db, "behavior") if key[-1] == 2026} == set()
    assert {key for key in loaded_keys(db, "behavior") if key[-1] == 2027} == expected_keys(
        simulator, "behavior", (2027,)
    ), "naming one year leaves the other's slice as it was"
