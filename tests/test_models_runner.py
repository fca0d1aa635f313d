"""The model runner on hand-made DuckDB files: discovery, order, stand-ins for missing raw tables, atomic failure,
settings and declared model tests."""

from __future__ import annotations

import io
from datetime import date
from pathlib import Path

import duckdb
import pytest

from illuminate_sync.pipelines import models
from illuminate_sync.pipelines.models import DUCKDB_TYPES, ModelError, ModelSettings
from illuminate_sync.sources.illuminate.catalog import load_catalog
from illuminate_sync.sources.illuminate.errors import ConfigurationError, IlluminateError

SETTINGS = ModelSettings(today=date(2026, 11, 27))


def make_raw_warehouse(path: Path, skip: tuple[str, ...] = ()) -> None:
    """Every catalog table, empty, with its declared columns (as the sync creates them), except `skip`."""
    with duckdb.connect(str(path)) as con:
        con.execute("create schema illuminate")
        for table, endpoint in load_catalog().items():
            if table in skip:
                continue
            columns = [f'"{column}" {DUCKDB_TYPES[kind]}' for column, kind in endpoint.columns.items()]
            if endpoint.strategy == "academic_year_slice":
                columns.append("_academic_year BIGINT")
            columns += ["_dlt_load_id VARCHAR", "_dlt_id VARCHAR"]
            con.execute(f"create table illuminate.{table} ({', '.join(columns)})")


def relations(path: Path) -> dict[str, str]:
    with duckdb.connect(str(path), read_only=True) as con:
        rows = con.execute(
            "select table_name, table_type from information_schema.tables where table_schema = 'analytics'"
        ).fetchall()
    return {name: kind for name, kind in rows}


EXPECTED_MARTS = [
    "dim_sites",
    "dim_grade_levels",
    "dim_staff",
    "dim_courses",
    "dim_sections",
    "dim_students",
    "fct_enrollments",
    "fct_section_enrollments",
    "dim_assessments",
    "fct_assessment_results",
    "fct_assessment_standard_results",
    "fct_assessment_group_results",
    "fct_assessment_result_sections",
    "fct_attendance_daily",
    "agg_student_attendance",
    "fct_gradebook_overall",
    "rpt_assessment_proficiency",
    "rpt_chronic_absenteeism",
    "rpt_enrollment_snapshot",
]


def test_every_raw_table_has_a_staging_model_and_every_mart_exists() -> None:
    found = models.discover_models()
    for table in load_catalog():
        assert f"stg_{table}" in found, table
        assert found[f"stg_{table}"].layer == "staging"
    for name in EXPECTED_MARTS:
        assert name in found, name
        assert found[name].materialization == "table"
        assert found[name].description, f"{name} has no header comment"


def test_build_order_puts_dependencies_first() -> None:
    found = models.discover_models()
    order = [model.name for model in models.build_order(found)]
    position = {name: index for index, name in enumerate(order)}
    for model in found.values():
        for ref in model.refs:
            if ref in found:
                assert position[ref] < position[model.name], (ref, model.name)


def test_references_are_parsed_outside_comments_and_strings() -> None:
    model = models.parse_model(
        "x",
        "marts",
        "sql/marts/x.sql",
        "-- reads analytics.not_this\nselect 'analytics.nor_this' as s, * from analytics.dim_sites"
        ' join analytics."fct_enrollments" using (site_id) /* analytics.nope */',
    )
    assert model.refs == frozenset({"dim_sites", "fct_enrollments"})
    assert "not_this" not in model.sql and "analytics.nor_this" in model.sql
    assert model.description == "reads analytics.not_this"


def test_cycles_are_refused() -> None:
    a = models.parse_model("a", "marts", "sql/marts/a.sql", "select * from analytics.b")
    b = models.parse_model("b", "marts", "sql/marts/b.sql", "select * from analytics.a")
    with pytest.raises(ModelError, match="cycle"):
        models.build_order({"a": a, "b": b})


def test_models_build_empty_on_a_warehouse_where_every_endpoint_returned_nothing(tmp_path: Path) -> None:
    path = tmp_path / "empty.duckdb"
    make_raw_warehouse(path)
    out = io.StringIO()
    models.build_models(path, out=out, settings=SETTINGS)
    built = relations(path)
    for name in EXPECTED_MARTS:
        assert built[name] == "BASE TABLE"
    assert built["stg_enrollment"] == "VIEW"
    assert built["settings"] == "BASE TABLE"
    assert "built" in out.getvalue()
    assert models.test_models(path) == []


