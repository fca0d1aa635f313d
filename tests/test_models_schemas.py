"""The models built for any pair of schemas: raw tables in `illuminate_north`, models in `analytics_north`.

One small district (40 students) is synced twice from one simulator: into the default schemas of one DuckDB file and
into dataset `illuminate_north` of another, each with its models. The north marts must equal the default ones, the
north file must hold nothing in `illuminate` / `analytics`, and every statement the build runs must name the north
schemas only (the model files keep naming `illuminate.` and `analytics.`: the runner renames them).
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest
from destination_support import differences, duckdb_tables, postgres_tables
from postgres_support import postgres_available, postgres_cluster
from sync_support import RUN_HISTORY, TODAY, sync

from illuminate_sync.pipelines.cli import build_dashboard_of, main
from illuminate_sync.pipelines.dashboard import DashboardSettings
from illuminate_sync.pipelines.dashboard.queries import Marts
from illuminate_sync.pipelines.models import (
    DEFAULT_SCHEMAS,
    ModelSchemas,
    declared_sources,
    discover_models,
    load_macros,
    load_model_tests,
    rename_schemas,
    resolve_sources,
)
from illuminate_sync.pipelines.models_postgres import helper_functions, postgres_database
from illuminate_sync.pipelines.sync import SyncSummary, run_sync
from illuminate_sync.pipelines.warehouse import open_warehouse
from illuminate_sync.simulator import Simulator, SimulatorConfig
from illuminate_sync.sources.illuminate.errors import ConfigurationError

NORTH = ModelSchemas(source="illuminate_north", model="analytics_north")
DEFAULT_SCHEMA = re.compile(r'(?<![A-Za-z0-9_])"?(illuminate|analytics)"?\.', re.IGNORECASE)
"""A reference qualified by one of the default schemas (`illuminate_north.x` does not match)."""
OPTIONS = {"academic_years_back": 0, "gradebook_refresh_days": 1}


class Districts:
    """The same district synced and modelled into the default schemas of `default` and the north ones of `north`."""

    def __init__(self, sim: Simulator, default: Path, north: Path, north_summary: SyncSummary) -> None:
        self.sim = sim
        self.default = default
        self.north = north
        self.north_summary = north_summary


@pytest.fixture(scope="module")
def districts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Districts]:
    directory = tmp_path_factory.mktemp("schemas")
    sim = Simulator(SimulatorConfig(students=40, seed=15, today=TODAY))
    sim.start(port=0)
    try:
        default, north = directory / "default.duckdb", directory / "north.duckdb"
        sync(sim, default, build_models_after=True, **OPTIONS)
        summary = sync(sim, north, build_models_after=True, dataset=NORTH.source, **OPTIONS)
        yield Districts(sim, default, north, summary)
    finally:
        sim.stop()


def schemas_of(db: Path) -> set[str]:
    with duckdb.connect(str(db), read_only=True) as con:
        return {row[0] for row in con.execute("select schema_name from information_schema.schemata").fetchall()}


def marts() -> set[str]:
    return {name for name, model in discover_models().items() if model.layer in ("marts", "reports")} - RUN_HISTORY


# --------------------------------------------------------------------------------------------------------- DuckDB
def test_a_run_into_illuminate_north_builds_the_same_marts_into_analytics_north(districts: Districts) -> None:
    assert districts.north_summary.dataset == NORTH.source
    want = {table: rows for table, rows in duckdb_tables(districts.default, "analytics").items() if table in marts()}
    got = {table: rows for table, rows in duckdb_tables(districts.north, NORTH.model).items() if table in marts()}
    assert set(want) == marts() and sum(sum(rows.values()) for rows in want.values()) > 0
    assert not differences(got, want), "\n".join(differences(got, want))
    raw = duckdb_tables(districts.north, NORTH.source, ignore=frozenset(RUN_HISTORY))
    assert raw == duckdb_tables(districts.default, "illuminate", ignore=frozenset(RUN_HISTORY))


def test_nothing_of_the_north_run_is_written_into_the_default_schemas(districts: Districts) -> None:
    schemas = schemas_of(districts.north)
    assert {NORTH.source, NORTH.model} <= schemas
    assert not schemas & {"illuminate", "analytics"}, schemas
    with duckdb.connect(str(districts.north), read_only=True) as con:
        views = con.execute("select view_name, sql from duckdb_views() where schema_name = ?", [NORTH.model]).fetchall()
        macros = con.execute(
            "select distinct schema_name from duckdb_functions() where function_name = 'null_if_blank'"
        ).fetchall()
        runs = con.execute(f"select count(*) from {NORTH.model}.rpt_sync_runs").fetchall()
    assert len(views) > 30
    assert [name for name, sql in views if DEFAULT_SCHEMA.search(sql)] == []
    assert macros == [(NORTH.model,)]
    assert runs == [(1,)], "the run history is read from illuminate_north"
    assert (districts.north.parent / f".north.duckdb.{NORTH.source}.dlt").is_dir(), "dlt's state is per dataset"


def test_the_models_command_builds_and_tests_illuminate_north(
    districts: Districts, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def built_at() -> object:
        with duckdb.connect(str(districts.north), read_only=True) as con:
            return con.execute(f"select built_at from {NORTH.model}.settings").fetchall()

    before = built_at()
    monkeypatch.setenv("MODELS__TODAY", TODAY.isoformat())
    code = main(["models", "--duckdb", str(districts.north), "--dataset", NORTH.source, "--test"])
    err = capsys.readouterr().err
    assert code == 0, err[-2000:]
    assert "model tests: all passed" in err
    assert built_at() != before, "rebuilt in analytics_north"
    assert not schemas_of(districts.north) & {"illuminate", "analytics"}


def test_the_model_tests_read_the_north_schema(districts: Districts) -> None:
    warehouse = open_warehouse(districts.north, dataset=NORTH.source)
    assert warehouse.model_schemas() == NORTH
    assert warehouse.test_models() == []
    # the default schemas of that file do not exist: the same tests there fail, so they did read analytics_north
    assert open_warehouse(districts.north).test_models()


def test_the_dashboard_reads_the_marts_of_analytics_north(districts: Districts, tmp_path: Path) -> None:
    north = open_warehouse(districts.north, dataset=NORTH.source)
    default = open_warehouse(districts.default)
    assert north.model_dataset == NORTH.model
    settings = DashboardSettings(10)
    cells = sorted(Marts(north, north.model_dataset).chronic_cells(), key=repr)
    assert cells and cells == sorted(Marts(default, default.model_dataset).chronic_cells(), key=repr)
    site = build_dashboard_of(districts.north, None, NORTH.source, tmp_path / "site", settings.min_cell_size)
    pages = "".join(path.read_text("utf-8") for path in site.parent.rglob("*.html"))
    assert "no models yet" not in pages


# ------------------------------------------------------------------------------------------------ the statements
def test_renaming_touches_only_schema_qualified_references() -> None:
    sql = (
        "select 'illuminate.students' as note, analytics.settings.today, s.* from \"illuminate\".students as s"
        " join analytics.stg_sites using (site_id) where illuminate_x.a = 1 /* analytics.x */"
    )
    assert rename_schemas(sql, NORTH.source, NORTH.model) == (
        "select 'illuminate.students' as note, analytics_north.settings.today, s.* from illuminate_north.students as s"
        " join analytics_north.stg_sites using (site_id) where illuminate_x.a = 1 /* analytics.x */"
    )
    assert DEFAULT_SCHEMAS.rename(sql) is sql  # the default build runs the files' SQL as it is


def test_every_model_and_test_names_only_the_north_schemas_on_duckdb_and_postgresql() -> None:
    database = postgres_database(None, NORTH)  # type: ignore[arg-type]  # `select` only: no connection needed
    declared = declared_sources()
    text = {table: dict.fromkeys(columns, "JSON") for table, columns in declared.items()}  # no declared type
    statements: dict[str, str] = {}
    for model in discover_models().values():
        sql = resolve_sources(model, declared)  # every raw table as declared: read as it is, no stand-in
        statements[f"{model.name} (duckdb)"] = NORTH.rename(sql)
        statements[f"{model.name} (postgres)"] = database.select(sql)
        statements[f"{model.name} (duckdb, stand-ins)"] = NORTH.rename(resolve_sources(model, {}))
        # stand-ins reading the raw tables with try_cast (under QUALIFY too: stg_student_counselors)
        statements[f"{model.name} (postgres, try_cast)"] = database.select(resolve_sources(model, text))
        statements[f"{model.name} (postgres, stand-ins)"] = database.select(resolve_sources(model, {}))
    for test in load_model_tests():
        statements[f"{test.label} (duckdb)"] = NORTH.rename(test.query)
        statements[f"{test.label} (postgres)"] = database.select(test.query)
    wrong = [label for label, sql in statements.items() if DEFAULT_SCHEMA.search(sql)]
    assert wrong == []
    joined = "\n".join(statements.values()).lower()  # sqlglot writes function names upper-case
    assert "illuminate_north." in joined and "analytics_north.stg_" in joined
    assert "analytics_north.try_cast_" in joined and "analytics_north.settings" in joined
    assert all("function analytics_north.try_cast_" in statement for statement in helper_functions(NORTH.model))
    assert [macro.statement_in(NORTH.model).lower().split("(")[0] for macro in load_macros()] == [
        f"create or replace macro analytics_north.{macro.name}" for macro in load_macros()
    ]


@pytest.mark.parametrize(
    ("source", "model"),
    [("Illuminate-North", "analytics_north"), ("illuminate_north", "analytics north"), ("same", "same")],
)
def test_a_schema_the_models_cannot_use_is_a_one_line_error(source: str, model: str) -> None:
    with pytest.raises(ConfigurationError) as error:
        ModelSchemas(source, model)
    assert "\n" not in str(error.value)


def test_a_dataset_that_is_not_a_plain_name_is_refused_before_anything_is_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "w.duckdb"
    assert main(["run", "--duckdb", str(db), "--dataset", "North District"]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--dataset North District" in err[0] and "lower-case SQL name" in err[0]
    assert not db.exists()


# ----------------------------------------------------------------------------------------------------- PostgreSQL
@pytest.mark.skipif(not postgres_available(), reason="PostgreSQL's server binaries are not installed")
def test_postgresql_builds_and_tests_the_models_of_illuminate_north(
    districts: Districts, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("psycopg2")
    with postgres_cluster() as pg:
        database = "warehouse"
        monkeypatch.setenv("DESTINATION__POSTGRES__CREDENTIALS", pg.url(database))
        pg.create_database(database)
        from sync_support import simulator_env

        with simulator_env(districts.sim):
            summary = run_sync(
                None,
                destination="postgres",
                dataset=NORTH.source,
                data_dir=tmp_path / "dlt",
                today=districts.sim.today.isoformat(),
                out=io.StringIO(),
                **OPTIONS,
            )
        assert summary.dataset == NORTH.source
        warehouse = open_warehouse(None, "postgres", NORTH.source, tmp_path / "dlt")
        assert warehouse.test_models() == []
        schemas = {row[0] for row in pg.execute("select nspname from pg_namespace", database)}
        assert {NORTH.source, NORTH.model} <= schemas and not schemas & {"illuminate", "analytics"}
        functions = pg.execute(
            "select distinct n.nspname from pg_proc as p join pg_namespace as n on n.oid = p.pronamespace"
            " where p.proname like 'try\\_cast\\_%'",
            database,
        )
        assert functions == [(NORTH.model,)]
        got = {table: rows for table, rows in postgres_tables(pg, database, NORTH.model).items() if table in marts()}
        want = {table: rows for table, rows in duckdb_tables(districts.north, NORTH.model).items() if table in marts()}
        assert set(got) == marts()
        assert not differences(got, want), "\n".join(differences(got, want))


# ----------------------------------------------------------------------------------------------------- Delta lake
def test_a_lake_builds_the_models_of_illuminate_north_into_its_analytics_north_folder(
    districts: Districts, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("deltalake")
    from destination_support import delta_tables
    from sync_support import simulator_env

    lake = tmp_path / "lake"
    lake.mkdir()
    monkeypatch.setenv("DESTINATION__FILESYSTEM__BUCKET_URL", str(lake))
    with simulator_env(districts.sim):
        summary = run_sync(
            None, destination="delta", dataset=NORTH.source, today=TODAY.isoformat(), out=io.StringIO(), **OPTIONS
        )
    assert summary.dataset == NORTH.source
    assert sorted(path.name for path in lake.iterdir() if not path.name.startswith(".")) == [NORTH.model, NORTH.source]
    models_file = lake / f".{NORTH.source}.dlt" / "models.duckdb"
    assert schemas_of(models_file) & {"illuminate", "analytics", NORTH.source, NORTH.model} == {
        NORTH.source,
        NORTH.model,
    }
    assert open_warehouse(None, "delta", NORTH.source).test_models() == []
    ignore = frozenset({"built_at"})
    want = duckdb_tables(districts.default, "analytics", ignore)
    in_lake = delta_tables(lake / NORTH.model, ignore)
    assert {"fct_enrollments", "dim_students", "rpt_chronic_absenteeism"} <= set(in_lake)
    compared = {table: rows for table, rows in in_lake.items() if table in marts()}
    assert not differences(compared, {table: want[table] for table in compared})
