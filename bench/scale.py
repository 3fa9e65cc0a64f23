"""Scale: one agent watching 22, 100, 250 and 454 camera-like substreams on this machine; one JSON line per size.

The streams are what a city's cameras send as substreams: 360p, 15 fps,
about 600 kbit/s, GOP 2 s, H.264, made at run time from real street footage
(OpenCV's vtest.avi, Debian's opencv-doc) and looped. By default they are
served by ``bench/rtsp_light.py`` (``--server light``: RTP over the RTSP
connection, 1400-byte packets as cameras send, 250 streams per process, for
about 0.13 cores at 454 streams); ``--server gst`` serves them from
GStreamer's RTSP server instead (``--per-server`` mounts each, a Matroska
file per mount), which took 1.05-1.4 of this machine's 2 cores at 454 and
starved the agent it measured. The servers' CPU is reported apart from the
agent's.

For each size a real Mosquitto, then the real agent (``camwatch run``,
default settings, health only: detection off, image checks on) and a
subscriber to every camera's health. Figures:

- ``agent_ms_per_camera_s``: CPU of the agent and its reader processes per
  camera-second over a steady window (``--seconds``), and ``agent_cores``;
- ``rss_mb_per_camera``: the agent's whole RSS (every process) over cameras;
- ``first_health_s``: from the agent's start until every camera has had a
  health message; ``all_online_s``: until every camera was ``online``;
- ``false_offline``: offline verdicts (health or events) while every server
  streamed: each is false, must be 0;
- ``health_per_s`` at the broker in the steady window;
- ``image_samples_per_s``: pictures the image checks took (from the agent's
  stats), against ``image_samples_due_per_s`` (one per camera every 2 s):
  the difference is what the agent shed for want of CPU;
- ``servers_cores``: the RTSP servers' CPU (the cameras' side);
- baseline in the same run: ``opencv_ms_per_camera_s``, OpenCV's
  ``VideoCapture.read()`` of every frame of the same stream (a sample of
  ``--baseline-cameras`` clients), as a naive agent would.

    .venv/bin/python bench/scale.py [--sizes 22,100,250,454] [--seconds 30] [--hold-minutes 0]

``--hold-minutes M`` keeps the largest size running M more minutes and adds
its RSS every 30 s and the RSS slope (MB per hour, after the first 3 minutes) to that size's line.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agent.sim.mosquitto import Mosquitto  # noqa: E402
from agent.sim.rtsp import RtspServer, free_port  # noqa: E402
from bench.common import cpu_of, overloaded_for, rss_mb_of, tree  # noqa: E402

PREFIX = "benchscale"
FPS, GOP, KBPS = 15, 30, 600
MAIN_FPS = 25  # the 1080p main streams of --main-streams
CAMERA_NICE = -10  # the light servers' priority (needs root; else they run as the agent does)
STATS_S = 5  # the agent's stats period: how many pictures its image checks took


def make_stream_file(
    tmp: Path, minutes: float, size: tuple[int, int] = (640, 360), fps: int = FPS, kbps: int = KBPS
) -> Path:
    """The footage as a camera sends it, repeated to ``minutes`` (Matroska, no re-encoding per loop)."""
    import av

    from agent.sim.clips import read_au_clip, write_au_clip
    from agent.sim.footage import real_frames

    name = f"{size[1]}p"
    aus = read_au_clip(write_au_clip(tmp / f"{name}.au", real_frames(*size), fps=fps, gop=2 * fps, kbps=kbps))
    out_path = tmp / f"{name}.mkv"
    out = av.open(str(out_path), "w")
    stream = out.add_stream("h264", rate=fps)
    stream.width, stream.height = size[0], size[1]
    stream.time_base = Fraction(1, fps)
    n = 0
    while n < minutes * 60 * fps:
        for key, au in aus:
            packet = av.Packet(au)
            packet.pts = packet.dts = n
            packet.time_base = Fraction(1, fps)
            packet.stream = stream
            packet.is_keyframe = key
            out.mux(packet)
            n += 1
    out.close()
    return out_path


class Watcher:
    """Every camera's health and state-change events, as the center would see them."""

    def __init__(self, port: int) -> None:
        self.t0 = time.monotonic()
        self.lock = threading.Lock()
        self.first_health: dict[str, float] = {}
        self.first_online: dict[str, float] = {}
        self.state: dict[str, str] = {}
        self.health_count = 0
        self.offline: list[tuple[str, str, float]] = []  # camera, problems, seconds since the agent started
        self.sampled: list[tuple[float, int]] = []  # (when, pictures handed to image checks, every camera)
        self.stats: list[tuple[float, dict[str, Any]]] = []  # (when, the agent's stats)
        self.overloaded: list[tuple[float, bool]] = []  # (when, whether the agent's status says overloaded)
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2)
        self.client.on_message = self.on_message
        self.client.connect("127.0.0.1", port)
        self.client.subscribe(
            [
                (f"{PREFIX}/+/+/health", 1),
                (f"{PREFIX}/+/+/events", 1),
                (f"{PREFIX}/+/agent/stats", 1),
                (f"{PREFIX}/+/agent/status", 1),
            ]
        )
        self.client.loop_start()

    def on_message(self, client: Any, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        p = json.loads(msg.payload)
        now = time.monotonic()
        cam = p.get("camera", "")
        with self.lock:
            if msg.topic.endswith("/agent/status"):
                if p.get("state") == "online":
                    self.overloaded.append((now, "overloaded" in p.get("problems", [])))
            elif msg.topic.endswith("/agent/stats"):
                self.sampled.append((now, sum(c.get("frames_sampled", 0) for c in p.get("cameras", {}).values())))
                self.stats.append((now, p))
            elif msg.topic.endswith("/health"):
                self.health_count += 1
                self.first_health.setdefault(cam, now)
                self.state[cam] = p["state"]
                if p["state"] == "online":
                    self.first_online.setdefault(cam, now)
                elif p["state"] == "offline":
                    self.offline.append((cam, ",".join(p.get("problems", [])), round(now - self.t0, 1)))
            elif p.get("type") == "state_changed" and p.get("to") == "offline":
                self.offline.append((cam, ",".join(p.get("problems", [])), round(now - self.t0, 1)))

    def stop(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def make_quiet_file(tmp: Path) -> Path:
    """The same street with nobody in it (the footage's median) and sensor noise: a camera where nothing
    happens, as most of a ward's are at any moment (an access-unit clip, 8 s)."""
    import numpy as np

    from agent.sim.clips import write_au_clip
    from agent.sim.footage import empty_view, real_frames, sensor_noise

    still = empty_view(real_frames(640, 360))
    rng = np.random.default_rng(7)
    frames = (sensor_noise(still, rng) for _ in range(8 * FPS))
    return write_au_clip(tmp / "quiet.au", frames, fps=FPS, gop=2 * FPS, kbps=KBPS)


def detection_rates(first: tuple[float, dict[str, Any]], last: tuple[float, dict[str, Any]]) -> dict[str, Any]:
    """What detection did a second, every camera together, between two of the agent's stats."""

    def totals(stats: dict[str, Any]) -> dict[str, int]:
        out: dict[str, int] = {}
        for cam in stats.get("cameras", {}).values():
            for key, value in (cam.get("detection") or {}).items():
                if key != "tracks":
                    out[key] = out.get(key, 0) + int(value)
        return out

    (t0, s0), (t1, s1) = first, last
    a, b = totals(s0), totals(s1)
    rates: dict[str, Any] = {key: round((b[key] - a.get(key, 0)) / (t1 - t0), 1) for key in b}
    rates["inference_ms"] = (s1.get("detector") or {}).get("inference_ms")
    return rates


def run_size(
    n: int,
    args: argparse.Namespace,
    media: Path,
    tmp: Path,
    hold_minutes: float,
    main: Path | None = None,
    quiet: Path | None = None,
) -> dict[str, Any]:
    """One size. With ``main``: each camera is Hikvision-style, main stream ``…/N01`` (``main``) and
    substream ``…/N02`` (``media``; ``quiet`` for all but ``--busy`` of them), and detection is on as by
    default (it reads the derived substream)."""
    servers: list[RtspServer] = []
    light: list[subprocess.Popen[bytes]] = []
    urls: list[str] = []
    per_server = args.per_server or (250 if args.server == "light" else 50)
    per_server = per_server if main is None else max(1, per_server // 2)
    busy = n if quiet is None else max(1, round(n * args.busy))
    # Busy and quiet cameras on servers of their own (a server's routes go by the path's ending).
    groups = [(k, min(busy, k + per_server)) for k in range(0, busy, per_server)]
    groups += [(k, min(n, k + per_server)) for k in range(busy, n, per_server)]
    for k, end in groups:
        if args.server == "light":
            port = free_port()
            sub = media.with_suffix(".au") if k < busy or quiet is None else quiet
            routes = ["--route", f"02={sub}@{FPS}"]
            if main is not None:
                routes += ["--route", f"01={main.with_suffix('.au')}@{MAIN_FPS}"]
            routes += ["--route", f"={media.with_suffix('.au')}@{FPS}"]
            # Ahead of the agent where allowed (root; else nice says so and runs it as the agent runs): real
            # cameras have processors of their own, and a server starved by the agent it feeds (hundreds of
            # streams opening at once) answers handshakes late and is called stalled for the bench's sake.
            light_cmd = [sys.executable, str(ROOT / "bench" / "rtsp_light.py"), "--port", str(port), *routes]
            proc = subprocess.Popen(["nice", "-n", str(CAMERA_NICE), *light_cmd], stdout=subprocess.PIPE)
            assert proc.stdout is not None
            if not proc.stdout.readline().startswith(b"READY"):
                raise RuntimeError("the light RTSP server did not start")
            light.append(proc)
            cams = range(k, end)
            names = [f"c{i}" if main is None else f"Streaming/Channels/{i + 1}01" for i in cams]
            urls += [f"rtsp://127.0.0.1:{port}/{name}" for name in names]
            continue
        cams = range(k, end)
        if main is None:
            mounts = {f"c{i}": f"mkv:{media}" for i in cams}
            names = list(mounts)
        else:
            mounts = {f"Streaming/Channels/{i + 1}01": f"mkv:{main}" for i in cams}
            second = f"mkv:{media}" if k < busy or quiet is None else f"clip:{quiet},fps={FPS}"
            mounts |= {f"Streaming/Channels/{i + 1}02": second for i in cams}
            names = [f"Streaming/Channels/{i + 1}01" for i in cams]
        servers.append(RtspServer(mounts).start(60))
        urls += [servers[-1].url(m) for m in names]
    (tmp / f"broker{n}").mkdir()
    broker = Mosquitto(tmp / f"broker{n}").start()
    state = tmp / f"state{n}"
    lines = [
        'ward = "bench"',
        f'state_dir = "{state}"',
        'log_level = "warning"',
        f'[mqtt]\nport = {broker.port}\ntopic_prefix = "{PREFIX}"\nqueue_max = 100000',
        "[detection]" if main is not None else "[detection]\nenabled = false",
        f"[health]\nimage_checks = {'false' if args.no_image_checks else 'true'}\nstats_s = {STATS_S}",
    ]
    if args.processes:
        lines.append(f"[stream]\nprocesses = {args.processes}")
    lines += [f'[[cameras]]\nid = "c{i}"\nurl = "{url}"' for i, url in enumerate(urls)]
    config = tmp / f"ward{n}.toml"
    config.write_text("\n".join(lines) + "\n")
    watcher = Watcher(broker.port)
    server_pids = [s.proc.pid for s in servers if s.proc is not None] + [p.pid for p in light]
    log = (tmp / f"agent{n}.log").open("wb")
    started = watcher.t0 = time.monotonic()
    agent = subprocess.Popen(
        [sys.executable, "-m", "agent.cli.main", "run", "--config", str(config)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    result: dict[str, Any] = {
        "bench": "scale",
        "cameras": n,
        "streams": "1080p main + 360p substream, detection on" if main is not None else "360p substreams",
        **({"busy": busy} if main is not None else {}),
        "servers": len(servers) + len(light),
        "server": args.server,
        "servers_ahead": args.server == "light" and os.geteuid() == 0,
    }
    try:
        deadline = started + args.settle
        while time.monotonic() < deadline:
            with watcher.lock:
                if len(watcher.first_online) == n:
                    break
            time.sleep(0.2)
        time.sleep(3.0)
        pids = tree(agent.pid)
        m0 = cpu_of([agent.pid])
        a0, s0, t0 = cpu_of(pids), cpu_of(server_pids), time.monotonic()
        with watcher.lock:
            h0 = watcher.health_count
        time.sleep(args.seconds)
        pids = tree(agent.pid)
        m1 = cpu_of([agent.pid])
        a1, s1, t1 = cpu_of(pids), cpu_of(server_pids), time.monotonic()
        with watcher.lock:
            h1 = watcher.health_count
        rss = rss_mb_of(pids)
        samples = [(0.0, rss)]
        hold_end = time.monotonic() + hold_minutes * 60
        while time.monotonic() < hold_end:
            time.sleep(30)
            samples.append(((time.monotonic() - t1) / 3600, rss_mb_of(tree(agent.pid))))
        wall = t1 - t0
        with watcher.lock:
            first_health = max(watcher.first_health.values()) - started if len(watcher.first_health) == n else None
            all_online = max(watcher.first_online.values()) - started if len(watcher.first_online) == n else None
            offline = list(watcher.offline)
            online_now = sum(1 for s in watcher.state.values() if s == "online")
            inside = [(t, k) for t, k in watcher.sampled if t0 <= t <= t1 + STATS_S]
            stats = [(t, p) for t, p in watcher.stats if t0 <= t <= t1 + STATS_S]
            said = list(watcher.overloaded)
        # What an operator sees of the agent's load: how long its status said overloaded, and when first.
        result["overloaded_s"] = round(overloaded_for(said, time.monotonic()), 1)
        result["overloaded_first_s"] = next((round(at - started, 1) for at, on in said if on), None)
        if len(inside) >= 2 and not args.no_image_checks and main is None:
            # Pictures the image checks took, against one per camera every 2 s (the default): what was shed.
            result["image_samples_per_s"] = round((inside[-1][1] - inside[0][1]) / (inside[-1][0] - inside[0][0]), 1)
            result["image_samples_due_per_s"] = round(n / 2.0, 1)
        if main is not None and len(stats) >= 2:
            result["detection_per_s"] = detection_rates(stats[0], stats[-1])
        result.update(
            {
                "agent_ms_per_camera_s": round(1000 * (a1 - a0) / (n * wall), 2),
                "agent_cores": round((a1 - a0) / wall, 3),
                "agent_main_cores": round((m1 - m0) / wall, 3),
                "agent_processes": len(pids),
                "rss_mb": round(rss, 1),
                "rss_mb_per_camera": round(rss / n, 2),
                "first_health_s": None if first_health is None else round(first_health, 1),
                "all_online_s": None if all_online is None else round(all_online, 1),
                "with_health": len(watcher.first_health),
                "ever_online": len(watcher.first_online),
                "online_at_end": online_now,
                "false_offline": len(offline),
                "false_offline_examples": offline[:5],
                "health_per_s": round((h1 - h0) / wall, 1),
                "servers_cores": round((s1 - s0) / wall, 3),
            }
        )
        settled = [(x, y) for x, y in samples if x >= 3 / 60]  # after 3 minutes: buffers and baselines grown
        if len(settled) > 2:
            xs, ys = [x for x, _ in settled], [y for _, y in settled]
            mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
            slope = sum((x - mx) * (y - my) for x, y in settled) / sum((x - mx) ** 2 for x in xs)
            result["hold_minutes"] = hold_minutes
            result["rss_mb_samples"] = [round(y, 1) for _, y in samples]
            result["rss_slope_mb_per_h"] = round(slope, 1)
        if args.baseline_cameras:
            from bench.ingest import run_child

            base = run_child("opencv", urls[0], args.baseline_cameras, min(args.seconds, 15.0))
            result["opencv_ms_per_camera_s"] = round(1000 * base["cpu_s"] / (args.baseline_cameras * base["wall_s"]), 2)
            result["opencv_clients"] = args.baseline_cameras
    finally:
        agent.terminate()
        try:
            agent.wait(20)
        except subprocess.TimeoutExpired:
            agent.kill()
        log.close()
        watcher.stop()
        broker.stop()
        for s in servers:
            s.kill()
        for p in light:
            p.kill()
            p.wait(5)
    text = (tmp / f"agent{n}.log").read_text(errors="replace")
    if args.keep_log:
        Path(args.keep_log).write_text(text)
    tail = text.splitlines()[-5:]
    result["agent_log_tail"] = tail
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="22,100,250,454")
    ap.add_argument("--seconds", type=float, default=30.0, help="steady window per size")
    ap.add_argument("--settle", type=float, default=60.0, help="longest wait for every camera online")
    ap.add_argument(
        "--server",
        choices=("light", "gst"),
        default="light",
        help="light: bench/rtsp_light.py (camera-like, cheap); gst: GStreamer's RTSP server (a pipeline per mount)",
    )
    ap.add_argument("--per-server", type=int, help="streams per server process (default: light 250, gst 50)")
    ap.add_argument("--baseline-cameras", type=int, default=6)
    ap.add_argument("--hold-minutes", type=float, default=0.0)
    ap.add_argument(
        "--main-streams",
        action="store_true",
        help="Hikvision-style cameras: 1080p/25 fps main stream and 360p substream, detection on (default model)",
    )
    ap.add_argument(
        "--busy",
        type=float,
        default=1.0,
        help="with --main-streams: the share of cameras where people walk (the rest: an empty street)",
    )
    ap.add_argument("--keep-log", help="copy the agent's log here")
    ap.add_argument("--processes", type=int, help="reader processes (default: the agent's own choice)")
    ap.add_argument("--no-image-checks", action="store_true", help="liveness only (to see what image checks cost)")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    tmp = Path(tempfile.mkdtemp(prefix="camwatch-scale-"))
    failed = False
    try:
        media = make_stream_file(tmp, minutes=12 + args.hold_minutes)
        main = make_stream_file(tmp, 6, (1920, 1080), MAIN_FPS, 3000) if args.main_streams else None
        quiet = make_quiet_file(tmp) if main is not None and args.busy < 1.0 else None
        for n in sizes:
            hold = args.hold_minutes if n == max(sizes) else 0.0
            line = run_size(n, args, media, tmp, hold, main, quiet)
            failed = failed or line.get("false_offline", 1) > 0 or line.get("ever_online") != n
            print(json.dumps(line), flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
