"""Which request goes first, and how many tables fetch at once (`sources/illuminate/priority.py`).

The slot queue serves the lowest `(table rank, follow-up)` first: the table extracted first before the tables beside
it, a window's page 1 before pages 2..N. Over HTTP the client runs at one request in flight against a simulator
answering in 300 ms, so the order the answers come back is the order the slots were given. The tables' gate runs
inside a real dlt extract. Assertions are on order and counts, never on durations.
"""

from __future__ import annotations

import contextvars
import logging
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import dlt
import pytest

from illuminate_sync.pipelines.sync import prepare_pipeline_settings
from illuminate_sync.simulator import Simulator
from illuminate_sync.sources.illuminate.client import IlluminateClient
from illuminate_sync.sources.illuminate.concurrency import AdjustableLimiter
from illuminate_sync.sources.illuminate.priority import (
    TABLE_RANK,
    PriorityPool,
    TableSlots,
    table_steps,
    tables_at_once,
)
from illuminate_sync.sources.illuminate.settings import TABLES_AT_ONCE

ANSWER_SECONDS = 0.3
"""Long enough that a request started a few milliseconds after another is queued before the first is answered."""


@pytest.fixture
def slow_sim(http_sim: Simulator) -> Iterator[Simulator]:
    http_sim.config.latency = ANSWER_SECONDS
    yield http_sim
    http_sim.config.latency = 0.0


@pytest.fixture
def answered(caplog: pytest.LogCaptureFixture) -> Callable[[], list[str]]:
    """The client's answered requests, in the order they were answered, as `path page`."""
    caplog.set_level(logging.DEBUG, logger="illuminate_sync")

    def order() -> list[str]:
        found = []
        for record in caplog.records:
            if str(record.msg).startswith("%s: HTTP %d") and record.args:
                describe = str(record.args[0])  # type: ignore[index]
                page = describe.split("page=")[1].split(",")[0].rstrip(")") if "page=" in describe else "-"
                found.append(f"{describe.split()[1]} {page}")
        return found

    return order


def in_flight_soon(client: IlluminateClient) -> None:
    """Waits until the client has a request on the wire."""
    deadline = time.monotonic() + 10
    while client.stats.max_in_flight < 1:
        assert time.monotonic() < deadline, "no request went out"
        time.sleep(0.005)


def start_ranked(rank: int, work: Callable[[], Any]) -> threading.Thread:
    """`work` in a thread of its own, as the table of rank `rank`."""
    context = contextvars.copy_context()
    context.run(TABLE_RANK.set, rank)
    thread = threading.Thread(target=context.run, args=(work,))
    thread.start()
    return thread


def get(client: IlluminateClient, path: str) -> Callable[[], Any]:
    return lambda: client.get_json(path)


