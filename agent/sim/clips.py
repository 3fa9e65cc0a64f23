"""Generate small H.264 test clips with PyAV (libx264).

``write_test_clip`` writes an MP4 (file:// cameras); ``write_au_clip``
writes raw access units that the local RTSP server loops as a live camera
(``clip:PATH`` mounts), so scenario tests can script exactly what a camera
shows: healthy, then frozen, black, turned...
"""

from __future__ import annotations

from collections.abc import Iterable
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np


def synthetic_frame(i: int, width: int, height: int, fps: int) -> np.ndarray:
    """A deterministic frame: a gradient 'street' with texture and a moving box."""
    y, x = np.mgrid[0:height, 0:width]
    base = (80 + 60 * (y / height) + 20 * np.sin(x / 7.0) * np.cos(y / 11.0)).astype(np.uint8)
    frame = np.stack([base, base, (base * 0.9).astype(np.uint8)], axis=-1)
    t = i / fps
    bx = int((t * width / 4) % max(1, width - width // 8))
    by = height // 2
    frame[by : by + height // 6, bx : bx + width // 8] = (40, 40, 200)
    return frame


def write_test_clip(path: Path, *, seconds: float, width: int, height: int, fps: int, gop: int) -> Path:
    container = av.open(str(path), mode="w")
    try:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuv420p"
        stream.codec_context.gop_size = gop
        stream.codec_context.time_base = Fraction(1, fps)
        stream.options = {
            "preset": "ultrafast",
            "tune": "zerolatency",
            "keyint": str(gop),
            "min-keyint": str(gop),
            "scenecut": "0",
        }
        for i in range(int(seconds * fps)):
            vf = av.VideoFrame.from_ndarray(synthetic_frame(i, width, height, fps), format="bgr24")
            for packet in stream.encode(vf):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    finally:
        container.close()
    return path


CLIP_MAGIC = b"CWAU1\n"  # the same in gst_rtsp_server.py


def x264_encoder(
    width: int, height: int, *, fps: int, gop: int, kbps: int | None = None, repeat_headers: bool = False
) -> av.VideoCodecContext:
    """libx264 as a camera runs it: fixed GOP, no scene cuts, low latency; CRF, or a constant ``kbps``."""
    codec = av.CodecContext.create("libx264", "w")
    codec.width, codec.height = width, height
    codec.pix_fmt = "yuv420p"
    codec.time_base = Fraction(1, fps)
    codec.framerate = Fraction(fps, 1)
    codec.gop_size = gop
    params = f"keyint={gop}:min-keyint={gop}:scenecut=0"
    if repeat_headers:
        params += ":repeat-headers=1"
    if kbps:
        params += f":bitrate={kbps}:vbv-maxrate={kbps}:vbv-bufsize={kbps}"
    codec.options = {"preset": "ultrafast", "tune": "zerolatency", "x264-params": params}
    return codec


def write_au_clip(path: Path, frames: Iterable[np.ndarray], *, fps: int, gop: int, kbps: int | None = None) -> Path:
    """Encode BGR frames (all the same size) to H.264 access units for a ``clip:`` mount.

    Every keyframe repeats SPS/PPS, so the clip can loop and clients can join at any GOP.
    ``kbps`` encodes at a constant bitrate, as a camera does (CRF without it).
    """
    codec: av.VideoCodecContext | None = None
    with open(path, "wb") as out:
        out.write(CLIP_MAGIC)

        def write(packets: Iterable[Any]) -> None:
            for packet in packets:
                data = bytes(packet)
                out.write(bytes([1 if packet.is_keyframe else 0]) + len(data).to_bytes(4, "big") + data)

        for frame in frames:
            if codec is None:
                codec = x264_encoder(frame.shape[1], frame.shape[0], fps=fps, gop=gop, kbps=kbps, repeat_headers=True)
            write(codec.encode(av.VideoFrame.from_ndarray(frame, format="bgr24")))
        if codec is None:
            raise ValueError("no frames to encode")
        write(codec.encode(None))
    return path


def read_au_clip(path: Path) -> list[tuple[bool, bytes]]:
    """The (keyframe, access unit) pairs of a clip written by :func:`write_au_clip`."""
    data = Path(path).read_bytes()
    if not data.startswith(CLIP_MAGIC):
        raise ValueError(f"{path}: not a camwatch clip")
    aus, pos = [], len(CLIP_MAGIC)
    while pos + 5 <= len(data):
        size = int.from_bytes(data[pos + 1 : pos + 5], "big")
        aus.append((data[pos] == 1, data[pos + 5 : pos + 5 + size]))
        pos += 5 + size
    if not aus:
        raise ValueError(f"{path}: empty clip")
    return aus
