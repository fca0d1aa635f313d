"""The network schema (`illuminate-sync models --network`): two simulated districts whose ids overlap, declared as
instances through environment variables, synced with their models into one DuckDB file (`run --instance`), then
schema `analytics` built from both: every mart and report holds both instances' rows with a leading `instance`
column, which the keys need (without it, the overlapping ids collide). The same build on the real PostgreSQL server;
bad input is one line."""

from __future__ import annotations

import io
import shutil
from collections.abc import Iterator
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any

import duckdb
import pytest
from postgres_support import copy_raw_tables, postgres_available, postgres_cluster
from sync_support import TODAY, environment, network_env, run_cli, simulated_district, tree
from test_readme import network_statements

from illuminate_sync.pipelines.cli import main
from illuminate_sync.pipelines.models import ModelError, ModelSchemas, ModelSettings
from illuminate_sync.pipelines.network_models import (
    build_network_file,
    network_key_tests,
    network_models,
    test_network_file,
)
from illuminate_sync.pipelines.warehouse import open_warehouse
from illuminate_sync.simulator import Simulator
from illuminate_sync.sources.illuminate.errors import ConfigurationError

INSTANCES = ("north", "south")
RESOURCES = "sites,grade_levels,students,terms,enrollment,attendance_daily,attendance_flags"
"""What rpt_chronic_absenteeism and the dimensions of the overlapping ids need; the other marts build empty."""
RELATIONS = ["settings", *network_models()]
OVERLAPPING = ("dim_sites", "dim_students", "rpt_chronic_absenteeism")
"""Models whose key, without `instance`, is shared by the two districts (both number their sites and students from
the same start)."""


def instance_env(north: Simulator, south: Simulator) -> dict[str, str]:
    env = network_env(north, south)
    env["SOURCES__ILLUMINATE__ACADEMIC_YEARS_BACK"] = "0"
    env["MODELS__TODAY"] = TODAY.isoformat()
    return env


def run_main(*argv: str) -> tuple[int, str]:
    """`illuminate-sync *argv` in this process: (exit code, stderr)."""
    err = io.StringIO()
    with redirect_stdout(io.StringIO()), redirect_stderr(err):
        code = main(list(argv))
    return code, err.getvalue()


@pytest.fixture(scope="module")
def north() -> Iterator[Simulator]:
    with simulated_district(students=20, seed=1) as sim:
        yield sim


@pytest.fixture(scope="module")
def south() -> Iterator[Simulator]:
    with simulated_district(students=20, seed=2) as sim:
        yield sim


