"""The agent's payloads, built with the contract's models (:mod:`contract.payloads`) from what it measured; pure."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from agent.clock import rfc3339
from agent.health.state import Change, Verdict
from agent.stream.stats import StreamSnapshot
from contract.events import new_event_id
from contract.payloads import AgentStatus, Health, ProblemChanged, StateChanged, StreamFigures, UptimeFigures, to_wire
from contract.vocab import AGENT_SCHEMA, EVENT_SCHEMA, HEALTH_SCHEMA


def _round(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(value, digits)


def health_payload(
    *,
    ward: str,
    camera: str,
    name: str,
    verdict: Verdict,
    stream: StreamSnapshot,
    wall_of: Callable[[float], float],
    now_wall: float,
    uptime_window_s: float,
    online_ratio: float | None,
) -> dict[str, Any]:
    """``wall_of`` maps a monotonic instant to wall-clock seconds."""
    health = Health.model_validate(
        {
            "schema": HEALTH_SCHEMA,
            "ward": ward,
            "camera": camera,
            "name": name,
            "ts": rfc3339(now_wall),
            "state": verdict.state,
            "problems": list(verdict.problems),
            "since": rfc3339(wall_of(verdict.since)),
            "stream": StreamFigures(
                codec=stream.codec,
                width=stream.width,
                height=stream.height,
                fps=_round(stream.fps),
                nominal_fps=_round(stream.nominal_fps),
                bitrate_kbps=_round(stream.bitrate_kbps, 1),
                gop_s=_round(stream.gop_s),
                last_packet_ts=rfc3339(wall_of(stream.last_packet)) if stream.last_packet is not None else None,
            ),
            "uptime": UptimeFigures(window_s=round(uptime_window_s, 1), online_ratio=_round(online_ratio, 5)),
            "reconnects": stream.reconnects,
            "detail": verdict.detail or None,
        }
    )
    return to_wire(health)


def event_payload(
    *,
    ward: str,
    camera: str,
    change: Change,
    wall: float,
    since_wall: float | None = None,
    from_since_wall: float | None = None,
    reason: str | None = None,
) -> dict[str, Any]:
    """An event; a state change says what the camera became since when, and what it was since when.
    ``reason``: why a problem ended (``accepted``: a moved view became the reference)."""
    head: dict[str, Any] = {
        "schema": EVENT_SCHEMA,
        "id": new_event_id(),
        "ward": ward,
        "camera": camera,
        "ts": rfc3339(wall),
        "type": change.type,
        "problems": list(change.problems),
        "problem": change.problem,
        "detail": change.detail or None,
    }
    if change.type != "state_changed":
        return to_wire(ProblemChanged.model_validate({**head, "reason": reason}))
    told = from_since_wall is not None and change.from_state != "unknown"
    return to_wire(
        StateChanged.model_validate(
            {
                **head,
                "from": change.from_state,
                "to": change.to_state,
                "since": None if since_wall is None else rfc3339(since_wall),
                "from_since": rfc3339(from_since_wall) if told and from_since_wall is not None else None,
                "from_problems": list(change.from_problems) if told else None,
            }
        )
    )


def agent_payload(
    *,
    ward: str,
    state: str,
    version: str,
    cameras: list[str],
    started_at: float,
    now_wall: float,
    problems: list[str] | None = None,
    reason: str | None = None,
    hostname: str | None = None,
    refused: tuple[str, str] | None = None,
    overload: dict[str, int] | None = None,
) -> dict[str, Any]:
    status = AgentStatus.model_validate(
        {
            "schema": AGENT_SCHEMA,
            "ward": ward,
            "ts": rfc3339(now_wall),
            "state": state,
            "version": version,
            "cameras": cameras,
            "started_at": rfc3339(started_at),
            "problems": problems or [],
            "reason": reason,
            "hostname": hostname or None,
            "refused": None if refused is None else {"topic": refused[0], "reason": refused[1]},
            "overload": overload,
        }
    )
    return to_wire(status)


def encode(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
