"""The state machine, driven by a clock we control (no sleeps)."""

from __future__ import annotations

from dataclasses import replace

from agent.health import Debounce, HealthMachine, Thresholds, UptimeTracker
from agent.health.state import Change
from agent.stream.stats import StreamSnapshot

T = Thresholds(offline_after_s=5, online_after_s=2, low_fps_ratio=0.5, low_fps_after_s=10, clear_after_s=5)


def flowing(since: float, now: float, fps: float = 25.0) -> StreamSnapshot:
    return StreamSnapshot(
        connected=True, last_packet=now, flow_since=since, nominal_fps=25.0, fps=fps, fps_window_full=True
    )


def state_of(m: HealthMachine) -> str:
    """The machine's state now (read through a call: mypy would keep it narrowed from the last assert)."""
    return m.verdict.state


def types(changes: list[Change]) -> list[str]:
    return [c.type for c in changes]


def test_unknown_until_packets_flow_for_online_after_s() -> None:
    m = HealthMachine(T, started=0.0)
    assert m.update(flowing(1.0, 1.0), 1.0) == []
    assert m.verdict.state == "unknown"
    changes = m.update(flowing(1.0, 3.0), 3.0)
    assert types(changes) == ["state_changed"]
    assert (changes[0].from_state, changes[0].to_state) == ("unknown", "online")
    assert m.verdict.since == 1.0  # up since the packets began


def test_offline_when_no_packet_for_offline_after_s_on_own_clock() -> None:
    m = HealthMachine(T, started=0.0)
    m.update(flowing(0.0, 3.0), 3.0)
    last = replace(flowing(0.0, 10.0), connected=True)  # the read is still blocked: no failure reported
    assert m.update(last, 14.9) == []
    changes = m.update(last, 15.0)
    assert m.verdict.state == "offline"
    assert m.verdict.problems == ("stalled",)
    assert m.verdict.since == 10.0  # died with its last packet
    assert types(changes) == ["state_changed", "problem_started"]


def test_offline_reason_from_reader_failure_after_last_packet() -> None:
    m = HealthMachine(T, started=0.0)
    m.update(flowing(0.0, 3.0), 3.0)
    s = replace(flowing(0.0, 10.0), connected=False, failure="unreachable", failure_at=11.0, failure_detail="refused")
    m.update(s, 16.0)
    assert m.verdict.problems == ("unreachable",)
    assert m.verdict.detail == "refused"


def test_reason_changes_while_offline_emit_problem_events_only() -> None:
    m = HealthMachine(T, started=0.0)
    m.update(flowing(0.0, 3.0), 3.0)
    m.update(flowing(0.0, 10.0), 15.0)
    assert m.verdict.problems == ("stalled",)
    s = replace(flowing(0.0, 10.0), connected=False, failure="unreachable", failure_at=16.0)
    changes = m.update(s, 17.0)
    assert types(changes) == ["problem_ended", "problem_started"]
    assert m.verdict.state == "offline" and m.verdict.since == 10.0


def test_definitive_failure_at_start_goes_offline_at_once() -> None:
    m = HealthMachine(T, started=0.0)
    s = StreamSnapshot(failure="auth_failed", failure_at=0.3, failure_detail="401")
    changes = m.update(s, 0.5)
    assert m.verdict.state == "offline" and m.verdict.problems == ("auth_failed",)
    assert (changes[0].from_state, changes[0].to_state) == ("unknown", "offline")


def test_nothing_at_all_is_offline_stalled_after_offline_after_s() -> None:
    m = HealthMachine(T, started=0.0)
    assert m.update(StreamSnapshot(), 4.9) == []
    m.update(StreamSnapshot(), 5.0)
    assert m.verdict.problems == ("stalled",)


def test_back_online_only_after_online_after_s_of_flow() -> None:
    m = HealthMachine(T, started=0.0)
    m.update(StreamSnapshot(failure="unreachable", failure_at=1.0), 1.0)
    assert m.verdict.state == "offline"
    assert m.update(flowing(20.0, 21.0), 21.0) == []  # packets back, not long enough
    assert m.verdict.problems == ("unreachable",)
    changes = m.update(flowing(20.0, 22.0), 22.0)
    assert types(changes) == ["state_changed", "problem_ended"]
    assert state_of(m) == "online" and m.verdict.since == 20.0


