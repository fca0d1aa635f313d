"""The sync pipeline: the Illuminate source into the raw dataset of a warehouse, with progress and a summary.

The warehouse (a DuckDB file or a dlt destination) is behind `pipelines.warehouse.Warehouse`; this module runs the
pipeline on it: the checks before anything is written, the lock, the finishing of an interrupted load, the extract
(in stages on a first sync, see `load_stages`), the load, the copied-twice repair, the quarantine, the summary and
the models, and turns what fails into one line.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any, TextIO

import dlt
from dlt.common.configuration.container import Container
from dlt.common.configuration.exceptions import (
    ConfigFieldMissingException,
    ConfigurationException,
    ConfigValueCannotBeCoercedException,
)
from dlt.common.configuration.providers.toml import TomlProviderReadException
from dlt.common.configuration.specs.pluggable_run_context import PluggableRunContext
from dlt.common.pipeline import LoadInfo
from dlt.extract import DltSource
from dlt.load.exceptions import LoadClientJobFailed, LoadClientJobTerminalRetry
from dlt.pipeline.exceptions import PipelineStepFailed

from illuminate_sync.pipelines.duckdb_settings import (
    BACKGROUND_LOAD_CONFIG,
    DUCKDB_LOAD_CONFIG,
    DUCKDB_WRITE_CONFIG,
    out_of_memory_message,
)
from illuminate_sync.pipelines.load_stages import BackgroundLoad, load_stages
from illuminate_sync.pipelines.memory import hold_less_memory, release_free_memory, releasing_free_memory
from illuminate_sync.pipelines.models import ModelSettings
from illuminate_sync.pipelines.progress import reporting_progress
from illuminate_sync.pipelines.run_history import BOOKKEEPING_TABLES, QUARANTINE_TABLE, RunRecord, TableRun
from illuminate_sync.pipelines.warehouse import PIPELINE_NAME, Warehouse, open_warehouse
from illuminate_sync.sources.illuminate import RunReport, illuminate_source, resource_names
from illuminate_sync.sources.illuminate.errors import ConfigurationError, IlluminateError, ShrinkGuardError
from illuminate_sync.sources.illuminate.instances import dataset_for, declared_instances, resolve_instance
from illuminate_sync.sources.illuminate.setting_rules import invalid_setting_message, setting_variable
from illuminate_sync.sources.illuminate.settings import DATASET_NAME, TABLES_AT_ONCE
from illuminate_sync.sources.illuminate.variables import naming_instance

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

__all__ = ["PIPELINE_NAME", "SyncSummary", "run_sync", "sync_into"]


@dataclass
class TableChange:
    rows_before: int
    rows_after: int
    rows_written: int | None
    """Rows this run loaded; None for dlt's child tables, whose rows carry no load id."""

    @property
    def removed(self) -> int | None:
        """Old rows that are gone: deleted upstream or replaced by a newer copy of the same record."""
        if self.rows_written is None:
            return None
        return self.rows_before - (self.rows_after - self.rows_written)


@dataclass
class SyncSummary:
    tables: dict[str, TableChange] = field(default_factory=dict)
    requests: int = 0
    retries: int = 0
    seconds: float = 0.0
    invalid_values: dict[str, dict[str, int]] = field(default_factory=dict)
    quarantined: dict[str, int] = field(default_factory=dict)
    dataset: str = DATASET_NAME
    """The raw dataset, where the quarantine table is."""
    concurrency: str = ""
    """What `max_concurrency = "auto"` did (`ConcurrencyRecord.describe`); "" for a fixed number."""

    def render(self) -> str:
        lines = [f"{'table':<52} {'rows':>10} {'written':>10} {'removed':>10} {'change':>10}"]
        for table, change in sorted(self.tables.items()):
            delta = change.rows_after - change.rows_before
            written = "-" if change.rows_written is None else f"{change.rows_written:,}"
            removed = "-" if change.removed is None else f"{change.removed:,}"
            lines.append(f"{table:<52} {change.rows_after:>10,} {written:>10} {removed:>10} {delta:>+10,}")
        lines.append(
            f"{self.requests:,} requests ({self.retries:,} retried) in {self.seconds:.1f} s"
            + (f"; {self.concurrency}" if self.concurrency else "")
        )
        for table, count in sorted(self.quarantined.items()):
            columns = ", ".join(sorted(self.invalid_values.get(table, {})))
            lines.append(
                f"warning: {table}: {count:,} records with values that break their column type ({columns}) were "
                f"kept out and stored in {self.dataset}.{QUARANTINE_TABLE}"
            )
        return "\n".join(lines)


