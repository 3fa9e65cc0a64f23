#!/usr/bin/python3
"""A local RTSP server for tests, benchmarks and the demo (GStreamer).

Runs with Debian's system Python (``/usr/bin/python3``) because it needs
``python3-gi`` and ``gir1.2-gst-rtsp-server-1.0``; it imports nothing from
camwatch. It binds 127.0.0.1 only.

    /usr/bin/python3 gst_rtsp_server.py --port 8554 \
        --mount 'cam1=video:640x360@25,gop=50' --mount 'mic=audio' \
        --user admin --password secret --auth digest

Mount specs: ``video:WxH@FPS[,gop=N][,pattern=NAME][,bitrate=KBPS][,deliver=FPS]``
streams live H.264 from ``videotestsrc`` (``deliver`` drops frames at random so
about that many of the nominal FPS arrive: a camera that cannot keep up); ``audio`` streams audio only (no video
track); ``clip:PATH[,fps=N][,start=K]`` loops a clip (from access unit K) of H.264 access units written by
``agent.sim.clips.write_au_clip`` (scenario tests: frozen, black, moved...). A mount's name may
carry a query, told apart like a camera's (``'cam/realmonitor?channel=1&subtype=1=video:640x360@15'``).
Prints ``READY <port>`` on stdout once it listens.
"""

from __future__ import annotations

import argparse
import re
import signal
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtsp", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtsp, GstRtspServer  # noqa: E402


def video_launch(spec: str) -> str:
    head, _, rest = spec.partition(",")
    size, _, fps = head.partition("@")
    width, _, height = size.partition("x")
    opts = dict(kv.split("=", 1) for kv in rest.split(",") if kv)
    fps_i = int(fps or 25)
    gop = int(opts.get("gop", fps_i * 2))
    pattern = opts.get("pattern", "ball")
    bitrate = int(opts.get("bitrate", 1000))
    # zone-plate moves with kt/kx/ky: busy, camera-like bitrates for benchmarks
    extra = " kx2=20 ky2=20 kt=1 kt2=0" if pattern == "zone-plate" else ""
    drop = ""
    if "deliver" in opts:
        # Drop frames but keep announcing the nominal rate: a camera that cannot keep up.
        drop = f"! identity drop-probability={1 - float(opts['deliver']) / fps_i:.3f} "
    return (
        f"( videotestsrc is-live=true pattern={pattern}{extra} "
        f"! video/x-raw,width={int(width)},height={int(height)},framerate={fps_i}/1 "
        f"{drop}"
        f"! timeoverlay ! x264enc tune=zerolatency speed-preset=ultrafast "
        f"key-int-max={gop} bitrate={bitrate} "
        f"! video/x-h264,profile=baseline ! rtph264pay name=pay0 pt=96 config-interval=-1 )"
    )


CLIP_MAGIC = b"CWAU1\n"


_CLIPS: dict[str, list[bytes]] = {}


def read_clip(path: str) -> list[bytes]:
    """Access units of a clip written by agent.sim.clips.write_au_clip (flag byte, 4-byte length, data)."""
    if path in _CLIPS:  # many mounts may loop the same clip: keep one copy
        return _CLIPS[path]
    with open(path, "rb") as f:
        data = f.read()
    if not data.startswith(CLIP_MAGIC):
        raise SystemExit(f"{path}: not a camwatch clip")
    aus, pos = [], len(CLIP_MAGIC)
    while pos + 5 <= len(data):
        size = int.from_bytes(data[pos + 1 : pos + 5], "big")
        aus.append(data[pos + 5 : pos + 5 + size])
        pos += 5 + size
    if not aus:
        raise SystemExit(f"{path}: empty clip")
    _CLIPS[path] = aus
    return aus


class ClipFeeder:
    """Loops a clip's H.264 access units into an appsrc with our own timestamps (no re-encoding)."""

    def __init__(self, path: str, fps: int, start: int = 0) -> None:
        self.aus = read_clip(path)
        self.duration = Gst.SECOND // fps
        self.start = start  # the access unit to begin at (a keyframe): cameras are not in step
        self.n = 0

    def launch(self) -> str:
        return (
            "( appsrc name=src is-live=true format=time do-timestamp=false "
            "caps=video/x-h264,stream-format=byte-stream,alignment=au "
            "! rtph264pay name=pay0 pt=96 config-interval=-1 )"
        )

    def on_configure(self, factory: object, media: GstRtspServer.RTSPMedia) -> None:
        self.n = 0
        src = media.get_element().get_child_by_name("src")
        src.connect("need-data", self.on_need_data)

    def on_need_data(self, src: Gst.Element, length: int) -> None:
        au = self.aus[(self.start + self.n) % len(self.aus)]
        buf = Gst.Buffer.new_wrapped(au)
        buf.pts = buf.dts = self.n * self.duration
        buf.duration = self.duration
        self.n += 1
        src.emit("push-buffer", buf)


