"""CPU per sample of all image checks together, at 360p, 720p and 1080p input.

Each decoded sample is first scaled to a 320 px wide grayscale copy (as
the agent does, with swscale through PyAV), then judged by ImageHealth
(black, frozen, blurred, covered, moved). Baseline in the same run: the
scaling alone. Prints one JSON line, including the total for a 22-camera
ward at one sample per 2 s.

    .venv/bin/python bench/image_health.py [--samples 300]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import av
import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agent.health.image_health import ImageHealth  # noqa: E402
from agent.health.image_watch import SAMPLE_WIDTH  # noqa: E402
from agent.sim.scenes import Street  # noqa: E402

SIZES = {"360p": (640, 360), "720p": (1280, 720), "1080p": (1920, 1080)}


def cpu() -> float:
    return time.process_time()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=300)
    args = ap.parse_args()
    cv2.setNumThreads(1)  # as the agent does
    result: dict[str, object] = {"bench": "image_health", "samples": args.samples, "sample_width": SAMPLE_WIDTH}
    for name, (w, h) in SIZES.items():
        street = Street(width=w, height=h)
        frames = [
            av.VideoFrame.from_ndarray(street.noisy(street.scene(i * 2.0)), format="bgr24").reformat(format="yuv420p")
            for i in range(20)
        ]
        health = ImageHealth()
        c0 = cpu()
        for i in range(args.samples):
            frames[i % len(frames)].to_ndarray(format="gray", width=SAMPLE_WIDTH, height=SAMPLE_WIDTH * h // w)
        scale_ms = (cpu() - c0) * 1000 / args.samples
        c0 = cpu()
        for i in range(args.samples):
            gray = frames[i % len(frames)].to_ndarray(format="gray", width=SAMPLE_WIDTH, height=SAMPLE_WIDTH * h // w)
            health.observe(np.asarray(gray, dtype=np.uint8), i * 2.0)
        total_ms = (cpu() - c0) * 1000 / args.samples
        result[name] = {
            "scale_ms": round(scale_ms, 3),
            "checks_ms": round(total_ms - scale_ms, 3),
            "total_ms_per_sample": round(total_ms, 3),
            "ward_22_cameras_core_percent": round(22 * total_ms / 2.0 / 1000 * 100, 2),
            "problems_on_healthy_scene": list(health.problems()),
        }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
