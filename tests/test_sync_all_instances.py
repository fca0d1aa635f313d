"""`run --all-instances`: every declared instance synced at the same time into one DuckDB file (two simulated
districts whose ids overlap), within one request budget shared by the instances; one instance failing leaves the
other loaded; one line per instance and a non-zero exit naming the failed one; bad input is one line, nothing
written."""

from __future__ import annotations

import io
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import duckdb
import pytest
from postgres_support import postgres_available, postgres_cluster
from sync_support import (
    SOURCE,
    assert_no_secret,
    environment,
    expected_keys,
    illuminate_sync_command,
    loaded_keys,
    network_env,
    one_error_line,
    run_cli,
    simulated_district,
    tree,
)

from illuminate_sync.pipelines.all_instances import NetworkRun, run_all_instances
from illuminate_sync.pipelines.cli import main
from illuminate_sync.simulator import Simulator

DISTRICT_TABLES = ("students", "enrollment", "roster", "attendance_daily", "assessment_aggregate_student_responses")
LATENCY = 0.02
"""Each answer takes this long: both instances are still downloading when the other starts."""


@pytest.fixture(scope="module")
def north() -> Iterator[Simulator]:
    with simulated_district(students=30, seed=1, latency=LATENCY) as sim:
        yield sim


@pytest.fixture(scope="module")
def south() -> Iterator[Simulator]:
    with simulated_district(students=30, seed=2, latency=LATENCY) as sim:
        yield sim


