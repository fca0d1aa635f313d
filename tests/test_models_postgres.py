"""The models built on PostgreSQL from the same SQL (pipelines/models_postgres.py) give the marts DuckDB gives.

The raw tables come the realistic way: the session's synced district (`models_warehouse`, 300 students) copied from
DuckDB into a throwaway PostgreSQL 15 cluster by a dlt pipeline (postgres destination, csv loader files, dataset
`illuminate`), keeping the sync's `_dlt_id` / `_dlt_load_id` and its column types.
"""

from __future__ import annotations

import datetime as dt
import io
import json
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest
from model_support import MODELS_TODAY, ModelWarehouse
from postgres_support import PostgresCluster, copy_raw_tables, postgres_available, postgres_cluster

from illuminate_sync.pipelines import models
from illuminate_sync.pipelines.models import MODEL_SCHEMA, SOURCE_SCHEMA, ModelError, ModelSettings
from illuminate_sync.pipelines.models_postgres import (
    PG_TYPE_NAMES,
    TranspileError,
    build_models_postgres,
    postgres_sql,
    test_models_postgres,
)
from illuminate_sync.sources.illuminate.catalog import load_catalog

psycopg2 = pytest.importorskip("psycopg2")
pytestmark = pytest.mark.skipif(not postgres_available(), reason="PostgreSQL's server binaries are not installed")

SETTINGS = ModelSettings(today=MODELS_TODAY)
JSON_COLUMNS = {"band_counts"}
"""Text columns holding a JSON object: DuckDB writes `{"a":1}`, PostgreSQL `{ "a" : 1 }`; compared as objects."""


# --------------------------------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def cluster() -> Iterator[PostgresCluster]:
    with postgres_cluster() as running:
        yield running


class PostgresWarehouse:
    """The synced district's raw tables in a PostgreSQL database, its models built, and the build's output."""

    def __init__(self, url: str, pipeline: Any) -> None:
        self.url = url
        self.pipeline = pipeline
        self.output = ""
        self.built = 0
        self.seconds = 0.0

    def connect(self) -> Any:
        connection = psycopg2.connect(self.url)
        connection.autocommit = True  # as dlt's sql_client keeps it
        return connection

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        connection = self.connect()
        try:
            with connection.cursor() as cursor:
                cursor.execute(sql)
                return list(cursor.fetchall())
        finally:
            connection.close()


@pytest.fixture(scope="module")
def pg_warehouse(
    cluster: PostgresCluster, models_warehouse: ModelWarehouse, tmp_path_factory: pytest.TempPathFactory
) -> PostgresWarehouse:
    """The district copied into PostgreSQL and modelled there through dlt's own connection (autocommit mode)."""
    url = cluster.create_database("warehouse")
    pipeline = copy_raw_tables(models_warehouse.path, url, tmp_path_factory.mktemp("dlt_pipelines"))
    pg = PostgresWarehouse(url, pipeline)
    out = io.StringIO()
    started = dt.datetime.now()
    with pipeline.sql_client() as client:
        pg.built = build_models_postgres(client.native_connection, SETTINGS, out=out)
    pg.seconds = (dt.datetime.now() - started).total_seconds()
    pg.output = out.getvalue()
    return pg


# ---------------------------------------------------------------------------------------------------- comparisons
def canonical(value: Any, column: str) -> Any:
    """A value as both databases should agree on it: floats to 9 places, numeric sums as numbers, aware timestamps
    in UTC, '' as NULL (dlt's csv loader may load an empty string as NULL), JSON text as its object."""
    if value is None or isinstance(value, bool):
        return value
    if column in JSON_COLUMNS:
        return json.dumps(json.loads(value), sort_keys=True)
    if isinstance(value, str):
        return value or None
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else round(float(value), 9)
    if isinstance(value, float):
        return round(value, 9)
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return value


def columns_duckdb(path: Path, table: str) -> list[tuple[str, str]]:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(
            "select column_name, data_type from information_schema.columns"
            " where table_schema = ? and table_name = ? order by ordinal_position",
            [MODEL_SCHEMA, table],
        ).fetchall()


