"""DuckDB's settings while the sync loads a DuckDB file and while the models are built there.

Both the loader and the model runner read them from here (neither owns the other's settings). The dicts below hold
the defaults; `with_memory_limit` gives one with the user's memory limit, resolved by dlt each time a connection is
made: `memory_limit` under `[duckdb]` in `.dlt/config.toml`, or `DUCKDB__MEMORY_LIMIT`.
"""

from __future__ import annotations

import functools
import os
import sys
from typing import Any, ClassVar

import duckdb
from dlt.common.configuration import configspec, resolve_configuration
from dlt.common.configuration.specs import BaseConfiguration

from illuminate_sync.sources.illuminate.errors import ConfigurationError

MEMORY_LIMIT_VARIABLE = "DUCKDB__MEMORY_LIMIT"
DEPRECATED_MEMORY_LIMIT_VARIABLE = "ILLUMINATE_SYNC_DUCKDB_MEMORY_LIMIT"
"""The setting's name until 0.1.0, read when the new one is not set; it goes in the release after."""


@configspec
class DuckDbSettings(BaseConfiguration):
    """`[duckdb]` in `.dlt/config.toml` or the `DUCKDB__*` variables."""

    memory_limit: str | None = None
    """DuckDB's memory limit for loading and building models alike (`512MB`, `1GB`); unset means the defaults."""

    __section__: ClassVar[str] = "duckdb"
    """Looked up under `duckdb` only: a bare `MEMORY_LIMIT` variable of the environment is not this setting."""


def user_memory_limit() -> tuple[str, str]:
    """The user's DuckDB memory limit and the variable that names it in messages; ("", ...) when unset."""
    limit = (resolve_configuration(DuckDbSettings()).memory_limit or "").strip()
    old = os.environ.get(DEPRECATED_MEMORY_LIMIT_VARIABLE, "").strip()
    if old:
        _note_deprecated_variable()
    if limit or not old:
        return limit, MEMORY_LIMIT_VARIABLE
    return old, DEPRECATED_MEMORY_LIMIT_VARIABLE


@functools.cache
def _note_deprecated_variable() -> None:
    """One line on stderr, once per process: the old name still works for this release."""
    print(
        f"illuminate-sync: note: {DEPRECATED_MEMORY_LIMIT_VARIABLE} is deprecated and goes in the next release: set"
        f" {MEMORY_LIMIT_VARIABLE} (or memory_limit under [duckdb] in .dlt/config.toml) instead",
        file=sys.stderr,
    )


def with_memory_limit(config: dict[str, Any]) -> dict[str, Any]:
    """A copy of `config` (one of the defaults below) with the user's memory limit, if one is set."""
    limit, _ = user_memory_limit()
    return {**config, "memory_limit": limit or config["memory_limit"]}


DUCKDB_WRITE_CONFIG: dict[str, Any] = {
    "memory_limit": "128MB",
    "preserve_insertion_order": False,
}
"""DuckDB's settings while building models (and other writes); beyond the limit DuckDB spills to disk (the attendance
marts and large merges would otherwise take gigabytes). DuckDB fills its limit with cached blocks, so the limit adds
to the sync's peak as is: 128 MB loaded the 1,000-student benchmark district as fast as 256 MB (tail 11.2 s vs
10.6 s) with a peak 170 MB lower. The models of a 10,000-student district run out of memory at 96 MB."""

READ_CONFIG: dict[str, Any] = {"memory_limit": DUCKDB_WRITE_CONFIG["memory_limit"]}
"""DuckDB on the sync's read-only connections (counts, the copied-twice check's grouping by `_dlt_id`): without a
limit the check's grouping of a 5,000-student first sync took the run's peak from 342 to 689 MB; at the write limit
(128 MB) it spills to disk instead (replayed on that file: 621 -> 202 MB, and twice as fast)."""

DUCKDB_LOAD_CONFIG: dict[str, Any] = {**DUCKDB_WRITE_CONFIG, "memory_limit": "64MB"}
"""DuckDB's settings while the sync loads its files. Appending files needs less than the models: 64 MB instead of
128 MB took the load of a 10,000-student district (15.5 M rows) from 26.6 to 28.9 s and its peak 61 MB lower, and
the load is where the sync's memory peaks."""

BACKGROUND_LOAD_CONFIG: dict[str, Any] = {
    **DUCKDB_WRITE_CONFIG,
    "memory_limit": "32MB",
    "threads": 1,
}
"""DuckDB while a first sync loads a stage in the background (`load_stages`). One thread: the download needs the other
core, and one thread appends with ~15 % less CPU than two (measured at 64 MB: 5.9 against 7.1 s of CPU for 1.9 M
attendance rows). 32 MB: the background load's memory adds to the download's (~40 MB above the process at 32 MB,
~70 MB at 64 MB, same rows)."""


def out_of_memory_message(where: str, config: dict[str, Any] = DUCKDB_WRITE_CONFIG) -> str:
    """The one-line error when DuckDB needs more than the memory limit of `config` (or the user's)."""
    limit, _ = user_memory_limit()
    return (
        f"DuckDB ran out of memory {where} (limit {limit or config['memory_limit']}): set {MEMORY_LIMIT_VARIABLE}"
        " higher (e.g. 1GB) and run again; what earlier runs loaded is intact"
    )


def check_memory_limit() -> None:
    """The user's memory limit must be a size DuckDB understands: asked of DuckDB itself, on an in-memory
    database, so that a typo fails before any file is opened instead of in the middle of a load."""
    limit, variable = user_memory_limit()
    if not limit:
        return
    try:
        duckdb.connect(":memory:", config={"memory_limit": limit}).close()
    except duckdb.Error:
        raise ConfigurationError(f"{variable}: {limit!r} is not a DuckDB memory size such as 512MB or 1GB") from None
