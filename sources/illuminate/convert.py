"""Turn the API's loosely typed JSON records into typed pyarrow tables.

The API sends numbers as strings, booleans as `"t"`/`"f"`, `""` and literal `"NULL"` for missing values, and field
names that differ from its own field lists. Each page is converted once into a pyarrow table with the catalog's
types, which dlt loads through parquet without running its row-by-row normalizer (the fast path, see
design-notes.md). Values that cannot be read as their declared type become NULL and are counted per column, so a
malformed value never sinks a run and never silently turns a column into text.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import date, datetime, timezone
from typing import Any

import pyarrow as pa

from .catalog import ColumnType, Endpoint
from .settings import DELETED_COLUMN

NULL_MARKERS = frozenset({"", "NULL", "null", "None"})
TRUE_VALUES = frozenset({"t", "true", "1", "y", "yes"})
FALSE_VALUES = frozenset({"f", "false", "0", "n", "no"})

ARROW_TYPES: dict[ColumnType, pa.DataType] = {
    "bigint": pa.int64(),
    "text": pa.string(),
    "date": pa.date32(),
    "timestamp": pa.timestamp("us"),
    "bool": pa.bool_(),
    "double": pa.float64(),
}


class InvalidValue(ValueError):
    """A value that does not fit its declared column type."""


def _to_bigint(value: Any) -> int:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    text = str(value).strip()
    try:
        return int(text)
    except ValueError:
        number = float(text)  # "12.0" from some endpoints; raises ValueError for letters
        if not number.is_integer():
            raise InvalidValue(value) from None
        return int(number)


def _to_double(value: Any) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return float(str(value).strip())


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in TRUE_VALUES:
        return True
    if text in FALSE_VALUES:
        return False
    raise InvalidValue(value)


def _to_date(value: Any) -> date:
    if isinstance(value, date):
        return value
    parsed = date.fromisoformat(str(value).strip()[:10])
    if parsed.year < 1900:  # "0001-01-01"-style placeholders are not dates
        raise InvalidValue(value)
    return parsed


def _to_timestamp(value: Any) -> datetime:
    parsed = datetime.fromisoformat(str(value).strip())
    if parsed.tzinfo is not None:  # stored as naive UTC (DuckDB TIMESTAMP)
        parsed = parsed.astimezone(timezone.utc).replace(tzinfo=None)
    if parsed.year < 1900:
        raise InvalidValue(value)
    return parsed


def _to_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


CONVERTERS: dict[ColumnType, Callable[[Any], Any]] = {
    "bigint": _to_bigint,
    "double": _to_double,
    "bool": _to_bool,
    "date": _to_date,
    "timestamp": _to_timestamp,
    "text": _to_text,
}


class RowConverter:
    """Converts an endpoint's wire records into typed pyarrow tables with the catalog's columns.

    Args:
        endpoint: The catalog entry: declared columns and their types, and `aliases` (wire name -> column name).
        extra_columns: Columns the sync adds (e.g. `_academic_year`), with their types.
    """

    def __init__(self, endpoint: Endpoint, extra_columns: Mapping[str, ColumnType] | None = None) -> None:
        self.endpoint = endpoint
        self.columns: dict[str, ColumnType] = {**endpoint.columns, **(extra_columns or {})}
        self.aliases = endpoint.aliases
        self.invalid_values: Counter[str] = Counter()
        self.undeclared_fields: set[str] = set()

    def rename(self, record: Mapping[str, Any]) -> dict[str, Any]:
        """The record with wire names mapped to column names (a documented name wins over its alias)."""
        if not self.aliases:
            return dict(record)
        renamed: dict[str, Any] = {}
        for key, value in record.items():
            column = self.aliases.get(key, key)
            if column in renamed and column != key:
                continue
            renamed[column] = value
        return renamed

    def to_table(self, records: Sequence[Mapping[str, Any]], constants: Mapping[str, Any] | None = None) -> pa.Table:
        """A typed table of `records`, every declared column present, plus `constants` as repeated columns."""
        rows = [self.rename(record) for record in records]
        arrays: dict[str, pa.Array] = {}
        for column, column_type in self.columns.items():
            if constants and column in constants:
                arrays[column] = pa.array([constants[column]] * len(rows), type=ARROW_TYPES[column_type])
                continue
            arrays[column] = pa.array(self._convert_column(column, column_type, rows), type=ARROW_TYPES[column_type])
        for field in self._undeclared(rows):
            arrays[field] = pa.array([_to_text_or_none(row.get(field)) for row in rows], type=pa.string())
        return pa.table(arrays)

    def tombstones(self, merge_key: str, values: Sequence[Any]) -> pa.Table:
        """Rows that delete whole slices (every row whose `merge_key` has one of `values`) and insert nothing."""
        arrays = {
            column: pa.array(
                list(values) if column == merge_key else [None] * len(values), type=ARROW_TYPES[column_type]
            )
            for column, column_type in self.columns.items()
        }
        arrays[DELETED_COLUMN] = pa.array([True] * len(values), type=pa.bool_())
        return pa.table(arrays)

    def key_tombstones(self, keys: Iterable[Sequence[Any]]) -> pa.Table:
        """Rows that delete single records by primary key."""
        key_columns = self.endpoint.primary_key
        return self.to_table([{**dict(zip(key_columns, key)), DELETED_COLUMN: True} for key in keys])

    def _convert_column(self, column: str, column_type: ColumnType, rows: list[dict[str, Any]]) -> list[Any]:
        convert = CONVERTERS[column_type]
        values: list[Any] = []
        for row in rows:
            value = row.get(column)
            if value is None or (column_type != "text" and isinstance(value, str) and value.strip() in NULL_MARKERS):
                values.append(None)
                continue
            try:
                values.append(convert(value))
            except (ValueError, TypeError, OverflowError):
                self.invalid_values[column] += 1
                values.append(None)
        return values

    def _undeclared(self, rows: list[dict[str, Any]]) -> list[str]:
        fields: list[str] = []
        for row in rows:
            for field in row:
                if field not in self.columns and field not in fields:
                    fields.append(field)
        self.undeclared_fields.update(fields)
        return fields


def _to_text_or_none(value: Any) -> str | None:
    return None if value is None else _to_text(value)


def natural_key(endpoint: Endpoint, table: pa.Table) -> list[tuple[Any, ...]]:
    """The primary-key tuple of each row of a converted table."""
    columns = [table.column(name).to_pylist() for name in endpoint.primary_key]
    return list(zip(*columns))
