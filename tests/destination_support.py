"""Helpers of the destination tests: what a table holds, read the same way from a DuckDB file and a PostgreSQL
dataset, so that two warehouses loaded from the same district compare row for row."""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
from postgres_support import PostgresCluster
from sync_support import VOLATILE_COLUMNS

Rows = Counter[tuple[Any, ...]]


def normalized(value: Any) -> Any:
    """One value as both warehouses can agree on it: dlt's csv load into PostgreSQL reads an empty string as NULL
    (COPY's csv NULL), timestamps compare in UTC, floats to 9 places, JSON (values or text) as sorted text."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)
    if isinstance(value, (float, Decimal)):
        return round(float(value), 9)
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True, default=str)
    if isinstance(value, str) and value.startswith("{") and value.endswith("}"):
        try:  # JSON built by the models: PostgreSQL spaces it as `{ "a" : 1 }`
            return json.dumps(json.loads(value), sort_keys=True)
        except ValueError:
            return value
    return value


def _data_columns(columns: list[str], ignore: frozenset[str]) -> list[str]:
    left_out = VOLATILE_COLUMNS | ignore
    return sorted(column for column in columns if not column.startswith("_dlt_") and column not in left_out)


def duckdb_tables(db: Path, schema: str = "illuminate", ignore: frozenset[str] = frozenset()) -> dict[str, Rows]:
    """Rows (data columns only) of every table of `schema` in a DuckDB file, dlt's own tables left out."""
    tables: dict[str, Rows] = {}
    with duckdb.connect(str(db), read_only=True) as con:
        names = [
            row[0]
            for row in con.execute(
                "select table_name from information_schema.tables where table_schema = ?"
                " and table_name not like '\\_dlt%' escape '\\'",
                [schema],
            ).fetchall()
        ]
        for table in names:
            columns = _data_columns([row[0] for row in con.execute(f'describe {schema}."{table}"').fetchall()], ignore)
            select = ", ".join(f'"{column}"' for column in columns)
            rows = con.execute(f'select {select} from {schema}."{table}"').fetchall()
            tables[table] = Counter(tuple(normalized(value) for value in row) for row in rows)
    return tables


def postgres_tables(
    pg: PostgresCluster, database: str, schema: str = "illuminate", ignore: frozenset[str] = frozenset()
) -> dict[str, Rows]:
    """The same, of a schema of a PostgreSQL database."""
    import psycopg2

    tables: dict[str, Rows] = {}
    connection = psycopg2.connect(pg.url(database))
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "select table_name from information_schema.tables where table_schema = %s"
                " and table_name not like '\\_dlt%%'",
                [schema],
            )
            for (table,) in cursor.fetchall():
                cursor.execute(
                    "select column_name from information_schema.columns where table_schema = %s and table_name = %s",
                    [schema, table],
                )
                columns = _data_columns([row[0] for row in cursor.fetchall()], ignore)
                select = ", ".join(f'"{column}"' for column in columns)
                cursor.execute(f'select {select} from "{schema}"."{table}"')
                tables[table] = Counter(tuple(normalized(value) for value in row) for row in cursor.fetchall())
    finally:
        connection.close()
    return tables


def differences(got: dict[str, Rows], want: dict[str, Rows]) -> list[str]:
    """Per table that differs: its row counts and a sample of the rows only one side holds."""
    lines = []
    for table in sorted(set(got) | set(want)):
        mine, theirs = got.get(table, Counter()), want.get(table, Counter())
        if mine != theirs:
            extra = list((mine - theirs).elements())[:2]
            missing = list((theirs - mine).elements())[:2]
            lines.append(
                f"{table}: {sum(mine.values())} rows, expected {sum(theirs.values())}"
                f" (only here: {extra}; only expected: {missing})"
            )
    return lines