def columns_postgres(pg: PostgresWarehouse, schema: str, table: str) -> list[tuple[str, str]]:
    rows = pg.rows(
        "select column_name, data_type from information_schema.columns"
        f" where table_schema = '{schema}' and table_name = '{table}' order by ordinal_position"
    )
    return [(name, PG_TYPE_NAMES.get(kind, kind.upper())) for name, kind in rows]


def multiset(rows: list[tuple[Any, ...]], columns: list[str]) -> Counter[tuple[Any, ...]]:
    return Counter(tuple(canonical(value, column) for value, column in zip(row, columns)) for row in rows)


MART_NAMES = sorted(name for name, model in models.discover_models().items() if model.layer in ("marts", "reports"))


# ------------------------------------------------------------------------------------------------------------ tests
def test_raw_tables_copied_by_dlt_have_the_types_and_load_ids_of_the_sync(
    pg_warehouse: PostgresWarehouse, models_warehouse: ModelWarehouse
) -> None:
    with duckdb.connect(str(models_warehouse.path), read_only=True) as con:
        duck = {
            (table, column): kind
            for table, column, kind in con.execute(
                "select table_name, column_name, data_type from information_schema.columns where table_schema = ?"
                " and table_name not like '\\_dlt\\_%' escape '\\'",
                [SOURCE_SCHEMA],
            ).fetchall()
        }
        duck_loads = set(con.execute(f"select distinct _dlt_load_id from {SOURCE_SCHEMA}.enrollment").fetchall())
    pg_types = {
        (table, column): kind
        for table, column, kind in pg_warehouse.rows(
            "select table_name, column_name, data_type from information_schema.columns"
            f" where table_schema = '{SOURCE_SCHEMA}' and table_name not like '\\_dlt\\_%'"
        )
    }
    assert set(pg_types) == set(duck)
    assert {(duck[key], pg_types[key]) for key in duck} == {
        ("VARCHAR", "character varying"),
        ("BIGINT", "bigint"),
        ("BOOLEAN", "boolean"),
        ("DATE", "date"),
        ("DOUBLE", "double precision"),
        ("TIMESTAMP", "timestamp without time zone"),  # the catalog's timestamps (the sync's timezone=False hint)
        ("TIMESTAMP WITH TIME ZONE", "timestamp with time zone"),  # the View document's, typed by dlt from JSON
    }
    assert set(pg_warehouse.rows(f"select distinct _dlt_load_id from {SOURCE_SCHEMA}.enrollment")) == duck_loads


def test_every_model_builds_on_postgresql_and_its_declared_tests_pass(pg_warehouse: PostgresWarehouse) -> None:
    names = models.discover_models()
    assert pg_warehouse.built == len(names)
    lines = pg_warehouse.output.splitlines()
    assert lines[-1].startswith(f"built {len(names)} models into {MODEL_SCHEMA} in ")
    assert any(line.startswith(f"  table {MODEL_SCHEMA}.fct_attendance_daily ") and " rows " in line for line in lines)
    kinds = f"select table_name, table_type from information_schema.tables where table_schema = '{MODEL_SCHEMA}'"
    built = dict(pg_warehouse.rows(kinds))
    for name, model in names.items():
        assert built[name] == ("VIEW" if model.materialization == "view" else "BASE TABLE"), name
    comments = dict(
        pg_warehouse.rows(
            "select c.relname, obj_description(c.oid) from pg_class as c"
            f" join pg_namespace as n on n.oid = c.relnamespace where n.nspname = '{MODEL_SCHEMA}'"
        )
    )
    assert comments["fct_enrollments"] == names["fct_enrollments"].description
    assert pg_warehouse.rows(f"select today, chronic_absence_min_days from {MODEL_SCHEMA}.settings") == [
        (MODELS_TODAY, SETTINGS.chronic_absence_min_days)
    ]
    connection = pg_warehouse.connect()
    try:
        assert test_models_postgres(connection) == []
    finally:
        connection.close()


