"""The endpoint catalog: every GET endpoint of the Illuminate API, declared once in `endpoints.toml`.

The source builds its resources from it, the tests check the warehouse against it and the README's strategy table is
printed from it (`illuminate-sync endpoints`). The simulator does not read it: it has its own reading of the API
documentation (`simulator/routes.py`), so that a wrong path, parameter or default here is not served back to the source.

Every key an entry may have is a field of `Endpoint`, documented there. The file is checked as it is read: a key,
table or value the source would not read is refused (`pii_column` for `pii_columns` would switch PII handling off),
with one line naming the file, the entry, the key and what is allowed.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields
from functools import lru_cache
from importlib import resources
from typing import Any, Literal, get_args

from .errors import IlluminateError
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
    "per_user": "one request per user",
}
OFF_DESCRIPTION = "off unless named in `--resources`"
"""What `enabled = false` means, as the README's strategy table says it."""

CATALOG_FILE = "sources/illuminate/endpoints.toml"
"""The catalog as its errors name it: the path in the repository."""


@dataclass(frozen=True)
class Endpoint:
    """One GET endpoint of the API and how it is synced: one entry `[endpoints.<table>]` of `endpoints.toml`, each
    field a key of the entry (but `table`, the entry's name)."""

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
    """False: off unless named in `--resources` (the per-user endpoints, one request per user: thousands in a large
    district). Unnamed, the resource only creates its table, empty, and leaves what an earlier run loaded."""
    refresh_setting: str | None = None
    """For slices refetched whole with no change filter: the setting that spaces out the current year's refetch."""
    window_columns: dict[str, str] = field(default_factory=dict)
    """Columns the sync adds from the request window (column -> query parameter), for records that do not carry
    what tells them apart: a gradebook's records name no session, and one gradebook name can recur in two."""
    session_calendar: bool = False
    """The endpoint whose rows are the session calendar (Terms): each run fetches them first, per academic year, to
    plan every request window (`SyncContext.terms`), and its year slices are those rows, not a second request."""
    run_date_param: str | None = None
    """The query parameter that asks for the answer as of a date, set to the run's date (`--today` when replaying a
    night), for a replaced endpoint that answers as of a date: without it the API answers as of its own today."""
    ends_load_stage: bool = False
    """A first sync's load stage ends after this resource (`pipelines/load_stages.py`): the largest endpoints, so
    that what comes before them loads while they download."""

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


KNOWN_KEYS = frozenset(f.name for f in fields(Endpoint)) - {"table"}
"""The keys an entry of `endpoints.toml` may have: any other is a typo (`pii_column` would switch PII handling off)."""
REQUIRED_KEYS = frozenset(f.name for f in fields(Endpoint) if f.default is MISSING and f.default_factory is MISSING)
REQUIRED_KEYS -= {"table"}
TOP_LEVEL_TABLES = frozenset({"endpoints"})
ALLOWED_VALUES: dict[str, tuple[str, ...]] = {
    "shape": get_args(Shape),
    "strategy": get_args(Strategy),
    "window": get_args(Window),
    "iterate": get_args(Iterate),
}
COLUMN_TYPES: tuple[str, ...] = get_args(ColumnType)
READ_BY_STRATEGY: dict[str, frozenset[str]] = {
    "refresh_setting": frozenset({"academic_year_slice"}),
    "window_columns": frozenset({"academic_year_slice"}),
    "session_calendar": frozenset({"academic_year_slice"}),
    "run_date_param": frozenset({"replace"}),
}
"""Keys only some strategies read: on an endpoint of another strategy they would be ignored."""


class CatalogError(IlluminateError, ValueError):
    """`endpoints.toml` holds an entry the source cannot follow."""


@lru_cache(maxsize=1)
def load_catalog() -> dict[str, Endpoint]:
    """All endpoints by table name, in the order of the documentation."""
    return parse_catalog(resources.files(__package__).joinpath("endpoints.toml").read_text("utf-8"))


def parse_catalog(text: str) -> dict[str, Endpoint]:
    """The endpoints of a catalog's TOML text, checked (`CatalogError` names the first thing it cannot follow)."""
    raw = tomllib.loads(text)
    _refuse_unknown(raw, TOP_LEVEL_TABLES, "the file", "top-level table(s)")
    catalog = {table: _endpoint(table, spec) for table, spec in raw.get("endpoints", {}).items()}
    calendars = [endpoint.table for endpoint in catalog.values() if endpoint.session_calendar]
    if len(calendars) != 1:
        raise CatalogError(
            f"{CATALOG_FILE}: {len(calendars)} endpoints ({', '.join(calendars) or 'none'}) declare"
            " `session_calendar = true`: exactly one (Terms) must"
        )
    return catalog


