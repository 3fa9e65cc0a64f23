"""Reader processes: the cameras' readers run in a few worker processes, up to two per core.

Every demuxed packet passes through Python, and Python runs one thread at a
time per process. Hundreds of readers in the agent's own process (measured:
150 substreams) kept its health loop and publisher waiting behind them, and
starting 454 reader threads took longer than 40 s. So the readers live in
``processes`` worker processes whose only work is reading: their packet
times do not wait for the health loop, the publisher or the detector, and the
agent's process never waits for them.

What crosses a process boundary, over one pipe per worker:

- in: the readers' specs (URLs with credentials stay inside the agent's own
  processes), and ``stop``;
- out, every ``REPORT_S``: each reader's :class:`StreamSnapshot` (absolute
  ``time.monotonic`` instants: the clock is the system's, the same in every
  process), its image checks' verdict, and what it shed;
- out: detection frames (BGR, at most ``SHIP_WIDTH`` wide) for the one
  detector in the agent's process; log records, redacted by the agent.

Image checks run in the worker, next to the decoder, so their cost is spread
over the cores too; their baselines are saved there.

Overload: a worker that wakes late for its own report, or has a reader that
is behind (see :mod:`agent.stream.liveness`), stops decoding for image checks
and detection for ``SHED_HOLD_S`` (and counts what it did not decode), but
never stops demuxing: liveness is the last thing shed.
"""

from __future__ import annotations

import logging
import math
import multiprocessing
import multiprocessing.connection
import os
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from agent.health.image_health import ImageHealth, ImageThresholds
from agent.health.image_watch import ImageWatch
from agent.stream.frames import ArrayFrame, Frame, FrameSampler, Tap
from agent.stream.reader import CameraReader
from agent.stream.stats import StreamSnapshot
from common.redact import RedactingFilter, redact, register_url_secrets

log = logging.getLogger(__name__)

# Two per core, not one: each process runs one Python thread at a time, and a few hundred readers sharing
# one interpreter wait for it (454 substreams on 2 cores: 2 processes shed image checks 8x and called 78
# cameras stalled; 4 shed 2-4x and called none once started, for 0.4 MB more per camera).
PROCESSES_PER_CORE = 2
REPORT_S = 0.5  # how often a worker reports every reader's figures
OPENING_MAX = 128  # connections a worker opens at once (hundreds at start must not flood an NVR)
SHIP_WIDTH = 1280  # detection frames are sent at most this wide (windows over small things use them)
FRAME_BACKLOG = 8  # detection frames waiting to be sent, per worker; older ones are dropped and counted
LATE_S = 0.25  # reports this late twice running mean the worker is short of CPU
VERY_LATE_S = 1.0  # a report this late means it at once
BASELINE_SAVE_S = 300.0  # image baselines are written this often (and at a clean stop)
STALE_REPORT_S = 2.0  # a worker silent this long makes the agent say it is overloaded
# A camera's figures older than this are not proof of silence: its reader is counted as behind. Two
# report periods, so that a report no fresher than this never stands for more than a second of silence.
UNSEEN_S = 2 * REPORT_S
RESTART_DELAY_S = 1.0


@dataclass(frozen=True)
class ImageSpec:
    interval_s: float
    thresholds: ImageThresholds
    masks: tuple[tuple[tuple[float, float], ...], ...] = ()
    state_file: Path | None = None


@dataclass(frozen=True)
class ReaderSpec:
    """One reader, as a worker builds it (picklable)."""

    key: str  # unique in the agent: the camera id, or "<id> (detect_url)"
    url: str  # carries the password: never log it unredacted
    transport: str = "tcp"
    open_timeout_s: float = 5.0
    read_timeout_s: float = 2.0
    backoff_initial_s: float = 1.0
    backoff_max_s: float = 30.0
    fps_window_s: float = 5.0
    image: ImageSpec | None = None
    detect_interval_s: float | None = None
    # Detection decodes keyframes only once the picture is known to be taller than this (a main stream).
    detect_keyframes_above: int | None = None
    group: str = ""  # the camera: its readers share a process
    # A derived substream: if the camera has none, detection moves to this reader's keyframes.
    fallback_to: str | None = None


