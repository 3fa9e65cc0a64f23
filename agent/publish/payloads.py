"""Builders of the contract's JSON payloads (pure functions); their JSON Schemas are in :mod:`contract.schemas`."""

from __future__ import annotations

import json
from typing import Any

from agent.clock import rfc3339
from agent.health.state import Change, Verdict
from agent.stream.stats import StreamSnapshot
from contract.events import new_event_id
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
    wall_of: Any,
    now_wall: float,
    uptime_window_s: float,
    online_ratio: float | None,
) -> dict[str, Any]:
    """``wall_of`` maps a monotonic instant to wall-clock seconds."""
    payload: dict[str, Any] = {
        "schema": HEALTH_SCHEMA,
        "ward": ward,
        "camera": camera,
        "name": name,
        "ts": rfc3339(now_wall),
        "state": verdict.state,
        "problems": list(verdict.problems),
        "since": rfc3339(wall_of(verdict.since)),
        "stream": {
            "codec": stream.codec,
            "width": stream.width,
            "height": stream.height,
            "fps": _round(stream.fps),
            "nominal_fps": _round(stream.nominal_fps),
            "bitrate_kbps": _round(stream.bitrate_kbps, 1),
            "gop_s": _round(stream.gop_s),
            "last_packet_ts": rfc3339(wall_of(stream.last_packet)) if stream.last_packet is not None else None,
        },
        "uptime": {"window_s": round(uptime_window_s, 1), "online_ratio": _round(online_ratio, 5)},
        "reconnects": stream.reconnects,
    }
    if verdict.detail:
        payload["detail"] = verdict.detail
    return payload


def event_payload(
    *,
    ward: str,
    camera: str,
    change: Change,
    wall: float,
    since_wall: float | None = None,
    from_since_wall: float | None = None,
) -> dict[str, Any]:
    """An event; a state change says what the camera became since when, and what it was since when."""
    payload: dict[str, Any] = {
        "schema": EVENT_SCHEMA,
        "id": new_event_id(),
        "ward": ward,
        "camera": camera,
        "ts": rfc3339(wall),
        "type": change.type,
        "problems": list(change.problems),
    }
    if change.type == "state_changed":
        payload["from"] = change.from_state
        payload["to"] = change.to_state
        if since_wall is not None:
            payload["since"] = rfc3339(since_wall)
        if from_since_wall is not None and change.from_state != "unknown":
            payload["from_since"] = rfc3339(from_since_wall)
            payload["from_problems"] = list(change.from_problems)
    if change.problem is not None:
        payload["problem"] = change.problem
    if change.detail:
        payload["detail"] = change.detail
    return payload


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
    payload: dict[str, Any] = {
        "schema": AGENT_SCHEMA,
        "ward": ward,
        "ts": rfc3339(now_wall),
        "state": state,
        "version": version,
        "cameras": cameras,
        "started_at": rfc3339(started_at),
        "problems": problems or [],
    }
    if reason is not None:
        payload["reason"] = reason
    if hostname:
        payload["hostname"] = hostname
    if refused is not None:
        payload["refused"] = {"topic": refused[0], "reason": refused[1]}
    if overload is not None:
        payload["overload"] = overload
    return payload


def encode(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
