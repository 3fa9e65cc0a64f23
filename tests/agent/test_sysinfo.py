"""The agent's own resource figures, and giving freed memory back."""

from __future__ import annotations

from agent.sysinfo import open_fds, release_free_memory, rss_bytes


def test_freed_heap_memory_goes_back_to_the_system() -> None:
    before = rss_bytes()
    assert before is not None and open_fds() is not None
    keep = [bytes(2000) for _ in range(50_000)]  # ~100 MB in malloc'd blocks
    keep = keep[::1000]  # free almost all, leaving a few blocks scattered over the heap
    grown = rss_bytes()
    assert grown is not None
    assert release_free_memory() is True  # glibc, as on the ward PCs
    trimmed = rss_bytes()
    assert trimmed is not None and trimmed < grown - 50 * 2**20, (before, grown, trimmed)
    assert keep


def test_malloc_arenas_are_capped_unless_the_operator_chose() -> None:
    import os
    import subprocess
    import sys

    code = "from agent.sysinfo import limit_malloc_arenas; print(limit_malloc_arenas())"
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60, check=True)
    assert run.stdout.strip() == "True"
    env["MALLOC_ARENA_MAX"] = "4"
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60, check=True)
    assert run.stdout.strip() == "False"


def test_the_process_settings_are_set_by_whoever_runs_the_agent_not_by_building_one() -> None:
    import subprocess
    import sys

    code = (
        "import cv2; n = cv2.getNumThreads(); "
        "from agent.sysinfo import settle_process; settle_process(); print(n, cv2.getNumThreads())"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    before, after = map(int, run.stdout.split())
    assert after == 1 and before >= 1  # OpenCV on one thread once the agent's process is settled
