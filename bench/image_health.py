"""CPU per sample of all image checks together, at 360p, 720p and 1080p input.

Each decoded sample is first scaled to a 320 px wide grayscale copy (as
the agent does: :meth:`agent.stream.frames.Frame.gray`, from the decoder's
luma plane), then judged by ImageHealth (black, frozen, blurred, covered,
moved). Baselines in the same run: the scaling alone, and swscale's ``gray``
through PyAV (what the agent used before). Prints one JSON line, including
the total for a 22-camera ward at one sample per 2 s.

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
from agent.stream.frames import Frame  # noqa: E402

SIZES = {"360p": (640, 360), "720p": (1280, 720), "1080p": (1920, 1080)}


def cpu() -> float:
    return time.perf_counter()  # per call: finer than process_time's clock ticks, on an otherwise idle process


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=300)
    args = ap.parse_args()
    cv2.setNumThreads(1)  # as the agent does
    result: dict[str, object] = {"bench": "image_health", "samples": args.samples, "sample_width": SAMPLE_WIDTH}
    for name, (w, h) in SIZES.items():
        street = Street(width=w, height=h)
        planes = [
            av.VideoFrame.from_ndarray(street.noisy(street.scene(i * 2.0)), format="bgr24")
            .reformat(format="yuv420p")
            .to_ndarray()
            for i in range(20)
        ]

        def fresh(i: int, planes: list[np.ndarray] = planes) -> av.VideoFrame:
            # A new frame object per sample, as the decoder gives: PyAV keeps a scaler per frame object, so
            # reusing frames would time swscale with its set-up already done (0.16 ms at 360p, not 1.0).
            return av.VideoFrame.from_ndarray(planes[i % len(planes)], format="yuv420p")

        health = ImageHealth()
        swscale = scale = total = 0.0
        for i in range(args.samples):
            frame = fresh(i)
            c0 = cpu()
            frame.to_ndarray(format="gray", width=SAMPLE_WIDTH, height=SAMPLE_WIDTH * h // w)
            swscale += cpu() - c0
            frame = fresh(i)
            c0 = cpu()
            Frame(frame, 0.0, None, True).gray(width=SAMPLE_WIDTH)
            scale += cpu() - c0
            frame = fresh(i)
            c0 = cpu()
            health.observe(Frame(frame, 0.0, None, True).gray(width=SAMPLE_WIDTH), i * 2.0)
            total += cpu() - c0
        swscale_ms, scale_ms, total_ms = (x * 1000 / args.samples for x in (swscale, scale, total))
        result[name] = {
            "swscale_gray_ms": round(swscale_ms, 3),
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
