"""What each setting of the source accepts, and the one-line error that names a setting the way a user sets it.

dlt resolves the source's arguments from `.dlt/*.toml` and `SOURCES__ILLUMINATE__*` variables and coerces them to
their declared types; `SETTING_RULES` adds the ranges the types cannot express (a lookback of -3 days is an int).
Both kinds of error end in `invalid_setting_message`, so a wrong value reads the same whether its type or its range
is wrong: `SOURCES__ILLUMINATE__ATTENDANCE_LOOKBACK_DAYS: 'two' is not a whole number of days >= 0`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .auth import OAuth1Credentials, OAuth2Credentials
from .concurrency import parse_concurrency
from .errors import ConfigurationError
from .privacy import PII_MODES
from .variables import credentials_variable, source_variable

CREDENTIALS_FIELDS = (*OAuth1Credentials.needs, *OAuth2Credentials.needs)
"""The fields of `[sources.illuminate.credentials]`: those of both schemes of `IlluminateCredentials`."""
SECRET_FIELDS = frozenset({*CREDENTIALS_FIELDS, "pii_hash_key"})
"""Settings whose value is never shown in a message (a key id included: it is half of a credential)."""


def _accepts_anything(value: Any) -> bool:
    return True


def _at_least(minimum: int) -> Callable[[Any], bool]:
    def accepts(value: Any) -> bool:
        return bool(value >= minimum)

    return accepts


def _is_share(value: Any) -> bool:
    return bool(0 <= value <= 1)  # NaN fails both comparisons


def is_time_zone(value: Any) -> bool:
    """Whether `value` is an IANA zone name this machine knows (`America/Chicago`)."""
    try:
        ZoneInfo(str(value))
    except (ValueError, ZoneInfoNotFoundError):
        return False
    return True


def _is_iso_date(value: Any) -> bool:
    try:
        date.fromisoformat(str(value))
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class SettingRule:
    """What one setting of the source accepts."""

    expected: str
    """Completes "`value` is not ...": what the user should give instead."""
    accepts: Callable[[Any], bool] = _accepts_anything
    """Whether a value of the setting's type is in range (it is called after dlt coerced the value)."""


SETTING_RULES: dict[str, SettingRule] = {
    "max_concurrency": SettingRule(
        "a whole number of requests in flight >= 1, or auto", lambda value: parse_concurrency(value) is not None
    ),
    "max_concurrency_ceiling": SettingRule("a whole number of requests in flight >= 1", _at_least(1)),
    "attendance_lookback_days": SettingRule("a whole number of days >= 0", _at_least(0)),
    "attendance_include_weekends": SettingRule("true or false"),
    "pool_lookback_days": SettingRule("a whole number of days >= 0", _at_least(0)),
    "reconcile_every_n_runs": SettingRule("a whole number of runs >= 0 (0 = never)", _at_least(0)),
    "gradebook_refresh_days": SettingRule("a whole number of days >= 1 (1 = every run)", _at_least(1)),
    "academic_years_back": SettingRule("a whole number of years >= 0", _at_least(0)),
    "shrink_guard_ratio": SettingRule("a share of rows between 0 and 1, e.g. 0.5", _is_share),
    "pii": SettingRule(f"a PII mode: one of {', '.join(PII_MODES)}", lambda mode: mode in PII_MODES),
    "today": SettingRule("a date as YYYY-MM-DD (leave it unset for the real date)", _is_iso_date),
    "api_timezone": SettingRule("a time zone's IANA name such as America/Los_Angeles", is_time_zone),
}
"""The source's user settings (its arguments that dlt resolves), by argument name."""

TYPE_DESCRIPTIONS: dict[type, str] = {
    bool: "true or false",
    int: "a whole number",
    float: "a number",
    str: "text",
}
"""What a value of a declared type is called, for a setting without a rule (the base URL, the credentials)."""


def setting_variable(field: str) -> str:
    """The environment variable that sets a field of the source's configuration (or of its credentials): the single
    instance's, or a named instance's while its settings are resolved (`variables.naming_instance`)."""
    return credentials_variable(field) if field in CREDENTIALS_FIELDS else source_variable(field)


def invalid_setting_message(field: str, value: Any, declared_type: Any = None) -> str:
    """One line naming the setting, the value given (unless it is secret) and what the setting accepts."""
    rule = SETTING_RULES.get(field)
    expected = rule.expected if rule else TYPE_DESCRIPTIONS.get(declared_type, f"of type {declared_type}")
    shown = "the value given (not shown: it is secret)" if field in SECRET_FIELDS else _shown(value)
    return f"{setting_variable(field)}: {shown} is not {expected}"


def check_source_settings(values: Mapping[str, Any]) -> None:
    """Raises ConfigurationError on the first setting in `values` (resolved and typed) that its rule rejects."""
    for field, rule in SETTING_RULES.items():
        value = values.get(field)
        if value is not None and not rule.accepts(value):
            raise ConfigurationError(invalid_setting_message(field, value))


def _shown(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"  # 2, not 2.0: the text the user typed
    return repr(value) if isinstance(value, str) else str(value)
