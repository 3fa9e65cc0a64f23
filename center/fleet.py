"""The read side of what the wards asserted: each camera's state now and since when, and its timeline.

:class:`Fleet` reads the store (:mod:`center.store.history`) and turns
assertions into intervals (:mod:`center.timeline`); the pages, the API and
the uptime figures (:mod:`center.views`) ask it.
"""

from __future__ import annotations

from center.store import CameraRow, Store
from center.timeline import Interval, intervals

LOOKBACK_S = 400 * 86400  # how far back "since when" may look
MANY_SILENT = 20  # more cameras than this with nothing holding: their last ends in one query


class Fleet:
    """What the center knows of every camera, read from the store."""

    def __init__(self, store: Store, unknown_after_s: float = 90.0) -> None:
        self.store = store
        self.unknown_after_s = unknown_after_s

    def cameras(self) -> list[CameraRow]:
        return self.store.cameras()

    def timeline(self, ward: str, camera: str, begin: float, end: float) -> list[Interval]:
        facts = self.store.assertions(ward, camera, begin, end, self.unknown_after_s)
        return intervals(facts, begin, end, self.unknown_after_s)

    def state_at(self, ward: str, camera: str, when: float) -> Interval:
        """The camera's state at ``when`` and since when it has been in it."""
        return self.timeline(ward, camera, when - LOOKBACK_S, when + 1e-3)[-1]

    def states(self, now: float, cameras: list[CameraRow] | None = None) -> dict[tuple[str, str], Interval]:
        """Every known camera's state now and since when, from what still holds now (cheap: an index range).

        ``since`` is when the holding assertion says the state began (the
        agent's own ``since``); a camera nothing holds for is ``unknown``
        since its last assertion went stale. The camera page's
        :meth:`state_at` looks further back and joins equal neighbours.
        """
        holding = self.store.holding_now(now, self.unknown_after_s)
        cameras = self.store.cameras() if cameras is None else cameras
        silent = sum(1 for row in cameras if (row.ward, row.camera) not in holding)
        ends = self.store.last_ends() if silent > MANY_SILENT else None
        out: dict[tuple[str, str], Interval] = {}
        for row in cameras:
            key = (row.ward, row.camera)
            winner = holding.get(key)
            if winner is not None:
                start, state, problems = winner
                out[key] = Interval(start, now, state, problems)
            else:
                last = ends.get(key) if ends is not None else self.store.last_end(row.ward, row.camera)
                since = last + self.unknown_after_s if last is not None else row.first_seen
                out[key] = Interval(min(since, now), now, "unknown")
        return out
