"""CPU per camera: camwatch's reader vs OpenCV full decode, on live local RTSP streams.

For each resolution one local GStreamer RTSP server streams H.264 (25 fps,
GOP 2 s, SMPTE bars with a running clock at a camera-like target bitrate;
the measured bitrate is reported); N clients read it in a
child process per mode, and the child's own CPU time is measured over a
steady window:

- camwatch: packet liveness + one decoded keyframe per GOP (converted to BGR);
- opencv:   cv2.VideoCapture(CAP_FFMPEG) reading and decoding every frame.

Prints one JSON line: CPU ms per camera-second, cameras per core for both,
their ratio, and camwatch's RSS per camera.

    .venv/bin/python bench/ingest.py [--cameras 4] [--seconds 20] [--resolutions 1080p,360p]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RESOLUTIONS = {"1080p": (1920, 1080, 4000), "720p": (1280, 720, 2000), "360p": (640, 360, 800)}
WARMUP_S = 4.0


def cpu_s() -> float:
    u = resource.getrusage(resource.RUSAGE_SELF)
    return u.ru_utime + u.ru_stime


def rss_mb() -> float:
    with open("/proc/self/statm", encoding="ascii") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def child_camwatch(url: str, n: int, seconds: float) -> dict[str, float]:
    import av  # noqa: F401 - load the libraries before the RSS baseline

    from agent.stream.frames import Frame, FrameSampler, Tap
    from agent.stream.reader import CameraReader

    base_rss = rss_mb()
    sampled = [0]

    def sink(frame: Frame) -> None:
        frame.bgr()
        sampled[0] += 1

    readers = [CameraReader(f"c{i}", url, taps=[Tap(FrameSampler(interval_s=2.0), sink)]) for i in range(n)]
    for r in readers:
        r.start()
    time.sleep(WARMUP_S)
    packets0 = sum(r.snapshot().packets for r in readers)
    bytes0 = sum(r.snapshot().bytes for r in readers)
    c0, t0, s0 = cpu_s(), time.monotonic(), sampled[0]
    time.sleep(seconds)
    c1, t1 = cpu_s(), time.monotonic()
    packets = sum(r.snapshot().packets for r in readers) - packets0
    kbps = (sum(r.snapshot().bytes for r in readers) - bytes0) * 8 / 1000 / (n * (t1 - t0))
    frames = sampled[0] - s0
    rss = rss_mb()
    for r in readers:
        r.stop()
    for r in readers:
        r.join(5)
    return {
        "cpu_s": c1 - c0,
        "wall_s": t1 - t0,
        "packets": packets,
        "frames": frames,
        "kbps": kbps,
        "rss_per_camera_mb": (rss - base_rss) / n,
    }


def child_opencv(url: str, n: int, seconds: float) -> dict[str, float]:
    os.environ["OPENCV_FFMPEG_CAPTURE_OPTIONS"] = "rtsp_transport;tcp"
    import cv2

    counts = [0] * n
    stop = threading.Event()

    def read(i: int) -> None:
        cap = cv2.VideoCapture(url, cv2.CAP_FFMPEG)
        try:
            while not stop.is_set():
                ok, _ = cap.read()
                if not ok:
                    time.sleep(0.1)
                    continue
                counts[i] += 1
        finally:
            cap.release()

    threads = [threading.Thread(target=read, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    time.sleep(WARMUP_S)
    f0, c0, t0 = sum(counts), cpu_s(), time.monotonic()
    time.sleep(seconds)
    c1, t1 = cpu_s(), time.monotonic()
    frames = sum(counts) - f0
    stop.set()
    for t in threads:
        t.join(5)
    return {"cpu_s": c1 - c0, "wall_s": t1 - t0, "frames": frames}


def run_child(mode: str, url: str, n: int, seconds: float) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", mode, "--url", url, "--cameras", str(n), "--seconds", str(seconds)],
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 60,
    )
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cameras", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--resolutions", default="1080p,360p")
    ap.add_argument(
        "--pattern", default="smpte", help="videotestsrc pattern (zone-plate is busier but slow to generate)"
    )
    ap.add_argument("--child")
    ap.add_argument("--url")
    args = ap.parse_args()
    if args.child:
        fn = child_camwatch if args.child == "camwatch" else child_opencv
        print(json.dumps(fn(args.url, args.cameras, args.seconds)))
        return 0

    from agent.sim.rtsp import RtspServer

    result: dict[str, object] = {
        "bench": "ingest",
        "cameras": args.cameras,
        "seconds": args.seconds,
        "fps": 25,
        "gop_s": 2,
        "pattern": args.pattern,
    }
    for res in args.resolutions.split(","):
        w, h, kbps = RESOLUTIONS[res]
        with RtspServer({"cam": f"video:{w}x{h}@25,gop=50,pattern={args.pattern},bitrate={kbps}"}) as server:
            url = server.url("cam")
            cw = run_child("camwatch", url, args.cameras, args.seconds)
            cv = run_child("opencv", url, args.cameras, args.seconds)
        cw_ms = cw["cpu_s"] * 1000 / (args.cameras * cw["wall_s"])
        cv_ms = cv["cpu_s"] * 1000 / (args.cameras * cv["wall_s"])
        result[res] = {
            "camwatch_cpu_ms_per_cam_s": round(cw_ms, 2),
            "opencv_cpu_ms_per_cam_s": round(cv_ms, 2),
            "camwatch_cams_per_core": round(1000 / cw_ms, 1),
            "opencv_cams_per_core": round(1000 / cv_ms, 1),
            "ratio": round(cv_ms / cw_ms, 2),
            "stream_kbps": round(cw["kbps"], 1),
            "camwatch_packets_per_cam_s": round(cw["packets"] / (args.cameras * cw["wall_s"]), 1),
            "camwatch_frames_sampled_per_cam_s": round(cw["frames"] / (args.cameras * cw["wall_s"]), 2),
            "opencv_frames_per_cam_s": round(cv["frames"] / (args.cameras * cv["wall_s"]), 1),
            "camwatch_rss_per_camera_mb": round(cw["rss_per_camera_mb"], 1),
        }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
