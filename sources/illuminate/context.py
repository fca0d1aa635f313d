"""What the resources of one run share: the HTTP client, the run's dates and years, and lookups made once per run."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from functools import cached_property
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import dlt

from .catalog import Endpoint, calendar_endpoint
from .client import IlluminateClient
from .convert import QuarantinedRecord, RowConverter
from .errors import ConfigurationError, ShrinkGuardError
from .priority import TableSlots, tables_at_once
from .privacy import PiiPolicy
from .settings import (
    DEFAULT_ATTENDANCE_LOOKBACK_DAYS,
    DEFAULT_GRADEBOOK_REFRESH_DAYS,
    DEFAULT_POOL_LOOKBACK_DAYS,
    DEFAULT_RECONCILE_EVERY_N_RUNS,
    DEFAULT_SHRINK_GUARD_RATIO,
)
from .windows import SessionWindow, academic_year_bounds, academic_year_of, session_windows


class WarehouseReader(Protocol):
    """Reads what earlier runs loaded (the pipeline passes one over its DuckDB file)."""

    def keys(self, table: str, key_columns: Sequence[str], column: str, value: Any) -> set[tuple[Any, ...]]:
        """The key tuples of `table`'s rows whose `column` equals `value`."""
        ...

    def count(self, table: str, column: str | None = None, values: Sequence[Any] | None = None) -> int:
        """Rows of `table` (those whose `column` is one of `values`, when given); 0 when the table is missing."""
        ...

    def counts_by(self, table: str, columns: Sequence[str]) -> dict[tuple[Any, ...], int]:
        """Rows of `table` per distinct value tuple of `columns`; empty when the table is missing."""
        ...

    def tables_with_rows(self) -> set[str]:
        """The raw tables that hold at least one row."""
        ...


@dataclass
class ResourceProgress:
    """Counters of one resource in one run, for the progress lines and the summary."""

    requests_windows: int = 0
    """Request windows done (a window: one request's parameters, all its pages)."""
    windows_planned: int = 0
    """Request windows this resource will fetch, known as its download starts (for the live display)."""
    pages: int = 0
    rows: int = 0
    started: float | None = None
    elapsed: float = 0.0
    not_due: list[str] = field(default_factory=list)
    """Slices skipped this run because their refresh interval has not passed (e.g. "2027: fetched 2026-11-25")."""


@dataclass
class RunReport:
    """What a run tells its caller: per-resource progress, values that did not fit their type, the HTTP client.

    The pipeline creates one, passes it to the source, and reads it while and after the run.
    """

    progress: dict[str, ResourceProgress] = field(default_factory=dict)
    invalid_values: dict[str, dict[str, int]] = field(default_factory=dict)
    quarantined: list[QuarantinedRecord] = field(default_factory=list)
    quarantined_counts: dict[str, int] = field(default_factory=dict)
    findings: list[str] = field(default_factory=list)
    """What reconciliation found this run, one line each (kept in the run history)."""
    on_resource_done: Callable[[str, ResourceProgress], None] | None = None
    client: IlluminateClient | None = None


