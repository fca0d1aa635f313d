"""The sync pipeline: the Illuminate source into schema `illuminate` of a DuckDB file, with progress and a summary."""

from __future__ import annotations

import io
import json
import os
import sys
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any, TextIO

import dlt
import duckdb
from dlt.common.configuration.exceptions import (
    ConfigFieldMissingException,
    ConfigurationException,
    ConfigValueCannotBeCoercedException,
)
from dlt.common.configuration.providers.toml import TomlProviderReadException
from dlt.common.pipeline import LoadInfo
from dlt.destinations.impl.duckdb.configuration import DuckDbCredentials
from dlt.extract import DltSource
from dlt.load.exceptions import LoadClientJobFailed, LoadClientJobTerminalRetry
from dlt.pipeline.exceptions import PipelineStepFailed

from pipelines.load_stages import BACKGROUND_LOAD_CONFIG, BackgroundLoad, background_connection, load_stages
from pipelines.memory import hold_less_memory, release_free_memory, releasing_free_memory
from pipelines.models import (
    DUCKDB_LOAD_CONFIG,
    DUCKDB_WRITE_CONFIG,
    ModelSettings,
    build_models,
    check_memory_limit,
    out_of_memory_message,
)
from sources.illuminate import RunReport, illuminate_source, resource_names
from sources.illuminate.context import ResourceProgress
from sources.illuminate.convert import QuarantinedRecord
from sources.illuminate.errors import ConfigurationError, IlluminateError
from sources.illuminate.setting_rules import invalid_setting_message, setting_variable
from sources.illuminate.settings import DATASET_NAME

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

PIPELINE_NAME = "illuminate_sync"
QUARANTINE_TABLE = "quarantine"


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

    def render(self) -> str:
        lines = [f"{'table':<52} {'rows':>10} {'written':>10} {'removed':>10} {'change':>10}"]
        for table, change in sorted(self.tables.items()):
            delta = change.rows_after - change.rows_before
            written = "-" if change.rows_written is None else f"{change.rows_written:,}"
            removed = "-" if change.removed is None else f"{change.removed:,}"
            lines.append(f"{table:<52} {change.rows_after:>10,} {written:>10} {removed:>10} {delta:>+10,}")
        lines.append(f"{self.requests:,} requests ({self.retries:,} retried) in {self.seconds:.1f} s")
        for table, count in sorted(self.quarantined.items()):
            columns = ", ".join(sorted(self.invalid_values.get(table, {})))
            lines.append(
                f"warning: {table}: {count:,} records with values that break their column type ({columns}) were "
                f"kept out and stored in {DATASET_NAME}.{QUARANTINE_TABLE}"
            )
        return "\n".join(lines)


def default_data_dir(duckdb_path: Path) -> Path:
    """dlt's working directory for a warehouse: beside the DuckDB file, one per file."""
    return duckdb_path.parent / f".{duckdb_path.name}.dlt"


def select_resources(names: Sequence[str] | None) -> list[str] | None:
    """Validate `--resources`; None means every enabled resource."""
    if not names:
        return None
    valid = resource_names()
    unknown = [name for name in names if name not in valid]
    if unknown:
        raise ConfigurationError(f"unknown resource {', '.join(unknown)}: valid names are {', '.join(valid)}")
    return list(names)


def quiet_dlt_logging() -> None:
    """dlt's own log is noise in a nightly log (warnings about always-null columns of the View's child tables) or
    worse: it logs each retried load job's traceback. The run reports failures itself, one line each. The user can
    still set RUNTIME__LOG_LEVEL. dlt reads the level when it first resolves a setting: call this before that."""
    os.environ.setdefault("RUNTIME__LOG_LEVEL", "CRITICAL")


