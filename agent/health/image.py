"""Image metrics for the image-health checks.

Pure functions over a small grayscale picture (about 320 px wide, as
:meth:`agent.stream.frames.Frame.gray` gives it). Each sample is measured
once (:func:`measure`); the checks in :mod:`agent.health.image_health`
compare those measures with thresholds and with the camera's own learned
baselines. Masks (normalised polygons: an on-screen clock, the sky, a tree)
are excluded from every measure. They run once per sample for every camera
(hundreds in a district's agent): each is kept to a fraction of a
millisecond.
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
    if mask is None:
        pixels = gray.ravel()
        lap_mask = None
    else:
        pixels = gray[~mask]
        # The Laplacian at a mask border sees masked pixels: shrink the valid area by one pixel.
        lap_mask = cv2.erode((~mask).astype(np.uint8), np.ones((3, 3), np.uint8))
        if not lap_mask.any():
            lap_mask = (~mask).astype(np.uint8)
    n_valid = int(pixels.size)
    if n_valid < 64:
        raise ValueError("nearly the whole picture is masked")
    # One histogram gives the mean, the dark share and the bright percentile.
    hist = np.bincount(pixels, minlength=256)
    cumulative = np.cumsum(hist)
    lap = cv2.Laplacian(gray, cv2.CV_32F, ksize=3)
    _, lap_std = cv2.meanStdDev(lap, mask=lap_mask)
    return ImageMetrics(
        mean=float(hist @ np.arange(256)) / n_valid,
        dark_fraction=float(cumulative[DARK_LUMA - 1]) / n_valid,
        bright_p999=float(np.searchsorted(cumulative, n_valid * 0.999)),
        sharpness=float(lap_std[0][0]) ** 2,
        valid_fraction=n_valid / gray.size,
    )


def looks_black(m: ImageMetrics, dark_ratio: float = 0.98, bright_limit: float = 60.0) -> bool:
    """Nearly all pixels dark and no light source anywhere (a covered lens, a dead sensor, night without IR).

    A night street is mostly dark too, but its lamps and headlights put the
    brightest pixels far above ``bright_limit``; that keeps it from firing.
    """
    return m.dark_fraction >= dark_ratio and m.bright_p999 < bright_limit


REPEAT_GRID = (24, 18)  # cells (across, down) a repeat is judged over
OSD_ROWS = 3  # rows of cells at the top and at the bottom: where cameras burn their clock and name
TICKING_SHARE = 0.05  # at most this share of all cells, the most changed in those rows, is left out


def picture_change(a: Gray, b: Gray, mask: Mask | None = None) -> float:
    """Mean absolute luma difference of two samples of one camera, leaving out where an on-screen clock
    ticks (0 = the same picture).

    A frozen encoder repeats the same picture (≈ 0); a live camera's sensor
    noise keeps this above its own floor everywhere, even when the scene is
    still. Most cameras burn a clock into the top or bottom of the picture (an
    OSD the installer may not have masked): it ticks every second, also over
    a frozen view. Judged cell by cell, the cells that changed most in the top
    and bottom ``OSD_ROWS`` rows, at most ``TICKING_SHARE`` of all cells, are
    left out: a frozen view with a ticking clock still repeats, while sensor
    noise (everywhere) and a small thing moving in the view (not only at the
    picture's edge) still count.
    """
    if a.shape != b.shape:
        raise ValueError(f"samples differ in size: {a.shape} vs {b.shape}")
    return _without_ticking(cell_means(np.asarray(cv2.absdiff(a, b), dtype=np.uint8), mask))


def cell_means(gray: Gray, mask: Mask | None = None) -> npt.NDArray[np.float32]:
    """Mean value per ``REPEAT_GRID`` cell over the unmasked pixels (NaN for a cell mostly masked)."""
    values = gray.astype(np.float32)
    if mask is None:
        return np.asarray(cv2.resize(values, REPEAT_GRID, interpolation=cv2.INTER_AREA), dtype=np.float32)
    valid = (~mask).astype(np.float32)
    share = cv2.resize(valid, REPEAT_GRID, interpolation=cv2.INTER_AREA)
    sums = cv2.resize(values * valid, REPEAT_GRID, interpolation=cv2.INTER_AREA)
    return np.asarray(np.where(share > 0.25, sums / np.maximum(share, 1e-6), np.nan), dtype=np.float32)


def picture_change_floor(means_a: npt.NDArray[np.float32], means_b: npt.NDArray[np.float32]) -> float:
    """A lower bound of :func:`picture_change` from the two samples' :func:`cell_means`, for a fraction of its
    cost: per cell, the difference of the means is at most the mean of the differences, and leaving out the
    most changed clock cells of the lower figures leaves out no less. A floor above a limit settles that
    the picture changed more; only a floor below it needs the full comparison."""
    if means_a.shape != means_b.shape:
        raise ValueError(f"samples differ in size: {means_a.shape} vs {means_b.shape}")
    return _without_ticking(np.abs(means_a - means_b))


def _without_ticking(cells: npt.NDArray[np.float32]) -> float:
    """The mean of per-cell changes, leaving out the most changed cells where an on-screen clock ticks."""
    edge = np.zeros(cells.shape, dtype=bool)
    edge[:OSD_ROWS] = True
    edge[-OSD_ROWS:] = True
    edge &= ~np.isnan(cells)
    leave_out = min(int(edge.sum()), round(cells.size * TICKING_SHARE))
    if leave_out:
        edge_values = np.where(edge, cells, -np.inf).ravel()
        cells = cells.copy().ravel()
        cells[np.argsort(edge_values)[-leave_out:]] = np.nan
    kept = cells[~np.isnan(cells)]
    return float(kept.mean()) if kept.size else 0.0


def _gradient(gray: Gray) -> npt.NDArray[np.float32]:
    gx = cv2.Sobel(gray, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(gray, cv2.CV_32F, 0, 1, ksize=3)
    return np.asarray(cv2.magnitude(gx, gy), dtype=np.float32)


def _cells(values: npt.NDArray[np.float32], grid: tuple[int, int]) -> npt.NDArray[np.float32]:
    """Sum of ``values`` over each cell of a grid (edge rows/columns that do not fit are dropped)."""
    rows, cols = grid
    h, w = values.shape
    ch, cw = h // rows, w // cols
    cropped = values[: ch * rows, : cw * cols]
    return np.asarray(cropped.reshape(rows, ch, cols, cw).sum(axis=(1, 3)), dtype=np.float32)


# Rows, cols of the detail grid: fine enough that a cover's own outline (it has edges too) spoils few
# cells. On real footage a flat panel over 75 % of the view loses 56 % of a 6x8 grid's detailed cells,
# 67 % of a 9x12 grid's.
CELL_GRID = (9, 12)


def cell_detail(gray: Gray, mask: Mask | None = None, grid: tuple[int, int] = CELL_GRID) -> npt.NDArray[np.float32]:
    """Mean gradient magnitude per grid cell (rows, cols); NaN for cells mostly masked."""
    rows, cols = grid
    if gray.shape[0] < rows or gray.shape[1] < cols:
        raise ValueError(f"image too small for a {rows}x{cols} grid: {gray.shape}")
    grad = _gradient(gray)
    if mask is None:  # every cell whole: the per-cell mean is an area average
        h, w = gray.shape[0] // rows * rows, gray.shape[1] // cols * cols
        return np.asarray(cv2.resize(grad[:h, :w], (cols, rows), interpolation=cv2.INTER_AREA), dtype=np.float32)
    keep = (~mask).astype(np.float32)
    sums = _cells(grad * keep, grid)
    counts = _cells(keep, grid)
    cell_area = (gray.shape[0] // rows) * (gray.shape[1] // cols)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(counts >= 0.5 * cell_area, sums / np.maximum(counts, 1.0), np.nan)
    return np.asarray(out, dtype=np.float32)


def covered_fraction(
    cells: npt.NDArray[np.float32],
    baseline: npt.NDArray[np.float32],
    drop: float = 0.35,
    min_detail: float = 4.0,
) -> float:
    """Share of the cells that had detail in the baseline and lost most of it now.

    Cells that are featureless in the baseline (sky, a plain wall) or masked
    do not count either way, so a clear sky never reads as "covered".
    """
    judged = np.isfinite(cells) & np.isfinite(baseline) & (baseline >= min_detail)
    n = int(judged.sum())
    if n == 0:
        return 0.0
    lost = cells[judged] < baseline[judged] * drop
    return float(lost.sum()) / n


SIGNATURE_SHAPE = (45, 80)  # rows, cols of an edge signature


def edge_signature(gray: Gray, mask: Mask | None = None) -> npt.NDArray[np.float32]:
    """A small, brightness-independent map of where the picture's edges are (for ``moved``)."""
    # Halving by area averaging smooths noise like a blur, at a quarter of the gradient's cost.
    half = (max(8, gray.shape[1] // 2), max(8, gray.shape[0] // 2))
    small = np.asarray(cv2.resize(gray, half, interpolation=cv2.INTER_AREA), dtype=np.uint8)
    grad = _gradient(small)
    if mask is not None:
        grad[cv2.resize(mask.astype(np.uint8), half, interpolation=cv2.INTER_NEAREST).astype(bool)] = 0.0
    size = (SIGNATURE_SHAPE[1], SIGNATURE_SHAPE[0])
    return np.asarray(cv2.resize(grad, size, interpolation=cv2.INTER_AREA), dtype=np.float32)


def view_similarity(reference: npt.NDArray[np.float32], current: npt.NDArray[np.float32]) -> float:
    """Zero-mean normalised correlation of two edge signatures: ~1 same view, ~0 another view."""
    if reference.shape != current.shape:
        raise ValueError(f"signatures differ in size: {reference.shape} vs {current.shape}")
    a = reference - reference.mean()
    b = current - current.mean()
    denom = float(np.sqrt((a * a).sum() * (b * b).sum()))
    if denom == 0.0:
        return 0.0
    return float((a * b).sum()) / denom


class RobustBaseline:
    """A camera's own typical value of a measure, learned slowly and robustly.

    Tracks a quantile (the median by default) by stochastic steps in the
    log domain (each sample moves the estimate a fixed fraction up or
    down), so one outlier never
    drags it far; :meth:`update` with ``learn=False`` freezes it while a
    problem is active, so the baseline never learns the fault.
    """

    def __init__(self, step: float = 0.05, warmup: int = 10, quantile: float = 0.5) -> None:
        if not 0 < quantile < 1:
            raise ValueError("quantile must be between 0 and 1")
        self.step = step
        self.quantile = quantile
        self.warmup = warmup
        self.samples = 0
        self._log: float | None = None
        self._warm: list[float] = []

    @property
    def ready(self) -> bool:
        return self._log is not None

    @property
    def value(self) -> float | None:
        return None if self._log is None else float(np.exp(self._log))

    def restore(self, value: float) -> None:
        """Start from a value learned before (a restart must not re-learn from a faulty picture)."""
        if np.isfinite(value) and value > 0:
            self._log = float(np.log(value))
            self._warm = []

    def update(self, value: float, learn: bool = True) -> None:
        if not learn or not np.isfinite(value) or value <= 0:
            return
        x = float(np.log(value))
        self.samples += 1
        if self._log is None:
            self._warm.append(x)
            if len(self._warm) >= self.warmup:
                self._log = float(np.quantile(self._warm, self.quantile))
                self._warm = []
            return
        # Steps up and down in the ratio q : (1 - q) settle where a share q of the samples lies below.
        if x > self._log:
            self._log += 2 * self.step * self.quantile
        elif x < self._log:
            self._log -= 2 * self.step * (1 - self.quantile)
