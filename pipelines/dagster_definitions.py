"""Dagster definitions of the declared instances: `dagster dev -m illuminate_sync.pipelines.dagster_definitions`.

Per instance declared under `[sources.illuminate.instances.<name>]` (`declared_instances`):

- asset `illuminate_<name>`: the instance's raw dataset, materialized by `run_sync(instance=name,
  build_models_after=False)`, the same run as `illuminate-sync run --instance NAME --skip-models`;
- asset `analytics_<name>`, downstream of it: the instance's SQL models, built by the warehouse's `build_models`
  under the warehouse's lock, with the models' settings resolved as `run_sync` resolves them (`model_settings`).

A job of every asset (`illuminate_sync_nightly`) and its schedule (`[dagster] schedule`, nightly by default). The
settings (`[dagster]` / `DAGSTER__*`) are in `pipelines.dagster_settings`; a missing or wrong one fails the loading
of the definitions with one line naming it.

Why one asset per instance and not dagster-dlt's asset per table. `dagster_dlt.DagsterDltResource.run` (the runner
behind `@dlt_assets` and `DltLoadCollectionComponent`, read in dagster-io/dagster's
`python_modules/libraries/dagster-dlt/dagster_dlt/resource.py`) drops the pipeline's local state before every run
(`pipeline.drop()`, or `drop_pending_packages()`) and then calls `pipeline.run(source)`. That gives up four of the
sync's guarantees:

- the copied-twice repair: its marker (`loads-to-check`) lives in the pipeline's working directory, and a pending
  package is the very thing the next run must finish and check (`LoadRepairCheck`, `finish_pending_load`); dropping
  them loses the rows of a run killed after its extract, and leaves a job copied twice in the table;
- the lock: `pipeline.run` takes none, so a second run into the file or dataset is not refused;
- the shrink guard, reconciliation and the first sync's append: the source reads the warehouse
  (`illuminate_source(warehouse=...)`) to decide them, and `@dlt_assets` needs the source built when the definitions
  load, with no warehouse and the day's academic years frozen at load time;
- the staged first load (`run_pipeline(staged=True)`): one `pipeline.run` loads one package after the last answer.

Per-table assets would also imply per-table materializations, which the sync cannot honour: its runs choose what to
fetch per table (cursors, not-due gradebook years) and load the selected tables together, all or nothing. So the
instance is the unit, and each materialization carries its tables' rows as metadata (`tables`). dagster-dlt is not a
dependency.

Concurrency. DuckDB lets one process write a file, and the sync's file lock refuses a second run with one line. All
assets that write one DuckDB file carry the op tag `illuminate_sync/duckdb` (the file's name) limited to 1 by the
multiprocess executor of these definitions (within a run), and the concurrency pool `illuminate_sync_<file name>`
(across runs, once the pool's limit is set to 1 in the Dagster instance). On a destination (PostgreSQL) each
instance's dataset has its own lock and the instances run side by side.

Failures. A wrong setting, refused credentials, a model that does not build or DuckDB out of memory fail their asset
at once (`Failure(allow_retries=False)`): rerunning cannot help. Any other failure (an API that keeps failing, a busy
lock, the shrink guard's refusal of what may be an upstream glitch) is retried by the assets' RetryPolicy. Every
failure is the sync's one line, never a secret.

Assets: per declared instance `illuminate_<name>` (its sync) and `analytics_<name>` (its models), grouped by the
instance; and `analytics`, the network schema (`pipelines.network_models`) over every instance's models, downstream of
all of them (it runs once every instance's models are built; a failed instance stops it for that run).
"""

# No `from __future__ import annotations`: Dagster compares the context parameter's annotation with its class, and
# would find the text "AssetExecutionContext" there instead.
import functools
import io
import re
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TextIO, cast

import dagster as dg
import duckdb
from dagster import AssetExecutionContext
from dlt.common.configuration.exceptions import ConfigurationException

