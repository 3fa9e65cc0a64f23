"""Time from killing a camera's RTSP server to the retained ``offline`` health at the broker.

Runs the real agent (subprocess, default health settings: offline_after_s 5)
against a real Mosquitto and one local GStreamer RTSP server per camera.
Each round: all servers up, wait until every camera is online, kill them
all, and time each camera's first offline health seen by a subscriber.
Prints one JSON line with p50/p95/max over all trials.

    .venv/bin/python bench/offline.py [--cameras 5] [--rounds 4]
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
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agent.sim.mosquitto import Mosquitto  # noqa: E402
from agent.sim.rtsp import RtspServer  # noqa: E402
from bench.common import percentile  # noqa: E402

PREFIX = "benchoffline"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cameras", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--offline-after", type=float, default=5.0)
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="camwatch-bench-"))
    broker = Mosquitto(tmp).start()
    port = broker.port
    servers = [RtspServer({"live": "video:640x360@25,gop=50"}) for _ in range(args.cameras)]
    lines = [
        'ward = "bench"',
        f'state_dir = "{tmp / "state"}"',
        f'[mqtt]\nport = {port}\ntopic_prefix = "{PREFIX}"',
        f"[health]\noffline_after_s = {args.offline_after}",
    ]
    for i, s in enumerate(servers):
        lines.append(f'[[cameras]]\nid = "c{i}"\nurl = "{s.url("live")}"')
    (tmp / "ward.toml").write_text("\n".join(lines) + "\n")

    latest: dict[str, tuple[str, float]] = {}
    lock = threading.Lock()

    def on_message(client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        p = json.loads(msg.payload)
        with lock:
            latest[p["camera"]] = (p["state"], time.monotonic())

    time.sleep(0.3)
    sub = mqtt.Client(CallbackAPIVersion.VERSION2)
    sub.on_message = on_message
    sub.connect("127.0.0.1", port)
    sub.subscribe(f"{PREFIX}/bench/+/health", qos=1)
    sub.loop_start()
    agent = subprocess.Popen(
        [sys.executable, "-m", "agent.cli.main", "run", "--config", str(tmp / "ward.toml")],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    trials: list[float] = []
    missed = 0
    try:
        for _ in range(args.rounds):
            for s in servers:
                s.start()
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                with lock:
                    if all(latest.get(f"c{i}", ("", 0))[0] == "online" for i in range(args.cameras)):
                        break
                time.sleep(0.05)
            time.sleep(1.0)
            killed_at = {}
            for i, s in enumerate(servers):
                s.kill()
                killed_at[f"c{i}"] = time.monotonic()
            deadline = time.monotonic() + args.offline_after + 15
            pending = set(killed_at)
            while pending and time.monotonic() < deadline:
                with lock:
                    for cam in list(pending):
                        state, at = latest.get(cam, ("", 0.0))
                        if state == "offline" and at >= killed_at[cam]:
                            trials.append(at - killed_at[cam])
                            pending.discard(cam)
                time.sleep(0.01)
            missed += len(pending)
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
                "bench": "offline",
                "offline_after_s": args.offline_after,
                "trials": len(trials),
                "missed": missed,
                "p50_s": round(statistics.median(trials), 3) if trials else None,
                "p95_s": round(percentile(trials, 0.95), 3) if trials else None,
                "max_s": round(max(trials), 3) if trials else None,
                "target_p95_s": args.offline_after + 1,
            }
        )
    )
    return 0 if trials and not missed else 1


if __name__ == "__main__":
    sys.exit(main())
