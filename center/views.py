"""What the pages and the API show, computed from the store: shared by both, so they never disagree."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from center.ingest import Fleet
from center.store import CameraRow, MaintenanceRow
from center.timeline import Assertion, Interval, intervals
from center.uptime import Outage, Uptime, outages, uptime

SEVERITY_ORDER = {"offline": 0, "unknown": 1, "degraded": 2, "online": 3}


@dataclass(frozen=True)
class CameraNow:
    ward: str
    camera: str
    name: str | None
    state: str
    since: float
    problems: tuple[str, ...]


def fleet_now(fleet: Fleet, now: float) -> list[CameraNow]:
    """Every camera's state now and since when, worst first (then longest in it)."""
    names = {(c.ward, c.camera): c.name for c in fleet.cameras()}
    states = fleet.states(now)
    rows = [CameraNow(w, c, names.get((w, c)), iv.state, iv.start, iv.problems) for (w, c), iv in states.items()]
    rows.sort(key=lambda r: (SEVERITY_ORDER[r.state], r.since, r.ward, r.camera))
    return rows


def ward_counts(rows: list[CameraNow]) -> dict[str, dict[str, int]]:
    """Per ward: cameras per state; wards ordered worst first."""
    counts: dict[str, dict[str, int]] = {}
    for r in rows:
        c = counts.setdefault(r.ward, {"online": 0, "degraded": 0, "offline": 0, "unknown": 0})
        c[r.state] += 1
    return dict(
        sorted(counts.items(), key=lambda kv: (-kv[1]["offline"], -kv[1]["unknown"], -kv[1]["degraded"], kv[0]))
    )


def windows_for(ward: str, camera: str, maintenance: list[MaintenanceRow]) -> list[tuple[float, float]]:
    return [(m.start, m.end) for m in maintenance if m.ward == ward and m.camera in (None, camera)]


def _facts(fleet: Fleet, cameras: list[CameraRow], begin: float, end: float) -> dict[tuple[str, str], list[Assertion]]:
    """The assertions bearing on [begin, end) of these cameras: one query for many, one each for a few."""
    if len(cameras) > 20:
        return fleet.store.all_assertions(begin, end, fleet.unknown_after_s)
    return {
        (c.ward, c.camera): fleet.store.assertions(c.ward, c.camera, begin, end, fleet.unknown_after_s) for c in cameras
    }


@dataclass(frozen=True)
class UptimeRow:
    ward: str
    camera: str | None  # None: the ward's total
    name: str | None
    uptime: Uptime


def uptime_table(
    fleet: Fleet, cameras: list[CameraRow], maintenance: list[MaintenanceRow], begin: float, end: float
) -> tuple[list[UptimeRow], list[UptimeRow], Uptime]:
    """Per camera, per ward (camera-seconds added) and the city, for [begin, end)."""
    facts = _facts(fleet, cameras, begin, end)
    per_camera: list[UptimeRow] = []
    per_ward: dict[str, Uptime] = {}
    city = Uptime(0.0)
    for cam in cameras:
        ivs = intervals(facts.get((cam.ward, cam.camera), []), begin, end, fleet.unknown_after_s)
        up = uptime(ivs, begin, end, windows_for(cam.ward, cam.camera, maintenance))
        per_camera.append(UptimeRow(cam.ward, cam.camera, cam.name, up))
        per_ward[cam.ward] = per_ward.get(cam.ward, Uptime(0.0)) + up
        city = city + up
    wards = [UptimeRow(w, None, None, u) for w, u in sorted(per_ward.items())]
    return per_camera, wards, city


@dataclass(frozen=True)
class OutageRow:
    ward: str
    camera: str
    name: str | None
    outage: Outage


def outage_list(fleet: Fleet, cameras: list[CameraRow], begin: float, now: float) -> list[OutageRow]:
    """Every outage overlapping [begin, now): ongoing first (longest first), then the most recent."""
    offline = fleet.store.cameras_in_state("offline", begin, now, fleet.unknown_after_s)
    cameras = [c for c in cameras if (c.ward, c.camera) in offline]  # only these can have an outage
    facts = _facts(fleet, cameras, begin, now)
    rows: list[OutageRow] = []
    for cam in cameras:
        ivs = intervals(facts.get((cam.ward, cam.camera), []), begin, now, fleet.unknown_after_s)
        rows += [OutageRow(cam.ward, cam.camera, cam.name, o) for o in outages(ivs, now)]
    rows.sort(key=lambda r: (r.outage.end is not None, r.outage.start if r.outage.end is None else -r.outage.start))
    return rows


def timeline(fleet: Fleet, ward: str, camera: str, begin: float, end: float) -> list[Interval]:
    return fleet.timeline(ward, camera, begin, end)


class Recent:
    """Answers reused for a short while: a figure over a long period barely moves in a few seconds.

    Keyed by what was asked; each answer carries the exact period it covers,
    so reuse changes how fresh it is, never what it says about that period.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic, size: int = 256) -> None:
        self.clock = clock
        self.size = size
        self._items: dict[Any, tuple[float, Any]] = {}
        self._lock = threading.Lock()

    def get(self, key: Any, ttl: float, compute: Callable[[], Any]) -> Any:
        now = self.clock()
        with self._lock:
            hit = self._items.get(key)
        if hit is not None and now - hit[0] < ttl:
            return hit[1]
        value = compute()
        with self._lock:
            if len(self._items) >= self.size:
                self._items.clear()
            self._items[key] = (now, value)
        return value

    def age(self, key: Any) -> float | None:
        """Seconds since the answer for ``key`` was computed, or None."""
        with self._lock:
            hit = self._items.get(key)
        return None if hit is None else self.clock() - hit[0]

    def put(self, key: Any, value: Any) -> None:
        with self._lock:
            self._items[key] = (self.clock(), value)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


def reuse_for(period_s: float) -> float:
    """How long an uptime answer over ``period_s`` is reused: 1/3000 of it, 5 s to 5 min (24 h: 29 s)."""
    return min(300.0, max(5.0, period_s / 3000))