from illuminate_sync.pipelines.dagster_settings import DagsterSettings, variable
from illuminate_sync.pipelines.duckdb_settings import out_of_memory_message
from illuminate_sync.pipelines.models import MODEL_SCHEMA, ModelError
from illuminate_sync.pipelines.sync import (
    SyncSummary,
    configuration_error,
    model_settings,
    run_sync,
    select_resources,
)
from illuminate_sync.pipelines.warehouse import model_dataset_for, open_warehouse
from illuminate_sync.sources.illuminate.errors import AuthenticationError, ConfigurationError, IlluminateError
from illuminate_sync.sources.illuminate.instances import dataset_for, declared_instances, resolve_instance

__all__ = ["JOB_NAME", "SCHEDULE_NAME", "build_definitions", "defs", "raw_metadata"]

JOB_NAME = "illuminate_sync_nightly"
SCHEDULE_NAME = "illuminate_sync_nightly_schedule"
DUCKDB_FILE_TAG = "illuminate_sync/duckdb"
"""The op tag of every asset that writes a DuckDB file (its value: the file's name), limited to 1 per run."""

NOT_RETRIED: tuple[type[BaseException], ...] = (ConfigurationError, AuthenticationError, ModelError)
"""Errors whose fix is the user's: a retry would fail the same way."""


# ------------------------------------------------------------------------------------------------------- definitions
def build_definitions(settings: DagsterSettings | None = None) -> dg.Definitions:
    """The definitions of the declared instances, the job of all of them and its schedule; raises a one-line
    ConfigurationError when a setting is missing or wrong or no instance is declared."""
    settings = settings or DagsterSettings.resolve()
    _check_resources(settings.resources)
    instances = _instances()
    assets: list[dg.AssetsDefinition] = []
    for instance in instances:
        assets += [raw_asset(settings, instance), models_asset(settings, instance)]
    assets.append(network_asset(settings, instances))
    # The executor serves the job and the UI's own materializations alike.
    return dg.Definitions(assets=assets, schedules=[nightly_schedule(settings)], executor=executor(settings))


@dg.definitions
def defs() -> dg.Definitions:
    """What `dagster dev -m illuminate_sync.pipelines.dagster_definitions` loads: built when Dagster loads the code
    location, not when the module is imported (importing it needs no settings)."""
    return build_definitions()


def _instances() -> list[str]:
    instances = declared_instances()
    if not instances:
        raise ConfigurationError(
            "no instance is declared: the Dagster definitions have assets per named instance (declare one with"
            " [sources.illuminate.instances.<name>] or SOURCES__ILLUMINATE__INSTANCES__<NAME>__BASE_URL and"
            " ..._CREDENTIALS__*)"
        )
    return instances


def _check_resources(resources: Sequence[str] | None) -> None:
    try:
        select_resources(resources)
    except ConfigurationError as error:
        raise ConfigurationError(f"{variable('resources')}: {error}") from None


def nightly_schedule(settings: DagsterSettings) -> dg.ScheduleDefinition:
    """The job of every asset on `[dagster] schedule`, in `[dagster] timezone`; a wrong cron expression is one
    line."""
    job = dg.define_asset_job(JOB_NAME, selection=dg.AssetSelection.all(), executor_def=executor(settings))
    try:
        return dg.ScheduleDefinition(
            name=SCHEDULE_NAME,
            job=job,
            cron_schedule=settings.schedule,
            execution_timezone=settings.timezone,
            description="Every instance synced, then its models built",
        )
    except dg.DagsterInvalidDefinitionError:
        raise ConfigurationError(
            f"{variable('schedule')}: {settings.schedule!r} is not a cron expression (five fields, e.g."
            ' "0 2 * * *" for 02:00 every night)'
        ) from None


def executor(settings: DagsterSettings) -> dg.ExecutorDefinition:
    """Steps in their own processes; on a DuckDB file, one writing step at a time (DuckDB's one writing process)."""
    if settings.duckdb_path is None:
        return dg.multiprocess_executor
    limit = {"key": DUCKDB_FILE_TAG, "value": settings.duckdb_path.name, "limit": 1}
    return dg.multiprocess_executor.configured({"tag_concurrency_limits": [limit]})


def duckdb_pool(settings: DagsterSettings) -> str | None:
    """The concurrency pool of the assets that write the DuckDB file (None on a destination)."""
    if settings.duckdb_path is None:
        return None
    return "illuminate_sync_" + re.sub(r"[^a-z0-9_]", "_", settings.duckdb_path.name.lower())


