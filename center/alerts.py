"""Alerts that do not cry wolf: a condition that lasted too long fires once, and its end is said once.

Conditions, looked at every ``check_every_s`` from what the store holds now:

- ``camera_offline`` / ``camera_degraded``: a camera in that state for longer
  than its limit. A camera whose ward agent is gone is ``unknown``, not
  offline: the ward's one ``agent_gone`` alert stands for all its cameras.
- ``agent_gone``: a ward's agent lost (its last will) or stopped for longer
  than its limit.
- ``camera_uptime_low``: a camera's uptime (availability, as the report
  counts it: unknown time and maintenance left out) over a local day below
  its target (``uptime_below_pct``; off unless set). Each day is judged once,
  ``SETTLE_S`` after it ended (messages replayed late are in by then); the
  alert stays open through more bad days and ends on the first day that meets
  the target. A day nothing was known of the camera judges nothing. Turning a
  camera's target off ends its open uptime alert quietly.

An alert fires once, when its condition has lasted the limit, and is kept
open (in the store: a restart neither repeats nor forgets it) until the state
itself ends; then a recovery notice goes out. A camera nobody can see
(``unknown``) has not recovered, nor has a degraded one gone offline. A camera or ward inside a
maintenance window raises nothing, and an alert already open ends quietly
when it recovers during one. Limits come from ``[alerts]``, overridden per
ward or per camera by ``[[alerts.rules]]`` (the most specific wins, key by
key; 0 turns an alert off).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from center.config import AlertLimits, AlertsConfig
from center.fleet import Fleet
from center.store import AgentRow, AlertRow, MaintenanceRow, Store
from center.timeline import Interval
from center.views import uptime_table

log = logging.getLogger("center.alerts")

Kind = Literal["camera_offline", "camera_degraded", "agent_gone", "camera_uptime_low"]
KINDS: tuple[Kind, ...] = ("camera_offline", "camera_degraded", "agent_gone", "camera_uptime_low")
Key = tuple[str, str, str]  # (kind, ward, camera; "" for a ward's agent)
LIMIT_OF: dict[str, str] = {
    "camera_offline": "offline_after_s",
    "camera_degraded": "degraded_after_s",
    "agent_gone": "agent_gone_after_s",
    "camera_uptime_low": "uptime_below_pct",
}
STATE_OF: dict[str, str] = {"offline": "camera_offline", "degraded": "camera_degraded"}
DAILY = "camera_uptime_low"  # judged once a day; the others while they last
SETTLE_S = 900.0  # a day is judged this long after it ended


@dataclass(frozen=True)
class DayUptime:
    """An uptime alert's detail: the local ``day`` judged, its uptime and the target, in percent."""

    day: str
    percent: float
    target: float

    def code(self) -> str:
        return f"day={self.day},uptime={self.percent:.2f},target={self.target:g}"

    @classmethod
    def parse(cls, detail: str) -> DayUptime | None:
        """The figures back from :meth:`code`, or None for a detail of another kind."""
        parts = dict(part.partition("=")[::2] for part in detail.split(",") if "=" in part)
        try:
            return cls(parts["day"], float(parts["uptime"]), float(parts["target"]))
        except (KeyError, ValueError):
            return None


def detail_fields(alert: AlertRow) -> dict[str, Any]:
    """An alert's detail as the API and the webhook give it: ``detail`` (codes) and ``uptime`` (a day's figure)."""
    day = DayUptime.parse(alert.detail) if alert.kind == DAILY else None
    if day is None:
        return {"detail": [code for code in alert.detail.split(",") if code], "uptime": None}
    return {"detail": [], "uptime": {"day": day.day, "percent": round(day.percent, 2), "target": day.target}}


def last_closed_day(now: float, tz: ZoneInfo) -> tuple[float, float]:
    """The local day [midnight, next midnight) that ended at least ``SETTLE_S`` before ``now``."""
    today = datetime.fromtimestamp(now - SETTLE_S, tz).date()
    yesterday = today - timedelta(days=1)
    return (
        datetime(yesterday.year, yesterday.month, yesterday.day, tzinfo=tz).timestamp(),
        datetime(today.year, today.month, today.day, tzinfo=tz).timestamp(),
    )


