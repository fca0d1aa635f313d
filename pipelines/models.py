"""The SQL layer: builds the models of `sql/` into schema `analytics` of the warehouse, and runs their tests.

Models are the `.sql` files of the installed `sql` package, one SELECT each:

- `sql/staging/stg_*.sql`: views over the raw tables of schema `illuminate` (cleaning and casts only);
- `sql/intermediate/int_*.sql`: views shared by several marts;
- `sql/marts/{dim,fct,agg}_*.sql` and `sql/reports/rpt_*.sql`: tables.

A model's dependencies are the tables its SELECT reads (`analytics.x`, `illuminate.x`), found by parsing it with
sqlglot; the runner builds them in dependency order (`graphlib`) inside one transaction, so a failure leaves the
previous `analytics` relations as they were and raises `ModelError` naming the model's file and DuckDB's message.

`illuminate` and `analytics` are the default schemas: a build for another pair (`ModelSchemas`, e.g. raw tables in
`illuminate_north` and models in `analytics_north`) runs the same files with their schema references renamed.

`sql/macros.sql` holds the DuckDB macros the models call (`null_if_blank`): the runner creates them in schema
`analytics` before the models; on PostgreSQL `models_postgres` expands each call into the macro's body.

Raw tables that the sync has not created (yet), or columns that dlt never created because every value was null (the
child tables of `Assessment/{id}/View` only exist once an assessment was fetched), are replaced in the model's SQL
by a relation with the declared columns (NULL where missing): the catalog declares the columns of every endpoint
table, `sql/staging/sources.toml` those of the View's child tables. Every model therefore builds, empty, on a
warehouse where an endpoint returned nothing.

`analytics.settings` (one row) holds the settings the models read: `today`, the chronic absence thresholds. They
are resolved the dlt way (`[models]` in `.dlt/config.toml`, or `MODELS__TODAY`, `MODELS__CHRONIC_ABSENCE_THRESHOLD`,
`MODELS__CHRONIC_ABSENCE_MIN_DAYS`).

Model tests are declared in `tests.toml` beside the models: key uniqueness, not-null columns, relationships (every
foreign key found in its dimension) and row assertions; every staging model of a catalog table also gets a key test
(unique and not null) generated from the catalog's primary key. `test_models` runs them.
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from graphlib import CycleError, TopologicalSorter
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TextIO

import duckdb
import sqlglot
from dlt.common.configuration import configspec, resolve_configuration
from dlt.common.configuration.specs import BaseConfiguration
from sqlglot import exp
from sqlglot.errors import SqlglotError

from illuminate_sync.pipelines.duckdb_settings import (
    DUCKDB_WRITE_CONFIG,
    check_memory_limit,
    out_of_memory_message,
    with_memory_limit,
)
from illuminate_sync.sources.illuminate.catalog import load_catalog
from illuminate_sync.sources.illuminate.errors import ConfigurationError, IlluminateError
from illuminate_sync.sources.illuminate.settings import DATASET_NAME, SLICE_YEAR_COLUMN

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

__all__ = [
    "MODEL_SCHEMA",
    "Macro",
    "Model",
    "ModelDatabase",
    "ModelError",
    "ModelSchemas",
    "ModelSettings",
    "ModelTest",
    "ModelsConfiguration",
    "build_into",
    "build_models",
    "check_memory_limit",
    "declared_specs",
    "discover_models",
    "duckdb_database",
    "key_tests",
    "load_macros",
    "load_model_tests",
    "replace_relation",
    "run_model_tests",
    "test_models",
]

MODEL_SCHEMA = "analytics"
"""The schema the models are built into (same DuckDB file as the raw tables)."""

SOURCE_SCHEMA = DATASET_NAME
"""The schema of the raw tables, loaded by the sync."""

SCHEMA_NAME = r"[a-z_][a-z0-9_]*"
"""A schema the models are built into or read: written unquoted in the statements the runner generates, so a plain
lower-case SQL name (DuckDB and PostgreSQL read it alike)."""

SETTINGS_RELATION = "settings"
"""`analytics.settings`: one row with the resolved settings, created by the runner before the models."""

LAYERS: dict[str, str] = {"staging": "view", "intermediate": "view", "marts": "table", "reports": "table"}
"""Model folders in build-priority order, and what each layer's models are built as."""

DUCKDB_TYPES: dict[str, str] = {
    "bigint": "BIGINT",
    "text": "VARCHAR",
    "date": "DATE",
    "timestamp": "TIMESTAMP",
    "bool": "BOOLEAN",
    "double": "DOUBLE",
}

DEFAULT_CHRONIC_ABSENCE_THRESHOLD = 0.10
DEFAULT_CHRONIC_ABSENCE_MIN_DAYS = 10

MACROS_FILE = "macros.sql"
"""The file of `sql/` holding the macros the models call."""

_NAME = r"[A-Za-z_][A-Za-z0-9_]*"


class ModelError(IlluminateError):
    """A model could not be discovered, ordered or built: the one-line message names the model's file."""


