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


class SensorNoise:
    """Sensor noise: a bank of Gaussian fields, each used at a random offset (fast, never repeating)."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self._banks: dict[tuple[float, tuple[int, ...]], npt.NDArray[np.int16]] = {}

    def noisy(self, frame: Image, sigma: float = 2.0) -> Image:
        bank = self._banks.get((sigma, frame.shape))
        if bank is None:
            bank = self.rng.normal(0, sigma, (8, *frame.shape)).round().astype(np.int16)
            self._banks[(sigma, frame.shape)] = bank
        k = int(self.rng.integers(len(bank)))
        shift = (int(self.rng.integers(frame.shape[0])), int(self.rng.integers(frame.shape[1])))
        noise = np.roll(bank[k], shift, axis=(0, 1))
        return np.asarray((frame.astype(np.int16) + noise).clip(0, 255), dtype=np.uint8)


class Street:
    """A street-like scene of ``width`` x ``height`` at ``fps``; frames are BGR uint8."""

    def __init__(
        self, testdata: Path = DEFAULT_TESTDATA, width: int = 320, height: int = 180, fps: int = 10, seed: int = 0
    ) -> None:
        self.w, self.h, self.fps = width, height, fps
        self.rng = np.random.default_rng(seed)
        self._sensor = SensorNoise(self.rng)
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
        return self._sensor.noisy(frame, sigma)

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


# -- detection scenes ----------------------------------------------------------------


def street_background(width: int, height: int, seed: int = 0) -> Image:
    """A street drawn from primitives: sky, house fronts with windows, pavement, a road with markings.

    Unlike the photo collage of :class:`Street` it holds nothing a COCO detector
    takes for a person or a vehicle, so detection tests know what is in the view.
    """
    rng = np.random.default_rng(seed)
    img = np.zeros((height, width, 3), np.uint8)
    horizon = int(height * 0.55)
    k = np.linspace(0, 1, horizon)[:, None]
    img[:horizon] = np.stack([200 - 40 * k, 170 - 20 * k, 140 - 10 * k], axis=-1).astype(np.uint8)
    x = 0
    while x < width:
        bw = int(rng.integers(width // 10, width // 4))
        bh = int(rng.integers(height // 5, horizon - 5))
        colour = tuple(int(c) for c in rng.integers(70, 190, 3))
        cv2.rectangle(img, (x, horizon - bh), (x + bw, horizon), colour, -1)
        for wy in range(horizon - bh + 8, horizon - 12, 18):
            for wx in range(x + 6, x + bw - 10, 16):
                lit = rng.random() >= 0.7
                cv2.rectangle(img, (wx, wy), (wx + 8, wy + 10), (150, 200, 220) if lit else (60, 60, 50), -1)
        x += bw + int(rng.integers(0, 6))
    img[horizon : int(height * 0.68)] = (150, 155, 160)  # pavement
    img[int(height * 0.68) :] = (85, 85, 90)  # road
    for lx in range(0, width, max(1, width // 8)):
        cv2.rectangle(img, (lx, int(height * 0.84)), (lx + width // 16, int(height * 0.86)), (220, 220, 220), -1)
    texture = rng.normal(0, 6, (height, width, 1))
    return np.asarray(np.clip(img + texture, 0, 255), dtype=np.uint8)


def person_cutout(testdata: Path, height: int) -> Image:
    """The astronaut (a person, upper body) cut from astronaut.png, ``height`` px tall."""
    astronaut = cv2.imread(str(testdata / "astronaut.png"))
    if astronaut is None:
        raise FileNotFoundError(f"astronaut.png not found in {testdata}")
    crop = astronaut[20:512, 90:430]
    return np.asarray(cv2.resize(crop, (round(height * crop.shape[1] / crop.shape[0]), height)), dtype=np.uint8)


STAMP_BITS = 12
STAMP_CELL = 8  # px: the frame-number stamp is a row of 12 black/white 8x8 squares at the top left


def stamp(frame: Image, number: int) -> None:
    """Paint ``number`` (mod 4096) as squares at the top left: a benchmark reads it back after decoding."""
    for bit in range(STAMP_BITS):
        on = (number >> bit) & 1
        x = bit * STAMP_CELL
        frame[0:STAMP_CELL, x : x + STAMP_CELL] = 255 if on else 0


def read_stamp(gray: npt.NDArray[np.uint8]) -> int:
    """The number :func:`stamp` painted (from a full-size decoded luma plane)."""
    number = 0
    for bit in range(STAMP_BITS):
        x = bit * STAMP_CELL
        if gray[2 : STAMP_CELL - 2, x + 2 : x + STAMP_CELL - 2].mean() > 128:
            number |= 1 << bit
    return number


class WalkThrough:
    """One person walks across an empty street once; then the street is empty again.

    Frame ``i`` at ``fps``: the person's left edge enters at ``enter_at`` s and
    the person has left the view ``cross_s`` later. :meth:`truth` gives the
    person's true normalised box (None when not in view).
    """

    def __init__(
        self,
        testdata: Path = DEFAULT_TESTDATA,
        *,
        width: int = 640,
        height: int = 360,
        fps: int = 10,
        enter_at: float = 3.0,
        cross_s: float = 6.0,
        length_s: float = 14.0,
        person_height: float = 0.5,
        seed: int = 0,
        stamped: bool = False,
    ) -> None:
        self.w, self.h, self.fps = width, height, fps
        self.enter_at, self.cross_s, self.length_s = enter_at, cross_s, length_s
        self.background = street_background(width, height, seed)
        self.person = person_cutout(testdata, int(height * person_height))
        self.top = int(height * 0.7) - self.person.shape[0]  # feet on the pavement's edge
        self.noise = SensorNoise(np.random.default_rng(seed + 1))
        self.stamped = stamped

    @property
    def frame_count(self) -> int:
        return int(self.length_s * self.fps)

    def _x(self, t: float) -> int | None:
        if not self.enter_at <= t < self.enter_at + self.cross_s:
            return None
        pw = int(self.person.shape[1])
        return round((t - self.enter_at) / self.cross_s * (self.w + pw)) - pw

    @property
    def fully_in_view_s(self) -> tuple[float, float]:
        """From when to when the whole person is in view (s into the clip)."""
        pw = self.person.shape[1]
        speed = (self.w + pw) / self.cross_s
        return self.enter_at + pw / speed, self.enter_at + self.w / speed

    def truth(self, t: float) -> tuple[float, float, float, float] | None:
        x = self._x(t)
        if x is None:
            return None
        pw, ph = self.person.shape[1], self.person.shape[0]
        x0, x1 = max(0, x), min(self.w, x + pw)
        if x1 <= x0:
            return None
        return x0 / self.w, self.top / self.h, x1 / self.w, (self.top + ph) / self.h

    def frame(self, i: int) -> Image:
        t = i / self.fps
        out = self.background.copy()
        x = self._x(t)
        if x is not None:
            Street._paste(out, self.person, x, self.top)
        out = self.noise.noisy(out, 2.0)
        if self.stamped:
            stamp(out, i)
        return out

    def frames(self) -> Iterator[Image]:
        for i in range(self.frame_count):
            yield self.frame(i)


def swaying_street(
    width: int = 640, height: int = 360, fps: int = 10, seconds: float = 12.0, seed: int = 0
) -> Iterator[Image]:
    """No one there: trees sway in the wind, a flag flutters, the sensor is noisy. No detection may come of it."""
    rng = np.random.default_rng(seed)
    background = street_background(width, height, seed)
    noise = SensorNoise(rng)
    leaves = np.asarray(rng.integers(20, 120, (height // 3, width // 6, 3)), dtype=np.uint8)
    leaves[..., 1] = np.clip(leaves[..., 1].astype(np.int16) + 60, 0, 255).astype(np.uint8)  # greenish
    leaves = np.asarray(cv2.GaussianBlur(leaves, (5, 5), 0), dtype=np.uint8)
    for i in range(int(seconds * fps)):
        t = i / fps
        out = background.copy()
        for k, x in enumerate((width // 10, width * 3 // 5)):
            sway = int(10 * np.sin(2 * np.pi * 0.4 * t + k))
            Street._paste(out, leaves, x + sway, height // 6)
        flag_h = height // 12
        wave = (np.sin(np.linspace(0, 3 * np.pi, width // 8) + 6 * t) * 4).astype(int)
        for col, dy in enumerate(wave):
            out[height // 10 + dy : height // 10 + dy + flag_h, width * 4 // 5 + col] = (40, 40, 200)
        yield noise.noisy(out, 3.0)
