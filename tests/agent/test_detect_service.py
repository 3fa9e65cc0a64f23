"""The detection service: queue, gate, tracker, snapshots, rate limit, counters.

Pure logic runs with a scripted model; the last tests run the real model on
the walk-through scene in-process (no network), fast enough for every run.
"""

from __future__ import annotations

from typing import Any

import av
import cv2
import numpy as np
import pytest
from support import SHARED_MODELS

from agent.detect.decoders import Detections
from agent.detect.detector import OnnxDetector, find_model
from agent.detect.service import Budget, DetectionService, Emitted, Job, JobQueue, RateLimit
from agent.detect.snapshot import render_snapshot
from agent.detect.tracker import DEFAULT_PLAUSIBLE, Plausible
from agent.sim import scenes
from agent.stream.frames import Frame


class ScriptedModel:
    """Returns the boxes it is told to: pure logic tests of what follows a detection."""

    def __init__(self) -> None:
        self.classes = ["person", "bicycle", "car"]
        self.input_size = (352, 352)
        self.boxes: list[tuple[float, float, float, float]] = []
        self.fail = False
        self.calls = 0

    def detect(self, bgr: np.ndarray) -> Detections:
        self.calls += 1
        if self.fail:
            raise RuntimeError("model exploded")
        if not self.boxes:
            return Detections.empty()
        n = len(self.boxes)
        return Detections(np.array(self.boxes, np.float32), np.full(n, 0.9, np.float32), np.zeros(n, np.int64))


def frame_of(image: np.ndarray, t: float, fmt: str = "bgr24") -> Frame:
    return Frame(av.VideoFrame.from_ndarray(image, format=fmt), t, t, True)


def service(model: Any, **cam: Any) -> tuple[DetectionService, list[Emitted]]:
    out: list[Emitted] = []
    svc = DetectionService(model, ward="w", emit=out.append, wall_of=lambda m: 1_700_000_000 + m, queue_max=4)
    options = {
        "labels": ["person", "car"],
        "min_score": 0.5,
        "min_hits": 2,
        "lost_after_s": 1.0,
        "motion_min_area": 0.002,
        "max_events_per_min": 20,
        "now": 0.0,
        **cam,
    }
    svc.add_camera("c", **options)
    return svc, out


def drain(svc: DetectionService) -> None:
    while (job := svc.queue.get(0)) is not None:
        svc.process(job)


def moving_frames(n: int, start: float = 0.0) -> list[Frame]:
    rng = np.random.default_rng(0)
    base = rng.integers(40, 200, (180, 320, 3), dtype=np.uint8)
    frames = []
    for i in range(n):
        img = base.copy()
        img[60:140, 20 + i * 10 : 50 + i * 10] = 255  # something moves
        frames.append(frame_of(img, start + i * 0.5))
    return frames


def test_queue_keeps_each_cameras_newest_frame_in_turn_and_says_what_it_dropped() -> None:
    q = JobQueue(3)
    a, b, c, d = (object() for _ in range(4))
    image = np.zeros((1, 1, 3), np.uint8)
    a0, b0, a1, c0, d0 = (Job(cam, image, float(i)) for i, cam in enumerate((a, b, a, c, d)))  # type: ignore[arg-type]
    assert q.put(a0) is None and q.put(b0) is None
    assert q.put(a1) is a0  # a's newer frame replaces its older one, and a keeps its turn
    assert q.put(c0) is None and len(q) == 3
    assert q.put(d0) is a1  # a fourth camera: the one waiting longest goes
    assert [q.get(0), q.get(0), q.get(0), q.get(0)] == [b0, c0, d0, None]


def test_saturated_detector_keeps_the_newest_frame_per_camera_and_counts_the_rest() -> None:
    model = ScriptedModel()
    svc, _ = service(model)
    cam = svc.cameras["c"]
    frames = moving_frames(10)
    for f in frames:  # nobody takes jobs off the queue
        cam.on_frame(f)
    assert len(svc.queue) == 1
    assert cam.queued == 10 and cam.dropped == 9
    job = svc.queue.get(0)
    assert job is not None and job.mono == frames[-1].mono


