"""A light tracker: one event per object, not one per frame.

A track of a watched class becomes an event (``detection_started``) once it
was seen in ``min_hits`` samples inside a zone (anywhere if the camera has
none), **has moved** since it was first seen (a tripod, a cone or a sign post
that a small model takes for a person never moves: it never starts an event;
a person who stops still was seen walking in), and its sightings' **median**
score reaches ``min_score`` (one lucky frame is not a person). Boxes that are
not plausible for their label (too small in the picture; a "person" lying
flat) are not sightings at all. It ends (``detection_ended``) when not seen
for ``lost_after_s``. Each track keeps its best-scoring sighting for the
snapshot.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import cv2
import numpy as np
import numpy.typing as npt

from agent.detect.decoders import Detections
from agent.health.image import Polygon


def point_in_polygon(x: float, y: float, polygon: Polygon) -> bool:
    contour = np.array(polygon, dtype=np.float32).reshape(-1, 1, 2)
    return bool(cv2.pointPolygonTest(contour, (float(x), float(y)), False) >= 0)


Box = tuple[float, float, float, float]
MOVED_SHARE = 0.25  # a track has moved once its centre went this share of its height from where it began
SCORES_KEPT = 16  # sightings' scores kept per track (the median is judged over these)
FIRST_GATE = 0.8  # how far (in track sizes) a track seen once may have gone: its speed is not known yet
KNOWN_GATE = 0.6  # the same for a track whose speed is known (its prediction is good)
UNSEEN_GATE = 0.2  # added per second a track went unseen (at most 4 s)
STILL_S = 5.0  # a track that has not moved this long is still: it no longer needs every frame looked at
HUE_BINS, SAT_BINS = 12, 4
UNLIKE = 0.6  # appearance distance beyond which a detection is not the same object
APPEARANCE_WEIGHT = 1.0  # cost of appearance against distance (in track sizes)
APPEARANCE_LEARN = 0.3  # how fast a track's colours follow what it looks like now


@dataclass(frozen=True)
class Plausible:
    """What a box of one label must look like to count: its height as a share of the picture, its
    height over its width (in picture units: the picture's aspect is applied)."""

    min_height: float = 0.0
    min_aspect: float = 0.0
    max_aspect: float = float("inf")

    def accepts(self, box: Box, picture_aspect: float) -> bool:
        h, w = box[3] - box[1], (box[2] - box[0]) * picture_aspect
        return h >= self.min_height and w > 0 and self.min_aspect <= h / w <= self.max_aspect


# Sane defaults: a standing or walking person is taller than wide (a crouching one about square),
# and at least ~3 % of the picture high (smaller boxes from a small model are mostly noise).
DEFAULT_PLAUSIBLE: dict[str, Plausible] = {
    "person": Plausible(min_height=0.03, min_aspect=0.8, max_aspect=6.0),
    "bicycle": Plausible(min_height=0.03),
    "motorbike": Plausible(min_height=0.03),
    "car": Plausible(min_height=0.02),
    "bus": Plausible(min_height=0.04),
    "truck": Plausible(min_height=0.04),
}


BORDER = 0.01  # a box side this close to the picture's edge was cut by it


def _shift(a0: float, a1: float, b0: float, b1: float) -> float:
    """How far a box moved along one axis, from its sides (a0, a1) to (b0, b1), normalised: by the side the
    picture's edge did not cut when one did, else by its middle."""
    low = min(a0, b0) <= BORDER
    high = max(a1, b1) >= 1 - BORDER
    if low and not high:
        return b1 - a1
    if high and not low:
        return b0 - a0
    return (b0 + b1 - a0 - a1) / 2


def _went_far(a: Box, b: Box, aspect: float) -> bool:
    """Whether a box went from ``a`` to ``b`` by a quarter of its height (in the picture: ``aspect`` is its
    width over its height). Someone walking in at the picture's edge has a box the edge cuts: its inner side
    shows how far they came, its middle only half of it."""
    dx = _shift(a[0], a[2], b[0], b[2]) * aspect
    dy = _shift(a[1], a[3], b[1], b[3])
    height = max(b[3] - b[1], a[3] - a[1], 1e-6)
    return bool((dx**2 + dy**2) ** 0.5 >= MOVED_SHARE * height)


def _centre(b: Box) -> tuple[float, float]:
    return (b[0] + b[2]) / 2, (b[1] + b[3]) / 2


def match_cost(
    track_box: Box, box: Box, unseen_s: float = 0.0, aspect: float = 1.0, gate: float = FIRST_GATE
) -> float | None:
    """How far ``box`` is from a track's predicted box, in units of the track's size (None: no match).

    Overlap alone fails at 2 fps: a person walking across the view near the
    camera moves half a body width between samples. So a detection matches
    when its centre is within ``gate`` of the track's larger side from the
    prediction (further the longer the track went unseen: a walker behind a
    post comes out where its path led, give or take) and its size is similar
    (within 2x). Distances are measured in the picture (``aspect``: its width
    over its height; boxes are normalised to it).
    """
    tw, th = (track_box[2] - track_box[0]) * aspect, track_box[3] - track_box[1]
    w, h = (box[2] - box[0]) * aspect, box[3] - box[1]
    if min(tw, th, w, h) <= 0 or not (0.5 <= w / tw <= 2.0 and 0.5 <= h / th <= 2.0):
        return None
    (tx, ty), (x, y) = _centre(track_box), _centre(box)
    distance = (((tx - x) * aspect) ** 2 + (ty - y) ** 2) ** 0.5 / max(tw, th)
    return distance if distance <= gate + UNSEEN_GATE * min(unseen_s, 4.0) else None


Histogram = npt.NDArray[np.float32]


def appearance(image: npt.NDArray[np.uint8], box: Box) -> Histogram | None:
    """Colour of what is inside a box (hue and saturation of its middle, normalised): what tells two people
    walking side by side apart when their paths cross."""
    h, w = image.shape[:2]
    bw, bh = box[2] - box[0], box[3] - box[1]
    x0, x1 = int((box[0] + 0.2 * bw) * w), int((box[2] - 0.2 * bw) * w)
    y0, y1 = int((box[1] + 0.1 * bh) * h), int((box[3] - 0.1 * bh) * h)
    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
    if x1 - x0 < 2 or y1 - y0 < 4:
        return None
    hsv = cv2.cvtColor(np.ascontiguousarray(image[y0:y1, x0:x1]), cv2.COLOR_BGR2HSV)
    hist = cv2.calcHist([hsv], [0, 1], None, [HUE_BINS, SAT_BINS], [0, 180, 0, 256]).astype(np.float32)
    total = float(hist.sum())
    return hist / total if total > 0 else None


def appearance_distance(a: Histogram | None, b: Histogram | None) -> float:
    """Bhattacharyya distance, 0 (same colours) .. 1 (nothing alike); 0 when either is unknown."""
    if a is None or b is None:
        return 0.0
    return float(cv2.compareHist(a, b, cv2.HISTCMP_BHATTACHARYYA))


def _inside(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    """Share of box ``a``'s area that lies inside box ``b``."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    area = (a[2] - a[0]) * (a[3] - a[1])
    return max(0.0, w) * max(0.0, h) / area if area > 0 else 1.0


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
    velocity: tuple[float, float] = (0.0, 0.0)  # of the box centre, normalised units per second
    first_box: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
    scores: list[float] = field(default_factory=list)  # of the last sightings (bounded)
    moved: bool = False  # its centre went further than MOVED_SHARE of its height from where it was first seen
    colours: Histogram | None = None  # its appearance, learned over its sightings

    anchor: Box | None = None  # where it was when it last moved (None: where it was first seen)
    moved_at: float | None = None  # when it last went MOVED_SHARE of its height from there (None: first_seen)

    def moved_far(self, aspect: float = 1.0) -> bool:
        """Whether it went a quarter of its height from where it was first seen (in the picture: ``aspect``
        is its width over its height)."""
        return _went_far(self.first_box, self.box, aspect)

    def note_motion(self, now: float, aspect: float = 1.0) -> None:
        """Remember when it last moved: each time it goes a quarter of its height from where it last did."""
        if _went_far(self.anchor or self.first_box, self.box, aspect):
            self.anchor, self.moved_at = self.box, now

    def still_for(self, now: float) -> float:
        """How long it has stood where it last moved to (since it was first seen, if it never moved)."""
        return now - (self.first_seen if self.moved_at is None else self.moved_at)

    def median_score(self) -> float:
        return float(np.median(self.scores)) if self.scores else self.score

    def predicted(self, now: float, horizon_s: float = 3.0) -> Box:
        """Where the box should be at ``now`` if the object kept going (for at most ``horizon_s``)."""
        dt = min(now - self.last_seen, horizon_s)
        dx, dy = self.velocity[0] * dt, self.velocity[1] * dt
        b = self.box
        return (b[0] + dx, b[1] + dy, b[2] + dx, b[3] + dy)

    def observe(self, box: Box, score: float, now: float) -> None:
        dt = now - self.last_seen
        if dt > 0:
            (ox, oy), (nx, ny) = _centre(self.box), _centre(box)
            v = ((nx - ox) / dt, (ny - oy) / dt)
            # Smoothed, so one jittery box does not throw the prediction off.
            seen_once = self.velocity == (0.0, 0.0) and self.hits <= 1
            a = 1.0 if seen_once else 0.5
            self.velocity = (a * v[0] + (1 - a) * self.velocity[0], a * v[1] + (1 - a) * self.velocity[1])
        self.box, self.score, self.last_seen = box, score, now

    def learn_colours(self, colours: Histogram | None) -> None:
        if colours is None:
            return
        if self.colours is None:
            self.colours = colours
        else:
            self.colours = ((1 - APPEARANCE_LEARN) * self.colours + APPEARANCE_LEARN * colours).astype(np.float32)


@dataclass(frozen=True)
class TrackEvent:
    type: Literal["detection_started", "detection_ended"]
    track: Track


@dataclass
class Tracker:
    """Matches each sample's detections to live tracks (greedy, best score first, nearest predicted box).

    Detections at ``min_score`` or above start tracks and count as hits;
    weaker ones (down to ``keep_score``) only keep a matching track alive, so
    a person half hidden for a moment stays one track (one event).
    """

    labels: Sequence[str]  # class index -> name
    watched: frozenset[str] = frozenset({"person", "bicycle", "car", "motorbike", "bus", "truck"})
    min_hits: int = 2
    min_score: float = 0.5
    keep_score: float | None = None  # default: 0.6 x min_score
    lost_after_s: float = 3.0
    part_of: float = 0.7  # share of a box inside a stronger same-class box that makes it a part
    max_tracks: int = 32  # per camera: bounds memory in a crowd (further objects are not tracked)
    zones: dict[str, Polygon] = field(default_factory=dict)
    masks: Sequence[Polygon] = ()
    plausible: dict[str, Plausible] = field(default_factory=lambda: dict(DEFAULT_PLAUSIBLE))
    picture_aspect: float = 16 / 9  # width over height of the frames (boxes are normalised to them)
    tracks: list[Track] = field(default_factory=list)
    untracked: int = 0  # detections ignored because max_tracks were alive
    implausible: int = 0  # boxes dropped as not plausible for their label
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

    def watch_interval(self, now: float) -> float | None:
        """How often the camera's frames must go to the detector whatever the motion gate says.

        0 (every sampled frame) while a track is new or has moved in the last
        ``STILL_S``: it may be about to start an event, or is one. Once every
        track stands still, every third of ``lost_after_s`` while one of them
        is an event (someone who stopped to talk: their event goes on until
        they leave, not until they stop). None when only still things no
        event was ever about remain (a parked car): motion alone wakes the
        detector, and they end unseen, silently.
        """
        interval: float | None = None
        for track in list(self.tracks):
            if track.still_for(now) < STILL_S:
                return 0.0
            if track.started:
                interval = self.lost_after_s / 3
        return interval

    def _candidates(self, det: Detections, keep_score: float) -> list[tuple[str, float, Box]]:
        """This sample's boxes worth tracking, best score first: watched, unmasked, plausible, not a part."""
        out: list[tuple[str, float, Box]] = []
        for i in np.argsort(-det.scores):
            label = self.labels[int(det.classes[i])] if int(det.classes[i]) < len(self.labels) else "?"
            score = float(det.scores[i])
            b = det.boxes[i]
            box = (float(b[0]), float(b[1]), float(b[2]), float(b[3]))
            if label not in self.watched or score < keep_score or self._masked(box):
                continue
            rule = self.plausible.get(label)
            if rule is not None and not rule.accepts(box, self.picture_aspect):
                self.implausible += 1
                continue
            # A weaker box mostly inside a stronger one of the same class is a part of it
            # (a torso, a head): not a second object.
            if any(lbl == label and _inside(box, other) >= self.part_of for lbl, _, other in out):
                continue
            out.append((label, score, box))
        return out

    def _assign(
        self, found: list[tuple[str, float, Box]], colours: list[Histogram | None], now: float
    ) -> dict[int, int]:
        """Detection index -> track index: the cheapest pairs first (distance from where each track was
        heading plus how unlike it the detection looks), each track and detection used once."""
        pairs: list[tuple[float, int, int]] = []
        for j, track in enumerate(self.tracks):
            predicted = track.predicted(now, self.lost_after_s)
            unseen = max(0.0, now - track.last_seen)
            for i, (label, _, box) in enumerate(found):
                if track.label != label:
                    continue
                gate = FIRST_GATE if track.hits <= 1 and len(track.scores) <= 1 else KNOWN_GATE
                cost = match_cost(predicted, box, unseen, self.picture_aspect, gate)
                if cost is None:
                    continue
                unlike = appearance_distance(track.colours, colours[i])
                if unlike > UNLIKE:
                    continue
                pairs.append((cost + APPEARANCE_WEIGHT * unlike, i, j))
        assigned: dict[int, int] = {}
        used: set[int] = set()
        for _, i, j in sorted(pairs):
            if i in assigned or j in used:
                continue
            assigned[i] = j
            used.add(j)
        return assigned

    def update(self, det: Detections, now: float, image: npt.NDArray[np.uint8] | None = None) -> list[TrackEvent]:
        """Take one sample's detections (and the picture they were found in, for their colours); returns
        tracks that started or ended."""
        events: list[TrackEvent] = []
        keep_score = self.keep_score if self.keep_score is not None else 0.6 * self.min_score
        found = self._candidates(det, keep_score)
        colours = [appearance(image, box) if image is not None else None for _, _, box in found]
        assigned = self._assign(found, colours, now)
        for i, (label, score, box) in enumerate(found):
            strong = score >= self.min_score
            j = assigned.get(i)
            if j is None:
                if not strong:
                    continue
                if len(self.tracks) >= self.max_tracks:
                    self.untracked += 1
                    continue
                track = Track(next(self._ids), label, box, score, now, now, first_box=box, scores=[score])
                self.tracks.append(track)
            else:
                track = self.tracks[j]
                track.observe(box, score, now)
                track.scores = [*track.scores[-(SCORES_KEPT - 1) :], score]
                track.moved = track.moved or track.moved_far(self.picture_aspect)
                track.note_motion(now, self.picture_aspect)
                if strong:
                    track.hits += 1
            track.learn_colours(colours[i])
            zones = self._zones_of(track.box)
            in_zone = bool(zones) or not self.zones
            if in_zone and score > track.best_score:  # the best sighting where the camera watches
                track.best_score, track.best_box, track.best_at = score, track.box, now
            if track.started:
                track.zones = tuple(dict.fromkeys((*track.zones, *zones)))  # every zone it was in
            elif track.hits >= self.min_hits and in_zone and track.moved and track.median_score() >= self.min_score:
                track.started = True
                track.zones = zones
                events.append(TrackEvent("detection_started", track))
        events.extend(self.expire(now))
        return events

    def expire(self, now: float) -> list[TrackEvent]:
        """End the tracks not seen for ``lost_after_s`` (also called when no frames come)."""
        events: list[TrackEvent] = []
        for track in list(self.tracks):
            if now - track.last_seen >= self.lost_after_s:
                self.tracks.remove(track)
                if track.started:
                    events.append(TrackEvent("detection_ended", track))
        return events
