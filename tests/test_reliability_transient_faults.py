"""Transient faults at a realistic rate are retried: the run ends with exactly the data of a clean run, every retry
re-signed (OAuth1) or re-authorised (OAuth2).

Whole runs over real HTTP into real DuckDB files. The sync has no setting for its RetryPolicy, so `fast_retries`
shortens the backoff (and the timeout, for the slow-response fault) of the clients the runs create.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from sync_support import (
    TODAY,
    assert_same_data,
    expected_keys,
    fast_retries,
    loaded_keys,
    session_windows,
    simulator_env,
    sync,
    table_snapshot,
)

from illuminate_sync.pipelines.sync import run_sync
from illuminate_sync.simulator import Simulator, SimulatorConfig
from illuminate_sync.simulator.oauth import parse_authorization

OPTIONS = {"academic_years_back": 0, "max_concurrency": 4}


@pytest.fixture(scope="module")
def simulator() -> Iterator[Simulator]:
    sim = Simulator(SimulatorConfig(students=40, seed=11, today=TODAY))
    sim.start(port=0)
    yield sim
    sim.stop()


@pytest.fixture
def sim(simulator: Simulator) -> Iterator[Simulator]:
    simulator.clear_faults()
    simulator.reset_request_counts()
    yield simulator
    simulator.clear_faults()


@pytest.fixture(scope="module")
def clean_warehouse(simulator: Simulator, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same district synced without a single fault: what every faulty run must end with."""
    db = tmp_path_factory.mktemp("clean") / "clean.duckdb"
    summary = sync(simulator, db, **OPTIONS)
    assert summary.retries == 0
    return db


def record_oauth1_attempts(sim: Simulator) -> list[tuple[str, str | None]]:
    """(nonce, rejection reason or None) of every OAuth1-signed request the simulator checks from now on."""
    attempts: list[tuple[str, str | None]] = []
    verify = sim.verifier.verify

    def recording(method, url, query, form, header, now=None):  # type: ignore[no-untyped-def]
        reason = verify(method, url, query, form, header, now)
        attempts.append(((parse_authorization(header) or {}).get("oauth_nonce", ""), reason))
        return reason

    sim.verifier.verify = recording  # type: ignore[method-assign]
    return attempts


def test_transient_faults_at_a_realistic_rate_end_with_exactly_a_clean_runs_data(
    sim: Simulator, clean_warehouse: Path, tmp_path: Path
) -> None:
    """503, 500, 429 with Retry-After, a reset connection, a body cut off mid-JSON and a response slower than the
    timeout, spread over every endpoint: the run succeeds and every table equals the clean run's."""
    for kind, rate in (("503", 0.03), ("500", 0.02), ("drop_connection", 0.02), ("truncated_json", 0.02)):
        sim.inject_fault("*", kind, rate=rate)
    sim.inject_fault("*", "429", rate=0.01, retry_after=1)
    sim.inject_fault("Students", "latency", count=1, seconds=2.0)  # past the 1-second timeout below
    sim.inject_fault("Attendance/Daily", "latency", count=1, seconds=2.0)
    attempts = record_oauth1_attempts(sim)
    try:
        with fast_retries(timeout=1.0):
            summary = sync(sim, tmp_path / "w.duckdb", **OPTIONS)
    finally:
        del sim.verifier.verify  # the class's method again

    assert summary.retries >= 10, f"too few faults met to prove anything ({summary.retries} retries)"
    assert_same_data(tmp_path / "w.duckdb", clean_warehouse)
    # every attempt was signed afresh: the simulator refuses a nonce it has seen, and refused nothing
    nonces = Counter(nonce for nonce, _ in attempts)
    assert not [nonce for nonce, n in nonces.items() if n > 1], "a retry re-sent an OAuth1 nonce"
    assert [reason for _, reason in attempts if reason is not None] == []
    assert len(attempts) >= summary.requests - 1


