"""Image verdicts on real footage: recall and time to verdict per fault, false problems per hour on controls.

The footage is OpenCV's vtest.avi (Debian's opencv-doc: a fixed camera, people walking). Each fault is
applied to it after a healthy stretch, at several start points in the footage; the controls are the
footage itself and a quiet view after a busy one. Every clip is encoded as a camera encodes (libx264,
constant bitrate, GOP 2 s) and judged as the agent judges (one keyframe per 2 s, default thresholds).
The baseline in the same run is the old rule for frozen (sample-to-sample change under the camera's
learned quiet floor), judged on the same samples. Prints one JSON line.

    .venv/bin/python bench/verdicts.py [--trials 4] [--control-minutes 10]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Iterable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agent.health.image import RobustBaseline, picture_change  # noqa: E402
from agent.health.image_health import ImageHealth, ImageThresholds  # noqa: E402
from agent.sim import footage  # noqa: E402
from agent.sim.footage import Frame  # noqa: E402
from bench.common import percentile  # noqa: E402

FPS, GOP = 10, 20
SAMPLE_S = GOP / FPS
HEALTHY_S, FAULT_S = 60, 60
T = ImageThresholds()
AFTER = {"black": T.black_after_s, "frozen": T.frozen_after_s, "covered": T.covered_after_s, "moved": T.moved_after_s}


def samples(clip: Iterable[Frame]) -> list[np.ndarray]:
    return footage.encode_decode_keyframes(clip, fps=FPS, gop=GOP, kbps=600)


def judge(keyframes: list[np.ndarray]) -> dict[str, float]:
    health = ImageHealth()
    first: dict[str, float] = {}
    for i, k in enumerate(keyframes):
        health.observe(k, i * SAMPLE_S)
        for p in health.problems():
            first.setdefault(p, i * SAMPLE_S)
    return first


def old_frozen(keyframes: list[np.ndarray]) -> float | None:
    """The rule before: change <= max(0.05, min(1.0, 0.35 x the learned quiet floor)) for frozen_after_s."""
    floor = RobustBaseline(quantile=0.1)
    since = None
    for i in range(1, len(keyframes)):
        change = picture_change(keyframes[i - 1], keyframes[i])
        limit = 0.05 if floor.value is None else max(0.05, min(1.0, 0.35 * floor.value))
        now = i * SAMPLE_S
        if change <= limit:
            since = now if since is None else since
            if now - since >= T.frozen_after_s:
                return now
        else:
            since = None
            floor.update(change)
    return None


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=4, help="start points in the footage per fault")
    ap.add_argument("--control-minutes", type=float, default=10.0)
    args = ap.parse_args()
    missing = footage.footage_missing()
    if missing:
        print(missing, file=sys.stderr)
        return 2
    frames = footage.real_frames(480, 360)
    rng = np.random.default_rng(5)
    started = time.process_time()
    faults: dict[str, list[float | None]] = {f: [] for f in ("frozen", "frozen_from_start", "covered", "moved")}
    wrong_names: dict[str, int] = {f: 0 for f in faults}
    old_frozen_at: list[float | None] = []
    for trial in range(args.trials):
        offset = trial * len(frames) // args.trials
        busy = list(footage.looped(frames[offset:] + frames[:offset], HEALTHY_S * FPS))
        variants = {
            "frozen": busy + [busy[-1]] * (FAULT_S * FPS),
            "frozen_from_start": [frames[offset]] * ((HEALTHY_S + FAULT_S) * FPS),
            "covered": busy + [footage.covered(f) for f in footage.looped(frames[offset:], FAULT_S * FPS)],
            "moved": busy
            + [
                footage.turned(f, 0.3 + 0.05 * (trial % 2), (-1) ** trial * 4.0)
                for f in footage.looped(frames[offset:], FAULT_S * FPS)
            ],
        }
        for name, clip in variants.items():
            keys = samples(clip)
            got = judge(keys)
            fault_at = 0.0 if name == "frozen_from_start" else float(HEALTHY_S)
            problem = "frozen" if name.startswith("frozen") else name
            at = got.get(problem)
            faults[name].append(None if at is None else at - fault_at)
            wrong_names[name] += sum(1 for p in got if p != problem and got[p] >= fault_at)
            if name == "frozen_from_start":
                old = old_frozen(keys)
                old_frozen_at.append(old)
    # Controls: the footage itself, and a quiet view after a busy minute.
    minutes = args.control_minutes
    control_false: dict[str, int] = {}
    live = samples(footage.looped(frames, int(minutes * 60 * FPS)))
    control_false["footage"] = len(judge(live))
    empty = footage.empty_view(frames)
    quiet_clip = [*footage.looped(frames, HEALTHY_S * FPS)]
    quiet_clip += [footage.sensor_noise(empty, rng) for _ in range(int((minutes * 60 - HEALTHY_S) * FPS))]
    quiet = samples(quiet_clip)
    control_false["quiet_after_busy"] = len(judge(quiet))
    old_quiet = old_frozen(quiet)

    def summary(name: str) -> dict[str, object]:
        times = [t for t in faults[name] if t is not None]
        problem = "frozen" if name.startswith("frozen") else name
        return {
            "recall": len(times) / len(faults[name]),
            "p50_s": round(statistics.median(times), 1) if times else None,
            "max_s": round(max(times), 1) if times else None,
            "target_s": AFTER[problem] + 5,
            "other_problems_raised": wrong_names[name],
        }

    old_found = [t for t in old_frozen_at if t is not None]
    print(
        json.dumps(
            {
                "bench": "verdicts",
                "footage": str(footage.VTEST),
                "trials": args.trials,
                "faults": {name: summary(name) for name in faults},
                "controls_minutes": minutes,
                "false_problems_per_hour": {k: round(v * 60 / minutes, 1) for k, v in control_false.items()},
                "baseline_old_frozen_rule": {
                    "frozen_from_start_recall": len(old_found) / len(old_frozen_at),
                    "frozen_from_start_p95_s": round(percentile(old_found, 0.95), 1) if old_found else None,
                    "quiet_after_busy_false_frozen_at_s": old_quiet,
                },
                "cpu_s": round(time.process_time() - started, 1),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
