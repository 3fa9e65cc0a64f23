"""Windows over small moving things: where they go, what comes back from them (pure logic)."""

from __future__ import annotations

import numpy as np

from agent.detect.crops import MAX_COVER, explained, from_window, merge, windows_for
from agent.detect.decoders import Detections
from agent.detect.motion import MotionGate

SIZE = (416, 320)


def dets(*rows: tuple[int, float, tuple[float, float, float, float]]) -> Detections:
    if not rows:
        return Detections.empty()
    return Detections(
        np.array([r[2] for r in rows], np.float32),
        np.array([r[1] for r in rows], np.float32),
        np.array([r[0] for r in rows], np.int64),
    )


def test_a_small_moving_thing_gets_a_window_of_the_models_size_centred_on_it() -> None:
    (w,) = windows_for([(0.50, 0.50, 0.52, 0.54)], 1280, 720, SIZE, limit=2)
    assert (w[2] - w[0], w[3] - w[1]) == SIZE
    assert abs((w[0] + w[2]) / 2 - 0.51 * 1280) <= 1 and abs((w[1] + w[3]) / 2 - 0.52 * 720) <= 1


def test_windows_stay_inside_the_frame() -> None:
    (w,) = windows_for([(0.99, 0.0, 1.0, 0.03)], 1280, 720, SIZE, limit=2)
    assert w == (1280 - 416, 0, 1280, 320)


def test_a_thing_big_enough_for_the_whole_frame_pass_gets_none() -> None:
    # 1280x720 into 416x320: scale 0.325; a region 0.2 of 720 high is 47 px there: seen well already
    assert windows_for([(0.4, 0.4, 0.45, 0.6)], 1280, 720, SIZE, limit=2) == []


def test_no_window_when_it_would_cover_most_of_the_frame() -> None:
    assert MAX_COVER * 480 * 360 < 416 * 320
    assert windows_for([(0.5, 0.5, 0.52, 0.54)], 480, 360, SIZE, limit=2) == []


def test_things_close_together_share_a_window_and_the_limit_holds() -> None:
    near = [(0.50, 0.50, 0.51, 0.52), (0.52, 0.50, 0.53, 0.52)]
    assert len(windows_for(near, 1280, 720, SIZE, limit=2)) == 1
    apart = [(0.05, 0.1, 0.06, 0.12), (0.9, 0.9, 0.91, 0.92), (0.5, 0.5, 0.51, 0.52)]
    assert len(windows_for(apart, 1280, 720, SIZE, limit=2)) == 2
    assert windows_for(apart, 1280, 720, SIZE, limit=0) == []


def test_boxes_found_in_a_window_map_back_and_boxes_it_cut_are_dropped() -> None:
    window = (400, 200, 816, 520)
    found = dets((0, 0.9, (0.25, 0.25, 0.5, 0.75)), (0, 0.8, (0.0, 0.3, 0.1, 0.6)))  # the second touches its left edge
    got = from_window(found, window, 1280, 720)
    assert len(got) == 1
    np.testing.assert_allclose(
        got.boxes[0], [(400 + 104) / 1280, (200 + 80) / 720, (400 + 208) / 1280, (200 + 240) / 720]
    )
    at_frame_edge = from_window(found, (0, 200, 416, 520), 1280, 720)  # the window's left edge is the frame's
    assert len(at_frame_edge) == 2


def test_the_same_person_found_twice_counts_once() -> None:
    whole = dets((0, 0.6, (0.40, 0.40, 0.45, 0.55)))
    window = dets((0, 0.9, (0.401, 0.402, 0.451, 0.551)), (0, 0.7, (0.7, 0.7, 0.72, 0.75)))
    got = merge([whole, window])
    assert len(got) == 2 and float(got.scores.max()) == np.float32(0.9)


def test_a_region_is_explained_by_a_box_over_its_middle() -> None:
    found = dets((0, 0.9, (0.4, 0.4, 0.5, 0.6)))
    assert explained((0.42, 0.45, 0.46, 0.55), found)
    assert not explained((0.7, 0.45, 0.74, 0.55), found)
    assert not explained((0.42, 0.45, 0.46, 0.55), Detections.empty())


def test_motion_regions_are_where_the_picture_changed() -> None:
    gate = MotionGate()
    still = np.full((90, 160), 100, np.uint8)
    gate.motion(still)
    gate.motion(still)
    moved = still.copy()
    moved[40:50, 100:104] = 200  # a small walker
    moved[5:25, 10:40] = 30  # a larger thing
    gate.motion(moved)
    regions = gate.regions(4)
    assert len(regions) == 2
    big, small = regions
    assert abs(big[0] - 10 / 160) < 0.02 and abs(big[3] - 25 / 90) < 0.03
    assert abs(small[0] - 100 / 160) < 0.02 and abs(small[1] - 40 / 90) < 0.03
    assert gate.regions(1) == [big]
