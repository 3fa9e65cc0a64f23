"""The agent's errors (cameras, the detector); third-party errors are translated into these. The base and
ConfigError live in :mod:`common.errors`."""

from __future__ import annotations

from typing import Literal

from common.errors import CamwatchError
from common.i18n import N_

Reason = Literal["unreachable", "auth_failed", "not_found", "stalled", "no_video"]


class CameraError(CamwatchError):
    """A camera could not be read; ``reason`` is one of DESIGN.md's offline reasons."""

    reason: Reason = "unreachable"
    hint = ""  # what to do, in English: shown translated (common.i18n)

    def __init__(self, detail: str) -> None:
        self.detail = detail
        super().__init__(detail)


class CameraUnreachable(CameraError):
    reason: Reason = "unreachable"
    hint = N_("host unreachable: check the camera's IP address and port, its power and network cable")


class CameraAuthFailed(CameraError):
    reason: Reason = "auth_failed"
    hint = N_("wrong user name or password for this camera")


class CameraNotFound(CameraError):
    reason: Reason = "not_found"
    hint = N_("wrong path: the camera answered but has no stream at this URL path (check the channel/stream path)")


class StreamStalled(CameraError):
    reason: Reason = "stalled"
    hint = N_("the camera accepted the connection but sends no video (overloaded, hung, or not an RTSP service)")


class NoVideo(CameraError):
    reason: Reason = "no_video"
    hint = N_("the stream has no decodable video track (audio only, or an unsupported codec)")


class DetectorError(CamwatchError):
    """The object detector could not be loaded or run."""


class ModelNotFound(DetectorError):
    """The model's manifest or weights are not on disk (detection stays off unless asked for)."""
