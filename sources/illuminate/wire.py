"""Page bodies decoded from JSON bytes straight into Arrow, without a Python object per value.

A page of the API is one JSON object, `{"page": ..., "num_pages": ..., "num_results": ..., "results": [...]}`, of up
to ~1 MB. Decoding it with orjson into dicts and then building Arrow columns from those dicts holds the GIL for every
value: with 8 request threads the GIL convoy doubled that cost (measured 11-13 ms CPU per 966-row attendance page
with 8 threads against 6 ms alone). Arrow's C++ JSON reader reads the same page in ~4.7 ms of CPU without the GIL, so
two cores decode in parallel.

Arrow's reader types each field from the values it sees, and would read a date-like string as a timestamp, so it is
given the page's wire types: learned per endpoint from the first page, which is decoded the old way, and from every
page that has to fall back to it. Whatever the fast path cannot reproduce exactly (a field whose JSON type changes,
a nested value, a field not seen before, an envelope other than the paged object) is decoded the old way, so both
paths give the same records.
"""

from __future__ import annotations

import io
import itertools
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.json as pa_json
from dlt.common.json import json

WIRE_TYPES: dict[type, pa.DataType] = {str: pa.string(), int: pa.int64(), float: pa.float64(), bool: pa.bool_()}
"""The Arrow type of each JSON scalar (as Python decodes it)."""

_FLAT_TYPES = frozenset(WIRE_TYPES.values()) | {pa.null()}
_ENVELOPE_FIELDS = ("page", "num_pages", "num_results")
MAX_FALLBACKS = 20
"""Pages of one endpoint decoded the old way after the first, before the fast path is given up for the run (an
endpoint whose fields keep changing JSON type would otherwise be decoded twice per page)."""


@dataclass(frozen=True)
class WirePage:
    """A paged answer decoded into Arrow: the envelope's counts and the records as a table of their wire types."""

    envelope: Mapping[str, Any]
    """`page`, `num_pages` and `num_results` as sent (numbers or strings), when present."""
    records: pa.Table


def wire_schema(records: Sequence[Mapping[str, Any]]) -> dict[str, pa.DataType]:
    """Each field's Arrow type from the first non-null value of records decoded by Python (text when only nulls)."""
    fields: dict[str, pa.DataType] = {}
    for record in records:
        for name, value in record.items():
            if value is not None and name not in fields:
                fields[name] = WIRE_TYPES.get(type(value), pa.string())
        if len(fields) == len(record):
            break
    for name in dict.fromkeys(itertools.chain.from_iterable(records)):  # in C: a page has ~40,000 field names
        fields.setdefault(name, pa.string())
    return fields


class PageDecoder:
    """Decodes one endpoint's page bodies, into a `WirePage` where the fast path is exact, else as Python objects.

    Thread-safe: pages of one endpoint arrive in several threads; the learned wire types are shared.
    """

    def __init__(self) -> None:
        self._fields: dict[str, pa.DataType] = {}
        self._lock = threading.Lock()
        self._fallbacks = 0
        self.fast_pages = 0
        """Pages decoded straight into Arrow."""

    def __call__(self, content: bytes) -> Any:
        """The page: a `WirePage`, or the JSON decoded by Python (raises ValueError when it is not valid JSON)."""
        with self._lock:
            fields = dict(self._fields) if self._fallbacks <= MAX_FALLBACKS else {}
        page = _read_page(content, fields) if fields else None
        if page is not None:
            with self._lock:
                self.fast_pages += 1
            return page
        answer = json.loadb(content)
        self._learn(answer)
        return answer

    def _learn(self, answer: Any) -> None:
        records = answer.get("results") if isinstance(answer, dict) else None
        if not isinstance(records, list) or not records or not all(isinstance(r, dict) for r in records):
            return
        learned = wire_schema(records)
        with self._lock:
            if self._fields:
                self._fallbacks += 1
            for name, wire_type in learned.items():
                if wire_type in _FLAT_TYPES:
                    self._fields[name] = wire_type


def _read_page(content: bytes, fields: dict[str, pa.DataType]) -> WirePage | None:
    """The page read by Arrow's JSON reader with the known wire types, or None when it cannot be read exactly."""
    # Arrow's reader takes one document per line; a raw line break in JSON can only be whitespace between tokens
    # (inside strings it is escaped), so it can be blanked.
    if b"\n" in content or b"\r" in content:
        content = content.replace(b"\r", b" ").replace(b"\n", b" ")
    schema = pa.schema([pa.field("results", pa.list_(pa.struct([pa.field(n, t) for n, t in fields.items()])))])
    try:
        table = pa_json.read_json(
            io.BytesIO(content),
            read_options=pa_json.ReadOptions(use_threads=False, block_size=len(content) + 1),
            parse_options=pa_json.ParseOptions(explicit_schema=schema, unexpected_field_behavior="infer"),
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        return None  # a field changed JSON type, results is not a list, not one object...
    if table.num_rows != 1 or table.column("results").null_count:
        return None
    structs = table.column("results").combine_chunks().flatten()
    if structs.null_count:
        return None  # a null among the records
    records = pa.Table.from_struct_array(structs)
    for name, column in zip(records.column_names, records.columns):
        if name not in fields and not pa.types.is_null(column.type):
            return None  # a field not seen before: Arrow may type it otherwise than Python reads it (a timestamp)
    envelope: dict[str, Any] = {}
    for name in _ENVELOPE_FIELDS:
        if name in table.column_names:
            column = table.column(name)
            if column.type not in _FLAT_TYPES:
                return None
            envelope[name] = column[0].as_py()
    return WirePage(envelope, records)
