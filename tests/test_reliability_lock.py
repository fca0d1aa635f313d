"""Two runs on the same DuckDB file at once: the second exits at once with a clear message and a non-zero code, and
the first is not disturbed (it finishes and loads everything)."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sync_support import TODAY, cli_env, expected_keys, illuminate_sync_command, loaded_keys, sync

from illuminate_sync.simulator import Simulator, SimulatorConfig
from illuminate_sync.sources.illuminate.errors import IlluminateError

TABLES = ["sites", "students", "enrollment", "attendance_daily"]
SETTINGS = {"SOURCES__ILLUMINATE__ACADEMIC_YEARS_BACK": "0", "SOURCES__ILLUMINATE__MAX_CONCURRENCY": "2"}


@pytest.fixture
def sim() -> Iterator[Simulator]:
    simulator = Simulator(SimulatorConfig(students=40, seed=15, today=TODAY))
    simulator.start(port=0)
    yield simulator
    simulator.stop()


def start_run(sim: Simulator, db: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*illuminate_sync_command(), "run", "--duckdb", str(db), "--resources", ",".join(TABLES), "--skip-models"],
        env=cli_env(sim, **SETTINGS),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_a_second_run_on_the_same_file_exits_at_once_and_the_first_finishes_intact(
    sim: Simulator, tmp_path: Path
) -> None:
    db = tmp_path / "w.duckdb"
    sim.inject_fault("Attendance/Daily", "latency", seconds=0.1)  # the first run lasts a few seconds
    first = start_run(sim, db)
    try:
        deadline = time.monotonic() + 120
        while sim.request_counts().get("Attendance/Daily", 0) < 5:  # it holds the lock and is extracting
            assert first.poll() is None, first.communicate()[1]
            assert time.monotonic() < deadline, "the first run never started extracting"
            time.sleep(0.02)

        second = subprocess.run(
            [*illuminate_sync_command(), "run", "--duckdb", str(db), "--skip-models"],
            env=cli_env(sim, **SETTINGS),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert second.returncode == 1
        assert (
            second.stderr.strip()
            .splitlines()[-1]
            .startswith("illuminate-sync: error: another illuminate-sync run is using")
        ), second.stderr
        assert "Traceback" not in second.stderr
        started = time.monotonic()
        with pytest.raises(IlluminateError, match="another illuminate-sync run is using") as refused:
            sync(sim, db, resources=TABLES, academic_years_back=0)
        assert time.monotonic() - started < 1.0, "the second run waited instead of exiting at once"
        assert str(db) in str(refused.value)

        assert first.poll() is None, "the first run should still be going: the test proves nothing otherwise"
    finally:
        _, err = first.communicate(timeout=120)
    assert first.returncode == 0, err[-3000:]
    for table in TABLES:
        loaded = loaded_keys(db, table)
        assert len(loaded) == len(set(loaded)), table
        assert set(loaded) == expected_keys(sim, table, (2027,)), table