def run_main(*argv: str) -> tuple[int, str, str]:
    """`illuminate-sync ...` in this process: (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def network(north: Simulator, south: Simulator, tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """Both instances synced together into one file, with their models."""
    db = tmp_path_factory.mktemp("all") / "network.duckdb"
    with environment(network_env(north, south)):
        code, out, err = run_main("run", "--duckdb", str(db), "--all-instances")
    return {"db": db, "code": code, "out": out, "err": err}


def test_every_instance_lands_in_its_own_schema_in_one_file(
    north: Simulator, south: Simulator, network: dict[str, object]
) -> None:
    assert network["code"] == 0, network["err"]
    db = network["db"]
    assert isinstance(db, Path)
    for schema, sim in (("illuminate_north", north), ("illuminate_south", south)):
        for table in DISTRICT_TABLES:
            loaded = loaded_keys(db, table, schema)
            assert loaded, f"{schema}.{table} is empty"
            assert len(loaded) == len(set(loaded)), f"{schema}.{table} has duplicate natural keys"
            assert set(loaded) == expected_keys(sim, table), f"{schema}.{table}"


def test_each_instance_gets_its_models_built_beside_its_schema(network: dict[str, object]) -> None:
    db = network["db"]
    assert isinstance(db, Path)
    with duckdb.connect(str(db), read_only=True) as con:
        for name, sim_seed in (("north", 1), ("south", 2)):
            students = con.execute(f"select count(*) from analytics_{name}.dim_students").fetchone()
            raw = con.execute(f"select count(distinct student_id) from illuminate_{name}.students").fetchone()
            assert students is not None and raw is not None
            assert students[0] == raw[0] > 0, (name, sim_seed)
    assert str(network["err"]).count("built ") >= 2, network["err"]


def test_the_network_schema_holds_every_instance_after_the_run(network: dict[str, object]) -> None:
    db = network["db"]
    assert isinstance(db, Path)
    with duckdb.connect(str(db), read_only=True) as con:
        per_instance = dict(con.execute("select instance, count(*) from analytics.dim_students group by 1").fetchall())
        own = {
            name: con.execute(f"select count(*) from analytics_{name}.dim_students").fetchone()[0]  # type: ignore[index]
            for name in ("north", "south")
        }
    assert per_instance == own
    assert "network models: built " in str(network["out"]) and "from instances north, south" in str(network["out"])


def test_the_summary_has_a_line_per_instance(network: dict[str, object]) -> None:
    out = str(network["out"])
    assert "instance north (illuminate_north):" in out and "instance south (illuminate_south):" in out
    lines = out.splitlines()
    assert any(line.startswith("north: succeeded in ") and "into illuminate_north" in line for line in lines), out
    assert any(line.startswith("south: succeeded in ") and "into illuminate_south" in line for line in lines), out
    assert "2 of 2 instances synced" in out


def test_each_instance_progress_line_carries_its_name(network: dict[str, object]) -> None:
    err = str(network["err"]).splitlines()
    assert any(line.startswith("[north]   students: ") for line in err), err
    assert any(line.startswith("[south]   students: ") for line in err), err


def run_in_process(db: Path, env: dict[str, str], **options: object) -> NetworkRun:
    with environment(env), redirect_stderr(io.StringIO()):
        return run_all_instances(db, resources=["sites", "students", "attendance_daily"], **options)  # type: ignore[arg-type]


def test_the_instances_share_one_budget_of_requests_in_flight(
    north: Simulator, south: Simulator, tmp_path: Path
) -> None:
    """Each instance may have 3 requests in flight, both together 4: the budget is reached (so both ran at the
    same time) and never exceeded."""
    env = network_env(north, south)  # north: MAX_CONCURRENCY=3
    env[f"{SOURCE}INSTANCES__SOUTH__MAX_CONCURRENCY"] = "3"
    env[f"{SOURCE}NETWORK_MAX_CONCURRENCY"] = "4"
    run = run_in_process(tmp_path / "w.duckdb", env, build_models_after=False)
    assert not run.failed, [outcome.line() for outcome in run.outcomes]
    assert run.budget.limit == 4
    assert run.budget.max_in_flight == 4


def test_a_budget_below_an_instance_limit_holds_that_instance_below_it(
    north: Simulator, south: Simulator, tmp_path: Path
) -> None:
    env = network_env(north, south)
    env[f"{SOURCE}NETWORK_MAX_CONCURRENCY"] = "2"
    run = run_in_process(tmp_path / "w.duckdb", env, build_models_after=False)
    assert not run.failed, [outcome.line() for outcome in run.outcomes]
    assert run.budget.max_in_flight == 2


def test_an_instance_that_fails_leaves_the_others_loaded(north: Simulator, south: Simulator, tmp_path: Path) -> None:
    """South's keys are rejected by its server: south fails (its run recorded as failed, nothing of it loaded),
    north is loaded in full, and the exit code and the last line name south."""
    env = network_env(north, south)
    env[f"{SOURCE}INSTANCES__SOUTH__CREDENTIALS__CONSUMER_SECRET"] = "not-the-secret"
    result = run_cli(tmp_path, env, "run", "--duckdb", "w.duckdb", "--all-instances", "--skip-models")
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert result.stderr.splitlines()[-1].startswith("illuminate-sync: error: 1 of 2 instances failed: south")
    south_line = next(line for line in result.stdout.splitlines() if line.startswith("south: failed"))
    # raised in a page thread of south's client: it names south's variables, not the single instance's
    assert f"{SOURCE}INSTANCES__SOUTH__CREDENTIALS__" in south_line, south_line
    assert any(line.startswith("north: succeeded") for line in result.stdout.splitlines()), result.stdout
    assert_no_secret(result, north, south)
    db = tmp_path / "w.duckdb"
    for table in DISTRICT_TABLES:
        assert set(loaded_keys(db, table, "illuminate_north")) == expected_keys(north, table), table
    with duckdb.connect(str(db), read_only=True) as con:
        statuses = con.execute("select status from illuminate_south.sync_runs").fetchall()
        south_tables = con.execute(
            "select count(*) from information_schema.tables where table_schema = 'illuminate_south'"
            " and table_name in ('students', 'roster', 'enrollment')"
        ).fetchone()
    assert statuses == [("failed",)]
    assert south_tables is not None and south_tables[0] == 0


# ---------------------------------------------------------------------------------------------------------- bad input
def test_all_instances_without_any_declared_is_one_line(north: Simulator, tmp_path: Path) -> None:
    env = {name: value for name, value in north.env().items()}
    result = run_cli(tmp_path, env, "run", "--duckdb", "w.duckdb", "--all-instances")
    line = one_error_line(result, 1)
    assert "--all-instances: no instance is declared" in line and "[sources.illuminate.instances.<name>]" in line
    assert tree(tmp_path) == {}


def test_two_instances_of_one_api_are_refused(north: Simulator, south: Simulator, tmp_path: Path) -> None:
    env = network_env(north, south)
    env[f"{SOURCE}INSTANCES__SOUTH__BASE_URL"] = north.base_url
    result = run_cli(tmp_path, env, "run", "--duckdb", "w.duckdb", "--all-instances")
    line = one_error_line(result, 1)
    assert "instances north and south have the same base_url" in line, line
    assert tree(tmp_path) == {}


def test_a_wrong_setting_of_one_instance_stops_all_before_anything_is_written(
    north: Simulator, south: Simulator, tmp_path: Path
) -> None:
    env = network_env(north, south)
    env[f"{SOURCE}INSTANCES__SOUTH__PII"] = "scramble"
    result = run_cli(tmp_path, env, "run", "--duckdb", "w.duckdb", "--all-instances")
    line = one_error_line(result, 1)
    assert f"{SOURCE}INSTANCES__SOUTH__PII" in line, line
    assert tree(tmp_path) == {}


def test_a_wrong_network_budget_is_one_line(north: Simulator, south: Simulator, tmp_path: Path) -> None:
    env = network_env(north, south)
    env[f"{SOURCE}NETWORK_MAX_CONCURRENCY"] = "0"
    result = run_cli(tmp_path, env, "run", "--duckdb", "w.duckdb", "--all-instances")
    line = one_error_line(result, 1)
    assert f"{SOURCE}NETWORK_MAX_CONCURRENCY" in line, line
    assert tree(tmp_path) == {}


@pytest.mark.parametrize(
    "extra", [("--instance", "north"), ("--dataset", "x")], ids=["with --instance", "with --dataset"]
)
def test_all_instances_with_one_instance_or_a_dataset_is_a_usage_error(
    north: Simulator, south: Simulator, tmp_path: Path, extra: tuple[str, str]
) -> None:
    result = run_cli(tmp_path, network_env(north, south), "run", "--duckdb", "w.duckdb", "--all-instances", *extra)
    line = one_error_line(result, 2)
    assert "--all-instances" in line and extra[0] in line, line
    assert tree(tmp_path) == {}


# ---------------------------------------------------------------------------------------------------------- PostgreSQL
@pytest.mark.skipif(not postgres_available(), reason="PostgreSQL's server binaries are not installed")
def test_the_instances_load_their_own_datasets_of_postgresql_at_the_same_time(
    north: Simulator, south: Simulator, tmp_path: Path
) -> None:
    """Into a dlt destination each instance has its own warehouse (dataset, lock, models): both land, each exactly
    its own district, with the models built into analytics_<name>."""
    env = network_env(north, south)
    env["HOME"] = str(tmp_path)  # the instances' dlt working directories (~/.illuminate-sync/...) stay in the test's
    with postgres_cluster() as pg:
        pg.create_database("network")
        env["DESTINATION__POSTGRES__CREDENTIALS"] = pg.url("network")
        with environment(env), redirect_stderr(io.StringIO()):
            run = run_all_instances(
                destination="postgres", resources=["sites", "students", "enrollment", "attendance_daily"]
            )
        assert not run.failed, [outcome.line() for outcome in run.outcomes]
        for name, sim in (("north", north), ("south", south)):
            students = {row[0] for row in pg.execute(f"select student_id from illuminate_{name}.students", "network")}
            assert students == {key[0] for key in expected_keys(sim, "students")}, name
            members = pg.execute(f"select count(distinct student_id) from analytics_{name}.dim_students", "network")
            assert members[0][0] == len(students), name
            network = pg.execute(f"select count(*) from analytics.dim_students where instance = '{name}'", "network")
            assert network[0][0] == len(students), name
        assert run.network_models is not None and run.network_models.startswith("built "), run.network_models


def test_the_single_instance_into_an_instance_dataset_is_refused(
    north: Simulator, south: Simulator, tmp_path: Path
) -> None:
    """Two pipelines (the single instance's and north's) writing one dataset would mix their states and rows."""
    env = {**network_env(north, south), **north.env()}
    result = run_cli(tmp_path, env, "run", "--duckdb", "w.duckdb", "--dataset", "illuminate_north")
    line = one_error_line(result, 1)
    assert "--dataset illuminate_north is the dataset of instance north: run --instance north" in line, line
    assert tree(tmp_path) == {}


def test_ctrl_c_stops_every_instance_at_its_next_request(north: Simulator, south: Simulator, tmp_path: Path) -> None:
    """Python cannot interrupt the instances' threads: on Ctrl-C the shared budget refuses their next requests, so
    each run ends promptly, recorded as failed, and the command exits 130."""
    argv = [*illuminate_sync_command(), "run", "--duckdb", "w.duckdb", "--all-instances", "--skip-models"]
    process = subprocess.Popen(
        argv, cwd=tmp_path, env=network_env(north, south), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert process.stderr is not None
    for line in process.stderr:  # both instances are downloading once each has finished a table
        if line.startswith("[south]   ") or line.startswith("[north]   "):
            break
    process.send_signal(signal.SIGINT)
    started = time.monotonic()
    code = process.wait(timeout=60)
    stopped_in = time.monotonic() - started
    rest = process.stderr.read()
    assert code == 130, rest
    assert stopped_in < 20, stopped_in  # a full run of both takes longer; a hung thread would never end
    assert "Traceback" not in rest
    with duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True) as con:
        for name in ("north", "south"):
            runs = con.execute(f"select status, error from illuminate_{name}.sync_runs").fetchall()
            assert runs and runs[0][0] == "failed" and "interrupted" in runs[0][1], (name, runs)