# A derived substream that fails this way does not exist (or is not open to us): use the main stream.
NO_SUBSTREAM = ("not_found", "no_video", "auth_failed")


@dataclass(frozen=True)
class ImageReport:
    problems: tuple[str, ...] = ()
    evidence: dict[str, str] = field(default_factory=dict)
    accepted_views: int = 0
    skipped: int = 0
    samples: int = 0


@dataclass(frozen=True)
class ReaderReport:
    snapshot: StreamSnapshot
    probes: int = 0
    image: ImageReport | None = None
    image_shed: int = 0  # image-check samples not decoded because the worker was short of CPU
    detect_shed: int = 0  # detection frames not decoded for the same reason
    detect_dropped: int = 0  # detection frames decoded but dropped before the agent took them


def plan(specs: Sequence[ReaderSpec], processes: int | None) -> list[list[ReaderSpec]]:
    """Deal the readers out to ``processes`` workers (None: about one per 60 readers, at most two per core)."""
    if not specs:
        return []
    if processes is None:
        processes = max(1, min(PROCESSES_PER_CORE * (os.cpu_count() or 1), math.ceil(len(specs) / 60)))
    groups: dict[str, list[ReaderSpec]] = {}
    for spec in specs:
        groups.setdefault(spec.group or spec.key, []).append(spec)
    processes = max(1, min(processes, len(groups)))
    out: list[list[ReaderSpec]] = [[] for _ in range(processes)]
    for i, members in enumerate(groups.values()):
        out[i % processes].extend(members)
    return out


class LoadGovernor:
    """How much picture work a reader process does, by how short of CPU it is (pure logic).

    Level 0: everything. Each sign of shortage (at most one step per ``STEP_S``) goes a level up:
    image checks look every 2x, 4x, 8x their interval (1-3), detection pauses (4), image checks pause
    (5). ``RELAX_S`` without a sign goes a level down. Demuxing, and so liveness, is never shed.
    """

    STEP_S = 2.0
    RELAX_S = 20.0
    DETECTION_PAUSED = 4
    IMAGE_PAUSED = 5

    def __init__(self) -> None:
        self.level = 0
        self._changed_at = -math.inf
        self._short_at = -math.inf
        self._was_late = self._was_behind = False

    def sign(self, late: float, behind: bool) -> str | None:
        """Whether one report shows want of CPU (and why): ``late`` is how late the report woke, ``behind``
        whether a connected reader is behind its packets.

        A report a little late, or one reader behind in one report, is a thread
        that waited a moment for the GIL among a hundred (seen now and then at
        75 % CPU with 114 readers a process): either in two reports running (a
        second), or a report very late, is want of CPU.
        """
        was_late, was_behind = self._was_late, self._was_behind
        self._was_late, self._was_behind = late > LATE_S, behind
        if late > VERY_LATE_S or (late > LATE_S and was_late):
            return f"woke {late:.2f} s late"
        if behind and was_behind:
            return "a reader has been behind its packets for a second"
        return None

    def observe(self, now: float, short: bool) -> bool:
        """One look at the load; True when the level changed."""
        if short:
            self._short_at = now
            if self.level < self.IMAGE_PAUSED and (self.level == 0 or now - self._changed_at >= self.STEP_S):
                self.level += 1
                self._changed_at = now
                return True
        elif self.level > 0 and now - max(self._short_at, self._changed_at) >= self.RELAX_S:
            self.level -= 1
            self._changed_at = now
            return True
        return False

    @property
    def image_stretch(self) -> int:
        return int(2 ** min(self.level, 3))

    @property
    def detection_paused(self) -> bool:
        return self.level >= self.DETECTION_PAUSED

    @property
    def image_paused(self) -> bool:
        return self.level >= self.IMAGE_PAUSED

    def describe(self) -> str:
        if self.level == 0:
            return "image checks and detection as configured"
        if self.image_paused:
            return "image checks and detection paused"
        what = f"image checks {self.image_stretch}x less often"
        return what + (", detection paused" if self.detection_paused else "")


# -- the worker process ------------------------------------------------------------------------------------------


