"""`max_concurrency = "auto"` against the simulator's capacity model (workers, a rate limit, faults) over HTTP.

The limit rises with spare capacity, drops on 429 and 503 bursts and on timeouts (pausing for `Retry-After`), never
exceeds its ceiling nor a shared budget, and a fixed number never moves. Assertions are on counts and limits; the
only times asserted are lower bounds (a pause lasts at least its `Retry-After`), which a busy machine cannot break.
The policy's decisions on scripted outcomes are tested without a server at the end.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sync_support import cli_env, run_cli

from illuminate_sync.simulator import Simulator
from illuminate_sync.sources.illuminate.budget import RequestBudget
from illuminate_sync.sources.illuminate.client import IlluminateClient, RetryPolicy
from illuminate_sync.sources.illuminate.concurrency import (
    AUTO_START,
    BACKOFF_FACTOR,
    PROBE_HOLD_ROUNDS,
    AdaptivePolicy,
    AdjustableLimiter,
    Decision,
    parse_concurrency,
)
from illuminate_sync.sources.illuminate.errors import ConfigurationError

PATIENT_RETRY = RetryPolicy(max_attempts=10, backoff_base=0.05, backoff_max=5.0, timeout=10.0)
"""Retries that honour a `Retry-After` of a few seconds (the tests' usual retry policy caps waits at 0.05 s)."""


@pytest.fixture
def sim(http_sim: Simulator) -> Iterator[Simulator]:
    """The module's simulator with unlimited capacity and 50 ms per request; restored afterwards."""
    http_sim.set_capacity(workers=None, rate_limit=None)
    http_sim.reset_capacity_stats()
    http_sim.config.latency = 0.05
    yield http_sim
    http_sim.set_capacity(workers=None, rate_limit=None)
    http_sim.config.latency = 0.0


def fetch_sites(client: IlluminateClient, n: int) -> list[object]:
    """`n` GETs of Sites/ through the client's fan-out pool (as many at once as the client lets through)."""
    return list(client.map_concurrently(lambda _: client.get_json("Sites/"), range(n)))


def lowered(timeline: list[tuple[float, int]]) -> bool:
    """Whether the limit went down at some point."""
    return any(later < earlier for (_, earlier), (_, later) in itertools.pairwise(timeline))


# ------------------------------------------------------------------------------------------------- against the server
def test_with_spare_capacity_the_limit_rises_above_its_start(sim: Simulator, make_client: Callable) -> None:
    client = make_client(max_concurrency="auto", retry=PATIENT_RETRY)
    assert len(fetch_sites(client, 300)) == 300
    record = client.stats.concurrency
    assert record.mode == "auto" and record.start == AUTO_START
    assert record.highest > AUTO_START + 2, record.timeline
    assert record.backoffs == 0
    assert client.stats.max_in_flight > AUTO_START
    assert client.stats.max_in_flight <= 16  # the default ceiling


def test_never_more_requests_in_flight_than_the_ceiling(sim: Simulator, make_client: Callable) -> None:
    client = make_client(max_concurrency="auto", max_concurrency_ceiling=3, retry=PATIENT_RETRY)
    assert len(fetch_sites(client, 150)) == 150
    assert client.stats.concurrency.highest == 3 and client.stats.concurrency.start == 3
    assert client.stats.max_in_flight <= 3


def test_a_rate_limit_lowers_the_limit_and_few_requests_meet_429(sim: Simulator, make_client: Callable) -> None:
    sim.set_capacity(rate_limit=25, rate_limit_burst=5)  # 4 in flight at 50 ms ask for 80 requests/s
    fixed = make_client(max_concurrency=16, retry=PATIENT_RETRY)
    assert len(fetch_sites(fixed, 100)) == 100
    refused_fixed = sim.capacity_stats()["rate_limited"]
    sim.set_capacity(rate_limit=25, rate_limit_burst=5)  # a full bucket again
    sim.reset_capacity_stats()
    auto = make_client(max_concurrency="auto", retry=PATIENT_RETRY)
    assert len(fetch_sites(auto, 100)) == 100
    refused_auto = sim.capacity_stats()["rate_limited"]
    record = auto.stats.concurrency
    assert record.backoffs >= 1 and record.lowest < AUTO_START, record.timeline
    assert record.paused >= 1  # the 429's Retry-After held every new request back, not only the refused one
    assert refused_auto <= 10, (refused_auto, record.timeline)
    assert refused_auto * 3 < refused_fixed, (refused_auto, refused_fixed)
    assert auto.stats.retries == refused_auto


def test_a_503_burst_backs_off_and_honours_retry_after(sim: Simulator, make_client: Callable) -> None:
    client = make_client(max_concurrency="auto", retry=PATIENT_RETRY)
    assert len(fetch_sites(client, 40)) == 40  # up from the start first
    before = client.stats.concurrency.final
    sim.inject_fault("Sites", "503", count=4, retry_after=1)
    started = time.monotonic()
    assert len(fetch_sites(client, 40)) == 40
    record = client.stats.concurrency
    assert record.backoffs >= 1 and record.lowest < before and lowered(record.timeline), record.timeline
    assert record.paused >= 1 and record.paused_s >= 0.99
    assert time.monotonic() - started >= 0.99  # a lower bound only: a busy machine makes it longer, never shorter
    assert client.stats.retries == 4


def test_timeouts_back_off(sim: Simulator, make_client: Callable) -> None:
    client = make_client(
        max_concurrency="auto", retry=RetryPolicy(max_attempts=5, backoff_base=0.01, backoff_max=0.05, timeout=0.5)
    )
    sim.inject_fault("Sites", "latency", count=2, seconds=2.0)
    assert len(fetch_sites(client, 30)) == 30
    record = client.stats.concurrency
    assert record.backoffs >= 1 and lowered(record.timeline), record.timeline
    assert record.paused == 0  # a timeout carries no Retry-After


def test_auto_within_a_shared_budget_never_exceeds_it(sim: Simulator, make_client: Callable) -> None:
    budget = RequestBudget(3)
    clients = [make_client(max_concurrency="auto", budget=budget, retry=PATIENT_RETRY) for _ in range(2)]
    results: list[int] = []
    threads = [threading.Thread(target=lambda c=c: results.append(len(fetch_sites(c, 100)))) for c in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert results == [100, 100]
    assert budget.max_in_flight <= 3
    assert all(client.stats.max_in_flight <= 3 for client in clients)


def test_a_fixed_number_never_moves(sim: Simulator, make_client: Callable) -> None:
    client = make_client(max_concurrency=4, retry=PATIENT_RETRY)
    sim.inject_fault("Sites", "503", count=3, retry_after=0)
    assert len(fetch_sites(client, 60)) == 60
    record = client.stats.concurrency
    assert (record.mode, record.lowest, record.highest, record.final) == ("fixed", 4, 4, 4)
    assert record.backoffs == 0 and record.paused == 0 and len(record.timeline) == 1
    assert record.describe(client.stats.max_in_flight) == ""


@pytest.mark.parametrize(
    ("options", "variable"),
    [
        ({"max_concurrency": "lots"}, "SOURCES__ILLUMINATE__MAX_CONCURRENCY must be"),
        ({"max_concurrency": 0}, "SOURCES__ILLUMINATE__MAX_CONCURRENCY must be"),
        ({"max_concurrency": "auto", "max_concurrency_ceiling": 0}, "SOURCES__ILLUMINATE__MAX_CONCURRENCY_CEILING"),
    ],
)
def test_a_bad_value_is_one_line_naming_the_setting(
    make_client: Callable, options: dict[str, object], variable: str
) -> None:
    with pytest.raises(ConfigurationError) as failure:
        make_client(**options)
    assert str(failure.value).startswith(variable) and "\n" not in str(failure.value)


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("MAX_CONCURRENCY", "lots", "'lots' is not a whole number of requests in flight >= 1, or auto"),
        ("MAX_CONCURRENCY_CEILING", "0", "0 is not a whole number of requests in flight >= 1"),
    ],
)
def test_a_bad_setting_of_the_run_is_one_line(
    http_sim: Simulator, tmp_path: Path, variable: str, value: str, expected: str
) -> None:
    settings = {"SOURCES__ILLUMINATE__MAX_CONCURRENCY": "auto", f"SOURCES__ILLUMINATE__{variable}": value}
    env = cli_env(http_sim, **settings)
    result = run_cli(tmp_path, env, "run", "--duckdb", "w.duckdb", "--resources", "sites")
    assert result.returncode == 1
    assert result.stderr.splitlines() == [f"illuminate-sync: error: SOURCES__ILLUMINATE__{variable}: {expected}"]
    assert not (tmp_path / "w.duckdb").exists()