def _writer_options(settings: DagsterSettings) -> dict[str, Any]:
    """What every asset that writes the warehouse carries: the DuckDB file's pool and op tag."""
    if settings.duckdb_path is None:
        return {}
    return {"pool": duckdb_pool(settings), "op_tags": {DUCKDB_FILE_TAG: settings.duckdb_path.name}}


def _retry_policy(settings: DagsterSettings) -> dg.RetryPolicy | None:
    if settings.retries == 0:
        return None
    return dg.RetryPolicy(max_retries=settings.retries, delay=settings.retry_delay_seconds)


def _kind(settings: DagsterSettings) -> str:
    return "duckdb" if settings.duckdb_path is not None else str(settings.destination)


# ------------------------------------------------------------------------------------------------------------ assets
def raw_asset(settings: DagsterSettings, instance: str) -> dg.AssetsDefinition:
    """Asset `illuminate_<name>`: one sync of the instance (its lock, shrink guard, repair and staged first load)."""

    @dg.asset(
        name=dataset_for(instance),
        group_name=instance,
        description=f"Instance {instance}'s raw Illuminate tables, synced incrementally",
        retry_policy=_retry_policy(settings),
        kinds={"dlt", _kind(settings)},
        **_writer_options(settings),
    )
    def sync_instance(context: AssetExecutionContext) -> dg.MaterializeResult:
        with failing_as_dagster():
            summary = run_sync(
                settings.duckdb_path,
                destination=settings.destination,
                instance=instance,
                resources=settings.resources,
                build_models_after=False,
                out=log_stream(context.log.info),
            )
        return dg.MaterializeResult(metadata=raw_metadata(summary))

    return sync_instance


def models_asset(settings: DagsterSettings, instance: str) -> dg.AssetsDefinition:
    """Asset `analytics_<name>`: the instance's models, rebuilt from its raw dataset."""

    @dg.asset(
        name=model_dataset_for(dataset_for(instance)),
        group_name=instance,
        deps=[dataset_for(instance)],
        description=f"Instance {instance}'s SQL models (marts and reports)",
        retry_policy=_retry_policy(settings),  # a busy lock; a model that does not build is not retried
        kinds={"sql", _kind(settings)},
        **_writer_options(settings),
    )
    def build_instance_models(context: AssetExecutionContext) -> dg.MaterializeResult:
        build = functools.partial(build_models_of, settings, instance)
        return timed_build(context, build, dataset=model_dataset_for(dataset_for(instance)))

    return build_instance_models


def timed_build(
    context: AssetExecutionContext, build: Callable[[TextIO], str], **metadata: str
) -> dg.MaterializeResult:
    """A models asset's materialization: `build` (its progress to the run's log) returns the "built N ..." line,
    which is logged and kept as metadata with `metadata` and the build's duration."""
    with failing_as_dagster():
        started = time.monotonic()
        built = build(log_stream(context.log.info))
    context.log.info(built)
    seconds = dg.MetadataValue.float(round(time.monotonic() - started, 3))
    return dg.MaterializeResult(metadata={"models": built, **metadata, "duration_seconds": seconds})


def network_asset(settings: DagsterSettings, instances: Sequence[str]) -> dg.AssetsDefinition:
    """Asset `analytics`: the network schema, every instance's marts and reports with an `instance` column."""

    @dg.asset(
        name=MODEL_SCHEMA,
        deps=[model_dataset_for(dataset_for(instance)) for instance in instances],
        description="The marts and reports of every instance side by side, `instance` in every key",
        retry_policy=_retry_policy(settings),
        kinds={"sql", _kind(settings)},
        **_writer_options(settings),
    )
    def build_network(context: AssetExecutionContext) -> dg.MaterializeResult:
        build = functools.partial(build_network_of, settings, instances)
        return timed_build(context, build, instances=", ".join(instances))

    return build_network


def build_network_of(settings: DagsterSettings, instances: Sequence[str], out: TextIO) -> str:
    """Build the network schema over `instances`' models under the warehouse's lock; returns the build's line."""
    warehouse = open_warehouse(settings.duckdb_path, settings.destination)
    try:
        warehouse.check()
        with warehouse.lock(), warehouse.protected():
            return warehouse.build_network_models(instances, out=out)
    finally:
        warehouse.close()


