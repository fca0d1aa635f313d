"""The endpoint catalog is the one truth: it is checked as it is read, and generic code reads its declarations.

A key, table or value the source would not read is refused with one line naming the file, the entry, the key and
what is allowed (`pii_column` for `pii_columns` would otherwise switch PII handling off without a word); the
shipped catalog loads. The per-user switch is `enabled = false` alone: an endpoint that is off fetches only when
named, whatever its strategy.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import date
from importlib import resources
from pathlib import Path

import pytest

from illuminate_sync.pipelines.cli import main
from illuminate_sync.pipelines.load_stages import stage_ends
from illuminate_sync.sources.illuminate import build_resource
from illuminate_sync.sources.illuminate import catalog as catalog_module
from illuminate_sync.sources.illuminate.catalog import (
    CATALOG_FILE,
    KNOWN_KEYS,
    CatalogError,
    calendar_endpoint,
    load_catalog,
    parse_catalog,
)
from illuminate_sync.sources.illuminate.context import SyncContext

SHIPPED = resources.files(catalog_module.__package__).joinpath("endpoints.toml").read_text("utf-8")


def edited(old: str, new: str) -> str:
    """The shipped catalog with one edit (the first occurrence of `old`)."""
    assert old in SHIPPED, old
    return SHIPPED.replace(old, new, 1)


def refusal(text: str) -> str:
    with pytest.raises(CatalogError) as refused:
        parse_catalog(text)
    message = str(refused.value)
    assert "\n" not in message and message.startswith(f"{CATALOG_FILE}: "), message
    return message


def test_the_shipped_catalog_loads() -> None:
    catalog = parse_catalog(SHIPPED)
    assert catalog == load_catalog()
    assert len(catalog) == 38 and catalog["students"].pii_columns


def test_a_misspelt_endpoint_key_is_refused_with_the_known_keys() -> None:
    message = refusal(edited('pii_columns = ["last_name"', 'pii_column = ["last_name"'))
    assert "[endpoints.students]" in message and "unknown key(s) pii_column;" in message
    assert ", ".join(sorted(KNOWN_KEYS)) in message


def test_an_unknown_top_level_table_is_refused() -> None:
    message = refusal(SHIPPED + '\n[endpoint.typo]\npath = "Typo"\n')
    assert "unknown top-level table(s) endpoint; the known ones are endpoints" in message


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ('site_name = "text"', 'site_name = "string"', "column site_name has unknown type 'string'"),
        ('strategy = "replace"', 'strategy = "replaced"', "strategy = 'replaced' is unknown"),
        ('shape = "list"', 'shape = "lists"', "shape = 'lists' is unknown"),
        ('pii_columns = ["last_name"', 'pii_columns = ["lastname"', "pii_columns names column(s) lastname"),
        ('{ primary_disibility = "primary_disability" }', '{ x = "primary_disibility" }', "aliases names column(s)"),
        ('run_date_param = "as_of_date"', 'run_date_param = "as_of"', "sends as_of, which is not among"),
        ('path = "Sites"\n', 'path = "Sites"\nsession_calendar = true\n', "only the academic_year_slice strategy"),
        ("session_calendar = true\n", "", "0 endpoints (none) declare `session_calendar = true`"),
        ('primary_key = ["site_id"]', 'primary_key = ["site"]', "primary_key names column(s) site"),
        ('path = "Sites"\n', "", "[endpoints.sites] lacks the required key(s) path"),
    ],
)
def test_a_value_the_source_would_not_read_is_refused(old: str, new: str, expected: str) -> None:
    assert expected in refusal(edited(old, new))


@pytest.fixture()
def broken_catalog(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """`load_catalog` reads a catalog with a misspelt key (its cache cleared before and after)."""
    (tmp_path / "endpoints.toml").write_text(edited("pii_columns =", "pii_column ="), "utf-8")
    monkeypatch.setattr(catalog_module.resources, "files", lambda package: tmp_path)
    load_catalog.cache_clear()
    yield
    load_catalog.cache_clear()


def test_the_cli_refuses_a_broken_catalog_in_one_line(broken_catalog: None, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["endpoints"]) != 0
    captured = capsys.readouterr()
    assert captured.err.startswith("illuminate-sync: error: ") and captured.err.count("\n") == 1, captured.err
    assert "pii_column" in captured.err and "Traceback" not in captured.err


def test_generic_code_reads_the_declared_roles_not_table_names() -> None:
    catalog = load_catalog()
    assert calendar_endpoint() is catalog["terms"]
    assert stage_ends() == ["attendance_daily", "attendance_section"]
    assert [table for table, endpoint in catalog.items() if endpoint.run_date_param] == ["course_requirement_checks"]


def context() -> SyncContext:
    return SyncContext(client=None, today=date(2026, 11, 27), selected_years=[2027])  # type: ignore[arg-type]


@pytest.mark.parametrize("table", ["school_focus_sites", "grade_levels"])
def test_an_endpoint_that_is_off_fetches_only_when_named(table: str) -> None:
    """`enabled = false` switches any endpoint off (a replaced one here too): unnamed, its resource creates the table
    and appends nothing; named, it is its strategy's resource, which replaces the table."""
    endpoint = dataclasses.replace(load_catalog()[table], enabled=False)
    off = build_resource(context(), endpoint, named=False)
    named = build_resource(context(), endpoint, named=True)
    assert off.name == named.name == table
    assert off.write_disposition == "append" and named.write_disposition == "replace"
    assert off.compute_table_schema()["columns"].keys() == named.compute_table_schema()["columns"].keys()