def select_resources(names: Sequence[str] | None) -> list[str] | None:
    """Validate `--resources`; None means every enabled resource."""
    if not names:
        return None
    valid = resource_names()
    unknown = [name for name in names if name not in valid]
    if unknown:
        raise ConfigurationError(f"unknown resource {', '.join(unknown)}: valid names are {', '.join(valid)}")
    return list(names)


QUIET_LOG_LEVEL = "CRITICAL"
"""dlt's log level unless the user sets one."""


def quiet_dlt_logging() -> None:
    """dlt's own log is noise in a nightly log (warnings about always-null columns of the View's child tables) or
    worse: it logs each retried load job's traceback. The run reports failures itself, one line each.

    A level the user set wins: `RUNTIME__LOG_LEVEL`, or `log_level` under `[runtime]` in `.dlt/config.toml`. Only
    when neither is set does the quiet level go into the environment (where every later resolution of dlt's runtime
    settings finds it); dlt made its logger when it first resolved a setting (the look-up here, if not earlier), so
    the logger is made again at the quiet level."""
    if dlt.config.get("runtime.log_level") is not None:
        return
    os.environ["RUNTIME__LOG_LEVEL"] = QUIET_LOG_LEVEL
    Container()[PluggableRunContext].initialize_runtime()


def default_setting(key: str, value: str, also_set_as: Sequence[str] = ()) -> None:
    """Give dlt setting `key` (`load.workers`) the sync's `value` unless the user set it (as `key` or one of
    `also_set_as`, the less specific keys dlt also reads), in the environment or in `.dlt/config.toml`: an
    environment variable would win over the file, so it is set only when both are silent."""
    if all(dlt.config.get(name) is None for name in (key, *also_set_as)):
        os.environ["__".join(key.split(".")).upper()] = value


def prepare_pipeline_settings() -> None:
    """dlt's settings for the sync's pipeline, whatever its destination (each overridable by the user, except the
    row ids, which the copied-twice repair relies on)."""
    quiet_dlt_logging()
    # Load ids on arrow rows give the summary its per-run counts.
    default_setting("normalize.parquet_normalizer.add_dlt_load_id", "true")
    # Row ids (how a load job copied twice is recognised, see LoadRepairCheck) come with the source's arrow rows
    # (`with_row_ids`): dlt adding them would rewrite every file in normalize, and add a second `_dlt_id`.
    os.environ["NORMALIZE__PARQUET_NORMALIZER__ADD_DLT_ID"] = "false"
    # Resources are taken in extraction order (round-robin across 38 generators kept a partial batch of each in
    # memory at once); the source runs `TABLES_AT_ONCE` of them side by side, one dlt extract worker each (dlt has 5
    # unless set; the source runs no more tables at once than there are workers).
    default_setting("extract.next_item_mode", "fifo")
    default_setting("extract.workers", str(TABLES_AT_ONCE))
    # One load job at a time: DuckDB runs each copy on all cores already, and dlt's default of 20 parallel jobs
    # shared DuckDB's memory limit (the 5,000-student benchmark hit "Out of Memory" on four copy jobs, retried).
    default_setting("load.workers", "1")
    # dlt keeps every loaded file in the data dir after a successful load: a full copy of the district's student
    # rows per run (1.2 GB after two runs of the 20,000-student benchmark district). The warehouse holds them.
    default_setting("load.delete_completed_jobs", "true")


def make_pipeline(target: Warehouse | Path, data_dir: Path | None = None) -> dlt.Pipeline:
    """The sync's dlt pipeline for a warehouse (or a DuckDB file's path)."""
    warehouse = target if isinstance(target, Warehouse) else open_warehouse(duckdb_path=target, data_dir=data_dir)
    return warehouse.pipeline()


