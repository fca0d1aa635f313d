"""OAuth2: a sync that outlives several short-lived tokens renews them and loads everything."""

from __future__ import annotations

import os
from pathlib import Path

from sync_support import TODAY, expected_keys, loaded_keys, simulator_env

from illuminate_sync.pipelines.sync import run_sync
from illuminate_sync.simulator import Simulator, SimulatorConfig

OAUTH1_NAMES = ("CONSUMER_KEY", "CONSUMER_SECRET", "TOKEN", "TOKEN_SECRET")


def test_a_sync_outliving_several_oauth2_tokens_loads_every_table(tmp_path: Path) -> None:
    sim = Simulator(SimulatorConfig(students=60, seed=4, today=TODAY, token_lifetime=1, latency=0.02))
    sim.start(port=0)
    try:
        client_id, client_secret = sim.oauth2
        oauth2_only = {
            "SOURCES__ILLUMINATE__CREDENTIALS__CLIENT_ID": client_id,
            "SOURCES__ILLUMINATE__CREDENTIALS__CLIENT_SECRET": client_secret,
        }
        with simulator_env(sim, **oauth2_only):
            for name in OAUTH1_NAMES:
                os.environ.pop(f"SOURCES__ILLUMINATE__CREDENTIALS__{name}", None)
            summary = run_sync(tmp_path / "w.duckdb", today=TODAY.isoformat(), academic_years_back=0, max_concurrency=4)
        assert summary.seconds > 3, "the run must outlive several 1-second tokens to prove renewal"
        assert sim.request_counts().get("OAuth2", 0) >= 3
        for table in ("students", "enrollment", "roster", "attendance_daily", "assessment_view"):
            assert set(loaded_keys(tmp_path / "w.duckdb", table)) == expected_keys(sim, table, (2027,)), table
    finally:
        sim.stop()
