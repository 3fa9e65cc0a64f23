"""Detection end to end: the real RTSP server, Mosquitto, the agent and the real model.

A person (cut from astronaut.png) walks once across a drawn street, then the
street is empty again; the clip loops. Another camera shows only swaying
trees, a fluttering flag and sensor noise. One agent watches both (and a
third camera with a zone on the right half of the view).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from support import SHARED_MODELS, AgentProcess, Collector, wait_until, write_config

from agent.sim import scenes
from agent.sim.clips import write_au_clip
from agent.sim.mosquitto import Mosquitto
from agent.sim.rtsp import RtspServer

pytestmark = pytest.mark.integration

FPS = 10


def box_iou(a: list[float] | tuple[float, ...], b: list[float] | tuple[float, ...]) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - w * h
    return w * h / union if union > 0 else 0.0


def detections(col: Collector, camera: str) -> list[dict[str, Any]]:
    return [e for e in col.of(f"/{camera}/events") if e["type"].startswith("detection_")]


def ended_on(col: Collector, camera: str) -> bool:
    """The camera's last detection event so far ends a detection."""
    seen = detections(col, camera)
    return bool(seen) and seen[-1]["type"] == "detection_ended"


def test_one_walker_is_one_event_with_a_snapshot_and_swaying_trees_are_none(
    workdir: Path,
    mosquitto: Mosquitto,
    rtsp_factory: Callable[..., RtspServer],
    collector_factory: Callable[..., Collector],
    agent_factory: Callable[[Path], AgentProcess],
    prefix: str,
) -> None:
    walk = scenes.WalkThrough(fps=FPS, enter_at=3.0, cross_s=6.0, length_s=16.0)
    walk_clip = write_au_clip(workdir / "walk.au", walk.frames(), fps=FPS, gop=2 * FPS)
    sway_clip = write_au_clip(workdir / "sway.au", scenes.swaying_street(fps=FPS, seconds=16), fps=FPS, gop=2 * FPS)
    server = rtsp_factory(
        {
            "walk": f"clip:{walk_clip},fps={FPS}",
            "zoned": f"clip:{walk_clip},fps={FPS}",
            "sway": f"clip:{sway_clip},fps={FPS}",
            "main": "video:320x240@10,gop=20",
            "sub": f"clip:{walk_clip},fps={FPS}",
        }
    )
    col = collector_factory(mosquitto.port, prefix)
    right_half = [[0.5, 0.0], [1.0, 0.0], [1.0, 1.0], [0.5, 1.0]]
    cfg = write_config(
        workdir / "ward.toml",
        "det",
        mosquitto.port,
        prefix,
        [
            {"id": "walk", "url": server.url("walk")},
            {"id": "zoned", "url": server.url("zoned"), "zones": {"right": right_half}},
            {"id": "sway", "url": server.url("sway")},
            # Health from the main stream, detection from the substream (its own connection).
            {"id": "two", "url": server.url("main"), "detect_url": server.url("sub")},
        ],
        detection={"enabled": True, "required": True, "model_dir": str(SHARED_MODELS), "lost_after_s": 2.0},
    )
    agent = agent_factory(cfg)
    try:
        # The clip starts when the agent connects: the person enters at 3 s and is gone at 9 s.
        ended = col.wait_for("/walk/events", lambda e: e["type"] == "detection_ended", timeout=40)
        assert ended is not None, agent.log_text()[-3000:]
        for cam in ("zoned", "two"):
            wait_until(partial(ended_on, col, cam), 15)
        stats = col.wait_for(
            "/agent/stats",
            lambda s: (
                s["cameras"]["sway"]["detection"]["inferences"] >= 10 and s["cameras"]["walk"]["detection"]["gated"]
            ),
            15,
        )
    finally:
        agent.stop()
    log = agent.log_text()
    assert "Traceback" not in log, log[-3000:]
    assert not col.schema_errors, col.schema_errors

    # Exactly one started and one ended for the walker, same track, the ended one pointing back.
    walk_events = [e for e in detections(col, "walk") if e["ts"] <= ended["ts"]]
    assert [e["type"] for e in walk_events] == ["detection_started", "detection_ended"], walk_events
    started = walk_events[0]
    assert started["label"] == "person" and started["score"] >= 0.5
    assert ended["track_id"] == started["track_id"] and ended["started_id"] == started["id"]
    assert started["zones"] == []
    # The box is where the person was (at the best sighting: some sample of the walk).
    truths = [walk.truth(i / FPS) for i in range(walk.frame_count)]
    best_overlap = max(box_iou(started["box"], t) for t in truths if t is not None)
    assert best_overlap >= 0.5, (started["box"], best_overlap)

    # The snapshot came first, on snapshot/{event id}, and is a JPEG with the person in it.
    topics = [t for t, _, _ in col.messages]
    snap_topic = f"{prefix}/det/walk/snapshot/{started['snapshot']}"
    assert started["snapshot"] == started["id"]
    assert snap_topic in topics
    event_index = next(
        i for i, (t, p, _) in enumerate(col.messages) if isinstance(p, dict) and p.get("id") == started["id"]
    )
    assert topics.index(snap_topic) < event_index
    jpeg = next(p for t, p, _ in col.messages if t == snap_topic)
    assert jpeg[:2] == b"\xff\xd8"
    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None and image.shape[1] <= 640 and image.shape[0] > 100

    # The zoned camera reports the walker only once it stands in the right half, naming the zone.
    zoned = detections(col, "zoned")
    assert zoned[0]["type"] == "detection_started" and zoned[0]["zones"] == ["right"], zoned
    box = zoned[0]["box"]
    assert (box[0] + box[2]) / 2 >= 0.45, box  # the best sighting so far: at or past the middle
    assert sum(e["type"] == "detection_started" for e in zoned) == 1

    # detect_url: the walker on the substream makes the events; health is the main stream's.
    two = detections(col, "two")
    assert [e["type"] for e in two[:2]] == ["detection_started", "detection_ended"], two
    two_health = col.last("/two/health")
    assert two_health["state"] == "online" and two_health["stream"]["width"] == 320

    # Swaying trees, a flag and noise: the detector looked (motion) and found no one.
    assert detections(col, "sway") == []
    assert stats is not None
    sway = stats["cameras"]["sway"]["detection"]
    assert sway["inferences"] >= 10 and sway["events"] == 0
    # The empty street after the walker left needed no inference (the stats waited for that).
    assert stats["detector"]["model"] == "yolox_nano" and stats["detector"]["inference_ms"] > 0
