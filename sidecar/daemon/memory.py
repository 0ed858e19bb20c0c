"""The garbage collector, once the daemon has started.

Everything built at start-up (modules, templates, settings, the app and its
resources: some 50,000 objects that live as long as the process) would be
walked again by every full collection, whose pause every request waiting at
that moment shares. Collected once and frozen before the first request,
they are left out of every later collection: a full collection walks only
what requests made since, and the per-key tables of the daemon hold nothing
it tracks (see :mod:`sidecar.sliding_counter`).
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import gc
from collections.abc import Callable


def settle_after_start() -> None:
    """Collect what start-up left behind, then leave the rest out of every later collection."""
    gc.collect()
    gc.freeze()


# How often memory that the allocator holds free is given back to the system.
RETURN_FREE_MEMORY_SECONDS = 30.0


def _malloc_trim() -> Callable[[], int] | None:
    """glibc's ``malloc_trim(0)``; None where the C library has none."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return lambda: int(trim(0))


async def return_free_memory(seconds: float = RETURN_FREE_MEMORY_SECONDS) -> None:
    """Until cancelled: every ``seconds``, hand back to the system the pages glibc
    keeps free inside its heap.

    A burst (requests piling up behind a pause) takes buffers that are freed
    afterwards, but glibc gives back only the free memory at the top of its
    heap: without this, resident memory stays at the highest burst so far.
    """
    trim = _malloc_trim()
    if trim is None:
        return
    while True:
        await asyncio.sleep(seconds)
        trim()
