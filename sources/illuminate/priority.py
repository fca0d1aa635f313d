"""Which tables fetch at the same time, and which waiting request is sent first when a request slot frees up.

A sync extracts `TABLES_AT_ONCE` tables side by side (`table_steps`: dlt's protocol for parallel resources, each
step of a table run in one of dlt's extract workers), and every request of every table waits for one of the client's
`max_concurrency` slots. The slot goes to the request with the lowest key `(rank, follow_up)`:

* `rank`: the table's place in the extraction order (`endpoints.toml`), 0 for requests made outside a table (the
  OAuth2 token). The table extracted first is served first: its rows leave memory first, and the tables beside it
  only fill the slots it leaves idle (between its windows, while it waits for Terms or Sites, the tail of its last
  window): the slots a sync of one table at a time left empty (issue 18's timeline: the pool full 41 % of the
  downloads at 200 ms a request).
* `follow_up`: 0 for a request that unlocks others (a window's page 1 tells how many pages follow; a single
  request such as Terms or Sites), 1 for pages 2..N. A page 1 waiting behind the same table's later pages would
  leave the slots idle once those are done.

The rank travels with the work in a context variable: set around each step of a table, and copied with every task
into the client's pools (`PriorityPool`, which also start the waiting tasks of the first table first) and into a
table's window thread.
"""

from __future__ import annotations

import contextvars
import functools
import itertools
import math
import queue
import threading
from collections.abc import Callable, Generator, Iterator
from concurrent.futures import Executor, Future
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

import dlt
from dlt.extract.pipe_iterator import PipeIterator

from .concurrency import Priority
from .settings import TABLES_AT_ONCE

P = ParamSpec("P")
R = TypeVar("R")

TABLE_RANK: contextvars.ContextVar[int] = contextvars.ContextVar("illuminate_table_rank", default=0)


def request_priority(follow_up: bool) -> Priority:
    """The slot queue's key of a request made now: the current table's rank, then page 1 before pages 2..N."""
    return (TABLE_RANK.get(), int(follow_up))


def tables_at_once() -> int:
    """`TABLES_AT_ONCE`, but never more than dlt's extract workers (`extract.workers`, 5 unless set): a table whose
    step waited for a worker could fill its page queue and hold the client's window threads meanwhile, while the
    tables holding the workers wait for those threads."""
    workers = dlt.config.get("extract.workers")
    configured = int(workers) if workers is not None else PipeIterator.PipeIteratorConfiguration.workers
    return max(1, min(TABLES_AT_ONCE, configured))


class TableSlots:
    """How many tables fetch at once: a table takes a slot before its first step and gives it back when it ends.

    Never waited for in a thread: a table whose turn has not come tells dlt it has nothing yet (see `table_steps`),
    so none of dlt's extract workers is held by a table that cannot start.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._taken = 0
        self._lock = threading.Lock()

    def take(self) -> bool:
        with self._lock:
            if self._taken >= self.limit:
                return False
            self._taken += 1
            return True

    def give_back(self) -> None:
        with self._lock:
            self._taken -= 1


def table_steps(
    rank: int, table_slots: TableSlots
) -> Callable[[Callable[P, Generator[Any, None, None]]], Callable[P, Iterator[Any]]]:
    """The decorated generator function as the table of rank `rank`, extracted beside other tables.

    This is dlt's protocol for parallel resources (`dlt.extract.utils.wrap_parallel_iterator`, what
    `parallelized=True` does): the resource yields a callable, which dlt runs in one of its extract workers, the
    callable's return being the resource's next item; None while the previous step still runs. Two additions: the
    table yields None (nothing yet) until it holds one of `table_slots`, and every step runs with the table's rank
    (a context variable set around the step: each step runs in a worker with a fresh copy of dlt's context). At most
    `table_slots.limit` steps are in flight, so none waits for a worker behind a table that cannot start.
    """

    def decorate(generator_function: Callable[P, Generator[Any, None, None]]) -> Callable[P, Iterator[Any]]:
        @functools.wraps(generator_function)
        def steps(*args: P.args, **kwargs: P.kwargs) -> Iterator[Any]:
            while not table_slots.take():
                yield None
            items = generator_function(*args, **kwargs)
            running = threading.Event()
            ended = False

            def step() -> Any:
                nonlocal ended
                token = TABLE_RANK.set(rank)
                try:
                    return next(items)
                except StopIteration:
                    ended = True
                    return None
                finally:
                    TABLE_RANK.reset(token)
                    running.clear()

            try:
                while not ended:
                    while running.is_set():
                        yield None
                    running.set()
                    yield step
            finally:
                if not running.is_set():  # a step still running in a worker cannot be closed from here
                    items.close()  # stops the table's own threads (its window fetching)
                table_slots.give_back()

        return steps

    return decorate


class PriorityPool(Executor):
    """A thread pool whose waiting tasks start lowest table rank first, then in the order they were submitted; each
    task runs in a copy of the context it was submitted from (so its requests keep the table's rank).

    `ThreadPoolExecutor` starts tasks in submission order: the windows and pages of a table behind the first one,
    submitted earlier, would take the pool's threads first, and the first table's requests would wait for a thread
    before they could even ask for a slot.
    """

    def __init__(
        self, workers: int, name: str, initializer: Callable[..., None] | None = None, initargs: tuple[Any, ...] = ()
    ) -> None:
        self._workers = workers
        self._name = name
        self._initializer = initializer
        self._initargs = initargs
        self._queue: queue.PriorityQueue[tuple[tuple[float, ...], int, _Task | None]] = queue.PriorityQueue()
        self._order = itertools.count()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._shut_down = False

    def submit(self, fn: Callable[..., R], /, *args: Any, **kwargs: Any) -> Future[R]:
        with self._lock:
            if self._shut_down:
                raise RuntimeError("cannot schedule new futures after shutdown")
            future: Future[R] = Future()
            context = contextvars.copy_context()
            task = _Task(future, context, functools.partial(fn, *args, **kwargs))
            self._queue.put(((context.get(TABLE_RANK, 0),), next(self._order), task))
            if len(self._threads) < self._workers:
                thread = threading.Thread(target=self._work, name=f"{self._name}_{len(self._threads)}", daemon=True)
                thread.start()
                self._threads.append(thread)
            return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._lock:
            self._shut_down = True
            threads = list(self._threads)
        if cancel_futures:
            while True:
                try:
                    _, _, task = self._queue.get_nowait()
                except queue.Empty:
                    break
                if task is not None:
                    task.future.cancel()
        for _ in threads:
            self._queue.put(((math.inf,), next(self._order), None))  # after every task: one stop per thread
        if wait:
            for thread in threads:
                thread.join()

    def _work(self) -> None:
        if self._initializer is not None:
            self._initializer(*self._initargs)
        while True:
            _, _, task = self._queue.get()
            if task is None:
                return
            if task.future.set_running_or_notify_cancel():
                task.run()


@dataclass(frozen=True)
class _Task:
    future: Future[Any]
    context: contextvars.Context
    call: Callable[[], Any]

    def run(self) -> None:
        try:
            result = self.context.run(self.call)
        except BaseException as exc:  # handed to whoever waits on the future, as ThreadPoolExecutor does
            self.future.set_exception(exc)
        else:
            self.future.set_result(result)