# ------------------------------------------------------------------------------------------------------- settings
@dataclass(frozen=True)
class ModelSettings:
    """The settings the models read from `analytics.settings`."""

    today: date | None = None
    """The date `is_current` and "enrolled today" refer to; None means DuckDB's `current_date` at build time."""
    chronic_absence_threshold: float = DEFAULT_CHRONIC_ABSENCE_THRESHOLD
    """Chronically absent: absent on at least this share of the days enrolled."""
    chronic_absence_min_days: int = DEFAULT_CHRONIC_ABSENCE_MIN_DAYS
    """... counted only for students enrolled at least this many days."""

    def __post_init__(self) -> None:
        if not 0 < self.chronic_absence_threshold <= 1:
            raise ConfigurationError(
                f"{THRESHOLD_VARIABLE}: {self.chronic_absence_threshold:g} is not {THRESHOLD_EXPECTED}"
            )
        if self.chronic_absence_min_days < 1:
            raise ConfigurationError(f"{MIN_DAYS_VARIABLE}: {self.chronic_absence_min_days} is not {MIN_DAYS_EXPECTED}")

    @classmethod
    def resolve(cls) -> ModelSettings:
        """The settings from dlt's configuration: `[models]` in `.dlt/config.toml` or `MODELS__*` variables."""
        config = resolve_configuration(ModelsConfiguration())
        today = _parsed(config.today, TODAY_VARIABLE, _parse_date, TODAY_EXPECTED)
        threshold = _parsed(config.chronic_absence_threshold, THRESHOLD_VARIABLE, _parse_share, THRESHOLD_EXPECTED)
        min_days = _parsed(config.chronic_absence_min_days, MIN_DAYS_VARIABLE, _parse_days, MIN_DAYS_EXPECTED)
        return cls(
            today=today,
            chronic_absence_threshold=DEFAULT_CHRONIC_ABSENCE_THRESHOLD if threshold is None else threshold,
            chronic_absence_min_days=DEFAULT_CHRONIC_ABSENCE_MIN_DAYS if min_days is None else min_days,
        )


@configspec
class ModelsConfiguration(BaseConfiguration):
    """`[models]` in `.dlt/config.toml` or the `MODELS__*` variables, as dlt resolves them.

    Each field is the text the user wrote (dlt hands a TOML number or date to a `str` field as its text): a share may
    be written `10%` and a count `10.0`, which dlt's float and int coercion refuse, so `ModelSettings.resolve` parses
    them, with one-line errors that name the variable. Empty text means the default.
    """

    today: str | None = None
    chronic_absence_threshold: str | None = None
    chronic_absence_min_days: str | None = None

    __section__: ClassVar[str] = "models"
    """Looked up under `models` only: a bare `TODAY` variable of the environment is not this setting."""


TODAY_VARIABLE = "MODELS__TODAY"
TODAY_EXPECTED = "a date as YYYY-MM-DD (leave it unset for the real date)"
THRESHOLD_VARIABLE = "MODELS__CHRONIC_ABSENCE_THRESHOLD"
THRESHOLD_EXPECTED = "a share of days in (0, 1], e.g. 0.1 or 10%"
MIN_DAYS_VARIABLE = "MODELS__CHRONIC_ABSENCE_MIN_DAYS"
MIN_DAYS_EXPECTED = "a whole number of days >= 1"


def _parsed(raw: str | None, variable: str, parse: Callable[[Any], Any], expected: str) -> Any:
    """`raw` parsed, None when unset or blank; a value that does not parse is a one-line error naming `variable`."""
    if raw is None or not raw.strip():
        return None
    try:
        return parse(raw)
    except (TypeError, ValueError):
        raise ConfigurationError(f"{variable}: {raw!r} is not {expected}") from None


def _parse_date(raw: Any) -> date:
    if isinstance(raw, date):
        return raw
    return date.fromisoformat(str(raw).strip())


def _parse_share(raw: Any) -> float:
    """A fraction (`0.1`) or a percentage (`10%`). A bare `10` is refused rather than read as 10%: it is out of
    range as a fraction, and guessing which the user meant would hide a typo such as `1.0` for `0.1`."""
    text = str(raw).strip()
    if text.endswith("%"):
        return float(text[:-1]) / 100
    return float(text)


def _parse_days(raw: Any) -> int:
    value = float(str(raw).strip())
    if value != int(value):
        raise ValueError(raw)
    return int(value)


# -------------------------------------------------------------------------------------------------------- schemas
@dataclass(frozen=True)
class ModelSchemas:
    """Where a build reads the raw tables (`source`) and builds the models (`model`): `illuminate` and `analytics`
    by default, `illuminate_north` and `analytics_north` for instance `north`.

    The model files always name the default schemas (`illuminate.students`, `analytics.stg_students`): one SQL source,
    which reads as it runs in the default warehouse and which sqlglot, DuckDB's CLI and an editor parse as it is (a
    placeholder such as `{{ source }}` would not parse). For other schemas `rename` rewrites each schema-qualified
    table (and column) reference of a statement on sqlglot's tree, in place in the text, so nothing else changes."""

    source: str = SOURCE_SCHEMA
    model: str = MODEL_SCHEMA

    def __post_init__(self) -> None:
        for role, name in (("raw tables", self.source), ("models", self.model)):
            if not re.fullmatch(SCHEMA_NAME, name):
                raise ConfigurationError(
                    f"schema {name!r} for the {role}: the models need a lower-case SQL name (a-z, 0-9, _)"
                )
        if self.source == self.model:
            raise ConfigurationError(f"schema {self.source}: the raw tables and the models need two schemas")

    @property
    def is_default(self) -> bool:
        return self.source == SOURCE_SCHEMA and self.model == MODEL_SCHEMA

    def rename(self, sql: str) -> str:
        """`sql` (DuckDB SQL naming the default schemas) naming these schemas; unchanged for the default ones."""
        if self.is_default:
            return sql
        return rename_schemas(sql, self.source, self.model)


DEFAULT_SCHEMAS = ModelSchemas()