@dataclass(frozen=True)
class Condition:
    """Something wrong now: ``since`` when it began; ``detail`` the problems or the agent's reason (codes)."""

    key: Key
    since: float
    detail: str


@dataclass(frozen=True)
class Notice:
    """What to tell: an alert fired, or ended (``resolved`` set on the row)."""

    what: Literal["fired", "resolved"]
    alert: AlertRow
    name: str | None = None  # the camera's name, as operators know it


class Limits:
    """The limit of each kind for each ward and camera, from the defaults and the rules."""

    def __init__(self, config: AlertsConfig) -> None:
        self.config = config
        self.by_ward: dict[str, list[AlertLimits]] = {}
        self.by_camera: dict[tuple[str, str], list[AlertLimits]] = {}
        for rule in config.rules:
            if rule.camera is None:
                self.by_ward.setdefault(rule.ward, []).append(rule)
            else:
                self.by_camera.setdefault((rule.ward, rule.camera), []).append(rule)

    def limit(self, kind: str, ward: str, camera: str = "") -> float:
        """Seconds the condition must last before it is an alert; 0: never."""
        name = LIMIT_OF[kind]
        for rule in (*self.by_camera.get((ward, camera), ()), *self.by_ward.get(ward, ())):
            value = getattr(rule, name)
            if value is not None:
                return float(value)
        value = getattr(self.config, name)
        return 0.0 if value is None else float(value)


def conditions(states: Mapping[tuple[str, str], Interval], agents: Iterable[AgentRow]) -> dict[Key, Condition]:
    """Every condition that holds now, however long it has lasted."""
    out: dict[Key, Condition] = {}
    for (ward, camera), interval in states.items():
        kind = STATE_OF.get(interval.state)
        if kind is not None:
            key = (kind, ward, camera)
            out[key] = Condition(key, interval.start, ",".join(interval.problems))
    for agent in agents:
        if agent.state == "offline":
            key = ("agent_gone", agent.ward, "")
            out[key] = Condition(key, agent.ts, agent.reason)
    return out


def in_maintenance(windows: Iterable[MaintenanceRow], key: Key, now: float) -> bool:
    _kind, ward, camera = key
    return any(w.ward == ward and (w.camera is None or w.camera == camera) and w.start <= now < w.end for w in windows)


def decide(
    holding: Mapping[Key, Condition],
    states: Mapping[tuple[str, str], str],
    open_alerts: Mapping[Key, AlertRow],
    *,
    limits: Limits,
    windows: list[MaintenanceRow],
    now: float,
) -> tuple[list[Condition], list[AlertRow]]:
    """``(conditions to fire, open alerts whose condition ended)``: the rules above, with no side effect."""
    fire = []
    open_alerts = {key: alert for key, alert in open_alerts.items() if alert.kind != DAILY}
    for key, condition in holding.items():
        if key in open_alerts:
            continue
        limit = limits.limit(*key)
        if limit > 0 and now - condition.since >= limit and not in_maintenance(windows, key, now):
            fire.append(condition)
    ended = [alert for key, alert in open_alerts.items() if key not in holding and not still_bad(alert, states)]
    return fire, ended


def still_bad(alert: AlertRow, states: Mapping[tuple[str, str], str]) -> bool:
    """Whether a camera alert whose own state ended has not recovered either: nobody can see the camera
    (unknown: its ward is gone), or it went from degraded to offline."""
    if alert.kind == "agent_gone":
        return False
    state = states.get((alert.ward, alert.camera), "unknown")
    return state == "unknown" or (alert.kind == "camera_degraded" and state == "offline")


