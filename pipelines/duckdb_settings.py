"""DuckDB's settings while the sync loads a DuckDB file and while the models are built there.

Both the loader and the model runner read them from here (neither owns the other's settings).
"""

from __future__ import annotations

import os
from typing import Any

import duckdb

from illuminate_sync.sources.illuminate.errors import ConfigurationError

MEMORY_LIMIT_VARIABLE = "ILLUMINATE_SYNC_DUCKDB_MEMORY_LIMIT"
DUCKDB_MEMORY_LIMIT = os.environ.get(MEMORY_LIMIT_VARIABLE, "")
"""The user's DuckDB memory limit for loading and building models alike; empty means the defaults below."""

DUCKDB_WRITE_CONFIG: dict[str, Any] = {
    "memory_limit": DUCKDB_MEMORY_LIMIT or "128MB",
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

DUCKDB_LOAD_CONFIG: dict[str, Any] = {**DUCKDB_WRITE_CONFIG, "memory_limit": DUCKDB_MEMORY_LIMIT or "64MB"}
"""DuckDB's settings while the sync loads its files. Appending files needs less than the models: 64 MB instead of
128 MB took the load of a 10,000-student district (15.5 M rows) from 26.6 to 28.9 s and its peak 61 MB lower, and
the load is where the sync's memory peaks."""

BACKGROUND_LOAD_CONFIG: dict[str, Any] = {
    **DUCKDB_WRITE_CONFIG,
    "memory_limit": DUCKDB_MEMORY_LIMIT or "32MB",
    "threads": 1,
}
"""DuckDB while a first sync loads a stage in the background (`load_stages`). One thread: the download needs the other
core, and one thread appends with ~15 % less CPU than two (measured at 64 MB: 5.9 against 7.1 s of CPU for 1.9 M
attendance rows). 32 MB: the background load's memory adds to the download's (~40 MB above the process at 32 MB,
~70 MB at 64 MB, same rows)."""


def out_of_memory_message(where: str, config: dict[str, Any] = DUCKDB_WRITE_CONFIG) -> str:
    """The one-line error when DuckDB needs more than the memory limit of `config`."""
    return (
        f"DuckDB ran out of memory {where} (limit {config['memory_limit']}): set {MEMORY_LIMIT_VARIABLE} higher "
        "(e.g. 1GB) and run again; what earlier runs loaded is intact"
    )


def check_memory_limit() -> None:
    """`ILLUMINATE_SYNC_DUCKDB_MEMORY_LIMIT` must be a size DuckDB understands: asked of DuckDB itself, on an
    in-memory database, so that a typo fails before any file is opened instead of in the middle of a load."""
    if not DUCKDB_MEMORY_LIMIT:
        return
    try:
        duckdb.connect(":memory:", config={"memory_limit": DUCKDB_MEMORY_LIMIT}).close()
    except duckdb.Error:
        raise ConfigurationError(
            f"{MEMORY_LIMIT_VARIABLE}: {DUCKDB_MEMORY_LIMIT!r} is not a DuckDB memory size such as 512MB or 1GB"
        ) from None
