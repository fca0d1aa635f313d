"""Helpers of the sync tests: run the real sync against the simulator, and compute what the tables should hold
independently of the sync's own code (from the simulator's unpaged answers)."""

from __future__ import annotations

import io
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import duckdb

from illuminate_sync.pipelines.duckdb_warehouse import default_data_dir
from illuminate_sync.pipelines.run_history import RUN_TABLES_TABLE, RUNS_TABLE
from illuminate_sync.pipelines.sync import SyncSummary, run_sync
from illuminate_sync.simulator import Simulator, SimulatorConfig
from illuminate_sync.sources.illuminate.catalog import Endpoint, load_catalog
from illuminate_sync.sources.illuminate.settings import SLICE_YEAR_COLUMN

TODAY = date(2026, 11, 27)
RUN_HISTORY = frozenset(
    {RUNS_TABLE, RUN_TABLES_TABLE, "stg_sync_runs", "stg_sync_run_tables", "rpt_sync_runs", "rpt_sync_tables"}
)
"""The sync's run history and the models over it: they describe the runs (ids, times), which differ between two
warehouses loaded with the same data, so comparisons of the data leave them out."""
YEARS = (2026, 2027)
SOURCE = "SOURCES__ILLUMINATE__"


@contextmanager
def simulator_env(sim: Simulator, **overrides: str) -> Iterator[None]:
    """The sync's settings pointing at `sim` (OAuth1 unless OAuth2 variables are given), restored afterwards."""
    names = [name for name in os.environ if name.startswith("SOURCES__ILLUMINATE__")]
    saved = {name: os.environ.pop(name) for name in names}
    env = {k: v for k, v in sim.env().items() if "CLIENT_" not in k}
    env.update(overrides)
    os.environ.update(env)
    try:
        yield
    finally:
        for name in env:
            os.environ.pop(name, None)
        os.environ.update(saved)


def sync(sim: Simulator, db: Path, **options: Any) -> SyncSummary:
    """One `illuminate-sync run` against the simulator, on its today (the SQL models only when asked: they have
    their own tests)."""
    options.setdefault("build_models_after", False)
    with simulator_env(sim):
        return run_sync(db, today=sim.today.isoformat(), out=io.StringIO(), **options)


def typed_key(endpoint: Endpoint, record: dict[str, Any]) -> tuple[Any, ...]:
    """A wire record's natural key with the catalog's types, written independently of the sync's converter."""
    renamed = {endpoint.aliases.get(name, name): value for name, value in record.items()}
    key = []
    for column in endpoint.primary_key:
        value = renamed.get(column)
        column_type = endpoint.columns.get(column, "text" if column in endpoint.window_columns else "bigint")
        if value in (None, "", "NULL"):
            key.append(None)
        elif column_type == "bigint":
            key.append(int(value))
        elif column_type == "date":
            key.append(date.fromisoformat(str(value)[:10]))
        else:
            key.append(str(value))
    return tuple(key)


def session_windows(sim: Simulator, year: int) -> list[tuple[date, date, str]]:
    """(start, end, session type) per session of `year`, from the simulator's Terms answer."""
    spans: dict[str, tuple[date, date]] = {}
    for term in sim.query("Terms", {"start_date": f"{year - 1}-07-01", "end_date": f"{year}-07-31"}):
        if int(term["academic_year"]) != year:
            continue
        start, end = date.fromisoformat(term["start_date"]), date.fromisoformat(term["end_date"])
        session = term["session_type"]
        if session in spans:
            start, end = min(start, spans[session][0]), max(end, spans[session][1])
        spans[session] = (start, end)
    return [(start, end, session) for session, (start, end) in sorted(spans.items())]


def school_ids(sim: Simulator) -> list[int]:
    """Sites that are no other site's parent (the district site is the parent of the schools)."""
    sites = sim.query("Sites", {})
    parents = {site["parent_site_id"] for site in sites if site["parent_site_id"] != site["site_id"]}
    return [int(site["site_id"]) for site in sites if site["site_id"] not in parents]


