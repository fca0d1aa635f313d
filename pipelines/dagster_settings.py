"""The settings of the Dagster definitions (`pipelines.dagster_definitions`): where the instances load, when the
nightly job runs, how often a failed sync is retried.

They are resolved the dlt way, like the models' settings: `[dagster]` in `.dlt/config.toml` or `DAGSTER__*`
variables. Each field is the text the user wrote and is parsed here, so that a wrong value is one line naming its
variable (`DAGSTER__RETRIES: 'two' is not a whole number of retries >= 0`). This module does not import Dagster:
the settings can be read and checked without the `dagster` extra.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from dlt.common.configuration import configspec, resolve_configuration
from dlt.common.configuration.specs import BaseConfiguration

from illuminate_sync.sources.illuminate.errors import ConfigurationError
from illuminate_sync.sources.illuminate.setting_rules import is_time_zone

SECTION = "dagster"
DEFAULT_SCHEDULE = "0 2 * * *"
"""Nightly at 02:00: after the districts' evening attendance edits, before the morning's reports."""
DEFAULT_TIMEZONE = "UTC"
DEFAULT_RETRIES = 2
DEFAULT_RETRY_DELAY_SECONDS = 600.0
"""Ten minutes: long enough for an API outage or a maintenance window to pass, short enough to finish the night."""


def variable(field: str) -> str:
    """The environment variable of a field of `[dagster]`."""
    return f"{SECTION.upper()}__{field.upper()}"


@configspec
class DagsterConfiguration(BaseConfiguration):
    """`[dagster]` in `.dlt/config.toml` or the `DAGSTER__*` variables, as dlt resolves them (the text given)."""

    duckdb_path: str | None = None
    destination: str | None = None
    resources: str | None = None
    schedule: str | None = None
    timezone: str | None = None
    retries: str | None = None
    retry_delay_seconds: str | None = None

    __section__: ClassVar[str] = SECTION
    """Looked up under `dagster` only: a bare `SCHEDULE` or `TIMEZONE` variable of the environment is not this."""


@dataclass(frozen=True)
class DagsterSettings:
    """The Dagster definitions' settings, parsed and checked."""

    duckdb_path: Path | None = None
    """The DuckDB file every instance loads (an absolute path), or None with `destination`."""
    destination: str | None = None
    """A dlt destination (`postgres`, `delta`, ...) instead of a DuckDB file."""
    resources: tuple[str, ...] | None = None
    """The tables each sync fetches (`--resources`); None means every enabled one."""
    schedule: str = DEFAULT_SCHEDULE
    timezone: str = DEFAULT_TIMEZONE
    retries: int = DEFAULT_RETRIES
    retry_delay_seconds: float = DEFAULT_RETRY_DELAY_SECONDS

    @classmethod
    def resolve(cls) -> DagsterSettings:
        """The settings from dlt's configuration; a missing or wrong one raises a one-line ConfigurationError."""
        config = resolve_configuration(DagsterConfiguration())
        duckdb_path, destination = _blank_is_none(config.duckdb_path), _blank_is_none(config.destination)
        if (duckdb_path is None) == (destination is None):
            given = "both are set" if duckdb_path else "neither is set"
            raise ConfigurationError(
                f"{variable('duckdb_path')} or {variable('destination')}: {given} (set one: the DuckDB file every"
                f" instance loads, or a dlt destination such as postgres; duckdb_path or destination under [{SECTION}]"
                " in .dlt/config.toml)"
            )
        zone = _parsed(config.timezone, "timezone", _parse_zone, "a time zone's IANA name such as America/Chicago")
        retries = _parsed(config.retries, "retries", _parse_count, "a whole number of retries >= 0")
        delay = _parsed(config.retry_delay_seconds, "retry_delay_seconds", _parse_seconds, "a number of seconds >= 0")
        return cls(
            duckdb_path=Path(duckdb_path).expanduser().absolute() if duckdb_path else None,
            destination=destination,
            resources=_parsed(config.resources, "resources", _parse_resources, "a comma-separated list of tables"),
            schedule=_blank_is_none(config.schedule) or DEFAULT_SCHEDULE,
            timezone=zone or DEFAULT_TIMEZONE,
            retries=DEFAULT_RETRIES if retries is None else retries,
            retry_delay_seconds=DEFAULT_RETRY_DELAY_SECONDS if delay is None else delay,
        )


def _blank_is_none(raw: str | None) -> str | None:
    return raw.strip() if raw is not None and raw.strip() else None


def _parsed(raw: str | None, field: str, parse: Callable[[str], Any], expected: str) -> Any:
    """`raw` parsed, None when unset or blank; a value that does not parse is one line naming the variable."""
    text = _blank_is_none(raw)
    if text is None:
        return None
    try:
        return parse(text)
    except (TypeError, ValueError):
        raise ConfigurationError(f"{variable(field)}: {text!r} is not {expected}") from None


def _parse_count(text: str) -> int:
    value = float(text)
    if value != int(value) or value < 0:
        raise ValueError(text)
    return int(value)


def _parse_seconds(text: str) -> float:
    value = float(text)
    if not 0 <= value < float("inf"):  # NaN fails the comparison too
        raise ValueError(text)
    return value


def _parse_zone(text: str) -> str:
    if not is_time_zone(text):
        raise ValueError(text)
    return text


def _parse_resources(text: str) -> tuple[str, ...]:
    """The names are checked against the catalog where the definitions are built (`select_resources`), whose
    message lists the valid ones."""
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    if not names:
        raise ValueError(text)
    return names
