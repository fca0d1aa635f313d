"""`illuminate-sync run --all-instances`: every declared instance synced at the same time, within one request budget.

Each instance runs its own sync (`sync.sync_into`: its dataset `illuminate_<name>`, its pipeline, state, cursors,
lock, shrink guard, copied-twice repair, run history and models in `analytics_<name>`) in a thread of its own, so
that one instance's downloads overlap the others' (at 200 ms a request the network, not the CPU, is the limit).
Every request holds one of its instance's `max_concurrency` slots and one of the shared `RequestBudget`'s
(`SOURCES__ILLUMINATE__NETWORK_MAX_CONCURRENCY`). An instance that fails (rejected credentials, a persistent fault,
the shrink guard) stops alone: its own run is recorded as failed and rolled back as a single run's would be, and the
others go on. Every instance is resolved and checked before any is started: a wrong setting of one is one line, and
nothing is loaded.

Where the instances land:
- one DuckDB file: the file is opened once, under its lock, and shared by the instances (`duckdb_shared`);
- a dlt destination (PostgreSQL, ...): one warehouse per instance, each dataset with its own lock;
- a Delta lake: one instance after another (its models are built in one local DuckDB file, which one process
  writes at a time).
"""

from __future__ import annotations

import io
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import ExitStack, contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from dlt.common.configuration import configspec, resolve_configuration
from dlt.common.configuration.exceptions import ConfigurationException
from dlt.common.configuration.specs import BaseConfiguration

from illuminate_sync.pipelines.sync import SyncSummary, configuration_error, quiet_dlt_logging, sync_into
from illuminate_sync.pipelines.warehouse import Warehouse, open_warehouse
from illuminate_sync.sources.illuminate.budget import RequestBudget
from illuminate_sync.sources.illuminate.errors import ConfigurationError, IlluminateError
from illuminate_sync.sources.illuminate.instances import Instance, declared_instances, resolve_instance
from illuminate_sync.sources.illuminate.settings import DEFAULT_NETWORK_MAX_CONCURRENCY

NETWORK_MAX_CONCURRENCY_VARIABLE = "SOURCES__ILLUMINATE__NETWORK_MAX_CONCURRENCY"


@configspec
class NetworkConfiguration(BaseConfiguration):
    """`network_max_concurrency` under `[sources.illuminate]` (or `SOURCES__ILLUMINATE__NETWORK_MAX_CONCURRENCY`)."""

    network_max_concurrency: int = DEFAULT_NETWORK_MAX_CONCURRENCY
    """The most requests in flight across every instance of `--all-instances` together."""


def network_budget() -> RequestBudget:
    """The shared request budget, its limit resolved by dlt and checked."""
    try:
        limit = resolve_configuration(
            NetworkConfiguration(), sections=("sources", "illuminate")
        ).network_max_concurrency
    except ConfigurationException as error:
        raise configuration_error(error) from None
    if isinstance(limit, bool) or limit < 1:
        raise ConfigurationError(
            f"{NETWORK_MAX_CONCURRENCY_VARIABLE}: {limit!r} is not a whole number of requests in flight >= 1"
        )
    return RequestBudget(limit)


@dataclass
class InstanceOutcome:
    """How one instance's run ended: its summary, or the one line of its failure."""

    name: str
    dataset: str
    seconds: float = 0.0
    summary: SyncSummary | None = None
    error: str | None = None

    @property
    def failed(self) -> bool:
        return self.error is not None

    def line(self) -> str:
        if self.error is not None:
            return f"{self.name}: failed after {self.seconds:.1f} s: {self.error}"
        assert self.summary is not None
        written = sum(change.rows_written or 0 for change in self.summary.tables.values())
        rows = sum(change.rows_after for change in self.summary.tables.values())
        return (
            f"{self.name}: succeeded in {self.seconds:.1f} s into {self.dataset}: {rows:,} rows, {written:,} written,"
            f" {self.summary.requests:,} requests ({self.summary.retries:,} retried)"
            + (f"; {self.summary.concurrency}" if self.summary.concurrency else "")
        )