def run_sync(
    duckdb_path: Path | None = None,
    resources: Sequence[str] | None = None,
    academic_years: Sequence[int] | None = None,
    full_refresh: bool = False,
    reconcile: bool = False,
    data_dir: Path | None = None,
    out: TextIO = sys.stderr,
    build_models_after: bool = True,
    destination: str | None = None,
    dataset: str | None = None,
    instance: str | None = None,
    **source_options: Any,
) -> SyncSummary:
    """Run one sync into a DuckDB file (`duckdb_path`) or a dlt destination (`destination`, `dataset`), then
    rebuild the SQL models, and return the sync's summary.

    `instance`: a named instance (`[sources.illuminate.instances.<name>]`) instead of the single one: its base URL,
    credentials and settings, into raw dataset `illuminate_<name>` with its own dlt pipeline (state, cursors);
    `source_options` given here still win over its settings (the command line's `--pii`).

    Every input is checked before anything is written (the paths or the destination's connection, the source's and
    the models' settings): a wrong one raises a one-line ConfigurationError and leaves everything as it was. Raises
    IlluminateError (one-line, user-facing) on failure; what earlier runs loaded stays as it was.
    """
    quiet_dlt_logging()
    if instance is not None:
        source_options = {**resolve_instance(instance).source_options(), **source_options}
    elif dataset is not None:
        check_not_an_instance_dataset(dataset)
    warehouse = open_warehouse(duckdb_path, destination, dataset, data_dir, instance)
    return sync_into(
        warehouse, resources, academic_years, full_refresh, reconcile, out, build_models_after, **source_options
    )


def check_not_an_instance_dataset(dataset: str) -> None:
    """`--dataset illuminate_<name>` of a declared instance, without `--instance`: the single instance's pipeline
    (its state and cursors) would load into that instance's tables. Refused with one line."""
    for name in declared_instances():
        if dataset == dataset_for(name):
            raise ConfigurationError(
                f"--dataset {dataset} is the dataset of instance {name}: run --instance {name} (without --dataset)"
                " to sync it, or give the single instance another dataset"
            )


def sync_into(
    warehouse: Warehouse,
    resources: Sequence[str] | None = None,
    academic_years: Sequence[int] | None = None,
    full_refresh: bool = False,
    reconcile: bool = False,
    out: TextIO = sys.stderr,
    build_models_after: bool = True,
    **source_options: Any,
) -> SyncSummary:
    """`run_sync` into an open warehouse (the single instance's or `warehouse.instance`'s, its settings already in
    `source_options`); closes the warehouse when done. Messages raised on the way name the instance's variables."""
    try:
        with naming_instance(warehouse.instance):
            return _checked_sync(
                warehouse, resources, academic_years, full_refresh, reconcile, out, build_models_after, source_options
            )
    finally:
        warehouse.close()


def _checked_sync(
    warehouse: Warehouse,
    resources: Sequence[str] | None,
    academic_years: Sequence[int] | None,
    full_refresh: bool,
    reconcile: bool,
    out: TextIO,
    build_models_after: bool,
    source_options: dict[str, Any],
) -> SyncSummary:
    warehouse.check()
    select_resources(resources)
    check_source_options(**source_options)
    # Resolved even when the models are skipped: a wrong model setting fails tonight, not on the next full run.
    models = model_settings(source_options.get("today"))
    if build_models_after:
        warehouse.check_models()
    if warehouse.instance is None:
        print(f"syncing into {warehouse.label} ...", file=out, flush=True)
    else:
        print(
            f"syncing instance {warehouse.instance} into {warehouse.label}, dataset {warehouse.dataset} ...",
            file=out,
            flush=True,
        )
    hold_less_memory()
    with warehouse.lock(), warehouse.protected():
        record = RunRecord(started_at=datetime.now(timezone.utc), synced=_selected_set(resources))
        run_report = RunReport()
        try:
            with reporting_progress(run_report, out) as run_report.on_resource_done:
                summary = _run_sync_locked(
                    warehouse, run_report, resources, academic_years, full_refresh, reconcile, **source_options
                )
        except IlluminateError as error:
            _record_failed_run(warehouse, record, run_report, error)
            raise
        _record_run(warehouse, record, run_report, summary)
        if build_models_after:
            print(warehouse.build_models(models), file=out)  # "built N models into analytics ..."
        return summary


def _selected_set(resources: Sequence[str] | None) -> frozenset[str] | None:
    return frozenset(resources) if resources else None


def _record_run(warehouse: Warehouse, record: RunRecord, report: RunReport, summary: SyncSummary) -> None:
    """A successful run into the history, with its counts and what reconciliation found."""
    record.status = "succeeded"
    record.finished_at = datetime.now(timezone.utc)
    record.requests, record.retries = summary.requests, summary.retries
    record.quarantined = sum(summary.quarantined.values())
    record.findings = list(report.findings)
    record.tables = {
        table: TableRun(change.rows_after, change.rows_written, change.removed)
        for table, change in summary.tables.items()
    }
    try:
        warehouse.record_run(record)
    except PipelineStepFailed as failure:  # on a dlt destination the history is appended by a pipeline of its own
        raise _user_error(failure, warehouse) from None


