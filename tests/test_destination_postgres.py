"""`illuminate-sync run --destination postgres` against a real PostgreSQL 15 server that the tests start themselves:
table by table the same raw rows as the DuckDB path on the same district, after a full sync, a nightly run after
mutations, a persistent fault, and a SIGKILL during the load; one run per dataset at a time; one line for each bad
connection setting, with the password nowhere.

Each scenario syncs the same simulated district into a DuckDB file and into a PostgreSQL database, night by night,
and compares the raw tables (data columns: dlt's bookkeeping columns and `exported_at` left out).
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pytest
from destination_support import differences, duckdb_tables, postgres_tables
from postgres_support import PASSWORD, PostgresCluster, postgres_available, postgres_cluster
from sync_support import RUN_HISTORY, TODAY, cli_env, fast_retries, illuminate_sync_command, simulator_env, sync

from illuminate_sync.pipelines.models import discover_models
from illuminate_sync.pipelines.sync import SyncSummary, run_sync
from illuminate_sync.simulator import Simulator, SimulatorConfig
from illuminate_sync.sources.illuminate.errors import IlluminateError

pytestmark = pytest.mark.skipif(not postgres_available(), reason="PostgreSQL's server binaries are not installed")

OPTIONS = {"academic_years_back": 0, "gradebook_refresh_days": 1, "allow_shrink": True}
"""A small district, every table refetched every night, an upstream slice emptied on purpose (a_night_of_changes)."""
VARIABLE = "DESTINATION__POSTGRES__CREDENTIALS"


@pytest.fixture(scope="module")
def pg() -> Iterator[PostgresCluster]:
    with postgres_cluster() as cluster:
        yield cluster


@pytest.fixture
def sim() -> Iterator[Simulator]:
    simulator = Simulator(SimulatorConfig(students=40, seed=21, today=TODAY))
    simulator.start(port=0)
    yield simulator
    simulator.stop()


@pytest.fixture
def database(pg: PostgresCluster, request: pytest.FixtureRequest) -> str:
    """A new database for the test, named after it."""
    name = "t_" + request.node.name.lower().replace("[", "_").replace("]", "")[:50]
    pg.create_database(name)
    return name


@contextmanager
def credentials(url: str) -> Iterator[None]:
    previous = os.environ.get(VARIABLE)
    os.environ[VARIABLE] = url
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(VARIABLE, None)
        else:
            os.environ[VARIABLE] = previous


def sync_postgres(sim: Simulator, pg: PostgresCluster, database: str, data_dir: Path, **options: object) -> SyncSummary:
    options = {**OPTIONS, "build_models_after": False, **options}
    with simulator_env(sim), credentials(pg.url(database)):
        return run_sync(
            destination="postgres", data_dir=data_dir, today=sim.today.isoformat(), out=io.StringIO(), **options
        )


def assert_same_raw_tables(pg: PostgresCluster, database: str, db: Path, ignore: frozenset[str] = frozenset()) -> None:
    got, want = postgres_tables(pg, database, ignore=ignore), duckdb_tables(db, ignore=ignore)
    assert want, "the DuckDB side holds no tables"
    assert not differences(got, want), "\n".join(differences(got, want))


def a_night_of_changes(sim: Simulator) -> None:
    sim.mutate("add_students", count=3, entry_date=(sim.today).isoformat())
    sim.mutate("change_assessment_result", count=4)
    sim.mutate("empty_slice", path="Behavior", academic_year=2027)
    sim.mutate("update_assessment")
    sim.advance_today(1)


def test_a_full_sync_and_a_nightly_after_mutations_hold_the_same_rows_as_duckdb(
    sim: Simulator, pg: PostgresCluster, database: str, tmp_path: Path
) -> None:
    db = tmp_path / "w.duckdb"
    sync(sim, db, **OPTIONS)
    first = sync_postgres(sim, pg, database, tmp_path / "pg-dlt")
    assert_same_raw_tables(pg, database, db)
    assert first.tables["students"].rows_written == 40

    a_night_of_changes(sim)
    sync(sim, db, reconcile=True, **OPTIONS)  # reconciliation reads the warehouse's counts too
    nightly = sync_postgres(sim, pg, database, tmp_path / "pg-dlt", reconcile=True)
    assert_same_raw_tables(pg, database, db)
    assert nightly.tables["students"].rows_after == 43
    assert not any(path.stat().st_mode & 0o077 for path in (tmp_path / "pg-dlt").rglob("*")), "owner-only data dir"


def test_a_persistent_fault_changes_nothing_and_the_next_run_completes(
    sim: Simulator, pg: PostgresCluster, database: str, tmp_path: Path
) -> None:
    db = tmp_path / "w.duckdb"
    sync(sim, db, **OPTIONS)
    sync_postgres(sim, pg, database, tmp_path / "pg-dlt")
    a_night_of_changes(sim)
    before = postgres_tables(pg, database)

    sim.inject_fault("Enrollment", "503")  # every request of one endpoint fails, all night
    try:
        with fast_retries(), pytest.raises(IlluminateError) as failed:
            sync_postgres(sim, pg, database, tmp_path / "pg-dlt")
    finally:
        sim.clear_faults()
    assert "Enrollment" in str(failed.value) and "\n" not in str(failed.value)
    assert postgres_tables(pg, database) == before, "a failed nightly run changed the dataset"

    sync(sim, db, **OPTIONS)
    sync_postgres(sim, pg, database, tmp_path / "pg-dlt")
    assert_same_raw_tables(pg, database, db)


KILL_DURING_COPY = """
import os, signal, sys
from dlt.destinations.impl.postgres import postgres