def test_low_fps_degrades_after_debounce_and_clears_with_hysteresis() -> None:
    m = HealthMachine(T, started=0.0)
    m.update(flowing(0.0, 3.0), 3.0)
    for t in range(4, 14):
        m.update(flowing(0.0, t, fps=10.0), t)
    assert m.verdict.state == "online"  # 9 s of low fps: not yet
    changes = m.update(flowing(0.0, 14.0, fps=10.0), 14.0)
    assert state_of(m) == "degraded" and m.verdict.problems == ("low_fps",)
    assert types(changes) == ["state_changed", "problem_started"]
    # 13 fps is above half of 25 but inside the hysteresis band: stays degraded
    for t in range(15, 30):
        m.update(flowing(0.0, t, fps=13.0), t)
    assert state_of(m) == "degraded"
    for t in range(30, 36):
        m.update(flowing(0.0, t, fps=25.0), t)
    assert m.verdict.state == "online"


def test_one_bad_sample_does_not_flap() -> None:
    m = HealthMachine(T, started=0.0)
    m.update(flowing(0.0, 3.0), 3.0)
    for t in range(4, 60):
        fps = 5.0 if t % 7 == 0 else 25.0
        assert m.update(flowing(0.0, t, fps=fps), t) == []


def test_low_fps_needs_a_full_window() -> None:
    m = HealthMachine(T, started=0.0)
    m.update(flowing(0.0, 3.0), 3.0)
    s = replace(flowing(0.0, 0.0), fps=1.0, fps_window_full=False)
    for t in range(4, 30):
        m.update(replace(s, last_packet=t), t)
    assert m.verdict.state == "online"


def test_extra_image_problems_degrade() -> None:
    m = HealthMachine(T, started=0.0)
    m.update(flowing(0.0, 3.0), 3.0)
    changes = m.update(flowing(0.0, 4.0), 4.0, extra_problems=["frozen"])
    assert m.verdict.state == "degraded" and m.verdict.problems == ("frozen",)
    assert types(changes) == ["state_changed", "problem_started"]


def test_debounce() -> None:
    d = Debounce(on_after_s=3, off_after_s=2)
    assert [d.update(a, t) for t, a in enumerate([True, True, True, True, False, True, False, False, False])] == [
        False,
        False,
        False,
        True,
        True,
        True,
        True,
        True,
        False,
    ]


def test_uptime_ratio_ignores_unknown() -> None:
    u = UptimeTracker(window_s=100, started=0.0)
    u.record("online", 10.0)
    u.record("offline", 40.0)
    u.record("online", 50.0)
    covered, ratio = u.ratio(60.0)
    assert covered == 60.0
    assert ratio == 40.0 / 50.0
    covered, ratio = u.ratio(200.0)  # window slides: only the last 100 s count
    assert covered == 100.0 and ratio == 1.0


def test_a_slow_first_packet_is_not_called_stalled_once_packets_flow() -> None:
    """The first packet came after offline_after_s (a slow camera, a busy server): from then on packets
    arrive, so the verdict waits online_after_s and says online; it never says stalled in between."""
    m = HealthMachine(T, started=0.0)
    assert m.update(StreamSnapshot(connected=True), 4.0) == []
    assert m.update(flowing(5.5, 5.5), 5.6) == []  # the first packet, 5.5 s after the start
    assert m.update(flowing(5.5, 6.5), 6.6) == []
    changes = m.update(flowing(5.5, 7.6), 7.6)
    assert [(c.from_state, c.to_state) for c in changes] == [("unknown", "online")]
    assert m.verdict.since == 5.5
    never = HealthMachine(T, started=0.0)  # no packet at all: stalled at offline_after_s, as before
    assert [c.to_state for c in never.update(StreamSnapshot(connected=True), 5.0) if c.type == "state_changed"] == [
        "offline"
    ]


