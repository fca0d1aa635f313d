"""A warehouse on a dlt destination (`--destination NAME [--dataset NAME]`): PostgreSQL (verified), and MotherDuck,
BigQuery, Snowflake and Redshift (configured the dlt way, not verified from here).

Credentials come from dlt's configuration only (`DESTINATION__POSTGRES__CREDENTIALS=postgresql://...` or
`[destination.postgres] credentials` in `.dlt/secrets.toml`), never from the command line, and no message names
more of them than the host, port, database and user.

Every read goes through dlt's `sql_client` of the destination, one connection for the run shared by the source's
threads under a lock. What differs from the DuckDB file:

- The lock: on PostgreSQL a session advisory lock held on its own connection for the whole run
  (`pg_try_advisory_lock(hashtext('illuminate-sync:<dataset>'))`), so two runs from two machines into one dataset
  exclude each other; the database releases it when that connection ends, a killed run included. Other
  destinations have no such lock: a lock file in the local working directory keeps out a second run from the same
  machine only (the README says so).
- Files: the warehouse's own files are the server's business; only the local working directory (dlt's state and
  packages, which hold student rows until loaded) is made owner-only.
- Loading into PostgreSQL uses COPY: dlt's `csv` file format (dlt's default for postgres, `insert_values`, sends
  multi-row INSERT statements). `create_indexes=False`: dlt would add a unique index for each primary key and on
  `_dlt_id`, and a load job copied twice by a killed run must be insertable for the next run's repair
  (`Warehouse.remove_rows_copied_twice`) to find and remove the second copy; a COPY failing on the index instead
  leaves the run stuck on that package. The keys are checked by the tests (`tests/test_destination_postgres.py`).
- The models are built on PostgreSQL from the same SQL, transpiled (`pipelines.models_postgres`); on the other
  destinations they are not built (the line saying so names the reason).
"""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, TextIO

import dlt
import pyarrow as pa
from dlt.common.configuration.exceptions import ConfigurationException
from dlt.common.destination import Destination
from dlt.common.destination.exceptions import UnknownDestinationModule
from dlt.common.pipeline import LoadInfo
from dlt.common.schema import Schema
from dlt.dataset.utils import get_destination_clients
from dlt.destinations.exceptions import DatabaseUndefinedRelation
from dlt.destinations.sql_client import SqlClientBase

from illuminate_sync.pipelines.duckdb_warehouse import file_lock
from illuminate_sync.pipelines.models import ModelSettings
from illuminate_sync.pipelines.run_history import BOOKKEEPING_TABLES
from illuminate_sync.pipelines.warehouse import Warehouse, check_data_dir, sql_literal
from illuminate_sync.sources.illuminate.errors import ConfigurationError, IlluminateError

SQL_DESTINATIONS: dict[str, str] = {
    "postgres": "verified: a PostgreSQL 15 server in the tests",
    "motherduck": "configured, not verified here (needs MotherDuck's service)",
    "bigquery": "configured, not verified here (needs Google Cloud)",
    "snowflake": "configured, not verified here (needs Snowflake)",
    "redshift": "configured, not verified here (needs AWS)",
}
"""The destinations `--destination` accepts, and what was verified of each."""

MODEL_DESTINATIONS = ("postgres",)
"""The destinations the SQL models are built on (transpiled from DuckDB's SQL, tested)."""

BOOKKEEPING_PIPELINE = "illuminate_sync_records"
"""The dlt pipeline that appends the sync's own records (`pipelines.run_history`) on a destination; a named
instance's has its name after it (`illuminate_sync_records_north`): instances synced at the same time share the
working directory, and two runs of one dlt pipeline at once would load each other's packages."""

SCHEMA_NAME = "illuminate"
"""The dlt schema of the source (`@dlt.source(name=...)`), as stored in the destination's `_dlt_version`."""


def credentials_variable(destination: str) -> str:
    return f"DESTINATION__{destination.upper()}__CREDENTIALS"