run = postgres.PostgresCsvCopyJob.run
done = []

def run_then_kill(self):
    run(self)
    done.append(self)
    if len(done) >= int(os.environ["KILL_AFTER_COPY_JOBS"]):
        os.kill(os.getpid(), signal.SIGKILL)  # the machine dies with part of the package copied

postgres.PostgresCsvCopyJob.run = run_then_kill
from illuminate_sync.pipelines.cli import main
sys.exit(main(sys.argv[1:]))
"""


def run_cli(sim: Simulator, arguments: list[str], script: str | None = None, **env: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-c", script] if script else illuminate_sync_command()
    settings = {"SOURCES__ILLUMINATE__ACADEMIC_YEARS_BACK": "0", "SOURCES__ILLUMINATE__GRADEBOOK_REFRESH_DAYS": "1"}
    return subprocess.run(
        [*command, *arguments],
        env=cli_env(sim, **settings, **env),
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_a_run_killed_while_copying_into_postgres_is_completed_by_the_next_run(
    sim: Simulator, pg: PostgresCluster, database: str, tmp_path: Path
) -> None:
    db, data_dir = tmp_path / "w.duckdb", tmp_path / "pg-dlt"
    sync(sim, db, **OPTIONS)
    arguments = ["run", "--destination", "postgres", "--data-dir", str(data_dir), "--skip-models"]
    killed = run_cli(sim, arguments, KILL_DURING_COPY, KILL_AFTER_COPY_JOBS="5", **{VARIABLE: pg.url(database)})
    assert killed.returncode == -9, killed.stderr[-2000:]

    rerun = run_cli(sim, arguments, **{VARIABLE: pg.url(database)})
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert_same_raw_tables(pg, database, db)


def test_two_runs_into_one_dataset_never_both_load(
    sim: Simulator, pg: PostgresCluster, database: str, tmp_path: Path
) -> None:
    sim.inject_fault("*", "latency", seconds=0.05)  # the first run takes a few seconds
    env = {VARIABLE: pg.url(database), "SOURCES__ILLUMINATE__MAX_CONCURRENCY": "1"}
    arguments = [
        "run",
        "--destination",
        "postgres",
        "--skip-models",
        "--resources",
        "terms,enrollment,attendance_daily",
    ]
    first = subprocess.Popen(
        [*illuminate_sync_command(), *arguments, "--data-dir", str(tmp_path / "first")],
        env=cli_env(sim, **env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []

    def read_progress() -> None:
        assert first.stderr is not None
        for line in first.stderr:
            lines.append(line)

    threading.Thread(target=read_progress, daemon=True).start()
    deadline = time.monotonic() + 60
    while not any(line.startswith("  ") for line in lines) and time.monotonic() < deadline:
        assert first.poll() is None, "".join(lines)
        time.sleep(0.05)
    # a second machine (another data dir) into the same dataset, while the first one is downloading
    second = run_cli(sim, [*arguments, "--data-dir", str(tmp_path / "second")], **env)
    assert first.wait(timeout=300) == 0, "".join(lines)[-2000:]
    assert second.returncode == 1
    errors = [line for line in second.stderr.splitlines() if line.startswith("illuminate-sync: error:")]
    assert len(errors) == 1 and "another illuminate-sync run is loading postgres dataset illuminate" in errors[0]
    assert not (tmp_path / "second" / "illuminate_sync" / "load").exists(), "the second run extracted"


def bad_settings(pg: PostgresCluster) -> dict[str, tuple[dict[str, str], str]]:
    closed_port = pg.url().replace(f":{pg.port}/", ":9/")
    return {
        "unreachable server": ({VARIABLE: closed_port}, "cannot reach the server"),
        "wrong password": ({VARIABLE: pg.url(password="not-the-password")}, "refused user illuminate_test's password"),
        "missing database": ({VARIABLE: pg.url("no_such_db")}, "database no_such_db does not exist"),
        "no credentials": ({}, f"no credentials: set {VARIABLE}"),
    }


@pytest.mark.parametrize("case", ["unreachable server", "wrong password", "missing database", "no credentials"])
def test_a_bad_connection_setting_gives_one_line_naming_it_and_loads_nothing(
    case: str, sim: Simulator, pg: PostgresCluster, tmp_path: Path
) -> None:
    env, expected = bad_settings(pg)[case]
    data_dir = tmp_path / "dlt"
    result = run_cli(sim, ["run", "--destination", "postgres", "--data-dir", str(data_dir)], **env)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 1 and len(lines) == 1, result.stderr
    assert expected in lines[0] and VARIABLE in lines[0], lines[0]
    assert PASSWORD not in result.stderr + result.stdout and "not-the-password" not in result.stderr
    assert not data_dir.exists(), "a run that cannot connect wrote its working directory"
    assert sum(sim.request_counts().values()) == 0, "a run that cannot connect asked the API"


def test_an_unknown_destination_is_refused_with_the_supported_ones(sim: Simulator, tmp_path: Path) -> None:
    result = run_cli(sim, ["run", "--destination", "oracle", "--data-dir", str(tmp_path / "dlt")])
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 1 and len(lines) == 1, result.stderr
    assert "--destination oracle: not a supported destination" in lines[0] and "postgres" in lines[0]
    assert "--duckdb PATH" in lines[0]


def test_the_servers_password_appears_in_no_output_log_or_file(
    sim: Simulator, pg: PostgresCluster, database: str, tmp_path: Path
) -> None:
    data_dir = tmp_path / "dlt"
    arguments = ["run", "--destination", "postgres", "--data-dir", str(data_dir), "--skip-models", "--verbose"]
    result = run_cli(sim, arguments, **{VARIABLE: pg.url(database)})
    assert result.returncode == 0, result.stderr[-2000:]
    assert PASSWORD not in result.stdout + result.stderr
    for path in data_dir.rglob("*"):
        if path.is_file():
            assert PASSWORD.encode() not in path.read_bytes(), f"{path} holds the password"


def test_quarantined_records_are_kept_in_the_datasets_quarantine_table(
    pg: PostgresCluster, database: str, tmp_path: Path
) -> None:
    sim = Simulator(SimulatorConfig(students=40, seed=16, today=TODAY))
    sim.start(port=0)
    try:
        student = sim.query("Students")[3]["student_id"]
        sim.mutate("corrupt_record", path="Students", field="student_id", value=f"{student}O",
                   match={"student_id": int(student)})  # fmt: skip
        db = tmp_path / "w.duckdb"
        sync(sim, db, resources=["students"], **OPTIONS)
        summary = sync_postgres(sim, pg, database, tmp_path / "pg-dlt", resources=["students"])
    finally:
        sim.stop()
    assert summary.quarantined == {"students": 1}
    assert "stored in illuminate.quarantine" in summary.render()
    quarantined = pg.execute("select table_name, endpoint, reason, record from illuminate.quarantine", database)
    with duckdb.connect(str(db), read_only=True) as con:
        expected = con.execute("select table_name, endpoint, reason, record from illuminate.quarantine").fetchall()
    assert quarantined == expected and f"{student}O" in str(quarantined)
    assert_same_raw_tables(pg, database, db, ignore=frozenset({"quarantined_at"}))


def test_the_cli_builds_the_models_on_postgres_they_pass_their_tests_and_the_marts_equal_duckdbs(
    sim: Simulator, pg: PostgresCluster, database: str, tmp_path: Path
) -> None:
    db = tmp_path / "w.duckdb"
    sync(sim, db, build_models_after=True, **OPTIONS)
    env = {VARIABLE: pg.url(database)}
    run = run_cli(sim, ["run", "--destination", "postgres", "--data-dir", str(tmp_path / "dlt")], **env)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "models into analytics" in run.stderr
    tested = run_cli(sim, ["models", "--destination", "postgres", "--test"], MODELS__TODAY=str(sim.today), **env)
    assert tested.returncode == 0 and "model tests: all passed" in tested.stderr, tested.stderr[-2000:]

    runs = pg.execute("select status, requests > 0 from analytics.rpt_sync_runs", database)
    assert runs == [("succeeded", True)], "the run history is kept on the server too"
    # the marts and reports of the data (the sync's own reports describe two different runs)
    marts = {name for name, model in discover_models().items() if model.layer in ("marts", "reports")} - RUN_HISTORY
    got = {table: rows for table, rows in postgres_tables(pg, database, "analytics").items() if table in marts}
    want = {table: rows for table, rows in duckdb_tables(db, "analytics").items() if table in marts}
    assert set(want) == marts and sum(sum(rows.values()) for rows in want.values()) > 0
    assert not differences(got, want), "\n".join(differences(got, want))


def test_another_dataset_loads_beside_illuminate_with_its_models_beside_analytics(
    sim: Simulator, pg: PostgresCluster, database: str, tmp_path: Path
) -> None:
    env = {VARIABLE: pg.url(database)}
    arguments = ["run", "--destination", "postgres", "--dataset", "illuminate_test", "--data-dir", str(tmp_path)]
    loaded = run_cli(sim, [*arguments, "--resources", "sites,students"], **env)
    assert loaded.returncode == 0, loaded.stderr[-2000:]
    assert "models into analytics_test" in loaded.stderr
    assert pg.execute("select count(*) from illuminate_test.students", database) == [(40,)]
    assert pg.execute("select count(*) from analytics_test.dim_students", database) == [(40,)]
    schemas = {row[0] for row in pg.execute("select nspname from pg_namespace", database)}
    assert not schemas & {"illuminate", "analytics"}, "nothing written into the default schemas"
