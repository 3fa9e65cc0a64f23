"""This process's resource figures (Linux /proc; None where unavailable)."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import resource
import threading
from functools import cache


def rss_bytes() -> int | None:
    try:
        with open("/proc/self/statm", encoding="ascii") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def open_fds() -> int | None:
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return None


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def thread_count() -> int:
    return threading.active_count()


@cache
def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    return libc if libc is not None and hasattr(libc, "malloc_trim") else None


def release_free_memory() -> bool:
    """Give freed heap pages back to the system (glibc ``malloc_trim``); False where there is no such call.

    A long-running process that opens and closes streams leaves freed memory
    in glibc's per-thread arenas; it is reused, but counts in RSS until trimmed.
    """
    libc = _libc()
    if libc is None:
        return False
    libc.malloc_trim(0)
    return True