def test_a_run_with_auto_says_what_the_limit_did(http_sim: Simulator, tmp_path: Path) -> None:
    env = cli_env(http_sim, SOURCES__ILLUMINATE__MAX_CONCURRENCY="AUTO", SOURCES__ILLUMINATE__ACADEMIC_YEARS_BACK="0")
    result = run_cli(tmp_path, env, "run", "--duckdb", "w.duckdb", "--resources", "sites,students", "--skip-models")
    assert result.returncode == 0, result.stderr
    line = next(line for line in result.stdout.splitlines() if " requests (" in line)
    assert f"; concurrency auto: {AUTO_START} -> " in line and "ceiling 16" in line, line


def test_an_instance_may_set_auto(monkeypatch: pytest.MonkeyPatch, http_sim: Simulator) -> None:
    from illuminate_sync.sources.illuminate.instances import resolve_instance

    prefix = "SOURCES__ILLUMINATE__INSTANCES__NORTH__"
    monkeypatch.setenv(f"{prefix}BASE_URL", http_sim.base_url)
    for name, value in zip(("CONSUMER_KEY", "CONSUMER_SECRET", "TOKEN", "TOKEN_SECRET"), http_sim.oauth1, strict=True):
        monkeypatch.setenv(f"{prefix}CREDENTIALS__{name}", value)
    monkeypatch.setenv(f"{prefix}MAX_CONCURRENCY", "auto")
    monkeypatch.setenv(f"{prefix}MAX_CONCURRENCY_CEILING", "6")
    overrides = resolve_instance("north").overrides
    assert parse_concurrency(overrides["max_concurrency"]) == "auto"
    assert overrides["max_concurrency_ceiling"] == 6


