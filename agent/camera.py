"""One camera's turn in the health loop: what was seen → its verdict → the events and health to publish.

:func:`step` is the whole decision for one camera at one tick, and does no
I/O: given the camera's :class:`CameraState` and what its reader and image
checks report (:class:`Seen`), it advances the state and returns what is to
be said (:class:`Said`). It reads no clock (instants come in: monotonic
``now``, ``wall_of`` to turn one into wall-clock time, ``now_wall``) and
publishes nothing; :mod:`agent.runtime` sends what it returns.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from agent.health import HealthMachine, UptimeTracker
from agent.health.state import Change
from agent.publish.payloads import event_payload, health_payload
from agent.stream.stats import StreamSnapshot


@dataclass
class CameraState:
    """What the health loop keeps of one camera from one tick to the next."""

    id: str
    name: str
    machine: HealthMachine
    uptime: UptimeTracker
    last_health_at: float | None = None  # monotonic: when its health was last published
    accepted_views: int = 0  # times a moved view became the reference, as of the last tick


@dataclass(frozen=True)
class Seen:
    """What a camera's reader and image checks report at one tick."""

    stream: StreamSnapshot
    image_problems: tuple[str, ...] = ()
    evidence: dict[str, Any] | None = None  # the figures behind the image problems
    accepted_views: int = 0  # counted since start by the image checks


@dataclass(frozen=True)
class Said:
    """What one camera has to say after one tick: its changes, as events, and its health if due."""

    changes: tuple[Change, ...] = ()
    events: tuple[dict[str, Any], ...] = ()
    health: dict[str, Any] | None = None


@dataclass(frozen=True)
class Ward:
    """What every camera's step needs of the agent: the ward's id and how often health is repeated."""

    id: str
    heartbeat_s: float


def step(
    cam: CameraState, seen: Seen, *, now: float, ward: Ward, wall_of: Callable[[float], float], now_wall: float
) -> Said:
    """Advance ``cam`` to ``now`` (monotonic) with what was ``seen``; what it has to say.

    Every change becomes an event; a state change is also recorded for the
    uptime ratio. Health is said on every change and every ``heartbeat_s``,
    but never while the verdict is still ``unknown`` (the first
    ``offline_after_s`` after start): nothing is said before there is
    something true to say.
    """
    changes = tuple(cam.machine.update(seen.stream, now, seen.image_problems, seen.evidence))
    verdict = cam.machine.verdict
    accepted = seen.accepted_views > cam.accepted_views  # a moved view became the reference since last tick
    events = []
    for change in changes:
        if change.type == "state_changed":
            cam.uptime.record(verdict.state, verdict.since)
        events.append(
            event_payload(
                ward=ward.id,
                camera=cam.id,
                change=change,
                wall=wall_of(change.at),
                since_wall=wall_of(verdict.since) if change.type == "state_changed" else None,
                from_since_wall=wall_of(change.from_since) if change.from_since is not None else None,
                reason="accepted"
                if accepted and change.type == "problem_ended" and change.problem == "moved"
                else None,
            )
        )
    cam.accepted_views = seen.accepted_views
    due = cam.last_health_at is None or now - cam.last_health_at >= ward.heartbeat_s
    if not (changes or due) or verdict.state == "unknown":
        return Said(changes, tuple(events))
    window, ratio = cam.uptime.ratio(now)
    health = health_payload(
        ward=ward.id,
        camera=cam.id,
        name=cam.name,
        verdict=verdict,
        stream=seen.stream,
        wall_of=wall_of,
        now_wall=now_wall,
        uptime_window_s=window,
        online_ratio=ratio,
    )
    cam.last_health_at = now
    return Said(changes, tuple(events), health)
