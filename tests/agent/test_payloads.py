"""Every payload builder produces JSON valid against the shipped schemas."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest

from agent.clock import rfc3339
from agent.health.state import Change, Verdict
from agent.publish.payloads import agent_payload, encode, event_payload, health_payload
from agent.stream.stats import StreamSnapshot
from contract.schemas import schema
from contract.topics import Topics


def roundtrip(payload: dict[str, Any]) -> dict[str, Any]:
    decoded: dict[str, Any] = json.loads(encode(payload))
    return decoded


def test_rfc3339_utc_millis() -> None:
    assert rfc3339(0.0) == "1970-01-01T00:00:00.000Z"
    assert rfc3339(1764052032.1239) == "2025-11-25T06:27:12.123Z"


@pytest.mark.parametrize(
    "stream",
    [
        StreamSnapshot(),
        StreamSnapshot(
            connected=True,
            codec="h264",
            width=1920,
            height=1080,
            fps=24.9,
            nominal_fps=25.0,
            bitrate_kbps=4096.2,
            gop_s=2.0,
            last_packet=99.0,
            connects=3,
            reconnects=2,
        ),
    ],
)
@pytest.mark.parametrize(
    "verdict",
    [
        Verdict("online", (), 10.0),
        Verdict("degraded", ("low_fps",), 10.0),
        Verdict("offline", ("auth_failed",), 10.0, detail="camera refused the credentials"),
    ],
)
def test_health_payload_is_valid(stream: StreamSnapshot, verdict: Verdict) -> None:
    p = health_payload(
        ward="thong-nhat",
        camera="cam-01",
        name="Ngã tư Lê Duẩn",
        verdict=verdict,
        stream=stream,
        wall_of=lambda m: 1_764_000_000 + m,
        now_wall=1_764_000_100.0,
        uptime_window_s=100.0,
        online_ratio=0.5,
    )
    jsonschema.validate(roundtrip(p), schema("camwatch.health/1"))
    assert p["state"] == verdict.state and p["problems"] == list(verdict.problems)


@pytest.mark.parametrize(
    "change",
    [
        Change("state_changed", 5.0, "online", "offline", problems=("stalled",), detail="no packet for 5 s"),
        Change("state_changed", 5.0, "unknown", "online"),
        Change("problem_started", 5.0, problem="low_fps", problems=("low_fps",)),
        Change("problem_ended", 5.0, problem="low_fps"),
    ],
)
def test_event_payload_is_valid(change: Change) -> None:
    p = event_payload(ward="w", camera="c", change=change, wall=1_764_000_000.0, since_wall=1_763_999_999.0)
    jsonschema.validate(roundtrip(p), schema("camwatch.event/1"))
    jsonschema.validate(roundtrip({**p, "replayed": True}), schema("camwatch.event/1"))


def test_event_ids_are_unique() -> None:
    change = Change("problem_ended", 5.0, problem="low_fps")
    ids = {event_payload(ward="w", camera="c", change=change, wall=0.0)["id"] for _ in range(1000)}
    assert len(ids) == 1000


def test_agent_payloads_are_valid() -> None:
    birth = agent_payload(ward="w", state="online", version="0.1.0", cameras=["a", "b"], started_at=0, now_wall=1)
    will = agent_payload(
        ward="w", state="offline", version="0.1.0", cameras=[], started_at=0, now_wall=1, reason="lost"
    )
    for p in (birth, will):
        jsonschema.validate(roundtrip(p), schema("camwatch.agent/1"))
    with pytest.raises(jsonschema.ValidationError):  # offline needs a reason
        jsonschema.validate({**will, "reason": None}, schema("camwatch.agent/1"))


def test_schema_rejects_bad_ts_and_state() -> None:
    p = agent_payload(ward="w", state="online", version="1", cameras=[], started_at=0, now_wall=1)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**p, "ts": "2026-11-25 06:00:00"}, schema("camwatch.agent/1"))
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**p, "state": "sleeping"}, schema("camwatch.agent/1"))


def test_topics() -> None:
    t = Topics("camwatch", "thong-nhat")
    assert t.agent_status == "camwatch/thong-nhat/agent/status"
    assert t.health("cam-01") == "camwatch/thong-nhat/cam-01/health"
    assert t.events("cam-01") == "camwatch/thong-nhat/cam-01/events"
    assert t.snapshot("cam-01", "e1") == "camwatch/thong-nhat/cam-01/snapshot/e1"
