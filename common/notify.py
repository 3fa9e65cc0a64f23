"""systemd's service notifications (the sd_notify protocol): ready, watchdog, stopping, status.

Under a unit with ``Type=notify`` and ``WatchdogSec=``, systemd passes
``$NOTIFY_SOCKET`` and ``$WATCHDOG_USEC``. The agent and the center say
``READY=1`` once they run, and ``WATCHDOG=1`` from their main loops only: a
process whose loop hangs stops saying it, and systemd restarts it. Outside
systemd every call does nothing. The protocol is one datagram per message on
a Unix socket; no library is needed.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Mapping
from types import FrameType

log = logging.getLogger(__name__)


class Notifier:
    def __init__(self, env: Mapping[str, str] | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        env = os.environ if env is None else env
        self.address = env.get("NOTIFY_SOCKET") or None
        usec, pid = env.get("WATCHDOG_USEC"), env.get("WATCHDOG_PID")
        ours = not pid or pid == str(os.getpid())
        self.watchdog_s = int(usec) / 1e6 if usec and usec.isdigit() and ours else None
        self._clock = clock
        self._last_ping = float("-inf")
        self._failed = False

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def send(self, message: str) -> None:
        if self.address is None:
            return
        target = "\0" + self.address[1:] if self.address.startswith("@") else self.address
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as s:
                s.sendto(message.encode(), target)
        except OSError as exc:
            if not self._failed:  # said once: systemd would restart us for a silent watchdog anyway
                log.warning("cannot notify systemd at %s: %s", self.address, exc.strerror or exc)
                self._failed = True

    def ready(self, status: str = "") -> None:
        self.send("READY=1" + (f"\nSTATUS={status}" if status else ""))

    def status(self, status: str) -> None:
        self.send(f"STATUS={status}")

    def alive(self) -> None:
        """Call from the main loop: a watchdog ping, at most every third of systemd's watchdog interval."""
        if self.watchdog_s is None:
            return
        now = self._clock()
        if now - self._last_ping >= self.watchdog_s / 3:
            self._last_ping = now
            self.send("WATCHDOG=1")

    def stopping(self) -> None:
        self.send("STOPPING=1")


def stop_on_signals(stop: Callable[[], None]) -> None:
    """Call ``stop`` on SIGTERM (systemd) or SIGINT (Ctrl-C), from a thread of its own.

    A handler runs on the main thread between two bytecodes, possibly while that thread holds the lock
    of the very Event it would set (inside ``Event.wait``): setting it there can deadlock. A new thread
    waits for the lock instead.
    """

    def on_signal(signum: int, frame: FrameType | None) -> None:
        threading.Thread(target=stop, name="stop-on-signal", daemon=True).start()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
