"""Decoders of detector outputs into boxes: small pure numpy functions, one per layout.

Every decoder returns :class:`Detections` with boxes normalised to the
input picture (x1, y1, x2, y2 in 0..1), scores in 0..1 and class indices,
after non-maximum suppression per class.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

F32 = npt.NDArray[np.float32]


@dataclass(frozen=True)
class Detections:
    boxes: F32  # (n, 4) normalised x1, y1, x2, y2
    scores: F32  # (n,)
    classes: npt.NDArray[np.int64]  # (n,)

    def __len__(self) -> int:
        return int(self.scores.shape[0])

    @staticmethod
    def empty() -> Detections:
        return Detections(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64))


def iou(box: F32, boxes: F32) -> F32:
    """Intersection over union of one box with many (x1, y1, x2, y2)."""
    x1 = np.maximum(box[0], boxes[:, 0])
    y1 = np.maximum(box[1], boxes[:, 1])
    x2 = np.minimum(box[2], boxes[:, 2])
    y2 = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return np.asarray(inter / np.maximum(area + areas - inter, 1e-9), dtype=np.float32)


def nms(boxes: F32, scores: F32, classes: npt.NDArray[np.int64], iou_threshold: float = 0.45) -> Detections:
    """Greedy non-maximum suppression, per class."""
    keep: list[int] = []
    for cls in np.unique(classes):
        idx = np.flatnonzero(classes == cls)
        idx = idx[np.argsort(-scores[idx])]
        while idx.size:
            best = int(idx[0])
            keep.append(best)
            if idx.size == 1:
                break
            rest = idx[1:]
            idx = rest[iou(boxes[best], boxes[rest]) < iou_threshold]
    order = np.array(sorted(keep, key=lambda i: -scores[i]), dtype=np.int64)
    if order.size == 0:
        return Detections.empty()
    return Detections(boxes[order], scores[order], classes[order])


def _finish(
    boxes: npt.NDArray[np.floating],
    scores: npt.NDArray[np.floating],
    classes: npt.NDArray[np.int64],
    iou_threshold: float,
) -> Detections:
    boxes = np.clip(boxes, 0.0, 1.0).astype(np.float32)
    valid = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
    return nms(boxes[valid], scores[valid].astype(np.float32), classes[valid], iou_threshold)


def decode_fastestdet(output: F32, min_score: float = 0.5, iou_threshold: float = 0.45) -> Detections:
    """FastestDet ``[1, 5 + C, H, W]``: objectness, tanh centre offsets, sigmoid sizes, class probabilities.

    Score = obj^0.6 * cls^0.4 (the authors' rule); boxes relative to the input picture.
    """
    if output.ndim != 4 or output.shape[0] != 1 or output.shape[1] < 6:
        raise ValueError(f"FastestDet output must be [1, 5+C, H, W], got {list(output.shape)}")
    _, _, gh, gw = output.shape
    pred = output[0].reshape(output.shape[1], -1).T  # (H*W, 5+C)
    obj = pred[:, 0]
    cls_prob = pred[:, 5:]
    classes = cls_prob.argmax(axis=1)
    score = obj**0.6 * cls_prob[np.arange(len(classes)), classes] ** 0.4
    keep = np.flatnonzero(score >= min_score)
    if keep.size == 0:
        return Detections.empty()
    gy, gx = np.divmod(keep, gw)
    p = pred[keep]
    cx = (gx + np.tanh(p[:, 1])) / gw
    cy = (gy + np.tanh(p[:, 2])) / gh
    w = 1 / (1 + np.exp(-p[:, 3]))
    h = 1 / (1 + np.exp(-p[:, 4]))
    boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
    return _finish(boxes, score[keep], classes[keep].astype(np.int64), iou_threshold)


def decode_yolov8(
    output: F32, input_size: tuple[int, int], min_score: float = 0.5, iou_threshold: float = 0.45
) -> Detections:
    """YOLOv8-style ``[1, 4 + C, N]``: centre x, y, width, height in input pixels, then class scores."""
    if output.ndim != 3 or output.shape[0] != 1 or output.shape[1] < 5:
        raise ValueError(f"YOLOv8 output must be [1, 4+C, N], got {list(output.shape)}")
    iw, ih = input_size
    pred = output[0].T  # (N, 4+C)
    scores_all = pred[:, 4:]
    classes = scores_all.argmax(axis=1)
    score = scores_all[np.arange(len(classes)), classes]
    keep = np.flatnonzero(score >= min_score)
    p = pred[keep]
    boxes = np.stack(
        [
            (p[:, 0] - p[:, 2] / 2) / iw,
            (p[:, 1] - p[:, 3] / 2) / ih,
            (p[:, 0] + p[:, 2] / 2) / iw,
            (p[:, 1] + p[:, 3] / 2) / ih,
        ],
        axis=1,
    )
    return _finish(boxes.reshape(-1, 4), score[keep], classes[keep].astype(np.int64), iou_threshold)


def decode_yolox(
    output: F32,
    input_size: tuple[int, int],
    strides: tuple[int, ...] = (8, 16, 32),
    min_score: float = 0.5,
    iou_threshold: float = 0.45,
) -> Detections:
    """YOLOX ``[1, N, 5 + C]`` raw head output: grid offsets and log sizes per stride, objectness, classes."""
    if output.ndim != 3 or output.shape[0] != 1 or output.shape[2] < 6:
        raise ValueError(f"YOLOX output must be [1, N, 5+C], got {list(output.shape)}")
    iw, ih = input_size
    grids, expanded = [], []
    for s in strides:
        gh, gw = ih // s, iw // s
        yv, xv = np.meshgrid(np.arange(gh), np.arange(gw), indexing="ij")
        grids.append(np.stack([xv, yv], axis=2).reshape(-1, 2))
        expanded.append(np.full((gh * gw, 1), s))
    grid = np.concatenate(grids).astype(np.float32)
    stride = np.concatenate(expanded).astype(np.float32)
    pred = output[0]
    if pred.shape[0] != grid.shape[0]:
        raise ValueError(f"YOLOX output has {pred.shape[0]} anchors, expected {grid.shape[0]} for {iw}x{ih}")
    xy = (pred[:, :2] + grid) * stride
    wh = np.exp(pred[:, 2:4]) * stride
    cls_scores = pred[:, 5:] * pred[:, 4:5]
    classes = cls_scores.argmax(axis=1)
    score = cls_scores[np.arange(len(classes)), classes]
    keep = np.flatnonzero(score >= min_score)
    xy, wh = xy[keep], wh[keep]
    boxes = np.concatenate([(xy - wh / 2), (xy + wh / 2)], axis=1) / np.array([iw, ih, iw, ih], np.float32)
    return _finish(boxes, score[keep], classes[keep].astype(np.int64), iou_threshold)
