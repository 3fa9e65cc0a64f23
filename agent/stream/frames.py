"""The frame-sampling hook: which packets get decoded, and what consumers get.

Liveness comes from packets; decoding is what costs. Each consumer (a
:class:`Tap`) has its own sampler: by default only keyframes are decoded
(one per GOP) and at most one frame per ``interval_s`` is handed over. A
consumer whose interval is shorter than the GOP (detection at 2 fps, or a
"smart codec" with 4-10 s GOPs) falls back to decoding every packet from a
keyframe on and handing over one frame per interval. The reader decodes a
frame when any tap needs it and hands it only to the taps it is due for.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    import av


# Pixel formats whose first plane is 8-bit luma, one byte per pixel.
_LUMA_FIRST = frozenset({"yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p", "yuvj444p", "nv12", "nv21", "gray"})
_FULL_RANGE = 2  # AVCOL_RANGE_JPEG
_STUDIO_TO_FULL = np.clip(np.round((np.arange(256) - 16) * 255 / 219), 0, 255).astype(np.uint8)


class Frame:
    """One decoded picture; pixel conversion happens only when asked for."""

    __slots__ = ("_frame", "keyframe", "mono", "pts_s")

    def __init__(self, frame: av.VideoFrame, mono: float, pts_s: float | None, keyframe: bool) -> None:
        self._frame = frame
        self.mono = mono
        self.pts_s = pts_s
        self.keyframe = keyframe

    @property
    def width(self) -> int:
        return int(self._frame.width)

    @property
    def height(self) -> int:
        return int(self._frame.height)

    def scaled_size(self, width: int | None) -> tuple[int, int]:
        """The (width, height) :meth:`bgr` and :meth:`gray` give for ``width``."""
        if width is None or width >= self.width:
            return self.width, self.height
        height = max(2, round(self.height * width / self.width) // 2 * 2)
        return width, height

    def bgr(self, width: int | None = None) -> npt.NDArray[np.uint8]:
        """BGR (OpenCV order) uint8 array, optionally scaled down to ``width``."""
        w, h = self.scaled_size(width)
        out: Any = self._frame.to_ndarray(format="bgr24", width=w, height=h)
        return np.asarray(out, dtype=np.uint8)

    def gray(self, width: int | None = None) -> npt.NDArray[np.uint8]:
        """Luma as a full-range uint8 array, optionally scaled down to ``width``.

        Read straight from the decoder's luma plane, averaged down by area and
        stretched from studio range (16-235) to full range as swscale's ``gray``
        would, for a new frame: 0.08 ms against 0.62 at 360p, 0.88 against 1.23
        at 1080p (``bench/image_health.py``), which counts with hundreds of cameras.
        Other pixel formats go through swscale.
        """
        frame = self._frame
        w, h = self.scaled_size(width)
        name = frame.format.name
        if name not in _LUMA_FIRST:
            out: Any = frame.to_ndarray(format="gray", width=w, height=h)
            return np.asarray(out, dtype=np.uint8)
        plane = frame.planes[0]
        luma = np.frombuffer(memoryview(plane), np.uint8).reshape(-1, plane.line_size)[: self.height, : self.width]
        scaled = (w, h) != (self.width, self.height)
        if scaled:  # a new array
            luma = np.asarray(cv2.resize(luma, (w, h), interpolation=cv2.INTER_AREA), dtype=np.uint8)
        if name.startswith("yuvj") or name == "gray" or getattr(frame, "color_range", 0) == _FULL_RANGE:
            return luma if scaled else np.array(luma, dtype=np.uint8)  # a copy: the decoder reuses its planes
        return np.asarray(cv2.LUT(luma, _STUDIO_TO_FULL), dtype=np.uint8)


class ArrayFrame(Frame):
    """A picture that came as BGR pixels (from a reader process), with the same interface as :class:`Frame`."""

    __slots__ = ("_bgr",)

    def __init__(self, bgr: npt.NDArray[np.uint8], mono: float, pts_s: float | None, keyframe: bool) -> None:
        self._bgr = bgr
        self.mono = mono
        self.pts_s = pts_s
        self.keyframe = keyframe

    @property
    def width(self) -> int:
        return int(self._bgr.shape[1])

    @property
    def height(self) -> int:
        return int(self._bgr.shape[0])

    def bgr(self, width: int | None = None) -> npt.NDArray[np.uint8]:
        w, h = self.scaled_size(width)
        if (w, h) == (self.width, self.height):
            return self._bgr
        return np.asarray(cv2.resize(self._bgr, (w, h), interpolation=cv2.INTER_AREA), dtype=np.uint8)

    def gray(self, width: int | None = None) -> npt.NDArray[np.uint8]:
        return np.asarray(cv2.cvtColor(self.bgr(width), cv2.COLOR_BGR2GRAY), dtype=np.uint8)


FrameSink = Callable[[Frame], None]
"""Called on the camera's reader thread; must be quick (hand work off)."""


class Decode(enum.Enum):
    SKIP = 0  # do not decode this packet
    DECODE = 1  # decode (a reference is needed later) but hand nothing over
    DELIVER = 2  # decode and hand the frame to the sinks


@dataclass
class FrameSampler:
    """Decides per packet whether to decode it. Pure logic; the clock is passed in."""

    interval_s: float = 2.0
    enabled: bool = True
    long_gop_factor: float = 1.5
    _last_delivered: float | None = None
    _next_due: float | None = None
    _synced: bool = False

    def long_gop(self, gop_s: float | None) -> bool:
        return gop_s is not None and gop_s > self.interval_s * self.long_gop_factor

    def decide(self, keyframe: bool, now: float, gop_s: float | None) -> Decode:
        if not self.enabled:
            return Decode.SKIP
        if not self.long_gop(gop_s):
            # Keyframes arrive with jitter: accept one a little early.
            due = self._last_delivered is None or now - self._last_delivered >= self.interval_s * 0.8
            self._synced = False
            if keyframe and due:
                self._last_delivered = now
                return Decode.DELIVER
            return Decode.SKIP
        # Long GOP: decode every packet from a keyframe on so references exist.
        if keyframe:
            self._synced = True
        if not self._synced:
            return Decode.SKIP
        scheduled = self._next_due
        if scheduled is None or now >= scheduled:
            # Keep to the schedule (frames arrive in steps of 1/fps), but never bunch up after a gap.
            on_time = scheduled is not None and now - scheduled < self.interval_s
            self._next_due = scheduled + self.interval_s if scheduled is not None and on_time else now + self.interval_s
            self._last_delivered = now
            return Decode.DELIVER
        return Decode.DECODE

    def reset(self) -> None:
        """A new connection: the decoder starts over at the next keyframe."""
        self._synced = False


@dataclass
class Tap:
    """One frame consumer and its own sampling rate (image checks every 2 s, detection at 2 fps...)."""

    sampler: FrameSampler
    sink: FrameSink
    shed: int = 0  # frames due to this tap but not decoded because the agent was overloaded
    paused: bool = False  # set while the agent is short of CPU: nothing is decoded for this tap


def combine(decisions: list[Decode]) -> Decode:
    """What the decoder must do for a frame several taps judged differently."""
    return max(decisions, key=lambda d: d.value, default=Decode.SKIP)
