"""Image metrics for the image-health checks (issue 3, first slice).

Pure functions over a small grayscale picture (about 320 px wide, as
:meth:`agent.stream.frames.Frame.gray` gives it). Each sample is measured
once (:func:`measure`); the checks compare those measures with thresholds
and with the camera's own learned baselines. Masks (normalised polygons:
an on-screen clock, the sky, a tree) are excluded from every measure.

Not wired into the agent yet: the debounced checks, baselines and scenario
tests come with the rest of the image-health issue.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

Gray = npt.NDArray[np.uint8]
Mask = npt.NDArray[np.bool_]  # True where a pixel is excluded
Polygon = Sequence[tuple[float, float]]  # normalised (x, y) in [0, 1]

DARK_LUMA = 26  # 10 % of full scale, as ffmpeg's blackdetect pixel threshold


def mask_from_polygons(shape: tuple[int, int], polygons: Sequence[Polygon]) -> Mask:
    """A boolean mask (True = excluded) of ``shape`` (rows, cols) from normalised polygons."""
    rows, cols = shape
    canvas = np.zeros((rows, cols), dtype=np.uint8)
    for poly in polygons:
        if len(poly) < 3:
            raise ValueError("a mask polygon needs at least 3 points")
        pts = np.array([[round(x * (cols - 1)), round(y * (rows - 1))] for x, y in poly], dtype=np.int32)
        cv2.fillPoly(canvas, [pts], 1)
    return canvas.astype(bool)


@dataclass(frozen=True)
class ImageMetrics:
    """What one sample looks like, measured over its unmasked pixels."""

    mean: float  # mean luma, 0..255
    dark_fraction: float  # share of pixels below DARK_LUMA
    bright_p999: float  # 99.9th percentile of luma: lamps and headlights show here
    sharpness: float  # variance of the Laplacian
    valid_fraction: float  # share of pixels not masked


def measure(gray: Gray, mask: Mask | None = None) -> ImageMetrics:
    """Measure one grayscale sample; raises ValueError on an unusable picture."""
    if gray.ndim != 2 or gray.dtype != np.uint8:
        raise ValueError(f"expected a 2-D uint8 grayscale image, got {gray.dtype} {gray.shape}")
    if gray.shape[0] < 8 or gray.shape[1] < 8:
        raise ValueError(f"image too small to judge: {gray.shape[1]}x{gray.shape[0]}")
    if mask is not None and mask.shape != gray.shape:
        raise ValueError(f"mask {mask.shape} does not match image {gray.shape}")
    valid = np.ones(gray.shape, dtype=bool) if mask is None else ~mask
    n_valid = int(valid.sum())
    if n_valid < 64:
        raise ValueError("nearly the whole picture is masked")
    pixels = gray[valid]
    lap = cv2.Laplacian(gray, cv2.CV_32F, ksize=3)
    # The Laplacian at a mask border sees masked pixels: shrink the valid area by one pixel.
    inner = valid if mask is None else cv2.erode(valid.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    lap_values = lap[inner] if inner.any() else lap[valid]
    return ImageMetrics(
        mean=float(pixels.mean()),
        dark_fraction=float(np.count_nonzero(pixels < DARK_LUMA)) / n_valid,
        bright_p999=float(np.percentile(pixels, 99.9)),
        sharpness=float(lap_values.var()),
        valid_fraction=n_valid / gray.size,
    )


def looks_black(m: ImageMetrics, dark_ratio: float = 0.98, bright_limit: float = 60.0) -> bool:
    """Nearly all pixels dark and no light source anywhere (a covered lens, a dead sensor, night without IR).

    A night street is mostly dark too, but its lamps and headlights put the
    brightest pixels far above ``bright_limit``; that keeps it from firing.
    """
    return m.dark_fraction >= dark_ratio and m.bright_p999 < bright_limit


def picture_change(a: Gray, b: Gray, mask: Mask | None = None) -> float:
    """Mean absolute luma difference of two samples of one camera (0 = identical pictures).

    A frozen encoder repeats the same picture (≈ 0); a live camera's sensor
    noise keeps this above its own floor even when the scene is still.
    """
    if a.shape != b.shape:
        raise ValueError(f"samples differ in size: {a.shape} vs {b.shape}")
    diff = cv2.absdiff(a, b)
    if mask is not None:
        return float(diff[~mask].mean())
    return float(diff.mean())
