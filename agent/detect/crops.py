"""A closer look where motion is: windows of the model's own input size over small moving things.

A small model run on a whole wide frame shrinks a person far from the camera
to a few pixels (a 1280x720 view letterboxed to YOLOX-nano's 416x320 is
scaled by a third). The same model run on a window of its input size cut at
full scale where something moved sees that person three times larger. This is
how NVRs with small models reach useful recall on wide street views; the
motion gate already knows where things moved, so it costs one inference per
window, only where something small moved that the whole-frame pass did not
explain.

Pure functions: windows from motion regions, and detections from windows
mapped back onto the frame and merged with the whole-frame pass.
"""

from __future__ import annotations

import numpy as np

from agent.detect.decoders import Detections, nms

Box = tuple[float, float, float, float]
Window = tuple[int, int, int, int]  # x0, y0, x1, y1 in pixels of the frame it is cut from

SMALL_PX = 36  # a moving thing less tall than this in the whole-frame pass's input gets a closer look
MAX_COVER = 0.6  # a window covering more of the frame than this sees nothing the whole-frame pass does not
EDGE = 0.01  # a box this close to a window's inner edge was cut by it (left to the whole-frame pass)


def windows_for(regions: list[Box], width: int, height: int, size: tuple[int, int], limit: int) -> list[Window]:
    """Windows of ``size`` (w, h) over the motion ``regions`` (normalised) of a ``width`` x ``height`` frame.

    A region at least ``SMALL_PX`` tall as the whole-frame pass sees it (the
    frame scaled to fit the model's input) is big enough for that pass; a
    region whose centre lies in a chosen window shares it.
    """
    ww, wh = min(size[0], width), min(size[1], height)
    if limit <= 0 or ww * wh > MAX_COVER * width * height:
        return []
    whole = min(size[0] / width, size[1] / height)  # the whole-frame pass's scale
    out: list[Window] = []
    for x1, y1, x2, y2 in regions:
        if (y2 - y1) * height * whole >= SMALL_PX:
            continue
        cx, cy = (x1 + x2) / 2 * width, (y1 + y2) / 2 * height
        if any(w[0] <= cx < w[2] and w[1] <= cy < w[3] for w in out):
            continue
        x0 = int(min(max(0.0, cx - ww / 2), width - ww))
        y0 = int(min(max(0.0, cy - wh / 2), height - wh))
        out.append((x0, y0, x0 + ww, y0 + wh))
        if len(out) >= limit:
            break
    return out


def explained(region: Box, det: Detections) -> bool:
    """Whether something the whole-frame pass found covers the middle of a moving region."""
    if not len(det):
        return False
    cx, cy = (region[0] + region[2]) / 2, (region[1] + region[3]) / 2
    b = det.boxes
    return bool(np.any((b[:, 0] <= cx) & (cx <= b[:, 2]) & (b[:, 1] <= cy) & (cy <= b[:, 3])))


def from_window(det: Detections, window: Window, width: int, height: int) -> Detections:
    """Boxes found in a window (normalised to it) as boxes of the whole frame; boxes the window cut are dropped."""
    if not len(det):
        return det
    x0, y0, x1, y1 = window
    b = det.boxes
    cut = np.zeros(len(det), dtype=bool)
    if x0 > 0:
        cut |= b[:, 0] <= EDGE
    if y0 > 0:
        cut |= b[:, 1] <= EDGE
    if x1 < width:
        cut |= b[:, 2] >= 1 - EDGE
    if y1 < height:
        cut |= b[:, 3] >= 1 - EDGE
    keep = ~cut
    sx, sy = (x1 - x0) / width, (y1 - y0) / height
    mapped = np.stack(
        [x0 / width + b[:, 0] * sx, y0 / height + b[:, 1] * sy, x0 / width + b[:, 2] * sx, y0 / height + b[:, 3] * sy],
        axis=1,
    ).astype(np.float32)
    return Detections(mapped[keep], det.scores[keep], det.classes[keep])


def merge(parts: list[Detections], iou_threshold: float = 0.45) -> Detections:
    """One set of detections from the whole frame and its windows: the same object found twice counts once."""
    parts = [p for p in parts if len(p)]
    if not parts:
        return Detections.empty()
    if len(parts) == 1:
        return parts[0]
    boxes = np.concatenate([p.boxes for p in parts]).astype(np.float32)
    scores = np.concatenate([p.scores for p in parts]).astype(np.float32)
    classes = np.concatenate([p.classes for p in parts]).astype(np.int64)
    return nms(boxes, scores, classes, iou_threshold)