class _PipeLogHandler(logging.Handler):
    """Hands log records to the agent's process (which redacts and writes them)."""

    def __init__(self, send: Callable[[tuple[Any, ...]], None]) -> None:
        super().__init__()
        self._send = send

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = redact(record.getMessage())
            exc = None
            if record.exc_info and self.formatter is not None:
                exc = redact(self.formatter.formatException(record.exc_info))
            self._send(("log", record.name, record.levelno, text, exc))
        except Exception:  # logging must never break a reader
            pass


class _Worker:
    def __init__(self, conn: multiprocessing.connection.Connection, specs: list[ReaderSpec]) -> None:
        self._conn = conn
        self._send_lock = threading.Lock()
        self._stop = threading.Event()
        self._frames: deque[tuple[Any, ...]] = deque()
        self._frames_ready = threading.Event()
        self._gate = threading.Semaphore(OPENING_MAX)
        self.readers: list[tuple[ReaderSpec, CameraReader, ImageWatch | None, Tap | None, Tap | None]] = []
        self._dropped: dict[str, int] = {}
        self._undecided: set[str] = set()  # detect readers whose source or sampling is still to be settled
        self.load = LoadGovernor()
        self._detect_taps: list[Tap] = []
        self._stretch_shed: dict[str, float] = {}  # image samples not taken while checks looked less often
        for spec in specs:
            image_watch: ImageWatch | None = None
            image_tap = detect_tap = None
            taps: list[Tap] = []
            if spec.image is not None:
                health = ImageHealth(spec.image.thresholds, masks=[list(p) for p in spec.image.masks])
                image_watch = ImageWatch(spec.key, health, spec.image.state_file)
                image_tap = Tap(FrameSampler(interval_s=spec.image.interval_s), image_watch.on_frame)
                taps.append(image_tap)
            if spec.detect_interval_s is not None:
                detect_tap = Tap(FrameSampler(interval_s=spec.detect_interval_s), self._shipper(spec.key))
                taps.append(detect_tap)
            reader = CameraReader(
                spec.key,
                spec.url,
                transport=spec.transport,
                open_timeout_s=spec.open_timeout_s,
                read_timeout_s=spec.read_timeout_s,
                backoff_initial_s=spec.backoff_initial_s,
                backoff_max_s=spec.backoff_max_s,
                fps_window_s=spec.fps_window_s,
                taps=taps,
                open_gate=self._gate,
            )
            self.readers.append((spec, reader, image_watch, image_tap, detect_tap))
            self._dropped[spec.key] = 0
            self._stretch_shed[spec.key] = 0.0
            if detect_tap is not None:
                self._undecided.add(spec.key)
                self._detect_taps.append(detect_tap)

    def send(self, message: tuple[Any, ...]) -> None:
        with self._send_lock:
            self._conn.send(message)

    def _shipper(self, key: str) -> Callable[[Frame], None]:
        def ship(frame: Frame) -> None:
            bgr = frame.bgr(width=min(SHIP_WIDTH, frame.width))
            self._frames.append(("frame", key, frame.mono, frame.pts_s, frame.keyframe, bgr))
            while len(self._frames) > FRAME_BACKLOG:  # the agent is not taking them: the oldest go
                dropped = self._frames.popleft()
                self._dropped[dropped[1]] += 1
            self._frames_ready.set()

        return ship

    def _send_frames(self) -> None:
        while not self._stop.is_set():
            self._frames_ready.wait(0.5)
            self._frames_ready.clear()
            while self._frames:
                try:
                    item = self._frames.popleft()
                except IndexError:
                    break
                try:
                    self.send(item)
                except (OSError, ValueError):
                    self._stop.set()
                    return

    def _control(self) -> None:
        try:
            while True:
                message = self._conn.recv()
                if message[0] == "stop":
                    break
        except (EOFError, OSError):  # the agent is gone: stop too
            pass
        self._stop.set()

    def _settle_detection(self, spec: ReaderSpec, reader: CameraReader, tap: Tap, snap: StreamSnapshot) -> None:
        """Once a detect reader's stream is known: keyframes only on a large picture; a missing substream's
        detection moved to the main stream's keyframes."""
        if spec.fallback_to is not None and snap.connects == 0 and snap.failure in NO_SUBSTREAM:
            main = next((r for s, r, *_ in self.readers if s.key == spec.fallback_to), None)
            reader.stop()
            self._undecided.discard(spec.key)
            if main is None:
                return
            log.warning(
                "camera %s: no substream at %s (%s); detection reads the main stream's keyframes instead "
                "(one picture per GOP); set detect_url to the camera's substream for more",
                spec.group,
                redact(spec.url),
                snap.failure,
            )
            sampler = FrameSampler(interval_s=tap.sampler.interval_s)
            height = main.snapshot().height
            if spec.detect_keyframes_above and (height is None or height > spec.detect_keyframes_above):
                sampler.long_gop_factor = math.inf
            moved = Tap(sampler, tap.sink, paused=self.load.detection_paused)
            self._detect_taps.append(moved)
            main.add_tap(moved)
            return
        if snap.height is None:
            return
        self._undecided.discard(spec.key)
        above = spec.detect_keyframes_above
        if above and snap.height > above:
            tap.sampler.long_gop_factor = math.inf  # a keyframe per GOP: never every frame of a large picture
            log.info(
                "camera %s: detection reads a %sx%s picture: keyframes only (one per %s); a substream costs less",
                spec.group or spec.key,
                snap.width,
                snap.height,
                f"{snap.gop_s:g} s" if snap.gop_s else "GOP",
            )
        elif spec.fallback_to is not None:
            log.info(
                "camera %s: detection reads its substream %s (%sx%s)",
                spec.group,
                redact(spec.url),
                snap.width,
                snap.height,
            )

    def _apply_load(self) -> None:
        load = self.load
        for spec, _, _, image_tap, _ in self.readers:
            if image_tap is not None and spec.image is not None:
                image_tap.sampler.interval_s = spec.image.interval_s * load.image_stretch
                image_tap.paused = load.image_paused
        for tap in self._detect_taps:
            tap.paused = load.detection_paused

    def _start_readers(self) -> None:
        # From a thread of its own: reports flow while hundreds of readers start.
        for _, reader, *_ in self.readers:
            if self._stop.is_set():
                return
            reader.start()

    def run(self) -> None:
        for target in (self._control, self._send_frames, self._start_readers):
            threading.Thread(target=target, name=f"shard-{target.__name__.strip('_')}", daemon=True).start()
        last_saved = due = time.monotonic()
        while not self._stop.is_set():
            now = time.monotonic()
            late = now - due
            reports: dict[str, ReaderReport] = {}
            behind = False
            for spec, reader, image_watch, image_tap, detect_tap in self.readers:
                snap = reader.snapshot(now)
                # Only a connected reader behind its packets is a sign of want of CPU: one opening is
                # busy probing the stream's first second, as it should be (its patience is the verdict's).
                behind = behind or (snap.behind and snap.connected)
                if detect_tap is not None and spec.key in self._undecided:
                    self._settle_detection(spec, reader, detect_tap, snap)
                image = None
                if image_tap is not None and spec.image is not None and self.load.level:
                    stretch = self.load.image_stretch
                    self._stretch_shed[spec.key] += REPORT_S / spec.image.interval_s * (1 - 1 / stretch)
                if image_watch is not None:
                    view = image_watch.view  # never waits for a check in progress
                    image = ImageReport(view.problems, view.evidence, view.accepted_views, view.skipped, view.samples)
                reports[spec.key] = ReaderReport(
                    snap,
                    reader.probes,
                    image,
                    (image_tap.shed if image_tap else 0) + int(self._stretch_shed[spec.key]),
                    detect_tap.shed if detect_tap else 0,
                    self._dropped[spec.key],
                )
            why = self.load.sign(late, behind)
            if self.load.observe(now, why is not None):
                self._apply_load()
                if why is not None:
                    log.warning(
                        "reader process %d is short of CPU (%s): %s; every packet is still counted",
                        os.getpid(),
                        why,
                        self.load.describe(),
                    )
                else:
                    log.info("reader process %d keeps up: %s", os.getpid(), self.load.describe())
            try:
                self.send(("report", now, self.load.level > 0, reports))
            except (OSError, ValueError):
                break
            if now - last_saved >= BASELINE_SAVE_S:
                self._save()
                last_saved = now
            due = max(due + REPORT_S, time.monotonic())
            self._stop.wait(max(0.0, due - time.monotonic()))
        self._stop.set()
        for _, reader, *_ in self.readers:
            reader.stop()
        deadline = time.monotonic() + 2.0
        for _, reader, *_ in self.readers:
            reader.join(max(0.0, deadline - time.monotonic()))
        self._save()
        try:
            self.send(("stopped",))
        except (OSError, ValueError):
            pass

    def _save(self) -> None:
        for _, _, image_watch, *_ in self.readers:
            if image_watch is not None:
                image_watch.save()


