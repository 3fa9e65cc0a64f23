"""Named periods (today, 24h, 7d, 30d, a calendar month, a custom range) in the center's time zone. Pure."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

PERIODS = ("today", "24h", "7d", "30d")
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


class BadPeriod(ValueError):
    """A period the center does not understand; the message says what it takes."""


def _local_midnight(day: date, tz: ZoneInfo) -> float:
    return datetime(day.year, day.month, day.day, tzinfo=tz).timestamp()


def period_bounds(
    name: str, now: float, tz: ZoneInfo, start: str | None = None, end: str | None = None
) -> tuple[float, float]:
    """[begin, end) in UTC seconds; never reaching past ``now``.

    ``name``: ``today``, ``24h``, ``7d``, ``30d``, ``YYYY-MM`` (a calendar month),
    or ``custom`` with ``start`` and ``end`` as local dates ``YYYY-MM-DD`` (both days included).
    """
    local_now = datetime.fromtimestamp(now, tz)
    if name == "today":
        return _local_midnight(local_now.date(), tz), now
    if name in ("24h", "7d", "30d"):
        seconds = {"24h": 86400, "7d": 7 * 86400, "30d": 30 * 86400}[name]
        return now - seconds, now
    m = _MONTH.match(name)
    if m:
        year, month = int(m.group(1)), int(m.group(2))
        if not 1 <= month <= 12:
            raise BadPeriod(f"period {name!r}: month must be 01-12")
        first = date(year, month, 1)
        nxt = date(year + (month == 12), month % 12 + 1, 1)
        begin = _local_midnight(first, tz)
        if begin >= now:
            raise BadPeriod(f"period {name!r} has not begun yet")
        return begin, min(_local_midnight(nxt, tz), now)
    if name == "custom":
        try:
            d0 = date.fromisoformat(start or "")
            d1 = date.fromisoformat(end or "")
        except ValueError:
            raise BadPeriod("a custom period needs start and end as YYYY-MM-DD") from None
        if d1 < d0:
            raise BadPeriod("a custom period must end on or after its start")
        begin = _local_midnight(d0, tz)
        if begin >= now:
            raise BadPeriod("a custom period must start before now")
        return begin, min(_local_midnight(d1 + timedelta(days=1), tz), now)
    raise BadPeriod(f"unknown period {name!r}: use today, 24h, 7d, 30d, YYYY-MM or custom")


def whole_days(begin: float, end: float, tz: ZoneInfo) -> list[tuple[float, float]]:
    """The local days [midnight, next midnight) lying wholly inside [begin, end), in order."""
    day = datetime.fromtimestamp(begin, tz).date()
    start = _local_midnight(day, tz)
    if start < begin:
        day += timedelta(days=1)
        start = _local_midnight(day, tz)
    out: list[tuple[float, float]] = []
    while True:
        day += timedelta(days=1)
        nxt = _local_midnight(day, tz)
        if nxt > end:
            return out
        out.append((start, nxt))
        start = nxt