def test_snapshot_goes_before_its_event_and_the_ended_event_points_back() -> None:
    model = ScriptedModel()
    svc, out = service(model)
    cam = svc.cameras["c"]
    for i, f in enumerate(moving_frames(3)):  # a person walking
        model.boxes = [(0.2 + i * 0.1, 0.2, 0.4 + i * 0.1, 0.8)]
        cam.on_frame(f)
        drain(svc)
    kinds = [(e.kind, e.payload["type"] if isinstance(e.payload, dict) else "jpeg") for e in out]
    assert kinds == [("snapshot", "jpeg"), ("detection", "detection_started")]
    snap, started = out
    assert snap.event_id == started.event_id and isinstance(started.payload, dict)
    assert started.payload["snapshot"] == started.event_id
    assert isinstance(snap.payload, bytes) and snap.payload[:2] == b"\xff\xd8"
    model.boxes = []
    cam.expire(10.0)  # the health loop ends tracks even when no frame comes
    ended = out[-1].payload
    assert isinstance(ended, dict) and ended["type"] == "detection_ended"
    assert ended["started_id"] == started.event_id and ended["snapshot"] == started.event_id
    assert cam.stats()["events"] == 2 and cam.stats()["tracks"] == 0


def test_rate_limit_suppresses_a_crowd_and_counts_it() -> None:
    model = ScriptedModel()
    svc, out = service(model, max_events_per_min=3, min_hits=1)
    cam = svc.cameras["c"]
    for step, f in enumerate(moving_frames(2)):  # eight people at once, walking
        model.boxes = [(i * 0.1, 0.1 + step * 0.1, i * 0.1 + 0.06, 0.5 + step * 0.1) for i in range(8)]
        cam.on_frame(f)
        drain(svc)
    started = [e for e in out if e.kind == "detection"]
    assert len(started) == 3 and cam.suppressed == 5
    model.boxes = []
    cam.expire(5.0)
    ended = [e for e in out if e.kind == "detection" and isinstance(e.payload, dict)][3:]
    assert len(ended) == 3  # only the tracks that were announced end


def test_rate_limit_refills() -> None:
    limit = RateLimit(2, now=0.0)
    assert limit.allow(0.0) and limit.allow(0.1) and not limit.allow(0.2)
    assert limit.allow(30.5)  # one token back after 30 s at 2 a minute


def test_still_scene_is_gated_and_a_track_keeps_the_detector_running() -> None:
    model = ScriptedModel()
    svc, _ = service(model)
    cam = svc.cameras["c"]
    still = np.random.default_rng(3).integers(40, 200, (180, 320, 3), dtype=np.uint8)
    for i in range(10):
        cam.on_frame(frame_of(still, i * 0.5))
        drain(svc)
    assert model.calls == 1 and cam.gated == 9  # the first frame is looked at once
    model.boxes = [(0.2, 0.2, 0.4, 0.8)]
    for f in moving_frames(2, start=5.0):
        cam.on_frame(f)
        drain(svc)
    calls = model.calls
    for i in range(3):  # still again, but a track is alive: keep looking
        cam.on_frame(frame_of(still, 6.0 + i * 0.2))
        drain(svc)
    assert model.calls == calls + 3


def test_a_still_thing_does_not_keep_the_detector_running() -> None:
    """Something found where it stands (a parked car, a post a small model takes for a person) holds the
    detector only while it is new: a street with parked cars costs nothing once they have been looked at
    (motion alone wakes the detector)."""
    model = ScriptedModel()
    svc, out = service(model, lost_after_s=3.0)
    cam = svc.cameras["c"]
    still = np.random.default_rng(3).integers(40, 200, (180, 320, 3), dtype=np.uint8)
    model.boxes = [(0.6, 0.3, 0.65, 0.7)]  # found in every picture the detector is given, never moving
    for i in range(40):  # 20 s at 2 fps
        cam.on_frame(frame_of(still, i * 0.5))
        drain(svc)
        svc.expire(i * 0.5)  # as the health loop does
    # Looked at for its first STILL_S (5 s at 2 fps: 10 pictures), then let go; it ended unseen, no event.
    assert model.calls == 10 and cam.gated == 30
    assert cam.tracker.tracks == [] and out == []


