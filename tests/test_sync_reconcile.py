"""Reconciliation: deletions that incremental windows cannot see (an assessment result removed, attendance of an
enrollment deleted weeks back) disappear on a reconciling run."""

from __future__ import annotations

from pathlib import Path

import pytest
from sync_support import TODAY, expected_keys, loaded_keys, sync

from illuminate_sync.simulator import Simulator, SimulatorConfig

CURRENT_YEAR = (2027,)


@pytest.fixture
def simulator() -> Simulator:
    sim = Simulator(SimulatorConfig(students=60, seed=8, today=TODAY))
    sim.start(port=0)
    yield sim
    sim.stop()


def test_a_deleted_assessment_result_disappears_on_a_reconciling_run(simulator: Simulator, tmp_path: Path) -> None:
    db = tmp_path / "warehouse.duckdb"
    tables = ["terms", "assessments", "assessment_aggregate_student_responses"]
    table = "assessment_aggregate_student_responses"
    sync(simulator, db, resources=tables, academic_years_back=0)
    assessment_id, local_student_id, _ = sorted(loaded_keys(db, table))[0]
    student = simulator.district.students_by_local[local_student_id]
    simulator.mutate("delete_assessment_result", assessment_id=assessment_id, student_id=student.student_id)
    simulator.advance_today(1)

    sync(simulator, db, resources=tables, academic_years_back=0)
    assert set(loaded_keys(db, table)) != expected_keys(simulator, table, CURRENT_YEAR), "modified_after cannot see it"

    sync(simulator, db, resources=tables, academic_years_back=0, reconcile=True)
    assert set(loaded_keys(db, table)) == expected_keys(simulator, table, CURRENT_YEAR)


def test_attendance_of_an_enrollment_deleted_weeks_back_disappears_on_a_reconciling_run(
    simulator: Simulator, tmp_path: Path
) -> None:
    db = tmp_path / "warehouse.duckdb"
    tables = ["sites", "terms", "attendance_daily", "attendance_section"]
    sync(simulator, db, resources=tables, academic_years_back=0)
    simulator.mutate("delete_enrollment", academic_year=2027)  # a student enrolled since August
    simulator.advance_today(1)

    sync(simulator, db, resources=tables, academic_years_back=0, reconcile=True)
    for table in ("attendance_daily", "attendance_section"):
        loaded = loaded_keys(db, table)
        assert len(loaded) == len(set(loaded))
        assert set(loaded) == expected_keys(simulator, table, CURRENT_YEAR), table