def check_destination_name(name: str) -> None:
    if name not in SQL_DESTINATIONS:
        raise ConfigurationError(
            f"--destination {name}: not a supported destination (expected one of {', '.join(SQL_DESTINATIONS)},"
            " delta for a Delta lake; or --duckdb PATH for a local file)"
        )


class DestinationWarehouse(Warehouse):
    """A dataset on a dlt SQL destination, read through dlt's `sql_client`."""

    def __init__(self, destination: str, dataset: str, data_dir: Path | None = None) -> None:
        check_destination_name(destination)
        self.name = destination
        self.dataset = dataset
        self.data_dir_given = data_dir is not None
        self.data_dir = data_dir or Path.home() / ".illuminate-sync" / f"{destination}.{dataset}"
        self._job: Any = None
        self._client_lock = threading.RLock()

    @property
    def label(self) -> str:
        return f"{self.name} dataset {self.dataset}"

    @property
    def kind(self) -> str:
        return self.name

    @property
    def file_format(self) -> str:  # type: ignore[override]
        return "csv" if self.name == "postgres" else "parquet"

    def pipeline(self) -> dlt.Pipeline:
        if self.name == "postgres":
            # dlt gzips the csv files it hands to COPY: 13.9 of the 19.2 s dlt spent loading the benchmark's
            # 600,000-row sample into PostgreSQL went to zlib; uncompressed, 24,500 -> 46,600 rows/s
            # (bench/README.md, seventh pass). The files stay in the owner-only working directory until loaded.
            # Scoped to this pipeline's normalize step (dlt reads `<PIPELINE>__NORMALIZE__DATA_WRITER__...` first), so
            # other dlt pipelines of the process (an orchestrator's) keep their own setting; the user's wins.
            from illuminate_sync.pipelines.sync import default_setting

            default_setting(
                f"{self.pipeline_name}.normalize.data_writer.disable_compression",
                "true",
                also_set_as=("normalize.data_writer.disable_compression", "data_writer.disable_compression"),
            )
        return super().pipeline()

    def destination(self) -> Destination[Any, Any]:
        try:
            if self.name == "postgres":
                return dlt.destinations.postgres(create_indexes=False)
            return Destination.from_reference(self.name)
        except UnknownDestinationModule:
            raise ConfigurationError(f"--destination {self.name}: dlt has no such destination") from None

    # ------------------------------------------------------------------ set-up
    def check(self) -> None:
        """The data dir, then the server: reachable, the credentials accepted, the database there."""
        if self.data_dir_given:
            check_data_dir(self.data_dir)
        self.fetch("select 1")
        self.close()

    def job_client(self) -> Any:
        """A new job client of the destination and dataset, its settings resolved (or a one-line error); its
        `sql_client` is not open yet."""
        try:
            job_client, _ = get_destination_clients(
                Schema(SCHEMA_NAME), destination=self.destination(), destination_dataset_name=self.dataset
            )
        except ConfigurationException:
            raise ConfigurationError(self.missing_credentials_message()) from None
        return job_client

    def open_job_client(self) -> Any:
        """A new job client with its connection open (or a one-line error naming the setting to fix)."""
        job = self.job_client()
        try:
            job.sql_client.open_connection()
        except Exception as error:
            raise ConfigurationError(self.connection_message(job.sql_client, error)) from None
        return job

    def open_client(self) -> SqlClientBase[Any]:
        """A new sql client with its connection open."""
        client: SqlClientBase[Any] = self.open_job_client().sql_client
        return client

    def missing_credentials_message(self) -> str:
        variable = credentials_variable(self.name)
        return (
            f"--destination {self.name}: no credentials: set {variable} (e.g. postgresql://user:password@host:5432/db)"
            f" or `credentials` under [destination.{self.name}] in .dlt/secrets.toml"
        )

    def connection_message(self, client: SqlClientBase[Any], error: BaseException) -> str:
        """One line naming the server, the problem and the setting to fix; never the password."""
        credentials = client.credentials
        host = getattr(credentials, "host", None)
        where = f"{self.name} at {host}:{getattr(credentials, 'port', '')}" if host else self.name
        database = getattr(credentials, "database", None)
        user = getattr(credentials, "username", None)
        text = " ".join(str(error).split()).lower()
        variable = credentials_variable(self.name)
        if "password authentication failed" in text or "authentication failed" in text:
            problem = f"the server refused user {user}'s password"
        elif database and "does not exist" in text and "database" in text:
            problem = f"database {database} does not exist (create it, or name another in {variable})"
        elif any(part in text for part in ("connection refused", "could not connect", "timeout", "timed out")):
            problem = "cannot reach the server (is it running, and are host and port right?)"
        elif "could not translate host name" in text or "name or service not known" in text:
            problem = f"unknown host {host}"
        else:
            problem = f"cannot connect ({type(error).__name__})"
        return f"--destination {where}: {problem}: check {variable}"

    def close(self) -> None:
        with self._client_lock:
            if self._job is not None:
                self._job.sql_client.close_connection()
                self._job = None

    def _shared_job_client(self) -> Any:
        """The run's job client (its connection open), shared by the reads under `_client_lock`."""
        if self._job is None:
            self._job = self.open_job_client()
        return self._job

    def lock(self) -> AbstractContextManager[None]:
        if self.name == "postgres":
            return self._advisory_lock()
        return file_lock(self.data_dir / "run.lock", self.label)

    @contextmanager
    def _advisory_lock(self) -> Iterator[None]:
        """A PostgreSQL session advisory lock on its own connection, held until the block ends."""
        key = sql_literal(f"illuminate-sync:{self.dataset}")
        client = self.open_client()
        try:
            rows = client.execute_sql(f"select pg_try_advisory_lock(hashtext({key}))")
            if not rows or not rows[0][0]:
                raise IlluminateError(
                    f"another illuminate-sync run is loading {self.label}: wait for it to finish"
                    " (PostgreSQL advisory lock)"
                )
            yield
        finally:
            client.close_connection()  # ends the session, which releases the lock
            self.close()

    # ------------------------------------------------------------------ reads
    def relation(self, table: str) -> str:
        with self._client_lock:
            return str(self._shared_job_client().sql_client.make_qualified_table_name(table))

    def fetch(self, query: str) -> list[tuple[Any, ...]]:
        with self._client_lock:
            try:
                return [tuple(row) for row in self._shared_job_client().sql_client.execute_sql(query) or []]
            except DatabaseUndefinedRelation:
                return []

    def stored_tables(self) -> list[str]:
        """The data tables of the source's schema as last stored in the destination (child tables included)."""
        with self._client_lock:
            try:
                stored = self._shared_job_client().get_stored_schema(SCHEMA_NAME)
            except DatabaseUndefinedRelation:
                return []
        if stored is None:
            return []
        schema = Schema.from_stored_schema(json.loads(stored.schema))
        return [table["name"] for table in schema.data_tables()]

    def raw_tables(self) -> list[str]:
        """The tables that exist in the dataset, with columns: one information-schema query for all of them."""
        names = list(dict.fromkeys([*self.stored_tables(), *sorted(BOOKKEEPING_TABLES)]))
        with self._client_lock:
            stored = dict(self._shared_job_client().get_storage_tables(names))
        return [table for table in names if stored.get(table)]

    def columns(self, table: str) -> set[str]:
        with self._client_lock:
            exists, columns = self._shared_job_client().get_storage_table(table)
        return set(columns) if exists else set()

    # ------------------------------------------------------------------ writes
    def keep_one_copy(self, table: str, row_ids: Sequence[Any], load_ids: Sequence[str]) -> None:
        """Move one copy of each row aside, delete every copy, put the one back: in one transaction, with SQL that
        every destination reads (no `rowid`/`ctid`). The copies of a job copied twice are identical rows."""
        relation = self.relation(table)
        aside = self.relation(f"_illuminate_copies_{table}"[:63])
        ids = ", ".join(sql_literal(value) for value in row_ids)
        loads = ", ".join(sql_literal(value) for value in load_ids)
        where = f"_dlt_id in ({ids}) and _dlt_load_id in ({loads})"
        with self._client_lock:
            client = self._shared_job_client().sql_client
            with client.begin_transaction():
                client.execute_sql(f"drop table if exists {aside}")
                client.execute_sql(f"create table {aside} as select distinct * from {relation} where {where}")
                client.execute_sql(f"delete from {relation} where {where}")
                client.execute_sql(f"insert into {relation} select * from {aside}")
                client.execute_sql(f"drop table {aside}")

    def load(self, pipeline: dlt.Pipeline) -> LoadInfo:
        return pipeline.load()

    @contextmanager
    def background_destination(self, pipeline: dlt.Pipeline) -> Iterator[Destination[Any, Any]]:
        yield self.destination()  # a server takes the background load's connections beside the reads

    def append(self, table: str, rows: pa.Table) -> None:
        """Loaded by dlt (which creates the table with the destination's types) through a pipeline of its own: the
        sync's pipeline may hold the package of a failed run, which its next run finishes, not this append.

        The pipeline starts without local state (`drop`): its schema then comes from the destination. A local schema
        kept from an earlier append says the tables exist, and against a database created anew since (the same
        `--data-dir`, a new server) every append failed with "relation ... sync_run_tables does not exist"."""
        bookkeeping = dlt.pipeline(
            pipeline_name=BOOKKEEPING_PIPELINE if self.instance is None else f"{BOOKKEEPING_PIPELINE}_{self.instance}",
            pipelines_dir=str(self.data_dir),
            destination=self.destination(),
            dataset_name=self.dataset,
            progress=None,
        ).drop()
        bookkeeping.run(rows, table_name=table, write_disposition="append", loader_file_format=self.file_format)

    # ------------------------------------------------------------------ models
    def build_models(self, settings: ModelSettings, out: TextIO | None = None) -> str:
        if self.name not in MODEL_DESTINATIONS:
            return (
                f"models not built: they are built on DuckDB and PostgreSQL only; on {self.name}, build them from"
                " sql/ with your own tool (see the README's Destinations section)"
            )
        from illuminate_sync.pipelines.models_postgres import build_models_postgres

        log = io.StringIO()
        client = self.open_client()
        try:
            build_models_postgres(client.native_connection, settings, out=log, schemas=self.model_schemas())
        finally:
            client.close_connection()
        if out is not None:
            out.write(log.getvalue())
        return log.getvalue().strip().splitlines()[-1]

    def test_models(self) -> list[str]:
        if self.name not in MODEL_DESTINATIONS:
            return []
        from illuminate_sync.pipelines.models_postgres import test_models_postgres

        client = self.open_client()
        try:
            return test_models_postgres(client.native_connection, self.model_schemas())
        finally:
            client.close_connection()

    @property
    def builds_network_models(self) -> bool:  # type: ignore[override]
        return self.name in MODEL_DESTINATIONS

    def build_network_models(self, instances: Sequence[str], out: TextIO | None = None) -> str:
        if not self.builds_network_models:
            return super().build_network_models(instances, out)
        from illuminate_sync.pipelines.models_postgres import build_network_postgres

        client = self.open_client()
        try:
            build = build_network_postgres(client.native_connection, instances, out=out or io.StringIO())
        finally:
            client.close_connection()
        return build.message()

    def test_network_models(self) -> list[str]:
        if not self.builds_network_models:
            return super().test_network_models()
        from illuminate_sync.pipelines.models_postgres import test_network_postgres

        client = self.open_client()
        try:
            return test_network_postgres(client.native_connection)
        finally:
            client.close_connection()
