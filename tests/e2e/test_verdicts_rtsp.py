"""Image verdicts on real footage through the whole path: the real RTSP server, the agent, Mosquitto.

Cameras play OpenCV's vtest.avi (a real street-like view; Debian's opencv-doc), encoded as a camera
encodes (GOP 2 s), with the agent's default image checks and debounces (one keyframe every 2 s; frozen and
moved 10 s, covered 5 s): a camera stuck from the start, one covered with its edges still live, one turned
(view shifted, tilted), our own street turned, and controls (the footage itself, a quiet street after a busy
one) that must stay silent the whole time. The encoder-level tests in test_verdicts_footage.py hold the
controls for 3 minutes; this run holds them for the ~75 s it lasts.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
from support import AgentProcess, Collector, write_config

from agent.health.image_health import ImageThresholds
from agent.sim import footage, scenes
from agent.sim.clips import write_au_clip
from agent.sim.mosquitto import Mosquitto
from agent.sim.rtsp import RtspServer
from contract.vocab import IMAGE_PROBLEMS

pytestmark = pytest.mark.integration

FPS, GOP = 10, 20
BUSY_S = 40  # healthy footage first, then the fault
OBSERVE_S = 75  # the last fault is due by BUSY_S + 17 s: the rest holds every control and fault
T = ImageThresholds()
AFTER = {"frozen": T.frozen_after_s, "covered": T.covered_after_s, "moved": T.moved_after_s}


def _clip(frames: Iterator[np.ndarray], seconds: float) -> Iterator[np.ndarray]:
    for _, frame in zip(range(int(seconds * FPS)), frames, strict=False):
        yield frame


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, str | None, float]]:
    """name -> (clip, the problem it must raise (None: a control), when the fault starts in the clip)."""
    missing = footage.footage_missing()
    if missing:
        pytest.fail(f"{missing}; run the README's test command (it installs it)")
    frames = footage.real_frames(480, 360)
    d = tmp_path_factory.mktemp("footage-clips")
    long_s = OBSERVE_S + 20  # longer than the run: the server's loop never starts again while judged
    rng = np.random.default_rng(5)
    street = scenes.Street(seed=3)
    empty = footage.empty_view(frames)

    def faulty(fault: Callable[[np.ndarray], np.ndarray]) -> Iterator[np.ndarray]:
        for i, frame in enumerate(footage.looped(frames, int(long_s * FPS))):
            yield fault(frame) if i >= BUSY_S * FPS else frame

    made: dict[str, tuple[Iterator[np.ndarray], str | None, float]] = {
        "stuck-from-start": (iter([frames[0]] * int(long_s * FPS)), "frozen", 0.0),
        "covered": (faulty(footage.covered), "covered", BUSY_S),
        "turned": (faulty(lambda f: footage.turned(f, 0.35, 4.0)), "moved", BUSY_S),
        "street-turned": (
            (
                footage.turned(street.noisy(f), 0.35, -4.0) if t >= BUSY_S else street.noisy(f)
                for t, f in street.frames(long_s)
            ),
            "moved",
            BUSY_S,
        ),
        "footage": (footage.looped(frames, int(long_s * FPS)), None, 0.0),
        "quiet-after-busy": (
            (
                f if i < 30 * FPS else footage.sensor_noise(empty, rng)
                for i, f in enumerate(footage.looped(frames, int(long_s * FPS)))
            ),
            None,
            0.0,
        ),
    }
    return {
        name: (write_au_clip(d / f"{name}.au", _clip(frames_of, long_s), fps=FPS, gop=GOP), problem, at)
        for name, (frames_of, problem, at) in made.items()
    }


def ts(payload: dict[str, str]) -> float:
    return datetime.fromisoformat(payload["ts"].replace("Z", "+00:00")).timestamp()


def test_faults_on_real_footage_are_named_right_and_controls_stay_silent(
    workdir: Path,
    mosquitto: Mosquitto,
    clips: dict[str, tuple[Path, str | None, float]],
    rtsp_factory: Callable[..., RtspServer],
    collector_factory: Callable[..., Collector],
    agent_factory: Callable[[Path], AgentProcess],
    prefix: str,
) -> None:
    server = rtsp_factory({name: f"clip:{path},fps={FPS}" for name, (path, _, _) in clips.items()})
    col = collector_factory(mosquitto.port, prefix)
    cams = [{"id": name, "url": server.url(name)} for name in clips]
    cfg = write_config(workdir / "ward.toml", "real", mosquitto.port, prefix, cams, heartbeat_s=2)
    agent = agent_factory(cfg)
    time.sleep(OBSERVE_S)
    agent.stop()
    log = agent.log_text()
    assert "Traceback" not in log, log[-3000:]

    for name, (_, problem, fault_at) in clips.items():
        healths = col.of(f"real/{name}/health")
        seen = [h for h in healths if h["state"] in ("online", "degraded")]
        assert seen, f"{name}: never online: {healths[-1:]}\n{log[-3000:]}"
        # The clip starts when the agent's first packet arrives: its first frame is at ``since`` of the first
        # verdict, give or take the 1 s online debounce and where in a GOP it joined.
        start = datetime.fromisoformat(seen[0]["since"].replace("Z", "+00:00")).timestamp()
        problems = {p for h in healths for p in h["problems"] if p in IMAGE_PROBLEMS}
        if problem is None:
            assert not problems, f"{name}: false alarm {problems}"
            assert ts(healths[-1]) - ts(healths[0]) >= OBSERVE_S - 15, f"{name}: not observed long enough"
            continue
        assert problems == {problem}, f"{name}: expected only {problem}, got {problems}"
        first = ts(next(h for h in healths if problem in h["problems"])) - start
        assert fault_at <= first <= fault_at + AFTER[problem] + 5 + 2, f"{name}: {problem} after {first:.1f} s"
        events = col.of(f"real/{name}/events")
        started = [e for e in events if e["type"] == "problem_started" and e["problem"] in IMAGE_PROBLEMS]
        assert started and started[0]["problem"] == problem and started[0]["detail"].startswith(f"{problem}: ")
        offline = [e for e in events if e["type"] == "problem_started" and e["problem"] not in IMAGE_PROBLEMS]
        assert not offline, f"{name}: {[(e['problem'], e['ts']) for e in offline]}, healths {healths[:4]}"
