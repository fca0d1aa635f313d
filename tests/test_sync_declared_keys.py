"""Every catalog table's declared key holds, and its rows are the district's own (issue 19).

One small district is synced for two academic years, then changed as a night would change it and synced again.
After each run, for every table of the catalog (the per-user `school_focus_*` tables requested explicitly, since
they are off unless named):

- the declared key (`_`-columns added by the sync included) is unique and never NULL;
- the rows equal what the simulator's district holds for the synced years, computed from its records
  (`district_truth.py`), not from the API's answers to the sync's own requests;
- a few non-key columns equal the district's values (the disability under both of its spellings, corrected
  attendance, a withdrawal's leave date, rescored results, ended counselor assignments).
"""

from __future__ import annotations

import shutil
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest
from district_truth import DistrictTruth, Key, catalog_tables_without_truth, compared_columns
from sync_support import TODAY, YEARS, sync

from illuminate_sync.simulator import Simulator, SimulatorConfig
from illuminate_sync.simulator import calendar as cal
from illuminate_sync.sources.illuminate.catalog import load_catalog

EVERY_TABLE = list(load_catalog())
"""The per-user tables included: they are synced here by naming every table in `resources`."""
NIGHTS = ["after_two_year_sync", "after_nightly_rerun"]
NIGHTLY_OPTIONS: dict[str, Any] = {"gradebook_refresh_days": 1, "reconcile": True}
"""The rerun refetches the gradebook's current year (its as-of date moved with today) and reconciles the assessment
aggregates (a deleted result disappears only on a reconciling run, README "modified_after")."""


@dataclass
class Night:
    """One synced state: the warehouse as loaded, and the district's truth for it, taken before the next change."""

    db: Path
    truth: dict[str, set[Key]]
    values: dict[str, dict[Key, Any]] = field(default_factory=dict)
    """Per checked non-key column ("table.column"): the district's value per compared key."""


def loaded_rows(db: Path, table: str, columns: list[str]) -> list[Key]:
    quoted = ", ".join(f'"{column}"' for column in columns)
    with duckdb.connect(str(db), read_only=True) as con:
        return [tuple(row) for row in con.execute(f'select {quoted} from illuminate."{table}"').fetchall()]


def district_values(truth: DistrictTruth) -> dict[str, dict[Key, Any]]:
    """Non-key columns the district decides, per compared key (`compared_columns`) of their table."""
    d = truth.district
    disability = {
        (e.student.student_id, e.academic_year, year): (
            e.student.disability[0] if e.student.sped == "current" and e.student.disability else None
        )
        for year in truth.years
        for e in truth.enrollments(year)
    }
    return {
        # The API spells it `primary_disibility` for some students (even ids here): both must load.
        "students.primary_disability": disability,
        "students2.primary_disability": disability,
        "enrollment.leave_date": {
            (e.student.student_id, e.site_id, e.entry_date, year): e.leave_date
            for year in truth.years
            for e in truth.enrollments(year)
        },
        # An assignment spanning two years has a copy in each year's slice; a closed year is not refetched (README,
        # "academic year slice"), so only the newest year's copy, the one `stg_student_counselors` keeps, must follow
        # a change such as a withdrawal ending it.
        "student_counselors.end_date": {
            (span.student.student_id, span.counselor.user_id, span.start, years[-1]): span.end
            for span in d.counselor_spans
            if (years := [year for year in truth.years if truth.in_sessions(year, span.start, span.end)])
        },
        "attendance_daily.flag_code": {
            key: d.daily_flag(d.students[key[0]], key[2]) for key in truth.keys("attendance_daily")
        },
        "assessment_aggregate_student_responses.points": {
            (r.assessment.assessment_id, r.student.local_id, r.date_taken): d.result_percent(r)[0]
            for r in d.results
            if any(truth.in_sessions(year, r.date_taken, r.date_taken) for year in truth.years)
        },
        "pool_assessment_aggregate_student_responses.points": {
            (r.pool.pool_assessment_id, r.student.local_id, r.date_taken): sum(r.standard_points)
            for r in d.pool_results
            if r.date_taken <= truth.today
        },
    }