class AlertWatch:
    """Looks at the conditions every ``check_every_s``; fires and resolves alerts in the store; hands the notices
    of each look on together."""

    def __init__(
        self,
        config: AlertsConfig,
        store: Store,
        fleet: Fleet,
        deliver: Callable[[list[Notice]], None],
        *,
        clock: Callable[[], float] = time.time,
        tz: ZoneInfo | None = None,
    ) -> None:
        self.config = config
        self.tz = tz if tz is not None else ZoneInfo("UTC")
        self.judged: float | None = None  # the start of the last day judged for uptime
        self.names: dict[tuple[str, str], str] = {}  # cameras' names, as of the last look
        self.store = store
        self.fleet = fleet
        self.deliver = deliver
        self.clock = clock
        self.limits = Limits(config)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.checks = 0

    def check(self) -> list[Notice]:
        """One look: what fired and what ended now (each also stored, and delivered)."""
        now = self.clock()
        cameras = self.fleet.cameras()
        self.names = {(c.ward, c.camera): c.name for c in cameras if c.name}
        states = self.fleet.states(now, cameras)
        holding = conditions(states, self.store.agents().values())
        open_alerts = {alert.key: alert for alert in self.store.open_alerts()}
        windows = self.store.maintenance(now - 1, now + 1)
        now_states = {key: interval.state for key, interval in states.items()}
        fire, ended = decide(holding, now_states, open_alerts, limits=self.limits, windows=windows, now=now)
        notices: list[Notice] = []
        try:  # what was stored is told, even when the store fails half-way through the look
            for condition in fire:
                notices.append(
                    self._notice("fired", self.store.fire_alert(condition.key, condition.since, condition.detail, now))
                )
            for alert in ended:
                self.store.resolve_alert(alert.id, now)
                if not in_maintenance(windows, alert.key, now):
                    notices.append(self._notice("resolved", replace(alert, resolved=now)))
            self.judge_day(now, notices)
        finally:
            self.checks += 1
            for notice in notices:
                log.info("alert %s: %s %s/%s", notice.what, notice.alert.kind, notice.alert.ward, notice.alert.camera)
            if notices:
                self.deliver(notices)
        return notices

    def _notice(self, what: Literal["fired", "resolved"], alert: AlertRow) -> Notice:
        return Notice(what, alert, self.names.get((alert.ward, alert.camera)))

    def judge_day(self, now: float, notices: list[Notice]) -> None:
        """The last closed day's uptime against each camera's target, into ``notices``: once a day (again
        after a restart, which changes nothing: an open alert is not fired twice, an ended one not ended twice)."""
        begin, end = last_closed_day(now, self.tz)
        if self.judged == begin:
            return
        targets = {}
        for cam in self.fleet.cameras():
            target = self.limits.limit(DAILY, cam.ward, cam.camera)
            if target > 0:
                targets[(cam.ward, cam.camera)] = (cam, target)
        open_alerts = {a.key: a for a in self.store.open_alerts() if a.kind == DAILY}
        for stale in open_alerts.values():
            if (stale.ward, stale.camera) not in targets:  # its target was turned off, or the camera is gone
                self.store.resolve_alert(stale.id, now)  # quietly: nothing was fixed
        if not targets:
            self.judged = begin
            return
        windows = self.store.maintenance(begin, max(end, now + 1))
        cameras = [cam for cam, _ in targets.values()]
        per_camera, _, _ = uptime_table(self.fleet, cameras, windows, begin, end, tz=self.tz)
        day = datetime.fromtimestamp(begin, self.tz).date().isoformat()
        for row in per_camera:
            availability = row.uptime.availability
            if availability is None or row.camera is None:
                continue  # nothing was known of it that day
            key: Key = (DAILY, row.ward, row.camera)
            target = targets[(row.ward, row.camera)][1]
            figures = DayUptime(day, round(100 * availability, 2), target)  # judged as told
            alert = open_alerts.get(key)
            quiet = in_maintenance(windows, key, now)
            if figures.percent < target and alert is None and not quiet:
                notices.append(self._notice("fired", self.store.fire_alert(key, begin, figures.code(), now)))
            elif figures.percent >= target and alert is not None:
                self.store.resolve_alert(alert.id, now)
                if not quiet:
                    notices.append(self._notice("resolved", replace(alert, resolved=now, detail=figures.code())))
        self.judged = begin  # only now: a store that failed half-way is asked again at the next look

    def start(self) -> AlertWatch:
        self._thread = threading.Thread(target=self._run, name="alerts", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.config.check_every_s):
            try:
                self.check()
            except Exception:  # a store hiccup must not end the alerts: the next look tries again
                log.exception("alerts: the check failed; trying again in %g s", self.config.check_every_s)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
