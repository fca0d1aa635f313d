"""A Delta lake warehouse (`--destination delta`): the raw tables as Delta tables under a directory or an object store.

Where: dlt's `filesystem` destination settings, `DESTINATION__FILESYSTEM__BUCKET_URL` (a local path, `file:///...`,
`s3://...`, `az://...`, `gs://...`; credentials of an object store under `DESTINATION__FILESYSTEM__CREDENTIALS__*`, or
`[destination.filesystem]` in `.dlt/`). The dataset (`illuminate`, or `--dataset`) is the folder under it, one Delta
table per raw table: `<bucket>/illuminate/students/_delta_log/...`; anything that reads Delta (Spark, Trino,
Databricks, DuckDB's delta extension, `deltalake.DeltaTable(path)`) reads them. dlt's own bookkeeping (`_dlt_loads`,
`_dlt_version`, `_dlt_pipeline_state`) stays in dlt's JSON files beside them.

## Loading: delete-insert on Delta, exactly once per package

The source loads its slice tables (a year, a date: `academic_year_slice`, `attendance_date`) with `delete-insert` on a
`merge_key`, a slice's rows replaced whole (a tombstone names a slice that became empty upstream), and its keyed
tables (`modified_after`, `date_taken_window`, the View documents) with `delete-insert` on the primary key, tombstones
deleting keys. dlt's Delta support has the merge strategies `upsert`, `insert-only` and `cdc` only, and refuses
`delete-insert`. `upsert` would do for the keyed tables but not for the slices (a row gone upstream is in no package,
so no upsert removes it), and dlt refuses `upsert` with a `hard_delete` column on a table with nested tables (the View
documents). So `pipelines.lake_writes` replaces dlt's Delta load job (its module docstring has the details):

| tables                                      | dlt disposition            | one Delta commit per table and package   |
|---------------------------------------------|----------------------------|------------------------------------------|
| replace, per_user                           | replace                    | overwrite                                |
| every merge table on a first sync           | append (the source's)      | append (tombstones left out)             |
| academic_year_slice, attendance_date        | delete-insert, merge_key   | overwrite with a predicate on the slices |
| modified_after, date_taken_window, the View | delete-insert, primary key | MERGE: tombstones delete, others replace |
| the View's nested tables                    | (follow their root)        | rows of vanished roots replaced          |

Why not `DeltaTable.delete` then an append: two commits, and a run that dies between them leaves the slice empty
until the next run. The predicate overwrite (Delta's `replaceWhere`) and MERGE are one commit each; a reader sees the
slice before or after, never half. And each commit carries a Delta transaction marker (`txn`: app id
`illuminate-sync`, version = the load id): dlt marks a load job done after it ran, so a run that dies between the
commit and that mark has the next run load the job again, and the job then skips every table whose marker already
names this package. Appends are therefore applied once too: the copied-twice repair (`remove_rows_copied_twice`,
kept as on every warehouse) finds nothing to repair on a lake whose tables this module wrote.

Nothing of the lake is Parquet-only: every raw table, its nested tables and the quarantine are Delta tables. Not
partitioned: a slice replace rewrites only the files holding the slice's rows, and partitions by date would make
thousands of small files per year. Not compacted or vacuumed by the sync either: a lake keeps every night's files
until `DeltaTable.optimize.compact()` / `vacuum()` (or the reader's own maintenance) runs; the README says so.

delta-rs writes the files of a MERGE (the keyed tables) with `string_view` text columns in their embedded Arrow
schema. Spark, Trino, DataFusion and DuckDB read them as strings; pyarrow (26) reads them too, but cannot apply a
filter on such a column ("no kernel matching input types (string, string_view)"), so a pyarrow reader of those
tables filters after reading (see `relation`).

Timestamps are naive (the source's are local times without a zone), which Delta stores as `timestamp_ntz`: the
tables need readers that know the `timestampNtz` table feature (Delta reader version 3: Spark 3.5+/Delta 3, recent
Trino and Databricks runtimes).

## Reads

Every read of the sync (row counts, the shrink guard's keys and counts, reconciliation's counts, rows written per load
id, the copied-twice check) runs on an in-memory DuckDB over the newest version of each Delta table, registered as a
pyarrow dataset (DuckDB scans only the columns and row groups the query needs). No DuckDB extension: `delta_scan`
needs one downloaded. `_dlt_loads` is read from dlt's files, newest first.

## Lock

A local lake: a lock file in the lake's directory, `<bucket>/.<dataset>.lock`, so that two runs on this machine into
one lake exclude each other whatever their `--data-dir`. An object store has no file lock: the lock file is in the
local working directory (`--data-dir`), which keeps out a second run from this machine with the same working
directory only. Two machines loading one dataset on an object store are not excluded: Delta's optimistic concurrency
makes each commit atomic, but their packages would interleave; run one sync per dataset (on S3, delta-rs also needs
its locking or conditional-put settings in `deltalake_storage_options` for concurrent writers at all).

## Models

The models are built with the same DuckDB runner (`pipelines.models`) into a DuckDB file, `<data dir>/models.duckdb`
or `MODELS__LAKE_DUCKDB`: each raw Delta table is copied into its schema `illuminate` as a table (a copy, not a view:
a view over an Arrow dataset does not outlive the connection and DuckDB cannot read Delta without its extension; a
table whose Delta version did not change since the last build is not copied again), the models built in `analytics`
there, and the tables among them (marts, reports and `settings`) written back to the lake as Delta tables under
`<bucket>/<analytics dataset>/` (`MODELS__WRITE_TO_LAKE=false` keeps them in the DuckDB file only).
"""

