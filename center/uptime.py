"""Uptime over a period from a camera's intervals: nothing hidden, unknown never counted as offline.

``availability`` = (online + degraded) / (period - unknown - maintenance)
``healthy``      = online / (period - unknown - maintenance)

with the ``unknown`` and ``maintenance`` shares reported beside them. The
parts of a period always add up to the period. Pure functions.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from center.timeline import Interval

Window = tuple[float, float]  # [start, end) in UTC seconds


@dataclass(frozen=True)
class Uptime:
    period_s: float
    online_s: float = 0.0
    degraded_s: float = 0.0
    offline_s: float = 0.0
    unknown_s: float = 0.0
    maintenance_s: float = 0.0

    @property
    def observed_s(self) -> float:
        """The part of the period the figures are about: known and not in maintenance."""
        return self.online_s + self.degraded_s + self.offline_s

    @property
    def availability(self) -> float | None:
        return (self.online_s + self.degraded_s) / self.observed_s if self.observed_s > 0 else None

    @property
    def healthy(self) -> float | None:
        return self.online_s / self.observed_s if self.observed_s > 0 else None

    @property
    def unknown_share(self) -> float:
        return self.unknown_s / self.period_s if self.period_s > 0 else 0.0

    @property
    def maintenance_share(self) -> float:
        return self.maintenance_s / self.period_s if self.period_s > 0 else 0.0

    def __add__(self, other: Uptime) -> Uptime:
        """Several cameras together (a ward, the city): camera-seconds add up."""
        return Uptime(
            self.period_s + other.period_s,
            self.online_s + other.online_s,
            self.degraded_s + other.degraded_s,
            self.offline_s + other.offline_s,
            self.unknown_s + other.unknown_s,
            self.maintenance_s + other.maintenance_s,
        )


def merge_windows(windows: Iterable[Window]) -> list[Window]:
    out: list[Window] = []
    for lo, hi in sorted(w for w in windows if w[1] > w[0]):
        if out and lo <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out


def _overlap(lo: float, hi: float, windows: Sequence[Window]) -> float:
    return sum(max(0.0, min(hi, b) - max(lo, a)) for a, b in windows)


def uptime(intervals: Iterable[Interval], begin: float, end: float, maintenance: Iterable[Window] = ()) -> Uptime:
    """Seconds per state of [begin, end); maintenance windows are taken out of every state.

    Time no interval covers is ``unknown`` (nothing was heard about it); time
    covered twice counts once.
    """
    windows = merge_windows((max(a, begin), min(b, end)) for a, b in maintenance)
    spent = {"online": 0.0, "degraded": 0.0, "offline": 0.0, "unknown": 0.0}
    cursor = begin
    for iv in sorted(intervals, key=lambda i: i.start):
        lo, hi = max(iv.start, cursor), min(iv.end, end)
        if iv.start > cursor:
            gap_end = min(iv.start, end)
            spent["unknown"] += (gap_end - cursor) - _overlap(cursor, gap_end, windows)
        if hi > lo:
            spent[iv.state] += (hi - lo) - _overlap(lo, hi, windows)
        cursor = max(cursor, min(iv.end, end))
        if cursor >= end:
            break
    if end > cursor:
        spent["unknown"] += (end - cursor) - _overlap(cursor, end, windows)
    period = max(0.0, end - begin)
    maintenance_s = sum(b - a for a, b in windows)
    return Uptime(period, spent["online"], spent["degraded"], spent["offline"], spent["unknown"], maintenance_s)


@dataclass(frozen=True)
class Outage:
    start: float
    end: float | None  # None: ongoing
    reasons: tuple[str, ...]

    def duration_s(self, now: float) -> float:
        return (self.end if self.end is not None else now) - self.start


def outages(intervals: Sequence[Interval], now: float) -> list[Outage]:
    """Each stretch of ``offline`` (its problems may change) as one outage; ongoing if it reaches ``now``."""
    out: list[Outage] = []
    for iv in intervals:
        if iv.state != "offline":
            continue
        if out and out[-1].end == iv.start:
            last = out[-1]
            out[-1] = Outage(last.start, iv.end, tuple(dict.fromkeys((*last.reasons, *iv.problems))))
        else:
            out.append(Outage(iv.start, iv.end, tuple(iv.problems)))
    if out and out[-1].end is not None and out[-1].end >= now:
        out[-1] = Outage(out[-1].start, None, out[-1].reasons)
    return out