def _record_failed_run(warehouse: Warehouse, record: RunRecord, report: RunReport, error: IlluminateError) -> None:
    """A failed run into the history (its error line; the shrink guard's refusal is also a finding). Recording
    must not hide the run's own error: a failure to record is left out."""
    record.status = "failed"
    record.finished_at = datetime.now(timezone.utc)
    record.error = str(error)
    if report.client is not None:
        record.requests, record.retries = report.client.stats.requests, report.client.stats.retries
    record.findings = [*report.findings, *([str(error)] if isinstance(error, ShrinkGuardError) else [])]
    with contextlib.suppress(Exception):
        warehouse.record_run(record)


def check_source_options(**source_options: Any) -> None:
    """Resolve and check the source's settings (dlt's coercion to their types, then their ranges, the base URL,
    the credentials and the PII key) before the run opens any file.

    dlt resolves a source's settings only when the source function is called, and the source also reads the
    warehouse to choose how it loads: called without one, it reads no file and sends no request. The source the run
    uses is created again under the lock, once a pending load is finished.
    """
    report = RunReport()
    try:
        _create_source(report=report, **source_options)
    finally:
        if report.client is not None:
            report.client.close()


def model_settings(sync_today: str | None) -> ModelSettings:
    """The models' settings; their "today" follows the sync's when only the sync's is set (a replayed night).

    `sync_today`: the sync's `today` when given to it directly (an argument, or an instance's own setting); else
    the one of `[sources.illuminate]` (`SOURCES__ILLUMINATE__TODAY`) that the source resolves too."""
    settings = ModelSettings.resolve()
    sync_today = sync_today or dlt.config.get("sources.illuminate.today", str)
    if settings.today is None and sync_today:
        settings = replace(settings, today=date.fromisoformat(sync_today))
    return settings


def _run_sync_locked(
    warehouse: Warehouse,
    run_report: RunReport,
    resources: Sequence[str] | None,
    academic_years: Sequence[int] | None,
    full_refresh: bool,
    reconcile: bool,
    **source_options: Any,
) -> SyncSummary:
    started = time.monotonic()
    selected = select_resources(resources)
    pipeline = warehouse.pipeline()
    repair_check = LoadRepairCheck(pipeline, warehouse)
    repair_check.repair_interrupted()
    repair_check.start()
    finish_pending_load(pipeline, warehouse)
    counts_before = warehouse.table_counts()
    source = _create_source(
        academic_years=list(academic_years) if academic_years else None,
        full_refresh=full_refresh,
        reconcile=reconcile,
        warehouse=warehouse,
        report=run_report,
        resources=selected,
        **source_options,
    )
    if selected:
        source = source.with_resources(*selected)
    try:
        first_sync = not any(counts_before.values())  # loads in stages; later runs stay all-or-nothing
        load_infos = run_pipeline(pipeline, source, warehouse, staged=first_sync)
    except PipelineStepFailed as failure:
        raise _user_error(failure, warehouse) from None
    finally:
        if run_report.client is not None:
            run_report.client.close()
    for load_info in load_infos:
        _raise_on_failed_jobs(load_info, warehouse)
    repair_check.finish()
    warehouse.after_load()
    stats = run_report.client.stats if run_report.client is not None else None
    summary = SyncSummary(
        requests=stats.requests if stats else 0,
        retries=stats.retries if stats else 0,
        concurrency=stats.concurrency.describe(stats.max_in_flight) if stats and stats.concurrency else "",
        invalid_values=dict(run_report.invalid_values),
        quarantined=dict(run_report.quarantined_counts),
        dataset=warehouse.dataset,
    )
    warehouse.store_quarantined(run_report.quarantined)
    counts_after = warehouse.table_counts()
    written = warehouse.rows_written(counts_after, [load_id for info in load_infos for load_id in info.loads_ids])
    for table in counts_after:
        if table not in BOOKKEEPING_TABLES:
            summary.tables[table] = TableChange(counts_before.get(table, 0), counts_after[table], written.get(table))
    summary.seconds = time.monotonic() - started
    return summary


