"""Detection for a whole ward: motion gates, one shared detector, a tracker per camera.

Frames arrive on each camera's reader thread at ``detect_fps``. A cheap
motion gate (small grayscale, masks applied) decides whether the frame is
worth an inference; if so a copy at most 640 px wide waits for the
detector, one frame per camera (its newest), cameras served in turn. One
worker thread runs the one ONNX Runtime session, within a CPU budget; when
it cannot keep up, frames replaced by newer ones or grown late are dropped
and counted per camera, never queued without bound. Detections feed the camera's tracker;
a track that starts or ends becomes an event, and a started one first sends
its best snapshot (JPEG) so the event can point at it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import cv2
import numpy as np
import numpy.typing as npt

from agent.detect.crops import Box, explained, from_window, merge, windows_for
from agent.detect.decoders import Detections
from agent.detect.events import detection_payload
from agent.detect.motion import MotionGate
from agent.detect.snapshot import render_snapshot
from agent.detect.tracker import DEFAULT_PLAUSIBLE, Plausible, Track, Tracker, TrackEvent
from agent.health.image import Mask, Polygon, mask_from_polygons
from agent.stream.frames import Frame
from contract.events import new_event_id

log = logging.getLogger(__name__)

BGR = npt.NDArray[np.uint8]
MOTION_WIDTH = 160  # motion is judged on a tiny grayscale copy
DETECT_WIDTH = 640  # what is queued (and what snapshots are made from): at most this wide
CROP_WIDTH = 1280  # windows over small moving things are cut from the frame at most this wide
MAX_REGIONS = 16  # moving things per frame considered for a closer look
WINDOW_BACKLOG = 4  # cameras waiting for the detector from which frames get no closer look (shed before anything)
MIN_SIDE = 32  # frames smaller than this are skipped (counted), not fed to the model
BETTER_SNAPSHOT = 0.1  # an ended track re-sends its snapshot if its best score rose this much
MAX_WAIT_S = 1.0  # a frame older than this when the detector gets to it is dropped (counted): it would be late
BURST_S = 1.0  # detector seconds that may be spent at once after a quiet spell, whatever max_cores says


class Model(Protocol):
    classes: list[str]

    @property
    def input_size(self) -> tuple[int, int]:
        """The model's input (width, height): the size of a window cut where motion is."""
        ...

    def detect(self, bgr: BGR) -> Detections: ...


@dataclass
class Emitted:
    """What a camera's detection hands to the publisher, in order."""

    kind: str  # "snapshot" or "detection"
    camera: str
    payload: dict[str, Any] | bytes
    event_id: str
    at: float  # monotonic time of the frame it comes from


Emit = Callable[[Emitted], None]


