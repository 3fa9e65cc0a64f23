"""Image metrics on synthetic pictures built from the shared test images (pure, no I/O but reading them)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from numpy.typing import NDArray
from support import TESTDATA

from agent.health.image import looks_black, mask_from_polygons, measure, picture_change
from agent.health.image_health import ImageThresholds

Gray = NDArray[np.uint8]


@pytest.fixture(scope="module")
def scene() -> Gray:
    img = cv2.imread(str(TESTDATA / "coffee.png"), cv2.IMREAD_GRAYSCALE)
    assert img is not None, "../shared/testdata/coffee.png is missing"
    return np.asarray(cv2.resize(img, (320, 180), interpolation=cv2.INTER_AREA), np.uint8)


def night_with_lamps(rng: np.random.Generator) -> np.ndarray:
    img = rng.normal(8, 3, (180, 320)).clip(0, 255).astype(np.uint8)
    for x, y in [(40, 30), (160, 25), (280, 35)]:  # street lamps
        cv2.circle(img, (x, y), 4, 250, -1)
    cv2.rectangle(img, (100, 140), (112, 146), 230, -1)  # headlights
    cv2.rectangle(img, (130, 140), (142, 146), 230, -1)
    return img


def test_black_fires_on_a_covered_lens_and_dead_sensor() -> None:
    rng = np.random.default_rng(1)
    covered = rng.normal(6, 2, (180, 320)).clip(0, 255).astype(np.uint8)
    assert looks_black(measure(covered))
    assert looks_black(measure(np.zeros((180, 320), np.uint8)))


def test_black_does_not_fire_on_ordinary_scenes(scene: Gray) -> None:
    rng = np.random.default_rng(2)
    assert not looks_black(measure(scene))
    assert not looks_black(measure(night_with_lamps(rng)))
    dusk = (scene.astype(np.float32) * 0.15).astype(np.uint8)  # a dim dusk picture still has detail
    assert not looks_black(measure(dusk))


def test_masks_exclude_pixels() -> None:
    mask = mask_from_polygons((100, 200), [[(0.0, 0.0), (0.5, 0.0), (0.5, 1.0), (0.0, 1.0)]])
    assert 0.45 < mask.mean() < 0.55
    img = np.zeros((100, 200), np.uint8)
    img[:, :100] = 255  # a bright overlay in the masked half
    m = measure(img, mask)
    assert m.dark_fraction == 1.0 and m.valid_fraction == pytest.approx(1 - mask.mean())
    with pytest.raises(ValueError, match="at least 3 points"):
        mask_from_polygons((10, 10), [[(0, 0), (1, 1)]])


def test_sharpness_drops_with_blur(scene: Gray) -> None:
    sharp = measure(scene).sharpness
    blurred = measure(np.asarray(cv2.GaussianBlur(scene, (0, 0), 3), np.uint8)).sharpness
    assert blurred < sharp / 5


def test_picture_change_separates_frozen_from_sensor_noise(scene: Gray) -> None:
    rng = np.random.default_rng(3)

    def noisy() -> np.ndarray:
        return (scene.astype(np.float32) + rng.normal(0, 2, scene.shape)).clip(0, 255).astype(np.uint8)

    assert picture_change(scene, scene.copy()) == 0.0
    still_but_live = picture_change(noisy(), noisy())
    assert still_but_live > 1.0
    clock = mask_from_polygons(scene.shape, [[(0, 0), (0.3, 0), (0.3, 0.1), (0, 0.1)]])
    ticking = scene.copy()
    ticking[:15, :90] = 255 - ticking[:15, :90]  # an on-screen clock changes, nothing else
    assert picture_change(scene, ticking, clock) == 0.0


@pytest.mark.parametrize(
    "bad",
    [
        np.zeros((4, 4), np.uint8),  # tiny
        np.zeros((100, 100, 3), np.uint8),  # colour
        np.zeros((100, 100), np.uint16),  # 10-bit kept in 16 bits
    ],
)
def test_odd_pictures_are_refused_with_a_reason(bad: np.ndarray) -> None:
    with pytest.raises(ValueError):
        measure(bad)


def shifted(img: Gray, dx: int, dy: int) -> Gray:
    m = np.array([[1, 0, dx], [0, 1, dy]], dtype=np.float32)
    return np.asarray(cv2.warpAffine(img, m, (img.shape[1], img.shape[0]), borderMode=cv2.BORDER_REFLECT), np.uint8)


def test_covered_fires_on_tape_not_on_a_passing_truck_or_darkness(scene: Gray) -> None:
    from agent.health.image import cell_detail, covered_fraction

    base = cell_detail(scene)
    taped = scene.copy()
    taped[:, :240] = cv2.GaussianBlur(taped[:, :240], (0, 0), 12) // 2 + 60  # tape over 75 % of the view
    assert covered_fraction(cell_detail(taped), base) >= 0.6
    truck = scene.copy()
    rng = np.random.default_rng(4)
    truck[60:180, 0:130] = rng.integers(40, 200, (120, 130), dtype=np.uint8)  # a textured vehicle side
    assert covered_fraction(cell_detail(truck), base) < 0.6
    assert covered_fraction(cell_detail(scene), base) == 0.0


def test_moved_signature_tracks_the_view_not_the_light(scene: Gray) -> None:
    from agent.health.image import edge_signature, view_similarity

    ref = edge_signature(scene)
    brighter = np.asarray(cv2.convertScaleAbs(scene, alpha=1.6, beta=20), np.uint8)  # exposure change
    rng = np.random.default_rng(5)
    noisy = (scene.astype(np.float32) + rng.normal(0, 6, scene.shape)).clip(0, 255).astype(np.uint8)
    assert view_similarity(ref, edge_signature(brighter)) > 0.8
    assert view_similarity(ref, edge_signature(noisy)) > 0.8
    assert view_similarity(ref, edge_signature(shifted(scene, 60, 25))) < 0.5
    turned = np.asarray(cv2.rotate(scene, cv2.ROTATE_180), np.uint8)
    assert view_similarity(ref, edge_signature(turned)) < 0.5


def test_robust_baseline_learns_the_median_and_freezes_during_a_fault() -> None:
    from agent.health.image import RobustBaseline

    rng = np.random.default_rng(6)
    b = RobustBaseline(step=0.05, warmup=10)
    for v in rng.lognormal(np.log(100), 0.2, 300):
        b.update(float(v))
    assert b.ready and b.value is not None and 85 < b.value < 118
    for _ in range(5):  # a few outliers barely move it
        b.update(1e6)
    assert b.value < 150
    learned = b.value
    for _ in range(200):  # a long fault while frozen: nothing learned
        b.update(3.0, learn=False)
    assert b.value == learned


def test_a_ticking_clock_nobody_masked_does_not_hide_a_repeated_picture(scene: Gray) -> None:
    rng = np.random.default_rng(4)
    ticking = scene.copy()
    ticking[:15, :90] = 255 - ticking[:15, :90]  # the clock's strip changed, the view did not
    assert picture_change(scene, ticking) < 0.05
    noisy = (scene.astype(np.float32) + rng.normal(0, 2, scene.shape)).clip(0, 255).astype(np.uint8)
    assert picture_change(scene, noisy) > 1.0  # sensor noise is everywhere: it cannot hide in a few cells


def test_a_small_thing_moving_over_a_noiseless_view_is_not_a_repeat(scene: Gray) -> None:
    """A test pattern's ball (or a clean camera's only moving thing) in the middle of the view still counts:
    only the top and bottom rows, where clocks are burnt in, may be left out."""
    moved = scene.copy()
    h, w = scene.shape
    moved[h // 2 : h // 2 + 10, w // 2 : w // 2 + 10] = 255 - moved[h // 2 : h // 2 + 10, w // 2 : w // 2 + 10]
    assert picture_change(scene, moved) > ImageThresholds().frozen_max_change


def test_the_cheap_floor_never_exceeds_the_full_comparison() -> None:
    from agent.health.image import cell_means, picture_change_floor

    rng = np.random.default_rng(7)
    clock = mask_from_polygons((180, 320), [[(0.0, 0.0), (0.3, 0.0), (0.3, 0.1), (0.0, 0.1)]])
    for k in range(40):
        a = rng.integers(0, 256, (180, 320), dtype=np.uint8)
        b = np.clip(a.astype(int) + rng.integers(-k, k + 1, a.shape), 0, 255).astype(np.uint8)
        b[: 10 + k, : 40 + k] = 255 - b[: 10 + k, : 40 + k]  # a ticking clock, then a moving thing, growing
        for mask in (None, clock):
            floor = picture_change_floor(cell_means(a, mask), cell_means(b, mask))
            assert floor <= picture_change(a, b, mask) + 1e-4
    same = cell_means(a)
    assert picture_change_floor(same, same.copy()) == 0.0 == picture_change(a, a.copy())
