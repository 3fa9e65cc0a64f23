"""What detection says, in the contract's words: the ``detection_started`` / ``detection_ended`` payloads.

Built here, on the detector's thread as a track starts or ends, and handed
to the publisher as data: detection needs nothing of the publishing layer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from agent.clock import rfc3339
from agent.detect.tracker import Track
from contract.payloads import Detection, to_wire
from contract.vocab import EVENT_SCHEMA


def detection_payload(
    *,
    event_id: str,
    ward: str,
    camera: str,
    type: str,
    track: Track,
    snapshot: str | None,
    wall_of: Callable[[float], float],
    now: float,
    started_id: str | None = None,
) -> dict[str, Any]:
    """A ``detection_started``/``detection_ended`` event; ``wall_of`` maps monotonic to wall seconds."""
    box = track.best_box  # the box drawn on the snapshot (the best sighting)
    payload: dict[str, Any] = {
        "schema": EVENT_SCHEMA,
        "id": event_id,
        "ward": ward,
        "camera": camera,
        "ts": rfc3339(wall_of(now)),
        "type": type,
        "label": track.label,
        "score": round(track.best_score, 3),
        "box": [round(min(1.0, max(0.0, v)), 4) for v in box],
        "zones": list(track.zones),
        "track_id": track.id,
        "snapshot": snapshot,
        "first_seen": rfc3339(wall_of(track.first_seen)),
        "last_seen": rfc3339(wall_of(track.last_seen)),
        "hits": track.hits,
        "started_id": started_id,
    }
    return to_wire(Detection.model_validate(payload))