class RateLimit:
    """A token bucket: ``per_min`` events a minute on average, bursts up to ``per_min``."""

    def __init__(self, per_min: int, now: float) -> None:
        self.capacity = float(per_min)
        self.tokens = float(per_min)
        self.rate = per_min / 60.0
        self.at = now

    def allow(self, now: float) -> bool:
        self.tokens = min(self.capacity, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


class Budget:
    """The detector's CPU as a token bucket: it fills at ``cores`` seconds a second, up to ``burst_s``; each
    inference's cost is taken from it, and the worker rests while it is below zero. Pure logic."""

    def __init__(self, cores: float, now: float, burst_s: float = BURST_S) -> None:
        self.cores = cores
        self.burst_s = burst_s
        self.level = burst_s
        self.at = now

    def spend(self, cost_s: float, now: float) -> float:
        """Take ``cost_s`` of CPU; returns how long to rest before the next inference."""
        self.level = min(self.burst_s, self.level + (now - self.at) * self.cores) - cost_s
        self.at = now
        return max(0.0, -self.level / self.cores)


@dataclass
class Job:
    camera: CameraDetection
    bgr: BGR
    mono: float
    frame: Frame | None = None  # the decoded frame, when larger than bgr, for windows cut from it
    regions: list[Box] = field(default_factory=list)  # small moving things (normalised), for a closer look


class JobQueue:
    """Each camera's newest frame waiting for the detector, cameras served in the order they began to wait.

    A camera's new frame replaces the one it has waiting (dropped, returned) and keeps its place in line:
    when the detector falls behind, every camera gets its turn with its freshest picture, not a long line of
    stale ones. At most ``maxlen`` cameras wait; beyond that the one waiting longest is dropped.
    """

    def __init__(self, maxlen: int) -> None:
        self.maxlen = maxlen
        self._jobs: dict[int, Job] = {}  # by id() of the camera, in the order each began to wait
        self._cond = threading.Condition()
        self.closed = False

    def put(self, job: Job) -> Job | None:
        key = id(job.camera)
        with self._cond:
            dropped = self._jobs.get(key)
            if dropped is None and len(self._jobs) >= self.maxlen:
                dropped = self._jobs.pop(next(iter(self._jobs)))
            self._jobs[key] = job
            self._cond.notify()
        return dropped

    def get(self, timeout: float) -> Job | None:
        with self._cond:
            if not self._jobs and not self.closed:
                self._cond.wait(timeout)
            if not self._jobs:
                return None
            return self._jobs.pop(next(iter(self._jobs)))

    def close(self) -> None:
        with self._cond:
            self.closed = True
            self._cond.notify_all()

    def __len__(self) -> int:
        with self._cond:
            return len(self._jobs)


@dataclass
class _Sent:
    started_id: str
    snapshot_id: str | None
    snapshot_score: float


@dataclass
class CameraDetection:
    """One camera's gate, tracker and counters. ``on_frame`` runs on its reader thread."""

    camera_id: str
    tracker: Tracker
    service: DetectionService
    gate: MotionGate
    masks: Sequence[Polygon] = ()
    limit: RateLimit = field(default_factory=lambda: RateLimit(20, time.monotonic()))
    crops: int = 0  # windows per frame over small moving things (0: the whole frame only)
    # counters (each written by one thread only)
    frames: int = 0  # frames offered at detect_fps
    skipped: int = 0  # frames the model cannot take (too small, unreadable)
    queued: int = 0
    dropped: int = 0  # queued frames dropped because the detector was saturated
    inferences: int = 0
    window_inferences: int = 0  # of them, on windows where something small moved
    errors: int = 0
    events: int = 0
    suppressed: int = 0  # detection_started events over the rate limit
    _mask: Mask | None = None
    _last_queued: float = float("-inf")  # monotonic time of the last frame queued for the detector
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _best: dict[int, BGR] = field(default_factory=dict)
    _sent: dict[int, _Sent] = field(default_factory=dict)
    _suppressed_tracks: set[int] = field(default_factory=set)

    # -- reader thread ------------------------------------------------------------

    def on_frame(self, frame: Frame) -> None:
        self.frames += 1
        if frame.width < MIN_SIDE or frame.height < MIN_SIDE:
            self.skipped += 1
            return
        try:
            gray = frame.gray(width=MOTION_WIDTH)
        except Exception as exc:  # a frame swscale cannot convert: skip it, count it
            self.skipped += 1
            log.debug("camera %s: frame skipped for detection: %s", self.camera_id, exc)
            return
        if self.masks and (self._mask is None or self._mask.shape != gray.shape):
            self._mask = mask_from_polygons(gray.shape, self.masks)
        # Tracks ask for frames whatever the motion (new or moving ones every frame, an event's still object
        # now and then); still things no event is about (a parked car) ask for none.
        interval = self.tracker.watch_interval(frame.mono)
        due = interval is not None and frame.mono - self._last_queued >= interval
        if not self.gate.should_detect(gray, self._mask, wanted=due):
            return
        try:
            bgr = frame.bgr(width=min(DETECT_WIDTH, frame.width))
        except Exception as exc:
            self.skipped += 1
            log.debug("camera %s: frame skipped for detection: %s", self.camera_id, exc)
            return
        self.queued += 1
        self._last_queued = frame.mono
        # A closer look only while the detector keeps up (a backlog sheds it first), and the decoded frame
        # kept for it only when it is larger than what is queued anyway: memory stays bounded.
        keeping_up = self.crops > 0 and len(self.service.queue) < WINDOW_BACKLOG
        regions = self.gate.regions(MAX_REGIONS) if keeping_up else []
        larger = frame if regions and frame.width > bgr.shape[1] else None
        self.service.submit(Job(self, bgr, frame.mono, larger, regions))

    def look_closer(self, det: Detections, job: Job) -> Detections:
        """The whole frame's detections, and what windows of the model's input size over small moving things
        the whole-frame pass left unexplained found (worker thread)."""
        unexplained = [r for r in job.regions if not explained(r, det)]
        if not unexplained:
            return det
        model = self.service.model
        if job.frame is None:
            height, width = job.bgr.shape[:2]
        else:
            width, height = job.frame.scaled_size(min(CROP_WIDTH, job.frame.width))
        windows = windows_for(unexplained, width, height, model.input_size, self.crops)
        if not windows:
            return det
        hi = job.bgr if job.frame is None or width == job.bgr.shape[1] else job.frame.bgr(width=width)
        parts = [det]
        for window in windows:
            x0, y0, x1, y1 = window
            parts.append(from_window(model.detect(np.ascontiguousarray(hi[y0:y1, x0:x1])), window, width, height))
            self.window_inferences += 1
        return merge(parts)

    @property
    def gated(self) -> int:
        """Frames that motion gating kept away from the detector."""
        return self.gate.gated

    # -- worker thread ---------------------------------------------------------------

    def on_detections(self, det: Detections, job: Job) -> None:
        with self._lock:
            h, w = job.bgr.shape[:2]
            self.tracker.picture_aspect = w / h if h else self.tracker.picture_aspect  # boxes are normalised
            events = self.tracker.update(det, job.mono, job.bgr)
            for track in self.tracker.tracks:
                if track.best_at == job.mono and track.last_seen == job.mono:
                    self._best[track.id] = job.bgr  # shared by all tracks seen in this frame
            self._handle(events, job.mono)

    # -- health loop -------------------------------------------------------------------

    def expire(self, now: float) -> None:
        """End tracks that are no longer seen even when no frames come (camera went offline)."""
        with self._lock:
            self._handle(self.tracker.expire(now), now)

    # -- events ----------------------------------------------------------------------------

    def _handle(self, events: list[TrackEvent], now: float) -> None:
        for event in events:
            track = event.track
            if event.type == "detection_started":
                if self.limit.allow(now):
                    self._started(track, now)
                else:
                    self.suppressed += 1
                    self._suppressed_tracks.add(track.id)
            else:
                if track.id in self._suppressed_tracks:
                    self._suppressed_tracks.discard(track.id)
                else:
                    self._ended(track, now)
                self._best.pop(track.id, None)
                self._sent.pop(track.id, None)
        # Tracks that vanished before ever starting keep no picture.
        alive = {t.id for t in self.tracker.tracks}
        for track_id in [k for k in self._best if k not in alive]:
            del self._best[track_id]

    def _snapshot(self, track: Track, event_id: str, now: float) -> str | None:
        image = self._best.get(track.id)
        if image is None:
            return None
        try:
            jpeg = render_snapshot(image, track.best_box, f"{track.label} {track.best_score:.2f}")
        except cv2.error as exc:
            log.warning("camera %s: snapshot not encoded: %s", self.camera_id, exc)
            return None
        self.service.emit(Emitted("snapshot", self.camera_id, jpeg, event_id, now))
        return event_id

    def _started(self, track: Track, now: float) -> None:
        event_id = new_event_id()
        snapshot = self._snapshot(track, event_id, now)
        self._sent[track.id] = _Sent(event_id, snapshot, track.best_score)
        self._emit_event("detection_started", track, event_id, snapshot, now)

    def _ended(self, track: Track, now: float) -> None:
        event_id = new_event_id()
        sent = self._sent.get(track.id)
        snapshot = sent.snapshot_id if sent else None
        if sent is None or track.best_score >= sent.snapshot_score + BETTER_SNAPSHOT:
            snapshot = self._snapshot(track, event_id, now) or snapshot
        started_id = sent.started_id if sent else None
        self._emit_event("detection_ended", track, event_id, snapshot, now, started_id=started_id)

    def _emit_event(
        self,
        kind: str,
        track: Track,
        event_id: str,
        snapshot: str | None,
        now: float,
        *,
        started_id: str | None = None,
    ) -> None:
        payload = detection_payload(
            event_id=event_id,
            ward=self.service.ward,
            camera=self.camera_id,
            type=kind,
            track=track,
            snapshot=snapshot,
            wall_of=self.service.wall_of,
            now=now,
            started_id=started_id,
        )
        self.events += 1
        self.service.emit(Emitted("detection", self.camera_id, payload, event_id, now))

    def stats(self) -> dict[str, int]:
        return {
            "frames": self.frames,
            "gated": self.gated,
            "queued": self.queued,
            "dropped": self.dropped,
            "skipped": self.skipped,
            "inferences": self.inferences,
            "window_inferences": self.window_inferences,
            "errors": self.errors,
            "events": self.events,
            "suppressed": self.suppressed,
            "tracks": len(self.tracker.tracks),
        }


class DetectionService:
    """The one detector of an agent and its worker thread."""

    def __init__(
        self,
        model: Model,
        *,
        ward: str,
        emit: Emit,
        wall_of: Callable[[float], float],
        queue_max: int = 16,
        max_cores: float | None = None,
        cost_clock: Callable[[], float] = time.thread_time,
    ) -> None:
        self.model = model
        self.ward = ward
        self.emit = emit
        self.wall_of = wall_of
        self.queue = JobQueue(queue_max)
        # At most max_cores of CPU, measured by cost_clock around each inference (the worker thread's own CPU
        # when the session runs on it; the process's when ONNX Runtime has threads of its own).
        self.budget = None if max_cores is None else Budget(max_cores, time.monotonic())
        self._cost_clock = cost_clock
        self.rested_s = 0.0  # time the worker rested to keep to max_cores
        self.cameras: dict[str, CameraDetection] = {}
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.inference_s = 0.0  # total time in the model (for stats)
        self._error_logged = False

    def add_camera(
        self,
        camera_id: str,
        *,
        labels: Sequence[str],
        min_score: float,
        min_hits: int,
        lost_after_s: float,
        motion_min_area: float,
        max_events_per_min: int,
        zones: dict[str, Polygon] | None = None,
        masks: Sequence[Polygon] = (),
        now: float | None = None,
        crops: int = 0,
        plausible: dict[str, Plausible] | None = None,
    ) -> CameraDetection:
        tracker = Tracker(
            labels=self.model.classes,
            watched=frozenset(labels),
            min_hits=min_hits,
            min_score=min_score,
            lost_after_s=lost_after_s,
            zones=dict(zones or {}),
            masks=masks,
            plausible={**DEFAULT_PLAUSIBLE, **(plausible or {})},
        )
        cam = CameraDetection(
            camera_id,
            tracker,
            self,
            MotionGate(min_fraction=motion_min_area),
            masks=masks,
            limit=RateLimit(max_events_per_min, time.monotonic() if now is None else now),
            crops=crops,
        )
        self.cameras[camera_id] = cam
        return cam

    def submit(self, job: Job) -> None:
        dropped = self.queue.put(job)
        if dropped is not None:
            dropped.camera.dropped += 1

    # -- worker ---------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="detector", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        self.queue.close()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            job = self.queue.get(timeout=0.5)
            if job is None:
                continue
            if time.monotonic() - job.mono > MAX_WAIT_S:  # behind: a late picture makes a late event
                job.camera.dropped += 1
                continue
            spent = self._cost_clock()
            self.process(job)
            if self.budget is not None:
                rest = self.budget.spend(self._cost_clock() - spent, time.monotonic())
                if rest > 0:
                    self.rested_s += rest
                    self._stop.wait(rest)

    def process(self, job: Job) -> None:
        """One inference and what follows from it (the worker thread; tests call it directly)."""
        cam = job.camera
        started = time.perf_counter()
        try:
            det = cam.look_closer(self.model.detect(job.bgr), job)
        except Exception as exc:  # an odd frame or a runtime failure must not end detection
            cam.errors += 1
            if not self._error_logged:
                log.warning("camera %s: detector failed on a frame: %s", cam.camera_id, exc)
                self._error_logged = True
            return
        self.inference_s += time.perf_counter() - started
        cam.inferences += 1
        try:
            cam.on_detections(det, job)
        except Exception:
            log.exception("camera %s: tracking failed", cam.camera_id)

    def expire(self, now: float) -> None:
        for cam in self.cameras.values():
            cam.expire(now)
