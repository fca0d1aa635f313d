"""SIGKILL `illuminate-sync run` at random points (seeded), rerun, and the warehouse equals a clean run's: no
duplicates, no gaps. (A nightly incremental run killed while loading: test_reliability_persistent_failure.py.)

The simulator runs in the test process on loopback; the sync runs as the installed console script in a subprocess,
with its environment. A small per-request latency stretches the run so the kill points fall where they should: early
in the extract, in the middle of it, and while the load package is being written into DuckDB. Every wait is bounded.
"""

from __future__ import annotations

import random
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sync_support import (
    TODAY,
    assert_same_data,
    cli_env,
    illuminate_sync_command,
    sync,
)

from illuminate_sync.pipelines.duckdb_warehouse import default_data_dir
from illuminate_sync.simulator import Simulator, SimulatorConfig

OPTIONS = {"academic_years_back": 0, "max_concurrency": 4}
SETTINGS = {"SOURCES__ILLUMINATE__ACADEMIC_YEARS_BACK": "0", "SOURCES__ILLUMINATE__MAX_CONCURRENCY": "4"}
WAIT = 120.0
"""The longest any step waits (a run takes seconds; this only keeps a broken run from hanging the suite)."""


class SyncProcess:
    """`illuminate-sync run` in a subprocess, its output collected line by line as it arrives."""

    def __init__(self, sim: Simulator, db: Path) -> None:
        self.sim = sim
        self.db = db
        sim.reset_request_counts()
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            [*illuminate_sync_command(), "run", "--duckdb", str(db), "--skip-models"],
            env=cli_env(sim, **SETTINGS),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def requests(self) -> int:
        """API requests the run has made so far (the simulator counts them as they arrive)."""
        return sum(self.sim.request_counts().values())

    def loading(self) -> bool:
        """A normalized load package exists: the load step is writing it into DuckDB."""
        normalized = default_data_dir(self.db) / "illuminate_sync" / "load" / "normalized"
        return normalized.is_dir() and any(normalized.iterdir())

    def wait_for(self, condition: Callable[[], bool]) -> bool:
        """Waits until `condition` holds (True) or the run ended (False)."""
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            if condition():
                return True
            if self.process.poll() is not None:
                return False
            time.sleep(0.01)
        raise AssertionError(f"the run neither reached the point nor ended: {self.lines[-5:]}")

    def kill(self) -> bool:
        """SIGKILL; True when the run was still going (it was killed), False when it had ended already."""
        alive = self.process.poll() is None
        if alive:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=WAIT)
        self._reader.join(timeout=10)
        return alive and self.process.returncode == -signal.SIGKILL

    def finish(self) -> int:
        code = self.process.wait(timeout=WAIT)
        self._reader.join(timeout=10)
        return code


def kill_early(run: SyncProcess, rng: random.Random) -> bool:
    run.wait_for(lambda: any(line.startswith("syncing into") for line in run.lines))
    time.sleep(rng.uniform(0.1, 1.0))
    return run.kill()


def kill_mid_extract(run: SyncProcess, rng: random.Random) -> bool:
    """After a random share of the first run's ~380 requests (the extract of a nightly run makes ~110)."""
    requests = rng.randint(60, 300)
    run.wait_for(lambda: run.requests >= requests)
    return run.kill()


def kill_while_loading(run: SyncProcess, rng: random.Random) -> bool:
    run.wait_for(run.loading)
    time.sleep(rng.uniform(0.0, 0.6))
    return run.kill()


@pytest.fixture
def sim() -> Iterator[Simulator]:
    simulator = Simulator(SimulatorConfig(students=40, seed=13, today=TODAY))
    simulator.start(port=0)
    simulator.inject_fault("*", "latency", seconds=0.01)  # stretches the extract a little
    yield simulator
    simulator.stop()


def test_sigkill_at_random_points_then_a_rerun_equals_a_clean_run(sim: Simulator, tmp_path: Path) -> None:
    rng = random.Random(20261127)
    db, clean = tmp_path / "w.duckdb", tmp_path / "clean.duckdb"

    # the first run, killed three times: early in the extract, in the middle of it, while loading; then completed
    killed = [kill(SyncProcess(sim, db), rng) for kill in (kill_early, kill_mid_extract, kill_while_loading)]
    assert sum(killed) >= 2, f"the runs ended before their kill points: {killed}"
    rerun = SyncProcess(sim, db)
    assert rerun.finish() == 0, "\n".join(rerun.lines[-20:])
    sync(sim, clean, **OPTIONS)
    assert_same_data(db, clean)