@lru_cache(maxsize=1024)
def rename_schemas(sql: str, source: str, model: str) -> str:
    """`sql` with every table (or column) qualified by schema `illuminate` qualified by `source` instead, and every
    one qualified by `analytics` by `model`. Found on sqlglot's tree, so a schema's name in a string literal, a
    comment or an unqualified name is left as it is; replaced in the text at the positions sqlglot records."""
    try:
        tree = sqlglot.parse_one(sql, read="duckdb")
    except SqlglotError as error:
        raise ModelError(
            f"cannot parse SQL to rename its schemas: {_one_line(str(error).strip().splitlines()[0])}"
        ) from None
    targets = {SOURCE_SCHEMA: source, MODEL_SCHEMA: model}
    spans: list[tuple[int, int, str]] = []
    for node in tree.find_all(exp.Table, exp.Column):
        schema = node.args.get("db")
        if node.args.get("catalog") or not isinstance(schema, exp.Identifier):
            continue
        target = targets.get(schema.name.lower())
        if target is None:
            continue
        start, end = schema.meta.get("start"), schema.meta.get("end")
        if start is None or end is None:  # pragma: no cover - sqlglot records both for every parsed identifier
            raise ModelError(f"sqlglot gave no position for {node.sql('duckdb')}")
        spans.append((start, end + 1, target))
    for start, end, target in sorted(spans, reverse=True):  # from the end, so that earlier offsets hold
        sql = sql[:start] + target + sql[end:]
    return sql


# --------------------------------------------------------------------------------------------------------- models
@dataclass(frozen=True)
class Reference:
    """A table a model's SELECT reads, where its name is written in the model's SQL."""

    schema: str
    """`analytics` or `illuminate` (lower-cased)."""
    name: str
    """The table's name (lower-cased)."""
    start: int
    end: int
    """`Model.sql[start:end]` is the qualified name as written (`illuminate."students"`)."""


@dataclass(frozen=True)
class Model:
    """One `.sql` file of the `sql` package."""

    name: str
    layer: str
    file: str
    """The file as shown in messages: `sql/marts/fct_enrollments.sql`."""
    sql: str
    """The SELECT without its comments."""
    description: str
    """The header comment: what the model holds, its grain and key."""
    refs: frozenset[str]
    """Relations of schema `analytics` it reads."""
    sources: frozenset[str]
    """Raw tables of schema `illuminate` it reads."""
    source_references: tuple[Reference, ...] = ()
    """Where `sql` names those raw tables (a stand-in replaces the name there)."""

    @property
    def materialization(self) -> str:
        return LAYERS[self.layer]


def _sql_root() -> Traversable:
    return resources.files("illuminate_sync.sql")


def _split_sql(text: str) -> tuple[str, str]:
    """(code without comments, header comment). Comments go so that the stored view and the one-line error messages
    hold the SQL alone; string literals are kept as they are."""
    code: list[str] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if text.startswith("--", i):
            end = text.find("\n", i)
            end = n if end < 0 else end
            code.append(" ")
            i = end
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            end = n if end < 0 else end + 2
            code.append(" ")
            i = end
        elif ch in ("'", '"'):
            j = i + 1
            while j < n:
                if text[j] == ch:
                    if j + 1 < n and text[j + 1] == ch:  # doubled quote inside the literal
                        j += 2
                        continue
                    break
                j += 1
            code.append(text[i : j + 1])
            i = j + 1
        else:
            code.append(ch)
            i += 1
    header: list[str] = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("--"):
            header.append(stripped[2:].strip())
        elif stripped:
            break
    return "".join(code).strip().rstrip(";").strip(), "\n".join(header).strip()


@lru_cache(maxsize=256)
def read_references(file: str, sql: str) -> tuple[Reference, ...]:
    """The tables of schema `analytics` or `illuminate` that `sql` (one DuckDB SELECT) reads, in the order written.

    Parsed with sqlglot, so a name in a string, a column or a function call is not a table. Cached: the test run and
    the PostgreSQL build discover the models again (parsing the 70 models takes 0.3-0.45 s on 2 busy cores)."""
    try:
        tree = sqlglot.parse_one(sql, read="duckdb")
    except SqlglotError as error:
        raise ModelError(f"{file}: cannot parse its SQL: {_one_line(str(error).strip().splitlines()[0])}") from None
    references: list[Reference] = []
    for table in tree.find_all(exp.Table):
        schema, name = table.args.get("db"), table.this
        if table.catalog or not isinstance(schema, exp.Identifier) or not isinstance(name, exp.Identifier):
            continue
        if schema.name.lower() not in (MODEL_SCHEMA, SOURCE_SCHEMA):
            continue
        start, end = schema.meta.get("start"), name.meta.get("end")
        if start is None or end is None:  # pragma: no cover - sqlglot records both for every parsed identifier
            raise ModelError(f"{file}: sqlglot gave no position for {table.sql('duckdb')}")
        references.append(Reference(schema.name.lower(), name.name.lower(), start, end + 1))
    return tuple(sorted(references, key=lambda reference: reference.start))


def parse_model(name: str, layer: str, file: str, text: str) -> Model:
    code, description = _split_sql(text)
    references = read_references(file, code)
    refs = {reference.name for reference in references if reference.schema == MODEL_SCHEMA} - {name}
    sources = tuple(reference for reference in references if reference.schema == SOURCE_SCHEMA)
    return Model(
        name,
        layer,
        file,
        code,
        description,
        frozenset(refs),
        frozenset(reference.name for reference in sources),
        sources,
    )


