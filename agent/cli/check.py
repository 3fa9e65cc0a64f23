"""``camwatch check-config PATH``."""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING

from agent.config import load_config
from agent.config.model import AgentConfig, DetectionConfig
from agent.errors import DetectorError, ModelNotFound
from common.errors import ConfigError
from common.i18n import _, ngettext
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
                _(
                    "{path}: OK: center, store {store}, broker {host}:{port}{tls}, pages on http://{listen}/, "
                    "time zone {zone}"
                ).format(
                    path=path,
                    store=redact(center.store.url),
                    host=center.mqtt.host,
                    port=center.mqtt.port,
                    tls=" (TLS)" if center.mqtt.use_tls else "",
                    listen=center.web.listen,
                    zone=center.timezone,
                )
            )
            return 0
        config = load_config(path)
    except ConfigError as exc:
        n = len(exc.problems)
        print(ngettext("{path}: {n} problem:", "{path}: {n} problems:", n).format(path=path, n=n), file=sys.stderr)
        for problem in exc.problems:
            print(f"  {redact(problem)}", file=sys.stderr)
        return 1
    detection = _check_detection(config)
    if detection is None:
        return 1
    enabled = len(config.enabled_cameras)
    cameras = ngettext("{n} camera ({enabled} enabled)", "{n} cameras ({enabled} enabled)", len(config.cameras))
    print(
        _("{path}: OK: ward {ward}, {cameras}, broker {host}:{port}{tls}; {detection}").format(
            path=path,
            ward=config.ward,
            cameras=cameras.format(n=len(config.cameras), enabled=enabled),
            host=config.mqtt.host,
            port=config.mqtt.port,
            tls=" (TLS)" if config.mqtt.use_tls else "",
            detection=detection[0],
        )
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
        print(_("detection: {problem}").format(problem=redact(str(exc))), file=sys.stderr)
        if not d.required:
            print("  " + _("(the agent would still watch camera health, without detection)"), file=sys.stderr)
        return None
    if detector is None:
        if d.enabled is False:
            return _("detection off"), []
        try:
            find_model(d.model, d.model_dir)
        except ModelNotFound as exc:
            return _("detection off: {why}").format(why=exc), []
        return _("detection off"), []
    cams = [c for c in config.enabled_cameras if c.detection]
    lines = [detector_capacity(detector, d)]
    for cam in cams:
        url, source = cam.detection_source(d.substream)
        reads = _("camera {camera}: detection reads the {source}: {url}").format(
            camera=cam.id, source=_(source), url=redact(url)
        )
        lines += [f"  {reads}", f"    {detection_cost(source, d)}"]
    on = ngettext(
        "detection on: model {model}, {n} camera, {fps:g} fps",
        "detection on: model {model}, {n} cameras, {fps:g} fps",
        len(cams),
    )
    return on.format(model=d.model, n=len(cams), fps=d.detect_fps), lines


# CPU to decode what detection looks at, measured on a 2-core ward PC (README: "Detection on a ward PC").
SUBSTREAM_DECODE_MS = 8  # every frame of a 360p/15 fps substream, per second
MAIN_KEYFRAMES_MS = 12  # one 1080p keyframe per 2 s GOP, per second
MAIN_ALL_FRAMES_MS = 75  # every frame of a 1080p/25 fps main stream, per second


def detector_capacity(detector: OnnxDetector, d: DetectionConfig) -> str:
    """What the one detector can look at on this machine within ``max_cores``: timed here, on a blank
    640x360 picture (the model's work does not depend on what is in it)."""
    import numpy as np

    picture = np.zeros((360, 640, 3), np.uint8)
    times: list[float] = []
    for _attempt in range(5):
        started = time.perf_counter()
        detector.detect(picture)
        times.append(time.perf_counter() - started)
    ms = 1000 * sorted(times)[len(times) // 2]
    if not d.max_cores:
        return "  " + _(
            "detector: one inference takes about {ms:.0f} ms here; no CPU limit (detection.max_cores = 0)"
        ).format(ms=ms)
    per_s = 1000 * d.max_cores / ms
    return "  " + _(
        "detector: at most {cores:g} cores (detection.max_cores); one inference takes about {ms:.0f} ms "
        "here, so about {per_s:.0f} frames a second: {cameras:.0f} cameras with something moving at "
        "{fps:g} fps before it sheds frames (counted; the agent says overloaded)"
    ).format(cores=d.max_cores, ms=ms, per_s=per_s, cameras=per_s / d.detect_fps, fps=d.detect_fps)


def detection_cost(source: str, d: DetectionConfig) -> str:
    """What detection will cost this camera, in words an installer can act on."""
    infer = _("plus the model's inference at up to {fps:g} frames/s while something moves").format(fps=d.detect_fps)
    if source != "main stream":
        return _("cost: about {ms} ms of CPU per second to decode a 360p substream, {inference}").format(
            ms=SUBSTREAM_DECODE_MS, inference=infer
        )
    if d.keyframes_above:
        return _(
            "cost: a picture taller than {height} px is decoded at keyframes only (about "
            "{ms} ms of CPU per second at 1080p, one picture per GOP: people passing quickly "
            "may be missed), {inference}; set detect_url to the camera's substream for every frame at less cost"
        ).format(height=d.keyframes_above, ms=MAIN_KEYFRAMES_MS, inference=infer)
    return _(
        "cost: every frame of the main stream is decoded (about {ms} ms of CPU per second at "
        "1080p), {inference}; set detect_url to the camera's substream"
    ).format(ms=MAIN_ALL_FRAMES_MS, inference=infer)