def make_pipeline(duckdb_path: Path, data_dir: Path | None = None) -> dlt.Pipeline:
    quiet_dlt_logging()
    # Load ids on arrow rows give the summary its per-run counts (overridable by the user).
    os.environ.setdefault("NORMALIZE__PARQUET_NORMALIZER__ADD_DLT_LOAD_ID", "true")
    # Row ids (how a load job copied twice is recognised, see remove_rows_copied_twice) come with the source's arrow
    # rows (`with_row_ids`): dlt adding them would rewrite every file in normalize, and add a second `_dlt_id`.
    os.environ["NORMALIZE__PARQUET_NORMALIZER__ADD_DLT_ID"] = "false"
    duckdb_path.parent.mkdir(parents=True, exist_ok=True)
    pipelines_dir = data_dir or default_data_dir(duckdb_path)
    pipelines_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(pipelines_dir, 0o700)
    # Resources are extracted one after another (each fetches its windows concurrently): round-robin across 38
    # generators kept a partial batch of each in memory at once.
    os.environ.setdefault("EXTRACT__NEXT_ITEM_MODE", "fifo")
    # One load job at a time: DuckDB runs each copy on all cores already, and dlt's default of 20 parallel jobs
    # shared DuckDB's memory limit (the 5,000-student benchmark hit "Out of Memory" on four copy jobs, retried).
    os.environ.setdefault("LOAD__WORKERS", "1")
    # dlt keeps every loaded file in the data dir after a successful load: a full copy of the district's student
    # rows per run (1.2 GB after two runs of the 20,000-student benchmark district). The warehouse holds them.
    os.environ.setdefault("LOAD__DELETE_COMPLETED_JOBS", "true")
    credentials = DuckDbCredentials(str(duckdb_path))
    credentials.global_config = dict(DUCKDB_WRITE_CONFIG)
    return dlt.pipeline(
        pipeline_name=PIPELINE_NAME,
        pipelines_dir=str(pipelines_dir),
        destination=dlt.destinations.duckdb(credentials),
        dataset_name=DATASET_NAME,
        progress=None,
    )


def _lock_exclusively(descriptor: int) -> None:
    """Take an exclusive, non-blocking lock on an open file (released when the descriptor closes)."""
    if sys.platform == "win32":
        import msvcrt

        msvcrt.locking(descriptor, msvcrt.LK_NBLCK, 1)
    else:
        import fcntl

        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)


@contextmanager
def warehouse_lock(duckdb_path: Path) -> Iterator[None]:
    """One sync per DuckDB file at a time: a second run exits at once instead of waiting or corrupting the first."""
    duckdb_path.parent.mkdir(parents=True, exist_ok=True)
    lock_path = duckdb_path.parent / f".{duckdb_path.name}.lock"
    descriptor = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            _lock_exclusively(descriptor)
        except OSError:
            raise IlluminateError(
                f"another illuminate-sync run is using {duckdb_path} (lock {lock_path}): wait for it to finish"
            ) from None
        yield
    finally:
        os.close(descriptor)


def run_sync(
    duckdb_path: Path,
    resources: Sequence[str] | None = None,
    academic_years: Sequence[int] | None = None,
    full_refresh: bool = False,
    reconcile: bool = False,
    data_dir: Path | None = None,
    out: TextIO = sys.stderr,
    build_models_after: bool = True,
    **source_options: Any,
) -> SyncSummary:
    """Run one sync, then rebuild the SQL models, and return the sync's summary.

    Every input is checked before anything is written (the paths, the source's and the models' settings): a wrong
    one raises a one-line ConfigurationError and leaves the disk as it was. Raises IlluminateError (one-line,
    user-facing) on failure; what earlier runs loaded stays as it was.
    """
    quiet_dlt_logging()
    check_warehouse_file(duckdb_path)
    if data_dir is not None:
        check_data_dir(data_dir)
    check_memory_limit()
    select_resources(resources)
    check_source_options(**source_options)
    # Resolved even when the models are skipped: a wrong model setting fails tonight, not on the next full run.
    models = model_settings(source_options.get("today"))
    print(f"syncing into {duckdb_path} ...", file=out, flush=True)
    hold_less_memory()
    with warehouse_lock(duckdb_path), owner_only_files(duckdb_path):
        summary = _run_sync_locked(
            duckdb_path, resources, academic_years, full_refresh, reconcile, data_dir, out, **source_options
        )
        if build_models_after:
            model_log = io.StringIO()
            build_models(duckdb_path, out=model_log, settings=models)
            print(model_log.getvalue().strip().splitlines()[-1], file=out)  # "built N models into analytics ..."
        return summary


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


