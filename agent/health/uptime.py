"""Share of time a camera was up over a sliding window, from its state history."""

from __future__ import annotations

from collections import deque

_MAX_SEGMENTS = 10_000  # bounds memory for a camera that flaps all day


class UptimeTracker:
    """Records state changes; ``online_ratio`` = (online + degraded) / known time in the window.

    Time in ``unknown`` (before the first verdict) is not counted either way.
    """

    def __init__(self, window_s: float, started: float) -> None:
        self.window_s = window_s
        self._segments: deque[tuple[float, bool | None]] = deque(maxlen=_MAX_SEGMENTS)
        self._segments.append((started, None))

    def record(self, state: str, at: float) -> None:
        up = None if state == "unknown" else state in ("online", "degraded")
        if self._segments and self._segments[-1][1] == up:
            return
        if self._segments:
            at = max(at, self._segments[-1][0])  # keep the history in time order
        self._segments.append((at, up))

    def ratio(self, now: float) -> tuple[float, float | None]:
        """Return (window covered in seconds, online ratio or None when nothing is known yet)."""
        horizon = now - self.window_s
        while len(self._segments) > 1 and self._segments[1][0] <= horizon:
            self._segments.popleft()
        up_s = known_s = 0.0
        segs = list(self._segments)
        for i, (start, up) in enumerate(segs):
            end = segs[i + 1][0] if i + 1 < len(segs) else now
            begin = max(start, horizon)
            if end <= begin or up is None:
                continue
            known_s += end - begin
            if up:
                up_s += end - begin
        covered = now - max(horizon, segs[0][0]) if segs else 0.0
        return covered, (up_s / known_s if known_s > 0 else None)
