"""The ward agent: readers in a few reader processes, one health loop, one publisher, one detector.

:func:`plan_cameras` wires the cameras (their readers, thresholds and
detection); :class:`Agent` holds the parts and runs the health loop. The loop
owns the monotonic clock that verdicts are judged on. Every ``tick_s`` it
takes each reader's latest report (see :mod:`agent.shard`), lets
:func:`agent.camera.step` decide what that camera has to say, and sends it:
events for every change, health on every change and every ``heartbeat_s``;
and agent stats every ``stats_s``.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from agent import __version__
from agent.camera import CameraState, Seen, Ward, step
from agent.clock import Clock, rfc3339
from agent.config.model import AgentConfig, CameraConfig, DetectionConfig
from agent.detect.detector import OnnxDetector, find_model
from agent.detect.service import CameraDetection, DetectionService, Emitted
from agent.detect.tracker import Plausible
from agent.errors import DetectorError, ModelNotFound
from agent.health import HealthMachine, Thresholds, UptimeTracker
from agent.health.image_watch import image_thresholds
from agent.observe import AgentNow, CameraNow, MetricsServer
from agent.publish.durable import DurableOutbox
from agent.publish.mqtt import MqttPublisher, Pace
from agent.publish.outbox import OutMessage
from agent.publish.payloads import agent_payload
from agent.publish.publisher import Publisher
from agent.shard import ImageSpec, ReaderProcesses, ReaderSpec, RemoteImage, RemoteReader
from agent.stream.frames import ArrayFrame
from agent.sysinfo import cpu_seconds, open_fds, release_free_memory, rss_bytes, thread_count
from common.notify import Notifier
from contract.payloads import Stats, to_wire
from contract.topics import Topics
from contract.vocab import STATS_SCHEMA

log = logging.getLogger(__name__)

OVERLOAD_HOLD_S = 60.0  # "overloaded" stays in the status this long after the last sign of it
# Frames the detector drops are counted always (the stats' overload figures) but said as "overloaded" only when
# they are a share of its work a PC short of CPU would show: more than DROPPED_SHARE of the frames meant for it
# over a minute, once the start's burst is over (every camera's first frames and every parked car a new track
# reach the detector at once). A drop now and then, when new tracks ask for every frame, is not a PC too small.
# A reader process short of CPU and a late health loop are said at once.
STARTUP_GRACE_S = 30.0
DROPPED_SHARE = 0.05
DROPPED_WINDOW_S = 60.0
DROPPED_MIN_FRAMES = 50  # fewer frames than this in the window say nothing either way
LATE_TICK_S = 1.0  # the health loop this late is a sign of overload


@dataclass
class CameraWatch:
    """Everything the agent keeps for one camera: its health loop state, and what reads and checks it."""

    config: CameraConfig
    reader: RemoteReader
    state: CameraState
    image: RemoteImage | None = None
    detection: CameraDetection | None = None
    detect_reader: RemoteReader | None = None  # only when detection reads another stream

    def seen(self, now: float) -> Seen:
        """What its reader and image checks report now."""
        image = self.image
        problems = image.problems() if image is not None else ()
        return Seen(
            self.reader.snapshot(now),
            problems,
            image.evidence() if problems and image is not None else None,
            image.accepted_views if image is not None else 0,
        )


def build_detector(d: DetectionConfig) -> OnnxDetector | None:
    """The shared detector, or None when detection is off (by config, or no model found and not asked for).

    Raises :class:`DetectorError` (naming the file) when the model is there but unusable, when
    detection was asked for (``enabled = true``) and the model is missing, or when a label is
    not one of the model's classes.
    """
    if d.enabled is False:
        return None
    try:
        manifest, model_dir = find_model(d.model, d.model_dir)
    except ModelNotFound as exc:
        if d.enabled is None and not d.required:
            log.info("detection off: %s", exc)
            return None
        raise
    # Weaker detections only keep a live track going; events need min_score.
    detector = OnnxDetector(manifest, model_dir, threads=d.threads, min_score=round(0.6 * d.min_score, 3))
    unknown = [label for label in d.labels if label not in detector.classes]
    if unknown:
        raise DetectorError(
            f"detection.labels: {', '.join(map(repr, unknown))} not among the classes of model {manifest.name} "
            f"({model_dir / manifest.classes_file})"
        )
    log.info(
        "detection on: model %s (%s, %dx%d) from %s, %d thread(s)",
        manifest.name,
        manifest.layout,
        manifest.width,
        manifest.height,
        model_dir,
        d.threads,
    )
    return detector


@dataclass
class CameraPlan:
    """What the agent will run for its cameras: the readers (one per stream), where detection frames go, and
    per camera its health thresholds, its detection and the key of the reader detection reads."""

    specs: list[ReaderSpec] = field(default_factory=list)
    sinks: dict[str, Callable[[ArrayFrame], None]] = field(default_factory=dict)
    cameras: list[tuple[CameraConfig, Thresholds, CameraDetection | None, str | None]] = field(default_factory=list)


def plan_cameras(
    config: AgentConfig, service: DetectionService | None, *, writable: bool, started: float
) -> CameraPlan:
    """Every enabled camera's readers, thresholds and detection (added to ``service``); ``writable``: the
    state directory takes image baselines."""
    h, d = config.health, config.detection
    plan = CameraPlan()
    for cam in config.enabled_cameras:
        ch = cam.health.merged(h) if cam.health else h
        image: ImageSpec | None = None
        if ch.image_checks:
            image = ImageSpec(
                ch.image_check_interval_s,
                image_thresholds(ch),
                tuple(tuple((float(x), float(y)) for x, y in polygon) for polygon in cam.masks),
                config.state_dir / "image" / f"{cam.id}.npz" if writable else None,
            )
        thresholds = Thresholds(
            offline_after_s=cam.offline_after_s or h.offline_after_s,
            online_after_s=h.online_after_s,
            low_fps_ratio=h.low_fps_ratio,
            low_fps_after_s=h.low_fps_after_s,
            clear_after_s=h.clear_after_s,
        )
        detection: CameraDetection | None = None
        detect_key: str | None = None
        interval = 1.0 / d.detect_fps
        detect_url, source = cam.detection_source(d.substream)
        if service is not None and cam.detection:
            detection = add_detection(service, d, cam, started)
            # Another stream (the substream): its own connection, read only for detection.
            detect_key = cam.id if detect_url == cam.stream_url else f"{cam.id} ({source.split(' ')[0]})"
            plan.sinks[detect_key] = detection.on_frame
            log.info("camera %s: detection reads the %s", cam.id, source)
        own_detect = interval if detect_key == cam.id else None
        plan.specs.append(reader_spec(config, cam.id, cam.stream_url, cam, image=image, detect=own_detect))
        if detect_key is not None and detect_key != cam.id:
            fallback = cam.id if source.startswith("substream") else None
            plan.specs.append(reader_spec(config, detect_key, detect_url, cam, detect=interval, fallback_to=fallback))
        plan.cameras.append((cam, thresholds, detection, detect_key))
    return plan


def add_detection(service: DetectionService, d: DetectionConfig, cam: CameraConfig, started: float) -> CameraDetection:
    return service.add_camera(
        cam.id,
        labels=d.labels,
        min_score=d.min_score,
        min_hits=d.min_hits,
        lost_after_s=d.lost_after_s,
        motion_min_area=d.motion_min_area,
        max_events_per_min=d.max_events_per_min,
        zones=dict(cam.zones),
        masks=cam.masks,
        now=started,
        crops=d.motion_crops,
        plausible={label: Plausible(p.min_height, p.min_aspect, p.max_aspect) for label, p in d.plausible.items()},
    )


def reader_spec(
    config: AgentConfig,
    key: str,
    url: str,
    cam: CameraConfig,
    *,
    image: ImageSpec | None = None,
    detect: float | None = None,
    fallback_to: str | None = None,
) -> ReaderSpec:
    s = config.stream
    return ReaderSpec(
        key,
        url,
        transport=cam.transport or s.transport,
        open_timeout_s=s.open_timeout_s,
        read_timeout_s=s.read_timeout_s,
        backoff_initial_s=s.backoff_initial_s,
        backoff_max_s=s.backoff_max_s,
        fps_window_s=config.health.fps_window_s,
        image=image,
        detect_interval_s=detect,
        detect_keyframes_above=config.detection.keyframes_above or None,
        group=cam.id,
        fallback_to=fallback_to,
    )


class DropShare:
    """The share of the detector's frames lost over the last ``window_s`` (judged once the notes span half of
    it), from running totals noted each tick."""

    def __init__(self, window_s: float, min_frames: int = DROPPED_MIN_FRAMES) -> None:
        self.window_s = window_s
        self.min_frames = min_frames
        self._notes: deque[tuple[float, int, int]] = deque()

    def note(self, now: float, offered: int, lost: int) -> float:
        """``offered``: frames meant for the detector so far; ``lost``: those of them dropped so far."""
        notes = self._notes
        notes.append((now, offered, lost))
        while len(notes) > 1 and now - notes[1][0] >= self.window_s:  # the oldest note still at the window's start
            notes.popleft()
        since, offered0, lost0 = notes[0]
        if now - since < self.window_s / 2 or offered - offered0 < self.min_frames:
            return 0.0  # too short a stretch, or too few frames, to tell a burst from a steady share
        return (lost - lost0) / (offered - offered0)


class Agent:
    def __init__(
        self,
        config: AgentConfig,
        clock: Clock | None = None,
        tick_s: float = 0.25,
        publisher: Callable[[DurableOutbox], Publisher] | None = None,
    ) -> None:
        """``publisher``: builds the publisher from the outbox (default: MQTT to ``config.mqtt``; tests pass
        :class:`agent.publish.publisher.MemoryPublisher`)."""
        self.config = config
        self.clock = clock or Clock()
        self.tick_s = tick_s
        self.started_mono = self.clock.mono()
        self.started_wall = self.clock.wall()
        self.topics = Topics(config.mqtt.topic_prefix, config.ward)
        self.problems: list[str] = []
        self._stop = threading.Event()
        self.notifier = Notifier()  # systemd: ready, watchdog (outside systemd: nothing)
        h = config.health
        self.cameras: dict[str, CameraWatch] = {}
        self.detection: DetectionService | None = None
        self.detector_problem: str | None = None
        d = config.detection
        try:
            detector = build_detector(d)
        except DetectorError as exc:
            if d.required:
                raise
            log.error("detection off: %s; health monitoring goes on", exc)
            self.detector_problem = str(exc)
            self.problems.append("detector_unavailable")
            detector = None
        if detector is not None:
            self.detection = DetectionService(
                detector,
                ward=config.ward,
                emit=self._emit,
                wall_of=self.clock.wall_of,
                queue_max=d.queue_max,
                max_cores=d.max_cores or None,
                # ONNX Runtime runs a one-thread session on the caller's thread: its CPU is that thread's.
                cost_clock=time.thread_time if d.threads == 1 else time.process_time,
            )
        self._check_state_dir()
        plan = plan_cameras(
            config, self.detection, writable="state_dir_unwritable" not in self.problems, started=self.started_mono
        )
        self.readers = ReaderProcesses(plan.specs, processes=config.stream.processes, on_frame=plan.sinks)
        for cam, thresholds, detection, detect_key in plan.cameras:
            reader = self.readers.readers[cam.id]
            self.cameras[cam.id] = CameraWatch(
                cam,
                reader,
                CameraState(
                    cam.id,
                    cam.name,
                    HealthMachine(thresholds, self.started_mono),
                    UptimeTracker(h.uptime_window_s, self.started_mono),
                ),
                reader.image,
                detection,
                self.readers.readers[detect_key] if detect_key not in (None, cam.id) else None,
            )
        o = config.outbox
        self.outbox = DurableOutbox(
            config.state_dir / "outbox.sqlite",
            max_messages=config.mqtt.queue_max,
            max_bytes=o.max_bytes,
            max_age_s=o.max_age_s,
        )
        self.publisher: Publisher = publisher(self.outbox) if publisher is not None else self._mqtt(self.outbox)
        self._last_stats_at: float | None = None
        self._overloaded_at: float | None = None
        self._last_tick_at: float | None = None
        self._drops = DropShare(DROPPED_WINDOW_S)
        self._announced_problems: list[str] = []
        self._last_cpu = (self.started_mono, cpu_seconds())

    def _mqtt(self, outbox: DurableOutbox) -> MqttPublisher:
        config, o = self.config, self.config.outbox
        return MqttPublisher(
            config.mqtt,
            self.topics,
            client_id=config.mqtt.client_id or f"camwatch-agent-{config.ward}",
            birth=lambda: self._status("online"),
            will=lambda: self._status("offline", reason="lost"),
            outbox=outbox,
            pace=Pace(o.drain_per_s, o.drain_kbps * 1000 / 8),
            clock=self.clock.mono,
            wall=self.clock.wall,
        )

    def _emit(self, item: Emitted) -> None:
        """Detection output (detector thread) into the outbox: the snapshot goes before its event."""
        if item.kind == "snapshot":
            topic = self.topics.snapshot(item.camera, item.event_id)
            self._send(OutMessage(topic, item.payload, "snapshot", item.camera, queued_at=self.clock.mono()))
        else:
            topic = self.topics.events(item.camera)
            self._send(OutMessage(topic, item.payload, "detection", item.camera, queued_at=self.clock.mono()))

    def _send(self, message: OutMessage) -> None:
        if isinstance(message.payload, dict):
            # One line per event at debug level: what the outbox must deliver, for whoever troubleshoots a ward.
            log.debug("queued event %s %s on %s", message.payload["id"], message.payload["type"], message.camera)
        self.publisher.send(message)

    # -- status payloads ------------------------------------------------------

    def _status(self, state: str, reason: str | None = None) -> dict[str, Any]:
        return agent_payload(
            ward=self.config.ward,
            state=state,
            version=__version__,
            cameras=list(self.cameras),
            started_at=self.started_wall,
            now_wall=self.clock.wall(),
            problems=self.agent_problems(),
            reason=reason,
            hostname=socket.gethostname(),
            refused=getattr(getattr(self, "publisher", None), "refusal", None),
            overload=self.overload() if "overloaded" in self.agent_problems() else None,
        )

    def agent_problems(self) -> list[str]:
        problems = list(self.problems)
        counts = self.outbox.counts()
        if counts["dropped"] or counts["expired"]:
            problems.append("outbox_overflow")
        if self.outbox.problem is not None:
            problems.append("outbox_unwritable")
        publisher = getattr(self, "publisher", None)  # the will is built while the publisher is being made
        if publisher is not None and publisher.refusal is not None:
            problems.append("publish_refused")
        overloaded_at = getattr(self, "_overloaded_at", None)
        if overloaded_at is not None and self.clock.mono() - overloaded_at < OVERLOAD_HOLD_S:
            problems.append("overloaded")
        return problems

    def overload(self) -> dict[str, int]:
        """What the agent left undone for want of CPU since it started (all cameras)."""
        image_shed = detect_shed = dropped = 0
        for reader in self.readers.readers.values():
            if reader.report is not None:
                image_shed += reader.report.image_shed
                detect_shed += reader.report.detect_shed
                dropped += reader.report.detect_dropped
        if self.detection is not None:
            dropped += sum(c.dropped for c in self.detection.cameras.values())
        return {
            "image_samples_shed": image_shed,
            "detection_frames_shed": detect_shed,
            "detection_frames_dropped": dropped,
        }

    def _watch_load(self, now: float) -> None:
        """Note when the agent fell behind: a reader process shed work, this loop ran late, frames were dropped."""
        late = self._last_tick_at is not None and now - self._last_tick_at > self.tick_s + LATE_TICK_S
        behind = False
        if now - self.started_mono >= STARTUP_GRACE_S:
            lost = self.overload()["detection_frames_dropped"]
            taken = sum(c.frames for c in self.detection.cameras.values()) if self.detection is not None else 0
            never_came = sum(r.report.detect_dropped for r in self.readers.readers.values() if r.report is not None)
            behind = self._drops.note(now, taken + never_came, lost) > DROPPED_SHARE
        if self.readers.shedding or late or behind:
            if self._overloaded_at is None or now - self._overloaded_at >= OVERLOAD_HOLD_S:
                why = (
                    "a reader process is short of CPU"
                    if self.readers.shedding
                    else "the health loop ran late"
                    if late
                    else "the detector cannot keep up"
                    if self.detection is None or self.detection.budget is None
                    else f"the detector cannot keep up within detection.max_cores = {self.detection.budget.cores:g}"
                )
                log.warning("agent overloaded (%s): image checks and detection are shed first, never liveness", why)
            self._overloaded_at = now
        self._last_tick_at = now

    def observe(self) -> AgentNow:
        """The agent as /metrics, /healthz and /readyz see it (reads only: the metrics thread asks)."""
        now = self.clock.mono()
        figures = self.camera_figures(now)
        cameras = {}
        for cam_id, watch in self.cameras.items():
            verdict = watch.state.machine.verdict
            cameras[cam_id] = CameraNow(
                verdict.state, self.clock.wall_of(verdict.since), verdict.problems, figures[cam_id]
            )
        not_ready = []
        if not self.publisher.connected:
            not_ready.append(f"not connected to the broker {self.config.mqtt.host}:{self.config.mqtt.port}")
        if self.outbox.problem is not None:
            not_ready.append(self.outbox.problem)
        if "state_dir_unwritable" in self.problems:
            not_ready.append(f"state_dir {self.config.state_dir} is not writable")
        last = self._last_tick_at
        return AgentNow(
            ward=self.config.ward,
            version=__version__,
            hostname=socket.gethostname(),
            started_wall=self.started_wall,
            problems=self.agent_problems(),
            broker_connected=self.publisher.connected,
            refused=self.publisher.refused,
            outbox=self.outbox.counts(),
            cameras=cameras,
            detector=self._detector_stats(),
            loop_age_s=None if last is None else max(0.0, now - last),
            not_ready=not_ready,
        )

    def _serve_metrics(self) -> MetricsServer | None:
        address = self.config.metrics.address
        if address is None:
            return None
        try:
            server = MetricsServer(self, *address).start()
        except OSError as exc:
            log.error(
                "metrics.listen %s: cannot listen there (%s); monitoring goes on without /metrics",
                self.config.metrics.listen,
                exc.strerror or exc,
            )
            return None
        log.info("metrics on http://%s/metrics (and /healthz, /readyz)", self.config.metrics.listen)
        return server

    def _check_state_dir(self) -> None:
        d = self.config.state_dir
        try:
            d.mkdir(parents=True, exist_ok=True)
            probe = d / ".camwatch-write-test"
            probe.write_bytes(b"ok")
            probe.unlink()
        except OSError as exc:
            log.error("state_dir %s is not writable (%s); monitoring goes on without it", d, exc.strerror or exc)
            self.problems.append("state_dir_unwritable")

    # -- lifecycle --------------------------------------------------------------

    def stop(self) -> None:
        self._stop.set()

    def run(self) -> None:
        """Run until :meth:`stop`; then publish ``shutdown`` and release everything."""
        log.info(
            "camwatch agent %s for ward %s: %d camera(s), broker %s:%s",
            __version__,
            self.config.ward,
            len(self.cameras),
            self.config.mqtt.host,
            self.config.mqtt.port,
        )
        self.publisher.start()
        if self.detection is not None:
            self.detection.start()
        self.readers.start()  # in processes of their own: nothing here waits for them to start
        metrics = self._serve_metrics()
        self.notifier.ready(f"watching {len(self.cameras)} camera(s)")
        try:
            while not self._stop.is_set():
                try:
                    self.tick(self.clock.mono())
                except Exception:  # keep watching: one bad tick must not stop the ward's agent
                    log.exception("health loop failed; continuing")
                self.notifier.alive()  # from this loop only: if it hangs, systemd's watchdog restarts the agent
                self._stop.wait(self.tick_s)
        finally:
            self.notifier.stopping()
            if metrics is not None:
                metrics.stop()
            self.readers.stop()  # each reader process saves its cameras' image baselines
            if self.detection is not None:
                self.detection.stop()
            self.publisher.stop(final_status=self._status("offline", reason="shutdown"))
            self.outbox.close()  # what was not acknowledged stays on disk for the next start
            self.readers.join()
            log.info("camwatch agent stopped")

    # -- one tick of the health loop ------------------------------------------------

    def tick(self, now: float) -> None:
        self._watch_load(now)
        problems = self.agent_problems()
        if problems != self._announced_problems and self.publisher.connected:
            # Agent-level problems (outbox overflow...) are part of the retained status.
            self.publisher.republish_birth()
            self._announced_problems = problems
        if self.detection is not None:
            self.detection.expire(now)
        ward = Ward(self.config.ward, self.config.health.heartbeat_s)
        for cam_id, watch in self.cameras.items():
            said = step(
                watch.state, watch.seen(now), now=now, ward=ward, wall_of=self.clock.wall_of, now_wall=self.clock.wall()
            )
            for change in said.changes:
                if change.type == "state_changed":
                    log.info(
                        "camera %s: %s -> %s %s", cam_id, change.from_state, change.to_state, ",".join(change.problems)
                    )
            for event in said.events:
                self._send(OutMessage(self.topics.events(cam_id), event, "state", cam_id, queued_at=now))
            if said.health is not None:
                self.publisher.set_health(cam_id, said.health)
        last = self._last_stats_at
        if (last is None and now - self.started_mono >= 2.0) or (
            last is not None and now - last >= self.config.health.stats_s
        ):
            release_free_memory()  # so RSS in the stats is what the agent holds, not glibc's free lists
            self.publisher.publish_stats(self.stats_payload(now))
            self._last_stats_at = now

    def camera_figures(self, now: float) -> dict[str, dict[str, Any]]:
        """Each camera's figures now, as the stats payload carries them (reads only: any thread may ask)."""
        cameras: dict[str, dict[str, Any]] = {}
        for cam_id, watch in self.cameras.items():
            snap = watch.reader.snapshot(now)
            cameras[cam_id] = {
                "state": watch.state.machine.verdict.state,
                "fps": None if snap.fps is None else round(snap.fps, 2),
                "bitrate_kbps": None if snap.bitrate_kbps is None else round(snap.bitrate_kbps, 1),
                "reconnects": snap.reconnects,
                "probes": watch.reader.probes,
                "packets": snap.packets,
                "frames_decoded": snap.frames_decoded,
                "frames_sampled": snap.frames_sampled,
                "samples_skipped": watch.image.skipped if watch.image is not None else 0,
            }
            for reader in (watch.reader, watch.detect_reader):
                report = reader.report if reader is not None else None
                if report is not None and (report.image_shed or report.detect_shed or report.detect_dropped):
                    cameras[cam_id]["image_samples_shed"] = report.image_shed
                    cameras[cam_id]["detection_frames_shed"] = report.detect_shed
                    cameras[cam_id]["detection_frames_dropped"] = report.detect_dropped
            if watch.detection is not None:
                cameras[cam_id]["detection"] = watch.detection.stats()
        return cameras

    def stats_payload(self, now: float) -> dict[str, Any]:
        cpu = cpu_seconds()
        last_t, last_cpu = self._last_cpu
        cpu_percent = 100.0 * (cpu - last_cpu) / (now - last_t) if now > last_t else None
        self._last_cpu = (now, cpu)
        cameras = self.camera_figures(now)
        stats = {
            "schema": STATS_SCHEMA,
            "ward": self.config.ward,
            "ts": rfc3339(self.clock.wall()),
            "version": __version__,
            "pid": os.getpid(),
            "uptime_s": round(now - self.started_mono, 1),
            "cpu_s": round(cpu, 2),
            "cpu_percent": None if cpu_percent is None else round(cpu_percent, 1),
            "rss_bytes": rss_bytes(),
            "threads": thread_count(),
            "fds": open_fds(),
            "outbox": {**self.outbox.counts(), "refused": self.publisher.refused},
            "readers": {
                "processes": len(self.readers.processes),
                "restarts": self.readers.restarts,
                "shedding": self.readers.shedding,
            },
            "cameras": cameras,
            "detector": self._detector_stats(),
        }
        return to_wire(Stats.model_validate(stats))

    def _detector_stats(self) -> dict[str, Any] | None:
        service = self.detection
        if service is None:
            return {"problem": self.detector_problem} if self.detector_problem else None
        inferences = sum(c.inferences for c in service.cameras.values())
        return {
            "model": self.config.detection.model,
            "queue": len(service.queue),
            "queue_max": service.queue.maxlen,
            "inference_ms": round(1000 * service.inference_s / inferences, 2) if inferences else None,
            "max_cores": None if service.budget is None else service.budget.cores,
            "rested_s": round(service.rested_s, 1),
            "problem": None,
        }
