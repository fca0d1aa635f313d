"""One limit on requests in flight shared by the clients of several instances (`run --all-instances`).

Each instance's client keeps its own `max_concurrency`; a request also takes a slot of the shared budget, so that a
network's instances, synced at the same time from one machine, never have more than the budget's limit in flight
together (the machine's connections, and the vendor's servers, which may host several of a network's instances).
A client takes its own slot first: a request waiting for the budget then holds no slot another instance could use.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from .errors import IlluminateError


class RequestBudget:
    """A counting semaphore that also records the most requests it had in flight at once (for the summary)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.max_in_flight = 0
        self._slots = threading.BoundedSemaphore(limit)
        self._lock = threading.Lock()
        self._in_flight = 0
        self._stopped: str | None = None

    def stop(self, reason: str) -> None:
        """No more requests: every later `slot` raises IlluminateError(`reason`), so that each instance's run ends
        at its next request (Ctrl-C stops the instances' threads this way; Python cannot interrupt a thread)."""
        self._stopped = reason

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Holds one of the `limit` slots while the block runs."""
        if self._stopped is not None:
            raise IlluminateError(self._stopped)
        with self._slots:
            with self._lock:
                self._in_flight += 1
                self.max_in_flight = max(self.max_in_flight, self._in_flight)
            try:
                yield
            finally:
                with self._lock:
                    self._in_flight -= 1

    def __repr__(self) -> str:
        return f"RequestBudget(limit={self.limit})"
