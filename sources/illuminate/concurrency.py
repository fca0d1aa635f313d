"""How many requests a client keeps in flight: a fixed number, or `auto`, a limit that follows the API's capacity.

`max_concurrency = "auto"` starts at `AUTO_START` requests in flight and moves the limit with what the answers say:

* **Up** by one request per round (a round: as many successful answers as the limit), when the round's mean latency
  held (at most `LATENCY_TOLERANCE` times the lowest round mean seen) and the limit was reached during the round.
  While latency holds, one more request in flight is one more request per latency: throughput rises with the limit.
  A limit the client's work never reaches is not raised (no evidence that the API could take more).
* **Down** by one when a round's latency grew beyond the tolerance: the server queues requests (all its workers are
  busy), so more in flight only makes every answer slower. A district's API is shared with its teachers during the
  day: the limit stays where the answers stay as fast as they were.
* **Down** to `BACKOFF_FACTOR` of itself on an overload (HTTP 429, 503, 504 or a timeout), once per round trip: the
  answers of requests sent before the last decrease are not counted again. A `Retry-After` on the answer pauses every
  new request of the client for that long (capped like the retry itself), not only the one retried.
* **Never** above the ceiling (`max_concurrency_ceiling`) nor below 1. After an overload the level that overloaded
  (and each level above it) is tried only after `PROBE_HOLD_ROUNDS` clean rounds one below it, twice as many after
  each further overload: a rate limit answered with 429 costs a pause of its `Retry-After` (1 s or more) and the
  retries, more than probing can gain.

A whole number keeps exactly that many in flight, never changed (the behaviour before `auto` existed).
"""

from __future__ import annotations

import heapq
import itertools
import math
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

AUTO = "auto"
Concurrency = int | Literal["auto"]
"""A `max_concurrency` setting: a whole number of requests in flight, or "auto"."""

AUTO_START = 4
"""The limit `auto` starts at: half of the fixed default of 8, safe for any instance (the issue's and the benchmark's
servers all took 8 at once); about two seconds of 200 ms rounds reach 12 when the server has room."""
LATENCY_TOLERANCE = 1.25
"""A round whose mean latency is above this times the lowest round mean means the server queues: 12 workers answering
15 requests take 25 % longer, so the limit settles within a few requests of the workers. Measured (bench/README.md,
adaptive concurrency): against 12 workers `auto` reached 15 in flight and the server queued at most 4 (a fixed 16: 8,
a fixed 24: 14)."""
BACKOFF_FACTOR = 0.75
"""An overload keeps three quarters of the limit: against a rate limit the level just below the one refused is the
fastest that passes. A choice, not a measurement: halving (TCP's factor) was not benchmarked against it."""
PROBE_HOLD_ROUNDS = 8
"""Clean rounds one below the level that was refused before trying it again (about 2 s at 200 ms): each 429 paused
the client for its whole `Retry-After`. Every further overload doubles the hold, up to `MAX_PROBE_HOLD_ROUNDS`:
against a rate limit of 40 requests/s (100 ms answers) a fixed hold of 8 rounds met 5 overloads in 400 requests,
1.5 % of them answered 429."""
MAX_PROBE_HOLD_ROUNDS = 64
OVERLOAD_STATUSES = frozenset({429, 503, 504})
"""Answers that say the server has too much to do: too many requests, unavailable, gateway timeout."""

Signal = Literal["ok", "overload", "other"]
Priority = tuple[int, ...]
"""A waiting request's place in the queue for a slot: lower first (see `priority.request_priority`)."""


