"""Start and control the local GStreamer RTSP server (``gst_rtsp_server.py``).

It needs Debian's ``python3-gi`` and ``gir1.2-gst-rtsp-server-1.0``, which
live in the system Python, so it runs as a child process of
``/usr/bin/python3`` (or ``$CAMWATCH_GST_PYTHON``).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from functools import cache
from pathlib import Path

SERVER_SCRIPT = Path(__file__).with_name("gst_rtsp_server.py")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def gst_python() -> str:
    return os.environ.get("CAMWATCH_GST_PYTHON", "/usr/bin/python3")


# Every element the server's pipelines use (gst_rtsp_server.py); timeoverlay is
# in Debian's gstreamer1.0-x, which --no-install-recommends leaves out.
GST_ELEMENTS = (
    "videotestsrc",
    "videoconvert",
    "timeoverlay",
    "identity",
    "h264parse",
    "rtph264pay",
    "appsrc",
    "audiotestsrc",
    "audioconvert",
    "rtpL16pay",
)


@cache
def gst_missing() -> str | None:
    """Why the system Python cannot run the GStreamer RTSP server here, or None if it can."""
    code = (
        "import gi; gi.require_version('GstRtspServer', '1.0'); gi.require_version('Gst', '1.0');"
        "from gi.repository import Gst, GstRtspServer; Gst.init(None);"
        f"need = {list(GST_ELEMENTS)!r};"
        "missing = [e for e in need if not Gst.ElementFactory.find(e)];"
        "missing += [] if Gst.ElementFactory.find('x264enc') or Gst.ElementFactory.find('openh264enc')"
        " else ['x264enc (or openh264enc)'];"
        "print(' '.join(missing))"
    )
    try:
        run = subprocess.run([gst_python(), "-c", code], capture_output=True, timeout=30, check=False, text=True)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{gst_python()} cannot run: {exc}"
    if run.returncode != 0:
        last = (run.stderr.strip().splitlines() or ["no output"])[-1]
        return f"{gst_python()} cannot load GStreamer's RTSP server: {last}"
    if run.stdout.strip():
        return f"GStreamer elements missing: {run.stdout.strip()}"
    return None


def gst_available() -> bool:
    """Whether the system Python can run the GStreamer RTSP server here."""
    return gst_missing() is None


class RtspServer:
    """One server process on 127.0.0.1:port with named mounts (see gst_rtsp_server.py)."""

    def __init__(
        self,
        mounts: dict[str, str],
        *,
        port: int | None = None,
        user: str | None = None,
        password: str | None = None,
        auth: str = "digest",
    ) -> None:
        self.mounts = mounts
        self.port = port or free_port()
        self.user = user
        self.password = password
        self.auth = auth
        self.proc: subprocess.Popen[bytes] | None = None

    def url(self, mount: str, user: str | None = None, password: str | None = None) -> str:
        user = self.user if user is None else user
        password = self.password if password is None else password
        cred = f"{user}:{password}@" if user else ""
        return f"rtsp://{cred}127.0.0.1:{self.port}/{mount}"

    def start(self, timeout: float = 15.0) -> RtspServer:
        cmd = [gst_python(), str(SERVER_SCRIPT), "--port", str(self.port)]
        for name, spec in self.mounts.items():
            cmd += ["--mount", f"{name}={spec}"]
        if self.user:
            cmd += ["--user", self.user, "--password", self.password or "", "--auth", self.auth]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + timeout
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()  # blocks until READY or exit
        if not line.startswith(b"READY") or time.monotonic() > deadline:
            self.kill()
            raise RuntimeError(f"RTSP test server did not start on port {self.port}")
        return self

    def kill(self) -> None:
        """SIGKILL: the port closes at once (connection refused afterwards)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        if self.proc is not None and self.proc.stdout is not None:
            self.proc.stdout.close()
        self.proc = None

    stop = kill

    def pause(self) -> None:
        """SIGSTOP: sockets stay open but no data flows (a stalled camera)."""
        if self.proc is not None:
            os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        if self.proc is not None:
            os.kill(self.proc.pid, signal.SIGCONT)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def __enter__(self) -> RtspServer:
        return self.start() if self.proc is None else self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            self.resume()
        self.kill()
