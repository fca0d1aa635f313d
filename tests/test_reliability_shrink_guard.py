"""The shrink guard: an upstream glitch that answers a well-formed but (nearly) empty result must not empty the
warehouse. A refetch that would replace a table or slice with less than half its rows, or none, fails the run
(exit 1, one line naming the table and --allow-shrink) and changes no table; `--allow-shrink` loads it.

(An academic-year slice emptied for real is covered by test_sync_incremental.py.)"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sync_support import TODAY, loaded_keys, simulator_env, sync, table_snapshot

from illuminate_sync.pipelines.cli import main
from illuminate_sync.simulator import Simulator, SimulatorConfig
from illuminate_sync.sources.illuminate.errors import ShrinkGuardError

TABLES = ["sites", "users", "enrollment", "attendance_daily"]
SMALL_RUN = {"SOURCES__ILLUMINATE__ACADEMIC_YEARS_BACK": "0", "SOURCES__ILLUMINATE__MAX_CONCURRENCY": "4"}


@pytest.fixture(scope="module")
def simulator() -> Iterator[Simulator]:
    sim = Simulator(SimulatorConfig(students=60, seed=14, today=TODAY))
    sim.start(port=0)
    yield sim
    sim.stop()


@pytest.fixture
def warehouse(simulator: Simulator, tmp_path: Path) -> Iterator[tuple[Simulator, Path]]:
    """A warehouse synced from the healthy API; the test then breaks the API (faults cleared afterwards)."""
    db = tmp_path / "w.duckdb"
    simulator.clear_faults()
    sync(simulator, db, resources=TABLES, academic_years_back=0, max_concurrency=4)
    yield simulator, db
    simulator.clear_faults()


def cli_run(sim: Simulator, db: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, list[str]]:
    with simulator_env(sim, **SMALL_RUN):
        code = main(["run", "--duckdb", str(db), "--resources", ",".join(TABLES), "--skip-models", *extra])
    captured = capsys.readouterr()
    return code, [line for line in captured.err.splitlines() if line.startswith("illuminate-sync: error")]


def test_a_reference_table_answered_empty_fails_the_run_and_keeps_every_table(
    warehouse: tuple[Simulator, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    sim, db = warehouse
    before = table_snapshot(db)
    assert before["users"][0] > 0
    sim.inject_fault("Users", "empty_result")  # HTTP 200, {"num_results": 0, "results": []}, every time
    code, errors = cli_run(sim, db, capsys)
    assert code == 1
    assert len(errors) == 1 and "users" in errors[0] and "--allow-shrink" in errors[0], errors
    assert table_snapshot(db) == before, "a refused run changed a table"

    code, errors = cli_run(sim, db, capsys, "--allow-shrink")  # the user says the drop is real
    assert code == 0, errors
    assert loaded_keys(db, "users") == []


def test_a_slice_refetched_with_less_than_half_its_rows_is_refused_but_a_smaller_drop_loads(
    warehouse: tuple[Simulator, Path],
) -> None:
    sim, db = warehouse
    before = table_snapshot(db)
    held = len(loaded_keys(db, "enrollment"))
    sim.inject_fault("Enrollment", "empty_result", keep=0.3)  # 30 % of the rows, counts consistent
    with pytest.raises(ShrinkGuardError, match="enrollment academic year 2027"):
        sync(sim, db, resources=TABLES, academic_years_back=0, max_concurrency=4)
    assert table_snapshot(db) == before

    sim.clear_faults()
    sim.inject_fault("Enrollment", "empty_result", keep=0.7)  # not "far fewer": withdrawals happen
    sync(sim, db, resources=TABLES, academic_years_back=0, max_concurrency=4)
    assert len(loaded_keys(db, "enrollment")) == int(held * 0.7)


def test_an_attendance_date_answered_empty_is_refused(warehouse: tuple[Simulator, Path]) -> None:
    """Attendance is sliced by date (each refetched date replaces its rows): a glitch that answers one school day
    of the lookback with nothing would silently delete that day's marks, so the run must refuse it."""
    sim, db = warehouse
    before = table_snapshot(db)
    school_days = sorted({key[2] for key in loaded_keys(db, "attendance_daily")})
    day = school_days[-3]  # well inside the lookback the next run refetches
    assert day >= sim.today - timedelta(days=7)
    sim.inject_fault("Attendance/Daily", "empty_result", params={"date": day.isoformat()})
    with pytest.raises(ShrinkGuardError, match="attendance_daily"):
        sync(sim, db, resources=TABLES, academic_years_back=0, max_concurrency=4)
    assert table_snapshot(db) == before