def check_data_dir(data_dir: Path) -> None:
    """`--data-dir`: an existing writable directory, or a new one in an existing, writable directory."""
    if data_dir.exists():
        if not data_dir.is_dir():
            raise ConfigurationError(f"--data-dir {data_dir}: is not a directory (expected dlt's working directory)")
        if not os.access(data_dir, os.W_OK | os.X_OK):
            raise ConfigurationError(f"--data-dir {data_dir}: is not writable (expected a writable directory)")
        return
    parent = data_dir.parent
    if not parent.is_dir():
        raise ConfigurationError(
            f"--data-dir {data_dir}: the directory {parent} does not exist (expected a directory in an existing"
            " one: create it first)"
        )
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ConfigurationError(f"--data-dir {data_dir}: the directory {parent} is not writable")


@contextmanager
def owner_only_files(duckdb_path: Path) -> Iterator[None]:
    """Student data on disk readable by its owner only, from creation on (a crash mid-load included).

    The process umask makes every file DuckDB and dlt create 0600 and every directory 0700; an existing warehouse
    is tightened first.
    """
    previous = os.umask(0o077)
    try:
        for path in (duckdb_path, duckdb_path.with_name(duckdb_path.name + ".wal")):
            if path.exists():
                os.chmod(path, 0o600)
        yield
    finally:
        os.umask(previous)


def model_settings(sync_today: str | None) -> ModelSettings:
    """The models' settings; their "today" follows the sync's when only the sync's is set (a replayed night)."""
    settings = ModelSettings.resolve()
    if settings.today is None and sync_today:
        settings = replace(settings, today=date.fromisoformat(sync_today))
    return settings


def _run_sync_locked(
    duckdb_path: Path,
    resources: Sequence[str] | None,
    academic_years: Sequence[int] | None,
    full_refresh: bool,
    reconcile: bool,
    data_dir: Path | None,
    out: TextIO,
    **source_options: Any,
) -> SyncSummary:
    started = time.monotonic()
    selected = select_resources(resources)
    pipeline = make_pipeline(duckdb_path, data_dir)
    repair_check = LoadRepairCheck(pipeline, duckdb_path)
    repair_check.repair_interrupted()
    repair_check.start()
    finish_pending_load(pipeline)
    counts_before = table_counts(duckdb_path)

    def report(table: str, progress: ResourceProgress) -> None:
        line = (
            f"  {table}: {progress.requests_windows:,} windows, {progress.pages:,} pages, {progress.rows:,} rows, "
            f"{progress.elapsed:.1f} s"
        )
        if progress.not_due:
            line += f" (not due: {'; '.join(progress.not_due)})"
        print(line, file=out, flush=True)

    run_report = RunReport(on_resource_done=report)
    warehouse = DuckDBWarehouse(duckdb_path)
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
        load_infos = run_pipeline(pipeline, source, duckdb_path, staged=first_sync, warehouse=warehouse)
    except PipelineStepFailed as failure:
        raise _user_error(failure) from None
    finally:
        if run_report.client is not None:
            run_report.client.close()
    for load_info in load_infos:
        _raise_on_failed_jobs(load_info)
    repair_check.finish()
    os.chmod(duckdb_path, 0o600)
    stats = run_report.client.stats if run_report.client is not None else None
    summary = SyncSummary(
        requests=stats.requests if stats else 0,
        retries=stats.retries if stats else 0,
        invalid_values=dict(run_report.invalid_values),
        quarantined=dict(run_report.quarantined_counts),
    )
    store_quarantined(duckdb_path, run_report.quarantined)
    counts_after = table_counts(duckdb_path)
    written = rows_written(duckdb_path, counts_after, [load_id for info in load_infos for load_id in info.loads_ids])
    for table in counts_after:
        if table != QUARANTINE_TABLE:
            summary.tables[table] = TableChange(counts_before.get(table, 0), counts_after[table], written.get(table))
    summary.seconds = time.monotonic() - started
    return summary


