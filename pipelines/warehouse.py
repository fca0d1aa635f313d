"""The warehouse layer: where a sync loads its raw tables and where the models are built.

`Warehouse` is what the sync needs of a warehouse: the dlt pipeline that loads it, a lock, the reads of the shrink
guard and of reconciliation (`sources.illuminate.context.WarehouseReader`), row counts for the summary, the
copied-twice repair, the quarantine table and the models. Two implementations:

- `pipelines.duckdb_warehouse.DuckDBFileWarehouse`: a local DuckDB file (the default, `--duckdb PATH`);
- `pipelines.destination_warehouse.DestinationWarehouse`: any dlt SQL destination (`--destination NAME`), read
  through dlt's `sql_client`; verified on PostgreSQL;
- `pipelines.lake_warehouse.DeltaLakeWarehouse`: Delta tables under a directory or an object store
  (`--destination delta`, dlt's `filesystem` destination), read through `deltalake` and an in-memory DuckDB.

`open_warehouse` picks one from the command line's options. The SQL that reads raw tables is written once here
(`count_query` and friends), with literal values: dlt's sql clients differ in their parameter styles (DuckDB `?`,
psycopg2 `%s`, BigQuery `@name`), literals are the same everywhere.
"""

from __future__ import annotations

import math
import os
import re
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, TextIO

import dlt
import pyarrow as pa
from dlt.common.destination import Destination
from dlt.common.pipeline import LoadInfo

from illuminate_sync.pipelines.models import SCHEMA_NAME, ModelSchemas, ModelSettings
from illuminate_sync.pipelines.run_history import (
    QUARANTINE_TABLE,
    RUN_TABLES_TABLE,
    RUNS_TABLE,
    RunRecord,
    quarantine_table,
)
from illuminate_sync.sources.illuminate.convert import QuarantinedRecord
from illuminate_sync.sources.illuminate.errors import ConfigurationError
from illuminate_sync.sources.illuminate.instances import dataset_for
from illuminate_sync.sources.illuminate.settings import DATASET_NAME

MODEL_DATASET = "analytics"
PIPELINE_NAME = "illuminate_sync"
"""The dlt pipeline of the single instance (its state, cursors, working directory); a named instance's is
`illuminate_sync_<name>` (`pipeline_name_for`)."""
ROW_ID = "_dlt_id"
LOAD_ID = "_dlt_load_id"


def pipeline_name_for(instance: str | None) -> str:
    """The dlt pipeline of instance `instance` (None: the single instance)."""
    return PIPELINE_NAME if instance is None else f"{PIPELINE_NAME}_{instance}"


def model_dataset_for(dataset: str) -> str:
    """Where the models of raw dataset `dataset` go: `analytics` beside `illuminate`, `analytics_north` beside
    `illuminate_north`, else `<dataset>_analytics`."""
    if dataset == DATASET_NAME:
        return MODEL_DATASET
    if dataset.startswith(DATASET_NAME + "_"):
        return MODEL_DATASET + dataset[len(DATASET_NAME) :]
    return f"{dataset}_{MODEL_DATASET}"


def sql_literal(value: Any) -> str:
    """`value` as an SQL literal that DuckDB, PostgreSQL, Snowflake, Redshift and BigQuery read alike."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, Decimal)):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{value!r} has no SQL literal")
        return repr(value)
    if isinstance(value, datetime):
        return f"timestamp '{value.isoformat(sep=' ')}'"
    if isinstance(value, date):
        return f"date '{value.isoformat()}'"
    return "'" + str(value).replace("'", "''") + "'"


def literal_list(values: Iterable[Any]) -> str:
    return ", ".join(sql_literal(value) for value in values)


def quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@contextmanager
def owner_only_umask() -> Iterator[None]:
    """Every file this process creates is 0600 and every directory 0700 while the block runs (a crash included):
    dlt's working directory holds student rows until they are loaded."""
    previous = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(previous)


def check_dir_to_write(path: Path, option: str, expected: str) -> None:
    """`option path`: an existing writable directory, or a new one in an existing, writable directory (the parent is
    not created: a typo would put files somewhere unexpected). `expected` says what the directory is for."""
    if path.exists():
        if not path.is_dir():
            raise ConfigurationError(f"{option} {path}: is not a directory (expected {expected})")
        if not os.access(path, os.W_OK | os.X_OK):
            raise ConfigurationError(f"{option} {path}: is not writable (expected {expected})")
        return
    parent = path.parent
    if not parent.is_dir():
        raise ConfigurationError(
            f"{option} {path}: the directory {parent} does not exist (expected {expected} in an existing"
            " directory: create it first)"
        )
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ConfigurationError(f"{option} {path}: the directory {parent} is not writable")