@dataclass
class SyncContext:
    """Everything the resources of one run share.

    Args:
        client: The HTTP client (one pool of connections and threads for the whole run).
        today: The date the run treats as today (normally the real date).
        selected_years: The academic years this run covers.
        explicit_years: True when the user named the years (`--academic-year`): closed years are refetched.
        full_refresh: Refetch everything selected, ignoring cursors and what earlier runs loaded.
        reconcile: Compare assessment aggregates with the API's counts this run.
    """

    client: IlluminateClient
    today: date
    selected_years: list[int]
    explicit_years: bool = False
    full_refresh: bool = False
    reconcile: bool = False
    reconcile_every_n_runs: int = DEFAULT_RECONCILE_EVERY_N_RUNS
    gradebook_refresh_days: int = DEFAULT_GRADEBOOK_REFRESH_DAYS
    attendance_lookback_days: int = DEFAULT_ATTENDANCE_LOOKBACK_DAYS
    pool_lookback_days: int = DEFAULT_POOL_LOOKBACK_DAYS
    attendance_include_weekends: bool = False
    warehouse: WarehouseReader | None = None
    pii: PiiPolicy = field(default_factory=PiiPolicy)
    allow_shrink: bool = False
    shrink_ratio: float = DEFAULT_SHRINK_GUARD_RATIO
    report: RunReport = field(default_factory=RunReport)
    run_started_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    api_zone: ZoneInfo | None = None
    """The zone of the API server's clock (`api_timezone`); None: unknown (see `windows.api_wall_clock`)."""
    table_slots: TableSlots = field(default_factory=lambda: TableSlots(tables_at_once()))
    """The tables fetching at once (`priority.table_steps`)."""
    _terms_by_year: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    _shared: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @cached_property
    def tables_with_rows(self) -> frozenset[str]:
        """The raw tables that held rows when the run started (read once: every resource asks)."""
        return frozenset(self.warehouse.tables_with_rows()) if self.warehouse is not None else frozenset()

    @property
    def current_year(self) -> int:
        return academic_year_of(self.today)

    def years_to_fetch(self, loaded_years: Sequence[int]) -> list[int]:
        """The selected years this run fetches: the current one always, closed ones only the first time or on demand."""
        if self.full_refresh or self.explicit_years:
            return list(self.selected_years)
        return [year for year in self.selected_years if year >= self.current_year or year not in loaded_years]

    def slice_refresh_due(self, endpoint: Endpoint, year: int, fetched_on: Mapping[str, str]) -> bool:
        """Whether a year slice refetched whole on an interval (the gradebook) is due this run.

        Due when the endpoint has no interval, the year was never fetched, the user forces it (`--full-refresh`,
        `--reconcile`, `--academic-year`), or the last fetch is `interval` days old or more.
        """
        interval = getattr(self, endpoint.refresh_setting) if endpoint.refresh_setting else 1
        last = fetched_on.get(str(year))
        if interval <= 1 or last is None or self.full_refresh or self.reconcile or self.explicit_years:
            return True
        return (self.today - date.fromisoformat(last)).days >= interval

    def reconcile_due(self, runs_since_last: int) -> bool:
        """Whether a resource reconciles this run: asked for, or every `reconcile_every_n_runs` runs."""
        return self.reconcile or (0 < self.reconcile_every_n_runs <= runs_since_last)

    def terms(self, year: int) -> list[dict[str, Any]]:
        """Year `year`'s terms as typed rows, fetched once per run (every slice resource needs the sessions)."""
        with self._lock:
            if year not in self._terms_by_year:
                start, end = academic_year_bounds(year)
                params = {"start_date": start.isoformat(), "end_date": end.isoformat()}
                rows = {
                    row["term_id"]: row
                    for row in self.fetch_typed_rows(calendar_endpoint(), params)
                    if row.get("academic_year") == year and row.get("term_id") is not None
                }
                self._terms_by_year[year] = list(rows.values())
            return self._terms_by_year[year]

    def fetch_typed_rows(self, endpoint: Endpoint, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """Every record of one request window as typed rows (for the small lookups several resources share)."""
        converter = RowConverter(endpoint)
        if endpoint.shape == "list":
            return converter.to_table(self.client.get_json(endpoint.url_path(), params or {}) or []).to_pylist()
        rows: list[dict[str, Any]] = []
        for page in self.client.iter_pages(endpoint.url_path(), params or {}, endpoint.max_limit or 1000):
            rows.extend(converter.to_table(page.rows).to_pylist())
        return rows

    def session_windows(self, year: int) -> list[SessionWindow]:
        return session_windows(self.terms(year), year)

    def shared_rows(self, table: str, fetch: Callable[[], list[dict[str, Any]]]) -> list[dict[str, Any]]:
        """Rows of a small table that several resources read (Assessments, Users, Sites), fetched once per run."""
        with self._lock:
            if table not in self._shared:
                self._shared[table] = fetch()
            return self._shared[table]

    def note_finding(self, line: str) -> None:
        """Record what a check found this run (reconciliation), for the run history."""
        with self._lock:
            self.report.findings.append(line)

    @contextmanager
    def track(self, table: str) -> Iterator[ResourceProgress]:
        """Times a resource's generator and reports it when it finishes."""
        self._check_pii_mode()
        progress = self.progress_of(table)
        progress.started = time.monotonic()
        yield progress
        progress.elapsed = time.monotonic() - progress.started
        if self.report.on_resource_done is not None:
            self.report.on_resource_done(table, progress)

    def _check_pii_mode(self) -> None:
        """A warehouse keeps the PII mode it was first loaded with: mixing clear and hashed values breaks joins."""
        state = dlt.current.source_state()
        first_mode = state.setdefault("pii_mode", self.pii.mode)
        if first_mode != self.pii.mode:
            raise ConfigurationError(
                f"this warehouse was loaded with --pii {first_mode}; it cannot switch to --pii {self.pii.mode}: "
                f"use --pii {first_mode} or a new --duckdb file"
            )

    def check_shrink(
        self, table: str, fetched: int, column: str | None = None, values: Sequence[Any] | None = None, what: str = ""
    ) -> None:
        """Refuse to replace a table or slice with far fewer rows than it holds (an upstream glitch, not a purge).

        Raises ShrinkGuardError, which fails the run before anything is loaded.
        """
        if self.allow_shrink or self.warehouse is None:
            return
        self._refuse_if_shrunk(table, fetched, self.warehouse.count(table, column, values), what)

    def check_shrink_per_slice(self, table: str, column: str, fetched: Mapping[Any, int]) -> None:
        """The shrink guard for each slice (e.g. each attendance date) fetched, with one query for what is held."""
        if self.allow_shrink or self.warehouse is None or not fetched:
            return
        held = {key[0]: count for key, count in self.warehouse.counts_by(table, [column]).items()}
        for value, count in sorted(fetched.items()):
            self._refuse_if_shrunk(table, count, held.get(value, 0), f" {column} {value}")

    def _refuse_if_shrunk(self, table: str, fetched: int, held: int, what: str) -> None:
        if held and (fetched == 0 or fetched < held * self.shrink_ratio):
            raise ShrinkGuardError(
                f"{table}{what}: the API returned {fetched:,} rows where the warehouse holds {held:,}; nothing was "
                f"loaded. If the drop is real, rerun with --allow-shrink"
            )

    def record_invalid(self, converter: RowConverter) -> None:
        """Report what a resource's converter kept out of its table."""
        table = converter.endpoint.table
        with self._lock:
            if converter.invalid_values:
                self.report.invalid_values[table] = dict(converter.invalid_values)
            if converter.quarantined_count:
                self.report.quarantined_counts[table] = converter.quarantined_count
                self.report.quarantined.extend(converter.drain_quarantined())

    def progress_of(self, table: str) -> ResourceProgress:
        with self._lock:
            return self.report.progress.setdefault(table, ResourceProgress())
