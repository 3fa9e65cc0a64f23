"""What the pages and the API show, computed from the store: shared by both, so they never disagree."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from center.background import give_way
from center.fleet import Fleet
from center.periods import whole_days
from center.store import AgentRow, CameraRow, MaintenanceRow, RollupRow
from center.timeline import Assertion, Interval, intervals
from center.uptime import Outage, Uptime, outages, uptime
from contract.vocab import SEVERITY


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
    cameras = fleet.cameras()
    names = {(c.ward, c.camera): c.name for c in cameras}
    states = fleet.states(now, cameras)
    rows = [CameraNow(w, c, names.get((w, c)), iv.state, iv.start, iv.problems) for (w, c), iv in states.items()]
    rows.sort(key=lambda r: (SEVERITY[r.state], r.since, r.ward, r.camera))
    return rows


@dataclass(frozen=True)
class WardNow:
    """Where a failure is: a ward whose agent is gone is one ward problem, not N camera problems.

    ``state``: ``up`` (its agent runs), ``unreachable`` (its last will came: the
    ward PC died or its uplink is down; nobody sees its cameras), ``stopped``
    (its agent stopped cleanly), ``unreported`` (no agent status yet).
    """

    ward: str
    state: str
    since: float | None  # unreachable / stopped: since when (when the ward was last heard from)
    hostname: str = ""
    problems: tuple[str, ...] = ()  # the agent's own (outbox_overflow...)


def wards_now(agents: dict[str, AgentRow], wards: list[str]) -> dict[str, WardNow]:
    out: dict[str, WardNow] = {}
    for ward in sorted({*wards, *agents}):
        a = agents.get(ward)
        if a is None:
            out[ward] = WardNow(ward, "unreported", None)
        elif a.state == "online":
            out[ward] = WardNow(ward, "up", None, a.hostname, a.problems)
        else:
            out[ward] = WardNow(ward, "stopped" if a.reason == "shutdown" else "unreachable", a.ts, a.hostname)
    return out


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


ROLLUP_FROM_CAMERAS = 20  # for fewer cameras replaying their assertions is as quick as reading rollups

CameraKey = tuple[str, str]


def uptime_table(
    fleet: Fleet,
    cameras: list[CameraRow],
    maintenance: list[MaintenanceRow],
    begin: float,
    end: float,
    *,
    tz: ZoneInfo | None = None,
) -> tuple[list[UptimeRow], list[UptimeRow], Uptime]:
    """Per camera, per ward (camera-seconds added) and the city, for [begin, end).

    With ``tz`` and many cameras, the whole local days inside the period are
    added up from daily rollups (computed and kept on first use); the partial
    days at its ends, and cameras with a maintenance window in it, are worked
    out from the assertions. Both ways give the same seconds.
    """
    days = whole_days(begin, end, tz) if tz is not None and len(cameras) > ROLLUP_FROM_CAMERAS else []
    if days:
        d0, d1 = days[0][0], days[-1][1]
        maintained = {
            (c.ward, c.camera)
            for c in cameras
            if any(a < d1 and b > d0 for a, b in windows_for(c.ward, c.camera, maintenance))
        }
        plain = [c for c in cameras if (c.ward, c.camera) not in maintained]
        figures = _replayed(fleet, [c for c in cameras if (c.ward, c.camera) in maintained], maintenance, begin, end)
        head = _replayed(fleet, plain, maintenance, begin, d0)
        tail = _replayed(fleet, plain, maintenance, d1, end)
        for key, seconds in _rolled_up(fleet, plain, days).items():
            up = Uptime(d1 - d0, *seconds)
            figures[key] = head.get(key, Uptime(0.0)) + up + tail.get(key, Uptime(0.0))
    else:
        figures = _replayed(fleet, cameras, maintenance, begin, end)
    per_camera: list[UptimeRow] = []
    per_ward: dict[str, Uptime] = {}
    city = Uptime(0.0)
    for cam in cameras:
        up = figures[(cam.ward, cam.camera)]
        per_camera.append(UptimeRow(cam.ward, cam.camera, cam.name, up))
        per_ward[cam.ward] = per_ward.get(cam.ward, Uptime(0.0)) + up
        city = city + up
    wards = [UptimeRow(w, None, None, u) for w, u in sorted(per_ward.items())]
    return per_camera, wards, city


def _replayed(
    fleet: Fleet, cameras: list[CameraRow], maintenance: list[MaintenanceRow], begin: float, end: float
) -> dict[CameraKey, Uptime]:
    """Each camera's uptime over [begin, end) worked out from its assertions."""
    if end <= begin or not cameras:
        return {}
    facts = _facts(fleet, cameras, begin, end)
    out = {}
    for i, cam in enumerate(cameras):
        give_way(i)
        ivs = intervals(facts.get((cam.ward, cam.camera), []), begin, end, fleet.unknown_after_s)
        out[(cam.ward, cam.camera)] = uptime(ivs, begin, end, windows_for(cam.ward, cam.camera, maintenance))
    return out