def expected_records(sim: Simulator, table: str, years: tuple[int, ...] = YEARS) -> list[dict[str, Any]]:
    """Every record the API holds for `table` over `years`, as the sync should have loaded it."""
    endpoint = load_catalog()[table]
    today = sim.today
    windows: list[dict[str, Any]] = []
    sessions = [window for year in years for window in session_windows(sim, year)]
    sites = [{"site_id": site_id} for site_id in school_ids(sim)] if endpoint.iterate == "site" else [{}]
    if endpoint.strategy == "attendance_date":
        days = sorted(
            {
                start + timedelta(days=offset)
                for start, end, _ in sessions
                for offset in range((min(end, today) - start).days + 1)
                if (start + timedelta(days=offset)).weekday() < 5
            }
        )
        windows = [{"date": day.isoformat(), **site} for day in days for site in sites]
    elif endpoint.strategy == "changed_documents":
        return [
            {**document, "assessment_id": assessment["assessment_id"]}
            for assessment in sim.query("Assessments", {})
            for document in sim.query(f"Assessment/{assessment['assessment_id']}/View", {})
        ]
    elif endpoint.window == "date_range":
        windows = [
            {"start_date": s.isoformat(), "end_date": e.isoformat(), **site} for s, e, _ in sessions for site in sites
        ]
    elif endpoint.window == "enrollment_range":
        windows = [
            {"enrollment_start_date": s.isoformat(), "enrollment_end_date": e.isoformat(), **site}
            for s, e, _ in sessions
            for site in sites
        ]
    elif endpoint.window == "date_taken_range":
        windows = [
            {
                "start_date": s.isoformat(),
                "end_date": min(e, today).isoformat(),
                "date_taken_start": s.isoformat(),
                "date_taken_end": min(e, today).isoformat(),
            }
            for s, e, _ in sessions
            if s <= today
        ]
    elif endpoint.window == "as_of_date":
        windows = [{"date": min(e, today).isoformat(), "session_type": kind} for s, e, kind in sessions if s <= today]
    elif endpoint.table == "course_requirement_checks":
        windows = [{"as_of_date": today.isoformat()}]
    else:
        windows = [{}]
    records: list[dict[str, Any]] = []
    for params in windows:
        from_window = {column: params[parameter] for column, parameter in endpoint.window_columns.items()}
        answer = sim.query(endpoint.path, {**endpoint.fixed_params, **params})
        records.extend({**record, **from_window} for record in answer)
    return records


def expected_keys(sim: Simulator, table: str, years: tuple[int, ...] = YEARS) -> set[tuple[Any, ...]]:
    """The natural keys the table should hold; in academic-year slices a record is unique within its year."""
    endpoint = load_catalog()[table]
    if endpoint.strategy == "academic_year_slice":  # the key as `loaded_keys` reads it: the slice year included
        with_year = SLICE_YEAR_COLUMN in endpoint.primary_key
        return {
            typed_key(endpoint, {**record, SLICE_YEAR_COLUMN: year}) + (() if with_year else (year,))
            for year in years
            for record in expected_records(sim, table, (year,))
        }
    return {typed_key(endpoint, record) for record in expected_records(sim, table, years)}


def loaded_keys(db: Path, table: str, schema: str = "illuminate") -> list[tuple[Any, ...]]:
    """Every row's natural key as loaded in raw schema `schema` (a list, so duplicates show); slices add their
    `_academic_year`."""
    endpoint = load_catalog()[table]
    key_columns = list(endpoint.primary_key)
    if endpoint.strategy == "academic_year_slice" and SLICE_YEAR_COLUMN not in key_columns:
        key_columns.append(SLICE_YEAR_COLUMN)
    columns = ", ".join(f'"{column}"' for column in key_columns)
    with duckdb.connect(str(db), read_only=True) as con:
        return [tuple(row) for row in con.execute(f'select {columns} from {schema}."{table}"').fetchall()]


def column_types(db: Path, table: str) -> dict[str, str]:
    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute(
            "select column_name, data_type from information_schema.columns where table_schema = 'illuminate' "
            "and table_name = ?",
            [table],
        ).fetchall()
    return {name: data_type for name, data_type in rows}


