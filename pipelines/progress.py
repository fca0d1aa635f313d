"""How a run reports its progress: plain lines for logs, a live display on a terminal.

When stderr is not a terminal (cron, an orchestrator, a pipe), a run prints one line per table when its download
is done, exactly as before (`progress_line`). On a terminal, a live table redrawn four times a second (rich, which
dlt already installs) shows per table the request windows done of those planned, rows, requests per second and an
estimate of the time left, and overall the windows done of those planned so far and the requests made. A table's
windows are planned when its download starts (a window's pages are known only from its first page), so the overall
figure grows as tables start; the estimate per table is its elapsed time scaled by the windows left.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TextIO

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from illuminate_sync.sources.illuminate.context import ResourceProgress, RunReport

REFRESHES_PER_SECOND = 4


def progress_line(table: str, progress: ResourceProgress) -> str:
    """The line printed when a table's download is done."""
    line = (
        f"  {table}: {progress.requests_windows:,} windows, {progress.pages:,} pages, {progress.rows:,} rows, "
        f"{progress.elapsed:.1f} s"
    )
    if progress.not_due:
        line += f" (not due: {'; '.join(progress.not_due)})"
    return line


def is_terminal(out: TextIO) -> bool:
    isatty = getattr(out, "isatty", None)
    return bool(isatty and isatty())


def seconds_left(progress: ResourceProgress, now: float) -> float | None:
    """The time a running table still needs at its pace so far; None before its first window is done."""
    if progress.started is None or progress.requests_windows == 0:
        return None
    left = max(progress.windows_planned - progress.requests_windows, 0)
    return (now - progress.started) / progress.requests_windows * left


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes}m{rest:02d}s" if minutes else f"{rest}s"


class LiveView:
    """The live display's content, computed from the run's report at each refresh."""

    def __init__(self, report: RunReport, started: float) -> None:
        self.report = report
        self.started = started
        self.done: set[str] = set()

    def requests(self) -> int:
        client = self.report.client
        return client.stats.requests if client is not None else 0

    def render(self) -> Group:
        now = time.monotonic()
        elapsed = max(now - self.started, 1e-6)
        progress = dict(self.report.progress)
        planned = sum(item.windows_planned for item in progress.values())
        done = sum(item.requests_windows for item in progress.values())
        overall = Text(
            f"{done:,}/{planned:,} windows (planned so far), {self.requests():,} requests,"
            f" {self.requests() / elapsed:.1f} requests/s, {_duration(elapsed)}"
        )
        table = Table(expand=False)
        for column in ("table", "windows", "rows", "requests/s", "left"):
            table.add_column(column, justify="left" if column == "table" else "right")
        for name, item in progress.items():
            if item.started is None:
                continue
            running = name not in self.done
            took = (now - item.started) if running else item.elapsed
            rate = item.pages / took if took > 0 else 0.0
            left = _duration(seconds_left(item, now)) if running else "done"
            table.add_row(
                name, f"{item.requests_windows:,}/{item.windows_planned:,}", f"{item.rows:,}", f"{rate:.1f}", left
            )
        return Group(overall, table)


@contextmanager
def reporting_progress(report: RunReport, out: TextIO) -> Iterator[Callable[[str, ResourceProgress], None]]:
    """While the block runs: the callback a finished table reports to. Plain lines when `out` is not a terminal,
    a live display when it is (the finished tables' lines printed above it, so the scrollback keeps them)."""
    if not is_terminal(out):
        yield lambda table, progress: print(progress_line(table, progress), file=out, flush=True)
        return
    view = LiveView(report, time.monotonic())
    console = Console(file=out, force_terminal=True)
    with Live(console=console, get_renderable=view.render, refresh_per_second=REFRESHES_PER_SECOND) as live:

        def finished(table: str, progress: ResourceProgress) -> None:
            view.done.add(table)
            live.console.print(progress_line(table, progress), highlight=False)

        yield finished
