"""A light IoU tracker: one event per object, not one per frame.

A track of a watched class becomes an event (``detection_started``) once it
was seen in ``min_hits`` samples inside a zone (anywhere if the camera has
none); it ends (``detection_ended``) when not seen for ``lost_after_s``.
Each track keeps its best-scoring sighting for the snapshot.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import cv2
import numpy as np

from agent.detect.decoders import Detections, iou
from agent.health.image import Polygon


def point_in_polygon(x: float, y: float, polygon: Polygon) -> bool:
    contour = np.array(polygon, dtype=np.float32).reshape(-1, 1, 2)
    return bool(cv2.pointPolygonTest(contour, (float(x), float(y)), False) >= 0)


@dataclass
class Track:
    id: int
    label: str
    box: tuple[float, float, float, float]
    score: float
    first_seen: float
    last_seen: float
    hits: int = 1
    zones: tuple[str, ...] = ()
    started: bool = False
    best_score: float = 0.0
    best_box: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
    best_at: float = 0.0


@dataclass(frozen=True)
class TrackEvent:
    type: Literal["detection_started", "detection_ended"]
    track: Track


@dataclass
class Tracker:
    labels: Sequence[str]  # class index -> name
    watched: frozenset[str] = frozenset({"person", "bicycle", "car", "motorbike", "bus", "truck"})
    min_hits: int = 2
    min_score: float = 0.5
    lost_after_s: float = 3.0
    iou_match: float = 0.3
    zones: dict[str, Polygon] = field(default_factory=dict)
    masks: Sequence[Polygon] = ()
    tracks: list[Track] = field(default_factory=list)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def _zones_of(self, box: tuple[float, float, float, float]) -> tuple[str, ...]:
        bx, by = (box[0] + box[2]) / 2, box[3]  # bottom centre: where the object stands
        return tuple(name for name, poly in self.zones.items() if point_in_polygon(bx, by, poly))

    def _masked(self, box: tuple[float, float, float, float]) -> bool:
        bx, by = (box[0] + box[2]) / 2, box[3]
        return any(point_in_polygon(bx, by, poly) for poly in self.masks)

    @property
    def alive(self) -> bool:
        return bool(self.tracks)

    def update(self, det: Detections, now: float) -> list[TrackEvent]:
        events: list[TrackEvent] = []
        unmatched = list(range(len(self.tracks)))
        for i in np.argsort(-det.scores):
            label = self.labels[int(det.classes[i])] if int(det.classes[i]) < len(self.labels) else "?"
            score = float(det.scores[i])
            b = det.boxes[i]
            box = (float(b[0]), float(b[1]), float(b[2]), float(b[3]))
            if label not in self.watched or score < self.min_score or self._masked(box):
                continue
            candidates = [j for j in unmatched if self.tracks[j].label == label]
            best_j, best_iou = None, self.iou_match
            for j in candidates:
                overlap = float(iou(np.array(self.tracks[j].box, np.float32), np.array([box], np.float32))[0])
                if overlap >= best_iou:
                    best_j, best_iou = j, overlap
            if best_j is None:
                track = Track(next(self._ids), label, box, score, now, now)
                self.tracks.append(track)
            else:
                unmatched.remove(best_j)
                track = self.tracks[best_j]
                track.box, track.score, track.last_seen = box, score, now
                track.hits += 1
            if score > track.best_score:
                track.best_score, track.best_box, track.best_at = score, track.box, now
            zones = self._zones_of(track.box)
            in_zone = bool(zones) or not self.zones
            if not track.started and track.hits >= self.min_hits and in_zone:
                track.started = True
                track.zones = zones
                events.append(TrackEvent("detection_started", track))
        for track in list(self.tracks):
            if now - track.last_seen >= self.lost_after_s:
                self.tracks.remove(track)
                if track.started:
                    events.append(TrackEvent("detection_ended", track))
        return events