@pytest.fixture(scope="module")
def network(north: Simulator, south: Simulator, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Both instances synced with their models into one file, then `models --network --test` on it."""
    db = tmp_path_factory.mktemp("network") / "network.duckdb"
    with environment(instance_env(north, south)):
        for name in INSTANCES:
            code, err = run_main("run", "--duckdb", str(db), "--instance", name, "--resources", RESOURCES)
            assert code == 0, err[-2000:]
        code, err = run_main("models", "--network", "--duckdb", str(db), "--test")
    return {"db": db, "code": code, "err": err}


@pytest.fixture(scope="module")
def con(network: dict[str, Any]) -> Iterator[duckdb.DuckDBPyConnection]:
    """The network file, read-only, for the tests that only read it (one connection: opening one costs ~40 ms)."""
    with duckdb.connect(str(network["db"]), read_only=True) as connection:
        yield connection


def rows(where: Path | duckdb.DuckDBPyConnection, sql: str) -> list[tuple[Any, ...]]:
    """The rows of `sql` on an open connection, or on the file `where` opened read-only."""
    if isinstance(where, duckdb.DuckDBPyConnection):
        return where.execute(sql).fetchall()
    with duckdb.connect(str(where), read_only=True) as connection:
        return connection.execute(sql).fetchall()


def count(where: Path | duckdb.DuckDBPyConnection, sql: str) -> int:
    return int(rows(where, sql)[0][0])


def declared_keys() -> dict[str, list[str]]:
    """Network relation -> its key with `instance`, as the generated tests declare it."""
    unique = [test for test in network_key_tests() if test.kind == "unique"]
    return {test.model: test.description.strip("()").split(", ") for test in unique}


def copy_of(db: Path, directory: Path) -> Path:
    target = directory / "copy.duckdb"
    shutil.copy2(db, target)
    return target


# --------------------------------------------------------------------------------------------------------- DuckDB
def test_the_command_builds_and_tests_the_network_schema(network: dict[str, Any]) -> None:
    assert network["code"] == 0, network["err"][-2000:]
    lines = network["err"].splitlines()
    assert f"built {len(RELATIONS) - 1} network models into analytics from instances north, south in" in lines[-2]
    assert lines[-1] == "model tests: all passed"
    assert "  table analytics.rpt_chronic_absenteeism " in network["err"]


def test_every_network_model_holds_the_rows_of_every_instance(con: duckdb.DuckDBPyConnection) -> None:
    tables = {name for (name,) in rows(con, "select table_name from duckdb_tables() where schema_name = 'analytics'")}
    assert tables == set(RELATIONS), "marts and reports only: no staging, intermediate or views"
    with_rows = 0
    for relation in RELATIONS:
        own = {name: count(con, f"select count(*) from analytics_{name}.{relation}") for name in INSTANCES}
        per_instance = dict(rows(con, f"select instance, count(*) from analytics.{relation} group by instance"))
        assert per_instance == {name: n for name, n in own.items() if n}, relation
        with_rows += all(own.values())
    assert with_rows >= 8, "too few models have rows in both districts to prove anything"


def test_instance_is_the_first_column_then_the_models_own(con: duckdb.DuckDBPyConnection) -> None:
    for relation in RELATIONS:
        columns = rows(
            con,
            "select column_name, data_type from information_schema.columns"
            f" where table_schema = 'analytics' and table_name = '{relation}' order by ordinal_position",
        )
        own = rows(
            con,
            "select column_name, data_type from information_schema.columns"
            f" where table_schema = 'analytics_north' and table_name = '{relation}' order by ordinal_position",
        )
        assert columns == [("instance", "VARCHAR"), *own], relation


def test_the_key_with_instance_holds_and_without_instance_does_not(con: duckdb.DuckDBPyConnection) -> None:
    keys = declared_keys()
    assert set(keys) == set(RELATIONS) and all(key[0] == "instance" for key in keys.values())
    for relation, key in keys.items():
        columns = ", ".join(key)
        duplicates = (
            f"select count(*) from (select {columns} from analytics.{relation} group by all having count(*) > 1)"
        )
        assert count(con, duplicates) == 0, relation
        assert count(con, f"select count(*) from analytics.{relation} where instance is null") == 0, relation
    for relation in OVERLAPPING:
        without = ", ".join(keys[relation][1:])
        shared = f"select count(*) from (select {without} from analytics.{relation} group by all having count(*) > 1)"
        assert count(con, shared) > 0, f"{relation}: the districts share no key, so `instance` proves nothing"


def test_an_instance_rows_equal_its_own_models(con: duckdb.DuckDBPyConnection) -> None:
    chronic = count(con, "select count(*) from analytics.rpt_chronic_absenteeism where instance = 'north'")
    assert chronic > 0
    for relation in RELATIONS:
        for name in INSTANCES:
            network_rows = f"select * exclude (instance) from analytics.{relation} where instance = '{name}'"
            own_rows = f"select * from analytics_{name}.{relation}"
            for first, second in ((network_rows, own_rows), (own_rows, network_rows)):
                assert count(con, f"select count(*) from ({first} except all {second})") == 0, (relation, name)


def test_the_readme_network_queries_compare_the_districts(con: duckdb.DuckDBPyConnection) -> None:
    """The README's examples of the network schema run on it, and the chronic absence one gives both districts."""
    statements = network_statements()
    assert len(statements) == 2
    chronic = rows(con, statements[0])
    assert {row[0] for row in chronic} == set(INSTANCES), chronic
    rows(con, statements[1])  # raises on an unknown table or column (no assessments were synced: no rows)


def test_the_generated_key_tests_fail_on_a_duplicate_key(network: dict[str, Any], tmp_path: Path) -> None:
    db = copy_of(network["db"], tmp_path)
    with duckdb.connect(str(db)) as con:
        con.execute("insert into analytics.dim_students select * from analytics.dim_students limit 1")
        con.execute("update analytics.dim_sites set instance = null where site_id = 1")
    failures = test_network_file(db)
    assert sorted(failures) == [
        "dim_sites: not_null instance: 2 offending rows",
        "dim_sites: unique (instance, site_id): 1 offending rows",  # site 1 of both districts, now both NULL's
        "dim_students: unique (instance, student_id): 1 offending rows",
    ]


def test_an_instance_without_models_is_left_out_and_named(network: dict[str, Any], tmp_path: Path) -> None:
    db = copy_of(network["db"], tmp_path)
    line = open_warehouse(db).build_network_models(["north", "south", "west"])
    assert line.startswith("built ") and "from instances north, south in" in line
    assert line.endswith("; left out (no models yet): west"), line
    line = open_warehouse(db).build_network_models(["south", "west"])
    assert rows(db, "select distinct instance from analytics.dim_students") == [("south",)]


def test_a_failing_build_changes_nothing(network: dict[str, Any], tmp_path: Path) -> None:
    """All-or-nothing: dim_sites is rebuilt before the build meets the missing model, and is rolled back."""
    db = copy_of(network["db"], tmp_path)
    with duckdb.connect(str(db)) as con:
        con.execute("delete from analytics_north.dim_sites")
        con.execute("drop table analytics_south.rpt_sync_tables")
    before = rows(db, "select instance, count(*) from analytics.dim_sites group by all order by all")
    with pytest.raises(ModelError) as error:
        build_network_file(db, INSTANCES, out=io.StringIO())
    assert "analytics_south.rpt_sync_tables does not exist" in str(error.value)
    assert "\n" not in str(error.value)
    assert rows(db, "select instance, count(*) from analytics.dim_sites group by all order by all") == before


def test_the_single_instance_models_in_analytics_are_never_replaced(network: dict[str, Any], tmp_path: Path) -> None:
    db = copy_of(network["db"], tmp_path)
    with duckdb.connect(str(db)) as con:
        con.execute("drop schema analytics cascade")
        con.execute("create schema analytics")
        con.execute("create table analytics.settings as select * from analytics_north.settings")
    with pytest.raises(ModelError) as error:
        build_network_file(db, INSTANCES, out=io.StringIO())
    assert "schema analytics holds the single instance's models" in str(error.value)
    assert rows(db, "select table_name from duckdb_tables() where schema_name = 'analytics'") == [("settings",)]


# ------------------------------------------------------------------------------------------------------ bad input
def one_error_line(result: Any) -> str:
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("illuminate-sync: error: "), result.stderr
    return lines[0]


def test_no_instance_declared_is_one_line(network: dict[str, Any], north: Simulator, tmp_path: Path) -> None:
    copy_of(network["db"], tmp_path)
    env = {name: value for name, value in instance_env(north, north).items() if "__INSTANCES__" not in name}
    before = tree(tmp_path)
    line = one_error_line(run_cli(tmp_path, env, "models", "--network", "--duckdb", "copy.duckdb"))
    assert "no instances are declared" in line and "[sources.illuminate.instances.<name>]" in line, line
    assert tree(tmp_path) == before


def test_instances_never_synced_is_one_line(north: Simulator, south: Simulator, tmp_path: Path) -> None:
    duckdb.connect(str(tmp_path / "empty.duckdb")).close()
    before = tree(tmp_path)
    line = one_error_line(
        run_cli(tmp_path, instance_env(north, south), "models", "--network", "--duckdb", "empty.duckdb", "--test")
    )
    assert "none of the instances north, south has models yet" in line, line
    assert "illuminate-sync run --instance NAME" in line, line
    assert {path: data for path, data in tree(tmp_path).items() if path != ".empty.duckdb.lock"} == before


def test_network_with_dataset_is_one_line(north: Simulator, south: Simulator, tmp_path: Path) -> None:
    duckdb.connect(str(tmp_path / "w.duckdb")).close()
    argv = ("models", "--network", "--duckdb", "w.duckdb", "--dataset", "illuminate_north")
    line = one_error_line(run_cli(tmp_path, instance_env(north, south), *argv))
    assert "--network with --dataset illuminate_north" in line, line


def test_a_delta_lake_refuses_the_network_in_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("deltalake")
    monkeypatch.setenv("DESTINATION__FILESYSTEM__BUCKET_URL", str(tmp_path))
    lake = open_warehouse(None, "delta")
    assert not lake.builds_network_models
    with pytest.raises(ConfigurationError) as error:
        lake.build_network_models(INSTANCES)
    assert "not on Delta lake" in str(error.value) and "\n" not in str(error.value)


# ----------------------------------------------------------------------------------------------------- PostgreSQL
@pytest.mark.skipif(not postgres_available(), reason="PostgreSQL's server binaries are not installed")
def test_postgresql_builds_the_same_network_schema(
    network: dict[str, Any], north: Simulator, south: Simulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each instance's raw tables copied from the DuckDB file into PostgreSQL by dlt, its models built there, then
    the network: built through the warehouse and again by the command (a rebuild), tested, equal to DuckDB's."""
    pytest.importorskip("psycopg2")
    from illuminate_sync.pipelines.models_postgres import build_models_postgres

    db = network["db"]
    with postgres_cluster() as pg:
        url = pg.create_database("warehouse")
        monkeypatch.setenv("DESTINATION__POSTGRES__CREDENTIALS", url)
        settings = ModelSettings(today=TODAY)
        for name in INSTANCES:
            pipeline = copy_raw_tables(db, url, tmp_path / "copy", schema=f"illuminate_{name}")
            with pipeline.sql_client() as client:
                schemas = ModelSchemas(source=f"illuminate_{name}", model=f"analytics_{name}")
                build_models_postgres(client.native_connection, settings, out=io.StringIO(), schemas=schemas)
        warehouse = open_warehouse(None, "postgres", data_dir=tmp_path / "dlt")
        assert warehouse.builds_network_models
        line = warehouse.build_network_models([*INSTANCES, "west"])
        assert "from instances north, south in" in line and line.endswith("left out (no models yet): west"), line
        with environment(instance_env(north, south)):
            code, err = run_main("models", "--network", "--destination", "postgres", "--test")
        assert code == 0, err[-2000:]
        assert err.splitlines()[-1] == "model tests: all passed"
        assert warehouse.test_network_models() == []
        for relation in RELATIONS:
            got = pg.execute(f"select instance, count(*) from analytics.{relation} group by 1 order by 1", "warehouse")
            want = rows(db, f"select instance, count(*) from analytics.{relation} group by all order by all")
            assert got == want, relation
            columns = pg.execute(
                "select column_name from information_schema.columns where table_schema = 'analytics'"
                f" and table_name = '{relation}' order by ordinal_position",
                "warehouse",
            )
            assert columns[0] == ("instance",), relation
        chronic = "select instance, academic_year, site_id, grade_level_id, students, chronically_absent"
        chronic += " from analytics.rpt_chronic_absenteeism"
        got = sorted(pg.execute(chronic, "warehouse"), key=repr)
        assert got and got == sorted(rows(db, chronic), key=repr)