# ---------------------------------------------------------------------------------------------------------------------
# Whole-run reliability and security tests (tests/test_reliability_*.py, tests/test_security_*.py)
# ---------------------------------------------------------------------------------------------------------------------
def data_tables(db: Path, schema: str = "illuminate") -> list[str]:
    """Every table of raw schema `schema` that holds data (catalog tables and their child tables, the quarantine; no
    `_dlt_*` and no run history, which differs from run to run by its nature)."""
    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute(
            "select table_name from information_schema.tables where table_schema = ?"
            " and table_name not like '\\_dlt%' escape '\\' order by 1",
            [schema],
        ).fetchall()
    return [row[0] for row in rows if row[0] not in RUN_HISTORY]


VOLATILE_COLUMNS = frozenset({"exported_at"})
"""Columns whose value is the time of the request (`Assessment/{id}/View`'s `exported_at`), not data."""


def table_snapshot(db: Path, with_dlt_columns: bool = True, schema: str = "illuminate") -> dict[str, tuple[int, int]]:
    """(rows, order-independent digest of the rows) per data table. With `with_dlt_columns=False` the dlt
    bookkeeping columns (`_dlt_id`, `_dlt_load_id`, ...) and the VOLATILE_COLUMNS are left out, so two warehouses
    loaded by different runs compare equal when they hold the same data."""
    snapshot: dict[str, tuple[int, int]] = {}
    if not db.exists():
        return snapshot
    with duckdb.connect(str(db), read_only=True) as con:
        for table in data_tables(db, schema):
            columns = [
                row[0]
                for row in con.execute(
                    "select column_name from information_schema.columns where table_schema = ?"
                    " and table_name = ? order by column_name",
                    [schema, table],
                ).fetchall()
                if with_dlt_columns or not (row[0].startswith("_dlt_") or row[0] in VOLATILE_COLUMNS)
            ]
            # a sum of row hashes: equal for equal multisets of rows, whatever their order
            quoted = ", ".join(f'"{column}"' for column in columns)
            row_hash = f"hash({quoted})::hugeint"
            count, digest = con.execute(
                f'select count(*), coalesce(sum({row_hash}), 0) from {schema}."{table}"'
            ).fetchone()  # type: ignore[misc]
            snapshot[table] = (int(count), int(digest))
    return snapshot


def assert_same_data(actual: Path, expected: Path) -> None:
    """Both warehouses hold the same rows in every data table (dlt bookkeeping columns aside), no duplicate keys."""
    got, want = table_snapshot(actual, False), table_snapshot(expected, False)
    differing = sorted(
        f"{table}: {got.get(table, (0, ''))[0]} rows, expected {want.get(table, (0, ''))[0]}"
        for table in set(got) | set(want)
        if got.get(table) != want.get(table)
    )
    assert not differing, "tables differ from the clean run: " + "; ".join(differing)
    for table, endpoint in load_catalog().items():
        if endpoint.enabled and table in got:
            keys = loaded_keys(actual, table)
            assert len(keys) == len(set(keys)), f"{table} has duplicate natural keys"


@contextmanager
def fast_retries(**policy: float) -> Iterator[None]:
    """Every IlluminateClient created inside uses a fast RetryPolicy (the sync has no setting for it)."""
    import functools

    from illuminate_sync.sources.illuminate import client as client_module

    settings: dict[str, float] = {"max_attempts": 6, "backoff_base": 0.02, "backoff_max": 0.2, "timeout": 5.0}
    settings.update(policy)
    original = client_module.RetryPolicy
    client_module.RetryPolicy = functools.partial(original, **settings)  # type: ignore[misc,assignment]
    try:
        yield
    finally:
        client_module.RetryPolicy = original  # type: ignore[misc]