def discover_models() -> dict[str, Model]:
    """Every model of the `sql` package by name, checked: unique names, known references, no cycles."""
    root = _sql_root()
    models: dict[str, Model] = {}
    for layer in LAYERS:
        folder = root / layer
        if not folder.is_dir():
            continue
        for entry in sorted(folder.iterdir(), key=lambda item: item.name):
            if not entry.name.endswith(".sql"):
                continue
            name = entry.name[: -len(".sql")].lower()
            file = f"sql/{layer}/{entry.name}"
            if not re.fullmatch(_NAME, name):
                raise ModelError(f"{file}: a model's file name must be a plain SQL identifier")
            if name in models:
                raise ModelError(f"{file}: model name {name} is also used by {models[name].file}")
            if name == SETTINGS_RELATION:
                raise ModelError(f"{file}: the name {name} is reserved for the runner's settings table")
            models[name] = parse_model(name, layer, file, entry.read_text("utf-8"))
    for model in models.values():
        if model.layer == "staging" and model.refs - {SETTINGS_RELATION}:
            raise ModelError(f"{model.file}: a staging model reads only schema {SOURCE_SCHEMA}")
        if model.layer != "staging" and model.sources:
            raise ModelError(f"{model.file}: only staging models read schema {SOURCE_SCHEMA} (use analytics.stg_*)")
    build_order(models)
    return models


def build_order(models: Mapping[str, Model]) -> list[Model]:
    """The models in dependency order, in waves: every model whose dependencies are built, ordered by layer then
    name, then the next wave. ModelError (one line) on a reference to a model that does not exist, or a cycle."""
    layer_rank = {layer: rank for rank, layer in enumerate(LAYERS)}
    graph: dict[str, set[str]] = {}
    for model in sorted(models.values(), key=lambda m: (layer_rank[m.layer], m.name)):
        unknown = sorted(ref for ref in model.refs if ref not in models and ref != SETTINGS_RELATION)
        if unknown:
            raise ModelError(
                f"{model.file}: reads {', '.join(f'{MODEL_SCHEMA}.{ref}' for ref in unknown)}, which no model builds"
            )
        graph[model.name] = {ref for ref in model.refs if ref in models}
    sorter = TopologicalSorter(graph)
    try:
        sorter.prepare()
    except CycleError as error:
        cycle = " -> ".join(models[name].file for name in reversed(error.args[1]))  # each reads the next
        raise ModelError(f"models read each other in a cycle: {cycle}") from None
    ordered: list[Model] = []
    while sorter.is_active():
        ready = sorted((models[name] for name in sorter.get_ready()), key=lambda m: (layer_rank[m.layer], m.name))
        ordered.extend(ready)
        sorter.done(*(model.name for model in ready))
    return ordered


# --------------------------------------------------------------------------------------------------------- macros
@dataclass(frozen=True)
class Macro:
    """One scalar macro of `sql/macros.sql`."""

    name: str
    parameters: tuple[str, ...]
    body: str
    """The expression the macro stands for, in DuckDB SQL."""
    statement: str
    """`create or replace macro analytics.<name>(...) as <body>`: what the DuckDB build runs."""

    def statement_in(self, schema: str) -> str:
        """`statement` creating the macro in `schema` (the build's model schema)."""
        if schema == MODEL_SCHEMA:
            return self.statement
        tree = sqlglot.parse_one(self.statement, read="duckdb")
        tree.this.this.set("db", exp.to_identifier(schema))
        return tree.sql("duckdb", comments=False)


MACRO_FORM = "create or replace macro name(arguments) as expression"


@lru_cache(maxsize=1)
def load_macros() -> tuple[Macro, ...]:
    """The macros of `sql/macros.sql` (none when the file is missing), checked: scalar, distinct names."""
    path = _sql_root() / MACROS_FILE
    return _parse_macros(path.read_text("utf-8")) if path.is_file() else ()


@lru_cache(maxsize=4)
def _parse_macros(text: str) -> tuple[Macro, ...]:
    file = f"sql/{MACROS_FILE}"
    try:
        statements = [statement for statement in sqlglot.parse(text, read="duckdb") if statement is not None]
    except SqlglotError as error:
        raise ModelError(f"{file}: cannot parse: {_one_line(str(error).strip().splitlines()[0])}") from None
    macros: dict[str, Macro] = {}
    for statement in statements:
        macro = _macro_of(statement, file)
        if macro.name in macros:
            raise ModelError(f"{file}: macro {macro.name} is defined twice")
        macros[macro.name] = macro
    for macro in macros.values():
        calls = {call.name.lower() for call in sqlglot.parse_one(macro.body, read="duckdb").find_all(exp.Anonymous)}
        nested = sorted(calls & macros.keys())
        if nested:  # the PostgreSQL expansion is one level deep
            raise ModelError(f"{file}: macro {macro.name} calls another macro ({', '.join(nested)}): write it out")
    return tuple(macros.values())


def _macro_of(statement: exp.Expression, file: str) -> Macro:
    function = statement.this if isinstance(statement, exp.Create) else None
    if (
        not isinstance(statement, exp.Create)
        or str(statement.args.get("kind", "")).upper() != "MACRO"
        or not isinstance(function, exp.UserDefinedFunction)
        or not isinstance(function.this, exp.Table)
        or not all(isinstance(parameter, exp.Identifier) for parameter in function.expressions)
        or not isinstance(statement.expression, exp.Expression)
        or isinstance(statement.expression, exp.Query)
    ):
        raise ModelError(f"{file}: every statement must be `{MACRO_FORM}` (a scalar macro), not {_shown(statement)}")
    name = function.this
    if name.catalog or (name.db and name.db.lower() != MODEL_SCHEMA):
        raise ModelError(f"{file}: macro {name.sql('duckdb')} must be created in schema {MODEL_SCHEMA} (leave it out)")
    name.set("db", exp.to_identifier(MODEL_SCHEMA))
    statement.set("replace", True)  # every build creates them again
    return Macro(
        name=name.name.lower(),
        parameters=tuple(parameter.name.lower() for parameter in function.expressions),
        body=statement.expression.sql("duckdb", comments=False),
        statement=statement.sql("duckdb", comments=False),
    )


