"""One camera's step of the health loop, driven directly: what it was seen doing in, what is said out."""

from __future__ import annotations

import jsonschema
from support import flowing as reported

from agent.camera import CameraState, Said, Seen, Ward, step
from agent.clock import rfc3339
from agent.health import HealthMachine, Thresholds, UptimeTracker
from agent.stream.stats import StreamSnapshot
from contract.schemas import schema
from contract.vocab import EVENT_SCHEMA, HEALTH_SCHEMA

START = 1000.0
WALL = 1_796_000_000.0  # wall-clock seconds at monotonic 0
WARD = Ward("w1", heartbeat_s=30.0)


def camera() -> CameraState:
    return CameraState("gate", "Cổng", HealthMachine(Thresholds(), START), UptimeTracker(86400, START))


def flowing(now: float, since: float = START) -> StreamSnapshot:
    stream: StreamSnapshot = reported(now, since, START)
    return stream


def at(cam: CameraState, now: float, seen: Seen) -> Said:
    return step(cam, seen, now=now, ward=WARD, wall_of=lambda m: WALL + m, now_wall=WALL + now)


def valid(said: Said) -> Said:
    for event in said.events:
        jsonschema.validate(event, schema(EVENT_SCHEMA))
    if said.health is not None:
        jsonschema.validate(said.health, schema(HEALTH_SCHEMA))
    return said


def test_nothing_is_said_before_a_verdict_then_the_change_and_health_at_once_then_health_each_heartbeat() -> None:
    cam = camera()
    assert at(cam, START + 1, Seen(flowing(START + 1))) == Said()  # flowing for 1 s: online_after_s is 2
    said = valid(at(cam, START + 2.5, Seen(flowing(START + 2.5))))
    assert [(e["type"], e["from"], e["to"]) for e in said.events] == [("state_changed", "unknown", "online")]
    assert said.events[0]["since"] == rfc3339(WALL + START)  # up since packets began to flow
    assert said.health is not None and said.health["state"] == "online" and said.health["name"] == "Cổng"
    assert said.health["ts"] == rfc3339(WALL + START + 2.5)
    for t in (START + 10, START + 32):  # nothing changed, no heartbeat due
        assert at(cam, t, Seen(flowing(t))) == Said()
    heartbeat = valid(at(cam, START + 33, Seen(flowing(START + 33))))
    assert heartbeat.events == () and heartbeat.health is not None and heartbeat.health["state"] == "online"
    assert cam.last_health_at == START + 33


def test_a_silent_camera_goes_offline_since_its_last_packet_and_its_uptime_counts_it() -> None:
    cam = camera()
    at(cam, START + 3, Seen(flowing(START + 3)))
    last = flowing(START + 100)
    at(cam, START + 100, Seen(last))
    said = valid(at(cam, START + 106, Seen(last)))  # offline_after_s is 5
    changed = said.events[0]
    assert (changed["from"], changed["to"], changed["problems"]) == ("online", "offline", ["stalled"])
    assert changed["since"] == rfc3339(WALL + START + 100)  # when the last packet came, not when it was noticed
    assert changed["from_since"] == rfc3339(WALL + START)
    assert said.health is not None and said.health["detail"] == "no packet for 5 s"
    assert said.health["uptime"]["online_ratio"] == round(100 / 106, 5)


def test_a_moved_view_that_became_the_reference_ends_moved_saying_so() -> None:
    cam = camera()
    at(cam, START + 3, Seen(flowing(START + 3)))
    moved = Seen(flowing(START + 10), ("moved",), {"moved": "the view shifted 31 % of its width"})
    said = valid(at(cam, START + 10, moved))
    assert [(e["type"], e.get("problem")) for e in said.events] == [
        ("state_changed", None),
        ("problem_started", "moved"),
    ]
    assert said.events[1]["detail"] == "moved: the view shifted 31 % of its width"
    assert said.health is not None and said.health["state"] == "degraded"
    later = valid(at(cam, START + 20, Seen(flowing(START + 20), accepted_views=1)))  # the new view is the reference
    ended = [e for e in later.events if e["type"] == "problem_ended"]
    assert [(e["problem"], e["reason"]) for e in ended] == [("moved", "accepted")]
    again = valid(at(cam, START + 30, Seen(flowing(START + 30), ("moved",), accepted_views=1)))
    cleared = valid(at(cam, START + 40, Seen(flowing(START + 40), accepted_views=1)))  # it moved back: no accepting
    assert [e["type"] for e in again.events] == ["state_changed", "problem_started"]
    assert [e.get("reason") for e in cleared.events if e["type"] == "problem_ended"] == [None]
