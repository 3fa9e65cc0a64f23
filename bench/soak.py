"""Soak: the agent against 22 cameras for a long time, cameras killed and restarted at random.

The real agent (subprocess, default settings, detection on when the model is
found) reads 22 RTSP streams from 11 local GStreamer servers (2 cameras
each, looping a street clip where a person walks by); every 5-30 s a random
server is killed (SIGKILL, or SIGSTOP for a stall) and brought back 1-10 s
later. Every 10 s the agent's RSS, threads and open fds are sampled from
/proc. One JSON line: first/max/last and the slope of RSS after warm-up
(least squares, MB per hour), threads and fds ranges, kills, tracebacks.

    .venv/bin/python bench/soak.py [--minutes 10] [--cameras 22] [--seed 1] [--samples FILE.csv]
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agent.sim import scenes  # noqa: E402
from agent.sim.clips import write_au_clip  # noqa: E402
from agent.sim.mosquitto import Mosquitto  # noqa: E402
from agent.sim.rtsp import RtspServer  # noqa: E402

SAMPLE_S = 10.0
WARMUP_S = 120.0


def proc_figures(pid: int) -> tuple[float, int, int]:
    """RSS (MB), threads, open fds of a process."""
    rss, threads = 0.0, 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1]) / 1024
        elif line.startswith("Threads:"):
            threads = int(line.split()[1])
    return rss, threads, len(list(Path(f"/proc/{pid}/fd").iterdir()))


def slope_per_hour(points: list[tuple[float, float]]) -> float | None:
    if len(points) < 3:
        return None
    n = len(points)
    mt = sum(t for t, _ in points) / n
    mv = sum(v for _, v in points) / n
    var = sum((t - mt) ** 2 for t, _ in points)
    if var == 0:
        return None
    return sum((t - mt) * (v - mv) for t, v in points) / var * 3600


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--cameras", type=int, default=22)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--samples", type=Path, help="also write every sample (s, RSS MB, threads, fds) to this CSV")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    tmp = Path(tempfile.mkdtemp(prefix="camwatch-soak-"))
    fps = 10
    clip = write_au_clip(
        tmp / "street.au", scenes.WalkThrough(fps=fps, enter_at=2, cross_s=6, length_s=20).frames(), fps=fps, gop=20
    )
    per_server = 2
    servers = [
        RtspServer({f"c{i * per_server + k:02d}": f"clip:{clip},fps={fps}" for k in range(per_server)})
        for i in range((args.cameras + per_server - 1) // per_server)
    ]
    broker = Mosquitto(tmp).start()
    lines = ['ward = "soak"', f'state_dir = "{tmp / "state"}"', 'log_level = "warning"']
    lines += [f'[mqtt]\nport = {broker.port}\ntopic_prefix = "soak"', "[health]\nstats_s = 30"]
    cams = [(mount, server.url(mount)) for server in servers for mount in server.mounts][: args.cameras]
    lines += [f'[[cameras]]\nid = "{mount}"\nurl = "{url}"' for mount, url in cams]
    (tmp / "ward.toml").write_text("\n".join(lines) + "\n")
    for server in servers:
        server.start()
    log_path = tmp / "agent.log"
    log_file = log_path.open("wb")
    agent = subprocess.Popen(
        [sys.executable, "-m", "agent.cli.main", "run", "--config", str(tmp / "ward.toml")],
        cwd=ROOT,
        stdout=log_file,
        stderr=subprocess.STDOUT,
    )
    started = time.monotonic()
    end = started + args.minutes * 60
    samples: list[tuple[float, float, int, int]] = []
    kills = stalls = 0
    down: dict[int, float] = {}  # server index -> when it comes back
    next_fault = started + rng.uniform(5, 30)
    next_sample = started + SAMPLE_S
    try:
        while time.monotonic() < end and agent.poll() is None:
            now = time.monotonic()
            for i, back_at in list(down.items()):
                if now >= back_at:
                    if servers[i].running:  # stalled: let it go on
                        servers[i].resume()
                    else:
                        servers[i].start()
                    del down[i]
            if now >= next_fault:
                i = rng.randrange(len(servers))
                if i not in down:
                    if rng.random() < 0.25:
                        servers[i].pause()
                        stalls += 1
                    else:
                        servers[i].kill()
                        kills += 1
                    down[i] = now + rng.uniform(1, 10)
                next_fault = now + rng.uniform(5, 30)
            if now >= next_sample:
                rss, threads, fds = proc_figures(agent.pid)
                samples.append((now - started, rss, threads, fds))
                if args.samples is not None:
                    with args.samples.open("a") as out:
                        out.write(f"{now - started:.0f},{rss:.1f},{threads},{fds}\n")
                next_sample += SAMPLE_S
            time.sleep(0.2)
        crashed = agent.poll() is not None
    finally:
        agent.terminate()
        try:
            agent.wait(20)
        except subprocess.TimeoutExpired:
            agent.kill()
        log_file.close()
        for server in servers:
            server.resume()
            server.kill()
        broker.stop()
    log_text = log_path.read_text(errors="replace")
    shutil.rmtree(tmp, ignore_errors=True)
    steady = [(t, rss) for t, rss, _, _ in samples if t >= min(WARMUP_S, args.minutes * 30)]
    result = {
        "bench": "soak",
        "minutes": args.minutes,
        "cameras": args.cameras,
        "kills": kills,
        "stalls": stalls,
        "samples": len(samples),
        "crashed": crashed,
        "tracebacks": log_text.count("Traceback"),
        "rss_mb": {
            "first": round(samples[0][1], 1) if samples else None,
            "max": round(max(s[1] for s in samples), 1) if samples else None,
            "last": round(samples[-1][1], 1) if samples else None,
            "slope_mb_per_hour": None if (s := slope_per_hour(steady)) is None else round(s, 2),
            "slope_last_half_mb_per_hour": None
            if (h := slope_per_hour(steady[len(steady) // 2 :])) is None
            else round(h, 2),
        },
        "threads": [min(s[2] for s in samples), max(s[2] for s in samples)] if samples else None,
        "fds": [min(s[3] for s in samples), max(s[3] for s in samples)] if samples else None,
        "target_rss_slope_mb_per_hour": 1.0,
    }
    print(json.dumps(result))
    return 0 if samples and not crashed else 1


if __name__ == "__main__":
    sys.exit(main())