from __future__ import annotations

import io
import json
import os
import re
import threading
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlparse

import dlt
import duckdb
import pyarrow as pa
from dlt.common.configuration.exceptions import ConfigurationException
from dlt.common.destination import Destination
from dlt.common.pipeline import LoadInfo
from dlt.common.schema import Schema
from dlt.common.storages.configuration import FilesystemConfiguration

from illuminate_sync.pipelines.duckdb_settings import DUCKDB_WRITE_CONFIG, with_memory_limit
from illuminate_sync.pipelines.duckdb_warehouse import file_lock
from illuminate_sync.pipelines.models import ModelSettings, build_models, test_models
from illuminate_sync.pipelines.warehouse import LOAD_ID, ROW_ID, Warehouse, check_data_dir, quoted
from illuminate_sync.sources.illuminate.errors import ConfigurationError, IlluminateError
from illuminate_sync.sources.illuminate.settings import DATASET_NAME

LAKE_DESTINATION = "delta"
"""`--destination delta`."""
BUCKET_URL_VARIABLE = "DESTINATION__FILESYSTEM__BUCKET_URL"
CREDENTIALS_VARIABLE = "DESTINATION__FILESYSTEM__CREDENTIALS__*"
INSTALL_HINT = "pip install 'illuminate-sync[lake]'"
MODELS_DUCKDB_VARIABLE = "MODELS__LAKE_DUCKDB"
MODELS_TO_LAKE_VARIABLE = "MODELS__WRITE_TO_LAKE"
SCHEMA_NAME = "illuminate"
"""The dlt schema of the source (`@dlt.source(name=...)`): the prefix of dlt's files in `_dlt_loads`."""
LOADS_TABLE = "_dlt_loads"
VERSIONS_SCHEMA = "lake"
"""Schema of the models' DuckDB file holding the Delta version each raw table was copied at."""


def require_deltalake() -> None:
    try:
        import deltalake  # noqa: F401
    except ImportError:
        raise ConfigurationError(
            f"--destination {LAKE_DESTINATION}: the deltalake package is not installed: {INSTALL_HINT}"
        ) from None


