"""The JPEG that goes with a detection event: the track's best sighting, box drawn."""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt

MAX_WIDTH = 640
QUALITY = 70
BOX_COLOUR = (0, 215, 255)  # amber (BGR): visible on street scenes by day and night


def render_snapshot(
    bgr: npt.NDArray[np.uint8], box: tuple[float, float, float, float], caption: str = "", quality: int = QUALITY
) -> bytes:
    """JPEG bytes of ``bgr`` (scaled to at most 640 px wide) with the normalised ``box`` drawn."""
    if bgr.shape[1] > MAX_WIDTH:
        height = round(bgr.shape[0] * MAX_WIDTH / bgr.shape[1])
        image = np.asarray(cv2.resize(bgr, (MAX_WIDTH, height), interpolation=cv2.INTER_AREA), dtype=np.uint8)
    else:
        image = bgr.copy()  # the frame may be shared with other tracks: draw on a copy
    h, w = image.shape[:2]
    x1, y1 = round(box[0] * (w - 1)), round(box[1] * (h - 1))
    x2, y2 = round(box[2] * (w - 1)), round(box[3] * (h - 1))
    thickness = max(2, w // 320)
    cv2.rectangle(image, (x1, y1), (x2, y2), BOX_COLOUR, thickness)
    if caption:
        scale = max(0.4, w / 1280)
        (tw, th), base = cv2.getTextSize(caption, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
        ty = y1 - 4 if y1 - th - base - 4 >= 0 else min(h - 1, y2 + th + 4)
        cv2.rectangle(image, (x1, ty - th - 2), (x1 + tw + 4, ty + base - 2), BOX_COLOUR, -1)
        cv2.putText(image, caption, (x1 + 2, ty - 2), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 1, cv2.LINE_AA)
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise cv2.error("JPEG encoding failed")
    return bytes(data.tobytes())
