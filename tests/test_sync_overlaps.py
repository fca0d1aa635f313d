"""The overlaps real districts have survive a two-year sync: nothing doubled on its key, nothing lost.

Each case is a record of the simulated district chosen from the district itself (fixed seed), not from what the sync
asked for: a counselor assignment and a special-education record spanning both years, a gradebook name used in two
sessions of one year, a pool result of a student who tested and then left, and disabilities sent under both spellings
of the field.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pytest
from model_support import ModelWarehouse
from sync_support import TODAY

from illuminate_sync.simulator import Simulator
from illuminate_sync.simulator.district import District

CURRENT, PREVIOUS = 2027, 2026


@pytest.fixture(scope="module")
def simulator(models_warehouse: ModelWarehouse) -> Simulator:
    """The session's synced and modelled 300-student district (tests/conftest.py)."""
    return models_warehouse.sim


@pytest.fixture(scope="module")
def warehouse(models_warehouse: ModelWarehouse) -> Path:
    return models_warehouse.path


def rows(db: Path, query: str, parameters: list[Any] | None = None) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(query, parameters or []).fetchall()


def district(sim: Simulator) -> District:
    return sim.district


def test_a_counselor_assignment_spanning_two_years_is_one_assignment_in_staging(
    simulator: Simulator, warehouse: Path
) -> None:
    spanning = [
        s for s in district(simulator).counselor_spans if s.academic_year == PREVIOUS and s.last_year == CURRENT
    ]
    assert spanning, "the district should hold assignments that span both years"
    span = spanning[0]
    key = [span.student.student_id, span.counselor.user_id, span.start]
    raw = rows(
        warehouse,
        "select _academic_year from illuminate.student_counselors"
        " where student_id = ? and counselor_id = ? and start_date = ? order by 1",
        key,
    )
    assert raw == [(PREVIOUS,), (CURRENT,)], "one copy per year slice, told apart by the key's _academic_year"
    staged = rows(
        warehouse,
        "select count(*) from analytics.stg_student_counselors where student_id = ? and counselor_id = ?"
        " and start_date = ?",
        key,
    )
    assert staged == [(1,)]


def test_a_special_education_student_of_both_years_is_one_student_in_staging(
    simulator: Simulator, warehouse: Path
) -> None:
    both_years = rows(
        warehouse,
        "select student_id from illuminate.student_special_ed group by student_id having count(*) = 2 limit 1",
    )
    assert both_years, "the district should hold special-education students enrolled in both years"
    counts = rows(
        warehouse,
        "select (select count(*) from analytics.stg_student_special_ed),"
        " (select count(distinct student_id) from illuminate.student_special_ed)",
    )
    assert counts[0][0] == counts[0][1]
    kept = rows(
        warehouse,
        "select _academic_year from analytics.stg_student_special_ed where student_id = ?",
        [both_years[0][0]],
    )
    assert kept == [(CURRENT,)], "the newest year's record is kept"


def test_a_gradebook_name_used_in_two_sessions_of_one_year_is_loaded_for_both(
    simulator: Simulator, warehouse: Path
) -> None:
    by_name: dict[tuple[str, str], set[int]] = {}
    for roster in district(simulator).rosters:
        if roster.section.term.academic_year == PREVIOUS and roster.active_on(roster.section.term.end):
            key = (roster.student.local_id, roster.section.gradebook_name)
            by_name.setdefault(key, set()).add(roster.section.term.session_type_id)
    shared = sorted(key for key, sessions in by_name.items() if len(sessions) == 2)
    assert shared, "the district should hold a student with one gradebook name in both sessions of a year"
    local_student_id, gradebook_name = shared[0]
    for table in ("gradebook_overall_scores", "gradebook_scores"):
        sessions = rows(
            warehouse,
            f"select distinct _session_type from illuminate.{table}"
            " where local_student_id = ? and gradebook_name = ? and _academic_year = ? order by 1",
            [local_student_id, gradebook_name, PREVIOUS],
        )
        assert sessions == [("Normal",), ("Summer",)], table


def test_pool_results_of_a_student_who_tested_and_then_left_are_loaded(simulator: Simulator, warehouse: Path) -> None:
    sim_district = district(simulator)
    enrolled_today = {e.student.student_id for e in sim_district.enrollments if e.active_on(TODAY)}
    left = [r for r in sim_district.pool_results if r.student.student_id not in enrolled_today]
    assert left, "the district should hold pool results of students no longer enrolled"
    loaded = set(
        rows(
            warehouse,
            "select pool_assessment_id, local_student_id, date_taken"
            " from illuminate.pool_assessment_aggregate_student_responses",
        )
    )
    expected = {(r.pool.pool_assessment_id, r.student.local_id, r.date_taken) for r in left}
    assert expected <= loaded, f"{len(expected - loaded)} of {len(expected)} results of students who left are missing"
    every = {(r.pool.pool_assessment_id, r.student.local_id, r.date_taken) for r in sim_district.pool_results}
    assert loaded == every


def test_disabilities_sent_under_either_spelling_are_loaded(simulator: Simulator, warehouse: Path) -> None:
    disabled = {
        s.student_id: s.disability[0]
        for s in district(simulator).students.values()
        if s.sped == "current" and s.disability
    }
    assert {student_id % 2 for student_id in disabled} == {0, 1}, "both spellings should be on the wire"
    loaded = dict(
        rows(
            warehouse,
            "select student_id, primary_disability from illuminate.students"
            " where student_id in (select unnest(?)) and _academic_year = ?",
            [list(disabled), CURRENT],
        )
    )
    assert loaded, "students with a disability enrolled this year"
    assert {student_id: disabled[student_id] for student_id in loaded} == loaded