def run_pipeline(
    pipeline: dlt.Pipeline,
    source: DltSource,
    warehouse: Warehouse,
    staged: bool = False,
) -> list[LoadInfo]:
    """What `pipeline.run` does (state from the warehouse, extract, normalize, load) and dlt's load info of each load.

    `staged`: the resources are extracted in stages (`load_stages`), each its own load package, loaded in the
    background while the next stage downloads (the warehouse's reads stay possible meanwhile). Otherwise one
    package, loaded after the last answer: nothing of a run that fails is loaded.
    """
    pipeline.sync_destination()
    resources = list(source.selected_resources)
    stages = load_stages(resources) if staged else [resources]
    load_infos: list[LoadInfo] = []
    with ExitStack() as open_while_staging:
        background: BackgroundLoad | None = None
        destination = None
        try:
            for number, stage in enumerate(stages, start=1):
                with releasing_free_memory():
                    pipeline.extract(
                        source.with_resources(*stage),
                        loader_file_format=warehouse.file_format,
                        table_format=warehouse.table_format,  # type: ignore[arg-type]
                    )
                    if background is not None:  # before normalizing: the load step takes every normalized package
                        load_infos.append(_background_result(background, warehouse))
                        background = None
                    pipeline.normalize()
                if number == len(stages):
                    break
                if destination is None:
                    destination = open_while_staging.enter_context(warehouse.background_destination(pipeline))
                background = BackgroundLoad(pipeline, destination)
        finally:
            if background is not None:  # a stage failed: the load started before it ends before the lock is released
                background.thread.join()
    release_free_memory()  # what the download freed, before DuckDB fills its memory limit
    load_infos.append(warehouse.load(pipeline))
    return load_infos


def _background_result(background: BackgroundLoad, warehouse: Warehouse) -> LoadInfo:
    try:
        return background.wait()
    except Exception as error:
        raise _step_error("load", error, BACKGROUND_LOAD_CONFIG, warehouse.kind) from None


def _create_source(**options: Any) -> DltSource:
    """The source with its settings resolved; a missing or wrong setting becomes a one-line ConfigurationError."""
    try:
        return illuminate_source(**options)
    except ConfigurationException as error:
        raise configuration_error(error) from None


def finish_pending_load(pipeline: dlt.Pipeline, warehouse: Warehouse) -> None:
    """A run that crashed or failed after extracting left a package: load it first so its data and state are not
    lost, and so that this run's resources see its rows (an extracted package too: a first sync that failed in a
    stage leaves the next stage extracted, and would otherwise append beside this run's copy of it)."""
    if pipeline.has_pending_data:
        try:
            pipeline.normalize()
            # dlt's own load, not `warehouse.load`: a connection passed to `pipeline.load` stays the pipeline's
            # credentials afterwards, and this run's sync step would find it closed
            pipeline.load()
        except PipelineStepFailed as failure:
            raise _user_error(failure, warehouse) from None


class LoadRepairCheck:
    """Removes the second copy of rows that a load job copied twice, for the loads of a run.

    dlt marks a load job done only after copying it, so a run killed in between copies the job again when the next
    run finishes the package (and a job retried after its copy committed would do the same). dlt's merge
    de-duplicates staging rows by primary key only where a table has one and no nested tables, so slice tables
    (merged on a year or a date) and the View documents would hold the copied rows twice. Both copies carry the same
    `_dlt_id` (set by the source on Arrow rows, `resources.with_row_ids`, and by dlt on the View's), so keeping one
    row per `_dlt_id` among the rows of the run's loads restores the table (`Warehouse.remove_rows_copied_twice`).

    A marker file in the pipeline's working dir holds the run's start until the check is done: a run killed after
    loading but before the check leaves it, and the next run checks those loads first.
    """

    def __init__(self, pipeline: dlt.Pipeline, warehouse: Warehouse) -> None:
        self.warehouse = warehouse
        self.marker = Path(pipeline.working_dir) / "loads-to-check"
        self.started: str | None = None

    def repair_interrupted(self) -> None:
        """Check the loads of an earlier run that ended before its check."""
        if self.marker.exists():
            self.warehouse.remove_rows_copied_twice(self.marker.read_text().strip())
            self.marker.unlink()

    def start(self) -> None:
        self.started = datetime.now(timezone.utc).isoformat()
        self.marker.parent.mkdir(parents=True, exist_ok=True)
        self.marker.write_text(self.started)

    def finish(self) -> None:
        """Check the loads completed since `start` (a finished pending package and this run's)."""
        assert self.started is not None, "start() first"
        self.warehouse.remove_rows_copied_twice(self.started)
        self.marker.unlink(missing_ok=True)