# --------------------------------------------------------------------------------------- the limiter and the policy
def test_a_lower_limit_holds_new_slots_until_enough_are_released() -> None:
    limiter = AdjustableLimiter(2)
    limiter.acquire()
    limiter.acquire()
    limiter.set_limit(1)
    got = threading.Event()
    waiter = threading.Thread(target=lambda: (limiter.acquire(), got.set()))
    waiter.start()
    assert not got.wait(0.2)
    limiter.release()  # 1 in flight: still at the limit
    assert not got.wait(0.2)
    limiter.release()
    assert got.wait(10)
    waiter.join()


def test_a_pause_holds_every_new_slot_for_its_length() -> None:
    limiter = AdjustableLimiter(4)
    assert limiter.pause(0.3) > 0
    assert limiter.pause(0.1) == 0  # within the running pause: not longer
    started = time.monotonic()
    limiter.acquire()
    assert time.monotonic() - started >= 0.29


def ok_round(policy: AdaptivePolicy, latency: float = 0.2, reached: bool = True) -> Decision:
    """As many successful answers as the limit (one round); the last decision."""
    decision = Decision(policy.limit)
    for _ in range(policy.limit):
        decision = policy.observe("ok", latency, policy.epoch, None, lambda: reached)
    return decision


def test_the_policy_rises_by_one_per_round_while_latency_holds_and_the_limit_is_reached() -> None:
    policy = AdaptivePolicy(ceiling=16)
    assert [ok_round(policy).limit for _ in range(3)] == [5, 6, 7]
    assert ok_round(policy, reached=False).limit == 7  # not reached: no evidence for more


def test_the_policy_stops_at_the_ceiling() -> None:
    policy = AdaptivePolicy(ceiling=6)
    limits = [ok_round(policy).limit for _ in range(10)]
    assert max(limits) == 6 and limits[-1] == 6


def test_the_policy_steps_down_when_latency_grows() -> None:
    policy = AdaptivePolicy(ceiling=16)
    ok_round(policy, 0.2)
    ok_round(policy, 0.2)  # 6
    assert ok_round(policy, 0.26).limit == 5  # 30 % slower: the server queues
    assert ok_round(policy, 0.22).limit == 6  # within the tolerance again


def test_an_overload_cuts_the_limit_once_per_round_trip_and_passes_retry_after() -> None:
    policy = AdaptivePolicy(ceiling=16)
    for _ in range(4):
        ok_round(policy)  # 8
    sent_in = policy.epoch
    first = policy.observe("overload", 0.01, sent_in, 2.0, lambda: True)
    assert first == Decision(int(8 * BACKOFF_FACTOR), 2.0, backoff=True)
    second = policy.observe("overload", 0.01, sent_in, 1.0, lambda: True)  # sent before the cut
    assert second == Decision(first.limit, 1.0, backoff=False)
    third = policy.observe("overload", 0.01, policy.epoch, None, lambda: True)
    assert third.backoff and third.limit == int(first.limit * BACKOFF_FACTOR) and third.pause == 0


def test_after_an_overload_the_refused_level_is_tried_again_only_after_a_hold() -> None:
    policy = AdaptivePolicy(ceiling=16)
    for _ in range(4):
        ok_round(policy)  # 8
    policy.observe("overload", 0.01, policy.epoch, None, lambda: True)  # refused at 8: 6
    assert ok_round(policy).limit == 7  # below the refused level: at once
    held = [ok_round(policy).limit for _ in range(PROBE_HOLD_ROUNDS)]
    assert held[:-1] == [7] * (PROBE_HOLD_ROUNDS - 1) and held[-1] == 8
    assert ok_round(policy).limit == 8  # the next level is held as long again


def test_settings_are_read_as_numbers_or_auto() -> None:
    assert [parse_concurrency(value) for value in (8, "12", " Auto ", "auto")] == [8, 12, "auto", "auto"]
    assert [parse_concurrency(value) for value in (0, "0", "-4", "lots", "4.5", True, None)] == [None] * 7
