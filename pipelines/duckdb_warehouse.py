"""The default warehouse: one local DuckDB file (`--duckdb PATH`), raw tables in schema `illuminate` (or the schema
of `--dataset`, e.g. `illuminate_north`, with the models in `analytics_north`).

What only a file has: its path is checked before anything is written (a wrong file is never turned into a database),
a lock file beside it keeps a second run out, its files are owner-only, and the loads run on one DuckDB connection
(see `load_on_one_connection`). While a first sync loads a stage in the background, the file is open in this process
on one DuckDB instance, and DuckDB refuses a second connection with another configuration: the reads go through a
cursor of that instance meanwhile (`sharing`).
"""

from __future__ import annotations

import io
import os
import sys
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, TextIO

import dlt
import duckdb
import pyarrow as pa
from dlt.common.destination import Destination
from dlt.common.pipeline import LoadInfo
from dlt.destinations.impl.duckdb.configuration import DuckDbCredentials

from illuminate_sync.pipelines.duckdb_settings import (
    BACKGROUND_LOAD_CONFIG,
    DUCKDB_LOAD_CONFIG,
    DUCKDB_WRITE_CONFIG,
    READ_CONFIG,
    check_memory_limit,
    with_memory_limit,
)
from illuminate_sync.pipelines.models import ModelSettings, build_models, test_models
from illuminate_sync.pipelines.warehouse import (
    Warehouse,
    check_data_dir,
    literal_list,
    owner_only_umask,
    quoted,
)
from illuminate_sync.sources.illuminate.errors import ConfigurationError, IlluminateError
from illuminate_sync.sources.illuminate.settings import DATASET_NAME


def default_data_dir(duckdb_path: Path, dataset: str = DATASET_NAME) -> Path:
    """dlt's working directory for a warehouse: beside the DuckDB file, one per file and raw dataset (dlt's state,
    the cursors included, belongs to one dataset: `.w.duckdb.dlt` for `illuminate`, `.w.duckdb.illuminate_north.dlt`
    for another)."""
    if dataset == DATASET_NAME:
        return duckdb_path.parent / f".{duckdb_path.name}.dlt"
    return duckdb_path.parent / f".{duckdb_path.name}.{dataset}.dlt"


