"""The benchmark's PostgreSQL: a throwaway cluster (the tests' `tests/postgres_support.py`) with the server's default
settings, a fresh database per scenario, the server's CPU time and its settings for the results.

The tests run their clusters with `fsync=off`; the benchmark does not: only what a throwaway cluster needs is set
(loopback address, a free port, the socket directory), everything else is the server's default, and the results
record what the server ran with (`settings()`).
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.common import CLK_TCK

TESTS_DIR = Path(__file__).resolve().parent.parent / "tests"
if str(TESTS_DIR) not in sys.path:  # the one place the benchmark reaches into the tests
    sys.path.append(str(TESTS_DIR))

from postgres_support import PostgresCluster, postgres_available, postgres_cluster  # noqa: E402

CREDENTIALS_VARIABLE = "DESTINATION__POSTGRES__CREDENTIALS"

KEY_SETTINGS = (
    "shared_buffers",
    "work_mem",
    "maintenance_work_mem",
    "effective_cache_size",
    "fsync",
    "synchronous_commit",
    "full_page_writes",
    "wal_level",
    "wal_buffers",
    "max_wal_size",
    "checkpoint_timeout",
    "wal_compression",
    "max_worker_processes",
    "max_parallel_workers",
    "autovacuum",
    "jit",
)
"""Settings that bear on bulk loading, recorded whatever their source."""


@contextlib.contextmanager
def bench_cluster() -> Iterator[PostgresCluster]:
    """A running PostgreSQL cluster with the server's default settings; stopped and deleted afterwards."""
    if not postgres_available():
        raise SystemExit("PostgreSQL's server binaries are not installed (Debian: apt-get install postgresql)")
    with postgres_cluster(settings={}) as cluster:
        yield cluster


def fresh_database(cluster: PostgresCluster, name: str) -> str:
    """A new, empty database `name` (dropped first if a scenario of this run left it); its URL."""
    cluster.execute(f'drop database if exists "{name}"')
    return cluster.create_database(name)


def _stat_fields(pid: int | str) -> list[str]:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def server_cpu_seconds(cluster: PostgresCluster) -> float:
    """CPU seconds the server has used since it started: the postmaster's own and its reaped children's (backends
    that ended) plus those of its children that are running now. A difference of two readings is the server's CPU in
    between (a backend that ends in between moves from the second part to the first)."""
    postmaster = cluster.postmaster_pid
    fields = _stat_fields(postmaster)
    ticks = sum(int(fields[i]) for i in (11, 12, 13, 14))  # utime, stime, cutime, cstime
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            child = _stat_fields(proc.name)
        except OSError:  # ended meanwhile
            continue
        if int(child[1]) == postmaster:  # ppid
            ticks += int(child[11]) + int(child[12])
    return ticks / CLK_TCK


def settings(cluster: PostgresCluster) -> dict[str, Any]:
    """What the server ran with: its version, the settings not at their built-in default (and where they come
    from) and the settings that bear on bulk loading."""
    rows = cluster.execute(
        "select name, setting, unit, source from pg_settings"
        f" where source not in ('default', 'override') or name = any({_array(KEY_SETTINGS)})"
    )
    not_default = {
        str(name): _with_unit(setting, unit) + f" ({source})"
        for name, setting, unit, source in rows
        if source not in ("default", "override")
    }
    key = {str(name): _with_unit(setting, unit) for name, setting, unit, _ in rows if name in KEY_SETTINGS}
    version = cluster.execute("show server_version")[0][0]
    return {"version": str(version), "key_settings": dict(sorted(key.items())), "not_default": not_default}


def _array(names: tuple[str, ...]) -> str:
    return "array[" + ", ".join(f"'{name}'" for name in names) + "]"


def _with_unit(setting: Any, unit: Any) -> str:
    """`16384` with unit `8kB` -> `16384 x 8kB (128 MB)`; `4096` `kB` -> `4096 kB`."""
    if not unit:
        return str(setting)
    if str(unit) == "8kB":
        return f"{setting} x 8kB ({int(setting) * 8 // 1024} MB)"
    return f"{setting} {unit}"