def run_pipeline(
    pipeline: dlt.Pipeline,
    source: DltSource,
    duckdb_path: Path,
    staged: bool = False,
    warehouse: DuckDBWarehouse | None = None,
) -> list[LoadInfo]:
    """What `pipeline.run` does (state from the warehouse, extract, normalize, load) and dlt's load info of each load.

    `staged`: the resources are extracted in stages (`load_stages`), each its own load package, loaded in the
    background while the next stage downloads; `warehouse` (the source's reader) reads through the background load's
    DuckDB instance meanwhile. Otherwise one package, loaded after the last answer: nothing of a run that fails is
    loaded.

    The last package loads with all its jobs on one DuckDB connection. With one load worker, dlt opens the database
    for each load job and closes it after, and each close checkpoints: the 79 jobs of a 1,000-student full sync spent
    2.8 s of a 9 s load opening and closing the file. A connection passed in as the credentials stays open until the
    load step is over.
    """
    pipeline.sync_destination()
    resources = list(source.selected_resources)
    stages = load_stages(resources) if staged else [resources]
    load_infos: list[LoadInfo] = []
    with ExitStack() as open_while_staging:
        connection: duckdb.DuckDBPyConnection | None = None
        background: BackgroundLoad | None = None
        try:
            for number, stage in enumerate(stages, start=1):
                with releasing_free_memory():
                    pipeline.extract(source.with_resources(*stage), loader_file_format="parquet")
                    if background is not None:  # before normalizing: the load step takes every normalized package
                        load_infos.append(_background_result(background))
                        background = None
                    pipeline.normalize()
                if number == len(stages):
                    break
                if connection is None:
                    connection = open_while_staging.enter_context(background_connection(duckdb_path))
                    if warehouse is not None:
                        open_while_staging.enter_context(warehouse.sharing(connection))
                background = BackgroundLoad(pipeline, connection)
        finally:
            if background is not None:  # a stage failed: the load started before it ends before the lock is released
                background.thread.join()
    release_free_memory()  # what the download freed, before DuckDB fills its memory limit
    load_infos.append(load_on_one_connection(pipeline, duckdb_path))
    return load_infos


def _background_result(background: BackgroundLoad) -> LoadInfo:
    try:
        return background.wait()
    except Exception as error:
        raise _step_error("load", error, BACKGROUND_LOAD_CONFIG) from None


def load_on_one_connection(pipeline: dlt.Pipeline, duckdb_path: Path) -> LoadInfo:
    """`pipeline.load()` with its jobs on one DuckDB connection, closed when the load step is over."""
    with duckdb.connect(str(duckdb_path), config=dict(DUCKDB_LOAD_CONFIG)) as connection:
        return pipeline.load(credentials=connection)


def _create_source(**options: Any) -> DltSource:
    """The source with its settings resolved; a missing or wrong setting becomes a one-line ConfigurationError."""
    try:
        return illuminate_source(**options)
    except ConfigurationException as error:
        raise configuration_error(error) from None


def finish_pending_load(pipeline: dlt.Pipeline) -> None:
    """A run that crashed or failed after extracting left a package: load it first so its data and state are not
    lost, and so that this run's resources see its rows (an extracted package too: a first sync that failed in a
    stage leaves the next stage extracted, and would otherwise append beside this run's copy of it)."""
    if pipeline.has_pending_data:
        try:
            pipeline.normalize()
            pipeline.load()
        except PipelineStepFailed as failure:
            raise _user_error(failure) from None


