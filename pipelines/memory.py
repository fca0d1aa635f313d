"""How the sync process holds on to memory: glibc malloc's settings and handing freed memory back to the system.

The sync's live data is small: at the end of a 10,000-student download (memray), the allocations other than the
imports' were ~20 MB. Most of the rest of its RSS was memory the 16 HTTP and decode threads had freed and glibc
kept, and code pages. These settings keep the RSS closer to what is live: together, the fixed mmap threshold and
the periodic release took a 5,000-student sync's peak after the last request from 361 to 348 MB for 3 s more CPU
(of 140 s). All of them are no-ops where the C library is not glibc.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from functools import cache

import pyarrow as pa

M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8
"""mallopt's parameter numbers (glibc's malloc.h)."""

MALLOC_ARENAS = 2
"""glibc gives each thread that allocates its own heap arena (up to 8 per core) and rarely returns their free
memory; the sync's 16 HTTP threads and dlt's workers held ~70 MB more that way (measured: 365 -> 292 MB peak while
downloading the 1,000-student benchmark district, no change in speed)."""

MMAP_THRESHOLD_BYTES = 128 * 1024
"""Allocations from this size up get their own mapping, unmapped when freed. It is glibc's initial value; fixing it
stops glibc from raising it (up to 32 MB) each time such a block is freed, after which the Arrow buffers of every
page decoded would come from the heap and leave holes there."""

TRIM_EVERY_S = 5.0
"""How often free heap pages are handed back while downloading (`malloc_trim` takes a few milliseconds)."""


def hold_less_memory() -> None:
    """Arrow on the system allocator, and glibc's settings for the threads started from now on."""
    # Arrow's default allocator keeps freed pages: the system one gives them back (measured: 477 -> 409 MB peak
    # syncing 770k attendance rows).
    pa.set_memory_pool(pa.system_memory_pool())
    with suppress(OSError, AttributeError):
        libc = _libc()
        libc.mallopt(M_ARENA_MAX, MALLOC_ARENAS)
        libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)


def release_free_memory() -> None:
    """Hand memory that is free but still held (Arrow's allocator, glibc's heaps) back to the system."""
    pa.default_memory_pool().release_unused()
    with suppress(OSError, AttributeError):
        _libc().malloc_trim(0)


@contextmanager
def releasing_free_memory(every_s: float = TRIM_EVERY_S) -> Iterator[None]:
    """Calls `release_free_memory` every `every_s` seconds in a background thread while the block runs.

    `free` gives back only the top of a heap: pages freed in the middle stay with the process until `malloc_trim`.
    """
    stop = threading.Event()

    def release_until_stopped() -> None:
        while not stop.wait(every_s):
            release_free_memory()

    thread = threading.Thread(target=release_until_stopped, name="release-free-memory", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


@cache
def _libc() -> ctypes.CDLL:
    """The C library, looked up once: `find_library` runs `ldconfig` in a child process, and the background release
    calls this every few seconds."""
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
