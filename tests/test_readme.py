"""The README documents what the code does: its strategy table is the catalog's."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from illuminate_sync.pipelines.cli import endpoint_table

README = Path(__file__).resolve().parent.parent / "README.md"


def test_the_readme_strategy_table_matches_the_endpoint_catalog() -> None:
    text = README.read_text()
    start = text.index("<!-- endpoint-table:start -->") + len("<!-- endpoint-table:start -->")
    end = text.index("<!-- endpoint-table:end -->")
    assert text[start:end].strip() == endpoint_table().strip(), "run `illuminate-sync endpoints` and paste its output"


def test_the_readme_example_queries_run_on_a_modelled_warehouse(models_warehouse: Any) -> None:
    text = README.read_text()
    blocks = re.findall(r"```sql\n(.*?)```", text, flags=re.DOTALL)
    statements = [statement.strip() for block in blocks for statement in block.split(";") if statement.strip()]
    assert len(statements) >= 3
    for statement in statements:
        models_warehouse.rows(statement)  # raises on an unknown table or column
