"""Shared pieces of the benchmark: the request log format, OAuth1 signing from the environment, child processes."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

PREFIX = "SOURCES__ILLUMINATE__"
CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class LoggedRequest:
    """One GET the sync sent: the path below the API root and its query parameters (no OAuth parameters)."""

    path: str
    params: dict[str, str]
    status: int = 200
    nbytes: int = 0
    seconds: float = 0.0
    end: float | None = None
    """When the answer was complete, seconds since the sync's process started (logs of `bench.sync_child`)."""

    @property
    def window(self) -> tuple[str, tuple[tuple[str, str], ...]]:
        """The request window: path and parameters without `page` and `limit`."""
        return self.path, tuple((k, v) for k, v in self.params.items() if k not in ("page", "limit"))

    @property
    def paged(self) -> bool:
        return "page" in self.params


def parse_describe(describe: str) -> tuple[str, dict[str, str]]:
    """`GET Students/ (start_date=2026-08-01, page=2)` -> (`Students/`, {...}) (the client's log format)."""
    _, _, rest = describe.partition(" ")
    path, _, query = rest.partition(" (")
    params: dict[str, str] = {}
    if query:
        for part in query.rstrip(")").split(", "):
            key, _, value = part.partition("=")
            params[key] = value
    return path, params


def read_request_log(path: Path) -> list[LoggedRequest]:
    out = []
    with path.open() as handle:
        for line in handle:
            if line.strip():
                item = json.loads(line)
                out.append(
                    LoggedRequest(
                        item["path"], item["params"], item["status"], item["bytes"], item["seconds"], item.get("end")
                    )
                )
    return out


def api_root(env: Mapping[str, str]) -> str:
    return env[f"{PREFIX}BASE_URL"].rstrip("/") + "/rest_server.php/Api/"


def oauth1_signer(env: Mapping[str, str]) -> Any:
    """The project's OAuth1 signer (a fresh nonce and timestamp per request), built from the simulator's env lines."""
    from illuminate_sync.sources.illuminate.auth import OAuth1Signer

    c = f"{PREFIX}CREDENTIALS__"
    return OAuth1Signer(env[f"{c}CONSUMER_KEY"], env[f"{c}CONSUMER_SECRET"], env[f"{c}TOKEN"], env[f"{c}TOKEN_SECRET"])


def http_session(concurrency: int) -> Any:
    import requests
    from requests.adapters import HTTPAdapter

    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=max(10, concurrency + 2), max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


# ------------------------------------------------------------------------------------------------ processes
@dataclass
class ChildResult:
    """What a scenario's child process cost: wall time, CPU, peak memory (its own max RSS) and its output."""

    argv: list[str]
    returncode: int
    wall_s: float
    user_s: float
    sys_s: float
    max_rss_mb: float
    stdout: str
    stderr: str
    timed_out: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def cpu_s(self) -> float:
        return self.user_s + self.sys_s


def run_child(
    argv: Sequence[str], env: Mapping[str, str], log_dir: Path, name: str, timeout: float | None = None
) -> ChildResult:
    """Runs one scenario in its own process; `os.wait4` gives that process's own peak RSS and CPU time."""
    log_dir.mkdir(parents=True, exist_ok=True)
    out_path, err_path = log_dir / f"{name}.stdout", log_dir / f"{name}.stderr"
    timed_out = threading.Event()
    with out_path.open("wb") as out, err_path.open("wb") as err:
        started = time.monotonic()
        proc = subprocess.Popen(list(argv), env=dict(env), stdout=out, stderr=err)

        def kill() -> None:
            timed_out.set()
            proc.kill()

        timer = threading.Timer(timeout, kill) if timeout else None
        if timer:
            timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            if timer:
                timer.cancel()
        wall = time.monotonic() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
    return ChildResult(
        argv=list(argv),
        returncode=proc.returncode,
        wall_s=wall,
        user_s=usage.ru_utime,
        sys_s=usage.ru_stime,
        max_rss_mb=usage.ru_maxrss / 1024,  # kilobytes on Linux
        stdout=out_path.read_text(errors="replace"),
        stderr=err_path.read_text(errors="replace"),
        timed_out=timed_out.is_set(),
    )


def process_cpu_seconds(pid: int) -> float:
    """utime + stime of a running process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def process_rss_mb(pid: int | str, field: str = "VmRSS") -> float:
    """A process's RSS now, or its peak RSS so far with `field="VmHWM"`."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return 0.0


class RssSampler(threading.Thread):
    """Samples this process's RSS every `interval` seconds (time.perf_counter clock), with the bytes Arrow's memory
    pool has allocated at the same moment, to tell Arrow's share of the RSS from the rest."""

    def __init__(self, interval: float = 0.25) -> None:
        super().__init__(name="bench-rss", daemon=True)
        self.interval = interval
        self.samples: list[tuple[float, float, float]] = []
        """(time, RSS MB, MB allocated by Arrow's pool)"""
        self.peak_rises: list[tuple[float, float]] = []
        """(time, peak RSS MB) whenever the kernel's peak (VmHWM) rose above every sampled RSS: a peak shorter than
        the interval, placed in time."""
        self.stopped = threading.Event()

    def current(self) -> float:
        return process_rss_mb("self")

    def run(self) -> None:
        sampled_peak = 0.0
        while not self.stopped.wait(self.interval):
            now, rss = time.perf_counter(), self.current()
            self.samples.append((now, rss, pa.total_allocated_bytes() / 2**20))
            sampled_peak = max(sampled_peak, rss)
            kernel_peak = process_rss_mb("self", "VmHWM")
            if kernel_peak > sampled_peak + 10 and (not self.peak_rises or kernel_peak > self.peak_rises[-1][1]):
                self.peak_rises.append((now, kernel_peak))

    def peak(self, start: float, end: float) -> float:
        return max((rss for t, rss, _ in self.samples if start <= t <= end), default=self.current())


def self_peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