def build_models_of(settings: DagsterSettings, instance: str, out: TextIO) -> str:
    """Build instance `instance`'s models into `analytics_<name>`, holding the warehouse's lock as a sync does;
    returns the line saying what was built."""
    today = resolve_instance(instance).source_options().get("today")
    warehouse = open_warehouse(settings.duckdb_path, settings.destination, instance=instance)
    try:
        warehouse.check()
        warehouse.check_models()
        models = model_settings(today)
        with warehouse.lock(), warehouse.protected():
            return warehouse.build_models(models, out=out)
    finally:
        warehouse.close()


# ---------------------------------------------------------------------------------------------------------- metadata
def raw_metadata(summary: SyncSummary) -> dict[str, Any]:
    """A sync's materialization metadata: rows, requests, retries, duration and rows per table (no secrets: counts
    and table names only)."""
    written = [change.rows_written for change in summary.tables.values() if change.rows_written is not None]
    removed = [change.removed for change in summary.tables.values() if change.removed is not None]
    rows = sum(change.rows_after for change in summary.tables.values())
    return {
        "dagster/row_count": dg.MetadataValue.int(rows),
        "rows": dg.MetadataValue.int(rows),
        "rows_written": dg.MetadataValue.int(sum(written)),
        "rows_removed": dg.MetadataValue.int(sum(removed)),
        "requests": dg.MetadataValue.int(summary.requests),
        "retries": dg.MetadataValue.int(summary.retries),
        "quarantined": dg.MetadataValue.int(sum(summary.quarantined.values())),
        "duration_seconds": dg.MetadataValue.float(round(summary.seconds, 3)),
        "dataset": summary.dataset,
        "tables": _tables_metadata(summary),
    }


def _tables_metadata(summary: SyncSummary) -> dg.TableMetadataValue:
    columns = [
        dg.TableColumn("table", "string"),
        dg.TableColumn("rows", "int"),
        dg.TableColumn("written", "int"),
        dg.TableColumn("removed", "int"),
    ]
    records = [
        dg.TableRecord(
            {"table": table, "rows": change.rows_after, "written": change.rows_written, "removed": change.removed}
        )
        for table, change in sorted(summary.tables.items())
    ]
    return dg.MetadataValue.table(records, schema=dg.TableSchema(columns=columns))


# ---------------------------------------------------------------------------------------------------------- failures
@contextmanager
def failing_as_dagster() -> Iterator[None]:
    """What a sync or a build raises becomes Dagster's `Failure` with the sync's one line: not retried when the user
    must fix something (`NOT_RETRIED`, a setting dlt could not read, DuckDB out of memory), retried by the asset's
    RetryPolicy otherwise. The original exception is not chained: its line is the whole story."""
    try:
        yield
    except Exception as error:
        failure = as_failure(error)
        if failure is None:
            raise
        raise failure from None


def as_failure(error: BaseException) -> dg.Failure | None:
    """The Failure for an error of the sync (None: not one of the sync's, left to Dagster)."""
    if isinstance(error, ConfigurationException):
        error = configuration_error(error)
    if isinstance(error, duckdb.OutOfMemoryException):
        return dg.Failure(description=out_of_memory_message("writing the warehouse"), allow_retries=False)
    if isinstance(error, IlluminateError):
        return dg.Failure(description=str(error), allow_retries=not isinstance(error, NOT_RETRIED))
    return None


# ------------------------------------------------------------------------------------------------------------- logs
class LogLines(io.TextIOBase):
    """A text stream whose lines go to a logger (the run's progress lines into Dagster's event log); never a
    terminal, so the sync prints plain lines rather than its live display."""

    def __init__(self, log: Callable[[str], None]) -> None:
        super().__init__()
        self._log = log
        self._pending = ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        *lines, self._pending = (self._pending + text).split("\n")
        for line in lines:
            if line.strip():
                self._log(line)
        return len(text)

    def flush(self) -> None:
        """A partial line waits for its end: the sync flushes after every line it prints."""


def log_stream(log: Callable[[str], None]) -> TextIO:
    """`LogLines` where the sync takes a text stream."""
    return cast(TextIO, LogLines(log))
