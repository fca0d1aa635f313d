"""The README documents what the code does: its strategy table is the catalog's."""

from __future__ import annotations

from pathlib import Path

from pipelines.cli import endpoint_table

README = Path(__file__).resolve().parent.parent / "README.md"


def test_the_readme_strategy_table_matches_the_endpoint_catalog() -> None:
    text = README.read_text()
    start = text.index("<!-- endpoint-table:start -->") + len("<!-- endpoint-table:start -->")
    end = text.index("<!-- endpoint-table:end -->")
    assert text[start:end].strip() == endpoint_table().strip(), "run `illuminate-sync endpoints` and paste its output"