@pytest.mark.parametrize("name", MART_NAMES)
def test_a_mart_on_postgresql_equals_the_mart_on_duckdb_for_the_same_data(
    pg_warehouse: PostgresWarehouse, models_warehouse: ModelWarehouse, name: str
) -> None:
    duck_columns = columns_duckdb(models_warehouse.path, name)
    assert columns_postgres(pg_warehouse, MODEL_SCHEMA, name) == duck_columns  # same names, order and types
    columns = [column for column, _ in duck_columns]
    duck = multiset(models_warehouse.rows(f"select * from {MODEL_SCHEMA}.{name}"), columns)
    pg = multiset(pg_warehouse.rows(f"select * from {MODEL_SCHEMA}.{name}"), columns)
    assert sum(duck.values()) > 0, f"{name} is empty: the comparison would prove nothing"
    only_duck, only_pg = list((duck - pg).elements())[:3], list((pg - duck).elements())[:3]
    assert duck == pg, f"{name}: rows only on DuckDB {only_duck}, only on PostgreSQL {only_pg}"


def test_a_failing_model_rolls_back_the_whole_build_and_names_its_file(
    pg_warehouse: PostgresWarehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    counts = "select (select count(*) from analytics.dim_sites), (select count(*) from analytics.fct_enrollments)"
    before = pg_warehouse.rows(counts)
    real_parse = models.parse_model

    def broken(name: str, layer: str, file: str, text: str) -> models.Model:
        if name == "fct_enrollments":
            text = "select no_such_column from analytics.stg_enrollment"
        return real_parse(name, layer, file, text)

    monkeypatch.setattr(models, "parse_model", broken)
    connection = pg_warehouse.connect()
    try:
        with pytest.raises(ModelError) as failure:  # other settings: the settings row is written before any model
            build_models_postgres(connection, ModelSettings(today=dt.date(2027, 1, 4)), out=io.StringIO())
        assert connection.autocommit  # the caller's mode is restored, the connection usable
        with connection.cursor() as cursor:
            cursor.execute("select 1")
    finally:
        connection.close()
    message = str(failure.value)
    assert message.startswith("sql/marts/fct_enrollments.sql failed: ")
    assert "no_such_column" in message and "\n" not in message
    assert pg_warehouse.rows(f"select today from {MODEL_SCHEMA}.settings") == [(MODELS_TODAY,)]
    assert pg_warehouse.rows(counts) == before
    assert pg_warehouse.rows(f"select count(*) from {MODEL_SCHEMA}.stg_enrollment")[0][0] > 0  # views dropped by
    # the failed build's `drop ... cascade` are back too


def test_models_build_on_postgresql_with_missing_raw_tables_and_view_fields_loaded_as_text(
    cluster: PostgresCluster,
) -> None:
    """The View document's child tables exist once a document was loaded and dlt types its fields from the JSON
    (ids as text): the stand-ins give every model its declared columns and types, as on DuckDB
    (test_models_runner.test_view_fields_loaded_as_text_are_cast_to_their_declared_types)."""
    kinds = {"bigint": "bigint", "text": "varchar", "date": "date", "timestamp": "timestamp", "bool": "boolean"}
    kinds["double"] = "double precision"
    statements = [f"create schema {SOURCE_SCHEMA}"]
    for table, endpoint in load_catalog().items():
        if table == "enrollment":
            continue
        columns = [f'"{column}" {kinds[kind]}' for column, kind in endpoint.columns.items()]
        if endpoint.strategy == "academic_year_slice":
            columns.append("_academic_year bigint")
        columns += [f'"{column}" varchar' for column in endpoint.window_columns]
        columns += ["_dlt_load_id varchar", "_dlt_id varchar"]
        statements.append(f"create table {SOURCE_SCHEMA}.{table} ({', '.join(columns)})")
    statements += [
        f"alter table {SOURCE_SCHEMA}.assessment_view add column assessment__academic_year varchar,"
        " add column assessment__performance_band_set_id varchar",
        f"insert into {SOURCE_SCHEMA}.assessment_view (assessment_id, _dlt_id, assessment__academic_year,"
        " assessment__performance_band_set_id) values (7, 'doc7', '2027', '1')",
        f"create table {SOURCE_SCHEMA}.assessment_view__performance_band_sets (performance_band_set_id varchar,"
        " description varchar, _dlt_parent_id varchar, _dlt_list_idx bigint, _dlt_id varchar)",
        f"insert into {SOURCE_SCHEMA}.assessment_view__performance_band_sets values ('1', 'Default', 'doc7', 0, 's1')",
        f"create table {SOURCE_SCHEMA}.assessment_view__performance_band_sets__performance_bands (minimum_value"
        " varchar, label varchar, label_number varchar, is_mastery boolean, _dlt_parent_id varchar,"
        " _dlt_list_idx bigint, _dlt_id varchar)",
        f"insert into {SOURCE_SCHEMA}.assessment_view__performance_band_sets__performance_bands values"
        " ('80', 'Proficient', '2.0', true, 's1', 0, 'b2'), ('0', 'Not yet', '1', false, 's1', 1, 'b1')",
    ]
    url = cluster.create_database("partial")
    connection = psycopg2.connect(url)
    try:
        with connection, connection.cursor() as cursor:
            for statement in statements:
                cursor.execute(statement)
        build_models_postgres(connection, SETTINGS, out=io.StringIO())
        with connection, connection.cursor() as cursor:
            cursor.execute(
                "select academic_year, performance_band_set_id, band_count, bands, mastery_minimum_percent"
                f" from {MODEL_SCHEMA}.dim_assessments"
            )
            assert cursor.fetchall() == [(2027, 1, 2, "1 Not yet (0.0%+), 2 Proficient (80.0%+)*", 80.0)]
            cursor.execute(f"select count(*) from {MODEL_SCHEMA}.fct_enrollments")
            assert cursor.fetchone() == (0,)
        assert test_models_postgres(connection) == []
    finally:
        connection.close()


# ---------------------------------------------------------------------------------------------- postgres_sql alone
SAME_ROWS_CASES = {
    "qualify keeps the first row per partition, no helper column": (
        "select *, count(*) over (partition by k) as n from (values (1, 'a', 3), (1, 'b', null), (2, 'c', 1))"
        " as t(k, v, o) qualify row_number() over (partition by k order by o desc) = 1"
    ),
    "qualify reads the input column an output alias shadows": (
        "select cast(k as varchar) || '!' as k, o from (values (1, 3), (1, 4), (2, 1)) as t(k, o)"
        " qualify row_number() over (partition by k order by o) = 1"
    ),
    "group by all": (
        "select k, v is null as missing, count(*) as n from (values (1, 'a'), (1, null), (1, 'b'), (2, null))"
        " as t(k, v) group by all"
    ),
    "arg_max and arg_min pass over NULLs": (
        "select arg_max(v, o), arg_min(v, o) from (values ('a', 1), (null, 5), ('c', null), ('d', 3)) as t(v, o)"
    ),
    "count(distinct) over a partition ignores NULL": (
        "select k, v, count(distinct v) over (partition by k) as n"
        " from (values (1, 'a'), (1, 'a'), (1, null), (1, 'b'), (2, null)) as t(k, v)"
    ),
    "try_cast is NULL where the cast fails": (
        "select s, try_cast(s as date), try_cast(s as bigint), try_cast(s as integer), try_cast(s as double)"
        " from (values ('2026-02-30'), ('2026-03-01'), ('12'), ('12.5'), ('abc'), (null)) as t(s)"
    ),
    "union all by name pairs columns by name": "select 1 as a, 'x' as b union all by name select 'y' as b, 2 as a",
    "integer division is float division, year and month are integers": (
        "select 7 / 2 as q, year(d) + case when month(d) >= 8 then 1 else 0 end as academic_year"
        " from (values (date '2026-09-01'), (date '2027-03-01')) as t(d)"
    ),
    "string_split with ordinality": (
        "select g.name, g.position from (values ('K, 1,2')) as t(s)"
        " cross join unnest(string_split(s, ',')) with ordinality as g(name, position)"
    ),
    "desc sorts NULLs last": (
        "select string_agg(v, ',' order by o desc) from (values ('a', 1), ('b', null), ('c', 2)) as t(v, o)"
    ),
    "a subquery in FROM without an alias": "select count(*) from (select 1 union all select 2)",
}


@pytest.mark.parametrize("sql", SAME_ROWS_CASES.values(), ids=SAME_ROWS_CASES.keys())
def test_a_duckdb_construct_gives_the_same_rows_on_postgresql(pg_warehouse: PostgresWarehouse, sql: str) -> None:
    """Run on DuckDB as written and on PostgreSQL transpiled (where the build created the helper functions)."""
    with duckdb.connect() as con:
        duck = Counter(con.execute(sql).fetchall())
    assert Counter(pg_warehouse.rows(postgres_sql(sql))) == duck


def test_json_group_object_gives_the_same_object(pg_warehouse: PostgresWarehouse) -> None:
    sql = "select cast(json_group_object(k, n) as varchar) from (values ('a', 1), ('b \"x\"', 2)) as t(k, n)"
    with duckdb.connect() as con:
        (duck,) = con.execute(sql).fetchone()
    [(pg,)] = pg_warehouse.rows(postgres_sql(sql))
    assert json.loads(pg) == json.loads(duck) == {"a": 1, 'b "x"': 2}


def test_a_macro_gives_the_same_rows_on_postgresql(pg_warehouse: PostgresWarehouse) -> None:
    """DuckDB calls the macro of sql/macros.sql as the build creates it; PostgreSQL gets its body, expanded."""
    sql = (
        "select s, null_if_blank(s), null_if_blank(trim(s)) from (values ('x'), (' y '), (' '), (''), ('NULL'),"
        " ('null'), ('Null'), (null)) as t(s)"
    )
    with duckdb.connect() as con:
        con.execute(f"create schema {MODEL_SCHEMA}")
        for macro in models.load_macros():
            con.execute(macro.statement)
        con.execute(f"set search_path = '{MODEL_SCHEMA}'")
        duck = Counter(con.execute(sql).fetchall())
    assert Counter(pg_warehouse.rows(postgres_sql(sql))) == duck


def test_a_macro_call_is_expanded_into_its_body() -> None:
    assert postgres_sql("select null_if_blank(trim(a)) as a from t") == (
        "SELECT (CASE WHEN TRIM(TRIM(a)) IN ('', 'NULL', 'null') THEN NULL ELSE TRIM(a) END) AS a FROM t"
    )
    with pytest.raises(TranspileError, match="null_if_blank takes 1 arguments, called with 2"):
        postgres_sql("select null_if_blank(a, b) from t")


def test_qualify_becomes_distinct_on() -> None:
    sql = postgres_sql("select * from t qualify row_number() over (partition by a order by b desc) = 1")
    assert sql == "SELECT DISTINCT ON (a) * FROM t ORDER BY a, b DESC NULLS LAST"


@pytest.mark.parametrize(
    "sql",
    [
        "select * from t qualify rank() over (partition by a order by b) <= 2",
        "select * from t qualify row_number() over (order by b) = 1",
        "select try_cast(x as struct(a integer)) from t",
        "select * from t union all by name select * from u",
        "select count(distinct a) over (partition by b order by c) from t",
    ],
)
def test_a_construct_without_a_postgresql_equivalent_is_refused(sql: str) -> None:
    with pytest.raises(TranspileError):
        postgres_sql(sql)


def test_the_dashboard_reads_the_postgresql_marts_as_the_duckdb_ones(
    pg_warehouse: PostgresWarehouse,
    models_warehouse: ModelWarehouse,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`illuminate-sync dashboard --destination postgres`: its SQL runs on PostgreSQL through dlt's sql_client, and
    every page equals the page built from the DuckDB file (but the footer's build time and the warehouse's label)."""
    from illuminate_sync.pipelines.dashboard import DashboardSettings, build_dashboard
    from illuminate_sync.pipelines.warehouse import open_warehouse

    monkeypatch.setenv("DESTINATION__POSTGRES__CREDENTIALS", pg_warehouse.url)
    pages = {}
    for name, warehouse in [
        ("postgres", open_warehouse(None, "postgres", None, data_dir=tmp_path / "dlt")),
        ("duckdb", open_warehouse(models_warehouse.path)),
    ]:
        out = tmp_path / name
        build_dashboard(warehouse, warehouse.model_dataset, out, DashboardSettings(10), label="warehouse")
        warehouse.close()
        pages[name] = {path.name: path.read_text().split("<footer>")[0] for path in sorted(out.glob("*.html"))}
    assert pages["postgres"].keys() == pages["duckdb"].keys()
    for page, html in pages["duckdb"].items():
        if page != "index.html":
            assert pages["postgres"][page] == html, page
    assert "no data yet" not in pages["postgres"]["attendance.html"]
