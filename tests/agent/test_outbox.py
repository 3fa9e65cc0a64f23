"""The outboxes: in order, acknowledged, bounded; the durable one survives restarts and a refusing disk."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from agent.publish.durable import DurableOutbox
from agent.publish.mqtt import Pace
from agent.publish.outbox import MemoryOutbox, Outbox, OutMessage


def msg(kind: str, n: int, camera: str = "c") -> OutMessage:
    payload: dict[str, Any] | bytes = b"\xff\xd8jpeg%d" % n if kind == "snapshot" else {"n": n}
    return OutMessage(f"t/{n}", payload, kind, camera, queued_at=float(n))  # type: ignore[arg-type]


def drain(box: Outbox, ack: bool = True) -> list[str]:
    topics = []
    while (m := box.next_unsent()) is not None:
        topics.append(m.topic)
        mid = 1000 + len(topics)
        box.mark_sent(m, mid)
        if ack:
            box.ack(mid)
    return topics


@pytest.fixture(params=["memory", "durable"])
def make_box(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[..., Outbox]:
    def make(max_messages: int = 100, clock: Callable[[], float] = time.monotonic) -> Outbox:
        if request.param == "memory":
            return MemoryOutbox(max_messages=max_messages, clock=clock)
        return DurableOutbox(tmp_path / "outbox.sqlite", max_messages=max_messages, clock=clock)

    return make


def test_in_order_and_acked(make_box: Callable[..., Outbox]) -> None:
    box = make_box()
    for i in range(3):
        box.put(msg("state", i))
    first = box.next_unsent()
    assert first is not None and first.topic == "t/0" and first.payload == {"n": 0}
    box.mark_sent(first, mid=7)
    counts = box.counts()
    assert (counts["pending"], counts["inflight"], counts["sent"]) == (2, 1, 0)
    assert box.ack(7)
    assert box.counts()["sent"] == 1
    assert drain(box) == ["t/1", "t/2"]
    assert box.counts()["pending"] == 0


def test_ack_before_mark_sent(make_box: Callable[..., Outbox]) -> None:
    box = make_box()
    box.put(msg("state", 1))
    m = box.next_unsent()
    assert m is not None
    box.ack(42)  # PUBACK raced ahead of mark_sent
    box.mark_sent(m, 42)
    counts = box.counts()
    assert (counts["pending"], counts["inflight"], counts["sent"]) == (0, 0, 1)


def test_an_old_ack_of_another_message_is_not_taken_for_a_reused_id(make_box: Callable[..., Outbox]) -> None:
    now = [0.0]
    box = make_box(clock=lambda: now[0])
    box.ack(42)  # the PUBACK of a retained health message (not the outbox's)
    now[0] += 3600  # ids wrap after 65,535 publishes: a long drain reuses 42
    box.put(msg("state", 1))
    m = box.next_unsent()
    assert m is not None
    box.mark_sent(m, 42)
    assert box.counts()["inflight"] == 1  # still waiting for its own PUBACK: not deleted, not lost
    assert box.ack(42)
    assert box.counts()["sent"] == 1


def test_a_refused_message_goes_back_in_line_and_is_never_taken_for_delivered(make_box: Callable[..., Outbox]) -> None:
    box = make_box()
    for i in range(4):
        box.put(msg("state", i))
    sent = {}
    for mid in (11, 12, 13):
        m = box.next_unsent()
        assert m is not None
        box.mark_sent(m, mid)
        sent[mid] = m.topic
    # The broker takes t/0, refuses t/1 and t/2 (its ACL): they wait again, in order, before t/3.
    assert box.ack(11)
    assert box.refuse(12) == "t/1"
    assert box.refuse(13) == "t/2"
    counts = box.counts()
    assert (counts["pending"], counts["inflight"], counts["sent"], counts["dropped"]) == (3, 0, 1, 0)
    assert drain(box) == ["t/1", "t/2", "t/3"]
    assert box.counts()["pending"] == 0


def test_a_refusal_before_mark_sent_and_one_in_the_middle_of_the_flight(make_box: Callable[..., Outbox]) -> None:
    box = make_box()
    for i in range(3):
        box.put(msg("state", i))
    first = box.next_unsent()
    assert first is not None
    assert box.refuse(21) is None  # the refusal overtook mark_sent
    box.mark_sent(first, 21)
    again = box.next_unsent()
    assert again is not None and again.topic == "t/0"
    box.mark_sent(again, 22)
    second = box.next_unsent()
    assert second is not None and second.topic == "t/1"
    box.mark_sent(second, 23)
    assert box.refuse(22) == "t/0"  # t/1 is still in flight: not sent twice at once
    nxt = box.next_unsent()
    assert nxt is not None and nxt.topic == "t/0"
    box.mark_sent(nxt, 24)
    nxt = box.next_unsent()
    assert nxt is not None and nxt.topic == "t/2"
    box.mark_sent(nxt, 25)
    assert box.ack(23) and box.ack(24) and box.ack(25)
    assert box.next_unsent() is None
    assert box.counts()["sent"] == 3


def test_an_undeliverable_message_is_dropped_and_counted(make_box: Callable[..., Outbox]) -> None:
    box = make_box()
    box.put(msg("snapshot", 0))
    box.put(msg("state", 1))
    big = box.next_unsent()
    assert big is not None
    box.drop(big)
    assert box.counts()["dropped"] == 1
    assert drain(box) == ["t/1"]


def test_overflow_drops_snapshots_then_detections_never_state_changes(make_box: Callable[..., Outbox]) -> None:
    box = make_box(max_messages=4)
    box.put(msg("state", 0))
    box.put(msg("detection", 1))
    box.put(msg("snapshot", 2))
    box.put(msg("state", 3))
    box.put(msg("state", 4))  # over: the snapshot goes first
    box.put(msg("state", 5))  # over: then the detection
    box.put(msg("state", 6))  # over, only state changes left: kept
    assert drain(box) == ["t/0", "t/3", "t/4", "t/5", "t/6"]
    assert box.counts()["dropped"] == 2


# -- durable ---------------------------------------------------------------------------


def test_survives_a_restart_and_resends_what_was_not_acknowledged(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite"
    box = DurableOutbox(path)
    for i in range(4):
        box.put(msg("state", i))
    box.put(msg("snapshot", 4))
    first = box.next_unsent()
    assert first is not None
    box.mark_sent(first, 1)
    box.ack(1)  # t/0 delivered
    second = box.next_unsent()
    assert second is not None
    box.mark_sent(second, 2)  # t/1 in flight when the agent dies: no PUBACK
    del box  # no close: as after kill -9

    again = DurableOutbox(path)
    assert again.recovered == 4 and again.counts()["pending"] == 4
    m = again.next_unsent()
    assert m is not None and m.topic == "t/1" and m.late  # sent late: replayed
    rest = [m.topic]
    again.mark_sent(m, 9)
    again.ack(9)
    rest += drain(again)
    assert rest == ["t/1", "t/2", "t/3", "t/4"]
    again.close()
    assert DurableOutbox(path).counts()["pending"] == 0


def test_snapshot_bytes_round_trip(tmp_path: Path) -> None:
    box = DurableOutbox(tmp_path / "o.sqlite")
    box.put(msg("snapshot", 3))
    m = box.next_unsent()
    assert m is not None and m.payload == b"\xff\xd8jpeg3"


def test_byte_cap_and_age(tmp_path: Path) -> None:
    now = [1000.0]
    box = DurableOutbox(tmp_path / "o.sqlite", max_bytes=1024 * 1024, max_age_s=3600, wall=lambda: now[0])
    big = OutMessage("snap/0", b"x" * 400_000, "snapshot", "c", queued_at=0)
    box.put(msg("state", 0))
    box.put(big)
    box.put(OutMessage("snap/1", b"y" * 400_000, "snapshot", "c", queued_at=0))
    box.put(OutMessage("snap/2", b"z" * 400_000, "snapshot", "c", queued_at=0))  # over 1 MB: snap/0 goes
    assert box.counts()["dropped"] == 1 and box.counts()["bytes"] < 1024 * 1024
    now[0] += 7200  # two hours later: old snapshots expire, the state change stays
    box.put(msg("detection", 5))
    assert drain(box) == ["t/0", "t/5"]
    assert box.counts()["expired"] == 2


def test_a_disk_that_refuses_keeps_messages_in_memory_in_order(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the state directory should be")
    box = DurableOutbox(blocker / "outbox.sqlite")
    assert box.problem is not None and "cannot open the outbox" in box.problem
    for i in range(3):
        box.put(msg("state", i))
    assert box.counts()["in_memory"] == 3
    assert drain(box) == ["t/0", "t/1", "t/2"]


def test_pace_limits_messages_and_bytes() -> None:
    now = [0.0]
    pace = Pace(per_s=10, bytes_per_s=1000, clock=lambda: now[0])
    sent = 0
    for _ in range(1000):  # 5 simulated seconds in 5 ms steps
        if pace.delay(50) == 0:
            sent += 1
        now[0] += 0.005
    assert 50 <= sent <= 61  # 10 a second, plus the first second's bucket
    big = Pace(per_s=100, bytes_per_s=1000, clock=lambda: now[0])
    assert big.delay(5000) == 0  # larger than a second's worth: still goes, alone
    assert big.delay(10) > 0


def test_a_message_read_back_keeps_when_it_was_queued(tmp_path: Path) -> None:
    """The publisher marks ``replayed`` from how long a message waited: the durable outbox must say it truly."""
    wall = [1_000_000.0]
    mono = [50.0]
    box = DurableOutbox(tmp_path / "o.sqlite", wall=lambda: wall[0], clock=lambda: mono[0])
    box.put(msg("state", 1))
    wall[0] += 0.2
    mono[0] += 0.2
    m = box.next_unsent()
    assert m is not None and not m.late
    assert mono[0] - m.queued_at == pytest.approx(0.2)  # sent at once: live
    box.put(msg("state", 2))
    wall[0] += 30
    mono[0] += 30
    box.mark_sent(m, 1)
    box.ack(1)
    late = box.next_unsent()
    assert late is not None and mono[0] - late.queued_at == pytest.approx(30)  # waited 30 s: late