def test_missing_raw_tables_and_columns_become_typed_stand_ins(tmp_path: Path) -> None:
    """The View's child tables exist only once a document was loaded; catalog tables may be missing too."""
    path = tmp_path / "partial.duckdb"
    make_raw_warehouse(path, skip=("enrollment", "attendance_daily"))
    with duckdb.connect(str(path)) as con:
        tables = {row[0] for row in con.execute("select table_name from duckdb_tables()").fetchall()}
    assert not any(name.startswith("assessment_view__") for name in tables)
    models.build_models(path, out=io.StringIO(), settings=SETTINGS)
    with duckdb.connect(str(path), read_only=True) as con:
        assert con.execute("select count(*) from analytics.fct_enrollments").fetchone() == (0,)
        types = dict(
            con.execute(
                "select column_name, data_type from information_schema.columns"
                " where table_schema = 'analytics' and table_name = 'dim_assessment_bands'"
            ).fetchall()
        )
    assert types["minimum_value"] == "DOUBLE"
    assert types["is_mastery"] == "BOOLEAN"


def test_view_fields_loaded_as_text_are_cast_to_their_declared_types(tmp_path: Path) -> None:
    path = tmp_path / "view.duckdb"
    make_raw_warehouse(path)
    with duckdb.connect(str(path)) as con:
        con.execute("alter table illuminate.assessment_view add column assessment__academic_year varchar")
        con.execute("alter table illuminate.assessment_view add column assessment__performance_band_set_id varchar")
        con.execute("insert into illuminate.assessment_view (assessment_id, _dlt_id) values (7, 'doc7')")
        con.execute("update illuminate.assessment_view set assessment__academic_year = '2027'")
        con.execute("update illuminate.assessment_view set assessment__performance_band_set_id = '1'")
        con.execute(
            "create table illuminate.assessment_view__performance_band_sets"
            " (performance_band_set_id varchar, description varchar, _dlt_parent_id varchar, _dlt_list_idx bigint,"
            " _dlt_id varchar)"
        )
        con.execute(
            "insert into illuminate.assessment_view__performance_band_sets values ('1', 'Default', 'doc7', 0, 's1')"
        )
        con.execute(
            "create table illuminate.assessment_view__performance_band_sets__performance_bands"
            " (minimum_value varchar, label varchar, label_number varchar, is_mastery boolean,"
            " _dlt_parent_id varchar, _dlt_list_idx bigint, _dlt_id varchar)"
        )
        con.execute(
            "insert into illuminate.assessment_view__performance_band_sets__performance_bands values"
            " ('80', 'Proficient', '2', true, 's1', 0, 'b2'), ('0', 'Not yet', '1', false, 's1', 1, 'b1')"
        )
    models.build_models(path, out=io.StringIO(), settings=SETTINGS)
    with duckdb.connect(str(path), read_only=True) as con:
        row = con.execute(
            "select academic_year, performance_band_set_id, band_count, bands, mastery_minimum_percent"
            " from analytics.dim_assessments"
        ).fetchone()
    assert row == (2027, 1, 2, "1 Not yet (0.0%+), 2 Proficient (80.0%+)*", 80.0)


def test_a_failing_model_names_its_file_and_leaves_the_previous_models_usable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "fail.duckdb"
    make_raw_warehouse(path)
    models.build_models(path, out=io.StringIO(), settings=SETTINGS)
    with duckdb.connect(str(path)) as con:
        con.execute("insert into illuminate.sites (site_id, site_name) values (1, 'District')")

    real_parse = models.parse_model

    def broken(name: str, layer: str, file: str, text: str) -> models.Model:
        if name == "fct_enrollments":
            text = "select no_such_column from analytics.stg_enrollment"
        return real_parse(name, layer, file, text)

    monkeypatch.setattr(models, "parse_model", broken)
    with pytest.raises(ModelError) as failure:
        models.build_models(path, out=io.StringIO(), settings=SETTINGS)
    message = str(failure.value)
    assert isinstance(failure.value, IlluminateError)
    assert message.startswith("sql/marts/fct_enrollments.sql failed:")
    assert "no_such_column" in message and "\n" not in message
    with duckdb.connect(str(path), read_only=True) as con:  # rolled back: dim_sites still the previous build
        assert con.execute("select count(*) from analytics.dim_sites").fetchone() == (0,)
        assert con.execute("select count(*) from analytics.fct_enrollments").fetchone() == (0,)


def test_a_warehouse_without_raw_tables_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "nothing.duckdb"
    duckdb.connect(str(path)).close()
    with pytest.raises(ModelError, match="illuminate-sync run"):
        models.build_models(path, out=io.StringIO(), settings=SETTINGS)
    with pytest.raises(ModelError, match="does not exist"):
        models.build_models(tmp_path / "missing.duckdb", out=io.StringIO(), settings=SETTINGS)


