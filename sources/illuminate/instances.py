"""Named Illuminate instances: several districts declared in one configuration, the dlt way, one section each.

    [sources.illuminate.instances.north]
    base_url = "https://north.illuminateed.com/live"
    max_concurrency = 4                      # any source setting: overrides [sources.illuminate] for this one

    [sources.illuminate.instances.north.credentials]
    consumer_key = "..."                     # OAuth1 or OAuth2, as for the single instance

or `SOURCES__ILLUMINATE__INSTANCES__NORTH__BASE_URL`, `SOURCES__ILLUMINATE__INSTANCES__NORTH__CREDENTIALS__...`.

dlt resolves every value (its providers, its coercion to the setting's type): the base URL and the credentials at
the instance's own section only (an instance never borrows another district's URL or keys); every other setting at
the instance's section, else as the single instance's are resolved (`[sources.illuminate]`, then the default).
Only the instance *names* are listed from the providers' sections (and from the names of the environment variables,
which dlt cannot enumerate), for the message that names the declared ones.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any, get_type_hints

import dlt
from dlt.common.configuration import resolve_configuration
from dlt.common.configuration.container import Container
from dlt.common.configuration.exceptions import ConfigFieldMissingException, ConfigValueCannotBeCoercedException
from dlt.common.configuration.providers import EnvironProvider
from dlt.common.configuration.specs import BaseConfiguration, configspec
from dlt.common.configuration.specs.pluggable_run_context import PluggableRunContext
from dlt.common.typing import AnyType, extract_inner_type

from .auth import IlluminateCredentials
from .client import normalize_base_url
from .errors import ConfigurationError
from .setting_rules import (
    CREDENTIALS_FIELDS,
    SECRET_FIELDS,
    SETTING_RULES,
    check_source_settings,
    invalid_setting_message,
)
from .settings import DATASET_NAME
from .variables import SOURCE_VARIABLE_PREFIX, instance_prefix, naming_instance

INSTANCES_SECTIONS = ("sources", "illuminate", "instances")
"""Where instances are declared: `[sources.illuminate.instances.<name>]`."""
INSTANCES_VARIABLE_PREFIX = f"{SOURCE_VARIABLE_PREFIX}INSTANCES__"
INSTANCE_NAME = re.compile(r"[a-z0-9_]{1,40}")
"""An instance name becomes part of schema names (`illuminate_<name>`, `analytics_<name>`) and of the dlt pipeline's
name: lowercase letters, digits and underscores, short enough for PostgreSQL's 63-character identifiers."""
INSTANCE_SETTINGS = (*SETTING_RULES, "pii_hash_key")
"""The source settings an instance may override (the arguments of `illuminate_source` that dlt resolves)."""


@configspec
class InstanceCredentials(BaseConfiguration):
    """The credentials of one instance, resolved by dlt at `[sources.illuminate.instances.<name>.credentials]`."""

    credentials: IlluminateCredentials = None  # type: ignore[assignment]


@dataclass(frozen=True)
class Instance:
    """A named instance, its settings resolved: what `illuminate_source` is given for it."""

    name: str
    base_url: str
    credentials: Any
    overrides: dict[str, Any] = field(default_factory=dict)
    """The settings set at the instance's own section (the others resolve as the single instance's do)."""

    @property
    def dataset(self) -> str:
        return dataset_for(self.name)

    def source_options(self) -> dict[str, Any]:
        """The instance's arguments of `illuminate_source`."""
        return {**self.overrides, "base_url": self.base_url, "credentials": self.credentials}


def dataset_for(instance: str | None) -> str:
    """The raw dataset of an instance: `illuminate_<name>`, or `illuminate` for the single instance."""
    return DATASET_NAME if instance is None else f"{DATASET_NAME}_{instance}"


def check_instance_name(name: str) -> None:
    if not INSTANCE_NAME.fullmatch(name):
        raise ConfigurationError(
            f"--instance {name!r}: not a valid instance name (expected 1 to 40 lowercase letters, digits or"
            " underscores: the name becomes the schema illuminate_<name>)"
        )


def declared_instances() -> list[str]:
    """The names of the instances declared in dlt's providers: the keys of `[sources.illuminate.instances]` in the
    settings files, and the `<NAME>` of `SOURCES__ILLUMINATE__INSTANCES__<NAME>__*` variables."""
    names: set[str] = set()
    for provider in Container()[PluggableRunContext].providers.providers:
        if isinstance(provider, EnvironProvider):
            for variable in os.environ:
                if variable.startswith(INSTANCES_VARIABLE_PREFIX):
                    name, separator, _ = variable[len(INSTANCES_VARIABLE_PREFIX) :].partition("__")
                    if separator and name:
                        names.add(name.lower())
            continue
        if provider.is_empty or not provider.supports_sections:
            continue
        section, _ = provider.get_value(INSTANCES_SECTIONS[-1], AnyType, None, *INSTANCES_SECTIONS[:-1])
        if isinstance(section, dict):
            names.update(str(name) for name, value in section.items() if isinstance(value, dict))
    return sorted(names)


def resolve_instance(name: str) -> Instance:
    """Instance `name`'s base URL, credentials and settings, resolved and checked; a one-line ConfigurationError
    names what is wrong (an unknown name lists the declared ones; a missing setting names its variable)."""
    check_instance_name(name)
    declared = declared_instances()
    if name not in declared:
        listed = f"declared: {', '.join(declared)}" if declared else "none is declared"
        raise ConfigurationError(
            f"--instance {name}: no such instance ({listed}; declare one with [sources.illuminate.instances.{name}]"
            f" or {instance_prefix(name)}BASE_URL and {instance_prefix(name)}CREDENTIALS__*)"
        )
    sections = (*INSTANCES_SECTIONS, name)
    with naming_instance(name):
        base_url = normalize_base_url(dlt.config.get(".".join((*sections, "base_url")), str) or "")
        credentials = _resolve_credentials(name, sections)
        overrides = _resolve_overrides(sections)
        check_source_settings(overrides)
    return Instance(name, base_url, credentials, overrides)


def _resolve_credentials(name: str, sections: tuple[str, ...]) -> Any:
    """The instance's credentials, resolved by dlt at its own section: with none of their fields set there, the
    instance has none (the single instance's, or another's, are never used for it)."""
    from .auth import no_credentials_message

    given = [
        field
        for field in CREDENTIALS_FIELDS
        if dlt.config.get(".".join((*sections, "credentials", field)), str) not in (None, "")
    ]
    if not given:
        raise ConfigurationError(f"instance {name}: {no_credentials_message()}")
    try:
        resolved = resolve_configuration(InstanceCredentials(), sections=sections)
    except ConfigFieldMissingException:
        raise ConfigurationError(f"instance {name}: {no_credentials_message()}") from None
    return resolved.credentials


def _resolve_overrides(sections: tuple[str, ...]) -> dict[str, Any]:
    """The source settings set at the instance's section, coerced by dlt to the source's types."""
    from . import illuminate_source

    hints = get_type_hints(illuminate_source._f)  # the source function's own signature
    overrides: dict[str, Any] = {}
    for setting in INSTANCE_SETTINGS:
        accessor = dlt.secrets if setting in SECRET_FIELDS else dlt.config
        key = ".".join((*sections, setting))
        try:
            value = accessor.get(key, extract_inner_type(hints[setting]))  # `str | None`: a `str` if set
        except ConfigValueCannotBeCoercedException as error:
            raise ConfigurationError(invalid_setting_message(setting, error.field_value, error.hint)) from None
        if value is not None:
            overrides[setting] = value
    return overrides