def lake_location(bucket_url: str | None) -> tuple[str, Path | None]:
    """The lake's URL as dlt takes it and, for a local lake, its directory; a one-line error when it is missing or
    its directory cannot be created."""
    if bucket_url is None or not str(bucket_url).strip():
        raise ConfigurationError(
            f"--destination {LAKE_DESTINATION}: no lake location: set {BUCKET_URL_VARIABLE} (a directory,"
            " file:///path or s3://bucket/path) or bucket_url under [destination.filesystem] in .dlt/config.toml"
        )
    url = str(bucket_url).strip()
    if not FilesystemConfiguration.is_local_path(url) and urlparse(url).scheme != "file":
        return url, None
    path = Path(FilesystemConfiguration.make_local_path(url) if url.startswith("file:") else url).expanduser()
    path = path.absolute()
    setting = f"{BUCKET_URL_VARIABLE}={url}"
    if path.exists():
        if not path.is_dir():
            raise ConfigurationError(f"{setting}: is not a directory (expected the lake's directory)")
        if not os.access(path, os.W_OK | os.X_OK):
            raise ConfigurationError(f"{setting}: the directory is not writable")
    elif not path.parent.is_dir():
        raise ConfigurationError(
            f"{setting}: the directory {path.parent} does not exist (expected the lake's directory, or a new one in"
            " an existing directory: create it first)"
        )
    elif not os.access(path.parent, os.W_OK | os.X_OK):
        raise ConfigurationError(f"{setting}: the directory {path.parent} is not writable")
    return str(path), path


def default_lake_data_dir(url: str, local: Path | None, dataset: str) -> Path:
    """dlt's working directory for a lake: in a local lake's directory (hidden, one per dataset), else in the
    home directory, one per bucket and dataset."""
    if local is not None:
        return local / f".{dataset}.dlt"
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", url.split("://", 1)[-1]).strip("_")
    return Path.home() / ".illuminate-sync" / f"delta.{name}.{dataset}"


