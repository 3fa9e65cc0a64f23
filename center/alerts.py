"""Alerts that do not cry wolf: a condition that lasted too long fires once, and its end is said once.

Conditions, looked at every ``check_every_s`` from what the store holds now:

- ``camera_offline`` / ``camera_degraded``: a camera in that state for longer
  than its limit. A camera whose ward agent is gone is ``unknown``, not
  offline: the ward's one ``agent_gone`` alert stands for all its cameras.
- ``agent_gone``: a ward's agent lost (its last will) or stopped for longer
  than its limit.

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
from typing import Literal

from center.config import AlertLimits, AlertsConfig
from center.fleet import Fleet
from center.store import AgentRow, AlertRow, MaintenanceRow, Store
from center.timeline import Interval

log = logging.getLogger("center.alerts")

Kind = Literal["camera_offline", "camera_degraded", "agent_gone"]
Key = tuple[str, str, str]  # (kind, ward, camera; "" for a ward's agent)
LIMIT_OF: dict[str, str] = {
    "camera_offline": "offline_after_s",
    "camera_degraded": "degraded_after_s",
    "agent_gone": "agent_gone_after_s",
}
STATE_OF: dict[str, str] = {"offline": "camera_offline", "degraded": "camera_degraded"}


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
    """Looks at the conditions every ``check_every_s``; fires and resolves alerts in the store; hands notices on."""

    def __init__(
        self,
        config: AlertsConfig,
        store: Store,
        fleet: Fleet,
        deliver: Callable[[Notice], None],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
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
        states = self.fleet.states(now)
        holding = conditions(states, self.store.agents().values())
        open_alerts = {alert.key: alert for alert in self.store.open_alerts()}
        windows = self.store.maintenance(now - 1, now + 1)
        now_states = {key: interval.state for key, interval in states.items()}
        fire, ended = decide(holding, now_states, open_alerts, limits=self.limits, windows=windows, now=now)
        notices = []
        for condition in fire:
            notices.append(
                Notice("fired", self.store.fire_alert(condition.key, condition.since, condition.detail, now))
            )
        for alert in ended:
            self.store.resolve_alert(alert.id, now)
            if not in_maintenance(windows, alert.key, now):
                notices.append(Notice("resolved", replace(alert, resolved=now)))
        self.checks += 1
        for notice in notices:
            log.info("alert %s: %s %s/%s", notice.what, notice.alert.kind, notice.alert.ward, notice.alert.camera)
            self.deliver(notice)
        return notices

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