class LoadRepairCheck:
    """Removes the second copy of rows that a load job copied twice, for the loads of a run.

    dlt marks a load job done only after copying it, so a run killed in between copies the job again when the next
    run finishes the package (and a job retried after its copy committed would do the same). dlt's merge
    de-duplicates staging rows by primary key only where a table has one and no nested tables, so slice tables
    (merged on a year or a date) and the View documents would hold the copied rows twice. Both copies carry the same
    `_dlt_id` (set by the source on Arrow rows, `resources.with_row_ids`, and by dlt on the View's), so keeping one
    row per `_dlt_id` among the rows of the run's loads restores the table.

    A marker file in the pipeline's working dir holds the run's start until the check is done: a run killed after
    loading but before the check leaves it, and the next run checks those loads first.
    """

    def __init__(self, pipeline: dlt.Pipeline, duckdb_path: Path) -> None:
        self.duckdb_path = duckdb_path
        self.marker = Path(pipeline.working_dir) / "loads-to-check"
        self.started: str | None = None

    def repair_interrupted(self) -> None:
        """Check the loads of an earlier run that ended before its check."""
        if self.marker.exists():
            remove_rows_copied_twice(self.duckdb_path, self.marker.read_text().strip())
            self.marker.unlink()

    def start(self) -> None:
        self.started = datetime.now(timezone.utc).isoformat()
        self.marker.parent.mkdir(parents=True, exist_ok=True)
        self.marker.write_text(self.started)

    def finish(self) -> None:
        """Check the loads completed since `start` (a finished pending package and this run's)."""
        assert self.started is not None, "start() first"
        remove_rows_copied_twice(self.duckdb_path, self.started)
        self.marker.unlink(missing_ok=True)


def remove_rows_copied_twice(duckdb_path: Path, loaded_since: str) -> None:
    """Keep one row per `_dlt_id` among the rows of every raw table loaded since `loaded_since` (ISO, UTC)."""
    if not duckdb_path.exists():
        return
    with duckdb.connect(str(duckdb_path), config=dict(DUCKDB_WRITE_CONFIG)) as con:
        try:
            load_ids = [
                row[0]
                for row in con.execute(
                    f"select load_id from {DATASET_NAME}._dlt_loads where inserted_at >= ?::timestamptz",
                    [loaded_since],
                ).fetchall()
            ]
        except duckdb.CatalogException:  # nothing loaded into this file yet
            return
        if not load_ids:
            return
        tables = [
            row[0]
            for row in con.execute(
                "select table_name from information_schema.columns where table_schema = ?"
                " and column_name in ('_dlt_id', '_dlt_load_id') group by table_name having count(*) = 2",
                [DATASET_NAME],
            ).fetchall()
        ]
        for table in tables:
            relation = f'{DATASET_NAME}."{table}"'
            # A grouping finds the copies (DuckDB spills it to disk when it outgrows the memory limit); the rows
            # are numbered only among the few ids found, not among every row of the run.
            copied = con.execute(
                f"select _dlt_id from {relation} where _dlt_load_id in (select unnest(?))"
                " group by _dlt_id having count(*) > 1",
                [load_ids],
            ).fetchall()
            if not copied:
                continue
            con.execute(
                f"delete from {relation} where rowid in (select rowid from (select rowid, row_number() over"
                f" (partition by _dlt_id order by rowid) as copy from {relation}"
                " where _dlt_id in (select unnest(?)) and _dlt_load_id in (select unnest(?))) where copy > 1)",
                [[row[0] for row in copied], load_ids],
            )


def table_counts(duckdb_path: Path) -> dict[str, int]:
    """Rows per raw table (catalog tables and their child tables)."""
    if not duckdb_path.exists():
        return {}
    with duckdb.connect(str(duckdb_path), read_only=True) as con:
        return counts_per_table(con)