def paged(sim: Simulator, path: str, pages_wanted: int) -> int:
    """A `limit` that makes `path` answer in `pages_wanted` pages (the district's rows / the pages)."""
    rows = len(sim.query(path))
    assert rows >= 2 * pages_wanted, f"{path} has too few rows for the test"
    return -(-rows // pages_wanted)


def queued_behind(order: Callable[[], list[str]], answers: int) -> None:
    """Waits until `answers` requests were answered, then a little more: the next request is on the wire."""
    deadline = time.monotonic() + 10
    while len(order()) < answers:
        assert time.monotonic() < deadline, "the answers did not come"
        time.sleep(0.005)
    time.sleep(0.05)


def test_a_waiting_request_of_the_first_table_goes_before_an_earlier_one_of_a_later_table(
    slow_sim: Simulator, make_client: Callable[..., IlluminateClient], answered: Callable[[], list[str]]
) -> None:
    client = make_client(max_concurrency=1)
    threads = [start_ranked(9, get(client, "Sites/"))]
    in_flight_soon(client)
    threads.append(start_ranked(9, get(client, "Students/")))  # waits for the slot
    time.sleep(0.05)
    threads.append(start_ranked(2, get(client, "Students2/")))  # waits too, asked later, from an earlier table
    for thread in threads:
        thread.join(30)
    assert answered() == ["Sites/ -", "Students2/ -", "Students/ -"]


def test_a_page_1_goes_before_waiting_later_pages_of_the_same_table(
    slow_sim: Simulator, make_client: Callable[..., IlluminateClient], answered: Callable[[], list[str]]
) -> None:
    client = make_client(max_concurrency=1)
    limit = paged(slow_sim, "Students/", 4)
    threads = [start_ranked(3, lambda: list(client.iter_pages("Students/", {}, limit)))]
    queued_behind(answered, 1)  # page 2 on the wire, page 3 waiting for the slot
    threads.append(start_ranked(3, get(client, "Students2/")))  # a page 1 of the same table, asked after page 3
    for thread in threads:
        thread.join(30)
    assert answered() == ["Students/ 1", "Students/ 2", "Students2/ -", "Students/ 3", "Students/ 4"]


def test_a_requests_rank_reaches_the_clients_pool_threads(
    slow_sim: Simulator, make_client: Callable[..., IlluminateClient], answered: Callable[[], list[str]]
) -> None:
    client = make_client(max_concurrency=1)

    def fanned_out() -> list[Any]:  # the requests run in the client's fan-out pool, not in this thread
        return list(client.map_concurrently(lambda _: client.get_json("Sites/"), range(3)))

    threads = [start_ranked(9, fanned_out)]
    in_flight_soon(client)
    time.sleep(0.05)  # the second Sites/ waits for the slot in a pool thread
    threads.append(start_ranked(2, get(client, "Students2/")))
    for thread in threads:
        thread.join(30)
    assert answered() == ["Sites/ -", "Students2/ -", "Sites/ -", "Sites/ -"]  # the pool's requests kept rank 9


def test_a_pool_starts_its_waiting_tasks_lowest_rank_first() -> None:
    pool = PriorityPool(1, "test-pool")
    started: list[int] = []
    hold = threading.Event()
    pool.submit(hold.wait, 10)  # the pool's one thread busy
    futures = [start_in_pool(pool, rank, started) for rank in (5, 2, 7, 2, 0)]
    hold.set()
    for future in futures:
        future.result(10)
    pool.shutdown()
    assert started == [0, 2, 2, 5, 7]


def start_in_pool(pool: PriorityPool, rank: int, started: list[int]) -> Future[None]:
    context = contextvars.copy_context()
    context.run(TABLE_RANK.set, rank)
    return context.run(pool.submit, lambda: started.append(TABLE_RANK.get()))


def test_a_pool_shut_down_cancels_what_has_not_started() -> None:
    pool = PriorityPool(1, "test-pool")
    hold = threading.Event()
    running = pool.submit(hold.wait, 10)
    waiting = pool.submit(lambda: None)
    threading.Timer(0.1, hold.set).start()
    pool.shutdown(wait=True, cancel_futures=True)
    assert running.result() is True and waiting.cancelled()
    with pytest.raises(RuntimeError):
        pool.submit(lambda: None)


# ------------------------------------------------------------------------------------------------- the slot queue
def take_in_order(limiter: AdjustableLimiter, priorities: list[tuple[int, ...]]) -> list[tuple[int, ...]]:
    """With every slot taken, queue a waiter per priority (one after another), then free one slot at a time: the
    order the waiters got their slots."""
    served: list[tuple[int, ...]] = []
    lock = threading.Lock()

    def wait_for_slot(priority: tuple[int, ...]) -> None:
        limiter.acquire(priority)
        with lock:
            served.append(priority)

    waiters = []
    for priority in priorities:
        waiter = threading.Thread(target=wait_for_slot, args=(priority,))
        waiter.start()
        waiters.append(waiter)
        while len(limiter._waiting) < len(waiters):  # queued before the next one arrives
            time.sleep(0.001)
    for count in range(1, len(priorities) + 1):
        limiter.release()
        deadline = time.monotonic() + 10
        while len(served) < count:
            assert time.monotonic() < deadline
            time.sleep(0.001)
    for waiter in waiters:
        waiter.join()
    return served


def test_a_free_slot_goes_to_the_lowest_priority_then_the_longest_waiting() -> None:
    limiter = AdjustableLimiter(1)
    limiter.acquire((0,))
    served = take_in_order(limiter, [(5, 1), (2, 1), (5, 0), (2, 1), (2, 0)])
    assert served == [(2, 0), (2, 1), (2, 1), (5, 0), (5, 1)]


def test_a_pause_gives_the_waiting_their_slots_when_it_ends_without_any_release() -> None:
    limiter = AdjustableLimiter(2)
    limiter.pause(0.3)
    got = threading.Event()
    waiter = threading.Thread(target=lambda: (limiter.acquire((1,)), got.set()))
    waiter.start()
    assert not got.wait(0.1)
    assert got.wait(10)  # nothing was in flight, so nothing released: the pause's end gave the slot
    waiter.join()


# ---------------------------------------------------------------------------------------------- tables side by side
def gated_tables(slots: TableSlots, count: int, steps: int) -> tuple[list[Any], dict[str, Any]]:
    """`count` dlt resources through `table_steps`, each `steps` steps of 50 ms that record how many tables were
    in a step at once and the rank each step saw."""
    seen: dict[str, Any] = {"running": 0, "most": 0, "ranks": set(), "together": 0, "rows": {}}
    lock = threading.Lock()

    def make(rank: int) -> Any:
        @table_steps(rank, slots)
        def rows() -> Iterator[dict[str, int]]:
            for number in range(steps):
                with lock:
                    seen["running"] += 1
                    seen["most"] = max(seen["most"], seen["running"])
                    seen["together"] += seen["running"] > 1
                    seen["ranks"].add((rank, TABLE_RANK.get()))
                time.sleep(0.05)
                with lock:
                    seen["running"] -= 1
                    seen["rows"][rank] = seen["rows"].get(rank, 0) + 1
                yield {"rank": rank, "n": number}

        return dlt.resource(rows, name=f"table_{rank}")

    return [make(rank) for rank in range(1, count + 1)], seen


@pytest.mark.parametrize("workers", [1, 5])
def test_tables_fetch_side_by_side_never_more_than_the_gate_lets_through(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, workers: int
) -> None:
    monkeypatch.setenv("EXTRACT__WORKERS", str(workers))  # 1: fewer workers than tables at once must not deadlock
    resources, seen = gated_tables(TableSlots(2), count=5, steps=4)
    pipeline = dlt.pipeline("gate_test", pipelines_dir=str(tmp_path), destination="duckdb")
    pipeline.extract(resources)
    assert seen["rows"] == {rank: 4 for rank in range(1, 6)}
    assert seen["ranks"] == {(rank, rank) for rank in range(1, 6)}  # every step ran with its own table's rank
    assert seen["most"] <= min(2, workers)
    if workers > 1:
        assert seen["together"] > 0  # two tables in a step at the same time


def test_no_more_tables_at_once_than_dlts_extract_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXTRACT__WORKERS", "2")
    assert tables_at_once() == 2
    monkeypatch.setenv("EXTRACT__WORKERS", "64")
    assert tables_at_once() == TABLES_AT_ONCE
    monkeypatch.delenv("EXTRACT__WORKERS")
    assert tables_at_once() == min(TABLES_AT_ONCE, 5)  # dlt's default


def test_the_sync_gives_dlt_a_worker_per_table(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXTRACT__WORKERS", "1")  # restored after the test, whatever the sync sets
    monkeypatch.delenv("EXTRACT__WORKERS")
    prepare_pipeline_settings()
    assert tables_at_once() == TABLES_AT_ONCE