def mkv_launch(path: str) -> str:
    """Stream an H.264 Matroska file at its own pace, without Python per frame (cheap: many mounts)."""
    return f"( filesrc location={path} ! matroskademux ! h264parse ! rtph264pay name=pay0 pt=96 config-interval=-1 )"


MOUNT = re.compile(r"^(?P<name>.+?)=(?P<spec>(?:video|clip|mkv):.*|audio)$")


def split_mount(text: str) -> tuple[str, str]:
    """``name=spec``; the name may hold ``=`` itself (``cam/realmonitor?channel=1&subtype=0``)."""
    match = MOUNT.match(text)
    if match is None:
        raise SystemExit(f"bad --mount {text!r}: expected NAME=video:...|clip:...|mkv:...|audio")
    return match["name"], match["spec"]


class QueryMounts(GstRtspServer.RTSPMountPoints):
    """Mounts told apart by their query too, as Dahua's ``/cam/realmonitor?channel=1&subtype=0|1`` are."""

    def do_make_path(self, url: GstRtsp.RTSPUrl) -> str:
        return f"{url.abspath}?{url.query}" if url.query else url.abspath


def base_without_slash(client: GstRtspServer.RTSPClient, session: object, message: GstRtsp.RTSPMessage) -> None:
    """Send a query URL's Content-Base as it came, without the '/' the server adds.

    With ``.../realmonitor?channel=1&subtype=0/`` as the base, clients PLAY a path
    the server takes for one stream of the media ("Only aggregate operation allowed").
    """
    result, base = message.get_header(GstRtsp.RTSPHeaderField.CONTENT_BASE, 0)
    if result == GstRtsp.RTSPResult.OK and "?" in base and base.endswith("/"):
        message.remove_header(GstRtsp.RTSPHeaderField.CONTENT_BASE, -1)
        message.add_header(GstRtsp.RTSPHeaderField.CONTENT_BASE, base[:-1])


def watch_client(server: GstRtspServer.RTSPServer, client: GstRtspServer.RTSPClient) -> None:
    client.connect("send-message", base_without_slash)


def audio_launch() -> str:
    return "( audiotestsrc is-live=true ! audioconvert ! audio/x-raw,rate=8000,channels=1 ! rtpL16pay name=pay0 pt=97 )"


# Long: A test server's whole set-up (arguments, mounts, pipelines) in one place.
def main() -> int:  # noqa: PLR0915
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--mount", action="append", default=[], help="name=spec")
    ap.add_argument("--user")
    ap.add_argument("--password")
    ap.add_argument("--auth", choices=["basic", "digest"], default="digest")
    args = ap.parse_args()

    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    mounts = QueryMounts()
    server.set_mount_points(mounts)
    server.connect("client-connected", watch_client)

    role = None
    if args.user:
        auth = GstRtspServer.RTSPAuth()
        token = GstRtspServer.RTSPToken()
        token.set_string("media.factory.role", "viewer")
        if args.auth == "digest":
            auth.set_supported_methods(GstRtsp.RTSPAuthMethod.DIGEST)
            auth.add_digest(args.user, args.password or "", token)
        else:
            auth.set_supported_methods(GstRtsp.RTSPAuthMethod.BASIC)
            auth.add_basic(GstRtspServer.RTSPAuth.make_basic(args.user, args.password or ""), token)
        server.set_auth(auth)
        role = Gst.Structure.from_string(
            "viewer, media.factory.access=(boolean)true, media.factory.construct=(boolean)true"
        )[0]

    feeders: list[ClipFeeder] = []
    for m in args.mount:
        name, spec = split_mount(m)
        factory = GstRtspServer.RTSPMediaFactory()
        if spec.startswith("clip:"):
            path, _, rest = spec.removeprefix("clip:").partition(",")
            opts = dict(kv.split("=", 1) for kv in rest.split(",") if kv)
            feeder = ClipFeeder(path, int(opts.get("fps", 25)), int(opts.get("start", 0)))
            feeders.append(feeder)
            factory.set_launch(feeder.launch())
            factory.connect("media-configure", feeder.on_configure)
        elif spec.startswith("mkv:"):
            factory.set_launch(mkv_launch(spec.removeprefix("mkv:")))
        elif spec == "audio":
            factory.set_launch(audio_launch())
        else:
            factory.set_launch(video_launch(spec.removeprefix("video:")))
        factory.set_shared(True)
        factory.set_protocols(GstRtsp.RTSPLowerTrans.TCP | GstRtsp.RTSPLowerTrans.UDP)
        if role is not None:
            factory.add_role_from_structure(role)
        mounts.add_factory("/" + name, factory)

    if server.attach(None) == 0:
        print(f"cannot listen on 127.0.0.1:{args.port}", file=sys.stderr)
        return 1
    loop = GLib.MainLoop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, sig, loop.quit)
    print(f"READY {args.port}", flush=True)
    loop.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
