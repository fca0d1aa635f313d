"""Named instances (`[sources.illuminate.instances.<name>]`, `--instance NAME`): two simulated districts whose ids
overlap, declared through environment variables only, synced one after the other into one DuckDB file. Each raw
schema holds exactly its own district, nothing crosses over, the single instance's schema is never created, each
instance keeps its own cursors; a wrong instance is one line and nothing is written."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import duckdb
import pytest
from sync_support import (
    SOURCE,
    TODAY,
    assert_no_secret,
    environment,
    expected_keys,
    loaded_keys,
    network_env,
    one_error_line,
    run_cli,
    simulated_district,
    table_snapshot,
    tree,
)

from illuminate_sync.pipelines.cli import main
from illuminate_sync.pipelines.duckdb_warehouse import default_data_dir
from illuminate_sync.simulator import Simulator
from illuminate_sync.sources.illuminate.catalog import load_catalog

ENABLED_TABLES = [table for table, endpoint in load_catalog().items() if endpoint.enabled]
DISTRICT_TABLES = ("students", "enrollment", "roster", "attendance_daily", "assessment_aggregate_student_responses")


def run_instance(db: Path, name: str, *argv: str) -> tuple[int, str]:
    """`illuminate-sync run --duckdb db --instance name --skip-models` in this process: (exit code, stdout)."""
    out = io.StringIO()
    with redirect_stdout(out), redirect_stderr(io.StringIO()):
        code = main(["run", "--duckdb", str(db), "--instance", name, "--skip-models", *argv])
    return code, out.getvalue()


def requests_of(summary: str) -> int:
    line = next(line for line in summary.splitlines() if " requests (" in line)
    return int(line.split()[0].replace(",", ""))


@pytest.fixture(scope="module")
def north() -> Iterator[Simulator]:
    with simulated_district(students=30, seed=1) as sim:
        yield sim


@pytest.fixture(scope="module")
def south() -> Iterator[Simulator]:
    with simulated_district(students=30, seed=2) as sim:
        yield sim


@pytest.fixture(scope="module")
def network(north: Simulator, south: Simulator, tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """One DuckDB file: north synced, its tables' snapshot taken, then south synced, then north again."""
    db = tmp_path_factory.mktemp("network") / "network.duckdb"
    with environment(network_env(north, south)):
        first_code, first = run_instance(db, "north")
        north_after_its_sync = table_snapshot(db, schema="illuminate_north")
        south_code, _ = run_instance(db, "south")
        north_after_south = table_snapshot(db, schema="illuminate_north")
        rerun_code, rerun = run_instance(db, "north")
    assert (first_code, south_code, rerun_code) == (0, 0, 0)
    return {
        "db": db,
        "north_first": first,
        "north_rerun": rerun,
        "north_after_its_sync": north_after_its_sync,
        "north_after_south": north_after_south,
    }


def test_the_districts_overlap_in_ids_but_not_in_data(north: Simulator, south: Simulator) -> None:
    """Otherwise the isolation tests below would prove little."""
    north_students, south_students = expected_keys(north, "students"), expected_keys(south, "students")
    assert north_students & south_students, "the two districts share no student id"
    assert expected_keys(north, "roster") != expected_keys(south, "roster")


@pytest.mark.parametrize("table", ENABLED_TABLES)
def test_each_instance_schema_holds_exactly_its_own_district(
    north: Simulator, south: Simulator, network: dict[str, object], table: str
) -> None:
    db = network["db"]
    assert isinstance(db, Path)
    for schema, sim in (("illuminate_north", north), ("illuminate_south", south)):
        loaded = loaded_keys(db, table, schema)
        assert len(loaded) == len(set(loaded)), f"{schema}.{table} has duplicate natural keys"
        assert set(loaded) == expected_keys(sim, table), f"{schema}.{table}"


def test_the_instances_are_not_trivially_empty(network: dict[str, object]) -> None:
    db = network["db"]
    assert isinstance(db, Path)
    for schema in ("illuminate_north", "illuminate_south"):
        for table in DISTRICT_TABLES:
            assert loaded_keys(db, table, schema), f"{schema}.{table}"


def test_syncing_one_instance_leaves_the_other_untouched(network: dict[str, object]) -> None:
    assert network["north_after_its_sync"]
    assert network["north_after_south"] == network["north_after_its_sync"]


