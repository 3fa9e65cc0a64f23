"""Is a reader thread waiting for its camera, or for the CPU?

A stall is judged from the time of the last packet a reader recorded. A
reader that Python could not run (the GIL busy, the CPU taken by something
else) records packets late although they arrived: its socket holds them. The
kernel knows the difference: a thread waiting for the camera sleeps in a
network system call (``poll``/``recv``), one waiting for the interpreter in
``futex``, and one decoding is running. ``/proc/self/task/<tid>/syscall``
says which, without any help from the thread itself, so a starved reader is
never mistaken for a silent camera.
"""

from __future__ import annotations

import os

# System calls FFmpeg waits for the network in (poll in 100 ms slices, then recv; connect while opening).
# x86_64: read poll select connect recvfrom recvmsg epoll_wait pselect6 ppoll epoll_pwait recvmmsg;
# aarch64: read ppoll pselect6 connect recvfrom recvmsg epoll_pwait recvmmsg.
_NETWORK_WAITS = {
    "x86_64": {0, 7, 23, 42, 45, 47, 232, 270, 271, 281, 299},
    "aarch64": {63, 73, 72, 203, 207, 212, 22, 243},
}
_WAITS = _NETWORK_WAITS.get(os.uname().machine)


def waiting_for_network(native_id: int | None) -> bool | None:
    """True if the thread sleeps in a network wait, False if it runs or waits for anything else,
    None when this system cannot say (then a stall is judged from packet times alone)."""
    if native_id is None or _WAITS is None:
        return None
    try:
        with open(f"/proc/self/task/{native_id}/syscall", "rb") as f:
            first = f.read(32).split(maxsplit=1)
    except OSError:
        return None
    if not first:
        return None
    if first[0] == b"running":
        return False
    try:
        return int(first[0]) in _WAITS
    except ValueError:
        return None
