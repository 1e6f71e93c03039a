"""Giving the C allocator's free memory back to the system between a cycle's jobs.

A job at 50,000 accounts allocates and frees hundreds of megabytes (a write-back plan,
the alerts of a first cycle). Python returns its own arenas once they are empty, but
the C allocator keeps the pages of freed blocks in the middle of its heap mapped: the
process's resident memory stays at its high-water mark, and the next job's allocations
are counted on top of it where they land elsewhere. ``malloc_trim`` (glibc) gives
every whole free page back. Elsewhere (musl, macOS) nothing is done.
"""

from __future__ import annotations

import ctypes
import sys
from collections.abc import Callable

__all__ = ["release_free_memory", "resident_mb"]


def _malloc_trim() -> Callable[[int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        trim = ctypes.CDLL(None).malloc_trim  # the C library this process runs on
    except (OSError, AttributeError):  # not glibc
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


_TRIM = _malloc_trim()


def release_free_memory() -> bool:
    """Give the C allocator's whole free pages back to the system; False where the C
    library cannot (then nothing was done)."""
    if _TRIM is None:
        return False
    _TRIM(0)
    return True


def resident_mb() -> int | None:
    """The process's resident memory now, in MiB (None where ``/proc`` does not tell)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as statm:
            pages = int(statm.read().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return pages * _PAGE // (1024 * 1024)


_PAGE = 4096