@dataclass
class NetworkRun:
    """The outcome of `--all-instances`: one line per instance, and the network models' line."""

    budget: RequestBudget
    outcomes: list[InstanceOutcome] = field(default_factory=list)
    seconds: float = 0.0
    network_models: str | None = None
    """The network build's line ("built N network models into analytics ..."), or why none was built."""
    network_failed: bool = False

    @property
    def failed(self) -> list[str]:
        return [outcome.name for outcome in self.outcomes if outcome.failed]

    def render(self) -> str:
        lines = [outcome.line() for outcome in self.outcomes]
        if self.network_models is not None:
            lines.append(f"network models: {'failed: ' if self.network_failed else ''}{self.network_models}")
        lines.append(
            f"{len(self.outcomes) - len(self.failed)} of {len(self.outcomes)} instances synced in {self.seconds:.1f} s,"
            f" at most {self.budget.max_in_flight} of {self.budget.limit} requests in flight together"
        )
        return "\n".join(lines)


def check_distinct_instances(instances: Sequence[Instance]) -> None:
    """Two instances of one API would load one district twice, under two names: refused with one line."""
    seen: dict[str, str] = {}
    for instance in instances:
        other = seen.setdefault(instance.base_url, instance.name)
        if other != instance.name:
            raise ConfigurationError(
                f"instances {other} and {instance.name} have the same base_url {instance.base_url}: each instance is"
                " one district's API (remove one, or correct its base_url)"
            )


def resolve_all_instances() -> list[Instance]:
    """Every declared instance, resolved and checked; a one-line ConfigurationError when there is none or one is
    wrong (before anything is written)."""
    names = declared_instances()
    if not names:
        raise ConfigurationError(
            "--all-instances: no instance is declared (declare each under [sources.illuminate.instances.<name>] or"
            " with SOURCES__ILLUMINATE__INSTANCES__<NAME>__BASE_URL and ..._CREDENTIALS__*)"
        )
    instances = [resolve_instance(name) for name in names]
    check_distinct_instances(instances)
    return instances


class LinePrefixer(io.TextIOBase):
    """A text stream that writes whole lines to `out`, each after `prefix`, under a lock shared by the instances'
    streams (so two instances' lines never mix). Not a terminal: each instance reports in plain lines."""

    def __init__(self, out: TextIO, prefix: str, lock: threading.Lock) -> None:
        self.out = out
        self.prefix = prefix
        self.lock = lock
        self._partial = ""

    def write(self, text: str) -> int:
        lines = (self._partial + text).split("\n")
        self._partial = lines.pop()
        if lines:
            with self.lock:
                for line in lines:
                    self.out.write(f"{self.prefix}{line}\n")
                self.out.flush()
        return len(text)

    def flush(self) -> None:
        if self._partial:
            self.write("\n")

    def isatty(self) -> bool:
        return False


@contextmanager
def instance_warehouses(
    instances: Sequence[Instance], duckdb_path: Path | None, destination: str | None
) -> Iterator[dict[str, Warehouse]]:
    """Each instance's warehouse, opened for the run: in one DuckDB file, shared by the instances."""
    if (duckdb_path is None) == (destination is None):
        raise ConfigurationError("give either --duckdb PATH or --destination NAME (one of the two)")
    with ExitStack() as stack:
        if duckdb_path is not None:
            from illuminate_sync.pipelines.duckdb_shared import SharedDuckDBFile

            shared = SharedDuckDBFile(duckdb_path, len(instances))
            shared.check()
            stack.enter_context(shared)
            yield {instance.name: shared.warehouse(instance.name) for instance in instances}
        else:
            yield {
                instance.name: open_warehouse(destination=destination, instance=instance.name) for instance in instances
            }