def test_an_event_whose_object_stops_is_watched_now_and_then_until_it_leaves() -> None:
    """Someone walks in and stops to talk: their event goes on (looked at every third of lost_after_s, not
    every frame) and ends when they leave, not when they stop."""
    model = ScriptedModel()
    svc, out = service(model, lost_after_s=3.0)
    cam = svc.cameras["c"]
    street = np.random.default_rng(3).integers(40, 200, (180, 320, 3), dtype=np.uint8)
    t = 0.0
    for i in range(4):  # walks in: the picture changes and the box moves
        model.boxes = [(0.1 + 0.1 * i, 0.2, 0.25 + 0.1 * i, 0.8)]
        still = street.copy()
        still[36:144, 32 + 32 * i : 80 + 32 * i] = 255
        cam.on_frame(frame_of(still, t))
        drain(svc)
        t += 0.5
    assert [e.payload["type"] for e in out if e.kind == "detection" and isinstance(e.payload, dict)] == [
        "detection_started"
    ]
    for _ in range(40):  # stands there 20 s (while the motion gate learns the street without the walker)
        cam.on_frame(frame_of(still, t))
        drain(svc)
        t += 0.5
    calls = model.calls
    for _ in range(20):  # 10 s more
        cam.on_frame(frame_of(still, t))
        drain(svc)
        t += 0.5
    # One picture a second (lost_after_s / 3), not all 20.
    assert model.calls - calls == 10 and len(cam.tracker.tracks) == 1
    assert [e.payload["type"] for e in out if e.kind == "detection" and isinstance(e.payload, dict)] == [
        "detection_started"
    ]
    model.boxes = []  # gone
    for _ in range(10):
        cam.on_frame(frame_of(street, t))
        drain(svc)
        svc.expire(t)
        t += 0.5
    kinds = [e.payload["type"] for e in out if e.kind == "detection" and isinstance(e.payload, dict)]
    assert kinds == ["detection_started", "detection_ended"]


def test_the_budget_lets_a_burst_through_then_holds_the_detector_to_its_cores() -> None:
    budget = Budget(0.5, now=0.0, burst_s=1.0)
    t, busy, rested = 0.0, 0.0, 0.0
    for _ in range(40):  # a quiet spell's second of CPU goes at once: 40 inferences of 25 ms, no rest
        rested += budget.spend(0.025, t)
        t += 0.025
    assert rested == 0.0
    while t < 60.0:  # then saturated for a minute: work, rest as told
        busy += 0.025
        t += 0.025
        rest = budget.spend(0.025, t)
        t += rest
    assert busy / (t - 1.0) == pytest.approx(0.5, abs=0.01)  # half a core (and what refilled in the burst)
    t += 10.0  # quiet again: the bucket refills, but to no more than the burst
    assert budget.spend(1.0, t) == 0.0 and budget.spend(0.1, t) == pytest.approx(0.2)


def test_odd_frames_are_converted_or_skipped_and_model_errors_counted() -> None:
    model = ScriptedModel()
    svc, _ = service(model)
    cam = svc.cameras["c"]
    gray = np.random.default_rng(1).integers(0, 255, (121, 161), dtype=np.uint8)  # odd size, grayscale
    cam.on_frame(frame_of(gray, 0.0, fmt="gray"))
    job = svc.queue.get(0)
    assert job is not None and job.bgr.shape[2] == 3
    cam.on_frame(frame_of(np.zeros((16, 16, 3), np.uint8), 0.5))  # too small for the model
    assert cam.skipped == 1
    model.fail = True
    svc.process(job)
    assert cam.errors == 1 and cam.inferences == 0


def test_snapshot_is_small_and_drawn() -> None:
    big = np.full((1080, 1920, 3), 90, np.uint8)
    jpeg = render_snapshot(big, (0.25, 0.25, 0.5, 0.75), "person 0.87")
    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None and image.shape[1] == 640 and image.shape[0] == 360
    edge = image[90, 160:320]  # the top edge of the box: drawn in amber, not the grey background
    assert (np.abs(edge.astype(int) - 90).sum(axis=1) > 60).mean() > 0.8
    assert big.max() == 90  # the caller's frame is left alone


# -- the real model, in-process --------------------------------------------------------


@pytest.fixture(scope="module")
def detector() -> OnnxDetector:
    manifest, model_dir = find_model("fastestdet", SHARED_MODELS)
    return OnnxDetector(manifest, model_dir, min_score=0.3)