def check_data_dir(data_dir: Path) -> None:
    """`--data-dir`: dlt's working directory, existing or new."""
    check_dir_to_write(data_dir, "--data-dir", "dlt's working directory")


class Warehouse(ABC):
    """A warehouse the sync loads into: the reads the source needs (a `WarehouseReader`) and the run's chores."""

    dataset: str
    """The raw tables' dataset (schema): `illuminate` unless `--dataset` says otherwise (`illuminate_<name>` for a
    named instance)."""
    instance: str | None = None
    """The named instance this warehouse is loaded for (`--instance`), or None for the single instance."""
    data_dir: Path
    """dlt's working directory for this warehouse (its state, its packages), owner-only."""

    file_format = "parquet"
    """dlt's loader file format for this warehouse (the source yields Arrow tables)."""

    table_format: str | None = None
    """dlt's table format for every table the sync extracts (`delta` on a lake), or None for the destination's own."""

    @property
    def model_dataset(self) -> str:
        return model_dataset_for(self.dataset)

    def model_schemas(self) -> ModelSchemas:
        """Where the models read the raw tables and are built: `illuminate` -> `analytics`, `illuminate_north` ->
        `analytics_north`."""
        return ModelSchemas(source=self.dataset, model=self.model_dataset)

    @property
    def pipeline_name(self) -> str:
        """The dlt pipeline: one per instance, so each has its own state and cursors."""
        return pipeline_name_for(self.instance)

    @property
    @abstractmethod
    def label(self) -> str:
        """The warehouse in messages: a file path, or a destination and its dataset (never credentials)."""

    @property
    @abstractmethod
    def kind(self) -> str:
        """`DuckDB`, `postgres`, ...: in "loading into ... failed"."""

    # ------------------------------------------------------------------ set-up
    @abstractmethod
    def check(self) -> None:
        """Raise a one-line ConfigurationError for a wrong path or an unusable destination, before anything is
        written."""

    @abstractmethod
    def destination(self) -> Destination[Any, Any]:
        """dlt's destination for the pipeline."""

    def pipeline(self) -> dlt.Pipeline:
        """The dlt pipeline that loads this warehouse (see `pipelines.sync.make_pipeline` for its settings)."""
        from illuminate_sync.pipelines.sync import prepare_pipeline_settings

        prepare_pipeline_settings()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir.chmod(0o700)
        return dlt.pipeline(
            pipeline_name=self.pipeline_name,
            pipelines_dir=str(self.data_dir),
            destination=self.destination(),
            dataset_name=self.dataset,
            progress=None,
        )

    @abstractmethod
    def lock(self) -> AbstractContextManager[None]:
        """One run per warehouse at a time: a second one fails at once with a one-line IlluminateError."""

    def protected(self) -> AbstractContextManager[None]:
        """While the run writes: the files it creates locally (dlt's working directory) are its owner's only."""
        return owner_only_umask()

    # ------------------------------------------------------------------ reads (WarehouseReader)
    @abstractmethod
    def fetch(self, query: str) -> list[tuple[Any, ...]]:
        """Rows of a query on the warehouse; [] when a relation it reads does not exist (yet)."""

    @abstractmethod
    def relation(self, table: str) -> str:
        """The qualified, quoted name of raw table `table`."""

    @abstractmethod
    def raw_tables(self) -> list[str]:
        """The raw tables that exist (catalog tables, their child tables, the quarantine), not dlt's own."""

    def keys(self, table: str, key_columns: Sequence[str], column: str, value: Any) -> set[tuple[Any, ...]]:
        columns = ", ".join(quoted(name) for name in key_columns)
        query = f"select {columns} from {self.relation(table)} where {quoted(column)} = {sql_literal(value)}"
        return {tuple(row) for row in self.fetch(query)}

    def count(self, table: str, column: str | None = None, values: Sequence[Any] | None = None) -> int:
        query = f"select count(*) from {self.relation(table)}"
        if column is not None and values is not None:
            if not values:
                return 0
            query += f" where {quoted(column)} in ({literal_list(values)})"
        rows = self.fetch(query)
        return int(rows[0][0]) if rows else 0

    def counts_by(self, table: str, columns: Sequence[str]) -> dict[tuple[Any, ...], int]:
        names = ", ".join(quoted(name) for name in columns)
        query = f"select {names}, count(*) from {self.relation(table)} group by {names}"
        return {tuple(row[:-1]): int(row[-1]) for row in self.fetch(query)}

    def table_counts(self) -> dict[str, int]:
        """Rows per raw table."""
        return {table: self.count(table) for table in self.raw_tables()}

    def tables_with_rows(self) -> set[str]:
        return {table for table, rows in self.table_counts().items() if rows}

    def rows_written(self, tables: Iterable[str], load_ids: Sequence[str]) -> dict[str, int]:
        """Rows each of `tables` received from the load packages `load_ids` (tables without load ids left out)."""
        if not load_ids:
            return {}
        written: dict[str, int] = {}
        for table in tables:
            if LOAD_ID not in self.columns(table):
                continue
            written[table] = self.count(table, LOAD_ID, load_ids)
        return written

    @abstractmethod
    def columns(self, table: str) -> set[str]:
        """The column names of raw table `table` (empty when it does not exist)."""

    def loads_since(self, loaded_since: str) -> list[str]:
        """The load ids of the packages loaded since `loaded_since` (ISO timestamp, UTC)."""
        query = (
            f"select load_id from {self.relation('_dlt_loads')}"
            f" where inserted_at >= cast({sql_literal(loaded_since)} as timestamp with time zone)"
        )
        return [str(row[0]) for row in self.fetch(query)]

    def tables_with_row_ids(self) -> list[str]:
        return [table for table in self.raw_tables() if {ROW_ID, LOAD_ID} <= self.columns(table)]

    def copied_row_ids(self, table: str, load_ids: Sequence[str]) -> list[Any]:
        """The `_dlt_id`s present more than once among the rows of `load_ids` (a load job copied twice)."""
        query = (
            f"select {ROW_ID} from {self.relation(table)} where {LOAD_ID} in ({literal_list(load_ids)})"
            f" group by {ROW_ID} having count(*) > 1"
        )
        return [row[0] for row in self.fetch(query)]

    def find_copies(self, loaded_since: str) -> tuple[list[str], dict[str, list[Any]]]:
        """The loads since `loaded_since` (ISO, UTC), and per raw table the `_dlt_id`s they hold more than once."""
        load_ids = self.loads_since(loaded_since)
        if not load_ids:
            return [], {}
        copies = {table: self.copied_row_ids(table, load_ids) for table in self.tables_with_row_ids()}
        return load_ids, {table: ids for table, ids in copies.items() if ids}

    def remove_rows_copied_twice(self, loaded_since: str) -> None:
        """Keep one row per `_dlt_id` among the rows of every raw table loaded since `loaded_since` (ISO, UTC)."""
        load_ids, copies = self.find_copies(loaded_since)
        for table, row_ids in copies.items():
            self.keep_one_copy(table, row_ids, load_ids)

    @abstractmethod
    def keep_one_copy(self, table: str, row_ids: Sequence[Any], load_ids: Sequence[str]) -> None:
        """Delete all but one row of each of `row_ids` among the rows of `load_ids` of `table`."""

    # ------------------------------------------------------------------ writes
    @abstractmethod
    def load(self, pipeline: dlt.Pipeline) -> LoadInfo:
        """dlt's load step for the pipeline's normalized packages, in the foreground."""

    @abstractmethod
    def background_destination(self, pipeline: dlt.Pipeline) -> AbstractContextManager[Destination[Any, Any]]:
        """The destination that stage loads of a first sync use in a background thread, open while the block runs;
        the warehouse's reads stay possible meanwhile."""

    @abstractmethod
    def append(self, table: str, rows: pa.Table) -> None:
        """Append rows of the sync's own records (`pipelines.run_history`) to `table` of the raw dataset, creating
        it from the rows' Arrow types when it is missing."""

    def store_quarantined(self, records: Sequence[QuarantinedRecord]) -> None:
        """Append a run's quarantined records to `<dataset>.quarantine` (after the run's data loaded)."""
        if records:
            self.append(QUARANTINE_TABLE, quarantine_table(records))

    def record_run(self, record: RunRecord) -> None:
        """Keep a run in the history (`sync_runs`, `sync_run_tables`)."""
        self.append(RUNS_TABLE, record.runs_table())
        if record.tables:
            self.append(RUN_TABLES_TABLE, record.tables_table())

    def close(self) -> None:  # noqa: B027 - optional hook
        """Close what the reads keep open (called when the run ends)."""

    def after_load(self) -> None:  # noqa: B027 - optional hook
        """What a successful load leaves to tidy (the DuckDB file's permissions)."""

    # ------------------------------------------------------------------ models
    def check_models(self) -> None:
        """Before a run that builds the models: they are built into `model_dataset` from the raw tables of `dataset`,
        both written unquoted in their SQL, so both must be plain lower-case SQL names."""
        check_dataset_name(self.dataset, "the SQL models")
        self.model_schemas()

    @abstractmethod
    def build_models(self, settings: ModelSettings, out: TextIO | None = None) -> str:
        """Build the SQL models into `model_dataset` (progress lines to `out`, if given); returns the line saying
        what was built (or why not)."""

    @abstractmethod
    def test_models(self) -> list[str]:
        """Run the model tests; one line per failure."""

    # ------------------------------------------------------------------ network models (pipelines.network_models)
    builds_network_models = False
    """Whether `build_network_models` can build the network schema here (a DuckDB file, PostgreSQL)."""

    def build_network_models(self, instances: Sequence[str], out: TextIO | None = None) -> str:
        """Build schema `analytics` from the models of `instances` (their `analytics_<name>`), one table per mart and
        report with a leading `instance` column, all-or-nothing (progress lines to `out`, if given); returns the
        line `built N network models into analytics from instances a, b in X s` (naming the instances left out
        because they have no models yet). ModelError when none of them has models."""
        raise ConfigurationError(
            f"the network models are built on a DuckDB file or PostgreSQL, not on {self.kind}"
            " (use --duckdb PATH or --destination postgres)"
        )

    def test_network_models(self) -> list[str]:
        """Run the network models' key tests (`instance` + each model's key, unique and not null); one line per
        failure."""
        raise ConfigurationError(
            f"the network models are built on a DuckDB file or PostgreSQL, not on {self.kind}"
            " (use --duckdb PATH or --destination postgres)"
        )