def counts_per_table(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Rows per raw table, on an open connection."""
    tables = [
        row[0]
        for row in con.execute(
            "select table_name from information_schema.tables where table_schema = ? and table_name not like '_dlt%'",
            [DATASET_NAME],
        ).fetchall()
    ]
    return {
        table: con.execute(f'select count(*) from {DATASET_NAME}."{table}"').fetchone()[0]  # type: ignore[index]
        for table in tables
    }


def rows_written(duckdb_path: Path, tables: Iterable[str], load_ids: Sequence[str]) -> dict[str, int]:
    """Rows each of `tables` received from the load packages `load_ids` (tables without load ids are left out)."""
    if not load_ids:
        return {}
    placeholders = ", ".join("?" for _ in load_ids)
    written: dict[str, int] = {}
    with duckdb.connect(str(duckdb_path), read_only=True) as con:
        for table in tables:
            columns = {row[0] for row in con.execute(f'describe {DATASET_NAME}."{table}"').fetchall()}
            if "_dlt_load_id" not in columns:
                continue
            query = f'select count(*) from {DATASET_NAME}."{table}" where _dlt_load_id in ({placeholders})'
            written[table] = con.execute(query, load_ids).fetchone()[0]  # type: ignore[index]
    return written


def store_quarantined(duckdb_path: Path, records: Sequence[QuarantinedRecord]) -> None:
    """Append this run's quarantined records to `illuminate.quarantine` (after the run's data loaded)."""
    if not records:
        return
    rows = [
        (record.table, record.endpoint, record.reason, json.dumps(record.record, default=str, sort_keys=True))
        for record in records
    ]
    with duckdb.connect(str(duckdb_path)) as con:
        con.execute(
            f"create table if not exists {DATASET_NAME}.{QUARANTINE_TABLE} (quarantined_at timestamp, "
            "table_name varchar, endpoint varchar, reason varchar, record varchar)"
        )
        con.executemany(
            f"insert into {DATASET_NAME}.{QUARANTINE_TABLE} values (current_timestamp::timestamp, ?, ?, ?, ?)", rows
        )


class DuckDBWarehouse:
    """Reads what earlier runs loaded into the raw schema (a WarehouseReader), on short read-only connections, or on
    a cursor of the run's own connection while a background load holds the file (see `sharing`)."""

    def __init__(self, duckdb_path: Path) -> None:
        self.path = duckdb_path
        self._shared: duckdb.DuckDBPyConnection | None = None
        self._shared_lock = threading.Lock()

    @contextmanager
    def sharing(self, connection: duckdb.DuckDBPyConnection) -> Iterator[None]:
        """Reads go through a cursor of `connection` while the block runs: DuckDB refuses a second connection to a
        file this process holds open with another configuration."""
        cursor = connection.cursor()
        self._shared = cursor
        try:
            yield
        finally:
            with self._shared_lock:
                self._shared = None
                cursor.close()

    def keys(self, table: str, key_columns: Sequence[str], column: str, value: Any) -> set[tuple[Any, ...]]:
        columns = ", ".join(f'"{name}"' for name in key_columns)
        query = f'select {columns} from {DATASET_NAME}."{table}" where "{column}" = ?'
        return {tuple(row) for row in self._fetch(query, [value])}

    def count(self, table: str, column: str | None = None, values: Sequence[Any] | None = None) -> int:
        query = f'select count(*) from {DATASET_NAME}."{table}"'
        parameters: list[Any] = []
        if column is not None and values is not None:
            query += f' where "{column}" in (select unnest(?))'
            parameters = [list(values)]
        rows = self._fetch(query, parameters)
        return int(rows[0][0]) if rows else 0

    def tables_with_rows(self) -> set[str]:
        with self._connection() as con:
            if con is None:
                return set()
            return {table for table, rows in counts_per_table(con).items() if rows}

    def counts_by(self, table: str, columns: Sequence[str]) -> dict[tuple[Any, ...], int]:
        names = ", ".join(f'"{name}"' for name in columns)
        query = f'select {names}, count(*) from {DATASET_NAME}."{table}" group by all'
        return {tuple(row[:-1]): int(row[-1]) for row in self._fetch(query, [])}

    def _fetch(self, query: str, parameters: list[Any]) -> list[tuple[Any, ...]]:
        with self._connection() as con:
            if con is None:
                return []
            try:
                return con.execute(query, parameters).fetchall()
            except duckdb.CatalogException:  # the table does not exist yet
                return []

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
        with duckdb.connect(str(self.path), read_only=True) as con:
            yield con


def _raise_on_failed_jobs(load_info: LoadInfo) -> None:
    if load_info.has_failed_jobs:
        raise IlluminateError("loading into DuckDB failed: " + "; ".join(_failed_job_messages(load_info)))


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


def _user_error(failure: PipelineStepFailed) -> IlluminateError:
    """The one-line error of a failed step."""
    config = DUCKDB_LOAD_CONFIG if failure.step == "load" else DUCKDB_WRITE_CONFIG
    return _step_error(failure.step, failure, config)


def _step_error(step: str, failure: BaseException, duckdb_config: dict[str, Any]) -> IlluminateError:
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
            return IlluminateError(f"loading into DuckDB failed: {table}: {problem}")
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
