"""A dlt source for the Illuminate Education API: one resource per GET endpoint, each with its own sync strategy.

The endpoints, their keys, column types and strategies are declared in `endpoints.toml` (see `catalog.py`);
`resources.py` holds one resource factory per strategy, `client.py` the HTTP layer (OAuth1/OAuth2, retries,
concurrent paging) and `windows.py` the academic-year and session windows every request carries.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from zoneinfo import ZoneInfo

import dlt
from dlt.common.typing import TSecretStrValue
from dlt.extract import DltResource

from .auth import IlluminateCredentials, OAuth1Credentials, OAuth2Credentials
from .budget import RequestBudget
from .catalog import Endpoint, load_catalog
from .client import IlluminateClient
from .concurrency import parse_concurrency
from .context import RunReport, SyncContext, WarehouseReader
from .errors import ConfigurationError
from .privacy import PiiPolicy
from .resources import RESOURCE_FACTORIES, append_into_an_empty_table, switched_off_resource
from .setting_rules import check_source_settings
from .settings import (
    DEFAULT_ACADEMIC_YEARS_BACK,
    DEFAULT_ATTENDANCE_LOOKBACK_DAYS,
    DEFAULT_GRADEBOOK_REFRESH_DAYS,
    DEFAULT_MAX_CONCURRENCY,
    DEFAULT_MAX_CONCURRENCY_CEILING,
    DEFAULT_POOL_LOOKBACK_DAYS,
    DEFAULT_RECONCILE_EVERY_N_RUNS,
    DEFAULT_SHRINK_GUARD_RATIO,
    MAX_ACADEMIC_YEAR,
    MIN_ACADEMIC_YEAR,
)
from .windows import current_and_previous_years

__all__ = [
    "IlluminateCredentials",
    "OAuth1Credentials",
    "OAuth2Credentials",
    "RunReport",
    "illuminate_source",
    "resource_names",
]


@dlt.source(name="illuminate")
def illuminate_source(
    base_url: str = dlt.config.value,
    credentials: IlluminateCredentials = dlt.secrets.value,
    academic_years: Sequence[int] | None = None,
    academic_years_back: int = DEFAULT_ACADEMIC_YEARS_BACK,
    full_refresh: bool = False,
    reconcile: bool = False,
    max_concurrency: str = str(DEFAULT_MAX_CONCURRENCY),
    max_concurrency_ceiling: int = DEFAULT_MAX_CONCURRENCY_CEILING,
    attendance_lookback_days: int = DEFAULT_ATTENDANCE_LOOKBACK_DAYS,
    attendance_include_weekends: bool = False,
    pool_lookback_days: int = DEFAULT_POOL_LOOKBACK_DAYS,
    reconcile_every_n_runs: int = DEFAULT_RECONCILE_EVERY_N_RUNS,
    gradebook_refresh_days: int = DEFAULT_GRADEBOOK_REFRESH_DAYS,
    today: str | None = None,
    api_timezone: str | None = None,
    warehouse: WarehouseReader | None = None,
    allow_shrink: bool = False,
    pii: str = "keep",
    pii_hash_key: TSecretStrValue | None = None,
    shrink_guard_ratio: float = DEFAULT_SHRINK_GUARD_RATIO,
    report: RunReport | None = None,
    resources: Sequence[str] | None = None,
    request_budget: RequestBudget | None = None,
) -> list[DltResource]:
    """All GET endpoints of an Illuminate instance, synced incrementally.

    Args:
        base_url: The instance root, e.g. `https://yourdistrict.illuminateed.com/live` (a pasted
            `/rest_server.php` or `/rest_server.php/Api/` suffix is accepted). `https` is required except on loopback.
            Setting: `SOURCES__ILLUMINATE__BASE_URL`.
        credentials: OAuth1 (`consumer_key`, `consumer_secret`, `token`, `token_secret`) or OAuth2 (`client_id`,
            `client_secret`; used whenever a client id is given): `OAuth1Credentials` or `OAuth2Credentials`.
            Settings: `SOURCES__ILLUMINATE__CREDENTIALS__*`.
        academic_years: The academic years (ending year: 2027 is 2026-27) to sync. Default: the current one and the
            one before. Naming a closed year refetches it; otherwise closed years are fetched once and left alone.
        academic_years_back: Without `academic_years`, how many years before the current one are synced (default
            1; 0 syncs the current year only).
        full_refresh: Refetch everything selected, ignoring cursors and the record of loaded years.
        reconcile: Compare per-assessment counts of the aggregate tables with the API and refetch those that differ
            (also done automatically every `reconcile_every_n_runs` runs).
        max_concurrency: Requests in flight at once (pages and request windows of all resources together): a whole
            number (text, as settings arrive, or an int), or "auto": a limit that starts at 4 and follows the API's
            answers (up while latency holds, down on 429, 503, 504 and timeouts), see `concurrency.py`.
        max_concurrency_ceiling: With "auto", the most requests in flight it may reach (default 16).
        attendance_lookback_days: Attendance days refetched before the last synced date (corrections are
            retroactive).
        attendance_include_weekends: Also request Saturdays and Sundays (for instances that take attendance then).
        pool_lookback_days: Days of pool assessment `date_taken` refetched before the newest synced one.
        reconcile_every_n_runs: Automatic reconciliation period of the assessment aggregates; 0 turns it off.
        gradebook_refresh_days: The eight gradebook endpoints have no change filter, so their current year is
            refetched whole: every this many days (default 7; 1 = every run). In between, the gradebook tables keep
            the last fetch. `--full-refresh`, `--reconcile` and `--academic-year` refetch it at once.
        today: The date the sync treats as today, `YYYY-MM-DD` (for replaying a night or a simulated district);
            default: the real date.
        api_timezone: The zone of the instance's clock, an IANA name such as `America/Los_Angeles`: the API's
            timestamps and its `modified_after` filter are wall-clock times without a zone. Unknown (the default),
            cursors are sent 12 hours earlier, early enough for a server in any zone (`UNKNOWN_API_ZONE_MARGIN`).
            Setting: `SOURCES__ILLUMINATE__API_TIMEZONE`.
        warehouse: Reads what earlier runs loaded (the pipeline passes one); used by reconciliation and the shrink
            guard.
        allow_shrink: Load a refetch that replaces a table or slice with far fewer rows than it holds.
        pii: What happens to direct identifiers (the endpoint's `pii_columns`): `keep`, `hash` (keyed HMAC, joinable)
            or `exclude` (never written). A warehouse keeps the mode it was first loaded with.
        pii_hash_key: The secret key of `pii="hash"`. Setting: `SOURCES__ILLUMINATE__PII_HASH_KEY`.
        shrink_guard_ratio: A replacement with fewer than this share of the rows held (or none) fails the run.
        report: Filled in while the run goes: progress per resource, invalid values, the HTTP client and its stats.
        resources: The tables the user asked for by name; the endpoints that are off (`enabled = false` in the
            catalog: the per-user ones) fetch only when named here.
        request_budget: A limit on requests in flight shared with the other instances synced at the same time
            (`run --all-instances` passes one); each request also holds one of this instance's `max_concurrency`.

    Returns:
        One resource per GET endpoint, named after its table. The per-user SchoolFocus resources make one request
        per user (thousands in a large district) and fetch only when named in `resources`.
    """
    check_source_settings(
        {
            "max_concurrency": max_concurrency,
            "max_concurrency_ceiling": max_concurrency_ceiling,
            "attendance_lookback_days": attendance_lookback_days,
            "attendance_include_weekends": attendance_include_weekends,
            "pool_lookback_days": pool_lookback_days,
            "reconcile_every_n_runs": reconcile_every_n_runs,
            "gradebook_refresh_days": gradebook_refresh_days,
            "academic_years_back": academic_years_back,
            "shrink_guard_ratio": shrink_guard_ratio,
            "pii": pii,
            "today": today or None,
            "api_timezone": api_timezone or None,
        }
    )
    run_today = date.fromisoformat(today) if today else date.today()
    years = (
        sorted(set(academic_years)) if academic_years else current_and_previous_years(run_today, academic_years_back)
    )
    for year in years:
        validate_academic_year(year)
    pii_policy = PiiPolicy.create(pii, pii_hash_key)
    client = IlluminateClient(
        base_url,
        credentials,
        max_concurrency=parse_concurrency(max_concurrency) or DEFAULT_MAX_CONCURRENCY,  # checked above
        budget=request_budget,
        max_concurrency_ceiling=max_concurrency_ceiling,
    )
    ctx = SyncContext(
        client=client,
        today=run_today,
        selected_years=years,
        explicit_years=bool(academic_years),
        full_refresh=full_refresh,
        reconcile=reconcile,
        reconcile_every_n_runs=reconcile_every_n_runs,
        gradebook_refresh_days=gradebook_refresh_days,
        attendance_lookback_days=attendance_lookback_days,
        pool_lookback_days=pool_lookback_days,
        attendance_include_weekends=attendance_include_weekends,
        warehouse=warehouse,
        allow_shrink=allow_shrink,
        pii=pii_policy,
        shrink_ratio=shrink_guard_ratio,
        report=report or RunReport(),
        api_zone=ZoneInfo(api_timezone) if api_timezone else None,
    )
    ctx.report.client = client
    named = frozenset(resources or ())
    return [build_resource(ctx, endpoint, endpoint.table in named) for endpoint in load_catalog().values()]


def build_resource(ctx: SyncContext, endpoint: Endpoint, named: bool) -> DltResource:
    """The endpoint's resource: its strategy's, or, for an endpoint that is off and not `named`, one that only creates
    its table."""
    if not endpoint.enabled and not named:
        return switched_off_resource(ctx, endpoint)
    return append_into_an_empty_table(ctx, endpoint, RESOURCE_FACTORIES[endpoint.strategy](ctx, endpoint))


def resource_names() -> list[str]:
    """Every resource (= table) name, in documentation order."""
    return list(load_catalog())


def validate_academic_year(year: int) -> None:
    if not MIN_ACADEMIC_YEAR <= year <= MAX_ACADEMIC_YEAR:
        raise ConfigurationError(
            f"academic year {year} is out of range: give the ending year between {MIN_ACADEMIC_YEAR} and "
            f"{MAX_ACADEMIC_YEAR} (2027 means 2026-27)"
        )