class DuckDBFileWarehouse(Warehouse):
    """A DuckDB file, read on short read-only connections (or the background load's cursor, see `sharing`)."""

    def __init__(self, path: Path, data_dir: Path | None = None, dataset: str = DATASET_NAME) -> None:
        self.path = path
        self.dataset = dataset
        self.data_dir_given = data_dir is not None
        self.data_dir = data_dir or default_data_dir(path, dataset)
        self._shared: duckdb.DuckDBPyConnection | None = None
        self._shared_lock = threading.Lock()

    @property
    def label(self) -> str:
        return str(self.path)

    @property
    def kind(self) -> str:
        return "DuckDB"

    def check(self) -> None:
        check_warehouse_file(self.path)
        if self.data_dir_given:
            check_data_dir(self.data_dir)
        check_memory_limit()

    def destination(self) -> Destination[Any, Any]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        credentials = DuckDbCredentials(str(self.path))
        credentials.global_config = with_memory_limit(DUCKDB_WRITE_CONFIG)
        return dlt.destinations.duckdb(credentials)

    def lock(self) -> AbstractContextManager[None]:
        return warehouse_lock(self.path, shared_by_instances=self.instance is not None)

    def protected(self) -> AbstractContextManager[None]:
        return owner_only_files(self.path)

    # ------------------------------------------------------------------ reads
    def relation(self, table: str) -> str:
        return f"{self.dataset}.{quoted(table)}"

    def fetch(self, query: str) -> list[tuple[Any, ...]]:
        with self._connection() as con:
            if con is None:
                return []
            try:
                return con.execute(query).fetchall()
            except duckdb.CatalogException:  # the table does not exist yet
                return []

    def raw_tables(self) -> list[str]:
        query = (
            "select table_name from information_schema.tables where table_schema = "
            f"{literal_list([self.dataset])} and table_name not like '\\_dlt%' escape '\\'"
        )
        return [str(row[0]) for row in self.fetch(query)]

    def columns(self, table: str) -> set[str]:
        query = (
            "select column_name from information_schema.columns where table_schema = "
            f"{literal_list([self.dataset])} and table_name = {literal_list([table])}"
        )
        return {str(row[0]) for row in self.fetch(query)}

    @contextmanager
    def reading(self) -> Iterator[None]:
        """The reads of the block share one read-only connection: opening the file costs ~40 ms (with its
        checkpoint on close), and a run's counts read every table (1.83 s for a 5,000-student nightly's counts on a
        connection each against 0.07 s on one). Inside `sharing`, the shared cursor serves as it is."""
        if self._shared is not None or not self.path.exists():
            yield
            return
        with (
            duckdb.connect(str(self.path), read_only=True, config=with_memory_limit(READ_CONFIG)) as con,
            self.sharing(con),
        ):
            yield

    def table_counts(self) -> dict[str, int]:
        with self.reading():
            return super().table_counts()

    def rows_written(self, tables: Iterable[str], load_ids: Sequence[str]) -> dict[str, int]:
        with self.reading():
            return super().rows_written(tables, load_ids)

    def find_copies(self, loaded_since: str) -> tuple[list[str], dict[str, list[Any]]]:
        with self.reading():  # closed before `keep_one_copy` opens the file to write
            return super().find_copies(loaded_since)

    @contextmanager
    def sharing(self, connection: duckdb.DuckDBPyConnection) -> Iterator[None]:
        """Reads go through a cursor of `connection` while the block runs."""
        cursor = connection.cursor()
        self._shared = cursor
        try:
            yield
        finally:
            with self._shared_lock:
                self._shared = None
                cursor.close()

    @contextmanager
    def _connection(self) -> Iterator[duckdb.DuckDBPyConnection | None]:
        """The shared cursor (held under its lock), else a short read-only connection; None when there is no file."""
        with self._shared_lock:
            if self._shared is not None:
                yield self._shared
                return
        if not self.path.exists():
            yield None
            return
        with duckdb.connect(str(self.path), read_only=True, config=with_memory_limit(READ_CONFIG)) as con:
            yield con

    # ------------------------------------------------------------------ writes
    @contextmanager
    def _write_connection(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A short connection for one write (closed, and so checkpointed, at the end)."""
        with duckdb.connect(str(self.path), config=with_memory_limit(DUCKDB_WRITE_CONFIG)) as con:
            yield con

    def keep_one_copy(self, table: str, row_ids: Sequence[Any], load_ids: Sequence[str]) -> None:
        relation = self.relation(table)
        # The rows are numbered only among the few ids found, not among every row of the run.
        with self._write_connection() as con:
            con.execute(
                f"delete from {relation} where rowid in (select rowid from (select rowid, row_number() over"
                f" (partition by _dlt_id order by rowid) as copy from {relation}"
                f" where _dlt_id in ({literal_list(row_ids)}) and _dlt_load_id in ({literal_list(load_ids)}))"
                " where copy > 1)"
            )

    def load(self, pipeline: dlt.Pipeline) -> LoadInfo:
        return load_on_one_connection(pipeline, self.path)

    @contextmanager
    def background_destination(self, pipeline: dlt.Pipeline) -> Iterator[Destination[Any, Any]]:
        connection = duckdb.connect(str(self.path), config=with_memory_limit(BACKGROUND_LOAD_CONFIG))
        try:
            with self.sharing(connection):
                yield dlt.destinations.duckdb(connection)
        finally:
            connection.close()  # and so checkpointed

    def append(self, table: str, rows: pa.Table) -> None:
        relation = self.relation(table)
        with self._write_connection() as con:
            con.register("new_rows", rows)
            con.execute(f"create schema if not exists {self.dataset}")
            con.execute(f"create table if not exists {relation} as select * from new_rows where false")
            con.execute(f"insert into {relation} by name select * from new_rows")

    def after_load(self) -> None:
        os.chmod(self.path, 0o600)

    # ------------------------------------------------------------------ models
    def build_models(self, settings: ModelSettings, out: TextIO | None = None) -> str:
        log = io.StringIO()
        build_models(self.path, out=log, settings=settings, schemas=self.model_schemas())
        return log.getvalue().strip().splitlines()[-1]  # "built N models into analytics ..."

    def test_models(self) -> list[str]:
        return test_models(self.path, self.model_schemas())

    builds_network_models = True

    def build_network_models(self, instances: Sequence[str], out: TextIO | None = None) -> str:
        from illuminate_sync.pipelines.network_models import build_network_file

        return build_network_file(self.path, instances, out=out or io.StringIO()).message()

    def test_network_models(self) -> list[str]:
        from illuminate_sync.pipelines.network_models import test_network_file

        return test_network_file(self.path)


def load_on_one_connection(pipeline: dlt.Pipeline, duckdb_path: Path) -> LoadInfo:
    """`pipeline.load()` with its jobs on one DuckDB connection, closed when the load step is over.

    With one load worker, dlt opens the database for each load job and closes it after, and each close checkpoints:
    the 79 jobs of a 1,000-student full sync spent 2.8 s of a 9 s load opening and closing the file. A connection
    passed in as the credentials stays open until the load step is over.
    """
    with duckdb.connect(str(duckdb_path), config=with_memory_limit(DUCKDB_LOAD_CONFIG)) as connection:
        return pipeline.load(credentials=connection)


# ---------------------------------------------------------------------------------------------------------- lock
def _lock_exclusively(descriptor: int) -> None:
    """Take an exclusive, non-blocking lock on an open file (released when the descriptor closes)."""
    if sys.platform == "win32":
        import msvcrt

        msvcrt.locking(descriptor, msvcrt.LK_NBLCK, 1)
    else:
        import fcntl

        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)


@contextmanager
def file_lock(lock_path: Path, holder: str, why: str = "") -> Iterator[None]:
    """An exclusive lock on `lock_path`: a second run exits at once instead of waiting or corrupting the first.
    `why` ends the message (why the other run keeps this one out)."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            _lock_exclusively(descriptor)
        except OSError:
            raise IlluminateError(
                f"another illuminate-sync run is using {holder} (lock {lock_path}): wait for it to finish{why}"
            ) from None
        yield
    finally:
        os.close(descriptor)


SHARED_FILE_NOTE = (
    "; instances loading into one DuckDB file run one after another (DuckDB allows one writing process per file):"
    " give each instance its own --duckdb file to run them at the same time"
)


def warehouse_lock(duckdb_path: Path, shared_by_instances: bool = False) -> AbstractContextManager[None]:
    """One sync per DuckDB file at a time (the lock file is beside it), whichever instance it loads: DuckDB lets
    one process write a file, so the instances of one file take turns (`shared_by_instances` says so in the
    message)."""
    why = SHARED_FILE_NOTE if shared_by_instances else ""
    return file_lock(duckdb_path.parent / f".{duckdb_path.name}.lock", str(duckdb_path), why)


@contextmanager
def owner_only_files(duckdb_path: Path) -> Iterator[None]:
    """Student data on disk readable by its owner only, from creation on (a crash mid-load included).

    The process umask makes every file DuckDB and dlt create 0600 and every directory 0700; an existing warehouse
    is tightened first.
    """
    with owner_only_umask():
        for path in (duckdb_path, duckdb_path.with_name(duckdb_path.name + ".wal")):
            if path.exists():
                os.chmod(path, 0o600)
        yield


# ---------------------------------------------------------------------------------------------------------- checks
DUCKDB_MAGIC = b"DUCK"
DUCKDB_MAGIC_OFFSET = 8
"""Every DuckDB database file holds these bytes at this offset (the header of its first block)."""


def is_duckdb_file(path: Path) -> bool:
    """Whether `path` starts like a DuckDB database; read from its header, so the file is never opened by DuckDB
    (which would turn a wrong file given by mistake into a database, or write a WAL beside it)."""
    with path.open("rb") as file:
        header = file.read(DUCKDB_MAGIC_OFFSET + len(DUCKDB_MAGIC))
    return header[DUCKDB_MAGIC_OFFSET:] == DUCKDB_MAGIC


def check_warehouse_file(duckdb_path: Path) -> None:
    """`--duckdb` of a command that writes: a DuckDB database, or a new file in an existing, writable directory.

    The directory is not created: a typo in it would otherwise put a new, empty warehouse somewhere unexpected.
    """
    directory = duckdb_path.parent
    if not directory.is_dir():
        raise ConfigurationError(
            f"--duckdb {duckdb_path}: the directory {directory} does not exist (expected a file in an existing"
            " directory: create it first)"
        )
    if not os.access(directory, os.W_OK | os.X_OK):
        raise ConfigurationError(
            f"--duckdb {duckdb_path}: the directory {directory} is not writable (expected a directory where the"
            " run can write the database, its log and its lock)"
        )
    if duckdb_path.exists():
        check_duckdb_database(duckdb_path)
        if not os.access(duckdb_path, os.W_OK):
            raise ConfigurationError(f"--duckdb {duckdb_path}: the file is not writable (expected a writable file)")


def check_duckdb_database(duckdb_path: Path) -> None:
    """`--duckdb` names an existing file: it must be a DuckDB database (and is left untouched when it is not)."""
    if duckdb_path.is_dir():
        raise ConfigurationError(f"--duckdb {duckdb_path}: is a directory (expected a DuckDB database file)")
    try:
        is_database = is_duckdb_file(duckdb_path)
    except OSError as error:
        raise ConfigurationError(
            f"--duckdb {duckdb_path}: cannot be read ({error.strerror}; expected a readable DuckDB database file)"
        ) from None
    if not is_database:
        raise ConfigurationError(
            f"--duckdb {duckdb_path}: is not a DuckDB database (expected a DuckDB file, or the path of a new one);"
            " the file was not changed"
        )
