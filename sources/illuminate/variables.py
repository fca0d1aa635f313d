"""The names a user sets the source's settings by, for the messages that name them.

The single instance's settings are `SOURCES__ILLUMINATE__<SETTING>` (`[sources.illuminate]` in `.dlt/*.toml`); a
named instance's are `SOURCES__ILLUMINATE__INSTANCES__<NAME>__<SETTING>` (`[sources.illuminate.instances.<name>]`).
While an instance's settings are resolved and checked (`naming_instance`), the messages name its variables.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

SOURCE_VARIABLE_PREFIX = "SOURCES__ILLUMINATE__"
"""The environment variable prefix of the single instance's settings."""

_prefix: ContextVar[str] = ContextVar("illuminate_settings_prefix", default=SOURCE_VARIABLE_PREFIX)


def instance_prefix(name: str) -> str:
    """The environment variable prefix of named instance `name`'s settings."""
    return f"{SOURCE_VARIABLE_PREFIX}INSTANCES__{name.upper()}__"


def source_variable(setting: str) -> str:
    """The variable of a setting of the source (`base_url`, `max_concurrency`) in the current naming."""
    return _prefix.get() + setting.upper()


def credentials_variable(field: str) -> str:
    """The variable of a credentials field (`consumer_key`) in the current naming."""
    return f"{_prefix.get()}CREDENTIALS__{field.upper()}"


def credentials_section() -> str:
    """The `.dlt/secrets.toml` section of the credentials in the current naming."""
    prefix = _prefix.get()
    if prefix == SOURCE_VARIABLE_PREFIX:
        return "[sources.illuminate.credentials]"
    name = prefix[len(SOURCE_VARIABLE_PREFIX) + len("INSTANCES__") : -2].lower()
    return f"[sources.illuminate.instances.{name}.credentials]"


def current_naming() -> str:
    """The naming in effect in this thread (a variable prefix), for threads that work for it (`adopt_naming`)."""
    return _prefix.get()


def adopt_naming(prefix: str) -> None:
    """Name `prefix`'s variables in this thread from now on: a pool's initializer, since a worker thread does not
    inherit the context of the thread that made its pool (a rejected key found by a page thread of instance north
    names north's variables)."""
    _prefix.set(prefix)


@contextmanager
def naming_instance(name: str | None) -> Iterator[None]:
    """Messages raised in the block name instance `name`'s variables (the single instance's when None)."""
    token = _prefix.set(SOURCE_VARIABLE_PREFIX if name is None else instance_prefix(name))
    try:
        yield
    finally:
        _prefix.reset(token)