def check_dataset_name(dataset: str, reader: str) -> None:
    """`--dataset NAME`: a plain lower-case SQL name where `reader` writes it unquoted (a one-line error else)."""
    if not re.fullmatch(SCHEMA_NAME, dataset):
        raise ConfigurationError(
            f"--dataset {dataset}: {reader} need a lower-case SQL name (letters a-z, digits, _; not starting with a"
            " digit)"
        )


def open_warehouse(
    duckdb_path: Path | None = None,
    destination: str | None = None,
    dataset: str | None = None,
    data_dir: Path | None = None,
    instance: str | None = None,
) -> Warehouse:
    """The warehouse of `--duckdb PATH` or of `--destination NAME [--dataset NAME]` (exactly one of the two), for the
    single instance or for named instance `instance` (its raw dataset `illuminate_<name>`, its own pipeline)."""
    if (duckdb_path is None) == (destination is None):
        raise ConfigurationError("give either --duckdb PATH or --destination NAME (one of the two)")
    if instance is not None and dataset is not None:
        raise ConfigurationError(
            f"--dataset {dataset} with --instance {instance}: an instance's dataset is {dataset_for(instance)}"
            " (drop --dataset)"
        )
    raw_dataset = dataset or dataset_for(instance)
    warehouse: Warehouse
    if duckdb_path is not None:
        if dataset is not None:
            check_dataset_name(dataset, "the raw tables of a DuckDB file")
        from illuminate_sync.pipelines.duckdb_warehouse import DuckDBFileWarehouse

        warehouse = DuckDBFileWarehouse(duckdb_path, data_dir, raw_dataset)
    elif destination == "delta":
        from illuminate_sync.pipelines.lake_warehouse import DeltaLakeWarehouse

        warehouse = DeltaLakeWarehouse(raw_dataset, data_dir)
    else:
        from illuminate_sync.pipelines.destination_warehouse import DestinationWarehouse

        assert destination is not None
        warehouse = DestinationWarehouse(destination, raw_dataset, data_dir)
    warehouse.instance = instance
    return warehouse
