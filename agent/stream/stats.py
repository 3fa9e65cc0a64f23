"""Packet-level statistics of one camera's stream, kept by its reader thread.

Everything here is O(1) per packet and bounded in memory; readers of the
stats take a consistent :class:`StreamSnapshot` under a lock.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass

from agent.errors import CameraError, Reason

WINDOW_MAX_ENTRIES = 4096  # ~2.7 min of 25 fps at one entry per frame; bounds memory
# Servers often send a burst of buffered frames right after PLAY; the rate
# window starts this long after a connection's first packet so the burst does
# not read as a high fps.
SETTLE_S = 1.0


@dataclass(frozen=True)
class StreamSnapshot:
    """What the health verdict needs to know about a stream, at one instant (monotonic times)."""

    connected: bool = False
    connects: int = 0
    reconnects: int = 0
    last_packet: float | None = None
    flow_since: float | None = None
    failure: Reason | None = None
    failure_detail: str = ""
    failure_at: float | None = None
    codec: str | None = None
    width: int | None = None
    height: int | None = None
    nominal_fps: float | None = None
    fps: float | None = None
    fps_window_full: bool = False
    bitrate_kbps: float | None = None
    gop_s: float | None = None
    gop_frames: int | None = None
    packets: int = 0
    frames: int = 0
    bytes: int = 0
    frames_decoded: int = 0
    frames_sampled: int = 0
    # When the reader began trying this camera (None: when the agent started). A camera is called
    # offline for want of packets only once its reader has tried for offline_after_s.
    started_at: float | None = None
    pending: bool = False  # the reader has not begun yet: no verdict
    # No packet for a while, but the reader is not waiting for the camera: it waits for the CPU
    # (packets are in its socket). Not a stall: the agent is overloaded.
    behind: bool = False
    as_of: float | None = None  # when these figures were read (another process may have read them)


class StreamStats:
    """Accumulates per-packet facts. Written by one reader thread, read by the health loop."""

    def __init__(self, window_s: float = 5.0, gap_s: float = 1.0) -> None:
        self.window_s = window_s
        self.gap_s = gap_s
        self._lock = threading.Lock()
        self._window: deque[tuple[float, int, bool]] = deque(maxlen=WINDOW_MAX_ENTRIES)
        self._window_bytes = 0
        self._window_frames = 0
        self._connected = False
        self._connected_at: float | None = None
        self._window_from: float | None = None  # rate window starts here (after the settle time)
        self._connects = 0
        self._last_packet: float | None = None
        self._flow_since: float | None = None
        self._failure: CameraError | None = None
        self._failure_at: float | None = None
        self._codec: str | None = None
        self._width: int | None = None
        self._height: int | None = None
        self._nominal_fps: float | None = None
        self._last_pts: float | None = None
        self._last_key_pts: float | None = None
        self._frames_since_key = 0
        self._gop_s: float | None = None
        self._gop_frames: int | None = None
        self._packets = 0
        self._frames = 0
        self._bytes = 0
        self._frames_decoded = 0
        self._frames_sampled = 0

    # -- written by the reader ---------------------------------------------

    def on_connected(
        self, now: float, codec: str | None, width: int | None, height: int | None, fps: float | None
    ) -> None:
        with self._lock:
            self._connected = True
            self._connected_at = now
            self._window_from = None
            self._connects += 1
            self._codec, self._width, self._height = codec, width, height
            if fps and 0 < fps <= 240:
                self._nominal_fps = fps
            self._last_pts = None
            self._last_key_pts = None
            self._frames_since_key = 0
            self._window.clear()
            self._window_bytes = 0
            self._window_frames = 0

    def on_failure(self, now: float, error: CameraError) -> None:
        with self._lock:
            self._connected = False
            self._connected_at = None
            self._window_from = None
            self._flow_since = None
            self._failure = error
            self._failure_at = now

    def on_disconnected(self) -> None:
        with self._lock:
            self._connected = False
            self._connected_at = None
            self._window_from = None
            self._flow_since = None

    def on_packet(self, now: float, size: int, keyframe: bool, pts_s: float | None) -> bool:
        """Record one demuxed packet; returns True when it starts a new frame (access unit)."""
        new_frame = pts_s is None or pts_s != self._last_pts
        with self._lock:
            last = self._last_packet
            if self._flow_since is None or last is None or now - last > self.gap_s:
                self._flow_since = now
            self._last_packet = now
            self._packets += 1
            self._bytes += size
            if new_frame:
                self._frames += 1
                self._frames_since_key += 1
                if keyframe and pts_s is not None:
                    if self._last_key_pts is not None and pts_s > self._last_key_pts:
                        self._gop_s = pts_s - self._last_key_pts
                        self._gop_frames = self._frames_since_key - 1
                    self._last_key_pts = pts_s
                    self._frames_since_key = 1
            self._last_pts = pts_s
            if self._window_from is None:
                self._window_from = now + SETTLE_S
            if now < self._window_from:
                return new_frame
            window = self._window
            if len(window) == window.maxlen:
                _, old_size, old_frame = window[0]
                self._window_bytes -= old_size
                self._window_frames -= old_frame
            window.append((now, size, new_frame))
            self._window_bytes += size
            self._window_frames += new_frame
            horizon = now - self.window_s
            while window and window[0][0] < horizon:
                _, old_size, old_frame = window.popleft()
                self._window_bytes -= old_size
                self._window_frames -= old_frame
        return new_frame

    def on_picture_size(self, width: int, height: int) -> bool:
        """A decoded frame's size; True when it differs from what was known (the camera changed it)."""
        with self._lock:
            if (self._width, self._height) == (width, height):
                return False
            self._width, self._height = width, height
            return True

    def on_decoded(self, delivered: bool) -> None:
        with self._lock:
            self._frames_decoded += 1
            self._frames_sampled += delivered

    # -- read by the health loop -------------------------------------------

    @property
    def window_entries(self) -> int:
        """Entries in the rate window (bounded by WINDOW_MAX_ENTRIES)."""
        return len(self._window)

    @property
    def gop_s(self) -> float | None:
        return self._gop_s

    @property
    def last_packet(self) -> float | None:
        """The time of the last packet, read without the lock (one attribute: never torn)."""
        return self._last_packet

    def try_snapshot(self, now: float) -> StreamSnapshot | None:
        """:meth:`snapshot`, or None at once if the reader holds the lock (it may be waiting to run)."""
        if not self._lock.acquire(blocking=False):
            return None
        try:
            return self._snapshot(now)
        finally:
            self._lock.release()

    def snapshot(self, now: float) -> StreamSnapshot:
        with self._lock:
            return self._snapshot(now)

    def _snapshot(self, now: float) -> StreamSnapshot:
        fps = bitrate = None
        full = False
        start = self._window_from
        if self._connected_at is not None and self._last_packet is not None and start is not None:
            horizon = now - self.window_s
            # Entries that fell out of the window since the last packet.
            frames, nbytes = self._window_frames, self._window_bytes
            for t, size, is_frame in self._window:
                if t >= horizon:
                    break
                frames -= is_frame
                nbytes -= size
            span = min(self.window_s, now - start)
            full = now - start >= self.window_s
            if span > 0.5:
                fps = frames / span
                bitrate = nbytes * 8 / 1000 / span
        failure = self._failure
        return StreamSnapshot(
            connected=self._connected,
            connects=self._connects,
            reconnects=max(0, self._connects - 1),
            last_packet=self._last_packet,
            flow_since=self._flow_since,
            failure=failure.reason if failure else None,
            failure_detail=failure.detail if failure else "",
            failure_at=self._failure_at,
            codec=self._codec,
            width=self._width,
            height=self._height,
            nominal_fps=self._nominal_fps,
            fps=fps,
            fps_window_full=full,
            bitrate_kbps=bitrate,
            gop_s=self._gop_s,
            gop_frames=self._gop_frames,
            packets=self._packets,
            frames=self._frames,
            bytes=self._bytes,
            frames_decoded=self._frames_decoded,
            frames_sampled=self._frames_sampled,
        )
