"""Per-camera image health: samples in, debounced problems out.

Pure logic over grayscale samples and a monotonic ``now`` passed in. Each
check turns a metric from :mod:`agent.health.image` into a raw condition,
judged against fixed thresholds or the camera's own baselines; a
:class:`~agent.health.debounce.Debounce` per problem makes it persist before
it is reported and clear with hysteresis. Baselines learn only while no
image problem is active, so they never learn the fault.
"""

from __future__ import annotations

import warnings
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from agent.health.debounce import Debounce
from agent.health.image import (
    CELL_GRID,
    SIGNATURE_SHAPE,
    Gray,
    ImageMetrics,
    Mask,
    Polygon,
    RobustBaseline,
    cell_detail,
    cell_means,
    covered_fraction,
    edge_signature,
    looks_black,
    mask_from_polygons,
    measure,
    picture_change,
    picture_change_floor,
    view_similarity,
)
from contract.vocab import IMAGE_PROBLEMS

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
    frozen_max_change: float = 0.1  # mean |Δluma| to one of the recent samples at or below this: a repeated picture
    frozen_recent: int = 4  # how many recent samples a new one is compared with (a stuck encoder cycles among a few)
    frozen_requant_cap: float = 2.5  # a stuck picture re-quantised by the rate control changes less than this
    blurred_ratio: float = 0.3  # sharpness below this share of the learned baseline
    covered_cells: float = 0.6  # share of detailed cells that lost their detail
    moved_similarity: float = 0.45  # edge-signature correlation with the reference below this
    reference_samples: int = 10  # healthy samples averaged into the moved reference
    reference_stability: float = 0.6  # how well those samples must agree with their mean to make one


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
        # Recent samples, each with its cell means (for the cheap floor of a comparison).
        self._recent: deque[tuple[Gray, npt.NDArray[np.float32]]] = deque(maxlen=self.t.frozen_recent)
        self._times: deque[float] = deque(maxlen=3)  # when the last samples came
        self._still_since: float | None = None  # first sample of the current run of small changes
        self._repeat_at: float | None = None  # when a sample last repeated a recent one
        self._evidence: dict[str, str] = {}
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

    # Long: Every check of one picture, in the order each needs the last's figures (one pass over the picture).
    def _judge(self, gray: Gray, now: float) -> None:  # noqa: PLR0915
        t = self.t
        mask = self._mask
        m = measure(gray, mask)
        raw: dict[str, bool] = {}
        black = looks_black(m, t.black_dark_ratio, t.black_bright_limit)
        raw["black"] = black

        # Frozen is told by identity, not by how little changed: a stuck encoder repeats its picture
        # exactly (or cycles among a few re-quantised copies of it: one of the recent samples matches),
        # while a live camera, however still its scene, never decodes the same picture twice (sensor
        # noise). How little a picture changes says nothing: a quiet street after a busy hour is still.
        # A stuck encoder's rate control settles over a few samples (re-quantised copies first), and may
        # later step to another copy for a sample: those count as frozen too, from the start of the run
        # of small changes, once an exact repeat proves it.
        coarse = cell_means(gray, mask)
        changes = self._changes(gray, coarse)
        recent = list(self._recent)
        self._recent.append((gray, coarse))
        self._times.append(now)
        change = changes[-1] if changes else None
        repeat = min(changes) if changes else None
        small = change is not None and change <= t.frozen_requant_cap
        if not small:
            self._still_since = now
        repeated = repeat is not None and repeat <= t.frozen_max_change
        if repeated:
            self._repeat_at = now
        # one of the last two samples before this one repeated a picture, and this one barely changed
        blip = small and self._repeat_at is not None and len(self._times) == 3 and self._repeat_at >= self._times[0]
        raw["frozen"] = repeated or blip
        if raw["frozen"]:  # the figures an installer is shown are the full comparisons, not their floors
            changes = [picture_change(old, gray, mask) for old, _ in recent]
            change, repeat = changes[-1], min(changes)

        healthy = not any(d.reported for d in self._debounce.values())
        baseline = self._sharpness[_light_level(m.mean)]
        raw["blurred"] = (
            not black
            and baseline.ready
            and baseline.value is not None
            and m.sharpness < baseline.value * t.blurred_ratio
        )

        cells = cell_detail(gray, mask)
        lost = covered_fraction(cells, self._cells) if self._cells is not None else None
        raw["covered"] = not black and lost is not None and lost >= t.covered_cells
        # The name the operator acts on wins: a covered or dark lens is climbed to, a frozen stream is
        # restarted. A cover over most of the view can also look still; it is not a frozen stream.
        if black or raw["covered"]:
            raw["frozen"] = False

        signature = edge_signature(gray, mask)
        level = _light_level(m.mean)
        reference = self._references[level]
        similarity = view_similarity(reference, signature) if reference is not None else None
        moved = not black and similarity is not None and similarity < t.moved_similarity
        raw["moved"] = moved

        for name, debounce in self._debounce.items():
            was = debounce.reported
            debounce.update(raw[name], now, self._frozen_since() if name == "frozen" else None)
            if debounce.reported and not was:  # the evidence when it is first reported, for the event
                self._evidence[name] = self._explain(
                    name, m=m, repeat=repeat, change=change, lost=lost, similarity=similarity, baseline=baseline
                )

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
            self._learn(sharpness=m.sharpness, baseline=baseline, cells=cells, signature=signature, level=level)

    def _changes(self, gray: Gray, coarse: npt.NDArray[np.float32]) -> list[float]:
        """The change to each recent sample, the last the previous one. Where the cheap floor already
        exceeds the limit the figure is judged against (the previous sample: a re-quantised copy; the
        others: a repeat), the floor stands in for it: every verdict is the same as with full comparisons."""
        t = self.t
        out = []
        for i, (old, old_coarse) in enumerate(self._recent):
            limit = t.frozen_requant_cap if i == len(self._recent) - 1 else t.frozen_max_change
            floor = picture_change_floor(old_coarse, coarse)
            out.append(picture_change(old, gray, self._mask) if floor <= limit + 1e-3 else floor)
        return out

    def _frozen_since(self) -> float | None:
        """When a picture found repeated now began to stand still: the run of small changes before it,
        but no further back than the samples the repeat was looked for in."""
        if self._still_since is None or not self._times:
            return None
        return max(self._still_since, self._times[0])

    def _explain(
        self,
        name: str,
        *,
        m: ImageMetrics,
        repeat: float | None,
        change: float | None,
        lost: float | None,
        similarity: float | None,
        baseline: RobustBaseline,
    ) -> str:
        """Why a problem was reported, in numbers an installer can check."""
        if name == "frozen":
            return (
                f"picture repeated: change {repeat:.2f} to one of the last {len(self._recent) - 1} samples "
                f"(limit {self.t.frozen_max_change:g}), {change:.2f} to the previous one"
            )
        if name == "black":
            return f"dark picture: mean luma {m.mean:.1f}"
        if name == "covered":
            return f"{lost:.0%} of the detailed parts of the view lost their detail (limit {self.t.covered_cells:.0%})"
        if name == "moved":
            return f"view matches its reference at {similarity:.2f} (limit {self.t.moved_similarity:g})"
        if name == "blurred":
            return f"sharpness {m.sharpness:.1f}, {m.sharpness / (baseline.value or 1):.0%} of this camera's usual"
        return ""

    def evidence(self, name: str) -> str:
        """The numbers behind a reported problem (empty if none)."""
        return self._evidence.get(name, "") if self._debounce[name].reported else ""

    def _learn(
        self,
        *,
        sharpness: float,
        baseline: RobustBaseline,
        cells: npt.NDArray[np.float32],
        signature: npt.NDArray[np.float32],
        level: int,
    ) -> None:
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
                reference = np.mean(acc, axis=0).astype(np.float32)
                # Only a view with structure has a reference: its samples must agree with their mean
                # (a street: 0.8-0.9). Noise, snow or a screen of static (0.3) has none, and "moved"
                # is not judged until a stable view is learned.
                stability = float(np.mean([view_similarity(reference, s) for s in acc]))
                if stability >= self.t.reference_stability:
                    self._references[level] = reference
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
            if state["cells"].shape == CELL_GRID:  # baselines of another grid are learned afresh
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
