"""A finite-capacity model of the API: a fixed number of workers with a fair queue, and a token-bucket rate limit.

A real Illuminate instance serves a bounded number of requests at once; the rest wait, so latency grows with load
rather than staying flat as in an unlimited simulator. It may also refuse bursts with 429 and `Retry-After`. The
server gates the API's data routes (`rest_server.php/Api/...`, GET and POST) with this; the OAuth2 token endpoint
and the control API are not gated: they are not the data workload, and a test must always be able to read the
counters and change the settings while the workers are busy.

Order of the checks for one request: the rate limit first, on arrival (a refused request is answered at once and
never takes a worker, as a front-door limiter would), then a worker, taken in arrival order (a ticket queue: a
plain semaphore wakes an arbitrary waiter, and a late request could overtake an early one).
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

SETTINGS = ("workers", "rate_limit", "rate_limit_burst")


def default_burst(rate: float) -> int:
    """The bucket's size when none is given: one second's worth of requests, at least one."""
    return max(1, round(rate))


def check_settings(workers: Any, rate_limit: Any, rate_limit_burst: Any) -> tuple[int | None, float | None, int | None]:
    """The settings as typed values, or ValueError with a message saying which value is wrong and why."""
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise ValueError(f"workers must be a whole number of at least 1 (or null: unlimited), not {workers!r}")
    rate: float | None = None
    if rate_limit is not None:
        if isinstance(rate_limit, bool) or not isinstance(rate_limit, (int, float)):
            raise ValueError(f"rate_limit must be a number of requests per second (or null: none), not {rate_limit!r}")
        rate = float(rate_limit)
        if not (rate > 0 and math.isfinite(rate)):
            raise ValueError(f"rate_limit must be more than 0 requests per second, not {rate_limit!r}")
    if rate_limit_burst is not None and (
        isinstance(rate_limit_burst, bool) or not isinstance(rate_limit_burst, int) or rate_limit_burst < 1
    ):
        raise ValueError(f"rate_limit_burst must be a whole number of at least 1, not {rate_limit_burst!r}")
    return workers, rate, rate_limit_burst


class Capacity:
    """Workers, a fair queue for them, a token bucket, and counters; thread-safe (one condition guards it all)."""

    def __init__(
        self,
        workers: int | None = None,
        rate_limit: float | None = None,
        rate_limit_burst: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._clock = clock
        self._cond = threading.Condition()
        self._queue: deque[object] = deque()  # waiting requests' tickets, in arrival order
        self._in_flight = 0
        self.workers: int | None = None
        self.rate_limit: float | None = None
        self.rate_limit_burst: int | None = None
        self._tokens = 0.0
        self._refilled = clock()
        self.reset_stats()
        self.configure(workers=workers, rate_limit=rate_limit, rate_limit_burst=rate_limit_burst)

    # -- settings -------------------------------------------------------------------------------------------------

    def configure(self, **changes: Any) -> dict[str, Any]:
        """Change some settings (absent: unchanged; None: cleared) and return them all.

        A new rate without a burst takes the default burst for that rate; a new rate or burst starts a full bucket.
        Waiting requests are woken, so raising or clearing `workers` lets them in at once (still in order).
        """
        unknown = set(changes) - set(SETTINGS)
        if unknown:
            raise ValueError(f"unknown capacity setting(s) {', '.join(sorted(unknown))}; known: {', '.join(SETTINGS)}")
        with self._cond:
            workers = changes.get("workers", self.workers)
            rate = changes.get("rate_limit", self.rate_limit)
            if "rate_limit_burst" in changes:
                burst = changes["rate_limit_burst"]
            elif "rate_limit" in changes:
                burst = None  # the new rate's default
            else:
                burst = self.rate_limit_burst
            workers, rate, burst = check_settings(workers, rate, burst)
            if rate is not None and burst is None:
                burst = default_burst(rate)
            if rate is None:
                burst = None
            bucket_changed = (rate, burst) != (self.rate_limit, self.rate_limit_burst)
            self.workers, self.rate_limit, self.rate_limit_burst = workers, rate, burst
            if bucket_changed:
                self._tokens = float(burst or 0)
                self._refilled = self._clock()
            self._cond.notify_all()
            return self.settings()

    def settings(self) -> dict[str, Any]:
        return {"workers": self.workers, "rate_limit": self.rate_limit, "rate_limit_burst": self.rate_limit_burst}

    # -- the rate limit -------------------------------------------------------------------------------------------

    def admit(self) -> int | None:
        """Take a token for an arriving request: None when it may go on, else the `Retry-After` seconds to answer
        with its 429 (whole seconds until the bucket holds a token again, at least 1)."""
        with self._cond:
            if self.rate_limit is None or self.rate_limit_burst is None:
                return None
            now = self._clock()
            self._tokens = min(float(self.rate_limit_burst), self._tokens + (now - self._refilled) * self.rate_limit)
            self._refilled = now
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return None
            self._rate_limited += 1
            return max(1, math.ceil((1.0 - self._tokens) / self.rate_limit))

    # -- workers --------------------------------------------------------------------------------------------------

    @contextmanager
    def worker(self) -> Iterator[None]:
        """Hold a worker for the body of the `with`: the request's service time (latency, page building, writing).

        Requests wait in arrival order; a waiter leaves the queue only from its head, when a worker is free.
        """
        ticket = object()
        with self._cond:
            self._queue.append(ticket)
            if not (self._queue[0] is ticket and self._free()):  # it waits: count it as queued
                self._max_queued = max(self._max_queued, len(self._queue))
            try:
                while not (self._queue[0] is ticket and self._free()):
                    self._cond.wait()
            except BaseException:
                self._queue.remove(ticket)
                self._cond.notify_all()
                raise
            self._queue.popleft()
            self._in_flight += 1
            self._max_in_flight = max(self._max_in_flight, self._in_flight)
            self._cond.notify_all()  # the next in line may also find a free worker
        try:
            yield
        finally:
            with self._cond:
                self._in_flight -= 1
                self._served += 1
                self._cond.notify_all()

    def _free(self) -> bool:
        return self.workers is None or self._in_flight < self.workers

    # -- counters -------------------------------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """The settings and counters: requests served (through a worker), queued now and at most, in flight now and
        at most, and 429s answered by the rate limit (injected `429` faults are not counted here)."""
        with self._cond:
            queued = len(self._queue)
            return {
                **self.settings(),
                "served": self._served,
                "queued": queued,
                "max_queued": self._max_queued,
                "in_flight": self._in_flight,
                "max_in_flight": self._max_in_flight,
                "rate_limited": self._rate_limited,
            }

    def reset_stats(self) -> None:
        """Zero the counters (the maxima restart from what is queued and in flight now)."""
        with self._cond:
            self._served = 0
            self._rate_limited = 0
            self._max_queued = len(self._queue)
            self._max_in_flight = self._in_flight
