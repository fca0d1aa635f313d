"""Injected faults: what goes wrong on the wire, for the next N matching requests or at a seeded rate."""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field
from typing import Any

KINDS = ("500", "503", "429", "html_200", "truncated_json", "drop_connection", "latency", "shift_pages",
         "empty_result")
"""`empty_result`: a well-formed 200 answer holding only the first `keep` share of the rows (default 0: none), its
counts consistent, as an upstream glitch would send it. Any fault fires only for requests whose query parameters
include the `params` option's values, when given (e.g. `params={"date": "2026-11-20"}`)."""


@dataclass
class Fault:
    path: str  # a route path ("Students", "Assessment/{assessment_id}/View"), "OAuth2", or "*"
    kind: str
    count: int | None = None  # remaining matching requests; None = unlimited (or rate-driven)
    rate: float | None = None
    options: dict[str, Any] = field(default_factory=dict)

    def matches(self, path: str, query: dict[str, str] | None = None) -> bool:
        if not ((self.path == "*" and path != "OAuth2") or self.path == path):
            return False
        wanted = self.options.get("params") or {}
        return all((query or {}).get(name) == str(value) for name, value in wanted.items())


class FaultInjector:
    """Holds the injected faults; `firing` decides (thread-safely, deterministically) which one fires."""

    def __init__(self, seed: int) -> None:
        self._faults: list[Fault] = []
        self._rng = random.Random(f"faults-{seed}")
        self._lock = threading.Lock()

    def add(self, path: str, kind: str, count: int | None = None, rate: float | None = None,
            **options: Any) -> Fault:
        if kind not in KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; one of {', '.join(KINDS)}")
        if rate is not None and not 0.0 <= rate <= 1.0:
            raise ValueError("rate must be between 0 and 1")
        path = path.strip("/")
        if "OAuth2" in path:  # "OAuth2", "?OAuth2_AccessToken", ... all mean the token endpoint
            path = "OAuth2"
        fault = Fault(path, kind, count, rate, dict(options))
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def firing(self, path: str, query: dict[str, str] | None = None) -> list[Fault]:
        """The faults firing for this request (at most one of each kind), consuming counts."""
        fired: list[Fault] = []
        with self._lock:
            for fault in list(self._faults):
                if not fault.matches(path, query) or any(f.kind == fault.kind for f in fired):
                    continue
                if fault.rate is not None and self._rng.random() >= fault.rate:
                    continue
                if fault.count is not None:
                    fault.count -= 1
                    if fault.count <= 0:
                        self._faults.remove(fault)
                fired.append(fault)
        return fired

    def active(self) -> list[Fault]:
        with self._lock:
            return list(self._faults)
