"""Packet stats, frame sampling and backoff: pure logic with an explicit clock."""

from __future__ import annotations

import os
import random

from agent.stream.backoff import Backoff
from agent.stream.frames import Decode, FrameSampler
from agent.stream.stats import WINDOW_MAX_ENTRIES, StreamStats


def feed(stats: StreamStats, start: float, seconds: float, fps: float, gop: int, size: int = 1000) -> float:
    n = int(seconds * fps)
    t = start
    for i in range(n):
        t = start + i / fps
        stats.on_packet(t, size, keyframe=(i % gop == 0), pts_s=t)
    return t


def test_fps_bitrate_gop() -> None:
    s = StreamStats(window_s=5.0)
    s.on_connected(0.0, "h264", 1920, 1080, 25.0)
    end = feed(s, 0.0, 10.0, 25.0, gop=50)
    snap = s.snapshot(end)
    assert snap.fps is not None and abs(snap.fps - 25.0) < 0.5
    assert snap.bitrate_kbps is not None and abs(snap.bitrate_kbps - 200.0) < 5
    assert snap.gop_s == 2.0 and snap.gop_frames == 50
    assert snap.fps_window_full and snap.nominal_fps == 25.0
    assert snap.flow_since == 0.0 and snap.last_packet == end


def test_fps_drops_when_packets_stop_and_flow_restarts_after_gap() -> None:
    s = StreamStats(window_s=5.0, gap_s=1.0)
    s.on_connected(0.0, "h264", 640, 360, 25.0)
    end = feed(s, 0.0, 6.0, 25.0, gop=25)
    snap = s.snapshot(end + 3.0)
    assert snap.fps is not None and snap.fps < 12
    s.on_packet(end + 3.0, 100, True, end + 3.0)
    assert s.snapshot(end + 3.0).flow_since == end + 3.0


def test_slices_of_one_frame_count_once() -> None:
    s = StreamStats()
    s.on_connected(0.0, "h264", 640, 360, 25.0)
    assert s.on_packet(0.0, 10, True, 0.0) is True
    assert s.on_packet(0.0, 10, True, 0.0) is False
    assert s.on_packet(0.04, 10, False, 0.04) is True
    assert s.snapshot(0.04).frames == 2


def test_window_memory_is_bounded() -> None:
    s = StreamStats(window_s=1e9)
    s.on_connected(0.0, "h264", 640, 360, 25.0)
    for i in range(20000):
        s.on_packet(i * 0.001, 10, False, i * 0.001)
    assert s.window_entries <= WINDOW_MAX_ENTRIES


def test_sampler_keyframes_only_at_interval() -> None:
    sampler = FrameSampler(interval_s=2.0)
    decisions = []
    for i in range(250):  # 10 s of 25 fps, GOP 1 s
        t = i / 25
        decisions.append(sampler.decide(i % 25 == 0, t, gop_s=1.0))
    delivered = [i for i, d in enumerate(decisions) if d is Decode.DELIVER]
    assert all(d in (Decode.SKIP, Decode.DELIVER) for d in decisions)
    assert delivered == [0, 50, 100, 150, 200]


def test_sampler_long_gop_falls_back_to_decoding_everything() -> None:
    sampler = FrameSampler(interval_s=2.0)
    decisions = [sampler.decide(i % 250 == 10, i / 25, gop_s=10.0) for i in range(300)]
    assert all(d is Decode.SKIP for d in decisions[:10])  # before the first keyframe: nothing to decode from
    assert all(d is not Decode.SKIP for d in decisions[10:])
    delivered = [i for i, d in enumerate(decisions) if d is Decode.DELIVER]
    assert delivered[:3] == [10, 60, 110]


def test_sampler_disabled() -> None:
    sampler = FrameSampler(enabled=False)
    assert sampler.decide(True, 0.0, None) is Decode.SKIP


def test_backoff_is_capped_exponential_with_jitter() -> None:
    b = Backoff(1.0, 30.0, rng=random.Random(1))
    delays = [b.next_delay() for _ in range(10)]
    ceilings = [1, 2, 4, 8, 16, 30, 30, 30, 30, 30]
    for d, c in zip(delays, ceilings, strict=True):
        assert c / 2 <= d <= c
    b.reset()
    assert b.next_delay() <= 1.0


def test_classify_generic_errors_by_tcp_check() -> None:
    import errno
    import socket

    from agent.sim.rtsp import free_port
    from agent.stream.source import classify

    eio = OSError(errno.EIO, "Input/output error: 'rtsp://u:Canary-x1@127.0.0.1/x'")
    closed = classify(eio, f"rtsp://127.0.0.1:{free_port()}/x", elapsed=0.01, open_timeout=3)
    assert closed.reason == "unreachable"
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen(4)
        url = f"rtsp://127.0.0.1:{listening.getsockname()[1]}/x"
        assert classify(eio, url, elapsed=0.01, open_timeout=3).reason == "no_video"
        assert classify(TimeoutError(), url, elapsed=3.0, open_timeout=3).reason == "stalled"
    assert "Canary-x1" not in classify(eio, url, elapsed=0.01, open_timeout=3).detail


