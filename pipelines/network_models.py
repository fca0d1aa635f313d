"""The network schema: the marts and reports of every named instance side by side in schema `analytics`.

Each instance's models are built into `analytics_<name>` (`illuminate-sync run --instance NAME`). A network (a
charter network, a regional agency) compares its districts in one query: `build_network_into` makes each model of
`sql/marts` and `sql/reports` a table `analytics.<model>` holding the rows of every instance's
`analytics_<name>.<model>`, with a leading column `instance` (the instance's name), and `analytics.settings` one row
per instance (the settings its models were built with). Ids are unique within an instance only (two districts both
have a student 1001), so `instance` is part of every key: a network model's key is `("instance", *key)` of the
model's key declared in `sql/<layer>/tests.toml`, and `network_key_tests` generates its unique and not-null tests.

Tables, not views: on PostgreSQL a rebuild of an instance's models drops them with `cascade`, which would drop a
network view reading them. The columns are listed from `information_schema` (PostgreSQL has no `union all by name`):
an instance whose model lacks a column (models built by an older release) gives NULL there, typed by the union from
the instances that have it. Everything runs in the caller's transaction: all-or-nothing.

Instances without models (no `analytics_<name>.settings`, which every build writes first) are left out and named in
the build's line. Staging and intermediate models stay per instance (`stg_*`, `int_*` are internal).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import duckdb

from illuminate_sync.pipelines.models import (
    MODEL_SCHEMA,
    SETTINGS_RELATION,
    Model,
    ModelDatabase,
    ModelError,
    ModelTest,
    build_order,
    declared_specs,
    discover_models,
    duckdb_database,
    key_tests,
    open_for_models,
    relation_kinds,
    replace_relation,
    run_model_tests,
)
from illuminate_sync.pipelines.warehouse import model_dataset_for, quoted, sql_literal
from illuminate_sync.sources.illuminate.instances import dataset_for

__all__ = [
    "INSTANCE_COLUMN",
    "NETWORK_LAYERS",
    "NETWORK_SCHEMA",
    "NetworkBuild",
    "build_network_duckdb",
    "build_network_file",
    "build_network_into",
    "instance_model_schema",
    "network_key_tests",
    "network_models",
    "test_network_duckdb",
    "test_network_file",
]

NETWORK_SCHEMA = MODEL_SCHEMA
"""Where the network models go: `analytics`, the schema a single instance's models would use (a warehouse of named
instances has no single instance)."""
INSTANCE_COLUMN = "instance"
NETWORK_LAYERS = ("marts", "reports")
"""The layers whose models the network schema holds; staging and intermediate models are internal."""
NETWORK_KEYS_FILE = "sql/marts/tests.toml and sql/reports/tests.toml, with instance"
"""Where a network key test's key comes from, as its generated tests name it."""


@dataclass(frozen=True)
class NetworkBuild:
    """What `build_network_into` built."""

    models: int
    """Network models built (the settings table not counted)."""
    instances: tuple[str, ...]
    """The instances whose rows they hold."""
    left_out: tuple[str, ...]
    """Declared instances without models (never synced, or synced with `--skip-models`)."""
    seconds: float

    def message(self) -> str:
        """The build's one line: `built 23 network models into analytics from instances north, south in 0.4 s`."""
        line = (
            f"built {self.models} network models into {NETWORK_SCHEMA} from instances {', '.join(self.instances)}"
            f" in {self.seconds:.1f} s"
        )
        if self.left_out:
            line += f"; left out (no models yet): {', '.join(self.left_out)}"
        return line


def instance_model_schema(instance: str) -> str:
    """The schema of an instance's models: `analytics_<name>`."""
    return model_dataset_for(dataset_for(instance))


def network_models(models: Mapping[str, Model] | None = None) -> list[str]:
    """The models the network schema holds, in build order: every model of `sql/marts` and `sql/reports` (of
    `models`, default the discovered ones)."""
    models = discover_models() if models is None else models
    return [model.name for model in build_order(models) if model.layer in NETWORK_LAYERS]