def test_settings_resolve_from_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELS__TODAY", "2026-11-27")
    monkeypatch.setenv("MODELS__CHRONIC_ABSENCE_THRESHOLD", "15%")
    monkeypatch.setenv("MODELS__CHRONIC_ABSENCE_MIN_DAYS", "20")
    assert ModelSettings.resolve() == ModelSettings(date(2026, 11, 27), 0.15, 20)
    monkeypatch.setenv("MODELS__CHRONIC_ABSENCE_THRESHOLD", "0.1")
    assert ModelSettings.resolve().chronic_absence_threshold == 0.1
    monkeypatch.delenv("MODELS__TODAY")
    monkeypatch.delenv("MODELS__CHRONIC_ABSENCE_THRESHOLD")
    monkeypatch.delenv("MODELS__CHRONIC_ABSENCE_MIN_DAYS")
    assert ModelSettings.resolve() == ModelSettings()
    monkeypatch.setenv("MODELS__TODAY", "yesterday")
    with pytest.raises(ConfigurationError, match="MODELS__TODAY"):
        ModelSettings.resolve()


def test_settings_table_holds_the_resolved_settings(tmp_path: Path) -> None:
    path = tmp_path / "settings.duckdb"
    make_raw_warehouse(path)
    models.build_models(path, out=io.StringIO(), settings=ModelSettings(date(2026, 1, 5), 0.2, 15))
    with duckdb.connect(str(path), read_only=True) as con:
        row = con.execute(
            "select today, chronic_absence_threshold, chronic_absence_min_days from analytics.settings"
        ).fetchone()
    assert row == (date(2026, 1, 5), 0.2, 15)


def test_declared_model_tests_catch_duplicate_keys_nulls_and_orphans(tmp_path: Path) -> None:
    path = tmp_path / "tests.duckdb"
    make_raw_warehouse(path)
    with duckdb.connect(str(path)) as con:
        con.execute("insert into illuminate.sites (site_id, site_name) values (2, 'A'), (2, 'A again')")
        con.execute(
            "insert into illuminate.enrollment (student_id, site_id, entry_date, grade_level_id, _academic_year)"
            " values (1, 99, date '2026-08-17', 5, 2027)"
        )
    models.build_models(path, out=io.StringIO(), settings=SETTINGS)
    failures = models.test_models(path)
    assert any(f.startswith("fct_enrollments: relationship (site_id) -> dim_sites(site_id)") for f in failures)
    assert any(f.startswith("fct_enrollments: relationship (grade_level_id)") for f in failures)
    assert not any(f.startswith("dim_sites: unique") for f in failures)  # the mart keeps one row per key
    assert all(": " in f and "offending rows" in f for f in failures)


def test_every_declared_test_targets_a_model() -> None:
    tests = models.load_model_tests()
    kinds = {test.kind for test in tests}
    assert {"unique", "not_null", "relationship", "assertion"} <= kinds
    tested = {test.model for test in tests}
    for name in EXPECTED_MARTS:
        assert name in tested, name


# ------------------------------------------------------------------------------------------------------ references
def test_references_are_tables_read_not_names_of_ctes_functions_or_columns() -> None:
    model = models.parse_model(
        "x",
        "staging",
        "sql/staging/x.sql",
        "with students as (select * from illuminate.students) select null_if_blank(s.site_name) as n"
        ' from students join illuminate."sites" as s on s.site_id = students.site_id',
    )
    assert model.sources == frozenset({"students", "sites"}) and model.refs == frozenset()
    assert [model.sql[ref.start : ref.end] for ref in model.source_references] == [
        "illuminate.students",
        'illuminate."sites"',
    ]


def test_a_model_that_does_not_parse_is_a_one_line_error() -> None:
    with pytest.raises(ModelError, match=r"^sql/marts/x.sql: cannot parse its SQL: [^\n]+$"):
        models.parse_model("x", "marts", "sql/marts/x.sql", "select (1 from analytics.dim_sites")


def test_a_reference_to_a_missing_model_is_a_one_line_error() -> None:
    a = models.parse_model("a", "marts", "sql/marts/a.sql", "select * from analytics.b join analytics.settings on true")
    with pytest.raises(ModelError, match=r"^sql/marts/a.sql: reads analytics.b, which no model builds$"):
        models.build_order({"a": a})


