"""Real surveillance footage for tests and benchmarks, and the faults a real camera suffers, applied to it.

The footage is OpenCV's ``vtest.avi`` (people walking past a fixed camera),
shipped by Debian's ``opencv-doc`` package; nothing is downloaded or
committed. Clips are made from it at test time: healthy (the footage
looped back and forth), and each fault applied to it. Frames are BGR
``uint8`` arrays; :func:`encode_decode_keyframes` passes them through a real
H.264 encoder the way a camera would (constant bitrate, fixed GOP) and
gives back the grayscale keyframes an agent samples.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, cast

import av
import cv2
import numpy as np
import numpy.typing as npt

from agent.sim.clips import x264_encoder

VTEST = Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")
Frame = npt.NDArray[np.uint8]


def footage_missing() -> str | None:
    """Why the real footage cannot be used here (None: it can)."""
    if not VTEST.exists():
        return f"{VTEST} is missing: install Debian's opencv-doc (scripts/setup.sh does)"
    return None


def read_video(path: Path, size: tuple[int, int] | None = None) -> list[Frame]:
    """Every readable frame of a video file as BGR, resized to ``size`` (width, height) if given."""
    if not path.exists():
        raise RuntimeError(f"{path} is missing: install Debian's opencv-doc (scripts/setup.sh does)")
    cap = cv2.VideoCapture(str(path))
    frames: list[Frame] = []
    try:
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            frames.append(cast(Frame, frame if size is None else cv2.resize(frame, size, interpolation=cv2.INTER_AREA)))
    finally:
        cap.release()
    if not frames:
        raise RuntimeError(f"cannot read {path}")
    return frames


def real_frames(width: int = 640, height: int = 480) -> list[Frame]:
    """Every frame of the footage (10 fps, about 80 s), resized."""
    return read_video(VTEST, (width, height))


def looped(frames: list[Frame], count: int) -> Iterator[Frame]:
    """``count`` frames, playing the footage forward and back (no jump at the loop point)."""
    cycle = frames + frames[-2:0:-1]
    for i in range(count):
        yield cycle[i % len(cycle)]


def empty_view(frames: list[Frame]) -> Frame:
    """The view with nobody in it: the median of the footage's frames."""
    median = np.median(np.stack(frames[:: max(1, len(frames) // 60)]), axis=0)
    return cast(Frame, median.astype(np.uint8))


def sensor_noise(frame: Frame, rng: np.random.Generator, sigma: float = 1.5) -> Frame:
    noisy = frame.astype(np.float32) + rng.normal(0.0, sigma, frame.shape).astype(np.float32)
    return np.clip(noisy, 0, 255).astype(np.uint8)


def covered(frame: Frame, share: float = 0.75, luma: int = 70) -> Frame:
    """A flat panel over the middle ``share`` of the view; the edges stay live."""
    h, w = frame.shape[:2]
    side = share**0.5
    y0, x0 = int(h * (1 - side) / 2), int(w * (1 - side) / 2)
    out = frame.copy()
    out[y0 : h - y0, x0 : w - x0] = luma
    return out


def turned(frame: Frame, shift: float = 0.35, tilt_deg: float = 4.0, zoom: float = 1.0) -> Frame:
    """The camera knocked: the view shifted by ``shift`` of its width, tilted, zoomed; the rest filled in."""
    h, w = frame.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), tilt_deg, zoom)
    m[0, 2] += shift * w
    return cast(Frame, cv2.warpAffine(frame, m, (w, h), borderMode=cv2.BORDER_REFLECT))


def encode_decode_keyframes(
    frames: Iterable[Frame], *, fps: int = 10, gop: int = 20, kbps: int | None = 600, width: int = 320
) -> list[npt.NDArray[np.uint8]]:
    """Encode as a camera does (libx264, constant bitrate ``kbps`` or CRF if None, GOP ``gop``), decode, and
    return the keyframes as grayscale ``width`` px wide: what the agent's image checks sample."""
    encoder: av.VideoCodecContext | None = None
    decoder = av.CodecContext.create("h264", "r")
    out: list[npt.NDArray[np.uint8]] = []

    def take(packets: Iterable[Any]) -> None:
        for packet in packets:
            key = packet.is_keyframe
            for picture in decoder.decode(packet):
                if key:
                    gray = picture.to_ndarray(format="gray")
                    h = round(gray.shape[0] * width / gray.shape[1])
                    out.append(cast(Frame, cv2.resize(gray, (width, h), interpolation=cv2.INTER_AREA)))

    for frame in frames:
        if encoder is None:
            encoder = x264_encoder(frame.shape[1], frame.shape[0], fps=fps, gop=gop, kbps=kbps)
        take(encoder.encode(av.VideoFrame.from_ndarray(frame, format="bgr24")))
    if encoder is None:
        raise ValueError("no frames")
    take(encoder.encode(None))
    return out


def encode_decode(frames: Iterable[Frame], *, fps: int = 10, gop: int = 20, kbps: int | None = 1000) -> Iterator[Frame]:
    """Every frame through a camera's encoder (libx264, constant bitrate ``kbps`` or CRF) and back, as BGR."""
    encoder: av.VideoCodecContext | None = None
    decoder = av.CodecContext.create("h264", "r")
    for frame in frames:
        if encoder is None:
            encoder = x264_encoder(frame.shape[1], frame.shape[0], fps=fps, gop=gop, kbps=kbps)
            encoder.thread_count = 1  # the same pictures every run (threaded rate control is not repeatable)
        for packet in encoder.encode(av.VideoFrame.from_ndarray(frame, format="bgr24")):
            for picture in decoder.decode(packet):
                yield cast(Frame, picture.to_ndarray(format="bgr24"))
    if encoder is not None:
        for packet in encoder.encode(None):
            for picture in decoder.decode(packet):
                yield cast(Frame, picture.to_ndarray(format="bgr24"))


def far_view(frame: Frame, empty: Frame, scale: float = 0.5) -> Frame:
    """The view as a camera further away would see it: the footage shrunk by ``scale`` in the middle of the
    picture, its empty view (shrunk the same, mirrored outwards) around it. People become ``scale`` as tall."""
    h, w = frame.shape[:2]
    sw, sh = round(w * scale), round(h * scale)
    x0, y0 = (w - sw) // 2, (h - sh) // 2
    small_empty = cv2.resize(empty, (sw, sh), interpolation=cv2.INTER_AREA)
    out = cv2.copyMakeBorder(small_empty, y0, h - sh - y0, x0, w - sw - x0, cv2.BORDER_REFLECT)
    out[y0 : y0 + sh, x0 : x0 + sw] = cv2.resize(frame, (sw, sh), interpolation=cv2.INTER_AREA)
    return cast(Frame, out)


TREE = VTEST.with_name("tree.avi")  # a tree in the wind, filmed through a window (opencv-doc too)


TREE_ONLY = 50  # frames of tree.avi before a hand comes into view


def tree_frames() -> list[Frame]:
    """The first frames of ``tree.avi`` (15 fps; 68 readable), before a hand comes into view: leaves and
    branches moving in the wind, real motion that is not a person. Play them with :func:`looped`."""
    return read_video(TREE)[:TREE_ONLY]


def with_tree(view: Frame, tree: Frame, share: float = 0.3) -> Frame:
    """A tree moving in the wind in the bottom-left corner of ``view``, ``share`` of its width."""
    h, w = view.shape[:2]
    tw = int(w * share)
    th = tw * tree.shape[0] // tree.shape[1]
    out = view.copy()
    out[h - th :, :tw] = cv2.resize(tree, (tw, th), interpolation=cv2.INTER_AREA)
    return out


def with_clock(frame: Frame, t: float, start: float = 1_796_000_000.0) -> Frame:
    """The camera's on-screen clock burnt into the top-left corner, as most cameras do (date and time,
    white on a dark outline), ticking each second of ``t``."""
    text = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(start + int(t)))
    out = frame.copy()
    scale = frame.shape[0] / 400  # about 1/20 of the picture high, as cameras' OSDs are by default
    org = (int(10 * scale), int(34 * scale))
    cv2.putText(out, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), max(2, int(4 * scale)), cv2.LINE_AA)
    cv2.putText(out, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), max(1, int(2 * scale)), cv2.LINE_AA)
    return out
