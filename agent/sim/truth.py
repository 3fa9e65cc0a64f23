"""Detection judged against people who really crossed a real view: precision, recall, events per person.

The footage is OpenCV's ``vtest.avi`` (:mod:`agent.sim.footage`); who is where
in each of its frames is in ``bench/data/vtest_people.csv`` (how it was made is
written at its top). :func:`run_detection` plays frames through the agent's
own detection path (:class:`~agent.detect.service.DetectionService`: motion
gate, the frame scaled as queued, the real model, the tracker, the rate limit)
with a driven clock, and records every track that started an event with its
sightings. :func:`score` matches each such track to the person it followed.
"""

from __future__ import annotations

import csv
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av
import numpy as np
import numpy.typing as npt

from agent.detect.service import DetectionService, Emitted, Model
from agent.stream.frames import Frame

PEOPLE_CSV = Path(__file__).resolve().parents[2] / "bench" / "data" / "vtest_people.csv"
TRUTH_SIZE = (768, 576)  # the footage's own size: the boxes' pixels
TRUTH_FPS = 10.0
MATCH_IOU = 0.3  # a sighting is of a person when its box overlaps theirs this much

Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class People:
    """Boxes (normalised) of each person per frame of the footage."""

    frames: dict[int, list[tuple[int, Box]]]

    def far(self, scale: float) -> People:
        """The same people in :func:`agent.sim.footage.far_view` (shrunk by ``scale`` about the middle)."""
        o = (1 - scale) / 2

        def shrink(b: Box) -> Box:
            return (o + b[0] * scale, o + b[1] * scale, o + b[2] * scale, o + b[3] * scale)

        return People({f: [(p, shrink(b)) for p, b in boxes] for f, boxes in self.frames.items()})

    def at(self, t: float) -> list[tuple[int, Box]]:
        return self.frames.get(round(t * TRUTH_FPS), [])

    def crossing(self, min_s: float = 2.0) -> set[int]:
        """People seen at least ``min_s`` who walked at least their own height: the ones who cross the view."""
        seen: dict[int, list[Box]] = defaultdict(list)
        for boxes in self.frames.values():
            for person, box in boxes:
                seen[person].append(box)
        out = set()
        for person, track in seen.items():
            if len(track) < min_s * TRUTH_FPS:
                continue
            h = float(np.median([b[3] - b[1] for b in track]))
            cx = [(b[0] + b[2]) / 2 * TRUTH_SIZE[0] / TRUTH_SIZE[1] for b in track]  # in picture heights
            cy = [(b[1] + b[3]) / 2 for b in track]
            if max(((x - cx[0]) ** 2 + (y - cy[0]) ** 2) ** 0.5 for x, y in zip(cx, cy, strict=True)) >= h:
                out.add(person)
        return out


def load_people(path: Path = PEOPLE_CSV) -> People:
    w, h = TRUTH_SIZE
    frames: dict[int, list[tuple[int, Box]]] = defaultdict(list)
    with path.open(encoding="utf-8") as f:
        rows = csv.reader(line for line in f if not line.startswith("#"))
        next(rows)  # header
        for frame, person, x1, y1, x2, y2 in rows:
            box = (int(x1) / w, int(y1) / h, int(x2) / w, int(y2) / h)
            frames[int(frame)].append((int(person), box))
    return People(dict(frames))


def _iou(a: Box, b: Box) -> float:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    inter = max(0.0, w) * max(0.0, h)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


@dataclass
class StartedTrack:
    track_id: int
    label: str
    started_at: float
    sightings: list[tuple[float, Box]] = field(default_factory=list)


@dataclass
class DetectionRun:
    """What one camera's detection did over a clip."""

    started: dict[int, StartedTrack]
    events: list[dict[str, Any]]
    stats: dict[str, int]
    seconds: float


def run_detection(
    model: Model,
    frames: Iterable[tuple[float, npt.NDArray[np.uint8]]],
    *,
    labels: Sequence[str] = ("person",),
    min_score: float = 0.5,
    min_hits: int = 2,
    lost_after_s: float = 3.0,
    motion_min_area: float = 0.002,
    max_events_per_min: int = 20,
    crops: int = 0,
) -> DetectionRun:
    """Play ``(t, bgr)`` frames (already at the camera's detect_fps) through the agent's detection path."""
    emitted: list[Emitted] = []
    service = DetectionService(model, ward="bench", emit=emitted.append, wall_of=lambda t: t)
    cam = service.add_camera(
        "cam",
        labels=labels,
        min_score=min_score,
        min_hits=min_hits,
        lost_after_s=lost_after_s,
        motion_min_area=motion_min_area,
        max_events_per_min=max_events_per_min,
        now=0.0,
        crops=crops,
    )
    sightings: dict[int, list[tuple[float, Box]]] = defaultdict(list)
    last_t = 0.0
    for t, bgr in frames:
        last_t = t
        cam.on_frame(Frame(av.VideoFrame.from_ndarray(bgr, format="bgr24"), t, t, False))
        while (job := service.queue.get(timeout=0)) is not None:
            service.process(job)
            for track in cam.tracker.tracks:
                if track.last_seen == job.mono:
                    sightings[track.id].append((job.mono, track.box))
        service.expire(t)
    service.expire(last_t + lost_after_s + 1)
    events = [e.payload for e in emitted if e.kind == "detection" and isinstance(e.payload, dict)]
    started = {
        int(e["track_id"]): StartedTrack(int(e["track_id"]), str(e["label"]), 0.0)
        for e in events
        if e["type"] == "detection_started"
    }
    for track_id, st in started.items():
        st.sightings = sightings.get(track_id, [])
    for e in emitted:
        if e.kind == "detection" and isinstance(e.payload, dict) and e.payload["type"] == "detection_started":
            started[int(e.payload["track_id"])].started_at = e.at
    return DetectionRun(started, events, cam.stats(), last_t)


def person_of(track: StartedTrack, people: People) -> int | None:
    """The person a track's event is about: the one most of its sightings overlap up to the moment the event
    started (what it was started on; None: no real person)."""
    votes: Counter[int] = Counter()
    evidence = [(t, box) for t, box in track.sightings if t <= track.started_at]
    for t, box in evidence:
        best = max(((_iou(box, b), p) for p, b in people.at(t)), default=(0.0, -1))
        if best[0] >= MATCH_IOU:
            votes[best[1]] += 1
    if not votes:
        return None
    person, n = votes.most_common(1)[0]
    return person if n * 2 >= len(evidence) else None


def score(run: DetectionRun, people: People, label: str = "person") -> dict[str, Any]:
    """Precision (events on real people), recall (crossing people with an event), events per person."""
    tracks = [t for t in run.started.values() if t.label == label]
    followed = {t.track_id: person_of(t, people) for t in tracks}
    real = [p for p in followed.values() if p is not None]
    crossing = people.crossing()
    per_person = Counter(p for p in real if p in crossing)
    return {
        "events": len(tracks),
        "false_events": sum(1 for p in followed.values() if p is None),
        "precision": round(len(real) / len(tracks), 3) if tracks else None,
        "people_crossing": len(crossing),
        "people_with_event": len(per_person),
        "recall": round(len(per_person) / len(crossing), 3) if crossing else None,
        "events_per_person": round(sum(per_person.values()) / len(per_person), 2) if per_person else None,
        "missed_people": sorted(crossing - set(per_person)),
    }
