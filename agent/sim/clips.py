"""Generate small H.264 test clips with PyAV (libx264): moving shapes on a textured street-like background."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

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