class DeltaLakeWarehouse(Warehouse):
    """Raw tables as Delta tables under `<bucket>/<dataset>/`, loaded by `pipelines.lake_writes`."""

    table_format = "delta"

    def __init__(self, dataset: str, data_dir: Path | None = None) -> None:
        self.dataset = dataset
        self.data_dir_given = data_dir is not None
        self._data_dir = data_dir
        self._url: str | None = None
        self._local: Path | None = None
        self._client: Any = None
        self._db: duckdb.DuckDBPyConnection | None = None
        self._lock = threading.RLock()

    # ------------------------------------------------------------------ location
    def _resolve(self) -> None:
        if self._url is None:
            self._url, self._local = lake_location(dlt.config.get("destination.filesystem.bucket_url"))

    @property
    def url(self) -> str:
        self._resolve()
        assert self._url is not None
        return self._url

    @property
    def local_path(self) -> Path | None:
        self._resolve()
        return self._local

    @property
    def data_dir(self) -> Path:  # type: ignore[override]
        if self._data_dir is None:
            self._data_dir = default_lake_data_dir(self.url, self.local_path, self.dataset)
        return self._data_dir

    def table_uri(self, table: str, dataset: str | None = None) -> str:
        if self.local_path is not None:
            return str(self.local_path / (dataset or self.dataset) / table)
        return f"{self.url.rstrip('/')}/{dataset or self.dataset}/{table}"

    @property
    def label(self) -> str:
        return f"Delta lake {FilesystemConfiguration(bucket_url=self.url)} dataset {self.dataset}"

    @property
    def kind(self) -> str:
        return "Delta lake"

    # ------------------------------------------------------------------ set-up
    def check(self) -> None:
        require_deltalake()
        self._resolve()
        if self.data_dir_given:
            check_data_dir(self.data_dir)
        self.job_client()  # the destination's settings (an object store's credentials) resolve
        models_to_lake()  # a wrong MODELS__WRITE_TO_LAKE fails now, not after the sync

    def destination(self) -> Destination[Any, Any]:
        from illuminate_sync.pipelines.lake_writes import lake

        return lake(bucket_url=self.url, destination_name="filesystem")

    def job_client(self) -> Any:
        """dlt's filesystem client of the lake and dataset (its settings resolved, or a one-line error)."""
        if self._client is None:
            from dlt.dataset.utils import get_destination_clients

            try:
                self._client, _ = get_destination_clients(
                    Schema(SCHEMA_NAME), destination=self.destination(), destination_dataset_name=self.dataset
                )
            except ConfigurationException as error:
                from illuminate_sync.pipelines.sync import configuration_error

                raise ConfigurationError(
                    f"--destination {LAKE_DESTINATION}: {configuration_error(error)} (object store credentials:"
                    f" {CREDENTIALS_VARIABLE})"
                ) from None
        return self._client

    def storage_options(self) -> dict[str, str]:
        if self.local_path is not None:
            return {}
        from dlt.common.libs.deltalake import deltalake_storage_options

        config = self.job_client().config
        return deltalake_storage_options(config.credentials, config.deltalake_storage_options)

    def lock(self) -> AbstractContextManager[None]:
        if self.local_path is not None:
            self.local_path.mkdir(mode=0o700, exist_ok=True)  # the lock file's directory, owner-only as the lake
            return file_lock(self.local_path / f".{self.dataset}.lock", self.label)
        return file_lock(self.data_dir / "run.lock", self.label)

    @contextmanager
    def protected(self) -> Iterator[None]:
        """A local lake's files are owner-only from creation on (the process umask; delta-rs honours it)."""
        previous = os.umask(0o077)
        try:
            if self.local_path is not None and (self.local_path / self.dataset).is_dir():
                os.chmod(self.local_path / self.dataset, 0o700)
            yield
        finally:
            os.umask(previous)

    # ------------------------------------------------------------------ reads
    def delta_table(self, table: str, dataset: str | None = None) -> Any:
        """The newest version of a Delta table, or None when there is none."""
        from deltalake import DeltaTable
        from deltalake.exceptions import TableNotFoundError

        uri = self.table_uri(table, dataset)
        if self.local_path is not None and not Path(uri, "_delta_log").is_dir():
            return None
        try:
            return DeltaTable(uri, storage_options=self.storage_options() or None)
        except TableNotFoundError:
            return None

    def _connection(self) -> duckdb.DuckDBPyConnection:
        if self._db is None:
            self._db = duckdb.connect(
                config={"threads": "1", "memory_limit": with_memory_limit(DUCKDB_WRITE_CONFIG)["memory_limit"]}
            )
            # No filter pushed into the Arrow scan: pyarrow cannot compare a string literal with the `string_view`
            # columns of the files delta-rs' MERGE and predicate writes produce ("no kernel matching input types
            # (string, string_view)"). DuckDB filters what the scan reads (the query's columns only) instead.
            self._db.execute("set disabled_optimizers = 'filter_pushdown'")
        return self._db

    def relation(self, table: str) -> str:
        """The table's newest version, registered in the in-memory DuckDB (an unknown name when it does not exist)."""
        name = f"lake_{table}"
        with self._lock:
            con = self._connection()
            delta = self.delta_table(table)
            if delta is None:
                con.unregister(name)
            else:
                con.register(name, delta.to_pyarrow_dataset())
        return quoted(name)

    def fetch(self, query: str) -> list[tuple[Any, ...]]:
        with self._lock:
            try:
                return self._connection().execute(query).fetchall()
            except duckdb.CatalogException:  # the table does not exist (yet)
                return []

    def count(self, table: str, column: str | None = None, values: Sequence[Any] | None = None) -> int:
        if column is None:  # from the files' metadata
            delta = self.delta_table(table)
            return 0 if delta is None else int(delta.to_pyarrow_dataset().count_rows())
        return super().count(table, column, values)

    def raw_tables(self) -> list[str]:
        client = self.job_client()
        fs, root = client.fs_client, client.dataset_path
        try:
            entries = fs.ls(root, detail=False)
        except FileNotFoundError:
            return []
        tables = []
        for entry in sorted(entries):
            name = entry.rstrip("/").rsplit("/", 1)[-1]
            if not name.startswith(("_dlt", ".")) and fs.isdir(f"{entry.rstrip('/')}/_delta_log"):
                tables.append(name)
        return tables

    def columns(self, table: str) -> set[str]:
        delta = self.delta_table(table)
        return set() if delta is None else set(pa.schema(delta.schema().to_arrow()).names)

    def loads_since(self, loaded_since: str) -> list[str]:
        """dlt's `_dlt_loads` files, newest load id first, until one was loaded before `loaded_since`: dlt loads the
        packages in the order of their ids, so the older ones were loaded earlier."""
        client = self.job_client()
        fs = client.fs_client
        folder = f"{client.dataset_path.rstrip('/')}/{LOADS_TABLE}"
        try:
            files = fs.ls(folder, detail=False)
        except FileNotFoundError:
            return []
        since = datetime.fromisoformat(loaded_since)
        found = []
        pattern = re.compile(rf"{SCHEMA_NAME}__(\d+(?:\.\d+)?)\.jsonl$")
        named = [(match.group(1), file) for file in files if (match := pattern.search(file))]
        for load_id, file in sorted(named, key=lambda item: float(item[0]), reverse=True):
            record = json.loads(fs.read_text(file, encoding="utf-8"))
            if datetime.fromisoformat(record["inserted_at"]) < since:
                break
            found.append(load_id)
        return found

    # ------------------------------------------------------------------ writes
    def keep_one_copy(self, table: str, row_ids: Sequence[Any], load_ids: Sequence[str]) -> None:
        """One commit: the rows of `row_ids` among `load_ids` replaced by one copy of each (copies are identical)."""
        from deltalake import write_deltalake

        from illuminate_sync.pipelines.lake_writes import conformed, delta_identifier, delta_literal, table_arrow_schema

        where = (
            f"{delta_identifier(ROW_ID)} IN ({', '.join(delta_literal(value) for value in row_ids)}) AND"
            f" {delta_identifier(LOAD_ID)} IN ({', '.join(delta_literal(value) for value in load_ids)})"
        )
        relation = self.relation(table)
        with self._lock:
            copies = self._connection().sql(f"select distinct * from {relation} where {where}").to_arrow_table()
        delta = self.delta_table(table)
        schema = table_arrow_schema(delta)
        write_deltalake(
            delta,
            pa.RecordBatchReader.from_batches(schema, conformed(copies.to_batches(), schema)),
            mode="overwrite",
            predicate=where,
            storage_options=self.storage_options() or None,
        )

    def load(self, pipeline: dlt.Pipeline) -> LoadInfo:
        return pipeline.load()

    @contextmanager
    def background_destination(self, pipeline: dlt.Pipeline) -> Iterator[Destination[Any, Any]]:
        yield self.destination()  # Delta readers see committed versions: the reads go on beside the load

    def append(self, table: str, rows: pa.Table) -> None:
        """Appended to the Delta table `table` (one commit)."""
        from deltalake import write_deltalake

        write_deltalake(
            self.table_uri(table),
            rows,
            mode="append",
            schema_mode="merge",
            storage_options=self.storage_options() or None,
        )

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    # ------------------------------------------------------------------ models
    def models_path(self) -> Path:
        configured = dlt.config.get("models.lake_duckdb")
        return Path(str(configured)).expanduser() if configured else self.data_dir / "models.duckdb"

    def copy_raw_tables(self, path: Path) -> int:
        """The lake's raw tables copied into schema `illuminate` (the lake's dataset) of the DuckDB file `path` (a
        table whose Delta version was copied before is left as it is; a table gone from the lake is dropped). Returns
        the copies."""
        source = self.dataset
        # the file may be shared by the lake's datasets (`models.lake_duckdb`): each keeps its own versions
        versions = f"{VERSIONS_SCHEMA}.versions" if source == DATASET_NAME else f"{VERSIONS_SCHEMA}.versions_{source}"
        copied = 0
        path.parent.mkdir(parents=True, exist_ok=True)
        with duckdb.connect(str(path), config=with_memory_limit(DUCKDB_WRITE_CONFIG)) as con:
            con.execute(f"create schema if not exists {source}")
            con.execute(f"create schema if not exists {VERSIONS_SCHEMA}")
            con.execute(f"create table if not exists {versions} (table_name varchar primary key, version bigint)")
            known = dict(con.execute(f"select table_name, version from {versions}").fetchall())
            tables = self.raw_tables()
            for table in tables:
                delta = self.delta_table(table)
                if delta is None or known.get(table) == delta.version():
                    continue
                con.register("lake_copy", delta.to_pyarrow_dataset())
                con.execute(f"create or replace table {source}.{quoted(table)} as select * from lake_copy")
                con.unregister("lake_copy")
                con.execute(f"insert or replace into {versions} values (?, ?)", [table, delta.version()])
                copied += 1
            stale = [
                row[0]
                for row in con.execute(
                    "select table_name from information_schema.tables where table_schema = ?", [source]
                ).fetchall()
                if row[0] not in tables
            ]
            for table in stale:
                con.execute(f"drop table {source}.{quoted(table)}")
                con.execute(f"delete from {versions} where table_name = ?", [table])
        return copied

    def write_models_to_lake(self, path: Path) -> list[str]:
        """The tables of the model schema (`analytics`: marts, reports, settings) written to
        `<bucket>/<model dataset>/`."""
        from deltalake import write_deltalake
        from dlt.common.libs.deltalake import ensure_delta_compatible_arrow_data

        written = []
        with duckdb.connect(str(path), read_only=True) as con:
            names = [
                row[0]
                for row in con.execute(
                    "select table_name from information_schema.tables where table_schema = ?"
                    " and table_type = 'BASE TABLE' order by 1",
                    [self.model_dataset],
                ).fetchall()
            ]
            for name in names:
                data = con.sql(f"select * from {self.model_dataset}.{quoted(name)}").to_arrow_table()
                write_deltalake(
                    self.table_uri(name, self.model_dataset),
                    ensure_delta_compatible_arrow_data(data),
                    mode="overwrite",
                    schema_mode="overwrite",
                    storage_options=self.storage_options() or None,
                )
                written.append(name)
        return written

    def build_models(self, settings: ModelSettings, out: TextIO | None = None) -> str:
        if not self.raw_tables():
            raise IlluminateError(
                f"{self.label} has no raw tables: run `illuminate-sync run --destination {LAKE_DESTINATION}` first"
            )
        path = self.models_path()
        self.copy_raw_tables(path)
        log = io.StringIO()
        build_models(path, out=log, settings=settings, schemas=self.model_schemas())
        if out is not None:
            out.write(log.getvalue())
        line = log.getvalue().strip().splitlines()[-1]  # "built N models into analytics in S s"
        if models_to_lake():
            written = self.write_models_to_lake(path)
            line += f" ({path}); {len(written)} tables written to the lake's {self.model_dataset}"
        else:
            line += f" ({path})"
        return line

    def test_models(self) -> list[str]:
        return test_models(self.models_path(), self.model_schemas())


def models_to_lake() -> bool:
    raw = dlt.config.get("models.write_to_lake")
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return True
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no"):
        return False
    raise ConfigurationError(f"{MODELS_TO_LAKE_VARIABLE}: {raw!r} is not true or false")
