"""Cheap motion on a small grayscale frame: a running background and a changed-pixel share.

The detector runs on a camera's frame only when this says something moved
in an unmasked area (or a track is alive): most of a street camera's day is
still, and each skipped inference is CPU saved for the whole ward.
"""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt

from agent.health.image import Gray, Mask


class MotionGate:
    def __init__(self, threshold: int = 18, min_fraction: float = 0.002, learn_rate: float = 0.1) -> None:
        self.threshold = threshold  # luma difference that counts as change (above sensor noise)
        self.min_fraction = min_fraction  # share of unmasked pixels that must change
        self.learn_rate = learn_rate
        self._background: npt.NDArray[np.float32] | None = None
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
            valid = ~mask
            n = int(valid.sum())
            return float(np.count_nonzero(diff & valid)) / n if n else 0.0
        return float(np.count_nonzero(diff)) / diff.size

    def should_detect(self, gray: Gray, mask: Mask | None = None, track_alive: bool = False) -> bool:
        self.frames += 1
        moving = self.motion(gray, mask) >= self.min_fraction
        if moving or track_alive:
            return True
        self.gated += 1
        return False