def test_two_taps_detection_at_2fps_and_keyframe_image_checks() -> None:
    from agent.stream.frames import combine

    image = FrameSampler(interval_s=2.0)  # GOP 2 s: keyframes only
    detect = FrameSampler(interval_s=0.5)  # shorter than the GOP: decode everything
    fps, gop = 15, 30
    image_at, detect_at, decoded = [], [], 0
    for i in range(fps * 10):
        t = i / fps
        d_img, d_det = image.decide(i % gop == 0, t, 2.0), detect.decide(i % gop == 0, t, 2.0)
        decoded += combine([d_img, d_det]) is not Decode.SKIP
        if d_img is Decode.DELIVER:
            image_at.append(i)
        if d_det is Decode.DELIVER:
            detect_at.append(i)
    assert all(i % gop == 0 for i in image_at) and len(image_at) == 5
    assert 19 <= len(detect_at) <= 20  # 2 fps on average over 10 s, not bunched
    assert decoded == fps * 10  # P-frames need their references
    assert combine([]) is Decode.SKIP


def test_load_governor_sheds_pictures_step_by_step_and_never_liveness() -> None:
    from agent.shard import LoadGovernor

    g = LoadGovernor()
    assert g.observe(0.0, True) and g.level == 1 and g.image_stretch == 2
    assert not g.observe(1.0, True)  # one step per STEP_S at most
    for t in (2.0, 4.0, 6.0):
        g.observe(t, True)
    assert g.level == 4 and g.image_stretch == 8 and g.detection_paused and not g.image_paused
    g.observe(8.0, True)
    assert g.image_paused and "paused" in g.describe()
    assert not g.observe(9.0, True) and g.level == 5  # nothing more to shed: packets are never shed
    assert not g.observe(28.0, False)  # 20 s without a sign before the first step down
    assert g.observe(29.0, False) and g.level == 4
    assert not g.observe(30.0, False) and g.observe(49.0, False) and g.level == 3
    assert not g.detection_paused and g.image_stretch == 8


def test_want_of_cpu_is_a_sign_twice_running_or_a_report_very_late() -> None:
    from agent.shard import LoadGovernor

    g = LoadGovernor()
    assert g.sign(0.3, False) is None  # one report a little late: a thread that waited for the GIL
    assert g.sign(0.0, True) is None  # one reader behind once: the same
    assert g.sign(0.0, False) is None
    assert g.sign(0.3, False) is None and g.sign(0.4, False) == "woke 0.40 s late"
    assert g.sign(0.0, True) is None and g.sign(0.0, True) == "a reader has been behind its packets for a second"
    assert LoadGovernor().sign(1.5, False) == "woke 1.50 s late"  # frozen, then woken: at once


def test_a_reader_process_report_older_than_two_periods_is_no_proof_of_silence() -> None:
    from agent.health.state import HealthMachine, Thresholds
    from agent.shard import REPORT_S, UNSEEN_S, ReaderReport, RemoteReader
    from agent.stream.stats import StreamSnapshot

    remote = RemoteReader("c1", None)
    assert remote.snapshot(0.0).pending
    # The last report, sent just before its process froze: a packet 0.4 s before it.
    seen = StreamSnapshot(connected=True, last_packet=99.6, flow_since=90.0, started_at=90.0, as_of=100.0)
    remote.update(ReaderReport(snapshot=seen))
    assert not remote.snapshot(100.0 + REPORT_S).behind
    assert remote.snapshot(100.0 + UNSEEN_S + 0.01).behind
    # With a short offline_after_s, what the report cannot vouch for is not called a stall.
    machine = HealthMachine(Thresholds(offline_after_s=2.0, online_after_s=1.0), started=90.0)
    machine.update(remote.snapshot(100.0), 100.0)
    assert machine.verdict.state == "online"
    assert machine.update(remote.snapshot(101.7), 101.7) == []
    assert machine.verdict.state == "online"


def test_gray_from_the_luma_plane_is_swscales_gray_in_every_range() -> None:
    import av
    import numpy as np

    from agent.stream.frames import Frame

    rng = np.random.default_rng(1)
    bgr = rng.integers(0, 256, (360, 640, 3), dtype=np.uint8)
    bgr[:120] = 0  # a black band and a white one: the ends of the range
    bgr[-60:] = 255
    studio = av.VideoFrame.from_ndarray(bgr, format="bgr24").reformat(format="yuv420p")
    for frame in (
        studio,
        studio.reformat(format="yuvj420p"),
        studio.reformat(format="gray"),
        studio.reformat(format="nv12"),
    ):
        got = Frame(frame, 0.0, None, True).gray()
        want = frame.to_ndarray(format="gray")
        assert got.shape == (360, 640) and got.flags.c_contiguous, frame.format.name
        assert np.array_equal(got, want), frame.format.name
    small = Frame(studio, 0.0, None, True).gray(width=320)
    assert small.shape == (180, 320)
    # Averaged by area: each pixel is the mean of its 2x2 block, stretched to full range.
    full = Frame(studio, 0.0, None, True).gray().astype(np.float32)
    blocks = full.reshape(180, 2, 320, 2).mean(axis=(1, 3))
    assert np.abs(small.astype(np.float32) - blocks).max() <= 2.0
    # A format without a luma plane goes through swscale.
    rgb = av.VideoFrame.from_ndarray(bgr, format="bgr24")
    assert np.array_equal(Frame(rgb, 0.0, None, True).gray(), rgb.to_ndarray(format="gray"))


def test_reader_processes_by_default_one_per_60_streams_at_most_two_per_core(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from agent import shard

    monkeypatch.setattr(os, "cpu_count", lambda: 2)  # the os module agent.shard asks
    specs = [shard.ReaderSpec(key=f"c{i}", url=f"rtsp://127.0.0.1/{i}") for i in range(454)]
    assert len(shard.plan(specs[:22], None)) == 1
    assert len(shard.plan(specs[:100], None)) == 2
    groups = shard.plan(specs, None)
    assert len(groups) == 4 and sorted(len(g) for g in groups) == [113, 113, 114, 114]
    assert len(shard.plan(specs, 3)) == 3
