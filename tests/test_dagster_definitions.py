"""The Dagster definitions (`pipelines.dagster_definitions`), materialized in-process with Dagster's own
`materialize` against two simulated districts declared as instances through environment variables, into a DuckDB
file: each instance's raw and analytics schemas hold its own district, the materializations carry the run's counts
as the warehouse recorded them, a failing instance fails alone and without retries, a transient failure is retried,
the schedule follows the settings, a wrong setting is one line, and `dagster definitions validate -m` loads the
module as `dagster dev -m` does."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import pytest
from sync_support import TODAY, environment, expected_keys, expected_records, loaded_keys, simulated_district

from illuminate_sync.pipelines.dagster_definitions import (
    DUCKDB_FILE_TAG,
    JOB_NAME,
    SCHEDULE_NAME,
    build_definitions,
    duckdb_pool,
)
from illuminate_sync.pipelines.dagster_settings import DEFAULT_SCHEDULE, DagsterSettings
from illuminate_sync.pipelines.duckdb_warehouse import warehouse_lock
from illuminate_sync.simulator import Simulator
from illuminate_sync.sources.illuminate.errors import ConfigurationError

SOURCE = "SOURCES__ILLUMINATE__"
RESOURCES = "sites,grade_levels,students,enrollment"
"""The tables each sync fetches here: enough for the students' ids in both schemas, and quick."""
MODULE = "illuminate_sync.pipelines.dagster_definitions"
ASSETS = ("illuminate_north", "analytics_north", "illuminate_south", "analytics_south", "analytics")


def instance_variables(name: str, sim: Simulator) -> dict[str, str]:
    """`sim` declared as instance `name` (OAuth1)."""
    prefix = f"{SOURCE}INSTANCES__{name.upper()}__"
    return {
        prefix + variable.removeprefix(SOURCE): value
        for variable, value in sim.env().items()
        if "CLIENT_" not in variable
    }


def dagster_env(db: Path, north: Simulator, south: Simulator, **dagster: str) -> dict[str, str]:
    """Both districts as instances loading `db`, with `DAGSTER__<KEY>` settings (no retry wait unless given)."""
    env = {name: value for name, value in os.environ.items() if not name.startswith((SOURCE, "DAGSTER__", "MODELS__"))}
    env.update({f"{SOURCE}TODAY": TODAY.isoformat(), "MODELS__TODAY": TODAY.isoformat()})
    env.update(instance_variables("north", north))
    env.update(instance_variables("south", south))
    env.update({"DAGSTER__DUCKDB_PATH": str(db), "DAGSTER__RESOURCES": RESOURCES, "DAGSTER__RETRY_DELAY_SECONDS": "0"})
    env.update({f"DAGSTER__{key.upper()}": value for key, value in dagster.items()})
    return env


def materialize_all(
    env: dict[str, str], selection: list[str] | None = None, instance: dg.DagsterInstance | None = None
) -> dg.ExecuteInProcessResult:
    """The definitions built from `env` and their assets (or `selection`) materialized in this process."""
    with environment(env):
        defs = build_definitions()
        assets = list(defs.assets or [])
        return dg.materialize(assets, raise_on_error=False, selection=selection, instance=instance)  # type: ignore[arg-type]


def materializations(result: dg.ExecuteInProcessResult) -> dict[str, dict[str, Any]]:
    """The metadata of each materialized asset, by asset key, as plain values."""
    found = {}
    for event in result.get_asset_materialization_events():
        materialization = event.step_materialization_data.materialization
        found[materialization.asset_key.to_user_string()] = {
            key: value.value for key, value in materialization.metadata.items()
        }
    return found


def retried_steps(result: dg.ExecuteInProcessResult) -> list[str]:
    return [
        str(event.step_key) for event in result.all_events if event.event_type == dg.DagsterEventType.STEP_UP_FOR_RETRY
    ]


