"""``camwatch check-config PATH``."""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING

from agent.config import load_config
from agent.config.model import AgentConfig, DetectionConfig
from agent.errors import DetectorError, ModelNotFound
from common.errors import ConfigError
from common.redact import redact

if TYPE_CHECKING:
    from agent.detect.detector import OnnxDetector


def cmd_check(path: str) -> int:
    from center.config import is_center_config, parse_center_config
    from common.config import read_toml

    try:
        raw = read_toml(path)
        if is_center_config(raw):
            center = parse_center_config(raw)
            print(
                f"{path}: OK: center, store {redact(center.store.url)}, broker {center.mqtt.host}:{center.mqtt.port}"
                f"{' (TLS)' if center.mqtt.use_tls else ''}, pages on http://{center.web.listen}/, "
                f"time zone {center.timezone}"
            )
            return 0
        config = load_config(path)
    except ConfigError as exc:
        n = len(exc.problems)
        print(f"{path}: {n} problem{'s' if n != 1 else ''}:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {redact(problem)}", file=sys.stderr)
        return 1
    detection = _check_detection(config)
    if detection is None:
        return 1
    enabled = len(config.enabled_cameras)
    print(
        f"{path}: OK: ward {config.ward}, {len(config.cameras)} camera(s) ({enabled} enabled), "
        f"broker {config.mqtt.host}:{config.mqtt.port}{' (TLS)' if config.mqtt.use_tls else ''}; {detection[0]}"
    )
    for line in detection[1]:
        print(line)
    return 0


def _check_detection(config: AgentConfig) -> tuple[str, list[str]] | None:
    """Load the detector as ``run`` would: a one-line verdict and what each camera's detection reads and
    costs, or None after printing the problem."""
    from agent.detect.detector import find_model
    from agent.runtime import build_detector  # loads onnxruntime: only here

    d = config.detection
    try:
        detector = build_detector(d)
    except DetectorError as exc:
        print(f"detection: {redact(str(exc))}", file=sys.stderr)
        if not d.required:
            print("  (the agent would still watch camera health, without detection)", file=sys.stderr)
        return None
    if detector is None:
        if d.enabled is False:
            return "detection off", []
        try:
            find_model(d.model, d.model_dir)
        except ModelNotFound as exc:
            return f"detection off: {exc}", []
        return "detection off", []
    cams = [c for c in config.enabled_cameras if c.detection]
    lines = [detector_capacity(detector, d)]
    for cam in cams:
        url, source = cam.detection_source(d.substream)
        lines += [f"  camera {cam.id}: detection reads the {source}: {redact(url)}", f"    {detection_cost(source, d)}"]
    return f"detection on: model {d.model}, {len(cams)} camera(s), {d.detect_fps:g} fps", lines


# CPU to decode what detection looks at, measured on a 2-core ward PC (README: "Detection on a ward PC").
SUBSTREAM_DECODE_MS = 8  # every frame of a 360p/15 fps substream, per second
MAIN_KEYFRAMES_MS = 12  # one 1080p keyframe per 2 s GOP, per second
MAIN_ALL_FRAMES_MS = 75  # every frame of a 1080p/25 fps main stream, per second


def detector_capacity(detector: OnnxDetector, d: DetectionConfig) -> str:
    """What the one detector can look at on this machine within ``max_cores``: timed here, on a blank
    640x360 picture (the model's work does not depend on what is in it)."""
    import numpy as np

    picture = np.zeros((360, 640, 3), np.uint8)
    times = []
    for _ in range(5):
        started = time.perf_counter()
        detector.detect(picture)
        times.append(time.perf_counter() - started)
    ms = 1000 * sorted(times)[len(times) // 2]
    if not d.max_cores:
        return f"  detector: one inference takes about {ms:.0f} ms here; no CPU limit (detection.max_cores = 0)"
    per_s = 1000 * d.max_cores / ms
    return (
        f"  detector: at most {d.max_cores:g} cores (detection.max_cores); one inference takes about {ms:.0f} ms "
        f"here, so about {per_s:.0f} frames a second: {per_s / d.detect_fps:.0f} cameras with something moving at "
        f"{d.detect_fps:g} fps before it sheds frames (counted; the agent says overloaded)"
    )


def detection_cost(source: str, d: DetectionConfig) -> str:
    """What detection will cost this camera, in words an installer can act on."""
    infer = f"plus the model's inference at up to {d.detect_fps:g} frames/s while something moves"
    if source != "main stream":
        return f"cost: about {SUBSTREAM_DECODE_MS} ms of CPU per second to decode a 360p substream, {infer}"
    if d.keyframes_above:
        return (
            f"cost: a picture taller than {d.keyframes_above} px is decoded at keyframes only (about "
            f"{MAIN_KEYFRAMES_MS} ms of CPU per second at 1080p, one picture per GOP: people passing quickly "
            f"may be missed), {infer}; set detect_url to the camera's substream for every frame at less cost"
        )
    return (
        f"cost: every frame of the main stream is decoded (about {MAIN_ALL_FRAMES_MS} ms of CPU per second at "
        f"1080p), {infer}; set detect_url to the camera's substream"
    )
