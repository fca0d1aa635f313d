"""The models of `sql/` built on PostgreSQL from the same SQL: each DuckDB SELECT transpiled with sqlglot.

dlt's postgres destination loads the raw tables into schema `illuminate` of a PostgreSQL database;
`build_models_postgres` builds every model into schema `analytics` of that database exactly as `build_models` does on
DuckDB (same order, stand-ins for missing raw tables and columns, `analytics.settings`, comments, progress lines, one
transaction), through the loops of `pipelines.models`. `test_models_postgres` runs the declared model tests.

sqlglot (read "duckdb", write "postgres") already handles most of the dialect: DuckDB's `/` is float division
(`cast(a as double precision) / b`), `desc` sorts NULLs last in DuckDB (`desc nulls last`), `ilike`, `filter`,
`string_agg(... order by ...)`. `postgres_sql` adds rewrites for what the models use that PostgreSQL 15 lacks or
spells differently (see `_REWRITES`); a construct it cannot rewrite raises `TranspileError` rather than producing SQL
that means something else.

The macros of `sql/macros.sql` (which the DuckDB build creates in schema `analytics`) are expanded here instead: each
call becomes the macro's body with the call's arguments in place of its parameters. A PostgreSQL function would need
a declared type for each argument and its result where a DuckDB macro has none, and would be inlined by the planner
only under conditions (immutable, cheap arguments); the expansion gives PostgreSQL exactly the SQL the models held
before the macro existed, from the one definition, and no object that the views depend on.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable, Iterator
from functools import lru_cache, partial
from typing import TYPE_CHECKING, Any, TextIO

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

from illuminate_sync.pipelines.models import (
    DEFAULT_SCHEMAS,
    MODEL_SCHEMA,
    ModelDatabase,
    ModelError,
    ModelSchemas,
    ModelSettings,
    build_into,
    build_order,
    built_message,
    discover_models,
    existing_columns,
    load_macros,
    run_model_tests,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from psycopg2.extensions import connection as PgConnection

    from illuminate_sync.pipelines.network_models import NetworkBuild

__all__ = [
    "TranspileError",
    "build_models_postgres",
    "build_network_postgres",
    "helper_functions",
    "postgres_sql",
    "test_models_postgres",
    "test_network_postgres",
]


class TranspileError(ModelError):
    """A DuckDB construct `postgres_sql` cannot turn into PostgreSQL SQL of the same meaning."""


# ------------------------------------------------------------------------------------------------ helper functions
TRY_CAST_TYPES: dict[exp.DataType.Type, tuple[str, str]] = {
    exp.DataType.Type.BIGINT: ("bigint", "bigint"),
    exp.DataType.Type.INT: ("integer", "integer"),
    exp.DataType.Type.DOUBLE: ("double", "double precision"),
    exp.DataType.Type.DATE: ("date", "date"),
    exp.DataType.Type.TIMESTAMP: ("timestamp", "timestamp"),
    exp.DataType.Type.TIMESTAMPNTZ: ("timestamp", "timestamp"),
    exp.DataType.Type.TIMESTAMPTZ: ("timestamptz", "timestamp with time zone"),
    exp.DataType.Type.BOOLEAN: ("boolean", "boolean"),
}
"""Target type of a DuckDB `try_cast` -> (suffix of its helper function, PostgreSQL type). PostgreSQL 15 has no
`try_cast` (16's `pg_input_is_valid` neither covers every case nor exists on 15), and a regular expression cannot
tell `2026-02-30` from a date: `analytics.try_cast_<suffix>(text)` casts and returns NULL on a data exception."""

TEXT_TYPES = {exp.DataType.Type.VARCHAR, exp.DataType.Type.TEXT, exp.DataType.Type.CHAR, exp.DataType.Type.NVARCHAR}
"""A `try_cast` to text cannot fail: it stays a cast."""


ROUNDED_TYPES = {"bigint", "integer"}
"""DuckDB casts text holding a decimal number to an integer by rounding it (`'12.0'` -> 12, `'12.5'` -> 13, checked on
DuckDB 2.0), where PostgreSQL's integer input refuses it: these helpers read the text as numeric and round it."""


def _try_cast_function(suffix: str, pg_type: str, schema: str = MODEL_SCHEMA) -> str:
    value = "round(cast(value as numeric))" if pg_type in ROUNDED_TYPES else "value"
    return (
        f"create or replace function {schema}.try_cast_{suffix}(value text) returns {pg_type}"
        " language plpgsql stable parallel safe as $$\n"
        f"begin\n    return cast({value} as {pg_type});\n"
        "exception when data_exception then\n    return null;\nend\n$$"
    )


def helper_functions(schema: str = MODEL_SCHEMA) -> tuple[str, ...]:
    """The statements creating the helper functions in the model schema `schema`."""
    return tuple(_try_cast_function(*names, schema) for names in dict.fromkeys(TRY_CAST_TYPES.values()))


HELPER_FUNCTIONS: tuple[str, ...] = helper_functions()
"""Created in the model schema (`analytics`) by every build, before the models (`postgres_sql` output may call
them)."""


# ------------------------------------------------------------------------------------------------------ rewrites
@lru_cache(maxsize=1)
def _macro_bodies() -> dict[str, tuple[tuple[str, ...], exp.Expression]]:
    """Name -> (parameters, parsed body) of each macro of `sql/macros.sql` (parsed once: there are hundreds of
    calls)."""
    return {macro.name: (macro.parameters, sqlglot.parse_one(macro.body, read="duckdb")) for macro in load_macros()}


def _expand_macro(node: exp.Expression) -> exp.Expression:
    """A call of a macro of `sql/macros.sql` (`null_if_blank(x)`): its body, parenthesised, with the arguments in
    place of the parameters."""
    if not isinstance(node, exp.Anonymous):
        return node
    found = _macro_bodies().get(node.name.lower())
    if found is None:
        return node
    parameters, parsed = found
    if len(node.expressions) != len(parameters):
        raise TranspileError(f"{node.name} takes {len(parameters)} arguments, called with {len(node.expressions)}")
    arguments = dict(zip(parameters, node.expressions))
    body = parsed.copy()
    if isinstance(body, exp.Column) and not body.table and body.name.lower() in arguments:
        return arguments[body.name.lower()].copy()
    for column in list(body.find_all(exp.Column)):
        if not column.table and column.name.lower() in arguments:
            column.replace(arguments[column.name.lower()].copy())
    return exp.Paren(this=body)


def _qualify_to_distinct_on(node: exp.Expression) -> exp.Expression:
    """`qualify row_number() over (partition by p order by o) = 1` (every QUALIFY of the models) keeps the first row
    of each partition: PostgreSQL's `select distinct on (p) ... order by p, o`. sqlglot's own rewrite wraps the
    SELECT in a subquery whose `*` also returns its helper column `_w` (and repeats the window's other columns), which
    breaks `select *` and `select *, count(*) over (...) as n` models."""
    if not isinstance(node, exp.Select) or not node.args.get("qualify"):
        return node
    condition = node.args["qualify"].this
    window = _first_row_window(condition)
    if window is None or node.args.get("distinct") or node.args.get("order") or node.args.get("limit"):
        raise TranspileError(
            f"QUALIFY other than `row_number() over (partition by ... order by ...) = 1`: {condition.sql('duckdb')}"
        )
    partition = [item.copy() for item in window.args["partition_by"]]
    order = [item.copy() for item in window.args["order"].expressions]
    _unshadow_names(node, [*partition, *(item.this for item in order)])
    node.set("qualify", None)
    node.set("distinct", exp.Distinct(on=exp.Tuple(expressions=partition)))
    node.set("order", exp.Order(expressions=[*(exp.Ordered(this=item.copy()) for item in partition), *order]))
    return node


def _first_row_window(condition: exp.Expression) -> exp.Window | None:
    """The window of `row_number() over (partition by ... order by ...) = 1`, else None."""
    if not isinstance(condition, exp.EQ):
        return None
    window, one = condition.this, condition.expression
    if isinstance(window, exp.Literal):
        window, one = one, window
    if not (isinstance(one, exp.Literal) and one.this == "1" and isinstance(window, exp.Window)):
        return None
    if not isinstance(window.this, exp.RowNumber) or not window.args.get("partition_by"):
        return None
    if not window.args.get("order") or window.args.get("spec"):
        return None
    return window


def _unshadow_names(select: exp.Select, items: list[exp.Expression]) -> None:
    """In PostgreSQL's ORDER BY and DISTINCT ON a bare name means the output column of that name first, while the
    window read the input column: `select cast(student_id as bigint) as student_id ... partition by student_id`.
    Such a name gets the name of the SELECT's only table (a join would need to know which table has the column)."""
    outputs = {item.alias_or_name: item for item in select.expressions if item.alias_or_name}
    for item in items:
        if not isinstance(item, exp.Column) or item.table or item.name not in outputs:
            continue
        output = outputs[item.name]
        source = output.this if isinstance(output, exp.Alias) else output
        if isinstance(source, exp.Column) and source.name == item.name:
            continue
        table = _only_table(select)
        if table is None:
            raise TranspileError(
                f"QUALIFY reads {item.name}, which the SELECT also names an output: name the column's table"
            )
        item.set("table", exp.to_identifier(table))


def _only_table(select: exp.Select) -> str | None:
    """The name (or alias) by which the columns of a SELECT's only table can be named, if it reads one table."""
    source = select.args.get("from_") or select.args.get("from")  # sqlglot 30 calls it `from_`, earlier `from`
    if source is None or select.args.get("joins") or not isinstance(source.this, (exp.Table, exp.Subquery, exp.Values)):
        return None
    return source.this.alias_or_name or None


def _group_by_all_to_positions(node: exp.Expression) -> exp.Expression:
    """`group by all` groups by every selected expression without an aggregate; PostgreSQL 15 needs them listed:
    by position (`group by 1, 2, 3`), which also keeps an aliased expression grouped as it is written."""
    if not isinstance(node, exp.Select):
        return node
    group = node.args.get("group")
    if group is None or not group.args.get("all"):
        return node
    positions = [
        exp.Literal.number(index)
        for index, item in enumerate(node.expressions, start=1)
        if not item.find(exp.AggFunc) and not item.find(exp.Window)
    ]
    node.set("group", exp.Group(expressions=positions) if positions else None)
    return node


def _union_by_name_to_positions(node: exp.Expression) -> exp.Expression:
    """`union all by name` pairs columns by name; PostgreSQL pairs them by position, so the right SELECT's columns
    are put in the left one's order (both must list their columns, with the same names)."""
    if not isinstance(node, exp.Union) or not node.args.get("by_name"):
        return node
    left, right = node.left, node.right
    if not (isinstance(left, exp.Select) and isinstance(right, exp.Select)):
        raise TranspileError("UNION BY NAME of something other than two SELECTs")
    left_names = [item.alias_or_name for item in left.expressions]
    right_names = [item.alias_or_name for item in right.expressions]
    if "*" in left_names or sorted(left_names) != sorted(right_names):
        raise TranspileError("UNION BY NAME needs both SELECTs to name the same columns (no `*`)")
    right_items = dict(zip(right_names, right.expressions))
    right.set("expressions", [right_items[name] for name in left_names])
    node.set("by_name", None)
    return node


def _try_cast_to_function(node: exp.Expression, schema: str = MODEL_SCHEMA) -> exp.Expression:
    """DuckDB's `try_cast(x as t)` is NULL where the cast fails: `analytics.try_cast_<t>(cast(x as text))`, the
    helper function of the model schema `schema`."""
    if not isinstance(node, exp.TryCast):
        return node
    target = node.to.this
    if target in TEXT_TYPES:
        return exp.Cast(this=node.this, to=node.to)
    if target not in TRY_CAST_TYPES:
        raise TranspileError(f"try_cast to {node.to.sql('duckdb')} has no PostgreSQL helper function")
    suffix = TRY_CAST_TYPES[target][0]
    text = exp.Cast(this=node.this, to=exp.DataType.build("text"))
    return exp.func(f"{schema}.try_cast_{suffix}", text)


def _fill(template: str, **parts: exp.Expression) -> exp.Expression:
    """A PostgreSQL expression with its `:name` placeholders replaced by (copies of) `parts`."""
    tree = sqlglot.parse_one(template, read="postgres")
    for placeholder in list(tree.find_all(exp.Placeholder)):
        placeholder.replace(parts[placeholder.name].copy())
    return tree


def _arg_max_to_array_agg(node: exp.Expression) -> exp.Expression:
    """DuckDB's `arg_max(a, b)` / `arg_min(a, b)`: `a` of the row with the largest / smallest `b`, among rows where
    neither is NULL (checked on DuckDB 2.0: a NULL `a` on the largest `b` is passed over). PostgreSQL has neither:
    the first element of `array_agg(a order by b)` over those rows."""
    if not isinstance(node, (exp.ArgMax, exp.ArgMin)):
        return node
    direction = "desc" if isinstance(node, exp.ArgMax) else "asc"
    return _fill(
        f"(array_agg(:a order by :b {direction}) filter (where :a is not null and :b is not null))[1]",
        a=node.this,
        b=node.expression,
    )


def _count_distinct_window(node: exp.Expression) -> exp.Expression:
    """PostgreSQL has no `count(distinct x) over (partition by p)`: the distinct values of a partition are
    `dense_rank() over (order by x) + dense_rank() over (order by x desc) - 1` (NULL counted as a value), minus one
    when the partition holds a NULL (`count` ignores it)."""
    if not isinstance(node, exp.Window) or not isinstance(node.this, exp.Count):
        return node
    distinct = node.this.this
    if not isinstance(distinct, exp.Distinct):
        return node
    if node.args.get("order") or node.args.get("spec") or len(distinct.expressions) != 1:
        raise TranspileError("count(distinct ...) over a window with ORDER BY, a frame or several columns")
    formula = _fill(
        "(dense_rank() over (order by :x asc nulls last) + dense_rank() over (order by :x desc nulls first) - 1"
        " - max(case when :x is null then 1 else 0 end) over ())",
        x=distinct.expressions[0],
    )
    for window in formula.find_all(exp.Window):
        window.set("partition_by", [item.copy() for item in node.args.get("partition_by") or []])
    return formula


def _year_month_as_bigint(node: exp.Expression) -> exp.Expression:
    """DuckDB's `year(d)` / `month(d)` are BIGINT; PostgreSQL's `extract` is numeric, which would make
    `dim_assessments.academic_year` numeric."""
    if not isinstance(node, (exp.Year, exp.Month)):
        return node
    return exp.Cast(this=node, to=exp.DataType.build("bigint"))


def _string_split_to_array(node: exp.Expression) -> exp.Expression:
    """DuckDB's `string_split(s, sep)` is PostgreSQL's `string_to_array(s, sep)` (sqlglot writes `split`)."""
    if not isinstance(node, exp.Split):
        return node
    return exp.Anonymous(this="string_to_array", expressions=[node.this, node.expression])


def _json_group_object(node: exp.Expression) -> exp.Expression:
    """DuckDB's `json_group_object(k, v)` is PostgreSQL's `json_object_agg(k, v)`. The same object, not the same
    text: DuckDB writes `{"a":1}`, PostgreSQL `{ "a" : 1 }`."""
    if not isinstance(node, exp.Anonymous) or node.name.lower() != "json_group_object":
        return node
    return exp.JSONObjectAgg(expressions=node.expressions)


def _alias_derived_tables(tree: exp.Expression) -> None:
    """PostgreSQL 15 refuses a subquery in FROM without an alias (DuckDB and PostgreSQL 16 accept it)."""
    derived = [node for node in tree.find_all(exp.Subquery) if isinstance(node.parent, (exp.From, exp.Join))]
    for number, node in enumerate((node for node in derived if not node.alias), start=1):
        node.set("alias", exp.TableAlias(this=exp.to_identifier(f"_subquery_{number}")))


_REWRITES: tuple[Callable[[exp.Expression], exp.Expression], ...] = (
    _expand_macro,
    _qualify_to_distinct_on,
    _union_by_name_to_positions,
    _try_cast_to_function,
    _arg_max_to_array_agg,
    _count_distinct_window,
    _year_month_as_bigint,
    _string_split_to_array,
    _json_group_object,
    _group_by_all_to_positions,
)
"""In this order: macros first (their bodies may hold constructs the other rewrites change); `group by all` last,
once every aggregate is a node sqlglot knows as one (`json_group_object` is an unknown function until rewritten)."""


def postgres_sql(sql: str, model_schema: str = MODEL_SCHEMA) -> str:
    """One model's SELECT (DuckDB SQL) as PostgreSQL SQL; `TranspileError` names a construct without equivalent.
    Calls of helper functions name `model_schema` (the schemas of the tables are the caller's: `ModelSchemas`)."""
    try:
        tree = sqlglot.parse_one(sql, read="duckdb")
    except SqlglotError as error:
        raise TranspileError(f"cannot parse: {_first_line(str(error))}") from None
    _alias_derived_tables(tree)  # first: a stand-in replacing a raw table is one, and QUALIFY's rewrite may name it
    for rewrite in _REWRITES:
        if rewrite is _try_cast_to_function and model_schema != MODEL_SCHEMA:
            rewrite = partial(_try_cast_to_function, schema=model_schema)
        tree = _bottom_up(tree, rewrite)
    _alias_derived_tables(tree)
    try:
        return tree.sql(dialect="postgres", unsupported_level=sqlglot.ErrorLevel.RAISE)
    except SqlglotError as error:
        raise TranspileError(f"cannot write as PostgreSQL: {_first_line(str(error))}") from None


def _bottom_up(tree: exp.Expression, rewrite: Callable[[exp.Expression], exp.Expression]) -> exp.Expression:
    """Apply `rewrite` to every node, children first, so a rewritten node already holds rewritten children."""
    for node in reversed(list(tree.walk(bfs=False))):
        parent, key, index = node.parent, node.arg_key, node.index  # before `rewrite` wraps the node in another
        replacement = rewrite(node)
        if replacement is node:
            continue
        if parent is None:
            tree = replacement
        else:
            parent.set(key, replacement, index)
    return tree


def _first_line(text: str) -> str:
    return " ".join(text.strip().splitlines()[0].split()) if text.strip() else text


# ----------------------------------------------------------------------------------------------------- the build
PG_TYPE_NAMES = {
    "character varying": "VARCHAR",
    "text": "VARCHAR",
    "bigint": "BIGINT",
    "integer": "INTEGER",
    "smallint": "SMALLINT",
    "date": "DATE",
    "timestamp without time zone": "TIMESTAMP",
    "timestamp with time zone": "TIMESTAMP WITH TIME ZONE",
    "boolean": "BOOLEAN",
    "double precision": "DOUBLE",
    "real": "FLOAT",
    "numeric": "DECIMAL",
    "json": "JSON",
    "jsonb": "JSON",
}
"""PostgreSQL's `information_schema` type names -> DuckDB's, to compare a raw table's columns with the declared
ones (dlt creates text as varchar, timestamps without a zone where the sync says so: the catalog's columns)."""


def _message(error: BaseException) -> str:
    """The server's one-line message (psycopg2's `str` adds `LINE 3: ...` and a caret on more lines)."""
    diag = getattr(error, "diag", None)
    primary = getattr(diag, "message_primary", None)
    return _first_line(primary or str(error))


def postgres_database(connection: PgConnection, schemas: ModelSchemas = DEFAULT_SCHEMAS) -> ModelDatabase:
    """The shared build and test loops' view of an open psycopg2 connection, building into `schemas`."""
    import psycopg2

    def execute(sql: str) -> list[tuple[Any, ...]]:
        with connection.cursor() as cursor:
            cursor.execute(sql)
            return list(cursor.fetchall()) if cursor.description else []

    return ModelDatabase(
        execute=execute,
        errors=(psycopg2.Error, TranspileError),
        message=_message,
        translate=postgres_sql if schemas.model == MODEL_SCHEMA else partial(postgres_sql, model_schema=schemas.model),
        type_names=PG_TYPE_NAMES,
        replaces_in_place=False,
        setup=helper_functions(schemas.model),
        creates_macros=False,
        analyzes_tables=True,
        schemas=schemas,
    )


@contextlib.contextmanager
def _transaction(connection: PgConnection) -> Iterator[None]:
    """One transaction around the block: committed at its end, rolled back on any error. dlt's sql_client keeps its
    connection in autocommit mode; that mode is restored afterwards."""
    _require_idle(connection)
    autocommit = connection.autocommit
    connection.autocommit = False
    try:
        yield
        connection.commit()
    except BaseException:
        connection.rollback()
        raise
    finally:
        connection.autocommit = autocommit


@contextlib.contextmanager
def _autocommit(connection: PgConnection) -> Iterator[None]:
    """Each statement on its own, so that one failing test query does not abort the ones after it."""
    _require_idle(connection)
    autocommit = connection.autocommit
    connection.autocommit = True
    try:
        yield
    finally:
        connection.autocommit = autocommit


def _require_idle(connection: PgConnection) -> None:
    from psycopg2.extensions import TRANSACTION_STATUS_IDLE

    if connection.get_transaction_status() != TRANSACTION_STATUS_IDLE:
        raise ModelError("the PostgreSQL connection is inside a transaction: commit or roll it back first")


def build_models_postgres(
    connection: PgConnection,
    settings: ModelSettings,
    out: TextIO = sys.stderr,
    schemas: ModelSchemas = DEFAULT_SCHEMAS,
) -> int:
    """Build every model into schema `schemas.model` (`analytics`) of the PostgreSQL database behind `connection` (a
    psycopg2 connection, e.g. dlt's `pipeline.sql_client().native_connection`), reading the raw tables of
    `schemas.source` (`illuminate`).

    All-or-nothing, like `build_models`: one transaction; on failure it is rolled back and `ModelError` names the
    model's file and the server's message. Returns the number of models built."""
    started = time.monotonic()
    order = build_order(discover_models())
    database = postgres_database(connection, schemas)
    with _transaction(connection):
        existing = existing_columns(database, schemas.source)
        if not existing:
            raise ModelError(f"the PostgreSQL database has no raw tables in schema {schemas.source}: load them first")
        built = build_into(database, order, existing, settings, out)
    print(built_message(built, time.monotonic() - started, schemas.model), file=out)
    return built


def test_models_postgres(connection: PgConnection, schemas: ModelSchemas = DEFAULT_SCHEMAS) -> list[str]:
    """Run every declared model test on the PostgreSQL build (models in `schemas.model`); one line per failure
    (empty: all pass)."""
    with _autocommit(connection):
        return run_model_tests(postgres_database(connection, schemas))


test_models_postgres.__test__ = False  # type: ignore[attr-defined]  # not a pytest test, despite its name


NETWORK_LOCK = "illuminate-sync:network"
"""The transaction-level advisory lock one network build holds: a second one waits for its commit rather than
interleaving its drops and creates (which could deadlock)."""


def build_network_postgres(
    connection: PgConnection, instances: Sequence[str], out: TextIO = sys.stderr
) -> NetworkBuild:
    """The network schema `analytics` built from the models of `instances` (`pipelines.network_models`) on the
    PostgreSQL database behind `connection`, in one transaction (rolled back on failure). Prints the build's line to
    `out` last."""
    from illuminate_sync.pipelines.network_models import build_network_into

    database = postgres_database(connection)
    with _transaction(connection):
        database.execute(f"select pg_advisory_xact_lock(hashtext('{NETWORK_LOCK}'))")
        build = build_network_into(database, instances, out)
    print(build.message(), file=out)
    return build


def test_network_postgres(connection: PgConnection) -> list[str]:
    """The network models' key tests on PostgreSQL; one line per failure (empty: all pass)."""
    from illuminate_sync.pipelines.network_models import network_key_tests

    with _autocommit(connection):
        return run_model_tests(postgres_database(connection), network_key_tests())


test_network_postgres.__test__ = False  # type: ignore[attr-defined]  # not a pytest test, despite its name
