"""Which stream detection reads: detect_url, a brand's substream derived from the main URL, or the main stream."""

from __future__ import annotations

import pytest

from agent.config.model import CameraConfig
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