# ------------------------------------------------------------------------------------------------------ the build
def build_network_into(database: ModelDatabase, instances: Sequence[str], out: TextIO = sys.stderr) -> NetworkBuild:
    """Create `analytics.settings` and every network model from the models of `instances` (the caller holds the
    transaction; `database` is the default-schema view of the connection, its model schema `analytics`).

    ModelError (one line) when `instances` is empty, when none of them has models, when `analytics` holds a single
    instance's models, or when an instance lacks a model (its models predate it: rebuild them)."""
    started = time.monotonic()
    if not instances:
        raise ModelError("no instances declared: the network models are built from named instances' models")
    built_from = instances_with_models(database, instances)
    left_out = tuple(name for name in instances if name not in built_from)
    if not built_from:
        schemas = ", ".join(instance_model_schema(name) for name in instances)
        raise ModelError(
            f"none of the instances {', '.join(instances)} has models yet (no schema {schemas}): run"
            " `illuminate-sync run --instance NAME` (or `--all-instances`) first"
        )
    check_network_schema(database)
    columns = {name: model_columns(database, instance_model_schema(name)) for name in built_from}
    models = discover_models()
    keys = network_keys(models)
    database.execute(f"create schema if not exists {NETWORK_SCHEMA}")
    relations = [SETTINGS_RELATION, *network_models(models)]
    for relation in relations:
        build_network_relation(database, relation, columns, network_comment(relation, models, keys), out)
    return NetworkBuild(len(relations) - 1, tuple(built_from), left_out, time.monotonic() - started)


def instances_with_models(database: ModelDatabase, instances: Sequence[str]) -> list[str]:
    """Those of `instances` whose models were built: `analytics_<name>.settings` exists (every build writes it
    first, in the transaction of its models)."""
    schemas = {instance_model_schema(name): name for name in instances}
    rows = database.execute(
        "select table_schema from information_schema.tables"
        f" where table_name = {sql_literal(SETTINGS_RELATION)}"
        f" and table_schema in ({', '.join(sql_literal(schema) for schema in schemas)})"
    )
    present = {str(row[0]) for row in rows}
    return [name for schema, name in schemas.items() if schema in present]


def check_network_schema(database: ModelDatabase) -> None:
    """`analytics` holds no single instance's models: they would be replaced by the network's (a network settings
    table has an `instance` column, a single instance's has not)."""
    if SETTINGS_RELATION not in relation_kinds(database):
        return
    settings = model_columns(database, NETWORK_SCHEMA).get(SETTINGS_RELATION, [])
    if INSTANCE_COLUMN not in settings:
        raise ModelError(
            f"schema {NETWORK_SCHEMA} holds the single instance's models (built from schema illuminate): the network"
            f" models would replace them; build the network in a warehouse of named instances only, or drop schema"
            f" {NETWORK_SCHEMA} first"
        )


def model_columns(database: ModelDatabase, schema: str) -> dict[str, list[str]]:
    """Relation -> its column names in their order, for every relation of `schema` (names lower-cased)."""
    rows = database.execute(
        "select table_name, column_name from information_schema.columns"
        f" where table_schema = {sql_literal(schema)} order by table_name, ordinal_position"
    )
    columns: dict[str, list[str]] = {}
    for table, column in rows:
        columns.setdefault(str(table).lower(), []).append(str(column).lower())
    return columns


def network_select(relation: str, columns: Mapping[str, Mapping[str, Sequence[str]]]) -> str:
    """The union of `analytics_<name>.<relation>` over the instances of `columns` (instance -> relation -> its
    columns), `instance` first, then every column any instance has, in the order the instances list them."""
    present = {name: tables[relation] for name, tables in columns.items() if relation in tables}
    missing = [name for name in columns if name not in present]
    if missing:
        raise ModelError(
            f"{', '.join(f'{instance_model_schema(name)}.{relation}' for name in missing)} does not exist: rebuild"
            f" the instance's models (`illuminate-sync models ... --dataset {dataset_for(missing[0])}`) first"
        )
    wanted = list(dict.fromkeys(column for names in present.values() for column in names))
    if INSTANCE_COLUMN in wanted:
        raise ModelError(f"{relation} has a column named {INSTANCE_COLUMN}, the network schema's own: rename it")
    branches = []
    for name, names in present.items():
        # A NULL of a column the instance lacks takes its type from the other branches of the union (both databases).
        values = ", ".join(quoted(column) if column in names else f"null as {quoted(column)}" for column in wanted)
        branches.append(
            f"select cast({sql_literal(name)} as varchar) as {INSTANCE_COLUMN}, {values}"
            f" from {instance_model_schema(name)}.{quoted(relation)}"
        )
    return "\nunion all\n".join(branches)


