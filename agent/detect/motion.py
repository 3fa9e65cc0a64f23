"""Cheap motion on a small grayscale frame: a running background and a changed-pixel share.

The detector runs on a camera's frame only when this says something moved
in an unmasked area (or the tracker wants the frame: a new or moving
track): most of a street camera's day is still, and each skipped inference
is CPU saved for the whole ward. Where it
moved (:meth:`MotionGate.regions`) tells the detector where to look closer
for people too small to find on the whole frame.
"""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt

from agent.health.image import Gray, Mask

GROW = 2  # pixels (of the small grayscale frame) the changed pixels are grown by to join a walker's pieces


class MotionGate:
    def __init__(self, threshold: int = 18, min_fraction: float = 0.002, learn_rate: float = 0.1) -> None:
        self.threshold = threshold  # luma difference that counts as change (above sensor noise)
        self.min_fraction = min_fraction  # share of unmasked pixels that must change
        self.learn_rate = learn_rate
        self._background: npt.NDArray[np.float32] | None = None
        self._changed: npt.NDArray[np.bool_] | None = None  # the last frame's changed pixels
        self.frames = 0
        self.gated = 0  # frames that were not worth a detector run

    def motion(self, gray: Gray, mask: Mask | None = None) -> float:
        """Share of unmasked pixels that differ from the background (and learn this frame)."""
        blurred = cv2.GaussianBlur(gray, (5, 5), 0).astype(np.float32)
        if self._background is None or self._background.shape != blurred.shape:
            self._background = blurred
            return 1.0  # nothing known yet: let the detector look once
        diff = cv2.absdiff(blurred, self._background) > self.threshold
        cv2.accumulateWeighted(blurred, self._background, self.learn_rate)
        if mask is not None:
            diff &= ~mask
        self._changed = diff
        n = diff.size if mask is None else int(diff.size - np.count_nonzero(mask))
        return float(np.count_nonzero(diff)) / n if n else 0.0

    def should_detect(self, gray: Gray, mask: Mask | None = None, wanted: bool = False) -> bool:
        self.frames += 1
        moving = self.motion(gray, mask) >= self.min_fraction
        if moving or wanted:
            return True
        self.gated += 1
        return False

    def regions(self, limit: int = 2, min_fraction: float = 0.0005) -> list[tuple[float, float, float, float]]:
        """Where the last frame moved: up to ``limit`` boxes (normalised x1, y1, x2, y2), largest first;
        specks smaller than ``min_fraction`` of the picture (noise, a leaf) are left out."""
        if self._changed is None or limit <= 0:
            return []
        changed = cv2.dilate(self._changed.astype(np.uint8), np.ones((2 * GROW + 1, 2 * GROW + 1), np.uint8))
        n, _, stats, _ = cv2.connectedComponentsWithStats(changed, connectivity=8)
        h, w = changed.shape
        blobs = [stats[i] for i in range(1, n) if stats[i][cv2.CC_STAT_AREA] >= min_fraction * h * w]
        blobs.sort(key=lambda st: -int(st[cv2.CC_STAT_AREA]))
        # Each blob's box, less what the dilation (which joins a walker's pieces) added around it.
        out = []
        for st in blobs[:limit]:
            x0, y0 = int(st[cv2.CC_STAT_LEFT]), int(st[cv2.CC_STAT_TOP])
            x1, y1 = x0 + int(st[cv2.CC_STAT_WIDTH]), y0 + int(st[cv2.CC_STAT_HEIGHT])
            x0, y0 = (x0 + GROW if x0 > 0 else x0), (y0 + GROW if y0 > 0 else y0)
            x1, y1 = (x1 - GROW if x1 < w else x1), (y1 - GROW if y1 < h else y1)
            out.append((x0 / w, y0 / h, max(x0 + 1, x1) / w, max(y0 + 1, y1) / h))
        return out