def _raise_on_failed_jobs(load_info: LoadInfo, warehouse: Warehouse) -> None:
    if load_info.has_failed_jobs:
        raise IlluminateError(f"loading into {warehouse.kind} failed: " + "; ".join(_failed_job_messages(load_info)))


def _failed_job_messages(load_info: LoadInfo) -> list[str]:
    messages = []
    for package in load_info.load_packages:
        for job in package.jobs.get("failed_jobs", []):
            messages.append(f"{job.job_file_info.table_name}: {_exception_line(str(job.failed_message))[:300]}")
    return messages


def _exception_line(failed_message: str) -> str:
    """The line naming the exception in dlt's record of a failed job (a whole traceback: its last line)."""
    lines = [line.strip() for line in failed_message.splitlines() if line.strip()]
    return lines[-1] if lines else "no message"


def _user_error(failure: PipelineStepFailed, warehouse: Warehouse) -> IlluminateError:
    """The one-line error of a failed step."""
    config = DUCKDB_LOAD_CONFIG if failure.step == "load" else DUCKDB_WRITE_CONFIG
    return _step_error(failure.step, failure, config, warehouse.kind)


def _step_error(
    step: str, failure: BaseException, duckdb_config: dict[str, Any], kind: str = "DuckDB"
) -> IlluminateError:
    """The one-line error of a failed step: ours when the source raised one, dlt's config errors translated, a
    failed load job by its table and exception, DuckDB out of memory by the setting to raise."""
    cause: BaseException | None = failure
    while cause is not None:
        if isinstance(cause, IlluminateError):
            return cause
        if isinstance(cause, ConfigurationException):
            return configuration_error(cause)
        if isinstance(cause, (LoadClientJobFailed, LoadClientJobTerminalRetry)):
            table = cause.job_id.split(".")[0]  # a job id is `table.file_id.format`
            problem = _exception_line(cause.failed_message)[:300]
            return IlluminateError(f"loading into {kind} failed: {table}: {problem}")
        cause = cause.__cause__ or cause.__context__
    exception = failure.exception if isinstance(failure, PipelineStepFailed) else failure
    if "Out of Memory Error" in str(exception):
        return IlluminateError(out_of_memory_message(f"in the {step} step", duckdb_config))
    first_line = str(exception).splitlines()[0] if str(exception) else type(exception).__name__
    return IlluminateError(f"the {step} step failed: {first_line[:300]}")


def configuration_error(error: ConfigurationException) -> ConfigurationError:
    """dlt's error about a setting or a settings file as one line naming the setting the way a user sets it."""
    if isinstance(error, ConfigFieldMissingException):
        return ConfigurationError(_missing_setting_message(error))
    if isinstance(error, ConfigValueCannotBeCoercedException):
        return ConfigurationError(invalid_setting_message(error.field_name, error.field_value, error.hint))
    if isinstance(error, TomlProviderReadException):
        return ConfigurationError(settings_file_message(error))
    # dlt's other configuration errors name fields and types, never values
    first_line = str(error).splitlines()[0] if str(error) else type(error).__name__
    return ConfigurationError(f"a setting is invalid: {first_line[:300]}")


def settings_file_message(error: TomlProviderReadException) -> str:
    """Which of `.dlt/config.toml` / `.dlt/secrets.toml` could not be read, and where: dlt names every path it
    looked at, so each is parsed again to find the broken one. Only the position is shown, never the text, which
    could be part of a secret."""
    for path in error.full_paths:
        problem = _toml_file_problem(Path(path))
        if problem:
            return f"{path}: {problem}: correct the file and run again"
    return f"{error.file_name} could not be read: correct the file and run again"


def _toml_file_problem(path: Path) -> str | None:
    if not path.is_file():
        return None
    try:
        tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:  # its message names the problem and its position, not the text
        return f"is not valid TOML: {error}"
    except (OSError, UnicodeDecodeError) as error:
        return f"cannot be read ({type(error).__name__})"
    return None


def _missing_setting_message(exception: Any) -> str:
    fields = list(getattr(exception, "fields", []) or [])
    names = []
    for name in fields:
        names.append(setting_variable(str(name)))
    if not names:
        return "a required setting is missing: see .dlt/secrets.toml.example"
    return f"missing setting {', '.join(names)}: set it in the environment or in .dlt/config.toml / .dlt/secrets.toml"
