"""Synthetic street scenes for scenario tests, benchmarks and the demo.

Built from the sample images in ``shared/testdata`` (composited, shifted,
blurred, darkened, noised with numpy/OpenCV): a textured street, people and
cars crossing it, sensor noise, and the faults a camera suffers (frozen,
black, blurred, covered, moved) or ordinary events that must not alarm
(dusk, heavy noise, a vehicle close by, headlights, an exposure jump).
Every generator is deterministic for a given seed.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

Image = npt.NDArray[np.uint8]
DEFAULT_TESTDATA = Path(__file__).resolve().parents[2].parent / "shared" / "testdata"


class Street:
    """A street-like scene of ``width`` x ``height`` at ``fps``; frames are BGR uint8."""

    def __init__(
        self, testdata: Path = DEFAULT_TESTDATA, width: int = 320, height: int = 180, fps: int = 10, seed: int = 0
    ) -> None:
        self.w, self.h, self.fps = width, height, fps
        self.rng = np.random.default_rng(seed)
        self._noise: dict[float, npt.NDArray[np.int16]] = {}
        coffee = cv2.imread(str(testdata / "coffee.png"))
        chelsea = cv2.imread(str(testdata / "chelsea.png"))
        astronaut = cv2.imread(str(testdata / "astronaut.png"))
        if coffee is None or chelsea is None or astronaut is None:
            raise FileNotFoundError(f"sample images not found in {testdata}")
        left = cv2.resize(coffee, (width // 2, height))
        right = cv2.resize(chelsea, (width - width // 2, height))
        self.background = np.concatenate([left, right], axis=1)
        road = self.background[height * 2 // 3 :]
        self.background[height * 2 // 3 :] = (road * 0.6 + 40).astype(np.uint8)  # a darker road band
        ph = height // 3
        self.person: Image = np.asarray(cv2.resize(astronaut[30:512, 100:420], (ph * 320 // 482, ph)), dtype=np.uint8)
        self.car = self._car(width // 5, height // 8)

    def _car(self, w: int, h: int) -> Image:
        car = np.zeros((h, w, 3), np.uint8)
        car[:] = (40, 40, 170)
        car[h // 4 : h // 2, w // 5 : w * 4 // 5] = (200, 200, 210)  # windows
        return car

    @staticmethod
    def _paste(frame: Image, obj: Image, x: int, y: int) -> None:
        h, w = obj.shape[:2]
        x0, x1 = max(0, x), min(frame.shape[1], x + w)
        if x1 <= x0:
            return
        frame[y : y + h, x0:x1] = obj[:, x0 - x : x1 - x]

    def scene(self, t: float) -> Image:
        """The clean scene at time ``t`` (s): a person walking and two cars."""
        frame = self.background.copy()
        self._paste(frame, self.person, int((t * 25) % (self.w + 60)) - 60, self.h // 3)
        cy = self.h * 2 // 3 + 4
        self._paste(frame, self.car, int((t * 60) % (self.w + 200)) - 100, cy)
        self._paste(frame, self.car, self.w - int((t * 45 + 120) % (self.w + 200)), cy + self.h // 8)
        return frame

    def noisy(self, frame: Image, sigma: float = 2.0) -> Image:
        """Sensor noise: a bank of Gaussian fields, each used at a random offset (fast, never repeating)."""
        bank = self._noise.get(sigma)
        if bank is None:
            bank = self.rng.normal(0, sigma, (8, *frame.shape)).round().astype(np.int16)
            self._noise[sigma] = bank
        k = int(self.rng.integers(len(bank)))
        shift = (int(self.rng.integers(frame.shape[0])), int(self.rng.integers(frame.shape[1])))
        noise = np.roll(bank[k], shift, axis=(0, 1))
        return np.asarray((frame.astype(np.int16) + noise).clip(0, 255), dtype=np.uint8)

    def frames(self, seconds: float, start: float = 0.0) -> Iterator[tuple[float, Image]]:
        for i in range(int(seconds * self.fps)):
            t = start + i / self.fps
            yield t, self.scene(t)


# -- faults ---------------------------------------------------------------------


def black(street: Street) -> Image:
    return street.noisy(np.full((street.h, street.w, 3), 4, np.uint8), 1.5)


def blurred(street: Street, frame: Image) -> Image:
    return street.noisy(np.asarray(cv2.GaussianBlur(frame, (0, 0), 5), dtype=np.uint8), 1.0)


def covered(street: Street, frame: Image) -> Image:
    out = frame.copy()
    out[:, : street.w * 3 // 4] = (70, 80, 90)  # tape or a bag over three quarters of the view
    return street.noisy(out, 1.0)


def moved(street: Street, frame: Image) -> Image:
    """The camera was knocked: the view turned and tilted."""
    m = cv2.getRotationMatrix2D((street.w / 2, street.h / 2), 25, 1.6)
    return street.noisy(
        np.asarray(cv2.warpAffine(frame, m, (street.w, street.h), borderMode=cv2.BORDER_REFLECT), dtype=np.uint8)
    )


# -- ordinary events that must not alarm ----------------------------------------------


def dusk(street: Street, frame: Image, t: float, seconds: float) -> Image:
    """Light falls from day to night over ``seconds``; street lamps and headlights come on."""
    k = max(0.06, 1.0 - t / seconds)
    out = (frame.astype(np.float32) * k).astype(np.uint8)
    if k < 0.4:
        for x in (40, 160, 280):
            cv2.circle(out, (x * street.w // 320, street.h // 6), 4, (230, 240, 255), -1)
        cv2.rectangle(out, (100, street.h - 30), (110, street.h - 24), (220, 230, 255), -1)
    return street.noisy(out, 2.0 + 3.0 * (1 - k))  # darker means noisier


def big_vehicle(street: Street, frame: Image, t: float, at: float) -> Image:
    """A bus passing close: covers 40 % of the view for 3 s from ``at``."""
    out = frame.copy()
    if at <= t < at + 3:
        w = int(street.w * 0.4)
        x = int((t - at) / 3 * (street.w + w)) - w
        bus = np.zeros((street.h, w, 3), np.uint8)
        bus[:] = (30, 140, 200)
        bus[street.h // 5 : street.h // 2, 5:-5] = (180, 190, 200)  # windows
        Street._paste(out, bus, x, 0)
    return street.noisy(out)


def headlights(street: Street, frame: Image, t: float) -> Image:
    out = frame.copy()
    if int(t) % 7 == 0:
        cv2.circle(out, (street.w // 2, street.h * 3 // 4), street.h // 3, (255, 255, 255), -1)
    return street.noisy(out)


def exposure_jump(street: Street, frame: Image, t: float, at: float) -> Image:
    if t >= at:
        frame = np.asarray(cv2.convertScaleAbs(frame, alpha=1.4, beta=25), dtype=np.uint8)
    return street.noisy(frame)