def _shown(statement: exp.Expression) -> str:
    text = _one_line(statement.sql("duckdb", comments=False))
    return text if len(text) <= 60 else text[:57] + "..."


# ------------------------------------------------------------------------------------------------------ databases
def _one_line(message: str) -> str:
    return " ".join(str(message).split())


def _quote_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _same(sql: str) -> str:
    return sql


def _error_line(error: BaseException) -> str:
    """DuckDB's message on one line; running out of memory says which setting to raise instead (DuckDB's own
    message suggests SQL settings a user of this command cannot set)."""
    if isinstance(error, duckdb.OutOfMemoryException):
        return out_of_memory_message("building the models")
    return _one_line(str(error))


@dataclass(frozen=True)
class ModelDatabase:
    """An open connection the build and test loops run on: DuckDB here, PostgreSQL in `models_postgres`.

    The models, stand-ins, settings and test queries are written once, in DuckDB SQL; `translate` turns each SELECT
    into the database's own SQL (DuckDB: unchanged). The statements around them (create, drop, comment) are written
    in the SQL both databases share."""

    execute: Callable[[str], list[tuple[Any, ...]]]
    """Runs one statement and returns its rows (none for DDL)."""
    errors: tuple[type[BaseException], ...]
    """What a failing statement raises: the build turns these into ModelError naming the model's file."""
    message: Callable[[BaseException], str] = _error_line
    """The one-line message of such an error."""
    translate: Callable[[str], str] = _same
    """A SELECT written in DuckDB SQL, as this database's SQL."""
    type_names: Mapping[str, str] = field(default_factory=dict)
    """`information_schema.columns.data_type` -> DuckDB's name of the type, to compare with the declared columns."""
    replaces_in_place: bool = True
    """DuckDB: `create or replace`. PostgreSQL has no `create or replace table`, and its `create or replace view`
    cannot change a column's type: there a relation is dropped (with the views that read it) and created again."""
    setup: tuple[str, ...] = ()
    """Statements run once the schema exists, before the settings and the models (PostgreSQL's helper functions)."""
    creates_macros: bool = True
    """Create the macros of `sql/macros.sql` in schema `analytics` before the models. PostgreSQL has no untyped
    macros: there `translate` expands each call into the macro's body instead."""
    analyzes_tables: bool = False
    """Gather a table's statistics once it is built, for the plans of the marts that read it (PostgreSQL gathers
    them only after a commit, by autovacuum)."""
    schemas: ModelSchemas = DEFAULT_SCHEMAS
    """The schemas the build reads and writes: each statement of the models and tests is renamed (`ModelSchemas.rename`)
    before `translate`."""

    def select(self, sql: str) -> str:
        """A SELECT of the models or tests (DuckDB SQL naming the default schemas) as this database runs it."""
        return self.translate(self.schemas.rename(sql))


# ------------------------------------------------------------------------------------------------ source columns
@lru_cache(maxsize=1)
def declared_sources() -> dict[str, dict[str, str]]:
    """Raw tables and their columns (DuckDB types) as models may read them: the catalog plus `sources.toml`."""
    declared: dict[str, dict[str, str]] = {}
    for table, endpoint in load_catalog().items():
        columns = {column: DUCKDB_TYPES[kind] for column, kind in endpoint.columns.items()}
        if endpoint.strategy == "academic_year_slice":
            columns[SLICE_YEAR_COLUMN] = "BIGINT"
        columns.update(dict.fromkeys(endpoint.window_columns, "VARCHAR"))
        columns["_dlt_load_id"] = "VARCHAR"
        columns["_dlt_id"] = "VARCHAR"
        declared[table] = columns
    extra = _sql_root() / "staging" / "sources.toml"
    if extra.is_file():
        for table, spec in tomllib.loads(extra.read_text("utf-8")).get("sources", {}).items():
            columns = declared.setdefault(table, {})
            for column, kind in spec.get("columns", {}).items():
                columns[column] = DUCKDB_TYPES.get(kind, kind.upper())
    return declared


def existing_columns(database: ModelDatabase, schema: str) -> dict[str, dict[str, str]]:
    """Column name -> type (DuckDB's name for it) of every table of `schema`, names lower-cased."""
    rows = database.execute(
        "select table_name, column_name, data_type from information_schema.columns"
        f" where table_schema = {_quote_literal(schema)}"
    )
    existing: dict[str, dict[str, str]] = {}
    for table, column, data_type in rows:
        kind = str(data_type)
        existing.setdefault(str(table).lower(), {})[str(column).lower()] = database.type_names.get(kind, kind.upper())
    return existing


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _stand_in(table: str, columns: Mapping[str, str], existing: Mapping[str, str] | None) -> str:
    """A relation with exactly the declared columns: the raw table's where it has them, NULL elsewhere. A column
    already of its declared type is read as it is: `try_cast` is only for the others (on PostgreSQL it is a function
    call per value, which on a 300,000-row table costs seconds)."""
    if existing is None:
        select = ", ".join(f"cast(null as {kind}) as {_ident(column)}" for column, kind in columns.items())
        return f"(select {select} where false)"
    select = ", ".join(_stand_in_column(column, kind, existing.get(column.lower())) for column, kind in columns.items())
    return f"(select {select} from {SOURCE_SCHEMA}.{_ident(table)})"


