"""Motion gating and the tracker: pure logic on synthetic frames and detections."""

from __future__ import annotations

import numpy as np

from agent.detect.decoders import Detections
from agent.detect.motion import MotionGate
from agent.detect.tracker import Tracker, point_in_polygon

LABELS = ["person", "bicycle", "car"]


def dets(*items: tuple[int, float, tuple[float, float, float, float]]) -> Detections:
    if not items:
        return Detections.empty()
    return Detections(
        np.array([b for _, _, b in items], np.float32),
        np.array([s for _, s, _ in items], np.float32),
        np.array([c for c, _, _ in items], np.int64),
    )


def test_motion_gate_ignores_noise_and_sees_a_walker() -> None:
    rng = np.random.default_rng(1)
    gate = MotionGate()
    base = rng.integers(60, 200, (90, 160), dtype=np.uint8)

    def noisy(img: np.ndarray) -> np.ndarray:
        return (img.astype(np.int16) + rng.normal(0, 3, img.shape)).clip(0, 255).astype(np.uint8)

    assert gate.should_detect(noisy(base))  # first frame: look once
    assert not any(gate.should_detect(noisy(base)) for _ in range(20))
    walker = base.copy()
    walker[30:70, 40:55] = 255
    assert gate.should_detect(noisy(walker))
    assert gate.should_detect(noisy(base), wanted=True)
    assert gate.gated == 20 and gate.frames == 23
    mask = np.zeros(base.shape, bool)
    mask[:, :80] = True  # the walker is in a masked area (a tree, a flag)
    masked_gate = MotionGate()
    masked_gate.should_detect(noisy(base), mask)
    assert not masked_gate.should_detect(noisy(walker), mask)


def test_one_walker_is_one_event() -> None:
    tr = Tracker(LABELS, min_hits=2, lost_after_s=2.0)
    events = []
    for i in range(10):  # a person walks right, one sample every 0.5 s
        x = 0.1 + i * 0.03
        events += tr.update(dets((0, 0.8, (x, 0.4, x + 0.1, 0.8))), i * 0.5)
    for i in range(10, 16):
        events += tr.update(dets(), i * 0.5)
    assert [e.type for e in events] == ["detection_started", "detection_ended"]
    assert events[0].track.label == "person" and events[0].track.id == events[1].track.id


def test_one_sighting_or_unwatched_classes_make_no_event() -> None:
    tr = Tracker(LABELS, watched=frozenset({"person"}), min_hits=2, lost_after_s=1.0)
    events = tr.update(dets((0, 0.9, (0.1, 0.1, 0.2, 0.3))), 0.0)
    events += tr.update(dets((2, 0.9, (0.5, 0.5, 0.7, 0.7))), 0.5)  # a car: not watched here
    events += tr.update(dets((2, 0.9, (0.5, 0.5, 0.7, 0.7))), 1.0)
    events += tr.update(dets(), 5.0)
    assert events == []


def test_zones_and_masks_use_the_bottom_centre() -> None:
    crossing = [(0.0, 0.5), (1.0, 0.5), (1.0, 1.0), (0.0, 1.0)]
    tr = Tracker(
        LABELS, min_hits=1, zones={"crossing": crossing}, masks=[[(0.0, 0.0), (0.3, 0.0), (0.3, 0.4), (0.0, 0.4)]]
    )
    up_high = tr.update(dets((0, 0.9, (0.6, 0.1, 0.7, 0.3))), 0.0)  # outside the zone: no event yet
    assert up_high == []
    in_zone = []
    for i, x in enumerate((0.6, 0.66, 0.72)):  # walking in the zone
        in_zone += tr.update(dets((0, 0.9, (x, 0.3, x + 0.1, 0.7))), 0.5 + i * 0.5)
    assert [e.track.zones for e in in_zone] == [("crossing",)]
    masked = Tracker(LABELS, min_hits=1, masks=[[(0.0, 0.0), (0.3, 0.0), (0.3, 0.4), (0.0, 0.4)]])
    assert masked.update(dets((0, 0.9, (0.05, 0.1, 0.15, 0.3))), 0.0) == []
    assert point_in_polygon(0.5, 0.75, crossing) and not point_in_polygon(0.5, 0.25, crossing)


