"""Time: a monotonic clock for verdicts, wall-clock RFC 3339 strings for messages."""

from __future__ import annotations

import time
from datetime import UTC, datetime


class Clock:
    """Monotonic time for judging, and the mapping of monotonic instants to wall time."""

    def mono(self) -> float:
        return time.monotonic()

    def wall(self) -> float:
        return time.time()

    def wall_of(self, mono: float) -> float:
        """The wall-clock time of a past monotonic instant."""
        return self.wall() - (self.mono() - mono)


def rfc3339(wall: float) -> str:
    """``2026-11-25T06:27:12.123Z``: UTC with milliseconds."""
    dt = datetime.fromtimestamp(wall, tz=UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"