def take_night(sim: Simulator, db: Path, copy: Path) -> Night:
    shutil.copy2(db, copy)  # the next run rewrites `db`: this night's tests read the copy
    wal = db.with_name(db.name + ".wal")
    if wal.exists():  # not checkpointed yet: the copy needs it to hold the same data
        shutil.copy2(wal, copy.with_name(copy.name + ".wal"))
    truth = DistrictTruth(sim, YEARS)
    return Night(copy, {table: truth.keys(table) for table in EVERY_TABLE}, district_values(truth))


def change_the_district_overnight(sim: Simulator) -> dict[str, Any]:
    """A night's changes, each of a kind some strategy must catch, then today moves to the next school day."""
    today = sim.today
    current_year = sim.district.current_year
    recent_school_days = [day for day in cal.instructional_days(current_year) if day <= today - timedelta(days=7)]
    withdrawal_day = recent_school_days[-1]
    # The student withdrawn took a pool assessment this year: their result must stay (they tested, then left).
    pool_testers = sorted(
        r.student.student_id
        for r in sim.district.pool_results
        if r.pool.academic_year == current_year and sim.district.enrollment_on(r.student.student_id, withdrawal_day)
    )
    deleted = next(r for r in sim.district.results if r.assessment.academic_year == current_year)
    changes = {
        "added": sim.mutate("add_students", count=3, entry_date=(today - timedelta(days=7)).isoformat()),
        "rescored": sim.mutate("change_assessment_result", count=4),
        "deleted": sim.mutate(
            "delete_assessment_result",
            assessment_id=deleted.assessment.assessment_id,
            student_id=deleted.student.student_id,
        ),
        "withdrawn": sim.mutate("withdraw_student", student_id=pool_testers[0], date=withdrawal_day.isoformat()),
        "corrected": sim.mutate("correct_attendance", date=(today - timedelta(days=10)).isoformat(), flag_code="A"),
    }
    # Friday after Thanksgiving to Tuesday: a weekend and a new school day (new attendance, a later gradebook date).
    sim.advance_today(4)
    return changes


@pytest.fixture(scope="module")
def simulator() -> Simulator:
    sim = Simulator(SimulatorConfig(students=150, seed=19, today=TODAY))
    sim.start(port=0)
    yield sim
    sim.stop()


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("declared_keys") / "warehouse.duckdb"


@pytest.fixture(scope="module")
def after_two_year_sync(simulator: Simulator, warehouse: Path) -> Night:
    assert simulator.today == TODAY and cal.academic_year(TODAY) == YEARS[-1]
    sync(simulator, warehouse, resources=EVERY_TABLE)
    return take_night(simulator, warehouse, warehouse.with_name("after_two_year_sync.duckdb"))


@pytest.fixture(scope="module")
def nightly_changes(simulator: Simulator, after_two_year_sync: Night) -> dict[str, Any]:
    return change_the_district_overnight(simulator)


@pytest.fixture(scope="module")
def after_nightly_rerun(simulator: Simulator, warehouse: Path, nightly_changes: dict[str, Any]) -> Night:
    sync(simulator, warehouse, resources=EVERY_TABLE, **NIGHTLY_OPTIONS)
    return take_night(simulator, warehouse, warehouse.with_name("after_nightly_rerun.duckdb"))


def cases(xfail: dict[str, str] | None = None) -> list[Any]:
    """(night, table) for every night and table; `xfail` names the tables whose sync result is known wrong."""
    xfail = xfail or {}
    return [
        pytest.param(night, table, id=f"{night}-{table}", marks=[pytest.mark.xfail(strict=True, reason=xfail[table])])
        if table in xfail
        else pytest.param(night, table, id=f"{night}-{table}")
        for night in NIGHTS
        for table in EVERY_TABLE
    ]


def test_every_catalog_table_has_a_district_truth() -> None:
    assert catalog_tables_without_truth() == []