def run_scene(detector: OnnxDetector, images: list[np.ndarray], fps: int, detect_fps: float = 2.0) -> list[Emitted]:
    out: list[Emitted] = []
    svc = DetectionService(detector, ward="w", emit=out.append, wall_of=lambda m: m)
    cam = svc.add_camera(
        "c",
        labels=["person", "bicycle", "car", "motorbike", "bus", "truck"],
        min_score=0.5,
        min_hits=2,
        lost_after_s=2.0,
        motion_min_area=0.002,
        max_events_per_min=20,
        now=0.0,
    )
    step = round(fps / detect_fps)
    for i in range(0, len(images), step):
        cam.on_frame(frame_of(images[i], i / fps))
        drain(svc)
        cam.expire(i / fps)
    cam.expire(len(images) / fps + 10)
    return out


def test_real_model_walker_makes_one_event_and_the_empty_street_none(detector: OnnxDetector) -> None:
    walk = scenes.WalkThrough(fps=10, length_s=12.0)
    out = run_scene(detector, list(walk.frames()), fps=10)
    events = [e.payload for e in out if e.kind == "detection" and isinstance(e.payload, dict)]
    assert [e["type"] for e in events] == ["detection_started", "detection_ended"], events
    assert events[0]["label"] == "person"
    sway = run_scene(detector, list(scenes.swaying_street(seconds=20)), fps=10)
    assert sway == []


def test_a_plausibility_rule_from_config_replaces_that_labels_default() -> None:
    """A ward whose cameras look down from high poles raises the person's minimum height: smaller boxes are
    not sightings; the other labels keep their defaults."""
    model = ScriptedModel()
    strict = Plausible(min_height=0.5, min_aspect=0.8, max_aspect=6.0)
    svc, out = service(model, plausible={"person": strict})
    cam = svc.cameras["c"]
    assert cam.tracker.plausible["person"] == strict and cam.tracker.plausible["car"] == DEFAULT_PLAUSIBLE["car"]
    for i, frame in enumerate(moving_frames(6)):
        x = 0.06 + i * 0.03
        model.boxes = [(x, 0.33, x + 0.1, 0.78)]  # 45 % of the picture high: under this ward's 50 %
        cam.on_frame(frame)
        drain(svc)
    assert not [e for e in out if e.kind == "detection"] and cam.tracker.implausible > 0


def test_a_backlog_sheds_the_closer_look_first() -> None:
    """While the detector keeps up, frames carry where small things moved; once cameras wait for it, they do
    not (and no decoded frame is kept for it: the frames here are no larger than what is queued)."""
    model = ScriptedModel()
    svc, _ = service(model, crops=2)
    options = {"labels": ["person"], "min_score": 0.5, "min_hits": 2, "lost_after_s": 1.0}
    cams = [svc.cameras["c"]] + [
        svc.add_camera(f"c{k}", motion_min_area=0.002, max_events_per_min=20, now=0.0, crops=2, **options)  # type: ignore[arg-type]
        for k in range(1, 7)
    ]
    rng = np.random.default_rng(2)
    base = rng.integers(40, 200, (180, 320, 3), dtype=np.uint8)
    for cam in cams:  # each camera learns its still view first (nobody waits: the detector takes it)
        cam.on_frame(frame_of(base, 0.0))
        drain(svc)
    jobs = []
    for k, cam in enumerate(cams):  # then something small moves in each, and nobody takes the frames
        img = base.copy()
        img[60:70, 20 + k * 30 : 26 + k * 30] = 255
        cam.on_frame(frame_of(img, 0.5))
        jobs.append(list(svc.queue._jobs.values())[-1])
    assert all(job.regions for job in jobs[:4])  # fewer than 4 cameras were waiting
    assert all(not job.regions for job in jobs[4:]) and all(job.frame is None for job in jobs)


def test_the_detector_takes_a_fresh_frame_and_drops_one_that_waited_too_long() -> None:
    """A picture that waited over MAX_WAIT_S would make a late event: dropped and counted, never looked at;
    the fresh one next to it is looked at."""
    import time

    from agent.detect.service import MAX_WAIT_S

    model = ScriptedModel()
    svc, _ = service(model)
    cam = svc.cameras["c"]
    image = np.zeros((180, 320, 3), np.uint8)
    svc.start()
    try:
        svc.submit(Job(cam, image, time.monotonic() - MAX_WAIT_S - 0.5))  # late
        deadline = time.monotonic() + 5.0
        while cam.dropped == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert cam.dropped == 1 and model.calls == 0
        svc.submit(Job(cam, image, time.monotonic()))  # fresh
        while model.calls == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert model.calls == 1 and cam.dropped == 1
    finally:
        svc.stop()
