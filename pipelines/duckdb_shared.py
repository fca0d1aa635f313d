"""Several instances synced into one DuckDB file at the same time, in one process (`run --all-instances --duckdb`).

DuckDB lets one process write a file, and inside that process it refuses a second connection to the file with
another configuration than the first's. So the instances of one file cannot each open it as a single instance's run
does (short read-only connections for reads, one connection per load step, another for a background stage load):
`SharedDuckDBFile` opens the file once for the whole run, under the file's lock and with owner-only permissions,
and each instance's warehouse (`SharedFileWarehouse`) reads, loads, repairs and builds its models on cursors of that
one connection. A cursor is a connection of its own to the same database (its own transactions), and each instance
writes only its own schemas (`illuminate_<name>`, `analytics_<name>`), so the instances' transactions do not
conflict. Their model builds take turns (`models_lock`): four 1,000-student instances building their models at once
in one 128 MB limit ran out of memory in two of them (bench/instances.py, first run). The file's memory limit is the
models' (128 MB) plus a load's (64 MB) for each other instance, unless the user set one (`shared_memory_config`).
The connection object itself is not used by two threads at once: cursors are taken from it under a lock,
and dlt gets a cursor of its own per destination (dlt sets its settings on the connection it is given, then works on
duplicates of it). One database also means one memory limit for all the instances' loads and builds together (the write
limit, `DUCKDB_WRITE_CONFIG`, or the user's `DUCKDB__MEMORY_LIMIT`), not one per instance.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, ExitStack, contextmanager, nullcontext
from pathlib import Path
from typing import Any, TextIO

import dlt
import duckdb
from dlt.common.destination import Destination
from dlt.common.pipeline import LoadInfo

from illuminate_sync.pipelines.duckdb_settings import DUCKDB_LOAD_CONFIG, DUCKDB_WRITE_CONFIG, with_memory_limit
from illuminate_sync.pipelines.duckdb_warehouse import (
    DuckDBFileWarehouse,
    check_warehouse_file,
    owner_only_files,
    warehouse_lock,
)
from illuminate_sync.pipelines.models import ModelSettings, build_models_on, test_models_on
from illuminate_sync.sources.illuminate.instances import dataset_for


def shared_memory_config(instances: int) -> dict[str, Any]:
    """DuckDB's settings of a file shared by `instances`: room for one model build (the write limit) and for the
    other instances' loads (the load limit each) at once; the user's `DUCKDB__MEMORY_LIMIT` wins."""
    megabytes = _megabytes(DUCKDB_WRITE_CONFIG) + _megabytes(DUCKDB_LOAD_CONFIG) * max(instances - 1, 0)
    return with_memory_limit({**DUCKDB_WRITE_CONFIG, "memory_limit": f"{megabytes}MB"})


def _megabytes(config: dict[str, Any]) -> int:
    limit = str(config["memory_limit"])
    assert limit.endswith("MB"), f"the defaults are written in MB: {limit}"
    return int(limit.removesuffix("MB"))


class SharedDuckDBFile:
    """One DuckDB file open for the instances synced into it at the same time (a context manager)."""

    def __init__(self, path: Path, instances: int = 1) -> None:
        self.path = path
        self.instances = instances
        self.models_lock = threading.Lock()
        """Held by a model build (an instance's or the network's): one at a time in the file's memory limit."""
        self._stack = ExitStack()
        self._connection: duckdb.DuckDBPyConnection | None = None
        self._lock = threading.Lock()

    def check(self) -> None:
        """The path, as a single run checks it (before anything is written)."""
        check_warehouse_file(self.path)

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A new connection to the open file's database (DuckDB's connection object is not for two threads at
        once, hence the lock)."""
        assert self._connection is not None, "open the file first (with SharedDuckDBFile(...))"
        with self._lock:
            return self._connection.cursor()

    def __enter__(self) -> SharedDuckDBFile:
        try:
            self._stack.enter_context(warehouse_lock(self.path))
            self._stack.enter_context(owner_only_files(self.path))
            self._connection = self._stack.enter_context(
                duckdb.connect(str(self.path), config=shared_memory_config(self.instances))
            )
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._connection = None
        self._stack.close()  # the connection closes (and checkpoints) before the lock is released

    def warehouse(self, instance: str, data_dir: Path | None = None) -> SharedFileWarehouse:
        warehouse = SharedFileWarehouse(self, dataset_for(instance), data_dir)
        warehouse.instance = instance
        return warehouse


class SharedFileWarehouse(DuckDBFileWarehouse):
    """One instance's schemas in a `SharedDuckDBFile`: every read and write on a cursor of the file's connection.
    The lock and the owner-only permissions are the shared file's, held for the whole run."""

    def __init__(self, shared: SharedDuckDBFile, dataset: str, data_dir: Path | None = None) -> None:
        super().__init__(shared.path, data_dir, dataset)
        self.shared = shared
        self._given_to_dlt: list[duckdb.DuckDBPyConnection] = []

    def _cursor_for_dlt(self) -> duckdb.DuckDBPyConnection:
        """A cursor dlt may use as its connection (it does not close what it is given: `close` does)."""
        cursor = self.shared.cursor()
        self._given_to_dlt.append(cursor)
        return cursor

    def destination(self) -> Destination[Any, Any]:
        return dlt.destinations.duckdb(self._cursor_for_dlt())

    def close(self) -> None:
        super().close()
        while self._given_to_dlt:
            self._given_to_dlt.pop().close()

    def lock(self) -> AbstractContextManager[None]:
        return nullcontext()

    def protected(self) -> AbstractContextManager[None]:
        return nullcontext()

    @contextmanager
    def reading(self) -> Iterator[None]:
        yield  # every read is on a cursor already

    @contextmanager
    def _connection(self) -> Iterator[duckdb.DuckDBPyConnection | None]:
        with self.shared.cursor() as cursor:
            yield cursor

    @contextmanager
    def _write_connection(self) -> Iterator[duckdb.DuckDBPyConnection]:
        with self.shared.cursor() as cursor:
            yield cursor

    def load(self, pipeline: dlt.Pipeline) -> LoadInfo:
        with self.shared.cursor() as cursor:
            return pipeline.load(credentials=cursor)

    @contextmanager
    def background_destination(self, pipeline: dlt.Pipeline) -> Iterator[Destination[Any, Any]]:
        yield self.destination()

    def build_models(self, settings: ModelSettings, out: TextIO | None = None) -> str:
        log = io.StringIO()
        with self.shared.models_lock, self.shared.cursor() as cursor:
            build_models_on(cursor, str(self.path), out=log, settings=settings, schemas=self.model_schemas())
        return log.getvalue().strip().splitlines()[-1]

    def test_models(self) -> list[str]:
        with self.shared.cursor() as cursor:
            return test_models_on(cursor, self.model_schemas())

    def build_network_models(self, instances: Sequence[str], out: TextIO | None = None) -> str:
        from illuminate_sync.pipelines.network_models import build_network_duckdb

        with self.shared.models_lock, self.shared.cursor() as cursor:  # a transaction of its own
            return build_network_duckdb(cursor, instances, out=out or io.StringIO()).message()

    def test_network_models(self) -> list[str]:
        from illuminate_sync.pipelines.network_models import test_network_duckdb

        with self.shared.cursor() as cursor:
            return test_network_duckdb(cursor)