def _stand_in_column(column: str, kind: str, present: str | None) -> str:
    if present is None:
        return f"cast(null as {kind}) as {_ident(column)}"
    if present == kind:
        return _ident(column)
    return f"try_cast({_ident(column)} as {kind}) as {_ident(column)}"


def resolve_sources(model: Model, existing: Mapping[str, Mapping[str, str]]) -> str:
    """The model's SQL with every raw table that lacks a declared column, or has one of another type (dlt infers
    the types of the View's fields: ids and numbers arrive as text), replaced by a stand-in with the declared
    columns and types."""
    declared = declared_sources()
    replacements: dict[str, str] = {}
    for table in model.sources:
        columns = declared.get(table)
        present = existing.get(table)
        if columns is None:
            if present is None:
                raise ModelError(
                    f"{model.file}: reads {SOURCE_SCHEMA}.{table}, which neither exists nor is declared"
                    " in the endpoint catalog or sql/staging/sources.toml"
                )
            continue
        if present is not None and all(present.get(column.lower()) == kind for column, kind in columns.items()):
            continue
        replacements[table] = _stand_in(table, columns, present)
    if not replacements:
        return model.sql
    sql = model.sql
    for reference in sorted(model.source_references, key=lambda item: item.start, reverse=True):  # keeps offsets
        if reference.name in replacements:
            sql = sql[: reference.start] + replacements[reference.name] + sql[reference.end :]
    return sql


# ---------------------------------------------------------------------------------------------------------- build
def relation_kinds(database: ModelDatabase) -> dict[str, str]:
    """Name -> "view" or "table" of every relation of the model schema (`analytics`)."""
    rows = database.execute(
        "select table_name, table_type from information_schema.tables"
        f" where table_schema = {_quote_literal(database.schemas.model)}"
    )
    return {str(name).lower(): ("view" if kind == "VIEW" else "table") for name, kind in rows}


def replace_relation(database: ModelDatabase, kind: str, name: str, select: str) -> None:
    """`analytics.<name>` as a new `kind` ("view" or "table") holding `select` (already in the database's SQL)."""
    relation = f"{database.schemas.model}.{name}"
    current = relation_kinds(database).get(name)
    if database.replaces_in_place:
        if current is not None and current != kind:
            database.execute(f"drop {current} {relation}")
        database.execute(f"create or replace {kind} {relation} as\n{select}")
        return
    if current is not None:
        database.execute(f"drop {current} {relation} cascade")
    database.execute(f"create {kind} {relation} as\n{select}")


def settings_select(settings: ModelSettings) -> str:
    """The one row of `analytics.settings`, as a DuckDB SELECT."""
    today = "current_date" if settings.today is None else f"date '{settings.today.isoformat()}'"
    return (
        f"select cast({today} as date) as today,"
        f" cast({settings.chronic_absence_threshold!r} as double) as chronic_absence_threshold,"
        f" cast({settings.chronic_absence_min_days} as integer) as chronic_absence_min_days,"
        " cast(current_timestamp as timestamp) as built_at"
    )


def _write_settings(database: ModelDatabase, settings: ModelSettings) -> None:
    replace_relation(database, "table", SETTINGS_RELATION, database.select(settings_select(settings)))
    database.execute(
        f"comment on table {database.schemas.model}.{SETTINGS_RELATION} is "
        + _quote_literal("The settings the models were built with (one row); see sql/README.md.")
    )


def build_into(
    database: ModelDatabase,
    order: Iterable[Model],
    existing: Mapping[str, Mapping[str, str]],
    settings: ModelSettings,
    out: TextIO,
) -> int:
    """Create the model schema (`analytics`), its settings row and every model of `order` (in that order); the caller
    holds the transaction. Returns the number of models built."""
    database.execute(f"create schema if not exists {database.schemas.model}")
    for statement in database.setup:
        database.execute(statement)
    if database.creates_macros:
        _create_macros(database)
    _write_settings(database, settings)
    built = 0
    for model in order:
        _build_one(database, model, existing, out)
        built += 1
    return built


def _create_macros(database: ModelDatabase) -> None:
    """The macros of `sql/macros.sql`, in schema `analytics` of the file: a view calling one is bound when it is
    read, also by a BI tool on its own connection, so they are stored beside the views (not temporary)."""
    for macro in load_macros():
        try:
            database.execute(macro.statement_in(database.schemas.model))
        except database.errors as error:
            raise ModelError(f"sql/{MACROS_FILE} failed: macro {macro.name}: {database.message(error)}") from None


def built_message(count: int, seconds: float, schema: str = MODEL_SCHEMA) -> str:
    """The build's last progress line."""
    return f"built {count} models into {schema} in {seconds:.1f} s"


def build_models(
    duckdb_path: Path,
    out: TextIO = sys.stderr,
    settings: ModelSettings | None = None,
    select: Iterable[str] | None = None,
    schemas: ModelSchemas = DEFAULT_SCHEMAS,
) -> None:
    """Build every model (or those named in `select` and what they read) into schema `schemas.model` (`analytics`)
    from the raw tables of `schemas.source` (`illuminate`) of the DuckDB file `duckdb_path`.

    All-or-nothing: the models are built in one transaction; on failure it is rolled back and `ModelError` names
    the model's file and DuckDB's message. Settings default to `ModelSettings.resolve()`.
    """
    con = open_for_models(duckdb_path, f"illuminate-sync run --duckdb {duckdb_path}")
    try:
        build_models_on(con, str(duckdb_path), out, settings, select, schemas)
    finally:
        con.close()


