"""``camwatch check-config PATH``."""

from __future__ import annotations

import sys

from agent.config import load_config
from agent.config.model import AgentConfig
from agent.errors import ConfigError, DetectorError, ModelNotFound
from agent.redact import redact


def cmd_check(path: str) -> int:
    from agent.config.load import read_toml
    from center.config import is_center_config, parse_center_config

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
        f"broker {config.mqtt.host}:{config.mqtt.port}{' (TLS)' if config.mqtt.use_tls else ''}; {detection}"
    )
    return 0


def _check_detection(config: AgentConfig) -> str | None:
    """Load the detector as ``run`` would: a one-line verdict, or None after printing the problem."""
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
            return "detection off"
        try:
            find_model(d.model, d.model_dir)
        except ModelNotFound as exc:
            return f"detection off: {exc}"
        return "detection off"
    cams = sum(1 for c in config.enabled_cameras if c.detection)
    return f"detection on: model {d.model}, {cams} camera(s), {d.detect_fps:g} fps"
