"""Memory the sync freed goes back to the system: once before the load, and every few seconds while downloading."""

from __future__ import annotations

import platform
import threading
import time
from pathlib import Path

import pytest

from illuminate_sync.pipelines.memory import release_free_memory, releasing_free_memory

BLOCK_BYTES = 64 * 1024
"""Below glibc's mmap threshold: such blocks come from the heap, where freed ones stay with the process."""
BLOCKS = 3_000


def _rss_mb() -> float:
    line = next(line for line in Path("/proc/self/status").read_text().splitlines() if line.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


def _free_most_of_a_fragmented_heap() -> tuple[float, list[bytearray]]:
    """~190 MB of heap blocks written to, then all freed but every 100th (which keeps the heap from shrinking).

    Returns the RSS while all of them were held, measured before any was freed (a release running in the background
    may come at any moment after), and the kept blocks.
    """
    blocks = [bytearray(b"x" * BLOCK_BYTES) for _ in range(BLOCKS)]
    held = _rss_mb()
    kept = blocks[::100]
    del blocks
    return held, kept


@pytest.fixture(autouse=True)
def glibc_only() -> None:
    if not Path("/proc/self/status").exists():
        pytest.skip("RSS is read from /proc")
    if platform.libc_ver()[0] != "glibc":
        pytest.skip("the release uses glibc's malloc_trim")


def test_releasing_free_memory_hands_freed_heap_pages_back() -> None:
    held, kept = _free_most_of_a_fragmented_heap()
    release_free_memory()
    assert held - _rss_mb() > 100, "the freed blocks between the kept ones should have left the process"
    assert len(kept) == BLOCKS // 100


def test_the_background_release_runs_while_the_block_runs_and_stops_after() -> None:
    with releasing_free_memory(every_s=0.05):
        held, kept = _free_most_of_a_fragmented_heap()
        deadline = time.monotonic() + 5
        while held - _rss_mb() < 100 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert held - _rss_mb() > 100, "no release happened within 5 s"
    assert not [thread for thread in threading.enumerate() if thread.name == "release-free-memory"]
    assert len(kept) == BLOCKS // 100
