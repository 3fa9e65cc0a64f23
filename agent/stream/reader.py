"""One camera's reader: connect, demux packets, keep stats, sample frames, reconnect.

One thread per camera (in a reader process, see :mod:`agent.shard`),
blocked in FFmpeg's network read (which releases the GIL) with open and read
timeouts, so a stalled stream never hangs it for ever. Liveness is judged
elsewhere, from :meth:`CameraReader.snapshot`, on the health loop's own
clock; the reader only reports what it saw, and whether its thread waits for
the camera or for the CPU (:mod:`agent.stream.liveness`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import av
import av.error

from agent.errors import CameraError, StreamStalled
from agent.stream.backoff import Backoff
from agent.stream.frames import Decode, Frame, FrameSampler, FrameSink, Tap, combine
from agent.stream.liveness import waiting_for_network
from agent.stream.source import OpenedStream, classify, open_stream, tcp_check
from agent.stream.stats import StreamSnapshot, StreamStats
from common.redact import redact

log = logging.getLogger(__name__)

# A connection that delivered packets this long counts as a success: the
# next failure starts the backoff from the beginning again.
_HEALTHY_SESSION_S = 10.0
# While backing off from an unreachable camera, a TCP connect to its port this
# often (one SYN, no RTSP): the full open is tried as soon as the port answers,
# so a camera that comes back is seen within about this long, however long the
# backoff has grown, without hammering dead cameras with RTSP handshakes.
PROBE_INTERVAL_S = 1.0
# A connected reader with no packet for this long is asked (through the kernel) whether it waits
# for its camera or for the CPU; see agent.stream.liveness.
BEHIND_CHECK_S = 1.0


class CameraReader:
    """Reads one camera in its own thread until :meth:`stop`."""

    def __init__(
        self,
        camera_id: str,
        url: str,
        *,
        transport: str = "tcp",
        open_timeout_s: float = 5.0,
        read_timeout_s: float = 2.0,
        backoff_initial_s: float = 1.0,
        backoff_max_s: float = 30.0,
        fps_window_s: float = 5.0,
        taps: Sequence[Tap] = (),
        clock: Callable[[], float] = time.monotonic,
        open_gate: threading.Semaphore | None = None,
    ) -> None:
        self.camera_id = camera_id
        self._url = url  # carries the password: never log it unredacted
        self._transport = transport
        self._open_timeout = open_timeout_s
        self._read_timeout = read_timeout_s
        self._backoff = Backoff(backoff_initial_s, backoff_max_s)
        self._taps = list(taps)
        self._clock = clock
        self.stats = StreamStats(window_s=fps_window_s)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._native_id: int | None = None
        self._last_snapshot = StreamSnapshot()
        self._started_at: float | None = None
        self._opening_since: float | None = None  # while it opens the stream (RTSP handshake, first frames)
        # Bounds how many cameras open at once (an agent starting hundreds of cameras must not
        # flood one NVR, or its own interpreter, with handshakes).
        self._open_gate = open_gate
        self.probes = 0  # TCP probes made while backing off (traffic to dead cameras)

    # -- lifecycle -----------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"reader-{self.camera_id}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def join(self, timeout: float | None = None) -> bool:
        if self._thread is not None:
            self._thread.join(timeout)
            return not self._thread.is_alive()
        return True

    def add_sink(self, sink: FrameSink, interval_s: float) -> None:
        """Register a frame consumer wanting a frame every ``interval_s``."""
        self.add_tap(Tap(FrameSampler(interval_s=interval_s), sink))

    def add_tap(self, tap: Tap) -> None:
        """Add a frame consumer, also while reading: it starts at the next keyframe."""
        tap.sampler.reset()
        self._taps = [*self._taps, tap]  # one reference swap: the reading thread sees the old or the new list

    def snapshot(self, now: float | None = None) -> StreamSnapshot:
        """The stream's figures now, with whether the reader has begun and whether it is behind."""
        now = self._clock() if now is None else now
        snap = self.stats.try_snapshot(now)
        if snap is None:
            # The reader holds its stats' lock (perhaps waiting to run): do not queue behind it; the
            # last full figures, with the time of the last packet as it stands now.
            snap = replace(self._last_snapshot, last_packet=self.stats.last_packet)
        self._last_snapshot = snap
        if self._started_at is None:
            return replace(snap, pending=True, as_of=now)
        behind = False
        opening = self._opening_since
        if snap.connected and snap.last_packet is not None and now - snap.last_packet >= BEHIND_CHECK_S:
            behind = waiting_for_network(self._native_id) is False
        elif opening is not None and now - opening >= BEHIND_CHECK_S:
            # An open that takes long while the thread waits for the CPU (hundreds of cameras opening
            # at once on a busy PC) is the agent's slowness, not the camera's.
            behind = waiting_for_network(self._native_id) is False
        return replace(snap, started_at=self._started_at, behind=behind, as_of=now)

    # -- the loop --------------------------------------------------------------

    def _run(self) -> None:
        self._native_id = threading.get_native_id()
        while not self._stop.is_set():
            session_start = self._clock()
            packets_before = self.stats.snapshot(session_start).packets
            try:
                self._session()
            except Exception:  # a bug must not silently end this camera's watch
                log.exception("camera %s: reader failed unexpectedly; reconnecting", self.camera_id)
                self.stats.on_disconnected()
            if self._stop.is_set():
                break
            delivered = self.stats.snapshot(self._clock()).packets > packets_before
            if delivered and self._clock() - session_start >= _HEALTHY_SESSION_S:
                self._backoff.reset()
            self._wait_to_retry(self._backoff.next_delay())

    def _wait_to_retry(self, delay: float) -> None:
        """Wait ``delay`` before reconnecting, but reconnect at once when a dead camera's port answers again.

        An unreachable camera (or a stalled one whose port then closed: its
        server went away) is probed with a TCP connect every
        ``PROBE_INTERVAL_S``; a port that answers after being closed ends the
        wait. A camera whose port answers all along (wrong password, wrong
        path, a stuck server) waits out its backoff: RTSP is not hammered.
        """
        deadline = self._clock() + delay
        failure = self.stats.snapshot(self._clock()).failure
        probing = not self._url.startswith("file:") and failure in ("unreachable", "stalled")
        seen_closed = failure == "unreachable"
        while not self._stop.is_set():
            left = deadline - self._clock()
            if left <= 0:
                return
            if not probing:
                self._stop.wait(left)
                continue
            if self._stop.wait(min(PROBE_INTERVAL_S, left)) or left <= PROBE_INTERVAL_S:
                return
            self.probes += 1
            if tcp_check(self._url, timeout=PROBE_INTERVAL_S) is not None:
                seen_closed = True
            elif seen_closed:
                log.debug("camera %s: its port answers again; reconnecting now", self.camera_id)
                return

    def _session(self) -> None:
        """One connection: open, read until it fails or ends, record why."""
        gate = self._open_gate
        if gate is not None:
            while not gate.acquire(timeout=0.5):
                if self._stop.is_set():
                    return
        try:
            if self._started_at is None:
                self._started_at = self._clock()
            self._opening_since = self._clock()
            stream = open_stream(self._url, self._transport, self._open_timeout, self._read_timeout)
        except CameraError as exc:
            self._fail(exc)
            return
        finally:
            self._opening_since = None
            if gate is not None:
                gate.release()
        try:
            self._read(stream)
        except CameraError as exc:
            self._fail(exc)
        except av.error.FFmpegError as exc:
            self._fail(self._classify_read_error(exc))
        except OSError as exc:
            self._fail(self._classify_read_error(exc))
        finally:
            stream.close()
            self.stats.on_disconnected()

    def _classify_read_error(self, exc: BaseException) -> CameraError:
        if isinstance(exc, av.error.ExitError | TimeoutError):
            return StreamStalled(f"no data for {self._read_timeout:g} s (read timed out)")
        return classify(exc, self._url, 0.0, self._open_timeout)

    def _fail(self, exc: CameraError) -> None:
        previous = self.stats.snapshot(self._clock()).failure
        self.stats.on_failure(self._clock(), exc)
        # Say it once when the reason changes; retries of the same failure are debug noise.
        level = logging.DEBUG if previous == exc.reason else logging.WARNING
        log.log(level, "camera %s: %s: %s", self.camera_id, exc.reason, redact(exc.detail))

    # Long: The demux loop every packet goes through: kept in one frame, for speed.
    def _read(self, stream: OpenedStream) -> None:  # noqa: C901, PLR0915
        """Demux until the stream ends, fails or the reader is stopped."""
        stats = self.stats
        clock = self._clock
        taps = self._taps
        for tap in taps:
            tap.sampler.reset()
        stats.on_connected(clock(), stream.codec, stream.width, stream.height, stream.fps)
        log.info(
            "camera %s: connected (%s %sx%s @ %s fps)",
            self.camera_id,
            stream.codec,
            stream.width,
            stream.height,
            f"{stream.fps:g}" if stream.fps else "?",
        )
        video = stream.video
        time_base = float(video.time_base) if video.time_base else None
        decoder = video.codec_context
        decoder.thread_count = 1
        pacer = _Pacer() if stream.is_file else None
        pending: list[Any] = []  # packets of the access unit being collected for decoding
        pending_action = Decode.SKIP
        pending_sinks: list[FrameSink] = []
        pending_pts: float | None = None
        paused: tuple[bool, ...] = ()
        while not self._stop.is_set():
            for packet in stream.container.demux(video):
                if self._stop.is_set():
                    return
                taps = self._taps
                if packet.size == 0:  # demuxer flush packet
                    continue
                pts_s = packet.pts * time_base if packet.pts is not None and time_base else None
                if pacer is not None:
                    pacer.wait(pts_s, self._stop)
                now = clock()
                keyframe = bool(packet.is_keyframe)
                new_frame = stats.on_packet(now, packet.size, keyframe, pts_s)
                if not taps:
                    continue
                if new_frame:
                    # A frame may come as several packets (one per slice, RTP):
                    # decode them together once the next frame begins.
                    if pending:
                        self._decode(decoder, pending, pending_sinks, pending_pts)
                        pending = []
                    # Taps paused by whoever watches the load get nothing decoded (liveness goes on);
                    # when that changes, the decoder starts over at a keyframe.
                    now_paused = tuple(tap.paused for tap in taps)
                    if now_paused != paused:
                        paused = now_paused
                        decoder.flush_buffers()
                        for tap in taps:
                            tap.sampler.reset()
                    decisions = [tap.sampler.decide(keyframe, now, stats.gop_s) for tap in taps]
                    if any(paused):
                        for i, tap in enumerate(taps):
                            if paused[i] and decisions[i] is not Decode.SKIP:
                                tap.shed += decisions[i] is Decode.DELIVER
                                decisions[i] = Decode.SKIP
                    pending_action = combine(decisions)
                    pending_sinks = [t.sink for t, d in zip(taps, decisions, strict=True) if d is Decode.DELIVER]
                    pending_pts = pts_s
                if pending_action is not Decode.SKIP:
                    pending.append(packet)
            if pacer is None:
                raise StreamStalled("the camera ended the stream")
            # A file source loops: it stands in for a live camera in the demo.
            stream.container.seek(0)
            pacer.restart()
            decoder.flush_buffers()
            for tap in taps:
                tap.sampler.reset()

    def _decode(self, decoder: Any, packets: list[Any], sinks: list[FrameSink], pts_s: float | None) -> None:
        if len(packets) == 1:
            packet = packets[0]
        else:
            first = packets[0]
            packet = av.Packet(b"".join(bytes(p) for p in packets))
            packet.pts, packet.dts, packet.time_base = first.pts, first.dts, first.time_base
            packet.is_keyframe = first.is_keyframe
        try:
            frames = decoder.decode(packet)
        except av.error.FFmpegError as exc:
            # A corrupt frame is not a dead camera: skip it, keep demuxing.
            log.debug("camera %s: decode error: %s", self.camera_id, redact(exc))
            return
        for frame in frames:
            self.stats.on_decoded(bool(sinks))
            if self.stats.on_picture_size(int(frame.width), int(frame.height)):
                log.info("camera %s: picture size is now %dx%d", self.camera_id, frame.width, frame.height)
            if not sinks:
                continue
            sample = Frame(frame, self._clock(), pts_s, keyframe=bool(packets[0].is_keyframe))
            for sink in sinks:
                try:
                    sink(sample)
                except Exception:
                    log.exception("camera %s: frame consumer failed", self.camera_id)


class _Pacer:
    """Plays a file at its own speed (by PTS), as a live camera would."""

    def __init__(self) -> None:
        self._base: float | None = None
        self._offset = 0.0
        self._last_pts = 0.0

    def restart(self) -> None:
        self._offset += self._last_pts + 0.04
        self._last_pts = 0.0

    def wait(self, pts_s: float | None, stop: threading.Event) -> None:
        if pts_s is None:
            return
        self._last_pts = max(self._last_pts, pts_s)
        now = time.monotonic()
        if self._base is None:
            self._base = now - pts_s
        due = self._base + self._offset + pts_s
        if due > now:
            stop.wait(min(due - now, 1.0))