def run_all_instances(
    duckdb_path: Path | None = None,
    destination: str | None = None,
    out: TextIO = sys.stderr,
    **sync_options: Any,
) -> NetworkRun:
    """Sync every declared instance at the same time into a DuckDB file (`duckdb_path`) or a dlt destination, each
    with its own state and models, within the shared request budget; returns each instance's outcome.

    `sync_options` are `sync_into`'s (`resources`, `academic_years`, `full_refresh`, `reconcile`,
    `build_models_after`) and source settings that win over every instance's (`pii`, `allow_shrink`).

    Raises a one-line ConfigurationError, before anything is written, when no instance is declared, one is wrong,
    two share an API, or the warehouse is wrong. An instance that fails does not raise: see `NetworkRun.failed`.
    """
    quiet_dlt_logging()
    instances = resolve_all_instances()
    budget = network_budget()
    run = NetworkRun(budget)
    started = time.monotonic()
    # A lake's models are built in one local DuckDB file: its instances take turns.
    parallel = 1 if destination == "delta" else len(instances)
    with instance_warehouses(instances, duckdb_path, destination) as warehouses:
        for warehouse in warehouses.values():
            warehouse.check()  # every instance's warehouse, before any starts
        lines = threading.Lock()
        with ThreadPoolExecutor(parallel, thread_name_prefix="illuminate-instance") as pool:
            futures = [
                pool.submit(
                    _sync_one,
                    instance,
                    warehouses[instance.name],
                    LinePrefixer(out, f"[{instance.name}] ", lines),
                    {**sync_options, "request_budget": budget},
                )
                for instance in instances
            ]
            try:
                run.outcomes = [_result_of(future) for future in futures]
            except KeyboardInterrupt:  # the instances' runs end at their next request, recorded as failed
                budget.stop("interrupted (Ctrl-C): this instance's run stopped; what earlier runs loaded is intact")
                raise
        if sync_options.get("build_models_after", True) and len(run.failed) < len(instances):
            build_network(run, warehouses[instances[0].name], [instance.name for instance in instances], destination)
    run.seconds = time.monotonic() - started
    return run


def _result_of(future: Future[Any]) -> Any:
    """The future's result, waited for in short turns: Ctrl-C's signal may reach one of the run's many threads (dlt's,
    the clients' pools), and the main thread raises KeyboardInterrupt only when it next runs Python code, which a
    single wait for an instance's whole run would put off until that run ended (measured: an instance ran to its end
    after Ctrl-C)."""
    while True:
        try:
            return future.result(timeout=0.25)
        except FutureTimeout:
            continue


def build_network(run: NetworkRun, any_instance: Warehouse, names: list[str], destination: str | None) -> None:
    """The network schema `analytics` over every instance's models, once all have run.

    Every declared instance is in it, a failed one with the models of its last successful run (its line above
    says it failed): leaving it out would drop a district from the network's reports for a night. On a destination
    the build runs on the single dataset's warehouse (the network schema is the destination's, not an instance's)
    under its lock; in a shared DuckDB file on a cursor of the file's connection."""
    network = any_instance if destination is None else open_warehouse(destination=destination)
    if not network.builds_network_models:
        run.network_models = f"not built: they are built on a DuckDB file or PostgreSQL, not on {network.kind}"
        return
    try:
        lock = network.lock() if destination is not None else nullcontext()
        with lock:
            run.network_models = network.build_network_models(names)
    except IlluminateError as error:
        run.network_models, run.network_failed = str(error), True
    finally:
        if destination is not None:
            network.close()


def _sync_one(instance: Instance, warehouse: Warehouse, out: LinePrefixer, options: dict[str, Any]) -> InstanceOutcome:
    """One instance's sync; whatever it raises becomes its outcome's one line (the others go on)."""
    outcome = InstanceOutcome(instance.name, warehouse.dataset)
    started = time.monotonic()
    try:
        outcome.summary = sync_into(warehouse, out=out, **{**instance.source_options(), **options})
    except IlluminateError as error:
        outcome.error = str(error)
    except Exception as error:  # a bug must not take the other instances down: it is reported as this one's failure
        first_line = str(error).splitlines()[0][:300] if str(error) else ""
        outcome.error = f"unexpected {type(error).__name__}: {first_line}"
    finally:
        out.flush()
    outcome.seconds = time.monotonic() - started
    print(outcome.line(), file=out)
    return outcome