def worker_main(conn: multiprocessing.connection.Connection, specs: list[ReaderSpec], level: int) -> None:
    """A reader process: run ``specs`` until told to stop or the agent is gone."""
    # A stop comes from the agent (systemd and Ctrl-C signal the whole group): finish cleanly then.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    for spec in specs:
        register_url_secrets(spec.url)
    worker = _Worker(conn, specs)
    handler = _PipeLogHandler(worker.send)
    handler.setFormatter(logging.Formatter())
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    try:
        import cv2

        cv2.setNumThreads(1)  # image checks work on small pictures; the cores are shared by every camera
    except ImportError:
        pass
    worker.run()


# -- the agent's side ---------------------------------------------------------------------------------------------


class RemoteImage:
    """The agent's view of one camera's image checks (they run in its reader process)."""

    def __init__(self) -> None:
        self.report = ImageReport()

    def problems(self) -> tuple[str, ...]:
        return self.report.problems

    def evidence(self) -> dict[str, str]:
        return dict(self.report.evidence)

    @property
    def accepted_views(self) -> int:
        return self.report.accepted_views

    @property
    def skipped(self) -> int:
        return self.report.skipped

    @property
    def samples(self) -> int:
        return self.report.samples


class RemoteReader:
    """The agent's view of one reader running in a reader process: its latest report."""

    def __init__(self, key: str, image: RemoteImage | None) -> None:
        self.camera_id = key
        self.image = image
        self.report: ReaderReport | None = None

    @property
    def probes(self) -> int:
        return self.report.probes if self.report else 0

    def update(self, report: ReaderReport) -> None:
        prev = self.report
        snap = report.snapshot
        if prev is not None and snap.last_packet is None and prev.snapshot.last_packet is not None:
            # A reader process started again: the last packet known is still the last packet known (the
            # camera is not called silent for the time its reader took to come back, only if it stays so).
            old = prev.snapshot
            started = old.started_at if old.started_at is not None else snap.started_at
            # Until its new reader has a packet or a failure, it is behind (not watching), not silent.
            snap = replace(
                snap,
                last_packet=old.last_packet,
                flow_since=old.flow_since,
                pending=False,
                started_at=started,
                behind=snap.failure is None,
            )
            report = replace(report, snapshot=snap)
        self.report = report
        if self.image is not None and report.image is not None:
            self.image.report = report.image

    def snapshot(self, now: float) -> StreamSnapshot:
        report = self.report
        if report is None:
            return StreamSnapshot(pending=True)
        snap = report.snapshot
        if snap.as_of is not None and now - snap.as_of > UNSEEN_S and snap.connected and not snap.behind:
            # Its process has not reported for a while (short of CPU, or restarting): what it last
            # saw is old, not a sign that the camera went quiet.
            return replace(snap, behind=True)
        return snap