def failure_descriptions(result: dg.ExecuteInProcessResult) -> dict[str, str]:
    failures = {}
    for event in result.get_step_failure_events():
        data = event.step_failure_data
        failures[str(event.step_key)] = (
            data.user_failure_data.description if data.user_failure_data else str(data.error)
        )
    return failures


def rows(db: Path, query: str) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(query).fetchall()


@pytest.fixture(scope="module")
def north() -> Iterator[Simulator]:
    with simulated_district(students=20, seed=1) as sim:
        yield sim


@pytest.fixture(scope="module")
def south() -> Iterator[Simulator]:
    with simulated_district(students=25, seed=2) as sim:
        yield sim


@pytest.fixture(scope="module")
def network(north: Simulator, south: Simulator, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Every asset of the definitions materialized once into one DuckDB file."""
    db = tmp_path_factory.mktemp("dagster") / "network.duckdb"
    result = materialize_all(dagster_env(db, north, south))
    assert result.success, failure_descriptions(result)
    return {"db": db, "result": result, "metadata": materializations(result)}


# -------------------------------------------------------------------------------------------------- materialization
def test_every_asset_of_both_instances_materializes(network: dict[str, Any]) -> None:
    assert sorted(network["metadata"]) == sorted(ASSETS)
    assert retried_steps(network["result"]) == []


def test_each_instance_schema_holds_its_own_district(
    network: dict[str, Any], north: Simulator, south: Simulator
) -> None:
    db = network["db"]
    assert students_of(north) != students_of(south), "the districts must differ for this test to mean anything"
    for name, sim in (("north", north), ("south", south)):
        for table in ("students", "enrollment"):
            assert sorted(loaded_keys(db, table, f"illuminate_{name}")) == sorted(expected_keys(sim, table)), name
        modelled = rows(db, f"select student_id, last_name from analytics_{name}.dim_students")
        assert set(modelled) == students_of(sim), name


def students_of(sim: Simulator) -> set[tuple[int, str]]:
    """(student id, last name) of every student the district's API holds for the synced years."""
    return {(int(record["student_id"]), record["last_name"]) for record in expected_records(sim, "students")}


def test_the_network_asset_holds_both_instances_models(network: dict[str, Any]) -> None:
    db = network["db"]
    by_instance = dict(rows(db, "select instance, count(*) from analytics.dim_students group by 1"))
    assert by_instance == {
        name: rows(db, f"select count(*) from analytics_{name}.dim_students")[0][0] for name in ("north", "south")
    }
    assert network["metadata"]["analytics"]["models"].startswith("built ")


def test_no_raw_schema_of_the_single_instance_is_created(network: dict[str, Any]) -> None:
    """`analytics` is the network's (every table with an `instance` column), `illuminate` is never created."""
    schemas = {row[0] for row in rows(network["db"], "select schema_name from information_schema.schemata")}
    assert {"illuminate_north", "illuminate_south", "analytics_north", "analytics_south", "analytics"} <= schemas
    assert "illuminate" not in schemas
    without_instance = rows(
        network["db"],
        "select table_name from information_schema.tables t where table_schema = 'analytics' and not exists (select 1"
        " from information_schema.columns c where c.table_schema = 'analytics' and c.table_name = t.table_name"
        " and c.column_name = 'instance')",
    )
    assert without_instance == []


@pytest.mark.parametrize("name", ["north", "south"])
def test_the_raw_materialization_carries_the_runs_counts_as_the_warehouse_recorded_them(
    network: dict[str, Any], name: str
) -> None:
    db, metadata = network["db"], network["metadata"][f"illuminate_{name}"]
    ((requests, retries, written, seconds),) = rows(
        db, f"select requests, retries, rows_written, seconds from illuminate_{name}.sync_runs"
    )
    assert requests > 0 and written > 0
    assert (metadata["requests"], metadata["retries"], metadata["rows_written"]) == (requests, retries, written)
    assert metadata["duration_seconds"] > 0 and abs(metadata["duration_seconds"] - seconds) < 0.5
    counts = {record.data["table"]: record.data["rows"] for record in metadata["tables"].records}
    for table in RESOURCES.split(","):
        ((count,),) = rows(db, f"select count(*) from illuminate_{name}.{table}")
        assert counts[table] == count, table
    assert metadata["rows"] == metadata["dagster/row_count"] == sum(counts.values())
    assert metadata["dataset"] == f"illuminate_{name}"


def test_the_models_materialization_says_what_was_built(network: dict[str, Any]) -> None:
    for name in ("north", "south"):
        metadata = network["metadata"][f"analytics_{name}"]
        assert metadata["models"].startswith("built ") and f"into analytics_{name}" in metadata["models"]
        assert metadata["duration_seconds"] > 0


def test_no_secret_reaches_the_run_s_events(network: dict[str, Any], north: Simulator, south: Simulator) -> None:
    text = "\n".join(str(event) for event in network["result"].all_events)
    for sim in (north, south):
        for secret in (sim.oauth1[1], sim.oauth1[3]):
            assert secret not in text


# ---------------------------------------------------------------------------------------------------------- failures
def test_an_instance_with_wrong_credentials_fails_alone_and_is_not_retried(
    north: Simulator, south: Simulator, tmp_path: Path
) -> None:
    env = dagster_env(tmp_path / "w.duckdb", north, south, retries="2", retry_delay_seconds="30")
    env[f"{SOURCE}INSTANCES__SOUTH__CREDENTIALS__TOKEN_SECRET"] = "not-the-secret"
    result = materialize_all(env)
    assert not result.success
    assert sorted(materializations(result)) == ["analytics_north", "illuminate_north"]
    failures = failure_descriptions(result)
    assert list(failures) == ["illuminate_south"], failures
    line = failures["illuminate_south"]
    assert len(line.splitlines()) == 1 and "not-the-secret" not in line and south.oauth1[3] not in line, line
    assert retried_steps(result) == [], "a refused credential is not retried"


def test_a_transient_failure_is_retried(north: Simulator, south: Simulator, tmp_path: Path) -> None:
    """Another run holds the file when the asset starts (the sync's lock refuses it with one line) and ends once the
    first attempt has failed: the retry loads."""
    db = tmp_path / "w.duckdb"
    env = dagster_env(db, north, south, retries="2", retry_delay_seconds="3")
    instance = dg.DagsterInstance.ephemeral()
    outcome: dict[str, dg.ExecuteInProcessResult] = {}
    with ExitStack() as other_run:
        other_run.enter_context(warehouse_lock(db))
        runner = threading.Thread(
            target=lambda: outcome.update(result=materialize_all(env, ["illuminate_north"], instance)), daemon=True
        )
        runner.start()
        deadline = time.monotonic() + 60
        while not retry_requested(instance) and runner.is_alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert retry_requested(instance), "the first attempt did not ask for a retry"
    runner.join(timeout=120)
    result = outcome["result"]
    assert result.success, failure_descriptions(result)
    assert retried_steps(result) == ["illuminate_north"]
    assert sorted(materializations(result)) == ["illuminate_north"]
    ((status, requests),) = rows(db, "select status, requests from illuminate_north.sync_runs")
    assert (status, requests) == ("succeeded", materializations(result)["illuminate_north"]["requests"])


def retry_requested(instance: dg.DagsterInstance) -> bool:
    return any(
        instance.all_logs(record.dagster_run.run_id, of_type=dg.DagsterEventType.STEP_UP_FOR_RETRY)
        for record in instance.get_run_records()
    )


# ------------------------------------------------------------------------------------------------ schedule and job
def test_the_schedule_runs_the_job_of_every_asset_on_the_configured_cron(
    north: Simulator, south: Simulator, tmp_path: Path
) -> None:
    env = dagster_env(tmp_path / "w.duckdb", north, south, schedule="30 3 * * 1-5", timezone="America/Chicago")
    with environment(env):
        defs = build_definitions()
    schedule = defs.resolve_schedule_def(SCHEDULE_NAME)
    assert (schedule.cron_schedule, schedule.execution_timezone) == ("30 3 * * 1-5", "America/Chicago")
    assert schedule.job_name == JOB_NAME
    job = defs.resolve_job_def(JOB_NAME)
    assert {key.to_user_string() for key in job.asset_layer.executable_asset_keys} == set(ASSETS)


def test_the_default_schedule_is_nightly(north: Simulator, south: Simulator, tmp_path: Path) -> None:
    with environment(dagster_env(tmp_path / "w.duckdb", north, south)):
        defs = build_definitions()
    schedule = defs.resolve_schedule_def(SCHEDULE_NAME)
    assert (schedule.cron_schedule, schedule.execution_timezone) == (DEFAULT_SCHEDULE, "UTC") == ("0 2 * * *", "UTC")


def test_every_asset_of_one_duckdb_file_is_in_the_file_s_pool(
    north: Simulator, south: Simulator, tmp_path: Path
) -> None:
    """Across runs, the pool (its limit set to 1 in the Dagster instance) keeps a second writer of the file out."""
    with environment(dagster_env(tmp_path / "w.duckdb", north, south)):
        defs = build_definitions()
        settings = DagsterSettings.resolve()
    assert duckdb_pool(settings) == "illuminate_sync_w_duckdb"
    for asset in defs.assets or []:
        assert isinstance(asset, dg.AssetsDefinition)
        assert (asset.op.pool, asset.op.tags[DUCKDB_FILE_TAG]) == ("illuminate_sync_w_duckdb", "w.duckdb")


def test_the_nightly_job_s_processes_take_turns_on_one_duckdb_file(
    north: Simulator, south: Simulator, tmp_path: Path
) -> None:
    """`dagster job execute -m MODULE` (the module as `dagster dev -m` loads it, a persistent Dagster instance, the
    multiprocess executor: each step in its own process) with no retries: both instances' syncs start at once unless
    the executor's limit on the file's tag makes them take turns, and then the second is refused by the file's
    lock."""
    db = tmp_path / "w.duckdb"
    env = {**dagster_env(db, north, south, retries="0"), "DAGSTER_HOME": str(tmp_path)}
    command = [str(Path(sys.executable).parent / "dagster"), "job", "execute", "-m", MODULE, "-j", JOB_NAME]
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    output = result.stdout + result.stderr
    assert result.returncode == 0 and "RUN_SUCCESS" in output, output[-3000:]
    assert "STEP_FAILURE" not in output, output[-3000:]
    for name in ("north", "south"):
        assert rows(db, f"select status from illuminate_{name}.sync_runs") == [("succeeded",)]
        assert rows(db, f"select count(*) > 0 from analytics_{name}.dim_students") == [(True,)]


def test_on_a_destination_the_instances_run_side_by_side(north: Simulator, south: Simulator, tmp_path: Path) -> None:
    env = dagster_env(tmp_path / "w.duckdb", north, south)
    del env["DAGSTER__DUCKDB_PATH"]
    env["DAGSTER__DESTINATION"] = "postgres"
    with environment(env):
        defs = build_definitions()
    for asset in defs.assets or []:
        assert isinstance(asset, dg.AssetsDefinition)
        assert asset.op.pool is None and DUCKDB_FILE_TAG not in asset.op.tags
    assert defs.resolve_job_def(JOB_NAME).executor_def.name == "multiprocess"


# ------------------------------------------------------------------------------------------------------ bad settings
BAD_SETTINGS = [
    ({"DAGSTER__RETRIES": "two"}, "DAGSTER__RETRIES: 'two' is not a whole number of retries >= 0"),
    ({"DAGSTER__RETRIES": "-1"}, "DAGSTER__RETRIES: '-1' is not"),
    ({"DAGSTER__RETRY_DELAY_SECONDS": "soon"}, "DAGSTER__RETRY_DELAY_SECONDS: 'soon' is not a number of seconds"),
    ({"DAGSTER__SCHEDULE": "every night"}, "DAGSTER__SCHEDULE: 'every night' is not a cron expression"),
    ({"DAGSTER__TIMEZONE": "Pacific Time"}, "DAGSTER__TIMEZONE: 'Pacific Time' is not a time zone"),
    ({"DAGSTER__RESOURCES": "studnets"}, "DAGSTER__RESOURCES: unknown resource studnets: valid names are"),
    ({"DAGSTER__DUCKDB_PATH": ""}, "DAGSTER__DUCKDB_PATH or DAGSTER__DESTINATION: neither is set"),
    ({"DAGSTER__DESTINATION": "postgres"}, "DAGSTER__DUCKDB_PATH or DAGSTER__DESTINATION: both are set"),
]


@pytest.mark.parametrize(("settings", "expected"), BAD_SETTINGS, ids=[expected[:30] for _, expected in BAD_SETTINGS])
def test_a_wrong_setting_is_one_line_naming_it(
    north: Simulator, south: Simulator, tmp_path: Path, settings: dict[str, str], expected: str
) -> None:
    env = {**dagster_env(tmp_path / "w.duckdb", north, south), **settings}
    with environment(env), pytest.raises(ConfigurationError) as raised:
        build_definitions()
    line = str(raised.value)
    assert line.startswith(expected) and len(line.splitlines()) == 1, line
    assert raised.value.__cause__ is None and (raised.value.__context__ is None or raised.value.__suppress_context__)
    assert tree(tmp_path) == [], "nothing is written while the definitions load"


def test_no_declared_instance_is_one_line(north: Simulator, south: Simulator, tmp_path: Path) -> None:
    env = {name: value for name, value in dagster_env(tmp_path / "w.duckdb", north, south).items()}
    env = {name: value for name, value in env.items() if not name.startswith(f"{SOURCE}INSTANCES__")}
    with environment(env), pytest.raises(ConfigurationError, match=r"^no instance is declared: .*INSTANCES__"):
        build_definitions()


def tree(directory: Path) -> list[str]:
    return sorted(str(path.relative_to(directory)) for path in directory.rglob("*"))


# --------------------------------------------------------------------------------------------- dagster's own loader
def validate(env: dict[str, str], workdir: Path) -> subprocess.CompletedProcess[str]:
    """`dagster definitions validate -m MODULE`: the loader `dagster dev -m MODULE` uses, in its own process."""
    dagster = Path(sys.executable).parent / "dagster"
    env = {**env, "DAGSTER_HOME": str(workdir)}
    return subprocess.run(
        [str(dagster), "definitions", "validate", "-m", MODULE],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_dagster_shows_a_wrong_setting_as_its_one_line(north: Simulator, south: Simulator, tmp_path: Path) -> None:
    env = {**dagster_env(tmp_path / "w.duckdb", north, south), "DAGSTER__RETRIES": "two"}
    result = validate(env, tmp_path)
    assert result.returncode != 0, result.stderr
    output = result.stdout + result.stderr
    lines = [line for line in output.splitlines() if "DAGSTER__RETRIES" in line]
    assert lines == [
        "illuminate_sync.sources.illuminate.errors.ConfigurationError: DAGSTER__RETRIES: 'two' is not a whole"
        " number of retries >= 0"
    ], output


def test_the_rest_of_the_project_does_not_import_dagster() -> None:
    """Dagster is an extra: the CLI, the sync and the Dagster settings import without it."""
    code = (
        "import sys\n"
        "import illuminate_sync.pipelines.dagster_settings, illuminate_sync.pipelines.sync\n"
        "import illuminate_sync.pipelines.cli as cli\n"
        "cli.build_parser()\n"
        "print(sorted(name for name in sys.modules if name.split('.')[0] == 'dagster'))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
