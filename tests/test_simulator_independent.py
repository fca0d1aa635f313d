"""The simulator is its own reading of the API documentation: it imports nothing from the source it tests."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SIMULATOR = Path(__file__).resolve().parent.parent / "simulator"


def imported_modules(source: str) -> list[str]:
    """Every module an `import` or `from ... import` statement names, relative imports excluded."""
    names: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module is not None:
            names.append(node.module)
    return names


def imports_sources(source: str) -> bool:
    return any(name == "sources" or name.startswith("sources.") for name in imported_modules(source))


def test_the_check_recognises_every_form_of_importing_sources() -> None:
    assert imports_sources("import sources.illuminate.catalog")
    assert imports_sources("from sources.illuminate.catalog import endpoint_by_path")
    assert imports_sources("def f():\n    from sources import illuminate\n")
    assert not imports_sources("from simulator.routes import ROUTES\nimport sourcesx\n")


@pytest.mark.parametrize("path", sorted(SIMULATOR.glob("*.py")), ids=lambda path: path.name)
def test_no_simulator_module_imports_the_source(path: Path) -> None:
    assert not imports_sources(path.read_text("utf-8")), f"{path.name} imports from sources/"


def test_the_simulator_package_is_found() -> None:
    assert (SIMULATOR / "routes.py").is_file() and len(list(SIMULATOR.glob("*.py"))) >= 5