FrameHandler = Callable[[str, ArrayFrame], None]


class _Process:
    """One reader process, seen from the agent: started, watched, restarted if it dies."""

    def __init__(self, index: int, specs: list[ReaderSpec], owner: ReaderProcesses) -> None:
        self.index = index
        self.specs = specs
        self.owner = owner
        self.process: Any = None
        self.conn: multiprocessing.connection.Connection | None = None
        self.shedding = False
        self.reported_at: float | None = None  # when its last report came (time.monotonic)
        self.restarts = 0
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        ctx = multiprocessing.get_context("spawn")  # no fork: the agent's threads must not be copied half-way
        parent, child = ctx.Pipe(duplex=True)
        self.process = ctx.Process(
            target=worker_main,
            args=(child, self.specs, logging.getLogger().getEffectiveLevel()),
            name=f"camwatch-readers-{self.index}",
            daemon=True,
        )
        self.process.start()
        child.close()
        self.conn = parent
        self._thread = threading.Thread(target=self._receive, name=f"readers-{self.index}", daemon=True)
        self._thread.start()

    def _receive(self) -> None:
        conn = self.conn
        assert conn is not None
        owner = self.owner
        readers = owner.readers
        stopped = False
        try:
            while True:
                message = conn.recv()
                kind = message[0]
                if kind == "report":
                    self.reported_at = time.monotonic()
                    self.shedding = bool(message[2])
                    for key, report in message[3].items():
                        readers[key].update(report)
                elif kind == "frame":
                    _, key, mono, pts_s, keyframe, bgr = message
                    owner.on_frame(key, ArrayFrame(bgr, mono, pts_s, keyframe))
                elif kind == "log":
                    _, name, level, text, exc = message
                    record = logging.makeLogRecord(
                        {"name": name, "levelno": level, "levelname": logging.getLevelName(level), "msg": text}
                    )
                    record.exc_text = exc
                    logging.getLogger(name).handle(record)
                elif kind == "stopped":
                    stopped = True
                    break
        except (EOFError, OSError):
            pass
        except Exception:
            log.exception("reader process %d: cannot read its messages", self.index)
        if stopped or owner.stopping.is_set():
            return
        self.process.join(1.0)
        code = self.process.exitcode
        log.error(
            "reader process %d (%d camera(s)) ended unexpectedly (exit code %s); starting it again",
            self.index,
            len(self.specs),
            code,
        )
        self.restarts += 1
        if not owner.stopping.wait(RESTART_DELAY_S):
            self.start()

    def stop(self) -> None:
        if self.conn is not None:
            try:
                self.conn.send(("stop",))
            except (OSError, ValueError):
                pass

    def join(self, timeout: float) -> None:
        if self._thread is not None:
            self._thread.join(timeout)
        if self.process is not None:
            self.process.join(max(0.1, timeout / 4))
            if self.process.is_alive():
                self.process.kill()
                self.process.join(1.0)
        if self.conn is not None:
            self.conn.close()