def build_network_relation(
    database: ModelDatabase,
    relation: str,
    columns: Mapping[str, Mapping[str, Sequence[str]]],
    comment: str,
    out: TextIO,
) -> None:
    """`analytics.<relation>` as a table of every instance's rows, with its comment; one progress line."""
    started = time.monotonic()
    target = f"{NETWORK_SCHEMA}.{relation}"
    try:
        replace_relation(database, "table", relation, network_select(relation, columns))
        database.execute(f"comment on table {target} is {sql_literal(comment)}")
        if database.analyzes_tables:
            database.execute(f"analyze {target}")
        rows = database.execute(f"select count(*) from {target}")
    except database.errors as error:
        raise ModelError(f"network model {target} failed: {database.message(error)}") from None
    print(f"  table {target} {rows[0][0] if rows else 0:,} rows ({time.monotonic() - started:.1f} s)", file=out)


def network_comment(relation: str, models: Mapping[str, Model], keys: Mapping[str, tuple[list[str], list[str]]]) -> str:
    """The table's comment: the model's own, then where the rows come from and the key."""
    model = models.get(relation)
    described = model.description if model is not None else "The settings each instance's models were built with."
    key = ", ".join([INSTANCE_COLUMN, *keys.get(relation, ([], []))[0]])
    return f"{described}\nNetwork: every instance's analytics_<instance>.{relation}, `instance` first; key ({key})."


# ------------------------------------------------------------------------------------------------------ the tests
def network_keys(models: Mapping[str, Model]) -> dict[str, tuple[list[str], list[str]]]:
    """Network model -> (its model's declared key, the key's columns declared not null), without `instance`."""
    keys: dict[str, tuple[list[str], list[str]]] = {}
    for layer in NETWORK_LAYERS:
        for name, spec in declared_specs(layer, models).items():
            key = list(spec.unique[0]) if spec.unique else []
            keys[name] = (key, [column for column in key if column in spec.not_null])
    return keys


def network_key_tests() -> list[ModelTest]:
    """Per network relation: `("instance", *key)` unique, and `instance` and each key column declared not null never
    NULL (a key column may be NULL where the model says so: the district rows' `site_id`). The settings table's key
    is `instance` alone: one row per instance."""
    models = discover_models()
    keys = network_keys(models)
    tests: list[ModelTest] = []
    for relation in [SETTINGS_RELATION, *network_models(models)]:
        key, not_null = keys.get(relation, ([], []))
        tests.extend(key_tests(relation, [INSTANCE_COLUMN, *key], [INSTANCE_COLUMN, *not_null], NETWORK_KEYS_FILE))
    return tests


# --------------------------------------------------------------------------------------------------------- DuckDB
def build_network_duckdb(
    connection: duckdb.DuckDBPyConnection, instances: Sequence[str], out: TextIO = sys.stderr
) -> NetworkBuild:
    """The network models of `instances` built on an open DuckDB connection, in one transaction of that connection
    (rolled back on failure). Threads sharing a DuckDB database should each pass their own `connection.cursor()`:
    a transaction belongs to the connection object. Prints the build's line to `out` last."""
    database = duckdb_database(connection)
    connection.execute("begin transaction")
    try:
        build = build_network_into(database, instances, out)
        connection.execute("commit")
    except BaseException:
        connection.execute("rollback")
        raise
    print(build.message(), file=out)
    return build


def build_network_file(duckdb_path: Path, instances: Sequence[str], out: TextIO = sys.stderr) -> NetworkBuild:
    """`build_network_duckdb` on the DuckDB file `duckdb_path`, opened for the build and closed after."""
    with open_for_models(duckdb_path, "illuminate-sync run --instance NAME") as connection:
        return build_network_duckdb(connection, instances, out)


def test_network_duckdb(connection: duckdb.DuckDBPyConnection) -> list[str]:
    """The network key tests on an open DuckDB connection; one line per failure (empty: all pass)."""
    return run_model_tests(duckdb_database(connection), network_key_tests())


def test_network_file(duckdb_path: Path) -> list[str]:
    """`test_network_duckdb` on the DuckDB file `duckdb_path`, opened read-only."""
    try:
        connection = duckdb.connect(str(duckdb_path), read_only=True)
    except duckdb.Error as error:
        return [f"cannot open {duckdb_path}: {' '.join(str(error).split())}"]
    with connection:
        return test_network_duckdb(connection)


test_network_duckdb.__test__ = False  # type: ignore[attr-defined]  # not pytest tests, despite their names
test_network_file.__test__ = False  # type: ignore[attr-defined]