def test_a_cycle_names_its_models_on_one_line() -> None:
    found = {
        name: models.parse_model(name, "marts", f"sql/marts/{name}.sql", f"select * from analytics.{ref}")
        for name, ref in [("a", "b"), ("b", "c"), ("c", "a"), ("d", "a")]
    }
    with pytest.raises(ModelError) as failure:
        models.build_order(found)
    message = str(failure.value)
    assert message.startswith("models read each other in a cycle: ") and "\n" not in message
    assert {"sql/marts/a.sql", "sql/marts/b.sql", "sql/marts/c.sql"} <= set(message.split(": ", 1)[1].split(" -> "))
    assert "sql/marts/d.sql" not in message  # reads the cycle, is not part of it


# ---------------------------------------------------------------------------------------------------------- macros
def test_no_model_spells_out_what_a_macro_does() -> None:
    """The API's "NULL" / empty text is turned into NULL by `null_if_blank` (sql/macros.sql), written once."""
    for model in models.discover_models().values():
        assert "'NULL', 'null'" not in model.sql, f"{model.file}: call null_if_blank() instead"


def test_staging_views_call_the_macro_stored_in_the_warehouse(tmp_path: Path) -> None:
    path = tmp_path / "macro.duckdb"
    make_raw_warehouse(path)
    with duckdb.connect(str(path)) as con:
        con.execute(
            "insert into illuminate.sites (site_id, site_name, city) values"
            " (1, 'NULL', ' '), (2, 'null', ''), (3, ' A ', 'Oakland'), (4, null, 'NULLS')"
        )
    models.build_models(path, out=io.StringIO(), settings=SETTINGS)
    with duckdb.connect(str(path), read_only=True) as con:  # a reader's connection: the macro is in the file
        rows = con.execute("select site_id, site_name, city from analytics.stg_sites order by site_id").fetchall()
        [(schema,)] = con.execute(
            "select schema_name from duckdb_functions() where function_name = 'null_if_blank'"
        ).fetchall()
    assert rows == [(1, None, None), (2, None, None), (3, " A ", "Oakland"), (4, None, "NULLS")]
    assert schema == "analytics"


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("select 1", "every statement must be `create or replace macro"),
        ("create macro main.f(x) as x", "must be created in schema analytics"),
        ("create macro f(x) as x; create macro F(y) as y", "macro f is defined twice"),
        ("create macro f(x) as x; create macro g(x) as f(x) + 1", "macro g calls another macro (f)"),
        ("create macro f(x) as table select x", "every statement must be"),
        ("create macro f(x as x", "cannot parse"),
    ],
)
def test_a_bad_macro_file_is_a_one_line_error(text: str, error: str) -> None:
    with pytest.raises(ModelError) as failure:
        models._parse_macros(text)
    assert str(failure.value).startswith("sql/macros.sql: ") and error in str(failure.value)
    assert "\n" not in str(failure.value)


def test_macros_are_created_in_schema_analytics_whatever_the_file_says() -> None:
    [macro] = models._parse_macros("create macro Twice(x) as x * 2")
    assert (macro.name, macro.parameters) == ("twice", ("x",))
    assert macro.statement.lower().startswith("create or replace macro analytics.twice(x) as")


# -------------------------------------------------------------------------------------------- staging key tests
def test_every_catalog_staging_model_gets_a_key_test_from_the_catalog() -> None:
    labels = {test.label for test in models.load_model_tests()}
    for endpoint in load_catalog().values():
        key = endpoint.primary_key
        assert f"stg_{endpoint.table}: unique ({', '.join(key)})" in labels, endpoint.table
        for column in key:
            assert f"stg_{endpoint.table}: not_null {column}" in labels, (endpoint.table, column)
    assert len(labels) == len(models.load_model_tests())  # a declared test repeating a generated one runs once


def test_a_duplicate_or_null_staging_key_fails_its_generated_test(tmp_path: Path) -> None:
    path = tmp_path / "keys.duckdb"
    make_raw_warehouse(path)
    models.build_models(path, out=io.StringIO(), settings=SETTINGS)
    assert models.test_models(path) == []
    with duckdb.connect(str(path)) as con:
        con.execute("insert into illuminate.sites (site_id, site_name) values (2, 'A'), (2, 'A again')")
        con.execute(
            "insert into illuminate.enrollment (student_id, site_id, entry_date, _academic_year)"
            " values (1, 2, null, 2027)"
        )
    failures = models.test_models(path)  # the staging models are views: no rebuild needed
    assert "stg_sites: unique (site_id): 1 offending rows" in failures
    assert "stg_enrollment: not_null entry_date: 1 offending rows" in failures
    assert not any(f.startswith(("stg_sites: not_null", "stg_enrollment: unique")) for f in failures)
