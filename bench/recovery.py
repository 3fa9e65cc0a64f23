"""Time from a dead camera's RTSP server coming back to the agent's ``online`` health at the broker.

Runs the real agent (subprocess, default stream and health settings: backoff
1 -> 30 s, online_after_s 2) against a real Mosquitto and one local GStreamer
RTSP server per camera. For each outage length: all servers up and every
camera online, kill them all, wait the outage out, start them again, and
time each camera's first ``online`` health after the restart (``to_online``:
from the server's port listening; ``online_after_packets_flow``: from its
packets flowing again, i.e. the health's ``since``). Also reported:
how far the health's ``since`` (when packets flowed again, the time the
center ends the outage at) lies after the server's start, and the TCP probes
the agent made per dead camera per minute (its ``agent/stats``). The
baseline in the same run is the server's own time to a first packet for a
fresh client (``camwatch probe``'s figure). Prints one JSON line.

    .venv/bin/python bench/recovery.py [--cameras 3] [--outages 5,30,120]
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
from datetime import datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agent.sim.mosquitto import Mosquitto  # noqa: E402
from agent.sim.rtsp import RtspServer  # noqa: E402
from agent.stream.source import open_stream  # noqa: E402
from bench.common import percentile  # noqa: E402

PREFIX = "benchrecovery"


def wall(ts: str) -> float:
    return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()


def first_packet_s(server: RtspServer) -> float:
    """Baseline: a fresh client's time from the server's port listening to its first packet."""
    server.start()
    started = time.monotonic()
    deadline = started + 20
    while time.monotonic() < deadline:
        try:
            stream = open_stream(server.url("live"), "tcp", 5.0, 2.0)
        except Exception:
            time.sleep(0.05)
            continue
        try:
            next(stream.container.demux(stream.video))
            return time.monotonic() - started
        finally:
            stream.close()
    raise RuntimeError("the RTSP server gave no packet in 20 s")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cameras", type=int, default=3)
    ap.add_argument("--outages", default="5,30,120", help="outage lengths in seconds, comma-separated")
    ap.add_argument("--online-after", type=float, default=2.0, help="[health] online_after_s (the default: 2)")
    args = ap.parse_args()
    outages = [float(x) for x in args.outages.split(",") if x]

    tmp = Path(tempfile.mkdtemp(prefix="camwatch-bench-"))
    broker = Mosquitto(tmp).start()
    port = broker.port
    servers = [RtspServer({"live": "video:640x360@25,gop=50"}) for _ in range(args.cameras)]
    baseline = []
    for _ in range(3):
        baseline.append(first_packet_s(servers[0]))
        servers[0].kill()
    lines = [
        'ward = "bench"',
        f'state_dir = "{tmp / "state"}"',
        f'[mqtt]\nport = {port}\ntopic_prefix = "{PREFIX}"',
        f"[health]\nstats_s = 5\nimage_checks = false\nonline_after_s = {args.online_after}",
        "[detection]\nenabled = false",
    ]
    for i, s in enumerate(servers):
        lines.append(f'[[cameras]]\nid = "c{i}"\nurl = "{s.url("live")}"')
    (tmp / "ward.toml").write_text("\n".join(lines) + "\n")

    health: dict[str, tuple[str, float, float]] = {}  # camera -> (state, since (wall), received (wall))
    probes: dict[str, int] = {}
    lock = threading.Lock()

    def on_message(client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        p: dict[str, Any] = json.loads(msg.payload)
        with lock:
            if p.get("schema") == "camwatch.health/1":
                health[p["camera"]] = (p["state"], wall(p["since"]), time.time())
            elif p.get("schema") == "camwatch.stats/1":
                for cam, figures in p["cameras"].items():
                    probes[cam] = int(figures.get("probes", 0))

    time.sleep(0.3)
    sub = mqtt.Client(CallbackAPIVersion.VERSION2)
    sub.on_message = on_message
    sub.connect("127.0.0.1", port)
    sub.subscribe([(f"{PREFIX}/bench/+/health", 1), (f"{PREFIX}/bench/agent/stats", 0)])
    sub.loop_start()
    for s in servers:
        s.start()
    agent = subprocess.Popen(
        [sys.executable, "-m", "agent.cli.main", "run", "--config", str(tmp / "ward.toml")],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    cams = [f"c{i}" for i in range(args.cameras)]

    def wait_all(state: str, after: float, timeout: float) -> dict[str, tuple[float, float]]:
        """Per camera, (since, received) of its first health in ``state`` received after ``after`` (wall)."""
        got: dict[str, tuple[float, float]] = {}
        deadline = time.monotonic() + timeout
        while len(got) < len(cams) and time.monotonic() < deadline:
            with lock:
                for cam in cams:
                    st, since, received = health.get(cam, ("", 0.0, 0.0))
                    if cam not in got and st == state and received >= after:
                        got[cam] = (since, received)
            time.sleep(0.01)
        return got

    results: dict[str, Any] = {}
    missed = 0
    try:
        wait_all("online", 0.0, 60)
        for outage in outages:
            time.sleep(1.0)
            killed = time.time()
            for s in servers:
                s.kill()
            wait_all("offline", killed, 20)
            with lock:
                probes_before = dict(probes)
            probe_from = time.monotonic()
            time.sleep(max(0.0, outage - (time.time() - killed)))
            with lock:
                probes_after = dict(probes)
            dead_min = (time.monotonic() - probe_from) / 60
            first = time.time()
            back: dict[str, float] = {}
            for cam, s in zip(cams, servers, strict=True):
                s.start()
                back[cam] = time.time()  # its port listens from now on
            online = wait_all("online", first, 60)
            missed += len(cams) - len(online)
            to_online = [received - back[cam] for cam, (_, received) in online.items()]
            since_lag = [since - back[cam] for cam, (since, _) in online.items()]
            after_flow = [received - since for since, received in online.values()]
            per_min = [(probes_after.get(c, 0) - probes_before.get(c, 0)) / dead_min for c in cams] if dead_min else []
            results[f"{outage:g}s"] = {
                "to_online_p50_s": round(statistics.median(to_online), 2) if to_online else None,
                "to_online_p95_s": round(percentile(to_online, 0.95), 2) if to_online else None,
                "since_after_server_start_p50_s": round(statistics.median(since_lag), 2) if since_lag else None,
                "online_after_packets_flow_p95_s": round(percentile(after_flow, 0.95), 2) if after_flow else None,
                "probes_per_dead_camera_per_min": round(statistics.median(per_min), 1) if per_min else None,
            }
    finally:
        agent.terminate()
        agent.wait(15)
        for s in servers:
            s.kill()
        sub.loop_stop()
        broker.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    print(
        json.dumps(
            {
                "bench": "recovery",
                "cameras": args.cameras,
                "online_after_s": args.online_after,
                "baseline_first_packet_s": round(statistics.median(baseline), 2),
                "outages": results,
                "missed": missed,
                "target_to_online_s": 3.0,
            }
        )
    )
    return 0 if not missed else 1


if __name__ == "__main__":
    sys.exit(main())
