"""Pages decoded straight into Arrow give exactly the tables that decoding with Python gives, or fall back to it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
import pyarrow as pa
import pytest
from client_support import CLIENT_WINDOW

from illuminate_sync.sources.illuminate.catalog import load_catalog
from illuminate_sync.sources.illuminate.client import IlluminateClient
from illuminate_sync.sources.illuminate.convert import RowConverter
from illuminate_sync.sources.illuminate.wire import PageDecoder, WirePage

ENDPOINT_WINDOWS = {
    "students": CLIENT_WINDOW,
    "enrollment": CLIENT_WINDOW,
    "roster": CLIENT_WINDOW,
    "attendance_daily": {"date": "2026-11-20"},
    "gradebook_scores": {"start_date": "2026-07-01", "end_date": "2027-06-30"},
}


def _converted(table: str, pages: list[Any]) -> list[dict[str, Any]]:
    converter = RowConverter(load_catalog()[table])
    rows = [row for page in pages for row in converter.to_table(page.rows).to_pylist()]
    return sorted(rows, key=lambda row: orjson.dumps(row, option=orjson.OPT_SORT_KEYS, default=str))


@pytest.mark.parametrize("table", sorted(ENDPOINT_WINDOWS))
def test_pages_after_the_first_are_read_by_arrow_and_convert_to_the_same_rows(
    make_client: Callable[..., IlluminateClient], table: str
) -> None:
    endpoint = load_catalog()[table]
    client = make_client()
    decoder = PageDecoder()
    params = ENDPOINT_WINDOWS[table]
    fast = list(client.iter_pages(endpoint.url_path(), params, 50, decode=decoder))
    python = list(client.iter_pages(endpoint.url_path(), params, 50))
    assert len(fast) > 2, "the window should have several pages"
    assert isinstance(fast[0].rows, list), "the first page is decoded by Python: it teaches the wire types"
    assert all(isinstance(page.rows, pa.Table) for page in fast[1:])
    assert decoder.fast_pages == len(fast) - 1
    assert [page.num_results for page in fast] == [page.num_results for page in python]
    assert _converted(table, fast) == _converted(table, python)


def _body(records: list[dict[str, Any]], **envelope: Any) -> bytes:
    return orjson.dumps({"page": 2, "num_pages": "3", "num_results": "7", **envelope, "results": records})


def _taught(records: list[dict[str, Any]]) -> PageDecoder:
    decoder = PageDecoder()
    assert isinstance(decoder(_body(records)), dict), "a decoder that knows no wire types decodes with Python"
    return decoder


def test_the_envelope_counts_come_as_sent_and_records_keep_their_wire_types() -> None:
    decoder = _taught([{"id": "1", "n": 2, "x": 1.5, "flag": True}])
    page = decoder(_body([{"id": "3", "n": 4, "x": None, "flag": False}, {"id": "NULL", "n": None}], page="2"))
    assert isinstance(page, WirePage)
    assert dict(page.envelope) == {"page": "2", "num_pages": "3", "num_results": "7"}
    assert page.records.to_pylist() == [
        {"id": "3", "n": 4, "x": None, "flag": False},
        {"id": "NULL", "n": None, "x": None, "flag": None},
    ]
    assert page.records.schema.field("n").type == pa.int64()


@pytest.mark.parametrize(
    "records",
    [
        [{"id": 5}],  # a field sent as text until now comes as a number
        [{"id": "5", "detail": {"a": 1}}],  # a nested value
        [{"id": "5", "when": "2026-11-20 08:00:00"}],  # a field not seen before (Arrow would read a timestamp)
        [{"id": "5"}, None],  # a null among the records
    ],
    ids=["type-change", "nested", "new-field", "null-record"],
)
def test_what_arrow_cannot_read_exactly_is_decoded_by_python(records: list[Any]) -> None:
    decoder = _taught([{"id": "1"}])
    assert decoder(_body(records)) == orjson.loads(_body(records))
    assert decoder.fast_pages == 0


def test_a_field_learned_from_a_fallback_page_is_read_by_arrow_next_time() -> None:
    decoder = _taught([{"id": "1"}])
    decoder(_body([{"id": "2", "when": "2026-11-20"}]))
    page = decoder(_body([{"id": "3", "when": "2026-11-21"}]))
    assert isinstance(page, WirePage) and page.records.column("when").to_pylist() == ["2026-11-21"]


def test_line_breaks_between_tokens_and_escaped_in_strings_are_read_as_json_reads_them() -> None:
    decoder = _taught([{"id": "1", "note": "a"}])
    body = b'{"num_results": 1,\r\n "results": [\n  {"id": "2", "note": "two\\nlines"}\n ]\n}'
    page = decoder(body)
    assert isinstance(page, WirePage)
    assert page.records.to_pylist() == [{"id": "2", "note": "two\nlines"}]


@pytest.mark.parametrize(
    "body",
    [b'{"num_results": 1, "results": {"id": "2"}}', b"[]", b'{"message": "no results"}'],
    ids=["single-object", "bare-list", "no-results"],
)
def test_answers_other_than_a_page_of_records_are_decoded_by_python(body: bytes) -> None:
    decoder = _taught([{"id": "1"}])
    assert decoder(body) == orjson.loads(body)


def test_an_incomplete_body_raises_value_error_so_that_the_request_is_retried() -> None:
    decoder = _taught([{"id": "1"}])
    with pytest.raises(ValueError):
        decoder(_body([{"id": "2"}])[:-5])
