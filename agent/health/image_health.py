"""Per-camera image health (issue 3, not wired into the agent yet): samples in, debounced problems out.

Pure logic over grayscale samples and a monotonic ``now`` passed in. Each
check turns a metric from :mod:`agent.health.image` into a raw condition,
judged against fixed thresholds or the camera's own baselines; a
:class:`~agent.health.debounce.Debounce` per problem makes it persist before
it is reported and clear with hysteresis. Baselines learn only while no
image problem is active, so they never learn the fault.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from agent.health.debounce import Debounce
from agent.health.image import (
    SIGNATURE_SHAPE,
    Gray,
    Mask,
    Polygon,
    RobustBaseline,
    cell_detail,
    covered_fraction,
    edge_signature,
    looks_black,
    mask_from_polygons,
    measure,
    picture_change,
    view_similarity,
)

IMAGE_PROBLEMS = ("black", "frozen", "blurred", "covered", "moved")
# Light levels (mean luma) with a sharpness baseline of their own: night pictures are softer.
_LIGHT_EDGES = (40.0, 100.0)


@dataclass(frozen=True)
class ImageThresholds:
    black_after_s: float = 10.0
    frozen_after_s: float = 10.0
    blurred_after_s: float = 30.0
    covered_after_s: float = 5.0
    moved_after_s: float = 10.0
    moved_accept_after_s: float = 3600.0
    clear_after_s: float = 5.0
    black_dark_ratio: float = 0.98
    black_bright_limit: float = 60.0
    frozen_max_change: float = 0.05  # mean |Δluma| at or below this is always a repeated picture
    frozen_noise_ratio: float = 0.35  # ... and so is a change below this share of the camera's quiet floor
    frozen_change_cap: float = 1.0  # but never above this (re-quantisation of a stuck picture stays below)
    blurred_ratio: float = 0.3  # sharpness below this share of the learned baseline
    covered_cells: float = 0.6  # share of detailed cells that lost their detail
    moved_similarity: float = 0.45  # edge-signature correlation with the reference below this
    reference_samples: int = 10  # healthy samples averaged into the moved reference


def _light_level(mean: float) -> int:
    return int(np.searchsorted(_LIGHT_EDGES, mean))


class ImageHealth:
    """One camera's image checks. Call :meth:`observe` per sample; read :meth:`problems`."""

    def __init__(self, thresholds: ImageThresholds | None = None, masks: Sequence[Polygon] = ()) -> None:
        self.t = thresholds or ImageThresholds()
        self._mask_polygons = list(masks)
        self._mask: Mask | None = None
        self._shape: tuple[int, int] | None = None
        t = self.t
        self._debounce = {
            "black": Debounce(t.black_after_s, t.clear_after_s),
            "frozen": Debounce(t.frozen_after_s, t.clear_after_s),
            "blurred": Debounce(t.blurred_after_s, t.clear_after_s),
            "covered": Debounce(t.covered_after_s, t.clear_after_s),
            "moved": Debounce(t.moved_after_s, t.clear_after_s),
        }
        self.skipped = 0  # samples that could not be judged (odd size, corrupt)
        self.accepted_views = 0  # times a new view became the reference after moved_accept_after_s
        self._reset_baselines()

    def _reset_baselines(self) -> None:
        self._previous: Gray | None = None
        # The quiet end (10th percentile) of sample-to-sample change while healthy: the noise floor.
        self._change_floor = RobustBaseline(quantile=0.1)
        self._sharpness = [RobustBaseline() for _ in range(len(_LIGHT_EDGES) + 1)]
        self._cells: npt.NDArray[np.float32] | None = None
        self._cells_warm: list[npt.NDArray[np.float32]] = []
        self._cell_samples = 0
        # The reference view per light level: at night the same view has other edges (lamps, noise).
        levels = len(_LIGHT_EDGES) + 1
        self._references: list[npt.NDArray[np.float32] | None] = [None] * levels
        self._reference_acc: list[list[npt.NDArray[np.float32]]] = [[] for _ in range(levels)]
        self._moved_since: float | None = None

    def _geometry(self, shape: tuple[int, int]) -> None:
        if shape == self._shape:
            return
        # A new resolution: masks are rebuilt and everything learned is dropped.
        self._shape = shape
        self._mask = mask_from_polygons(shape, self._mask_polygons) if self._mask_polygons else None
        self._reset_baselines()

    def observe(self, gray: Gray, now: float) -> None:
        """Judge one sample taken at ``now``; odd samples are skipped and counted, never raised."""
        try:
            self._geometry((int(gray.shape[0]), int(gray.shape[1])))
            self._judge(gray, now)
        except (ValueError, IndexError):
            self.skipped += 1

    def _judge(self, gray: Gray, now: float) -> None:
        t = self.t
        mask = self._mask
        m = measure(gray, mask)
        raw: dict[str, bool] = {}
        black = looks_black(m, t.black_dark_ratio, t.black_bright_limit)
        raw["black"] = black

        previous, self._previous = self._previous, gray
        change = picture_change(previous, gray, mask) if previous is not None else None
        raw["frozen"] = change is not None and change <= self._frozen_limit()

        healthy = not any(d.reported for d in self._debounce.values())
        baseline = self._sharpness[_light_level(m.mean)]
        raw["blurred"] = (
            not black
            and baseline.ready
            and baseline.value is not None
            and m.sharpness < baseline.value * t.blurred_ratio
        )

        cells = cell_detail(gray, mask)
        raw["covered"] = (
            not black and self._cells is not None and covered_fraction(cells, self._cells) >= t.covered_cells
        )

        signature = edge_signature(gray, mask)
        level = _light_level(m.mean)
        reference = self._references[level]
        moved = not black and reference is not None and view_similarity(reference, signature) < t.moved_similarity
        raw["moved"] = moved

        for name, debounce in self._debounce.items():
            debounce.update(raw[name], now)

        # The moved problem ends by acceptance after a long time: the new view becomes the reference.
        if self._debounce["moved"].reported:
            if self._moved_since is None:
                self._moved_since = now
            elif now - self._moved_since >= t.moved_accept_after_s:
                # The new view becomes the reference; other light levels learn it afresh.
                self._references = [None] * len(self._references)
                self._references[level] = signature
                self._debounce["moved"].reset()
                self._moved_since = None
                self.accepted_views += 1
        else:
            self._moved_since = None

        if healthy and not any(raw.values()):
            self._learn(
                change=change, sharpness=m.sharpness, baseline=baseline, cells=cells, signature=signature, level=level
            )

    def _frozen_limit(self) -> float:
        """A stuck encoder re-quantises the same picture for a few GOPs (changes ~1), then repeats it
        exactly (0); a live camera never drops far below its own quiet floor (sensor noise)."""
        t = self.t
        floor = self._change_floor.value
        if floor is None:
            return t.frozen_max_change
        return max(t.frozen_max_change, min(t.frozen_change_cap, t.frozen_noise_ratio * floor))

    def _learn(
        self,
        *,
        change: float | None,
        sharpness: float,
        baseline: RobustBaseline,
        cells: npt.NDArray[np.float32],
        signature: npt.NDArray[np.float32],
        level: int,
    ) -> None:
        if change is not None:
            self._change_floor.update(change)
        baseline.update(sharpness)
        if self._cells is None:
            # Start from the per-cell median of the first samples: detail that only passes
            # through (a car, a ball) must not count as the cell's own.
            self._cells_warm.append(cells)
            if len(self._cells_warm) >= self.t.reference_samples:
                with warnings.catch_warnings():  # masked cells are NaN in every sample
                    warnings.simplefilter("ignore", RuntimeWarning)
                    self._cells = np.nanmedian(np.stack(self._cells_warm), axis=0).astype(np.float32)
                self._cells_warm = []
        else:
            # A slow median-like step per cell (robust to a passing bus).
            step = np.float32(0.05)
            finite = np.isfinite(cells) & np.isfinite(self._cells)
            up = finite & (cells > self._cells)
            down = finite & (cells < self._cells)
            self._cells[up] *= 1 + step
            self._cells[down] *= 1 - step
        self._cell_samples += 1
        if self._references[level] is None:
            acc = self._reference_acc[level]
            acc.append(signature)
            if len(acc) >= self.t.reference_samples:
                self._references[level] = np.mean(acc, axis=0).astype(np.float32)
                acc.clear()

    # -- persistence: baselines survive a restart -------------------------------

    def state(self) -> dict[str, npt.NDArray[np.float32]] | None:
        """What was learned, as arrays (None before anything is learned)."""
        if self._shape is None or (self._cells is None and all(r is None for r in self._references)):
            return None
        sharp = [b.value if b.value is not None else np.nan for b in self._sharpness]
        return {
            "shape": np.array(self._shape, dtype=np.float32),
            "sharpness": np.array(sharp, dtype=np.float32),
            "cells": self._cells if self._cells is not None else np.zeros(0, np.float32),
            "cell_samples": np.array([self._cell_samples], dtype=np.float32),
            "references": np.stack(
                [r if r is not None else np.full(SIGNATURE_SHAPE, np.nan, np.float32) for r in self._references]
            ),
        }

    def load_state(self, state: dict[str, npt.NDArray[np.float32]]) -> bool:
        """Restore what :meth:`state` saved; returns False (and learns afresh) if it does not fit."""
        try:
            shape = (int(state["shape"][0]), int(state["shape"][1]))
            self._geometry(shape)
            for baseline, value in zip(self._sharpness, state["sharpness"], strict=True):
                baseline.restore(float(value))
            if state["cells"].size:
                self._cells = state["cells"].astype(np.float32)
                self._cell_samples = int(state["cell_samples"][0])
            for level, ref in enumerate(state["references"]):
                if np.isfinite(ref).all():
                    self._references[level] = ref.astype(np.float32)
        except (KeyError, IndexError, ValueError, TypeError):
            self._shape = None
            return False
        return True

    def problems(self) -> tuple[str, ...]:
        """The image problems reported now (debounced), in a fixed order."""
        return tuple(name for name in IMAGE_PROBLEMS if self._debounce[name].reported)
