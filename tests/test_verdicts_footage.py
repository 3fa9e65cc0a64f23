"""Image verdicts on real surveillance footage (OpenCV's vtest.avi from Debian's opencv-doc), encoded as a camera
encodes (libx264, constant bitrate, GOP 2 s) and sampled as the agent samples (one keyframe every 2 s).

Each fault is applied to the real footage and must be named right within its debounce + 5 s; the healthy
footage and a quiet street after a busy one are controls that must stay silent for 3 minutes.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np
import pytest

from agent.health.image_health import ImageHealth, ImageThresholds
from agent.sim import footage, scenes
from agent.sim.footage import Frame

FPS = 10
GOP = 20  # 2 s: one sample per 2 s, as the agent's default image_check_interval_s
SAMPLE_S = GOP / FPS
BUSY_S = 60  # healthy footage first, then the fault
T = ImageThresholds()
AFTER = {"black": T.black_after_s, "frozen": T.frozen_after_s, "covered": T.covered_after_s, "moved": T.moved_after_s}


@pytest.fixture(scope="module")
def frames() -> list[Frame]:
    missing = footage.footage_missing()
    if missing:
        pytest.fail(f"{missing}; run the README's test command (it installs it)")
    return footage.real_frames(480, 360)


def judge(clip: Iterable[Frame], kbps: int | None = 600) -> dict[str, float]:
    """When each problem was first reported (seconds from the clip's start), sampling as the agent does."""
    health = ImageHealth()
    first: dict[str, float] = {}
    for i, sample in enumerate(footage.encode_decode_keyframes(clip, fps=FPS, gop=GOP, kbps=kbps)):
        now = i * SAMPLE_S
        health.observe(sample, now)
        for problem in health.problems():
            first.setdefault(problem, now)
    return first


def seconds(clip: Iterator[Frame], n: float) -> Iterator[Frame]:
    for _, frame in zip(range(int(n * FPS)), clip, strict=False):
        yield frame


@pytest.mark.parametrize("kbps", [600, None], ids=["cbr", "crf"])
def test_frozen_from_the_start_is_reported(frames: list[Frame], kbps: int | None) -> None:
    """The encoder is stuck when the agent starts: the same picture for ever, re-quantised by the rate control."""
    got = judge([frames[0]] * (60 * FPS), kbps)
    assert set(got) == {"frozen"}, got
    assert got["frozen"] <= AFTER["frozen"] + 5


def test_real_footage_for_three_minutes_raises_nothing(frames: list[Frame]) -> None:
    assert judge(footage.looped(frames, 180 * FPS)) == {}


def test_a_quiet_street_after_a_busy_one_is_not_frozen(frames: list[Frame]) -> None:
    """People walk by for a minute, then the view is empty for two, with only the sensor's noise."""
    rng = np.random.default_rng(7)
    empty = footage.empty_view(frames)
    quiet = (footage.sensor_noise(empty, rng) for _ in range(120 * FPS))
    assert judge([*seconds(footage.looped(frames, 10**6), BUSY_S), *quiet]) == {}


def test_covered_with_live_edges_is_covered_not_frozen(frames: list[Frame]) -> None:
    clip = footage.looped(frames, (BUSY_S + 60) * FPS)
    got = judge(footage.covered(f) if i >= BUSY_S * FPS else f for i, f in enumerate(clip))
    assert "covered" in got and "frozen" not in got, got
    assert BUSY_S <= got["covered"] <= BUSY_S + AFTER["covered"] + 5


@pytest.mark.parametrize(("shift", "tilt", "zoom"), [(0.35, 4.0, 1.0), (0.3, -3.0, 1.0), (0.0, 2.0, 1.4)])
def test_a_turned_camera_is_moved(frames: list[Frame], shift: float, tilt: float, zoom: float) -> None:
    clip = footage.looped(frames, (BUSY_S + 60) * FPS)
    got = judge(footage.turned(f, shift, tilt, zoom) if i >= BUSY_S * FPS else f for i, f in enumerate(clip))
    assert "moved" in got, got
    assert BUSY_S <= got["moved"] <= BUSY_S + AFTER["moved"] + 5
    assert "frozen" not in got


def test_a_turned_camera_on_our_own_street_scene_is_moved() -> None:
    street = scenes.Street(seed=3)
    clip = [
        footage.turned(street.noisy(frame), 0.35, 4.0) if t >= BUSY_S else street.noisy(frame)
        for t, frame in street.frames(BUSY_S + 40)
    ]
    got = judge(clip)
    assert "moved" in got, got
    assert BUSY_S <= got["moved"] <= BUSY_S + AFTER["moved"] + 5


# -- detection on real footage ---------------------------------------------------------------------


def tracked_events(detector: object, clip: Iterable[Frame], detect_fps: float = 2.0, fps: float = FPS) -> list[str]:
    """Run the real model and the tracker over a clip (at ``fps``) at ``detect_fps``; the person events started."""
    from agent.detect.detector import OnnxDetector
    from agent.detect.tracker import Tracker

    assert isinstance(detector, OnnxDetector)
    tracker = Tracker(detector.classes, watched=frozenset({"person"}), min_hits=2, lost_after_s=3.0)
    started = []
    step = round(fps / detect_fps)
    for i, frame in enumerate(clip):
        if i % step:
            continue
        tracker.picture_aspect = frame.shape[1] / frame.shape[0]
        for event in tracker.update(detector.detect(frame), i / fps):
            if event.type == "detection_started":
                started.append(event.track.label)
    return started


@pytest.fixture(scope="module", params=["fastestdet", "yolox_nano"])
def detector(request: pytest.FixtureRequest) -> object:
    from agent.detect.detector import OnnxDetector, find_model

    manifest, weights = find_model(request.param)
    return OnnxDetector(manifest, weights, min_score=0.5)


def test_no_phantom_people_on_an_empty_real_view(frames: list[Frame], detector: object) -> None:
    """The real view with nobody in it (its median) and live sensor noise, the detector run on every sample:
    the tripod, the cones and the sign post a small model scores as people never start an event."""
    rng = np.random.default_rng(11)
    empty = footage.empty_view(footage.real_frames(768, 576))
    samples = (footage.sensor_noise(empty, rng) for _ in range(180 * 2))  # 3 minutes at 2 detections a second
    assert tracked_events(detector, samples, detect_fps=2, fps=2) == []


def test_people_walking_in_real_footage_start_events(detector: object) -> None:
    started = tracked_events(detector, footage.real_frames(768, 576))
    assert len(started) >= 5, started  # several people cross the hall in the 80 s


def test_a_bus_passing_and_dusk_to_night_are_not_problems(frames: list[Frame]) -> None:
    """Controls for moved and covered: a bus-sized block crossing 40 % of the real view, then dusk to night."""
    rng = np.random.default_rng(3)
    h, w = frames[0].shape[:2]
    bus = np.ascontiguousarray(np.flipud(frames[400][: int(h * 0.63), : int(w * 0.63)]))  # real texture, 40 %
    clip = []
    for i, frame in enumerate(footage.looped(frames, 150 * FPS)):
        t = i / FPS
        out = frame
        if BUSY_S <= t < BUSY_S + 8:  # it crosses the view in 8 s
            x = int((t - BUSY_S) / 8 * (w + bus.shape[1])) - bus.shape[1]
            out = frame.copy()
            lo, hi = max(0, x), min(w, x + bus.shape[1])
            if hi > lo:
                out[h - bus.shape[0] :, lo:hi] = bus[:, lo - x : hi - x]
        elif t >= BUSY_S + 30:  # dusk over a minute, then night with the sensor's noise
            light = max(0.3, 1 - 0.7 * (t - BUSY_S - 30) / 60)
            out = footage.sensor_noise((frame * light).astype(np.uint8), rng, 1.0 + 2.0 * (1 - light))
        clip.append(out)
    assert judge(clip) == {}