def calendar_endpoint() -> Endpoint:
    """The endpoint whose rows are the session calendar (`session_calendar`)."""
    return next(endpoint for endpoint in load_catalog().values() if endpoint.session_calendar)


def _endpoint(table: str, spec: Mapping[str, Any]) -> Endpoint:
    where = f"[endpoints.{table}]"
    _refuse_unknown(spec, KNOWN_KEYS, where, "key(s)")
    missing = sorted(REQUIRED_KEYS - set(spec))
    if missing:
        raise CatalogError(f"{CATALOG_FILE}: {where} lacks the required key(s) {', '.join(missing)}")
    endpoint = Endpoint(table=table, **{key: _frozen(value) for key, value in spec.items()})
    _check_values(endpoint, where)
    _check_columns(endpoint, where)
    _check_strategy_keys(endpoint, spec, where)
    return endpoint


def _refuse_unknown(raw: Mapping[str, Any], known: frozenset[str], where: str, what: str) -> None:
    unknown = sorted(set(raw) - known)
    if unknown:
        raise CatalogError(
            f"{CATALOG_FILE}: {where} has unknown {what} {', '.join(unknown)}; the known ones are"
            f" {', '.join(sorted(known))}"
        )


def _frozen(value: Any) -> Any:
    """A TOML array as the tuple `Endpoint` keeps (tables stay dicts)."""
    return tuple(value) if isinstance(value, list) else value


def _check_values(endpoint: Endpoint, where: str) -> None:
    """Every enumerated key holds one of its values (a misspelt shape or window would be read as another)."""
    for key, allowed in ALLOWED_VALUES.items():
        value = getattr(endpoint, key)
        if value is not None and value not in allowed:
            raise CatalogError(
                f"{CATALOG_FILE}: {where} {key} = {value!r} is unknown; the known values are {', '.join(allowed)}"
            )
    for column, column_type in endpoint.columns.items():
        if column_type not in COLUMN_TYPES:
            raise CatalogError(
                f"{CATALOG_FILE}: {where} column {column} has unknown type {column_type!r}; the known types are"
                f" {', '.join(COLUMN_TYPES)}"
            )
    params = set(endpoint.required_params) | set(endpoint.optional_params)
    for param in (*endpoint.fixed_params, *([endpoint.run_date_param] if endpoint.run_date_param else [])):
        if param not in params:
            raise CatalogError(
                f"{CATALOG_FILE}: {where} sends {param}, which is not among its required_params or optional_params"
            )


def _check_columns(endpoint: Endpoint, where: str) -> None:
    """Every column a key names is declared (a misspelt key column would hold nothing, a misspelt PII column would
    be written as sent)."""
    named = {
        "primary_key": [c for c in endpoint.primary_key if c not in endpoint.sync_columns],
        "pii_columns": list(endpoint.pii_columns),
        "undocumented_columns": list(endpoint.undocumented_columns),
        "aliases": list(endpoint.aliases.values()),
    }
    for key, columns in named.items():
        undeclared = [column for column in columns if column not in endpoint.columns]
        if undeclared:
            raise CatalogError(
                f"{CATALOG_FILE}: {where} {key} names column(s) {', '.join(undeclared)}, which"
                f" [endpoints.{endpoint.table}.columns] does not declare"
            )


def _check_strategy_keys(endpoint: Endpoint, spec: Mapping[str, Any], where: str) -> None:
    for key, strategies in READ_BY_STRATEGY.items():
        if key in spec and endpoint.strategy not in strategies:
            raise CatalogError(
                f"{CATALOG_FILE}: {where} has {key}, which only the {', '.join(sorted(strategies))} strategy reads"
                f" (this endpoint's is {endpoint.strategy})"
            )


def endpoint_by_path(path: str) -> Endpoint | None:
    """The endpoint whose documented path matches `path` (no slashes around; the View as `Assessment/7/View`)."""
    for endpoint in load_catalog().values():
        pattern = endpoint.path.split("/")
        parts = path.split("/")
        if len(pattern) == len(parts) and all(p == q or p.startswith("{") for p, q in zip(pattern, parts)):
            return endpoint
    return None