def test_best_sighting_is_kept() -> None:
    tr = Tracker(LABELS, min_hits=1)
    tr.update(dets((0, 0.6, (0.1, 0.1, 0.3, 0.5))), 0.0)
    tr.update(dets((0, 0.9, (0.12, 0.1, 0.32, 0.5))), 0.5)
    tr.update(dets((0, 0.7, (0.14, 0.1, 0.34, 0.5))), 1.0)
    (track,) = tr.tracks
    assert track.best_score == np.float32(0.9) or abs(track.best_score - 0.9) < 1e-6
    assert track.best_at == 0.5


def test_a_fast_walker_near_the_camera_stays_one_track() -> None:
    # 2 fps, a person 0.18 wide moving 0.11 per sample: consecutive boxes overlap by IoU < 0.3.
    tr = Tracker(LABELS, min_hits=2, lost_after_s=2.0)
    events = []
    for i in range(8):
        x = i * 0.11
        events += tr.update(dets((0, 0.8, (x, 0.2, x + 0.18, 0.7))), i * 0.5)
    events += tr.update(dets(), 10.0)
    assert [e.type for e in events] == ["detection_started", "detection_ended"]


def test_two_people_side_by_side_are_two_tracks() -> None:
    tr = Tracker(LABELS, min_hits=2)
    events = []
    for i in range(3):  # walking towards each other
        a, b = 0.1 + i * 0.1, 0.6 - i * 0.1
        events += tr.update(dets((0, 0.8, (a, 0.2, a + 0.15, 0.8)), (0, 0.75, (b, 0.2, b + 0.15, 0.8))), i * 0.5)
    assert [e.type for e in events] == ["detection_started", "detection_started"]
    assert events[0].track.id != events[1].track.id


def test_a_part_inside_a_person_is_not_a_second_person() -> None:
    tr = Tracker(LABELS, min_hits=1)
    events = []
    for i in range(2):  # walking: a person, and a weaker box of its torso inside
        dx = i * 0.2
        person, torso = (0.2 + dx, 0.1, 0.4 + dx, 0.8), (0.28 + dx, 0.3, 0.38 + dx, 0.7)
        events += tr.update(dets((0, 0.85, person), (0, 0.55, torso)), i * 0.5)
    assert len(events) == 1 and len(tr.tracks) == 1


def test_weak_sightings_keep_a_track_but_do_not_start_one() -> None:
    tr = Tracker(LABELS, min_hits=3, min_score=0.5, lost_after_s=1.0)
    assert tr.update(dets((0, 0.4, (0.1, 0.1, 0.3, 0.6))), 0.0) == []  # weak: no track
    assert tr.tracks == []
    tr.update(dets((0, 0.7, (0.1, 0.1, 0.3, 0.6))), 0.5)
    tr.update(dets((0, 0.35, (0.15, 0.1, 0.35, 0.6))), 1.2)  # half hidden: keeps it alive, no hit
    tr.update(dets((0, 0.7, (0.2, 0.1, 0.4, 0.6))), 2.0)
    events = tr.update(dets((0, 0.7, (0.25, 0.1, 0.45, 0.6))), 2.5)
    assert [e.type for e in events] == ["detection_started"] and events[0].track.hits == 3


def test_a_still_object_never_starts_an_event_but_a_person_who_stops_did() -> None:
    """A tripod or a cone that a small model calls a person does not move; a person who stops was seen walking."""
    tr = Tracker(LABELS, min_hits=2, lost_after_s=2.0)
    events = []
    for i in range(20):  # a "person" that never moves, seen strongly in every sample
        events += tr.update(dets((0, 0.9, (0.5 + 0.003 * (i % 2), 0.3, 0.55, 0.5))), i * 0.5)
    assert events == []
    for i in range(6):  # a person walks in, then stands still: one event, and it stays one
        x = 0.1 + min(i, 3) * 0.05
        events += tr.update(dets((0, 0.8, (x, 0.4, x + 0.1, 0.8))), 10 + i * 0.5)
    assert [e.type for e in events] == ["detection_started"]


def test_one_strong_frame_is_not_a_person_and_implausible_boxes_do_not_count() -> None:
    tr = Tracker(LABELS, min_hits=2, lost_after_s=2.0)
    events = []
    for i, score in enumerate((0.95, 0.3, 0.32, 0.31, 0.5)):  # one lucky frame, then weak: median < 0.5
        x = 0.1 + i * 0.05
        events += tr.update(dets((0, score, (x, 0.4, x + 0.1, 0.8))), i * 0.5)
    assert events == []
    flat = Tracker(LABELS, min_hits=1)
    for i in range(4):  # a "person" box lying flat (wider than tall), and one 1 % of the picture high
        x = 0.1 + i * 0.1
        flat.update(dets((0, 0.9, (x, 0.5, x + 0.4, 0.6)), (0, 0.9, (x, 0.2, x + 0.004, 0.21))), i * 0.5)
    assert flat.tracks == [] and flat.implausible == 8