def open_for_models(duckdb_path: Path, first_run: str) -> duckdb.DuckDBPyConnection:
    """The DuckDB file a build writes, opened with the models' memory limit; a missing file (the line names
    `first_run`, the command that creates it) or one DuckDB cannot open is a one-line ModelError."""
    if not Path(duckdb_path).exists():
        raise ModelError(f"{duckdb_path} does not exist: run `{first_run}` first")
    try:
        return duckdb.connect(str(duckdb_path), config=with_memory_limit(DUCKDB_WRITE_CONFIG))
    except duckdb.Error as error:
        raise ModelError(f"cannot open {duckdb_path}: {_one_line(str(error))}") from None


def build_models_on(
    con: duckdb.DuckDBPyConnection,
    label: str,
    out: TextIO = sys.stderr,
    settings: ModelSettings | None = None,
    select: Iterable[str] | None = None,
    schemas: ModelSchemas = DEFAULT_SCHEMAS,
) -> None:
    """`build_models` on an open DuckDB connection (`label` names the database in messages): the instances of
    `run --all-instances` share one connection to their file, each building on a cursor of it."""
    settings = settings or ModelSettings.resolve()
    models = discover_models()
    order = build_order(models)
    if select is not None:
        wanted = _with_dependencies(models, select)
        order = [model for model in order if model.name in wanted]
    started = time.monotonic()
    database = duckdb_database(con, schemas)
    existing = existing_columns(database, schemas.source)
    if not existing:
        raise ModelError(f"{label} has no raw tables in schema {schemas.source}: run `illuminate-sync run` first")
    con.execute("begin transaction")
    try:
        built = build_into(database, order, existing, settings, out)
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    print(built_message(built, time.monotonic() - started, schemas.model), file=out)


def duckdb_database(con: duckdb.DuckDBPyConnection, schemas: ModelSchemas = DEFAULT_SCHEMAS) -> ModelDatabase:
    def execute(sql: str) -> list[tuple[Any, ...]]:
        return con.execute(sql).fetchall()

    return ModelDatabase(execute=execute, errors=(duckdb.Error,), schemas=schemas)


def _with_dependencies(models: Mapping[str, Model], names: Iterable[str]) -> set[str]:
    wanted: set[str] = set()
    stack = list(names)
    while stack:
        name = stack.pop()
        if name in wanted:
            continue
        if name not in models:
            raise ModelError(f"no model named {name}")
        wanted.add(name)
        stack.extend(ref for ref in models[name].refs if ref in models)
    return wanted


def _build_one(database: ModelDatabase, model: Model, existing: Mapping[str, Mapping[str, str]], out: TextIO) -> None:
    started = time.monotonic()
    kind = model.materialization
    relation = f"{database.schemas.model}.{model.name}"
    try:
        replace_relation(database, kind, model.name, database.select(resolve_sources(model, existing)))
        if model.description:
            database.execute(f"comment on {kind} {relation} is {_quote_literal(model.description)}")
        detail = ""
        if kind == "table":
            if database.analyzes_tables:
                database.execute(f"analyze {relation}")
            rows = database.execute(f"select count(*) from {relation}")
            detail = f" {rows[0][0] if rows else 0:,} rows"
    except database.errors as error:
        raise ModelError(f"{model.file} failed: {database.message(error)}") from None
    print(f"  {kind:<5} {relation}{detail} ({time.monotonic() - started:.1f} s)", file=out)


# ---------------------------------------------------------------------------------------------------------- tests
@dataclass(frozen=True)
class ModelTest:
    """One declared test of a model: a query counting the offending rows (0 = pass)."""

    model: str
    kind: str
    description: str
    query: str

    @property
    def label(self) -> str:
        return f"{self.model}: {self.kind} {self.description}"


@dataclass
class _TestSpec:
    unique: list[list[str]] = field(default_factory=list)
    not_null: list[str] = field(default_factory=list)
    relationships: list[dict[str, Any]] = field(default_factory=list)
    assertions: list[str] = field(default_factory=list)


def _spec(model: str, file: str, raw: Mapping[str, Any]) -> _TestSpec:
    unknown = set(raw) - {"unique", "not_null", "relationships", "assertions"}
    if unknown:
        raise ModelError(f"{file}: [{model}] has unknown test kinds {', '.join(sorted(unknown))}")
    unique = raw.get("unique", [])
    if unique and all(isinstance(column, str) for column in unique):
        unique = [unique]
    return _TestSpec(
        unique=[list(key) for key in unique],
        not_null=list(raw.get("not_null", [])),
        relationships=[dict(item) for item in raw.get("relationships", [])],
        assertions=list(raw.get("assertions", [])),
    )


def load_model_tests() -> list[ModelTest]:
    """The generated staging key tests, then the tests declared in `sql/<layer>/tests.toml`, as queries that count
    offending rows (a declared test that repeats a generated one runs once)."""
    models = discover_models()
    tests: list[ModelTest] = []
    for model, spec in staging_key_specs(models).items():
        tests.extend(_tests_of(model, spec, models, CATALOG_FILE))
    for layer in LAYERS:
        file = tests_file(layer)
        for model, spec in declared_specs(layer, models).items():
            tests.extend(_tests_of(model, spec, models, file))
    return list({test.label: test for test in tests}.values())


