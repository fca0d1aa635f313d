"""The endpoint catalog: every GET endpoint of the Illuminate API, declared once in `endpoints.toml`.

The source builds its resources from it, the tests check the warehouse against it and the README's strategy table is
printed from it (`illuminate-sync endpoints`). The simulator does not read it: it has its own reading of the API
documentation (`simulator/routes.py`), so that a wrong path, parameter or default here is not served back to the source.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Literal

from .settings import SLICE_YEAR_COLUMN

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

ColumnType = Literal["bigint", "text", "date", "timestamp", "bool", "double"]
Shape = Literal["paged", "list", "document", "permissions", "site_map"]
Strategy = Literal[
    "replace",
    "academic_year_slice",
    "modified_after",
    "date_taken_window",
    "attendance_date",
    "changed_documents",
    "per_user",
]
# How a request window is expressed in the query string of an endpoint.
Window = Literal["date_range", "enrollment_range", "date_taken_range", "as_of_date", "single_date"]
Iterate = Literal["site", "user", "assessment"]

STRATEGY_DESCRIPTIONS: dict[str, str] = {
    "replace": "refetched every run, table replaced",
    "academic_year_slice": "per academic year and session window; each fetched year replaces its slice",
    "modified_after": "`modified_after` cursor (2 h overlap), merged on the key; periodic reconciliation",
    "date_taken_window": "date-taken window with a lookback, merged on the key",
    "attendance_date": "every date from the last synced date minus a lookback; each date replaces its slice",
    "changed_documents": "fetched for assessments whose `updated_at` changed, merged",
    "per_user": "one request per user; off unless named in `--resources`",
}


@dataclass(frozen=True)
class Endpoint:
    """One GET endpoint of the API and how it is synced."""

    table: str
    path: str
    shape: Shape
    strategy: Strategy
    primary_key: tuple[str, ...]
    columns: dict[str, ColumnType]
    max_limit: int | None = None
    window: Window | None = None
    iterate: Iterate | None = None
    required_params: tuple[str, ...] = ()
    optional_params: tuple[str, ...] = ()
    fixed_params: dict[str, str] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)
    undocumented_columns: tuple[str, ...] = ()
    pii_columns: tuple[str, ...] = ()
    enabled: bool = True
    refresh_setting: str | None = None
    """For slices refetched whole with no change filter: the setting that spaces out the current year's refetch."""
    window_columns: dict[str, str] = field(default_factory=dict)
    """Columns the sync adds from the request window (column -> query parameter), for records that do not carry
    what tells them apart: a gradebook's records name no session, and one gradebook name can recur in two."""

    @property
    def sync_columns(self) -> tuple[str, ...]:
        """The key columns that the sync adds rather than the API sends: the slice year, the window columns."""
        added = tuple(self.window_columns)
        return (SLICE_YEAR_COLUMN, *added) if self.strategy == "academic_year_slice" else added

    @property
    def is_paged(self) -> bool:
        return self.shape == "paged"

    def url_path(self, assessment_id: int | None = None) -> str:
        """The path below `rest_server.php/Api/`, with the assessment id filled in for the View."""
        if "{assessment_id}" in self.path:
            if assessment_id is None:
                raise ValueError(f"{self.path} needs an assessment id")
            return self.path.replace("{assessment_id}", str(assessment_id)) + "/"
        return self.path + "/"


KNOWN_KEYS = frozenset(
    {
        "path", "shape", "strategy", "primary_key", "columns", "max_limit", "window", "iterate", "required_params",
        "optional_params", "fixed_params", "aliases", "undocumented_columns", "pii_columns", "enabled",
        "refresh_setting", "window_columns",
    }
)  # fmt: skip
"""The keys an entry of `endpoints.toml` may have: any other is a typo (`pii_column` would switch PII handling off)."""


class CatalogError(ValueError):
    """`endpoints.toml` holds an entry the source cannot follow."""


@lru_cache(maxsize=1)
def load_catalog() -> dict[str, Endpoint]:
    """All endpoints by table name, in the order of the documentation."""
    raw = tomllib.loads(resources.files(__package__).joinpath("endpoints.toml").read_text("utf-8"))
    catalog: dict[str, Endpoint] = {}
    for table, spec in raw["endpoints"].items():
        unknown = sorted(set(spec) - KNOWN_KEYS)
        if unknown:
            raise CatalogError(f"endpoints.toml: [endpoints.{table}] has unknown key(s) {', '.join(unknown)}")
        catalog[table] = Endpoint(
            table=table,
            path=spec["path"],
            shape=spec["shape"],
            strategy=spec["strategy"],
            primary_key=tuple(spec["primary_key"]),
            columns=dict(spec["columns"]),
            max_limit=spec.get("max_limit"),
            window=spec.get("window"),
            iterate=spec.get("iterate"),
            required_params=tuple(spec.get("required_params", ())),
            optional_params=tuple(spec.get("optional_params", ())),
            fixed_params=dict(spec.get("fixed_params", {})),
            aliases=dict(spec.get("aliases", {})),
            undocumented_columns=tuple(spec.get("undocumented_columns", ())),
            pii_columns=tuple(spec.get("pii_columns", ())),
            enabled=spec.get("enabled", True),
            refresh_setting=spec.get("refresh_setting"),
            window_columns=dict(spec.get("window_columns", {})),
        )
        _check_key(catalog[table])
    return catalog


def _check_key(endpoint: Endpoint) -> None:
    """Every key column is a declared column or one the sync adds (a misspelt key would hold nothing)."""
    undeclared = [c for c in endpoint.primary_key if c not in endpoint.columns and c not in endpoint.sync_columns]
    if undeclared:
        raise CatalogError(f"endpoints.toml: [endpoints.{endpoint.table}] key column(s) {undeclared} are not declared")


def endpoint_by_path(path: str) -> Endpoint | None:
    """The endpoint whose documented path matches `path` (no slashes around; the View as `Assessment/7/View`)."""
    for endpoint in load_catalog().values():
        pattern = endpoint.path.split("/")
        parts = path.split("/")
        if len(pattern) == len(parts) and all(p == q or p.startswith("{") for p, q in zip(pattern, parts)):
            return endpoint
    return None