def parse_concurrency(value: Any) -> Concurrency | None:
    """`value` as a setting (a whole number >= 1, or "auto" in any case), or None when it is neither."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 1 else None
    if isinstance(value, str):
        text = value.strip().lower()
        if text == AUTO:
            return AUTO
        if text.isdigit() and int(text) >= 1:
            return int(text)
    return None


def signal_of(status: int | None, timed_out: bool) -> Signal:
    """What an attempt says about the server's load: a 2xx answer is a latency sample, an overload status or a
    timeout an overload, anything else (a 404, a dropped connection) nothing."""
    if timed_out or status in OVERLOAD_STATUSES:
        return "overload"
    if status is not None and 200 <= status < 300:
        return "ok"
    return "other"


@dataclass
class ConcurrencyRecord:
    """What the limit did during a run (`RequestStats.concurrency`).

    Attributes:
        mode: "fixed" or "auto".
        start, ceiling: The limit at the start, and the most it may reach (the fixed number, for "fixed").
        lowest, highest, final: The limit's extremes and its last value.
        backoffs: Overloads that lowered the limit.
        paused, paused_s: Pauses of new requests after a `Retry-After` (those that made a running pause longer), and
            their seconds in all.
        timeline: (seconds since the client started, limit) at every change.
    """

    mode: Literal["fixed", "auto"]
    start: int
    ceiling: int
    lowest: int = 0
    highest: int = 0
    final: int = 0
    backoffs: int = 0
    paused: int = 0
    paused_s: float = 0.0
    timeline: list[tuple[float, int]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.lowest = self.highest = self.final = self.start
        self.timeline.append((0.0, self.start))

    def changed(self, at: float, limit: int) -> None:
        self.lowest, self.highest, self.final = min(self.lowest, limit), max(self.highest, limit), limit
        self.timeline.append((round(at, 3), limit))

    def describe(self, max_in_flight: int) -> str:
        """For the run summary: `concurrency auto: 4 -> 11 (highest 12, lowest 3, ceiling 16), at most 12 in
        flight, 2 backoffs` ("" when fixed)."""
        if self.mode == "fixed":
            return ""
        return (
            f"concurrency auto: {self.start} -> {self.final} (highest {self.highest}, lowest {self.lowest},"
            f" ceiling {self.ceiling}), at most {max_in_flight} in flight,"
            f" {self.backoffs} backoff{'s' if self.backoffs != 1 else ''}"
        )

    def snapshot(self) -> dict[str, Any]:
        return {**vars(self), "timeline": list(self.timeline)}


class AdjustableLimiter:
    """A counting semaphore whose limit may change while requests hold slots, that can be paused, and that gives a
    free slot to the waiter of the lowest priority key (then the longest waiting).

    A lower limit takes effect as slots are released (nothing in flight is interrupted); a higher one at once. While
    paused, no slot is given. Each waiter has its own event, set when it is given a slot: a release wakes exactly the
    waiter it serves, not every thread waiting (up to three per slot: fan-out, page and dlt's threads).
    """

    def __init__(self, limit: int) -> None:
        self._lock = threading.Lock()
        self._limit = limit
        self._in_flight = 0
        self._paused_until = 0.0
        self._reached = False
        self._waiting: list[_Waiter] = []
        self._arrivals = itertools.count()

    @property
    def limit(self) -> int:
        return self._limit

    def set_limit(self, limit: int) -> None:
        with self._lock:
            self._limit = limit
            self._grant()

    def pause(self, seconds: float) -> float:
        """No new slot for `seconds` from now (a longer pause already running is kept); returns the seconds the pause
        was extended by."""
        with self._lock:
            now = time.monotonic()
            until = max(self._paused_until, now + seconds)
            extended = until - max(self._paused_until, now)
            self._paused_until = until
        if extended > 0:  # the pause may end with no release to give the waiters their slots
            self._wake_after(until - now)
        return extended

    def acquire(self, priority: Priority = ()) -> None:
        """Waits for a slot; among waiters, the lowest `priority` (then the earliest) is served first."""
        with self._lock:
            if not self._waiting and self._free():
                self._take()
                return
            waiter = _Waiter(priority, next(self._arrivals))
            heapq.heappush(self._waiting, waiter)
        waiter.granted.wait()

    def release(self) -> None:
        with self._lock:
            self._in_flight -= 1
            self._grant()

    def take_reached(self) -> bool:
        """Whether the limit was reached (every slot taken) since the last call."""
        with self._lock:
            reached, self._reached = self._reached, False
            return reached

    def _wake_after(self, seconds: float) -> None:
        timer = threading.Timer(seconds, self._grant_after_pause)
        timer.daemon = True
        timer.start()

    def _grant_after_pause(self) -> None:
        with self._lock:
            left = self._paused_until - time.monotonic()
            if left <= 0:
                self._grant()
        if left > 0:  # extended meanwhile, or the timer woke a little early
            self._wake_after(left)

    def _free(self) -> bool:
        return self._in_flight < self._limit and self._paused_until <= time.monotonic()

    def _take(self) -> None:
        self._in_flight += 1
        self._reached = self._reached or self._in_flight >= self._limit

    def _grant(self) -> None:
        """Free slots to the first waiters (the caller holds the lock)."""
        while self._waiting and self._free():
            self._take()
            heapq.heappop(self._waiting).granted.set()


@dataclass(order=True)
class _Waiter:
    priority: Priority
    arrival: int
    granted: threading.Event = field(default_factory=threading.Event, compare=False)


@dataclass(frozen=True)
class Decision:
    """What the policy makes of one observation: the new limit, and seconds to pause new requests."""

    limit: int
    pause: float = 0.0
    backoff: bool = False


class AdaptivePolicy:
    """The decisions of `auto` (see the module's docstring); not thread-safe: `ConcurrencyControl` serialises it.

    Each request carries the `epoch` it was sent in; every decrease starts a new epoch, and an overload of an older
    epoch (sent under the limit already lowered) does not lower the limit again.
    """

    def __init__(self, ceiling: int, start: int = AUTO_START) -> None:
        self.ceiling = ceiling
        self.limit = min(start, ceiling)
        self.epoch = 0
        self._baseline = math.inf
        self._round_count = 0
        self._round_latency = 0.0
        self._refused_at: int | None = None
        self._clean_rounds = 0
        self._hold_rounds = PROBE_HOLD_ROUNDS // 2  # doubled by the first overload

    def observe(
        self, signal: Signal, latency: float, epoch: int, retry_after: float | None, reached: Callable[[], bool]
    ) -> Decision:
        """One answered attempt: its signal, its latency (s), the epoch it was sent in and the `Retry-After` it
        carried; `reached` tells, when a round ends, whether the limit was reached (every slot taken) during it."""
        if signal == "overload":
            return self._overload(epoch, retry_after)
        if signal == "ok":
            self._round_count += 1
            self._round_latency += latency
            if self._round_count >= self.limit:
                return self._end_round(reached())
        return Decision(self.limit)

    def _overload(self, epoch: int, retry_after: float | None) -> Decision:
        pause = retry_after or 0.0
        if epoch < self.epoch:
            return Decision(self.limit, pause)  # sent before the last decrease: already answered for
        self._refused_at = self.limit
        self._clean_rounds = 0
        self._hold_rounds = min(MAX_PROBE_HOLD_ROUNDS, 2 * self._hold_rounds)
        self._lower(max(1, math.floor(self.limit * BACKOFF_FACTOR)))
        return Decision(self.limit, pause, backoff=True)

    def _end_round(self, reached: bool) -> Decision:
        mean = self._round_latency / self._round_count
        self._round_count, self._round_latency = 0, 0.0
        self._baseline = min(self._baseline, mean)
        if mean > self._baseline * LATENCY_TOLERANCE:
            if self.limit > 1:
                self._lower(self.limit - 1)
            return Decision(self.limit)
        if reached and self.limit < self.ceiling and self._may_probe():
            self.limit += 1
        return Decision(self.limit)

    def _may_probe(self) -> bool:
        """One more request in flight, unless that reaches a level refused before (or above): then only after
        `PROBE_HOLD_ROUNDS` clean rounds, doubled by each overload since the start. Above a refused level the limit
        climbs one level per hold: a token bucket refilled during a pause passes a higher level for a while, and
        its next refusal costs another pause."""
        if self._refused_at is None or self.limit + 1 < self._refused_at:
            return True
        self._clean_rounds += 1
        if self._clean_rounds < self._hold_rounds:
            return False
        self._refused_at, self._clean_rounds = self.limit + 2, 0  # the next level up is held as long again
        return True

    def _lower(self, limit: int) -> None:
        self.limit = limit
        self.epoch += 1
        self._round_count, self._round_latency = 0, 0.0


@dataclass(frozen=True)
class Ticket:
    """A held slot: when it was taken and in which epoch of the policy."""

    started: float
    epoch: int


class ConcurrencyControl:
    """The request slots of one client: a fixed limit, or `auto`'s limit moved by `AdaptivePolicy`.

    Args:
        setting: The `max_concurrency` setting: a whole number, or "auto".
        ceiling: With "auto", the most requests in flight it may reach (ignored for a whole number).
        pause_cap: The longest pause a `Retry-After` may impose (the retry policy's `backoff_max`).
    """

    def __init__(self, setting: Concurrency, ceiling: int, pause_cap: float) -> None:
        self.adaptive = setting == AUTO
        self._policy = AdaptivePolicy(ceiling) if self.adaptive else None
        start = self._policy.limit if self._policy else int(setting)
        self.ceiling = ceiling if self.adaptive else start
        """The most requests ever in flight: what the client's pools and connections are sized for."""
        self.record = ConcurrencyRecord("auto" if self.adaptive else "fixed", start, self.ceiling)
        self._limiter = AdjustableLimiter(start)
        self._pause_cap = pause_cap
        self._lock = threading.Lock()
        self._born = time.monotonic()

    @contextmanager
    def slot(self, priority: Priority = ()) -> Iterator[Ticket]:
        """Holds one slot while the block runs (waits while the limit is reached or new requests are paused; among
        the waiting, the lowest `priority` is served first)."""
        self._limiter.acquire(priority)
        try:
            yield Ticket(time.monotonic(), self._policy.epoch if self._policy else 0)
        finally:
            self._limiter.release()

    def observe(self, ticket: Ticket, status: int | None, timed_out: bool, retry_after: float | None) -> None:
        """The outcome of the attempt sent under `ticket` (call it before the slot is released)."""
        if self._policy is None:
            return
        latency = time.monotonic() - ticket.started
        signal = signal_of(status, timed_out)
        with self._lock:
            before = self._policy.limit
            decision = self._policy.observe(signal, latency, ticket.epoch, retry_after, self._limiter.take_reached)
            self._apply(decision, before)

    def _apply(self, decision: Decision, before: int) -> None:
        record = self.record
        if decision.backoff:
            record.backoffs += 1
        if decision.pause > 0:
            extended = self._limiter.pause(min(decision.pause, self._pause_cap))
            if extended > 0:
                record.paused += 1
                record.paused_s = round(record.paused_s + extended, 3)
        if decision.limit != before:
            self._limiter.set_limit(decision.limit)
            record.changed(time.monotonic() - self._born, decision.limit)
