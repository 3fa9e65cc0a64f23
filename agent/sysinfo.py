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


M_ARENA_MAX = -8  # glibc mallopt parameter


def limit_malloc_arenas(arenas: int = 2) -> bool:
    """Cap glibc's malloc arenas (default 8 per core) before threads start; True if set here.

    Every thread that allocates may get an arena of its own, and each keeps its
    own free lists: with a reader thread per camera, and cameras reconnecting
    all day, freed memory is scattered over many arenas and RSS creeps up until
    each arena reaches its high-water mark. Two arenas hold the agent's
    allocations in fewer places (its threads mostly wait on the network or the
    GIL, so they rarely contend for them). ``MALLOC_ARENA_MAX`` in the
    environment is the operator's choice and is left alone.
    """
    if "MALLOC_ARENA_MAX" in os.environ:
        return False
    libc = _libc()
    if libc is None or not hasattr(libc, "mallopt"):
        return False
    return bool(libc.mallopt(M_ARENA_MAX, arenas))


def settle_process() -> None:
    """Process-wide settings of an agent process, set once by whoever runs it (``camwatch run``, the demo),
    before any thread starts: glibc's malloc arenas bounded (see :func:`limit_malloc_arenas`), and OpenCV
    on one thread (image checks and the motion gate work on ~320 px pictures: its thread pool costs more than
    it saves there, and the ward PC's few cores are shared by every camera)."""
    import cv2

    limit_malloc_arenas()
    cv2.setNumThreads(1)
