"""Which stream detection reads: detect_url, a brand's substream derived from the main URL, or the main stream."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from support import CAM_PASSWORD, AgentProcess, Collector, write_config

from agent.config.model import CameraConfig
from agent.sim.mosquitto import Mosquitto
from agent.sim.rtsp import RtspServer
from agent.stream.substream import derive_substream


@pytest.mark.parametrize(
    ("main", "sub"),
    [
        ("rtsp://a:b@10.0.0.7:554/Streaming/Channels/101", "rtsp://a:b@10.0.0.7:554/Streaming/Channels/102"),
        ("rtsp://10.0.0.7/Streaming/channels/1601", "rtsp://10.0.0.7/Streaming/channels/1602"),
        (
            "rtsp://10.0.0.7/ISAPI/Streaming/Channels/201?transportmode=unicast",
            "rtsp://10.0.0.7/ISAPI/Streaming/Channels/202?transportmode=unicast",
        ),
        ("rtsp://10.0.0.7/h264/ch1/main/av_stream", "rtsp://10.0.0.7/h264/ch1/sub/av_stream"),
        (
            "rtsp://u:p@10.0.0.8/cam/realmonitor?channel=3&subtype=0",
            "rtsp://u:p@10.0.0.8/cam/realmonitor?channel=3&subtype=1",
        ),
        ("rtsp://10.0.0.8/cam/realmonitor?channel=1", "rtsp://10.0.0.8/cam/realmonitor?channel=1&subtype=1"),
        ("rtsp://10.0.0.9/unicast/c2/s0/live", "rtsp://10.0.0.9/unicast/c2/s1/live"),
    ],
)
def test_known_schemes_give_their_substream(main: str, sub: str) -> None:
    derived = derive_substream(main)
    assert derived is not None and derived[0] == sub


@pytest.mark.parametrize(
    "url",
    [
        "rtsp://10.0.0.7/Streaming/Channels/102",  # already the substream
        "rtsp://10.0.0.8/cam/realmonitor?channel=1&subtype=1",
        "rtsp://10.0.0.9/live",  # unknown scheme: the main stream it is
        "rtsp://10.0.0.9/stream1",
        "file:///srv/clip.mp4",
    ],
)
def test_other_urls_are_left_alone(url: str) -> None:
    assert derive_substream(url) is None


def test_detection_source_prefers_detect_url_then_the_derived_substream() -> None:
    hik = "rtsp://10.0.0.7/Streaming/Channels/101"
    cam = CameraConfig(id="gate", url=hik, username="admin", password="Pw-123")
    url, source = cam.detection_source("auto")
    assert url == "rtsp://admin:Pw-123@10.0.0.7/Streaming/Channels/102" and source.startswith("substream")
    assert cam.detection_source("off") == (cam.stream_url, "main stream")
    own = CameraConfig(id="gate", url=hik, detect_url="rtsp://10.0.0.7/other")
    assert own.detection_source("auto") == ("rtsp://10.0.0.7/other", "detect_url")
    plain = CameraConfig(id="odd", url="rtsp://10.0.0.9/live")
    assert plain.detection_source("auto") == ("rtsp://10.0.0.9/live", "main stream")


@pytest.mark.integration
def test_detection_reads_the_derived_substream_or_else_the_main_streams_keyframes(
    workdir: Path,
    mosquitto: Mosquitto,
    rtsp_factory: Callable[..., RtspServer],
    collector_factory: Callable[..., Collector],
    agent_factory: Callable[[Path], AgentProcess],
    prefix: str,
) -> None:
    """Hikvision-style cameras: .../N01 is the main stream, .../N02 the substream; camera 2 has none."""
    server = rtsp_factory(
        {
            "Streaming/Channels/101": "video:640x480@10,gop=20",
            "Streaming/Channels/102": "video:320x240@10,gop=20",
            "Streaming/Channels/201": "video:640x480@10,gop=20",
        }
    )
    cams = [{"id": f"c{n}", "url": server.url(f"Streaming/Channels/{n}01")} for n in (1, 2)]
    col = collector_factory(mosquitto.port, prefix)
    detection = {"enabled": True, "keyframes_above": 400, "motion_min_area": 0}
    agent = agent_factory(write_config(workdir / "ward.toml", "w1", mosquitto.port, prefix, cams, detection=detection))

    def looked_at(p: dict[str, Any]) -> bool:
        return all(p["cameras"][c["id"]]["detection"]["frames"] >= 3 for c in cams)

    stats = col.wait_for("w1/agent/stats", looked_at, 25)
    assert stats, col.last("w1/agent/stats")
    log = agent.log_text()
    assert "camera c1: detection reads its substream rtsp://admin:***@" in log and "02 (320x240)" in log
    assert "camera c2: no substream at rtsp://admin:***@" in log and "main stream's keyframes instead" in log
    # c2: one picture per GOP (2 s), not 2 a second: its main stream is never decoded whole for detection.
    before = stats["cameras"]["c2"]["frames_decoded"]
    time.sleep(6.0)
    after = col.last("w1/agent/stats")["cameras"]["c2"]["frames_decoded"]
    assert after - before <= 8, (before, after)
    assert CAM_PASSWORD not in log