def cli_env(sim: Simulator, **overrides: str) -> dict[str, str]:
    """The environment of an `illuminate-sync run` subprocess against `sim` (OAuth1 unless overridden)."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("SOURCES__ILLUMINATE__")}
    env.update({name: value for name, value in sim.env().items() if "CLIENT_" not in name})
    env["SOURCES__ILLUMINATE__TODAY"] = sim.today.isoformat()
    env.update(overrides)
    return env


def illuminate_sync_command() -> list[str]:
    """The installed `illuminate-sync` console script of this interpreter's environment."""
    import shutil
    import sys

    script = Path(sys.executable).parent / "illuminate-sync"
    if script.exists():
        return [str(script)]
    found = shutil.which("illuminate-sync")
    return [found] if found else [sys.executable, "-m", "illuminate_sync.pipelines.cli"]


def run_cli(workdir: Path, env: dict[str, str], *argv: str) -> subprocess.CompletedProcess[str]:
    """`illuminate-sync *argv` in its own process, in `workdir`, with exactly `env` as its environment."""
    return subprocess.run(
        [*illuminate_sync_command(), *argv], cwd=workdir, env=env, capture_output=True, text=True, timeout=120
    )


def tree(directory: Path) -> dict[str, bytes | None]:
    """Every path under `directory` with its bytes (None for a directory): to show that nothing was written."""
    return {
        str(path.relative_to(directory)): None if path.is_dir() else path.read_bytes()
        for path in sorted(directory.rglob("*"))
    }


def copy_warehouse(db: Path, target: Path) -> None:
    """A copy of a warehouse with its dlt working directory, to replay the same nights on it another way."""
    import shutil

    shutil.copy2(db, target)
    if default_data_dir(db).exists():
        shutil.copytree(default_data_dir(db), default_data_dir(target))


CRASH_DURING_LOAD = """
import os, signal, sys
from dlt.destinations.impl.duckdb import duck

jobs_before_crash = int(os.environ["CRASH_AFTER_COPY_JOBS"])
run = duck.DuckDbCopyJob.run
done = []

def run_then_crash(self):
    run(self)
    done.append(self)
    if len(done) >= jobs_before_crash:
        os.kill(os.getpid(), signal.SIGKILL)  # the power goes out with part of the package in DuckDB

duck.DuckDbCopyJob.run = run_then_crash
from illuminate_sync.pipelines.cli import main
sys.exit(main(sys.argv[1:]))
"""
"""`illuminate-sync` that dies by SIGKILL once it has copied N load jobs into DuckDB (others not yet)."""


# ------------------------------------------------------------------------------------------------ named instances
@contextmanager
def simulated_district(students: int, seed: int, **config: Any) -> Iterator[Simulator]:
    """A simulated district on a free port for the block (today: TODAY unless given)."""
    sim = Simulator(SimulatorConfig(students=students, seed=seed, **{"today": TODAY, **config}))
    sim.start(port=0)
    try:
        yield sim
    finally:
        sim.stop()


def instance_variables(name: str, sim: Simulator, **settings: str) -> dict[str, str]:
    """`sim` declared as instance `name` (OAuth1), with other settings of the instance."""
    prefix = f"{SOURCE}INSTANCES__{name.upper()}__"
    variables = {
        prefix + variable.removeprefix(SOURCE): value
        for variable, value in sim.env().items()
        if "CLIENT_" not in variable
    }
    variables.update({prefix + setting: value for setting, value in settings.items()})
    return variables


def network_env(north: Simulator, south: Simulator) -> dict[str, str]:
    """Both districts as instances, nothing of the single instance but `today` (which the instances inherit)."""
    env = {name: value for name, value in os.environ.items() if not name.startswith(SOURCE)}
    env[f"{SOURCE}TODAY"] = TODAY.isoformat()
    env.update(instance_variables("north", north, MAX_CONCURRENCY="3"))
    env.update(instance_variables("south", south))
    return env


@contextmanager
def environment(env: dict[str, str]) -> Iterator[None]:
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def one_error_line(result: subprocess.CompletedProcess[str], code: int) -> str:
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("illuminate-sync: error: "), lines[0]
    return lines[0]


def assert_no_secret(result: subprocess.CompletedProcess[str], *sims: Simulator) -> None:
    for sim in sims:
        for secret in (sim.oauth1[1], sim.oauth1[3]):
            assert secret not in result.stdout + result.stderr
