"""Glue between a camera's reader and its image checks: samples in on the reader
thread, problems out to the health loop, baselines kept in the state directory."""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from agent.config.model import HealthConfig
from agent.health.image_health import ImageHealth, ImageThresholds
from agent.stream.frames import Frame

log = logging.getLogger(__name__)

SAMPLE_WIDTH = 320  # checks work on a small grayscale copy (scaled by swscale, cheap)


def image_thresholds(h: HealthConfig) -> ImageThresholds:
    return ImageThresholds(
        black_after_s=h.black_after_s,
        frozen_after_s=h.frozen_after_s,
        blurred_after_s=h.blurred_after_s,
        covered_after_s=h.covered_after_s,
        moved_after_s=h.moved_after_s,
        moved_accept_after_s=h.moved_accept_after_s,
        clear_after_s=h.clear_after_s,
    )


@dataclass(frozen=True)
class ImageView:
    """The image checks' verdict after the latest sample."""

    problems: tuple[str, ...] = ()
    evidence: dict[str, str] = field(default_factory=dict)
    accepted_views: int = 0
    skipped: int = 0
    samples: int = 0


class ImageWatch:
    """Thread-safe holder of one camera's :class:`ImageHealth`."""

    def __init__(self, camera_id: str, health: ImageHealth, state_file: Path | None) -> None:
        self.camera_id = camera_id
        self._health = health
        self._lock = threading.Lock()
        self._state_file = state_file
        self._save_failed = False
        self.samples = 0
        self.view = ImageView()
        if state_file is not None and state_file.exists():
            try:
                with np.load(state_file) as data:
                    loaded = health.load_state({k: data[k] for k in data.files})
            except (OSError, ValueError) as exc:
                loaded = False
                log.warning("camera %s: cannot read saved image baselines %s: %s", camera_id, state_file, exc)
            if loaded:
                log.info("camera %s: image baselines restored from %s", camera_id, state_file)

    def on_frame(self, frame: Frame) -> None:
        """Frame sink: runs on the reader thread, about once per image_check_interval_s."""
        gray = frame.gray(width=SAMPLE_WIDTH)
        with self._lock:
            health = self._health
            health.observe(gray, frame.mono)
            self.samples += 1
            problems = health.problems()
            # Published whole, in one assignment: readers of the verdict never wait for a check.
            self.view = ImageView(
                problems,
                {p: health.evidence(p) for p in problems},
                health.accepted_views,
                health.skipped,
                self.samples,
            )

    def problems(self) -> tuple[str, ...]:
        with self._lock:
            return self._health.problems()

    def evidence(self) -> dict[str, str]:
        """Why each reported problem was reported (the numbers measured)."""
        with self._lock:
            return {p: self._health.evidence(p) for p in self._health.problems()}

    @property
    def accepted_views(self) -> int:
        with self._lock:
            return self._health.accepted_views

    @property
    def skipped(self) -> int:
        with self._lock:
            return self._health.skipped

    def save(self) -> None:
        """Write what was learned (atomically); a failure is logged once and monitoring goes on."""
        if self._state_file is None:
            return
        with self._lock:
            state = self._health.state()
        if state is None:
            return
        tmp = self._state_file.with_name(self._state_file.name + ".tmp.npz")
        try:
            self._state_file.parent.mkdir(parents=True, exist_ok=True)
            save: Any = np.savez  # numpy's stubs do not type **arrays
            save(tmp, **state)
            os.replace(tmp, self._state_file)
            self._save_failed = False
        except OSError as exc:
            if not self._save_failed:
                log.error("camera %s: cannot save image baselines to %s: %s", self.camera_id, self._state_file, exc)
            self._save_failed = True
