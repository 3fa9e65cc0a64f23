"""A whole agent driven tick by tick: a driven clock, reports as the reader processes send them, and the
in-memory publisher. No broker, no camera, no process: what the agent decides and would publish."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import jsonschema
from support import flowing

from agent.clock import Clock, rfc3339
from agent.config import parse_config
from agent.publish.outbox import Outbox
from agent.publish.publisher import MemoryPublisher
from agent.runtime import DROPPED_SHARE, Agent, DropShare
from agent.shard import ReaderReport
from contract.schemas import schema
from contract.vocab import EVENT_SCHEMA, HEALTH_SCHEMA


class DrivenClock(Clock):
    def __init__(self) -> None:
        self.now = 1000.0

    def mono(self) -> float:
        return self.now

    def wall(self) -> float:
        return 1_796_000_000.0 + self.now


def build(tmp_path: Path) -> tuple[Agent, DrivenClock, MemoryPublisher]:
    config = parse_config(
        {
            "ward": "w1",
            "state_dir": str(tmp_path),
            "detection": {"enabled": False},
            "health": {"image_checks": False},
            "cameras": [{"id": "gate", "name": "Cổng", "url": "rtsp://10.0.0.7/Streaming/Channels/101"}],
        },
        env={},
    )
    clock = DrivenClock()
    made: list[MemoryPublisher] = []

    def publisher(outbox: Outbox) -> MemoryPublisher:
        made.append(MemoryPublisher(outbox))
        return made[0]

    agent = Agent(config, clock=clock, publisher=publisher)
    agent.publisher.start()
    return agent, clock, made[0]


def report(agent: Agent, clock: DrivenClock, *, last_packet: float, since: float, started: float) -> None:
    snap = replace(flowing(last_packet, since, started), as_of=clock.now)
    agent.readers.readers["gate"].update(ReaderReport(snapshot=snap))


def test_a_camera_comes_online_then_stalls_and_the_agent_says_so_in_the_contracts_words(tmp_path: Path) -> None:
    agent, clock, out = build(tmp_path)
    start = clock.now
    agent.tick(clock.now)
    assert out.health == {} and out.sent == []  # no verdict yet: nothing said

    for _ in range(12):  # packets flow for 3 s (online_after_s is 2)
        clock.now += 0.25
        report(agent, clock, last_packet=clock.now, since=start, started=start)
        agent.tick(clock.now)
    health = out.health["gate"][-1]
    assert health["state"] == "online" and health["name"] == "Cổng"
    jsonschema.validate(health, schema(HEALTH_SCHEMA))

    last = clock.now
    for _ in range(28):  # then nothing for 7 s, the reader waiting on the camera (offline_after_s is 5)
        clock.now += 0.25
        report(agent, clock, last_packet=last, since=start, started=start)
        agent.tick(clock.now)
    health = out.health["gate"][-1]
    assert health["state"] == "offline" and health["problems"] == ["stalled"]
    changes = [m.payload for m in out.sent if isinstance(m.payload, dict) and m.payload["type"] == "state_changed"]
    assert [(c["from"], c["to"]) for c in changes] == [("unknown", "online"), ("online", "offline")]
    for change in changes:
        jsonschema.validate(change, schema(EVENT_SCHEMA))
    # Offline since the last packet, by the driven clock; the event says so too.
    assert changes[-1]["since"] == health["since"] == rfc3339(clock.wall_of(last))


def test_frames_the_detector_drops_in_the_start_burst_are_counted_not_said_as_overload(tmp_path: Path) -> None:
    agent, clock, _ = build(tmp_path)
    start = clock.now

    def tick_with(dropped: int) -> None:
        snap = replace(flowing(clock.now, start, start), as_of=clock.now)
        agent.readers.readers["gate"].update(ReaderReport(snapshot=snap, detect_dropped=dropped))
        agent.tick(clock.now)

    for second in range(1, 21):  # the first 20 s: every camera's first frames and every parked car at once
        clock.now = start + second
        tick_with(dropped=5 * second)
    assert "overloaded" not in agent.agent_problems()
    assert agent.overload()["detection_frames_dropped"] == 100  # counted all the same
    for second in range(21, 41):  # nothing dropped once it settled
        clock.now = start + second
        tick_with(dropped=100)
    assert "overloaded" not in agent.agent_problems()
    for second in range(41, 71):  # then the detector falls behind for good: a PC short of CPU, said
        clock.now = start + second
        tick_with(dropped=100 + 20 * (second - 40))
    assert "overloaded" in agent.agent_problems()


def test_a_drop_now_and_then_is_no_overload_a_steady_share_is() -> None:
    share = DropShare(window_s=60.0)
    offered = lost = 0
    for second in range(120):  # 50 frames a second for the detector; one dropped every 2 s (1 %)
        offered += 50
        lost += second % 2
        assert share.note(float(second), offered, lost) < DROPPED_SHARE
    for second in range(120, 135):  # then 10 of every 50 (20 %): above the share within seconds
        offered += 50
        lost += 10
        last = share.note(float(second), offered, lost)
    assert last > DROPPED_SHARE
    quiet = DropShare(window_s=60.0)
    assert quiet.note(0.0, 0, 0) == 0.0 and quiet.note(40.0, 10, 5) == 0.0  # too few frames to say anything
    early = DropShare(window_s=60.0)
    assert early.note(0.0, 0, 0) == 0.0 and early.note(5.0, 500, 100) == 0.0  # a burst, too soon to judge
    assert early.note(31.0, 1500, 300) > DROPPED_SHARE  # still 20 % half a minute on: steady
