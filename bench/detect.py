"""Detection: inference cost, latency to the broker, and a whole ward's CPU.

Three parts, one JSON line:

1. ``inference``: median ms of one detector call (resize + ONNX Runtime +
   decode) on a 640x360 street frame, at 1 and 2 intra-op threads.
2. ``latency``: a person walks across a drawn street (clip served by the
   local GStreamer RTSP server, looping). Every frame carries its number as a
   stamp in the top-left corner (masked out for the agent). A bench client
   on the same shared RTSP media decodes every frame and notes when each
   number arrives; a subscriber notes when ``detection_started`` arrives at
   the real Mosquitto. Latency = event arrival - arrival of the frame in which
   the person is first wholly in view (and, also reported, the first frame
   with any of the person in view).
3. ``cpu``: 22 cameras (640x360, 15 fps substreams) at detect_fps 2, about 20 %
   of them busy with people walking, the rest a quiet street with sensor
   noise; image checks on as by default. The CPU of the agent and its
   reader processes (utime+stime from /proc; ``main_process_cores``: the
   agent's own process, where the detector runs) over a window after warm-up, for camwatch as configured,
   against the same-run baselines "no motion gate" (the detector on every
   sampled frame) and "health only" (detection off).

    .venv/bin/python bench/detect.py [--cameras 22] [--seconds 30] [--loops 5]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from agent.config.model import DetectionConfig  # noqa: E402
from agent.detect.detector import OnnxDetector, find_model  # noqa: E402
from agent.sim import scenes  # noqa: E402
from agent.sim.clips import write_au_clip  # noqa: E402
from agent.sim.mosquitto import Mosquitto  # noqa: E402
from agent.sim.rtsp import RtspServer  # noqa: E402
from agent.stream.frames import Frame, FrameSampler, Tap  # noqa: E402
from agent.stream.reader import CameraReader  # noqa: E402
from bench.common import cpu_of, overloaded_for, percentile, rss_mb_of, tree  # noqa: E402

PREFIX = "benchdetect"
STAMP_MASK = [[0.0, 0.0], [0.2, 0.0], [0.2, 0.05], [0.0, 0.05]]  # the frame-number stamp


# -- 1. inference ------------------------------------------------------------------------


MODEL = [DetectionConfig().model]  # the model under test (--model; default: the agent's default)
MAX_CORES: list[float | None] = [None]  # the detector's CPU budget (--max-cores; default: the agent's default)


def bench_inference(runs: int = 60) -> dict[str, float]:
    manifest, model_dir = find_model(MODEL[0])
    frame = scenes.WalkThrough().frame(45)
    out = {}
    for threads in (1, 2):
        det = OnnxDetector(manifest, model_dir, threads=threads, min_score=0.3)
        times = []
        for _ in range(runs):
            t = time.perf_counter()
            det.detect(frame)
            times.append(time.perf_counter() - t)
        out[f"ms_{threads}_thread{'s' if threads > 1 else ''}"] = round(1000 * statistics.median(times), 2)
    return out


# -- the agent as a user runs it ------------------------------------------------------------


def write_config(
    tmp: Path, name: str, port: int, cameras: list[tuple[str, str]], detection: dict[str, Any], masks: bool
) -> Path:
    lines = [
        'ward = "bench"',
        f'state_dir = "{tmp / ("state-" + name)}"',
        'log_level = "warning"',
        f'[mqtt]\nport = {port}\ntopic_prefix = "{PREFIX}"',
        "[health]\nstats_s = 5",
        "[detection]",
        f'model = "{MODEL[0]}"',
    ]
    if MAX_CORES[0] is not None:
        lines.append(f"max_cores = {MAX_CORES[0]}")
    for key, value in detection.items():
        lines.append(f"{key} = {json.dumps(value)}")
    for cam_id, url in cameras:
        lines.append(f'[[cameras]]\nid = "{cam_id}"\nurl = "{url}"')
        if masks:
            lines.append(f"masks = [{json.dumps(STAMP_MASK)}]")
    path = tmp / f"{name}.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


class Subscriber:
    def __init__(self, port: int) -> None:
        self.started: list[tuple[str, float, dict[str, Any]]] = []
        self.online_at: dict[str, float] = {}  # when each camera was first reported online
        self.stats: dict[str, Any] | None = None
        self.overloaded: list[tuple[float, bool]] = []  # (when, whether the agent's status says overloaded)
        self.lock = threading.Lock()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2)
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.subscribe(f"{PREFIX}/bench/#", qos=1)
        self.client.loop_start()

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        at = time.monotonic()
        if "/snapshot/" in msg.topic:
            return
        payload = json.loads(msg.payload)
        with self.lock:
            if msg.topic.endswith("/events") and payload.get("type") == "detection_started":
                self.started.append((payload["camera"], at, payload))
            elif msg.topic.endswith("/agent/stats"):
                self.stats = payload
            elif msg.topic.endswith("/agent/status") and payload.get("state") == "online":
                self.overloaded.append((at, "overloaded" in payload.get("problems", [])))
            elif msg.topic.endswith("/health") and payload.get("state") == "online":
                self.online_at.setdefault(payload["camera"], at)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def start_agent(config: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "agent.cli.main", "run", "--config", str(config)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def stop_agent(agent: subprocess.Popen[bytes]) -> None:
    agent.terminate()
    try:
        agent.wait(15)
    except subprocess.TimeoutExpired:
        agent.kill()
        agent.wait(5)


# -- 2. latency -------------------------------------------------------------------------------


class StampWatcher:
    """Decodes every frame of one camera (the agent's own reader) and notes when each frame number arrives."""

    def __init__(self, url: str) -> None:
        self.arrivals: dict[int, list[float]] = {}
        tap = Tap(FrameSampler(interval_s=0.0), self._on_frame)  # interval 0: every frame
        self.reader = CameraReader("stamp", url, taps=[tap])

    def _on_frame(self, frame: Frame) -> None:
        at = time.monotonic()
        self.arrivals.setdefault(scenes.read_stamp(frame.gray()), []).append(at)


def bench_latency(tmp: Path, broker: Mosquitto, cameras: int, loops: int) -> dict[str, Any]:
    fps = 10
    walk = scenes.WalkThrough(fps=fps, enter_at=2.0, cross_s=6.0, length_s=14.0, stamped=True)
    clip = write_au_clip(tmp / "walk-stamped.au", walk.frames(), fps=fps, gop=2 * fps)
    fully_from, _ = walk.fully_in_view_s
    whole_frame = int(np.ceil(fully_from * fps))
    first_frame = int(np.ceil(walk.enter_at * fps)) + 1  # the first frame with the person's edge in view
    mounts = {f"w{i}": f"clip:{clip},fps={fps}" for i in range(cameras)}
    sub = Subscriber(broker.port)
    with RtspServer(mounts) as server:
        watchers = [StampWatcher(server.url(m)) for m in mounts]
        for w in watchers:
            w.reader.start()
        time.sleep(1.0)
        config = write_config(tmp, "latency", broker.port, [(m, server.url(m)) for m in mounts], {}, masks=True)
        agent = start_agent(config)
        try:
            time.sleep(walk.length_s * (loops + 1) + 2)
        finally:
            stopped_at = time.monotonic()
            stop_agent(agent)
            for w in watchers:
                w.reader.stop()
    sub.close()
    from_whole: list[float] = []
    from_first: list[float] = []
    unmatched = 0
    passes = 0
    for i, w in enumerate(watchers):
        # Passes that began before the agent was watching (it starts after the clip) do not count.
        ready = sub.online_at.get(f"w{i}", float("inf"))
        firsts = [t for t in w.arrivals.get(first_frame, []) if ready < t < stopped_at - 5.0]
        passes += len(firsts)
        events = [at for camera, at, _ in sub.started if camera == f"w{i}"]
        for first in firsts:
            wholes = [t for t in w.arrivals.get(whole_frame, []) if first <= t < first + 3.0]
            later = [at for at in events if at > first]
            if not wholes or not later or min(later) - first > walk.length_s / 2:
                unmatched += 1  # no event for this pass
                continue
            from_first.append(min(later) - first)
            from_whole.append(min(later) - wholes[0])
    return {
        "passes": passes,
        "events": len(sub.started),
        "passes_without_event": unmatched,
        "from_whole_in_view_p50_s": round(statistics.median(from_whole), 3) if from_whole else None,
        "from_whole_in_view_p95_s": round(percentile(from_whole, 0.95), 3) if from_whole else None,
        "from_first_in_view_p50_s": round(statistics.median(from_first), 3) if from_first else None,
        "from_first_in_view_p95_s": round(percentile(from_first, 0.95), 3) if from_first else None,
    }


# -- 3. a ward's CPU ----------------------------------------------------------------------------


def bench_cpu(tmp: Path, broker: Mosquitto, cameras: int, seconds: float) -> dict[str, Any]:
    fps = 15
    busy = max(1, round(cameras * 0.2))
    walkers = scenes.WalkThrough(fps=fps, enter_at=0.5, cross_s=6.0, length_s=8.0)
    walk_clip = write_au_clip(tmp / "busy.au", walkers.frames(), fps=fps, gop=2 * fps)
    quiet = scenes.SensorNoise(np.random.default_rng(5))
    street = scenes.street_background(640, 360, seed=3)
    quiet_clip = write_au_clip(tmp / "quiet.au", (quiet.noisy(street) for _ in range(8 * fps)), fps=fps, gop=2 * fps)
    mounts = {f"c{i:02d}": f"clip:{walk_clip if i < busy else quiet_clip},fps={fps}" for i in range(cameras)}
    variants: dict[str, dict[str, Any]] = {
        "camwatch": {"enabled": True},
        "no_motion_gate": {"enabled": True, "motion_min_area": 0.0},
        "health_only": {"enabled": False},
    }
    out: dict[str, Any] = {"cameras": cameras, "busy": busy, "stream": f"640x360@{fps}", "detect_fps": 2}
    with RtspServer(mounts) as server:
        cams = [(m, server.url(m)) for m in mounts]
        for name, detection in variants.items():
            sub = Subscriber(broker.port)
            agent = start_agent(write_config(tmp, name, broker.port, cams, detection, masks=False))
            started = time.monotonic()
            try:
                time.sleep(12.0)  # connect, learn baselines, settle
                with sub.lock:
                    first = sub.stats
                pids = tree(agent.pid)  # the agent and its reader processes
                cpu0, main0, t0 = cpu_of(pids), cpu_of([agent.pid]), time.monotonic()
                time.sleep(seconds)
                cpu1, main1, t1 = cpu_of(pids), cpu_of([agent.pid]), time.monotonic()
                rss = rss_mb_of(pids)
                time.sleep(6.0)  # one more stats message
                with sub.lock:
                    stats = sub.stats  # taken while it runs: the agent's last word as it stops is not its steady state
                    said = list(sub.overloaded)
                ended = time.monotonic()
            finally:
                stop_agent(agent)
                sub.close()
            result: dict[str, Any] = {
                "cores": round((cpu1 - cpu0) / (t1 - t0), 3),
                "main_process_cores": round((main1 - main0) / (t1 - t0), 3),
                "rss_mb": round(rss, 1),
            }
            if stats is not None and detection.get("enabled"):
                per_cam = [c.get("detection", {}) for c in stats["cameras"].values()]
                for key in ("frames", "gated", "inferences", "dropped", "events"):
                    result[key] = sum(int(c.get(key, 0)) for c in per_cam)
                result["inference_ms"] = stats["detector"]["inference_ms"]
            if stats is not None:
                result["states"] = dict(Counter(c["state"] for c in stats["cameras"].values()))  # all 22 up?
            if stats is not None and first is not None:  # frames the detector lost once settled, not at the start
                result["dropped_after_warm_up"] = dropped_frames(stats) - dropped_frames(first)
            # What an operator sees: how long the ward said "overloaded", and when it first said so (s after start).
            result["overloaded_s"] = round(overloaded_for(said, ended), 1)
            result["overloaded_first_s"] = next((round(at - started, 1) for at, on in said if on), None)
            out[name] = result
    return out


def dropped_frames(stats: dict[str, Any]) -> int:
    """Detection frames dropped so far, in the reader processes and at the detector, over every camera."""
    return sum(
        int(c.get("detection_frames_dropped", 0)) + int(c.get("detection", {}).get("dropped", 0))
        for c in stats["cameras"].values()
    )


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cameras", type=int, default=22)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--loops", type=int, default=5, help="walk-throughs per camera in the latency part")
    ap.add_argument("--latency-cameras", type=int, default=4)
    ap.add_argument("--skip", choices=["latency", "cpu"], action="append", default=[])
    ap.add_argument("--model", default=MODEL[0], help="a manifest under models/ (yolox_nano, fastestdet)")
    ap.add_argument("--max-cores", type=float, help="[detection] max_cores for the agent (0: no limit)")
    args = ap.parse_args()
    MODEL[0] = args.model
    MAX_CORES[0] = args.max_cores

    tmp = Path(tempfile.mkdtemp(prefix="camwatch-bench-"))
    broker = Mosquitto(tmp).start()
    result: dict[str, Any] = {
        "bench": "detect",
        "model": args.model,
        "max_cores": DetectionConfig().max_cores if args.max_cores is None else args.max_cores,
    }
    try:
        result["inference"] = bench_inference()
        if "latency" not in args.skip:
            result["latency"] = bench_latency(tmp, broker, args.latency_cameras, args.loops)
        if "cpu" not in args.skip:
            result["cpu"] = bench_cpu(tmp, broker, args.cameras, args.seconds)
    finally:
        broker.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    result["targets"] = {"latency_p95_s": 1.5, "cpu_cores_22_cameras": 1.0}
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
