"""On a terminal a run shows a live display (windows done of planned, rows, requests per second, time left); piped
(cron, an orchestrator), it prints the plain progress lines, with no terminal codes."""

from __future__ import annotations

import os
import re
import select
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from sync_support import TODAY, cli_env, illuminate_sync_command

from illuminate_sync.pipelines.progress import seconds_left
from illuminate_sync.simulator import Simulator, SimulatorConfig
from illuminate_sync.sources.illuminate.context import ResourceProgress

PLAIN_LINE = re.compile(r"^  [a-z_0-9]+: [\d,]+ windows, [\d,]+ pages, [\d,]+ rows, [\d.]+ s( \(not due: .*\))?$")
ARGUMENTS = ["run", "--skip-models", "--resources", "terms,students,enrollment,attendance_daily"]


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    simulator = Simulator(SimulatorConfig(students=30, seed=4, today=TODAY))
    simulator.start(port=0)
    simulator.inject_fault("*", "latency", seconds=0.03)  # a run of a few seconds: several refreshes
    yield simulator
    simulator.stop()


def run_on_a_terminal(command: list[str], env: dict[str, str]) -> tuple[int, str]:
    """The command with stdout and stderr on a pseudo-terminal; what the terminal received."""
    primary, secondary = os.openpty()
    process = subprocess.Popen(command, env=env, stdin=secondary, stdout=secondary, stderr=secondary)
    os.close(secondary)
    received = bytearray()
    while True:
        ready, _, _ = select.select([primary], [], [], 120)
        if not ready:
            process.kill()
            raise AssertionError(f"no output for 120 s: {received[-500:]!r}")
        try:
            chunk = os.read(primary, 65536)
        except OSError:  # the terminal closed: the process ended
            break
        if not chunk:
            break
        received.extend(chunk)
    os.close(primary)
    return process.wait(timeout=60), received.decode("utf-8", "replace")


def test_a_run_on_a_terminal_shows_live_progress_with_an_estimate(sim: Simulator, tmp_path: Path) -> None:
    command = [*illuminate_sync_command(), *ARGUMENTS, "--duckdb", str(tmp_path / "w.duckdb")]
    code, screen = run_on_a_terminal(command, cli_env(sim, SOURCES__ILLUMINATE__ACADEMIC_YEARS_BACK="0"))
    assert code == 0, screen[-2000:]
    assert "\x1b[" in screen, "no terminal codes: the display was not live"
    overall = r"[\d,]+/[\d,]+ windows \(planned so far\), [\d,]+ requests, [\d.]+ requests/s"
    assert re.search(overall, screen), screen[-2000:]
    assert "attendance_daily" in screen and "left" in screen and "requests/s" in screen
    assert re.search(r"attendance_daily\s*│\s*[\d,]+/[\d,]+", screen), "windows done of planned per table"
    assert "  students: " in screen, "each finished table's line stays in the scrollback"


def test_a_piped_run_prints_the_plain_lines_only(sim: Simulator, tmp_path: Path) -> None:
    command = [*illuminate_sync_command(), *ARGUMENTS, "--duckdb", str(tmp_path / "w.duckdb")]
    result = subprocess.run(
        command,
        env=cli_env(sim, SOURCES__ILLUMINATE__ACADEMIC_YEARS_BACK="0"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "\x1b[" not in result.stderr + result.stdout
    lines = result.stderr.splitlines()
    assert lines[0].startswith("syncing into ")
    progress = [line for line in lines[1:] if line.startswith("  ")]
    assert len(progress) == 4 and all(PLAIN_LINE.match(line) for line in progress), lines


def test_the_estimate_scales_the_time_so_far_by_the_windows_left() -> None:
    progress = ResourceProgress(requests_windows=10, windows_planned=40, started=100.0)
    assert seconds_left(progress, now=120.0) == pytest.approx(60.0)  # 2 s a window, 30 windows left
    assert seconds_left(ResourceProgress(windows_planned=5, started=100.0), now=101.0) is None