def test_a_crowd_is_bounded() -> None:
    tr = Tracker(LABELS, min_hits=1, max_tracks=5)
    crowd = [(0, 0.8, (i * 0.09, 0.1, i * 0.09 + 0.05, 0.3)) for i in range(10)]
    tr.update(dets(*crowd), 0.0)
    assert len(tr.tracks) == 5 and tr.untracked == 5


def _picture(people: list[tuple[tuple[float, float, float, float], tuple[int, int, int]]]) -> np.ndarray:
    """A grey 640x360 picture with each person a patch of their clothes' colour (BGR) at their box."""
    img = np.full((360, 640, 3), 128, np.uint8)
    for (x1, y1, x2, y2), colour in people:
        img[int(y1 * 360) : int(y2 * 360), int(x1 * 640) : int(x2 * 640)] = colour
    return img


def test_two_walkers_who_meet_and_turn_back_keep_their_own_tracks_by_their_colours() -> None:
    """A person in red walks right, one in blue walks left; they meet and each turns back. Where each was
    heading, the other now is: the predictions alone would swap them; their colours keep each on its own."""
    red, blue = (30, 30, 200), (200, 60, 30)

    def walk(images: bool) -> tuple[int, list[float]]:
        tr = Tracker(LABELS, min_hits=2, lost_after_s=3.0, picture_aspect=16 / 9)
        started = 0
        for i in range(16):
            step = i if i <= 8 else 16 - i  # they meet at i = 8, then go back the way they came
            a = (0.28 + 0.025 * step, 0.4, 0.31 + 0.025 * step, 0.6)
            b = (0.72 - 0.025 * step, 0.4, 0.75 - 0.025 * step, 0.6)
            seen = [(a, red), (b, blue)]
            events = tr.update(dets(*[(0, 0.9, box) for box, _ in seen]), i * 0.5, _picture(seen) if images else None)
            started += sum(1 for e in events if e.type == "detection_started")
        return started, [t.first_box[0] - t.box[0] for t in tr.tracks]  # where each began, less where it is

    started, drift = walk(images=True)
    assert started == 2
    assert all(abs(d) < 0.05 for d in drift), drift  # each track is back where its person began
    _, blind = walk(images=False)
    assert any(abs(d) > 0.3 for d in blind), blind  # without colours they swap (what this guards against)


def test_a_walker_hidden_behind_a_post_for_two_seconds_is_one_event() -> None:
    tr = Tracker(LABELS, min_hits=2, lost_after_s=3.0, picture_aspect=16 / 9)
    events = []
    for i in range(20):
        if 6 <= i < 10:  # behind the post: not detected for 2 s, still walking
            events += tr.update(dets(), i * 0.5)
            continue
        x = 0.1 + 0.02 * i
        events += tr.update(dets((0, 0.8, (x, 0.4, x + 0.04, 0.65))), i * 0.5)
    events += tr.expire(100.0)
    assert [e.type for e in events] == ["detection_started", "detection_ended"]


def test_someone_walking_in_at_the_edge_has_moved_by_their_inner_side() -> None:
    """Entering from the left, the box is cut by the picture's edge: its middle moves half as fast as the
    person. Their inner side shows how far they came: the event starts at the second sighting."""
    tr = Tracker(LABELS, min_hits=2, lost_after_s=3.0, picture_aspect=16 / 9)
    first = tr.update(dets((0, 0.8, (0.0, 0.2, 0.10, 0.7))), 0.0)
    second = tr.update(dets((0, 0.8, (0.0, 0.2, 0.19, 0.7))), 0.5)  # inner side 0.09 of the width on
    assert first == [] and [e.type for e in second] == ["detection_started"]
    still = Tracker(LABELS, min_hits=2, lost_after_s=3.0, picture_aspect=16 / 9)
    for i in range(6):  # something standing at the edge (a post half in view) never starts one
        assert still.update(dets((0, 0.8, (0.0, 0.2, 0.05 + 0.003 * (i % 2), 0.7))), i * 0.5) == []
