"""Open a camera stream with PyAV and translate failures into camwatch's reasons.

This is the one place where PyAV/FFmpeg errors become
:class:`~agent.errors.CameraError` subclasses (``unreachable``,
``auth_failed``, ``not_found``, ``stalled``, ``no_video``). Every message is
redacted: FFmpeg puts the full URL, password included, in its errors.
"""

from __future__ import annotations

import errno
import re
import socket
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import av
import av.error

from agent.errors import CameraAuthFailed, CameraError, CameraNotFound, CameraUnreachable, NoVideo, StreamStalled
from common.redact import redact

_ERRNO_PREFIX = re.compile(r"\[Errno -?\d+\]\s*")
DEFAULT_PORTS = {"rtsp": 554, "rtsps": 322}
ANALYZE_US = 1_000_000
_UNREACHABLE_ERRNOS = {
    errno.ECONNREFUSED,
    errno.EHOSTUNREACH,
    errno.ENETUNREACH,
    errno.ECONNRESET,
    errno.EHOSTDOWN,
}


@dataclass(frozen=True)
class OpenedStream:
    container: Any  # av.container.InputContainer
    video: Any  # av.VideoStream
    codec: str | None
    width: int | None
    height: int | None
    fps: float | None
    is_file: bool

    def close(self) -> None:
        try:
            self.container.close()
        except Exception:  # closing a broken stream must never raise into the loop
            pass


def file_path(url: str) -> str:
    return unquote(urlsplit(url).path)


def tcp_check(url: str, timeout: float) -> CameraError | None:
    """Connect to the URL's host:port; return why that failed, or None if it connects."""
    parts = urlsplit(url)
    host = parts.hostname
    if not host:
        return None
    port = parts.port or DEFAULT_PORTS.get(parts.scheme, 554)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return None
    except socket.gaierror as exc:
        return CameraUnreachable(f"cannot resolve host {host!r}: {exc.strerror}")
    except TimeoutError:
        return CameraUnreachable(f"no answer from {host}:{port} within {timeout:g} s (TCP connect timed out)")
    except OSError as exc:
        return CameraUnreachable(f"cannot connect to {host}:{port}: {exc.strerror or exc}")


def describe(exc: BaseException) -> str:
    """A redacted one-line text of an FFmpeg/OS error, without the ``[Errno N]`` noise."""
    return _ERRNO_PREFIX.sub("", redact(exc)).strip()


def classify(exc: BaseException, url: str, elapsed: float, open_timeout: float) -> CameraError:
    """Map a PyAV/FFmpeg error raised while opening ``url`` to a CameraError."""
    text = describe(exc)
    if isinstance(exc, av.error.HTTPUnauthorizedError | av.error.HTTPForbiddenError):
        return CameraAuthFailed(f"camera refused the credentials ({text})")
    if isinstance(exc, av.error.HTTPNotFoundError):
        return CameraNotFound(f"no stream at this path ({text})")
    if isinstance(exc, av.error.HTTPError):
        return NoVideo(
            f"camera answered with an error ({text}); if it cannot stream over TCP, "
            'set transport = "udp" for this camera'
        )
    if isinstance(exc, OSError) and exc.errno in _UNREACHABLE_ERRNOS:
        return CameraUnreachable(f"cannot connect ({text})")
    if isinstance(exc, FileNotFoundError):
        return CameraNotFound(f"file not found ({text})")
    timed_out = isinstance(exc, av.error.ExitError | TimeoutError) or elapsed >= open_timeout * 0.9
    # Anything else: tell a dead or unknown host from a live socket that
    # says nothing useful (FFmpeg reports both as generic I/O errors).
    tcp = tcp_check(url, timeout=min(open_timeout, 3.0))
    if tcp is not None:
        return tcp
    if timed_out:
        return StreamStalled(f"connected, but no RTSP answer within {open_timeout:g} s")
    if isinstance(exc, av.error.InvalidDataError):
        return NoVideo(f"the server's answer is not a usable RTSP/video stream ({text})")
    return NoVideo(f"cannot open stream ({text})")


def open_stream(url: str, transport: str, open_timeout: float, read_timeout: float) -> OpenedStream:
    """Open ``url`` (rtsp://, rtsps:// or file://) and find its video track; raise CameraError."""
    is_file = url.startswith("file://")
    started = time.monotonic()
    try:
        if is_file:
            container = av.open(file_path(url), mode="r")
        else:
            container = av.open(
                url,
                mode="r",
                # FFmpeg's own socket timeout (microseconds) bounds every
                # connect and read without calling back into Python; PyAV's
                # interrupt callback is used for the open only: during reads
                # it would take the GIL on every poll and, with 20+ cameras,
                # triple the per-camera CPU (measured: 19.5 -> 6 ms/camera-s).
                # analyzeduration: FFmpeg looks at 5 s of a stream by default before handing it over;
                # 1 s finds codec, size and rate as well (the SDP carries most of it) and opens 0.8 s sooner,
                # holding less of the stream in memory meanwhile: an agent starting hundreds of cameras.
                options={
                    "rtsp_transport": transport,
                    "timeout": str(int(read_timeout * 1_000_000)),
                    "analyzeduration": str(ANALYZE_US),
                },
                timeout=(open_timeout, None),
            )
    except (av.error.FFmpegError, OSError) as exc:
        effective = min(open_timeout, read_timeout)
        raise classify(exc, url, time.monotonic() - started, effective) from None
    try:
        videos = list(container.streams.video)
        if not videos:
            kinds = ", ".join(f"{s.type} {s.codec_context.name}" for s in container.streams) or "none"
            raise NoVideo(f"the stream has no video track (tracks: {kinds})")
        video = videos[0]
        ctx = video.codec_context
        if not ctx.name:
            raise NoVideo("the video track's codec is unknown to the decoder")
        rate = video.average_rate or video.guessed_rate or video.base_rate
        fps = float(rate) if rate else None
        return OpenedStream(
            container=container,
            video=video,
            codec=ctx.name,
            width=ctx.width or None,
            height=ctx.height or None,
            fps=fps,
            is_file=is_file,
        )
    except BaseException:
        container.close()
        raise