def tests_file(layer: str) -> str:
    """The file declaring the tests of a layer's models, as messages name it."""
    return f"sql/{layer}/tests.toml"


def declared_specs(layer: str, models: Mapping[str, Model] | None = None) -> dict[str, _TestSpec]:
    """The tests declared in `sql/<layer>/tests.toml`, by model (none when the file is missing); tests of a model
    that is not one of `models` (default: the discovered ones) are a one-line ModelError."""
    path = _sql_root() / layer / "tests.toml"
    if not path.is_file():
        return {}
    file = tests_file(layer)
    models = discover_models() if models is None else models
    specs: dict[str, _TestSpec] = {}
    for model, raw in tomllib.loads(path.read_text("utf-8")).items():
        if model not in models:
            raise ModelError(f"{file}: tests declared for {model}, which is not a model")
        specs[model] = _spec(model, file, raw)
    return specs


def key_tests(model: str, key: Sequence[str], not_null: Sequence[str], file: str) -> list[ModelTest]:
    """The tests of a key generated rather than declared (`file` names where the key comes from): `key` unique (when
    given) and each of `not_null` never NULL, on `analytics.<model>`."""
    spec = _TestSpec(unique=[list(key)] if key else [], not_null=list(not_null))
    return _tests_of(model, spec, {}, file)


CATALOG_FILE = "sources/illuminate/endpoints.toml"
"""Where the keys of the generated staging tests are declared (named in their messages)."""


def staging_key_specs(models: Mapping[str, Model]) -> dict[str, _TestSpec]:
    """`stg_<table>` of every catalog table -> its key test: the catalog's primary key is unique and never NULL (as
    dbt projects declare `unique` and `not_null` on each staging model's key). Generated, so that a new endpoint's
    staging model is tested without a second declaration of its key."""
    specs: dict[str, _TestSpec] = {}
    for endpoint in load_catalog().values():
        model = f"stg_{endpoint.table}"
        if model in models and models[model].layer == "staging":
            key = list(endpoint.primary_key)
            specs[model] = _TestSpec(unique=[key], not_null=key)
    return specs


def _tests_of(model: str, spec: _TestSpec, models: Mapping[str, Model], file: str) -> list[ModelTest]:
    relation = f"{MODEL_SCHEMA}.{model}"
    tests: list[ModelTest] = []
    for key in spec.unique:
        columns = ", ".join(_ident(column) for column in key)
        tests.append(
            ModelTest(
                model,
                "unique",
                f"({', '.join(key)})",
                f"select count(*) from (select {columns} from {relation} group by all having count(*) > 1)",
            )
        )
    for column in spec.not_null:
        tests.append(
            ModelTest(model, "not_null", column, f"select count(*) from {relation} where {_ident(column)} is null")
        )
    for item in spec.relationships:
        columns = _column_list(item.get("columns", item.get("column")))
        target = item.get("to")
        if not columns or not isinstance(target, str):
            raise ModelError(f"{file}: [{model}] relationships need `column` (or `columns`) and `to`")
        if target not in models:
            raise ModelError(f"{file}: [{model}] relationship to {target}, which is not a model")
        fields = _column_list(item.get("fields", item.get("field"))) or columns
        if len(fields) != len(columns):
            raise ModelError(f"{file}: [{model}] relationship to {target}: `columns` and `fields` differ in length")
        present = " and ".join(f"child.{_ident(column)} is not null" for column in columns)
        match = " and ".join(
            f"parent.{_ident(target_column)} = child.{_ident(column)}" for column, target_column in zip(columns, fields)
        )
        tests.append(
            ModelTest(
                model,
                "relationship",
                f"({', '.join(columns)}) -> {target}({', '.join(fields)})",
                f"select count(*) from {relation} as child where {present}"
                f" and not exists (select 1 from {MODEL_SCHEMA}.{target} as parent where {match})",
            )
        )
    for condition in spec.assertions:
        tests.append(
            ModelTest(
                model,
                "assertion",
                condition,
                f"select count(*) from {relation} where not coalesce(({condition}), false)",
            )
        )
    return tests


def _column_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return [str(column) for column in value]


def test_models(duckdb_path: Path, schemas: ModelSchemas = DEFAULT_SCHEMAS) -> list[str]:
    """Run every declared model test on a built warehouse (models in `schemas.model`); returns one line per failure
    (empty: all pass)."""
    try:
        con = duckdb.connect(str(duckdb_path), read_only=True)
    except duckdb.Error as error:
        return [f"cannot open {duckdb_path}: {_one_line(str(error))}"]
    try:
        return test_models_on(con, schemas)
    finally:
        con.close()


def test_models_on(con: duckdb.DuckDBPyConnection, schemas: ModelSchemas = DEFAULT_SCHEMAS) -> list[str]:
    """`test_models` on an open DuckDB connection."""
    return run_model_tests(duckdb_database(con, schemas))


def run_model_tests(database: ModelDatabase, tests: Iterable[ModelTest] | None = None) -> list[str]:
    """`tests` (default: every declared model test) on `database`: one line per failing test (offending rows, or the
    error)."""
    failures: list[str] = []
    for test in load_model_tests() if tests is None else tests:
        try:
            rows = database.execute(database.select(test.query))
        except database.errors as error:
            failures.append(f"{test.label}: {database.message(error)}")
            continue
        offending = int(rows[0][0]) if rows else 0
        if offending:
            failures.append(f"{test.label}: {offending:,} offending rows")
    return failures


test_models.__test__ = False  # type: ignore[attr-defined]  # not a pytest test, despite its name