def test_the_single_instance_schema_and_pipeline_are_never_created(network: dict[str, object]) -> None:
    db = network["db"]
    assert isinstance(db, Path)
    with duckdb.connect(str(db), read_only=True) as con:
        schemas = {row[0] for row in con.execute("select schema_name from information_schema.schemata").fetchall()}
    assert {"illuminate_north", "illuminate_south"} <= schemas
    assert not schemas & {"illuminate", "analytics", "analytics_north", "analytics_south"}  # models were skipped
    for name in ("north", "south"):  # each dataset's dlt working directory holds its instance's pipeline
        pipelines = {path.name for path in default_data_dir(db, f"illuminate_{name}").iterdir()}
        assert pipelines == {f"illuminate_sync_{name}"}
    assert not default_data_dir(db).exists()


def test_each_instance_keeps_its_own_run_history(network: dict[str, object]) -> None:
    db = network["db"]
    assert isinstance(db, Path)
    with duckdb.connect(str(db), read_only=True) as con:
        runs = {
            schema: con.execute(f"select count(*) from {schema}.sync_runs").fetchone()[0]  # type: ignore[index]
            for schema in ("illuminate_north", "illuminate_south")
        }
    assert runs == {"illuminate_north": 2, "illuminate_south": 1}


def test_a_rerun_of_an_instance_follows_its_own_cursors(network: dict[str, object]) -> None:
    first, rerun = network["north_first"], network["north_rerun"]
    assert isinstance(first, str) and isinstance(rerun, str)
    assert requests_of(rerun) < requests_of(first) * 0.5, (requests_of(first), requests_of(rerun))


# ---------------------------------------------------------------------------------------------------------- bad input
def test_an_unknown_instance_lists_the_declared_ones(north: Simulator, south: Simulator, tmp_path: Path) -> None:
    before = tree(tmp_path)
    result = run_cli(tmp_path, network_env(north, south), "run", "--duckdb", "w.duckdb", "--instance", "west")
    line = one_error_line(result, 1)
    assert "west" in line and "declared: north, south" in line, line
    assert tree(tmp_path) == before


def test_an_instance_without_credentials_names_the_variables_to_set(
    north: Simulator, south: Simulator, tmp_path: Path
) -> None:
    env = network_env(north, south)
    env[f"{SOURCE}INSTANCES__EAST__BASE_URL"] = north.base_url
    # the single instance's credentials are never borrowed by a named instance
    env.update(
        {name: value for name, value in north.env().items() if "CREDENTIALS__" in name and "CLIENT_" not in name}
    )
    before = tree(tmp_path)
    result = run_cli(tmp_path, env, "run", "--duckdb", "w.duckdb", "--instance", "east", "--skip-models")
    line = one_error_line(result, 1)
    for field in ("CONSUMER_KEY", "CONSUMER_SECRET", "TOKEN", "TOKEN_SECRET", "CLIENT_ID", "CLIENT_SECRET"):
        assert f"{SOURCE}INSTANCES__EAST__CREDENTIALS__{field}" in line, line
    assert "[sources.illuminate.instances.east.credentials]" in line
    assert_no_secret(result, north, south)
    assert tree(tmp_path) == before


def test_a_partial_set_of_instance_credentials_names_the_missing_variable(
    north: Simulator, south: Simulator, tmp_path: Path
) -> None:
    env = network_env(north, south)
    del env[f"{SOURCE}INSTANCES__SOUTH__CREDENTIALS__TOKEN_SECRET"]
    result = run_cli(tmp_path, env, "run", "--duckdb", "w.duckdb", "--instance", "south", "--skip-models")
    line = one_error_line(result, 1)
    assert f"{SOURCE}INSTANCES__SOUTH__CREDENTIALS__TOKEN_SECRET is not set" in line, line
    assert_no_secret(result, north, south)
    assert tree(tmp_path) == {}


def test_a_wrong_instance_setting_is_named_by_its_instance_variable(
    north: Simulator, south: Simulator, tmp_path: Path
) -> None:
    env = network_env(north, south)
    env[f"{SOURCE}INSTANCES__NORTH__MAX_CONCURRENCY"] = "eight"
    result = run_cli(tmp_path, env, "run", "--duckdb", "w.duckdb", "--instance", "north", "--skip-models")
    line = one_error_line(result, 1)
    assert f"{SOURCE}INSTANCES__NORTH__MAX_CONCURRENCY: 'eight' is not" in line, line
    assert tree(tmp_path) == {}


