"""Per-camera image checks over synthetic sample sequences, with a driven clock (no sleeps)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from support import TESTDATA

from agent.health.image_health import ImageHealth, ImageThresholds

T = ImageThresholds(
    black_after_s=4,
    frozen_after_s=6,
    blurred_after_s=6,
    covered_after_s=4,
    moved_after_s=6,
    moved_accept_after_s=60,
    clear_after_s=4,
    reference_samples=5,
)
STEP = 2.0  # one sample every 2 s


@pytest.fixture(scope="module")
def street() -> np.ndarray:
    img = cv2.imread(str(TESTDATA / "astronaut.png"), cv2.IMREAD_GRAYSCALE)
    assert img is not None
    return cv2.resize(img, (320, 320), interpolation=cv2.INTER_AREA)[40:220]


def live(base: np.ndarray, rng: np.random.Generator, sigma: float = 2.0) -> np.ndarray:
    """The scene as a live camera sees it: sensor noise and a small moving object."""
    out = (base.astype(np.float32) + rng.normal(0, sigma, base.shape)).clip(0, 255).astype(np.uint8)
    x = int(rng.integers(0, base.shape[1] - 20))
    out[150:170, x : x + 20] = 200
    return out


def run(health: ImageHealth, frames: list[np.ndarray], start: float = 0.0) -> list[tuple[float, tuple[str, ...]]]:
    out = []
    for i, frame in enumerate(frames):
        now = start + i * STEP
        health.observe(frame, now)
        out.append((now, health.problems()))
    return out


def first_time(history: list[tuple[float, tuple[str, ...]]], problem: str) -> float | None:
    return next((t for t, p in history if problem in p), None)


FAULTS: dict[str, Callable[[np.ndarray, np.random.Generator], np.ndarray]] = {
    "black": lambda s, rng: rng.normal(5, 1.5, s.shape).clip(0, 255).astype(np.uint8),
    "blurred": lambda s, rng: live(cv2.GaussianBlur(s, (0, 0), 4), rng, 0.5),
    "covered": lambda s, rng: np.full_like(s, 90) + rng.normal(0, 0.5, s.shape).clip(-2, 2).astype(np.uint8),
    "moved": lambda s, rng: live(np.roll(s, (40, 90), axis=(0, 1))[::-1], rng),
}


@pytest.mark.parametrize("fault", [*FAULTS, "frozen"])
def test_each_fault_is_reported_within_its_debounce_and_clears(street: np.ndarray, fault: str) -> None:
    rng = np.random.default_rng(7)
    health = ImageHealth(T)
    healthy = [live(street, rng) for _ in range(20)]
    if fault == "frozen":
        stuck = live(street, rng)
        faulty = [stuck.copy() for _ in range(10)]
    else:
        faulty = [FAULTS[fault](street, rng) for _ in range(10)]
    recovered = [live(street, rng) for _ in range(8)]
    history = run(health, healthy + faulty + recovered)
    fault_start = 20 * STEP
    assert all(not p for _, p in history[:20]), history[:20]
    seen = first_time(history, fault)
    debounce = getattr(T, f"{fault}_after_s")
    assert seen is not None, history
    assert fault_start <= seen <= fault_start + debounce + 3, (seen, history)
    assert not history[-1][1], history[-8:]


def test_ordinary_scenes_stay_quiet(street: np.ndarray) -> None:
    rng = np.random.default_rng(8)
    health = ImageHealth(T)
    frames = [live(street, rng) for _ in range(10)]
    for i in range(30):  # dusk: a slow ramp down to a dim picture
        frames.append(live((street * (1 - 0.025 * i)).astype(np.uint8), rng))
    frames += [live(street, rng, sigma=8.0) for _ in range(10)]  # heavy sensor noise
    truck = street.copy()
    truck[40:180, 0:130] = rng.integers(30, 220, (140, 130), dtype=np.uint8)  # a vehicle close by, 1 sample
    frames += [live(street, rng), truck, live(street, rng)]
    frames += [live(cv2.convertScaleAbs(street, alpha=1.5, beta=30), rng) for _ in range(5)]  # exposure jump
    history = run(health, frames)
    assert all(not p for _, p in history), [h for h in history if h[1]]


def test_moved_is_accepted_after_a_long_time(street: np.ndarray) -> None:
    rng = np.random.default_rng(9)
    health = ImageHealth(T)
    turned = np.roll(street, (40, 90), axis=(0, 1))[::-1]
    history = run(health, [live(street, rng) for _ in range(10)] + [live(turned, rng) for _ in range(45)])
    assert first_time(history, "moved") is not None
    assert not history[-1][1] and health.accepted_views == 1


def test_masked_clock_does_not_hide_a_frozen_picture(street: np.ndarray) -> None:
    rng = np.random.default_rng(10)
    health = ImageHealth(T, masks=[[(0.0, 0.0), (0.4, 0.0), (0.4, 0.15), (0.0, 0.15)]])
    stuck = live(street, rng)
    frames = [live(street, rng) for _ in range(10)]
    for i in range(10):  # the picture is stuck but the on-screen clock ticks
        f = stuck.copy()
        cv2.putText(f, f"12:00:{i:02d}", (5, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.6, 255, 2)
        frames.append(f)
    history = run(health, frames)
    assert first_time(history, "frozen") is not None


def test_odd_samples_are_skipped_and_geometry_change_resets(street: np.ndarray) -> None:
    rng = np.random.default_rng(11)
    health = ImageHealth(T)
    run(health, [live(street, rng) for _ in range(5)])
    health.observe(np.zeros((3, 3), np.uint8), 20.0)
    health.observe(np.zeros((10, 10, 3), np.uint8), 22.0)
    assert health.skipped == 2
    small = cv2.resize(street, (160, 90))
    history = run(health, [live(small, rng) for _ in range(10)], start=30.0)
    assert all(not p for _, p in history)


def test_learned_baselines_survive_a_restart(street: np.ndarray, tmp_path: Path) -> None:
    rng = np.random.default_rng(12)
    first = ImageHealth(T)
    run(first, [live(street, rng) for _ in range(15)])
    state = first.state()
    assert state is not None
    arrays: dict[str, Any] = dict(state)
    np.savez(tmp_path / "cam.npz", **arrays)
    loaded = dict(np.load(tmp_path / "cam.npz"))
    second = ImageHealth(T)
    assert second.load_state(loaded)
    # The restarted camera already knows its view: a moved picture right away is reported
    # (a fresh one would learn the moved view as its reference).
    turned = np.roll(street, (40, 90), axis=(0, 1))[::-1]
    history = run(second, [live(turned, rng) for _ in range(6)], start=100.0)
    assert first_time(history, "moved") is not None
    assert not ImageHealth(T).load_state({"shape": np.zeros(0, np.float32)})


def test_image_watch_saves_and_restores_baselines(
    street: np.ndarray, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from agent.health.image_watch import ImageWatch

    rng = np.random.default_rng(13)
    state = tmp_path / "image" / "cam.npz"
    health = ImageHealth(T)
    run(health, [live(street, rng) for _ in range(15)])
    ImageWatch("cam", health, state).save()
    assert state.exists() and not list(state.parent.glob("*.tmp*"))
    restored = ImageHealth(T)
    ImageWatch("cam", restored, state)
    assert restored.state() is not None
    # A state dir that cannot be written: said once, nothing raised.
    blocked = ImageWatch("cam", health, Path("/proc/camwatch-nope/cam.npz"))
    blocked.save()
    blocked.save()
    assert sum("cannot save image baselines" in r.message for r in caplog.records) == 1


def test_detail_that_only_passes_through_is_not_the_cells_own() -> None:
    """A plain scene (a wall, night sky) with one textured object moving across it: never 'covered'."""
    rng = np.random.default_rng(14)
    health = ImageHealth(T)
    frames = []
    for i in range(40):
        f = np.full((180, 320), 30, np.uint8)
        x = (i * 37) % 280
        f[60:100, x : x + 40] = rng.integers(0, 255, (40, 40), dtype=np.uint8)
        cv2.putText(f, f"00:00:{i:02d}", (5, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.6, 255, 2)
        frames.append(live(f, rng))
    history = run(health, frames)
    assert all(not p for _, p in history), [h for h in history if h[1]]


def test_a_view_without_structure_has_no_reference_and_is_never_moved() -> None:
    """Snow (a test pattern of random noise, or a dead sensor's static) cannot be 'turned': moved is not judged."""
    rng = np.random.default_rng(4)
    health = ImageHealth()
    for i in range(60):
        health.observe(rng.integers(0, 255, (180, 320), dtype=np.uint8), i * 2.0)
    assert "moved" not in health.problems()
    assert all(r is None for r in health._references)
