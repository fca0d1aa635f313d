"""The capacity model: N workers serve API requests in arrival order, and a token bucket answers 429 + Retry-After.

Timing assertions have wide margins: the machine running the tests may be busy.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from illuminate_sync.pipelines.cli import main
from illuminate_sync.simulator import Simulator, SimulatorConfig
from illuminate_sync.simulator.testing import get, oauth2_token

TODAY = dt.date(2026, 11, 27)
LATENCY = 0.2


@pytest.fixture(scope="module")
def server() -> Iterator[Simulator]:
    with Simulator(SimulatorConfig(students=30, seed=3, today=TODAY)) as s:
        yield s


@pytest.fixture
def sim(server: Simulator) -> Iterator[Simulator]:
    server.set_capacity(workers=None, rate_limit=None)
    server.reset_capacity_stats()
    server.config.latency = 0.0
    yield server
    server.set_capacity(workers=None, rate_limit=None)
    server.config.latency = 0.0


def control(sim: Simulator, method: str, action: str, payload: object = None) -> requests.Response:
    url = f"http://127.0.0.1:{sim.port}/_control/{action}"
    return requests.request(method, url, json=payload, timeout=30)


def concurrent_gets(sim: Simulator, n: int) -> tuple[float, list[int]]:
    barrier = threading.Barrier(n)

    def one(_: int) -> int:
        barrier.wait()
        return get(sim, "Sites").status_code

    started = time.monotonic()
    with ThreadPoolExecutor(n) as pool:
        statuses = list(pool.map(one, range(n)))
    return time.monotonic() - started, statuses


def wait_until_queued(sim: Simulator, n: int) -> None:
    deadline = time.monotonic() + 10
    while sim.capacity_stats()["queued"] < n:
        assert time.monotonic() < deadline, f"never {n} queued: {sim.capacity_stats()}"
        time.sleep(0.005)


def test_two_workers_serve_six_requests_in_three_rounds(sim: Simulator) -> None:
    sim.config.latency = LATENCY
    sim.set_capacity(workers=2)
    elapsed, statuses = concurrent_gets(sim, 6)
    assert statuses == [200] * 6
    assert elapsed >= 2.5 * LATENCY  # three rounds of 0.2 s, not one
    stats = sim.capacity_stats()
    assert stats["max_in_flight"] == 2 and stats["served"] == 6 and stats["queued"] == 0
    assert stats["max_queued"] >= 2


def test_without_workers_requests_overlap(sim: Simulator) -> None:
    sim.config.latency = LATENCY
    _, statuses = concurrent_gets(sim, 6)
    assert statuses == [200] * 6
    stats = sim.capacity_stats()
    assert stats["workers"] is None and stats["max_in_flight"] >= 3 and stats["max_queued"] == 0


def test_waiting_requests_are_served_in_arrival_order(sim: Simulator) -> None:
    sim.config.latency = LATENCY
    sim.set_capacity(workers=1)
    finished: list[int] = []
    lock = threading.Lock()

    def one(index: int) -> None:
        assert get(sim, "Sites").status_code == 200
        with lock:
            finished.append(index)

    threads = [threading.Thread(target=one, args=(index,)) for index in range(5)]
    threads[0].start()  # holds the worker
    deadline = time.monotonic() + 10
    while sim.capacity_stats()["in_flight"] < 1:
        assert time.monotonic() < deadline
        time.sleep(0.005)
    for position, thread in enumerate(threads[1:], start=1):
        thread.start()
        wait_until_queued(sim, position)  # each arrives after the one before is in the queue
    for thread in threads:
        thread.join(timeout=30)
    assert finished == [0, 1, 2, 3, 4]
    assert sim.capacity_stats()["max_in_flight"] == 1


def test_the_token_endpoint_and_control_api_are_not_gated(sim: Simulator) -> None:
    sim.config.latency = 1.0
    sim.set_capacity(workers=1, rate_limit=1, rate_limit_burst=1)
    holder = threading.Thread(target=get, args=(sim, "Sites"))
    holder.start()
    wait_until_in_flight(sim)
    started = time.monotonic()
    assert oauth2_token(sim)  # neither waits for the busy worker nor meets the empty bucket
    assert control(sim, "GET", "capacity").json()["in_flight"] == 1
    assert time.monotonic() - started < 0.9
    holder.join(timeout=30)


def wait_until_in_flight(sim: Simulator) -> None:
    deadline = time.monotonic() + 10
    while sim.capacity_stats()["in_flight"] < 1:
        assert time.monotonic() < deadline
        time.sleep(0.005)


def test_a_burst_beyond_the_bucket_gets_429_with_retry_after(sim: Simulator) -> None:
    sim.set_capacity(rate_limit=1, rate_limit_burst=2)
    session = requests.Session()
    responses = [get(sim, "Sites", session=session) for _ in range(4)]
    statuses = [response.status_code for response in responses]
    assert statuses[:2] == [200, 200] and 429 in statuses
    refused = next(response for response in responses if response.status_code == 429)
    retry_after = int(refused.headers["Retry-After"])
    assert retry_after >= 1
    time.sleep(retry_after)
    assert get(sim, "Sites", session=session).status_code == 200
    assert sim.capacity_stats()["rate_limited"] == statuses.count(429)


def test_control_api_sets_the_capacity_and_reports_the_counters(sim: Simulator) -> None:
    answer = control(sim, "POST", "capacity", {"workers": 12, "rate_limit": 40, "rate_limit_burst": 50})
    assert answer.status_code == 200
    assert answer.json()["workers"] == 12 and answer.json()["rate_limit_burst"] == 50
    assert (sim.config.workers, sim.config.rate_limit) == (12, 40)
    control(sim, "POST", "capacity", {"rate_limit": 3})  # a new rate without a burst: the default burst, 3
    for _ in range(5):
        get(sim, "Sites")
    stats = control(sim, "GET", "capacity").json()
    assert stats["workers"] == 12 and stats["rate_limit"] == 3 and stats["rate_limit_burst"] == 3
    assert stats["served"] == 3 and stats["rate_limited"] == 2
    assert stats["queued"] == 0 and stats["max_in_flight"] == 1
    cleared = control(sim, "POST", "capacity", {"workers": None, "rate_limit": None}).json()
    assert cleared["workers"] is None and cleared["rate_limit"] is None and cleared["rate_limit_burst"] is None
    assert get(sim, "Sites").status_code == 200
    reset = control(sim, "POST", "capacity/reset").json()
    assert reset["served"] == 0 and reset["rate_limited"] == 0


@pytest.mark.parametrize(
    "payload",
    [
        {"workers": 0},
        {"workers": -3},
        {"workers": 1.5},
        {"rate_limit": 0},
        {"rate_limit": -1},
        {"rate_limit": "x"},
        {"rate_limit": 5, "rate_limit_burst": 0},
        {"threads": 4},
        [1, 2],
    ],
)
def test_bad_values_are_refused_with_a_message(sim: Simulator, payload: object) -> None:
    answer = control(sim, "POST", "capacity", payload)
    assert answer.status_code == 400 and answer.json()["error"]
    assert sim.capacity_stats()["workers"] is None and sim.capacity_stats()["rate_limit"] is None


def test_the_python_api_refuses_bad_values(sim: Simulator) -> None:
    with pytest.raises(ValueError, match="workers"):
        Simulator(SimulatorConfig(students=5, workers=0))
    with pytest.raises(ValueError, match="rate_limit"):
        sim.set_capacity(rate_limit=-1.0)


@pytest.mark.parametrize(
    "argv", [["--workers", "0"], ["--workers", "two"], ["--rate-limit", "0"], ["--rate-limit", "-2"]]
)
def test_the_command_line_refuses_bad_values_in_one_line(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["simulator", *argv])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and argv[0] in err
