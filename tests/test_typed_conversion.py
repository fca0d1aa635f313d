"""The API's loosely typed values become the catalog's types; what does not fit is NULL and counted, never text."""

from __future__ import annotations

from datetime import date, datetime

import pyarrow as pa

from illuminate_sync.sources.illuminate.catalog import load_catalog
from illuminate_sync.sources.illuminate.convert import RowConverter
from illuminate_sync.sources.illuminate.settings import DELETED_COLUMN


def test_strings_flags_and_null_markers_take_their_declared_types() -> None:
    converter = RowConverter(load_catalog()["users"])
    table = converter.to_table(
        [
            {"user_id": "12345", "active": "t", "is_hispanic": "f", "hire_date": "2002-01-23", "state_user_id": 123456},
            {"user_id": 6789, "active": "NULL", "is_hispanic": "", "hire_date": "", "last_name": "NULL"},
        ]
    )
    rows = table.to_pylist()
    assert rows[0]["user_id"] == 12345 and rows[1]["user_id"] == 6789
    assert rows[0]["active"] is True and rows[0]["is_hispanic"] is False
    assert rows[1]["active"] is None and rows[1]["is_hispanic"] is None
    assert rows[0]["hire_date"] == date(2002, 1, 23) and rows[1]["hire_date"] is None
    assert rows[0]["state_user_id"] == "123456", "state ids are text"
    assert rows[1]["last_name"] == "NULL", "text keeps the API's value; staging cleans it"
    assert table.schema.field("user_id").type == pa.int64()


def test_a_record_with_a_letter_in_an_id_is_quarantined_and_the_column_stays_typed() -> None:
    converter = RowConverter(load_catalog()["sites"])
    table = converter.to_table([{"site_id": "12a", "site_name": "Bad"}, {"site_id": "7", "site_name": "Good"}])
    assert table.column("site_id").to_pylist() == [7]
    assert table.schema.field("site_id").type == pa.int64()
    assert converter.invalid_values["site_id"] == 1
    [quarantined] = converter.quarantined
    assert quarantined.record == {"site_id": "12a", "site_name": "Bad"}
    assert "site_id" in quarantined.reason and "12a" in quarantined.reason


def test_wire_names_are_mapped_to_documented_column_names() -> None:
    converter = RowConverter(load_catalog()["program_code"])
    row = converter.to_table(
        [{"enrollment_entry_date": "2019-01-01", "enrollment_leave_date": "2019-02-01"}]
    ).to_pylist()[0]
    assert row["enrollment_start_date"] == date(2019, 1, 1)
    assert row["enrollment_end_date"] == date(2019, 2, 1)
    assert "enrollment_entry_date" not in row


def test_a_page_mixing_both_spellings_of_an_aliased_field_keeps_every_records_value() -> None:
    """The documentation's own Students example page has `primary_disability` on one record and the misspelt
    `primary_disibility` on the next: each record's value is kept, whichever spelling it came under."""
    converter = RowConverter(load_catalog()["students"])
    page = [
        {"student_id": "1", "primary_disability": "SLD"},
        {"student_id": "2", "primary_disibility": "SLI"},
        {"student_id": "3", "primary_disability": None, "primary_disibility": "AUT"},
        {"student_id": "4", "primary_disability": "OHI", "primary_disibility": None},
        {"student_id": "5"},
    ]
    expected = ["SLD", "SLI", "AUT", "OHI", None]
    assert converter.to_table(page).column("primary_disability").to_pylist() == expected
    mixed_types = [
        {**record, "student_id": int(record["student_id"])} if i % 2 else record for i, record in enumerate(page)
    ]  # a field of two Python types takes the record-by-record path
    assert converter.to_table(mixed_types).column("primary_disability").to_pylist() == expected
    assert "primary_disibility" not in converter.to_table(page).column_names


def test_timestamps_with_offsets_are_stored_as_utc() -> None:
    converter = RowConverter(load_catalog()["pool_assessment_aggregate_student_responses"])
    row = converter.to_table([{"start_time": "2013-09-07 04:47:33+08", "percent_correct": "50.00"}]).to_pylist()[0]
    assert row["start_time"] == datetime(2013, 9, 6, 20, 47, 33)
    assert row["percent_correct"] == 50.0


def test_every_declared_column_is_present_even_when_no_record_has_it() -> None:
    endpoint = load_catalog()["students"]
    table = RowConverter(endpoint).to_table([{"student_id": 1}])
    assert set(endpoint.columns) <= set(table.column_names)


def test_slice_tombstones_carry_only_the_merge_key_and_the_delete_flag() -> None:
    converter = RowConverter(load_catalog()["attendance_daily"], {DELETED_COLUMN: "bool"})
    rows = converter.tombstones("date", [date(2026, 11, 2), date(2026, 11, 3)]).to_pylist()
    assert [row["date"] for row in rows] == [date(2026, 11, 2), date(2026, 11, 3)]
    assert all(row[DELETED_COLUMN] is True and row["site_id"] is None for row in rows)