def test_a_reader_behind_its_packets_is_not_a_stalled_camera() -> None:
    """No packet recorded for longer than offline_after_s, but the reader waits for the CPU, not the camera."""
    m = HealthMachine(Thresholds(offline_after_s=5, online_after_s=1), started=0.0)
    for t in range(0, 4):
        m.update(flowing(0.0, float(t)), float(t))
    assert m.verdict.state == "online"
    behind = replace(flowing(0.0, 3.0), behind=True)
    assert m.update(behind, 20.0) == []  # 17 s late: patience is 6 x offline_after_s
    assert m.verdict.state == "online"
    changes = m.update(behind, 33.5)  # a reader this far behind is hung: the camera is not watched
    assert [c.to_state for c in changes if c.type == "state_changed"] == ["offline"]
    assert m.verdict.problems == ("stalled",) and m.verdict.since == 3.0
    # Not behind: the old rule, to the second.
    m2 = HealthMachine(Thresholds(offline_after_s=5, online_after_s=1), started=0.0)
    for t in range(0, 4):
        m2.update(flowing(0.0, float(t)), float(t))
    assert m2.update(flowing(0.0, 3.0), 7.9) == []
    assert m2.update(flowing(0.0, 3.0), 8.0) and m2.verdict.state == "offline"


def test_a_camera_is_judged_from_when_its_reader_began_trying() -> None:
    """Hundreds of cameras start in turn: one not yet begun stays unknown, one begun late gets its full time."""
    m = HealthMachine(Thresholds(offline_after_s=5), started=0.0)
    assert m.update(StreamSnapshot(pending=True), 30.0) == []
    assert m.verdict.state == "unknown"
    assert m.update(StreamSnapshot(started_at=8.0), 12.9) == []
    assert m.update(StreamSnapshot(started_at=8.0), 13.0)
    assert state_of(m) == "offline" and m.verdict.detail == "no packet yet"


def test_a_server_slow_to_answer_at_start_is_not_offline_at_once() -> None:
    """An NVR opening many channels at once may miss one handshake: a stall needs offline_after_s."""
    m = HealthMachine(Thresholds(offline_after_s=5, online_after_s=1), started=0.0)
    slow = StreamSnapshot(failure="stalled", failure_at=2.0, failure_detail="no RTSP answer within 2 s", started_at=0.0)
    assert m.update(slow, 2.0) == []
    assert m.update(replace(flowing(3.0, 3.5), started_at=0.0), 3.5) == []
    assert [c.to_state for c in m.update(replace(flowing(3.0, 4.0), started_at=0.0), 4.0)] == ["online"]
    still = HealthMachine(Thresholds(offline_after_s=5), started=0.0)
    assert still.update(slow, 4.9) == []
    assert still.update(slow, 5.0) and still.verdict.problems == ("stalled",)


def test_an_open_held_up_by_a_busy_pc_is_not_a_stall_until_far_longer() -> None:
    """Hundreds of cameras opening at once: an open whose thread waits for the CPU is not the camera's fault."""
    from agent.health.state import BEHIND_PATIENCE

    m = HealthMachine(Thresholds(offline_after_s=5), started=0.0)
    opening = StreamSnapshot(started_at=0.0, behind=True)
    assert m.update(opening, 5.0) == []
    assert m.update(opening, 5 * BEHIND_PATIENCE - 0.1) == []
    assert m.update(opening, 5 * BEHIND_PATIENCE)  # an open hung for that long is a stall after all
    assert m.verdict.state == "offline" and m.verdict.problems == ("stalled",)


def test_an_opening_reader_waiting_for_the_cpu_is_behind(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from agent.stream import reader as reader_module

    r = reader_module.CameraReader("c1", "rtsp://127.0.0.1:9/x", clock=lambda: 10.0)
    r._started_at = r._opening_since = 9.5
    monkeypatch.setattr(reader_module, "waiting_for_network", lambda tid: False)
    assert not r.snapshot(10.0).behind  # not yet a second
    assert r.snapshot(10.5).behind
    monkeypatch.setattr(reader_module, "waiting_for_network", lambda tid: True)  # in connect/poll: the camera's
    assert not r.snapshot(10.5).behind
