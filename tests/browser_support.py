"""Headless Chromium for the dashboard tests, driven through Playwright's Python client.

The browser is Debian's `chromium` (`/usr/bin/chromium`; `.ci/run` installs it): Playwright starts it as
`executable_path` and downloads no browser of its own. Each test session starts one browser with a fresh profile
directory and the flags of a machine without network; every page it opens reports its console messages, uncaught
errors and the requests it made.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = [
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts" / "dashboard"
"""Screenshots of the pages the tests opened (git-ignored), one folder per dashboard built."""

CHART_MARKS = """
() => Array.from(document.querySelectorAll('div.chart')).map((div) => ({
    id: div.id,
    visible: div.offsetParent !== null,
    drawn: div.getAttribute('data-drawn') === '1',
    svg: div.querySelectorAll('.main-svg').length,
    marks: div.querySelectorAll('.trace.bars .point path, .scatterlayer .trace .points path').length,
}))
"""
"""Per chart: whether plotly drew it and how many marks (bars, points) it has."""


def chromium_path() -> Path:
    """The browser, or a skip (a failure on CI, which installs it) where the machine lacks it."""
    pytest.importorskip("playwright.sync_api", reason="pip install playwright (the dev extra)")
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} is missing: apt-get install chromium (.ci/run does)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return CHROMIUM


@contextmanager
def browser(profile: Path) -> Iterator[Any]:
    """A Chromium context with a fresh profile in `profile`, closed afterwards."""
    from playwright.sync_api import sync_playwright

    executable = chromium_path()
    flags = [*FLAGS, *(["--no-sandbox"] if os.geteuid() == 0 else [])]
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile),
            executable_path=str(executable),
            headless=True,
            args=flags,
            viewport={"width": 1280, "height": 900},
        )
        try:
            yield context
        finally:
            context.close()


@dataclass
class OpenedPage:
    """A page as the browser showed it, and what it complained about."""

    page: Any
    console_errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    def charts(self) -> list[dict[str, Any]]:
        return self.page.evaluate(CHART_MARKS)

    def wait_for_charts(self) -> None:
        self.page.wait_for_selector("body[data-charts-drawn]", state="attached", timeout=30_000)

    def screenshot(self, folder: str, name: str) -> Path:
        path = ARTIFACTS / folder / f"{name}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(path), full_page=True)
        print(f"screenshot: {path}")
        return path


def open_page(context: Any, path: Path) -> OpenedPage:
    """`path` opened from file://, its charts drawn."""
    page = context.new_page()
    opened = OpenedPage(page)
    page.on("console", lambda message: opened.console_errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: opened.console_errors.append(f"uncaught: {error}"))
    page.on("request", lambda request: opened.requests.append(request.url))
    page.goto(path.resolve().as_uri())
    opened.wait_for_charts()
    return opened


def clear_artifacts(folder: str) -> None:
    shutil.rmtree(ARTIFACTS / folder, ignore_errors=True)