def _rolled_up(
    fleet: Fleet, cameras: list[CameraRow], days: list[tuple[float, float]]
) -> dict[CameraKey, tuple[float, float, float, float]]:
    """Each camera's seconds (online, degraded, offline, unknown) over whole days, from rollups.

    Days not rolled up yet (or made stale by a late message) are worked out in
    runs of consecutive days and kept for the next time.
    """
    store, u = fleet.store, fleet.unknown_after_s
    sums = store.rollup_sums(days[0][0], days[-1][1], u)
    done = {key: seconds for key, (n, seconds) in sums.items() if n == len(days)}
    if all((c.ward, c.camera) in done for c in cameras):
        return done  # the usual case: every day already rolled up, added up by the database
    have = store.rollups(days[0][0], days[-1][1], u)
    missing = {c: [d for d in days if d[0] not in have.get((c.ward, c.camera), {})] for c in cameras}
    wanted = {d for ds in missing.values() for d in ds}
    run: list[tuple[float, float]] = []
    for day in [*days, None]:
        if day is not None and day in wanted:
            run.append(day)
            continue
        if run:
            who = [c for c in cameras if any(d in run for d in missing[c])]
            for row in _roll_up(fleet, who, run):
                have.setdefault((row.ward, row.camera), {})[row.day_start] = row
            run = []
    out = {}
    for c in cameras:
        mine = have.get((c.ward, c.camera), {})
        total = [0.0, 0.0, 0.0, 0.0]
        for d0, _ in days:
            for i, s in enumerate(mine[d0].seconds):
                total[i] += s
        out[(c.ward, c.camera)] = (total[0], total[1], total[2], total[3])
    return out


def _roll_up(fleet: Fleet, cameras: list[CameraRow], run: list[tuple[float, float]]) -> list[RollupRow]:
    """Rollups of consecutive whole days for these cameras, kept in the store unless a write made them stale."""
    store, u = fleet.store, fleet.unknown_after_s
    begin, end = run[0][0], run[-1][1]
    token = store.claim_rollups(end)  # before reading: a write from now on is seen, or voids the token
    facts = _facts(fleet, cameras, begin, end)
    index = {"online": 0, "degraded": 1, "offline": 2, "unknown": 3}
    rows: list[RollupRow] = []
    for n, cam in enumerate(cameras):
        give_way(n)
        per_day = [[0.0, 0.0, 0.0, 0.0] for _ in run]
        i = 0
        for iv in intervals(facts.get((cam.ward, cam.camera), []), begin, end, u):
            lo = iv.start
            while lo < iv.end:  # spread the interval over the days it covers
                while run[i][1] <= lo:
                    i += 1
                hi = min(iv.end, run[i][1])
                per_day[i][index[iv.state]] += hi - lo
                lo = hi
        for (d0, d1), s in zip(run, per_day, strict=True):
            rows.append(RollupRow(cam.ward, cam.camera, d0, d1, (s[0], s[1], s[2], s[3])))
    store.put_rollups(token, u, rows)
    return rows


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
    """How long an uptime answer over ``period_s`` is reused: 1/1440 of it, 5 s to 5 min (24 h: 1 min).

    A minute moves a day's figure by at most 0.07 %; every answer states the
    exact period it covers.
    """
    return min(300.0, max(5.0, period_s / 1440))