@pytest.mark.parametrize("name", ["North", "north-east", "illuminate.north", "", "x" * 41])
def test_an_instance_name_that_is_not_a_schema_name_is_a_usage_error(
    north: Simulator, south: Simulator, tmp_path: Path, name: str
) -> None:
    result = run_cli(tmp_path, network_env(north, south), "run", "--duckdb", "w.duckdb", "--instance", name)
    line = one_error_line(result, 2)
    assert "--instance" in line and "lowercase letters, digits or underscores" in line, line
    assert tree(tmp_path) == {}


def test_instance_and_dataset_together_are_a_usage_error(north: Simulator, south: Simulator, tmp_path: Path) -> None:
    argv = ("run", "--destination", "postgres", "--dataset", "x", "--instance", "north")
    result = run_cli(tmp_path, network_env(north, south), *argv)
    line = one_error_line(result, 2)
    assert "--instance" in line and "--dataset" in line, line
    assert tree(tmp_path) == {}


def test_a_second_instance_into_a_busy_duckdb_file_fails_at_once(
    north: Simulator, south: Simulator, tmp_path: Path
) -> None:
    """DuckDB lets one process write a file: instances of one file take turns, and the message says why."""
    from illuminate_sync.pipelines.duckdb_warehouse import warehouse_lock

    db = tmp_path / "w.duckdb"
    with warehouse_lock(db):  # another run (of any instance) holds the file
        result = run_cli(
            tmp_path, network_env(north, south), "run", "--duckdb", "w.duckdb", "--instance", "south", "--skip-models"
        )
    assert result.returncode == 1, result.stderr
    *progress, line = result.stderr.splitlines()  # the run's "syncing ..." line comes before it takes the lock
    assert [text for text in progress if not text.startswith("syncing instance south")] == [], result.stderr
    assert line.startswith("illuminate-sync: error: "), line
    assert "another illuminate-sync run is using" in line and "one writing process per file" in line, line
    assert not db.exists()


def test_an_instance_declared_in_the_settings_files_syncs_with_its_own_overrides(
    north: Simulator, tmp_path: Path
) -> None:
    """The same sections in `.dlt/config.toml` and `.dlt/secrets.toml` (a secret override included), resolved by dlt
    in an installed user's run."""
    consumer_key, consumer_secret, token, token_secret = north.oauth1
    settings = tmp_path / ".dlt"
    settings.mkdir()
    (settings / "config.toml").write_text(
        f'[sources.illuminate]\ntoday = "{TODAY.isoformat()}"\n\n'
        f'[sources.illuminate.instances.west]\nbase_url = "{north.base_url}"\npii = "hash"\nmax_concurrency = 2\n'
    )
    (settings / "secrets.toml").write_text(
        '[sources.illuminate.instances.west]\npii_hash_key = "a-key-for-west-only"\n\n'
        "[sources.illuminate.instances.west.credentials]\n"
        f'consumer_key = "{consumer_key}"\nconsumer_secret = "{consumer_secret}"\n'
        f'token = "{token}"\ntoken_secret = "{token_secret}"\n'
    )
    env = {name: value for name, value in os.environ.items() if not name.startswith(SOURCE)}
    argv = ("run", "--duckdb", "w.duckdb", "--instance", "west", "--skip-models", "--resources", "students")
    result = run_cli(tmp_path, env, *argv)
    assert result.returncode == 0, result.stderr
    assert "a-key-for-west-only" not in result.stdout + result.stderr
    assert_no_secret(result, north)
    loaded = loaded_keys(tmp_path / "w.duckdb", "students", "illuminate_west")
    assert set(loaded) == expected_keys(north, "students")
    with duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True) as con:
        last_names = {row[0] for row in con.execute("select last_name from illuminate_west.students").fetchall()}
    assert not last_names & {record["last_name"] for record in north.query("Students", {})}, "pii=hash not applied"


def test_an_instance_run_builds_its_models_into_its_own_schema(
    north: Simulator, south: Simulator, tmp_path: Path
) -> None:
    db = tmp_path / "south.duckdb"
    with environment(network_env(north, south)), redirect_stdout(io.StringIO()), redirect_stderr(io.StringIO()):
        code = main(["run", "--duckdb", str(db), "--instance", "south"])
    assert code == 0
    with duckdb.connect(str(db), read_only=True) as con:
        schemas = {row[0] for row in con.execute("select schema_name from information_schema.schemata").fetchall()}
        students = con.execute("select count(*) from analytics_south.dim_students").fetchone()
    assert {"illuminate_south", "analytics_south"} <= schemas
    assert not schemas & {"illuminate", "analytics"}
    assert students is not None and students[0] > 0
