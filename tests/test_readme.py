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


NETWORK_QUERIES = re.compile(r"<!-- network-queries:start -->(.*?)<!-- network-queries:end -->", flags=re.DOTALL)
"""The README's queries of the network schema: run on a network warehouse by tests/test_models_network.py."""


def sql_statements(text: str) -> list[str]:
    """The statements of the ```sql blocks of `text`."""
    blocks = re.findall(r"```sql\n(.*?)```", text, flags=re.DOTALL)
    return [statement.strip() for block in blocks for statement in block.split(";") if statement.strip()]


def network_statements() -> list[str]:
    return sql_statements("".join(NETWORK_QUERIES.findall(README.read_text())))


def test_the_readme_example_queries_run_on_a_modelled_warehouse(models_warehouse: Any) -> None:
    statements = sql_statements(NETWORK_QUERIES.sub("", README.read_text()))
    assert len(statements) >= 3
    for statement in statements:
        models_warehouse.rows(statement)  # raises on an unknown table or column


def _anchors(markdown: str) -> set[str]:
    """GitHub's anchors of a markdown file's headings: lower case, punctuation dropped, spaces as hyphens."""
    headings = re.findall(r"^#+ (.+)$", markdown, flags=re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-") for heading in headings}


def test_the_readme_and_the_docs_link_only_to_what_the_repository_holds() -> None:
    """The repository stands alone: every relative link of README.md and docs/ names a file (and heading) in it."""
    pages = [README, *sorted((README.parent / "docs").glob("*.md"))]
    assert len(pages) > 1, "docs/ holds the pages the code's docstrings point to"
    for page in pages:
        for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text()):
            if re.match(r"[a-z]+:", target):
                continue  # a web address
            path, _, anchor = target.partition("#")
            linked = (page.parent / path).resolve() if path else page
            assert linked.exists(), f"{page.name}: link to {target}: no such file"
            if anchor:
                assert anchor in _anchors(linked.read_text()), f"{page.name}: link to {target}: no such heading"


def test_the_pages_the_code_points_to_are_in_the_repository() -> None:
    """A docstring that says "see X.md" names a page of this repository (its path from the root), not notes kept
    elsewhere."""
    root = README.parent
    for folder in ("sources", "pipelines", "simulator", "sql", "bench"):
        for source in sorted((root / folder).rglob("*.py")):
            for name in set(re.findall(r"[\w./-]+\.md\b", source.read_text())):
                assert (root / name).is_file(), f"{source.relative_to(root)} points to {name}, not in the repository"
