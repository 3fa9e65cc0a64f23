"""The camera reader against real streams: sampling, file sources, failure texts."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from support import CAM_PASSWORD, wait_until

from agent.errors import CameraAuthFailed, CameraError
from agent.sim.clips import write_test_clip
from agent.sim.rtsp import RtspServer
from agent.stream.frames import Frame, FrameSampler, Tap
from agent.stream.reader import CameraReader
from agent.stream.source import open_stream

pytestmark = pytest.mark.integration


def run_reader(url: str, seconds: float, interval_s: float) -> tuple[list[Frame], CameraReader]:
    frames: list[Frame] = []
    reader = CameraReader("t", url, taps=[Tap(FrameSampler(interval_s=interval_s), frames.append)])
    reader.start()
    try:
        time.sleep(seconds)
    finally:
        reader.stop()
        assert reader.join(5)
    return frames, reader


def test_keyframe_sampling_decodes_one_frame_per_gop(rtsp_factory: Callable[..., RtspServer]) -> None:
    server = rtsp_factory({"live": "video:320x240@25,gop=25"})  # GOP 1 s
    frames, reader = run_reader(server.url("live"), 6.0, interval_s=2.0)
    snap = reader.snapshot()
    assert snap.packets > 100
    assert snap.frames_decoded == len(frames)  # nothing decoded that was not handed over
    assert 2 <= len(frames) <= 4
    assert all(f.keyframe for f in frames)
    gaps = [b.mono - a.mono for a, b in itertools.pairwise(frames)]
    assert all(g >= 1.5 for g in gaps), gaps
    img = frames[0].bgr()
    assert img.shape == (240, 320, 3)
    assert frames[0].gray(width=160).shape == (120, 160)


def test_long_gop_falls_back_to_decoding_at_interval(rtsp_factory: Callable[..., RtspServer]) -> None:
    server = rtsp_factory({"live": "video:320x240@25,gop=100"})  # GOP 4 s, wanted every 1 s
    frames, reader = run_reader(server.url("live"), 12.0, interval_s=1.0)
    snap = reader.snapshot()
    assert snap.gop_s == pytest.approx(4.0, abs=0.1)
    late = [f for f in frames if f.mono - frames[0].mono > 4.5]  # once the long GOP is known
    assert any(not f.keyframe for f in late)
    gaps = [b.mono - a.mono for a, b in itertools.pairwise(late)]
    assert gaps and all(0.8 <= g <= 1.5 for g in gaps), gaps


def test_file_source_plays_at_its_own_pace_and_loops(tmp_path: Path) -> None:
    clip = write_test_clip(tmp_path / "c.mp4", seconds=2, width=160, height=120, fps=10, gop=10)
    frames, reader = run_reader(clip.as_uri(), 4.5, interval_s=0.5)
    snap = reader.snapshot()
    assert 30 <= snap.frames <= 55  # ~10 fps in real time, across a loop
    assert snap.failure is None
    assert len(frames) >= 4


def test_failure_texts_never_carry_the_password(shared_rtsp: RtspServer) -> None:
    with pytest.raises(CameraAuthFailed) as info:
        open_stream(shared_rtsp.url("cam1", password=CAM_PASSWORD + "-wrong"), "tcp", 3, 2)
    err: CameraError = info.value
    assert err.reason == "auth_failed"
    assert CAM_PASSWORD not in str(err) and CAM_PASSWORD not in repr(err)
    assert "rtsp://admin:***@127.0.0.1" in str(err)


def test_reader_stops_promptly_on_a_stalled_stream(rtsp_factory: Callable[..., RtspServer]) -> None:
    server = rtsp_factory()
    reader = CameraReader("t", server.url("live"), read_timeout_s=1.0)
    reader.start()
    assert wait_until(lambda: reader.snapshot().packets > 10, 10)
    server.pause()
    time.sleep(0.5)
    reader.stop()
    assert reader.join(4.0), "a blocked read must give up within ~2x read_timeout"


def test_clip_mount_plays_a_scripted_camera(tmp_path: Path, rtsp_factory: Callable[..., RtspServer]) -> None:
    """A scripted camera (1 s of street, 1 s of black, looping) read back through RTSP, judged by the image metrics."""
    import numpy as np

    from agent.health.image import looks_black, measure
    from agent.sim.clips import synthetic_frame, write_au_clip

    frames = [synthetic_frame(i, 320, 240, 25) for i in range(25)] + [np.zeros((240, 320, 3), np.uint8)] * 25
    clip = write_au_clip(tmp_path / "scripted.au", frames, fps=25, gop=25)
    server = rtsp_factory({"cam": f"clip:{clip},fps=25"})
    samples, reader = run_reader(server.url("cam"), 6.0, interval_s=1.0)
    snap = reader.snapshot()
    assert 90 <= snap.frames <= 160  # ~25 fps in real time for what was left of the 6 s after connecting
    assert snap.gop_s == pytest.approx(1.0, abs=0.05)
    verdicts = [looks_black(measure(f.gray(width=320))) for f in samples]
    assert True in verdicts and False in verdicts, verdicts


def test_a_camera_that_comes_back_is_read_again_within_seconds_whatever_the_backoff(
    rtsp_factory: Callable[..., RtspServer],
) -> None:
    """The backoff (here at least 10 s) does not decide when a returning camera is seen: its port answering does."""
    server = rtsp_factory()
    reader = CameraReader("t", server.url("live"), backoff_initial_s=20.0, backoff_max_s=30.0)
    reader.start()
    try:
        assert wait_until(lambda: reader.snapshot().packets > 10, 10)
        server.kill()
        assert wait_until(lambda: reader.snapshot().failure is not None, 10)
        time.sleep(3.0)  # dead for a while: the reader is inside a 10-20 s backoff
        assert reader.probes >= 1
        before = reader.snapshot().packets
        back = time.monotonic()
        server.start()
        assert wait_until(lambda: reader.snapshot().packets > before, 8)
        assert time.monotonic() - back < 4.0  # server start (~1.2 s to first frame) + at most one probe interval
    finally:
        reader.stop()
        assert reader.join(5)