def test_oauth2_retries_reauthorise_with_the_current_token(
    sim: Simulator, clean_warehouse: Path, tmp_path: Path
) -> None:
    """OAuth2 with 1-second tokens and faults on the API and on the token endpoint: retries carry a valid token
    (renewed when it expired during a backoff), and the tables equal the clean run's."""
    tables = ["sites", "students", "enrollment", "roster", "attendance_daily", "behavior"]
    lifetime = sim.tokens.lifetime
    sim.tokens.lifetime = 1
    sim.inject_fault("*", "503", rate=0.05)
    sim.inject_fault("*", "drop_connection", rate=0.02)
    sim.inject_fault("*", "latency", rate=0.05, seconds=0.3)  # lets tokens expire between attempts
    sim.inject_fault("Sites", "latency", count=1, seconds=1.5)  # the run outlives its first token for sure
    issued: list[str] = []
    issue = sim.tokens.issue
    sim.tokens.issue = lambda *credentials: issued.append(issue(*credentials)) or issued[-1]  # type: ignore[method-assign]
    sim.inject_fault("OAuth2", "503", count=2)
    client_id, client_secret = sim.oauth2
    oauth2 = {
        "SOURCES__ILLUMINATE__CREDENTIALS__CLIENT_ID": client_id,
        "SOURCES__ILLUMINATE__CREDENTIALS__CLIENT_SECRET": client_secret,
    }
    try:
        with simulator_env(sim, **oauth2), fast_retries():
            for name in ("CONSUMER_KEY", "CONSUMER_SECRET", "TOKEN", "TOKEN_SECRET"):
                os.environ.pop(f"SOURCES__ILLUMINATE__CREDENTIALS__{name}", None)
            summary = run_sync(
                tmp_path / "w.duckdb",
                resources=tables,
                today=sim.today.isoformat(),
                build_models_after=False,
                **OPTIONS,
            )
    finally:
        sim.tokens.lifetime = lifetime
        del sim.tokens.issue
    assert summary.retries > 0
    assert len(set(issued)) >= 2, "the 1-second tokens were not renewed"
    got, want = table_snapshot(tmp_path / "w.duckdb", False), table_snapshot(clean_warehouse, False)
    assert {table: got[table] for table in tables} == {table: want[table] for table in tables}


def test_an_html_page_with_status_200_is_retried_like_any_transient_fault(
    sim: Simulator, clean_warehouse: Path, tmp_path: Path
) -> None:
    """A proxy or load balancer answering one request with an HTML page and HTTP 200 is a transient fault (the
    issue lists it with 503 and the reset connection): the request is retried, the run loads everything."""
    tables = ["sites", "students", "enrollment"]
    sim.inject_fault("Students", "html_200", count=1)
    sim.inject_fault("Enrollment", "html_200", count=2)
    with fast_retries():
        summary = sync(sim, tmp_path / "w.duckdb", resources=tables, **OPTIONS)
    assert summary.retries >= 3
    got, want = table_snapshot(tmp_path / "w.duckdb", False), table_snapshot(clean_warehouse, False)
    assert {table: got[table] for table in tables} == {table: want[table] for table in tables}


def test_a_window_whose_pages_shift_during_the_run_loads_every_record_once(tmp_path: Path) -> None:
    """Records added upstream while a window is paged shift its later pages: the pages already handed on are kept,
    the window is fetched again, and the records seen twice are dropped, so the table equals the API's data.
    (1,100 students: the Students window spans two pages of 1,000.)"""
    sim = Simulator(SimulatorConfig(students=1100, seed=3, today=TODAY))
    sim.start(port=0)
    try:
        sync(sim, tmp_path / "clean.duckdb", resources=["terms", "students"], **OPTIONS)
        clean_requests = sim.request_counts()["Students"]
        sim.reset_request_counts()
        # both shifts inside the two-page window (the normal session), so its second page sees more records than its
        # first whatever order the concurrent windows' requests arrive in
        normal_session_start = min(start for start, _, _ in session_windows(sim, 2027))
        sim.inject_fault(
            "Students", "shift_pages", count=2, records=7, params={"start_date": normal_session_start.isoformat()}
        )
        sync(sim, tmp_path / "w.duckdb", resources=["terms", "students"], **OPTIONS)
        assert sim.request_counts()["Students"] > clean_requests, "the shifted window was not fetched again"
        loaded = loaded_keys(tmp_path / "w.duckdb", "students")
        assert len(loaded) == len(set(loaded)), "a record of the refetched window was loaded twice"
        assert set(loaded) == expected_keys(sim, "students", (2027,))
    finally:
        sim.stop()