class ReaderProcesses:
    """Every reader of the agent, in ``processes`` worker processes (see the module's text)."""

    def __init__(
        self,
        specs: Sequence[ReaderSpec],
        *,
        processes: int | None = None,
        on_frame: dict[str, Callable[[ArrayFrame], None]] | None = None,
    ) -> None:
        self.readers: dict[str, RemoteReader] = {
            s.key: RemoteReader(s.key, RemoteImage() if s.image is not None else None) for s in specs
        }
        self._sinks = dict(on_frame or {})
        self.stopping = threading.Event()
        self.processes = [_Process(i, group, self) for i, group in enumerate(plan(specs, processes))]

    def on_frame(self, key: str, frame: ArrayFrame) -> None:
        sink = self._sinks.get(key)
        if sink is None:
            return
        try:
            sink(frame)
        except Exception:
            log.exception("camera %s: frame consumer failed", key)

    def start(self) -> None:
        for process in self.processes:
            process.start()

    @property
    def shedding(self) -> bool:
        """Whether a reader process sheds work, or has not reported for a while (short of CPU, or hung)."""
        now = time.monotonic()
        return any(
            p.shedding or (p.reported_at is not None and now - p.reported_at > STALE_REPORT_S) for p in self.processes
        )

    @property
    def restarts(self) -> int:
        return sum(p.restarts for p in self.processes)

    def stop(self) -> None:
        self.stopping.set()
        for process in self.processes:
            process.stop()

    def join(self, timeout: float = 4.0) -> None:
        deadline = time.monotonic() + timeout
        for process in self.processes:
            process.join(max(0.2, deadline - time.monotonic()))