@pytest.mark.parametrize(("night", "table"), cases())
def test_the_declared_key_is_unique_and_never_null(request: pytest.FixtureRequest, night: str, table: str) -> None:
    synced: Night = request.getfixturevalue(night)
    endpoint = load_catalog()[table]
    keys = loaded_rows(synced.db, table, list(endpoint.primary_key))
    assert keys, f"{table} is empty: nothing to check"
    with_null = [key for key in keys if any(part is None for part in key)]
    assert not with_null, f"{table}: {len(with_null)} keys with a NULL part, e.g. {with_null[:3]}"
    repeated = [key for key, count in Counter(keys).items() if count > 1]
    assert not repeated, f"{table}: {len(repeated)} keys {endpoint.primary_key} repeated, e.g. {repeated[:3]}"


@pytest.mark.parametrize(("night", "table"), cases())
def test_the_table_holds_exactly_the_districts_rows(request: pytest.FixtureRequest, night: str, table: str) -> None:
    synced: Night = request.getfixturevalue(night)
    expected = synced.truth[table]
    assert expected, f"the district defines no {table} rows: the comparison would prove nothing"
    loaded = set(loaded_rows(synced.db, table, compared_columns(load_catalog()[table])))
    missing, extra = sorted(expected - loaded, key=repr), sorted(loaded - expected, key=repr)
    assert not missing and not extra, (
        f"{table} {compared_columns(load_catalog()[table])}: {len(missing)} of {len(expected)} district rows missing,"
        f" e.g. {missing[:3]}; {len(extra)} rows the district does not hold, e.g. {extra[:3]}"
    )


CHECKED_VALUES = [
    "students.primary_disability",
    "students2.primary_disability",
    "enrollment.leave_date",
    "student_counselors.end_date",
    "attendance_daily.flag_code",
    "assessment_aggregate_student_responses.points",
    "pool_assessment_aggregate_student_responses.points",
]


@pytest.mark.parametrize("night", NIGHTS)
@pytest.mark.parametrize("checked", CHECKED_VALUES)
def test_a_non_key_column_holds_the_districts_values(request: pytest.FixtureRequest, night: str, checked: str) -> None:
    synced: Night = request.getfixturevalue(night)
    table, column = checked.split(".")
    key_columns = compared_columns(load_catalog()[table])
    loaded = {row[:-1]: row[-1] for row in loaded_rows(synced.db, table, [*key_columns, column])}
    expected = synced.values[checked]
    assert any(value is not None for value in expected.values()), f"no {checked} value to compare"
    differing = sorted(
        ((key, loaded.get(key), value) for key, value in expected.items() if loaded.get(key) != value), key=repr
    )
    assert not differing, f"{checked}: {len(differing)} rows differ (key, loaded, district), e.g. {differing[:3]}"


def test_the_night_changed_what_the_strategies_must_catch(
    simulator: Simulator, nightly_changes: dict[str, Any], after_nightly_rerun: Night
) -> None:
    """The rerun's checks mean something only if the changes reached the district's truth."""
    withdrawn = nightly_changes["withdrawn"]
    pool_keys = after_nightly_rerun.truth["pool_assessment_aggregate_student_responses"]
    local_id = simulator.district.students[withdrawn["student_id"]].local_id
    assert any(key[1] == local_id for key in pool_keys), "the withdrawn student's pool result should be kept"
    assert simulator.district.enrollment_on(withdrawn["student_id"], simulator.today) is None
    deleted = tuple(nightly_changes["deleted"]["key"])
    assert (deleted[0], deleted[1], date.fromisoformat(deleted[2])) not in after_nightly_rerun.truth[
        "assessment_aggregate_student_responses"
    ]
    added = set(nightly_changes["added"]["student_ids"])
    assert {key[0] for key in after_nightly_rerun.truth["enrollment"]} >= added
    corrected = nightly_changes["corrected"]
    day = date.fromisoformat(corrected["date"])
    flags = after_nightly_rerun.values["attendance_daily.flag_code"]
    assert [flag for key, flag in flags.items() if key[0] == corrected["student_id"] and key[2] == day] == ["A"]
