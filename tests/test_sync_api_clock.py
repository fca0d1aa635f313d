"""The API's clock: its timestamps and its `modified_after` filter are wall-clock times of the server, in a zone the
documentation does not name. A nightly run sees every change whatever that zone is, and with `api_timezone` set only
the changes since the last run (less the cache's 2 hours)."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sync_support import TODAY, sync

from illuminate_sync.simulator import Simulator, SimulatorConfig
from illuminate_sync.sources.illuminate.windows import api_wall_clock

RESULTS = "assessment_aggregate_student_responses"
RESCORED = 4
ONLY_THE_RESULTS = {"reconcile_every_n_runs": 0, "resources": ["assessments", RESULTS]}
"""The results and the assessments they belong to, without reconciliation (it would refetch the rescored results
anyway: these tests look at the cursor alone)."""


def _results_written_the_night_after_a_rescoring(server_zone: str, tmp_path: Path, **options: Any) -> int:
    sim = Simulator(SimulatorConfig(students=40, seed=3, today=TODAY, timezone=server_zone))
    sim.start(port=0)
    try:
        db = tmp_path / "warehouse.duckdb"
        sync(sim, db, **ONLY_THE_RESULTS, **options)
        sim.mutate("change_assessment_result", count=RESCORED)
        nightly = sync(sim, db, **ONLY_THE_RESULTS, **options)
        written = nightly.tables[RESULTS].rows_written
        assert written is not None
        return written
    finally:
        sim.stop()


@pytest.mark.parametrize("server_zone", ["Pacific/Honolulu", "Asia/Tokyo"])
def test_results_rescored_after_a_run_arrive_the_next_night_whatever_the_servers_zone(
    server_zone: str, tmp_path: Path
) -> None:
    """Honolulu's clock is 10 hours behind UTC: a cursor written in UTC would have skipped the rescoring."""
    assert _results_written_the_night_after_a_rescoring(server_zone, tmp_path) >= RESCORED


def test_with_the_api_timezone_set_a_nightly_refetches_exactly_the_changed_results(tmp_path: Path) -> None:
    written = _results_written_the_night_after_a_rescoring("America/Chicago", tmp_path, api_timezone="America/Chicago")
    assert written == RESCORED


@pytest.mark.parametrize(
    ("cursor_utc", "zone", "sent"),
    [
        ("2026-12-01 12:00:00", "America/Los_Angeles", "2026-12-01 04:00:00"),  # PST, UTC-8
        ("2026-07-01 12:00:00", "America/Los_Angeles", "2026-07-01 05:00:00"),  # PDT, UTC-7
        ("2026-12-01 03:00:00", "America/New_York", "2026-11-30 22:00:00"),  # the day before
        ("2026-12-01 12:00:00", "UTC", "2026-12-01 12:00:00"),
        ("2026-12-01 12:00:00", None, "2026-12-01 00:00:00"),  # unknown zone: 12 hours earlier
    ],
)
def test_a_cursor_is_sent_as_the_servers_wall_clock(cursor_utc: str, zone: str | None, sent: str) -> None:
    assert api_wall_clock(cursor_utc, ZoneInfo(zone) if zone else None) == sent
