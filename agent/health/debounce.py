"""A debounced boolean: a condition must hold for a while to be reported, and be gone a while to clear."""

from __future__ import annotations


class Debounce:
    """Reports ``active`` only after it held for ``on_after_s``; clears after ``off_after_s`` without it."""

    __slots__ = ("_off_since", "_on_since", "off_after_s", "on_after_s", "reported")

    def __init__(self, on_after_s: float, off_after_s: float) -> None:
        self.on_after_s = on_after_s
        self.off_after_s = off_after_s
        self.reported = False
        self._on_since: float | None = None
        self._off_since: float | None = None

    def update(self, active: bool, now: float, since: float | None = None) -> bool:
        """``since``: when the condition really began, if it is only recognised now (default: ``now``)."""
        if active:
            self._off_since = None
            if self._on_since is None:
                self._on_since = now if since is None else min(since, now)
            if not self.reported and now - self._on_since >= self.on_after_s:
                self.reported = True
        else:
            self._on_since = None
            if self.reported:
                if self._off_since is None:
                    self._off_since = now
                if now - self._off_since >= self.off_after_s:
                    self.reported = False
                    self._off_since = None
        return self.reported

    def reset(self) -> None:
        self.reported = False
        self._on_since = None
        self._off_since = None
