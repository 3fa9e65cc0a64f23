"""The agent seen from outside: ``/metrics`` (Prometheus), ``/healthz`` and ``/readyz`` on ``[metrics] listen``.

Figures are read when scraped, from what the agent keeps anyway (the same
as its stats message): nothing is counted twice and nothing costs anything
between scrapes. Names follow Prometheus' conventions: the ``camwatch_``
prefix, base units (seconds, bytes), ``_total`` on counters. The figures
name the ward's cameras but never their URLs or credentials.

- ``/healthz``: 200 while the health loop ticks (the process is alive and
  judging cameras), else 503 saying since when it has not;
- ``/readyz``: 200 while the agent can deliver (broker connected, outbox
  and state directory writable), else 503 saying what is missing.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Final, Protocol

from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

from contract.vocab import STATES

log = logging.getLogger(__name__)

STALLED_LOOP_S: Final = 10.0  # the health loop silent this long: not healthy


@dataclass(frozen=True)
class CameraNow:
    """What the agent says of one camera at a scrape."""

    state: str
    since_wall: float
    problems: tuple[str, ...]
    figures: dict[str, Any]  # as in the stats message: fps, bitrate_kbps, reconnects, ..., detection


@dataclass(frozen=True)
class AgentNow:
    """What the agent says of itself at a scrape."""

    ward: str
    version: str
    hostname: str
    started_wall: float
    problems: list[str]
    broker_connected: bool
    refused: int
    outbox: dict[str, int]
    cameras: dict[str, CameraNow]
    detector: dict[str, Any] | None
    loop_age_s: float | None  # seconds since the health loop last ticked (None: not yet)
    not_ready: list[str]  # why the agent cannot deliver now (empty: it can)


class Observed(Protocol):
    def observe(self) -> AgentNow: ...


# per camera, counters of the stats message: (metric name without _total, help, key)
CAMERA_COUNTERS: Final = (
    ("camwatch_camera_reconnects", "Times the camera's stream was opened again", "reconnects"),
    ("camwatch_camera_probes", "TCP connects to the camera's port while it was unreachable", "probes"),
    ("camwatch_camera_packets", "Video packets received", "packets"),
    (
        "camwatch_camera_frames_decoded",
        "Frames decoded (keyframes for image checks, detection frames)",
        "frames_decoded",
    ),
    ("camwatch_camera_image_samples", "Pictures the image checks looked at", "frames_sampled"),
    ("camwatch_camera_image_samples_skipped", "Image-check samples skipped (unchanged picture)", "samples_skipped"),
    ("camwatch_camera_image_samples_shed", "Image-check samples not decoded for want of CPU", "image_samples_shed"),
    ("camwatch_camera_detection_frames_shed", "Detection frames not decoded for want of CPU", "detection_frames_shed"),
)
DETECTION_COUNTERS: Final = (
    ("camwatch_camera_detection_frames", "Frames handed to detection", "frames"),
    ("camwatch_camera_detection_gated", "Frames the motion gate kept from the detector", "gated"),
    ("camwatch_camera_detection_inferences", "Detector runs", "inferences"),
    ("camwatch_camera_detection_dropped", "Frames dropped because the detector could not keep up", "dropped"),
    ("camwatch_camera_detection_errors", "Detector runs that failed", "errors"),
    ("camwatch_camera_detection_events", "Detection events sent", "events"),
    (
        "camwatch_camera_detection_suppressed",
        "Detection events over max_events_per_min, counted not sent",
        "suppressed",
    ),
)
OUTBOX_COUNTERS: Final = (
    ("camwatch_outbox_dropped", "Snapshots and detections dropped over the outbox's size limits", "dropped"),
    ("camwatch_outbox_expired", "Snapshots and detections dropped for age", "expired"),
    ("camwatch_outbox_sent", "Messages the broker acknowledged", "sent"),
)


class AgentCollector(Collector):
    """Every figure, read from the agent at each scrape."""

    def __init__(self, agent: Observed) -> None:
        self.agent = agent

    def collect(self) -> Iterator[Metric]:
        now = self.agent.observe()
        yield from _agent(now)
        yield from _cameras(now.cameras)
        yield from _outbox(now)
        if now.detector is not None:
            yield from _detector(now.detector)


def _agent(now: AgentNow) -> Iterator[Metric]:
    info = GaugeMetricFamily("camwatch_agent_info", "The ward agent", labels=["ward", "version", "hostname"])
    info.add_metric([now.ward, now.version, now.hostname], 1)
    yield info
    yield GaugeMetricFamily(
        "camwatch_agent_start_time_seconds", "When the agent started (Unix time)", value=now.started_wall
    )
    problem = GaugeMetricFamily(
        "camwatch_agent_problem", "The agent's own problems (1 while present)", labels=["problem"]
    )
    for p in now.problems:
        problem.add_metric([p], 1)
    yield problem
    yield GaugeMetricFamily(
        "camwatch_broker_connected", "1 while connected to the center's broker", value=int(now.broker_connected)
    )
    yield CounterMetricFamily("camwatch_publish_refused", "Publishes the broker refused", value=now.refused)
    if now.loop_age_s is not None:
        yield GaugeMetricFamily(
            "camwatch_health_loop_age_seconds", "Seconds since the health loop last ticked", value=now.loop_age_s
        )


def _cameras(cameras: dict[str, CameraNow]) -> Iterator[Metric]:
    state = GaugeMetricFamily("camwatch_camera_state", "1 for the camera's state now", labels=["camera", "state"])
    since = GaugeMetricFamily(
        "camwatch_camera_state_since_timestamp_seconds",
        "When the camera entered its state (Unix time)",
        labels=["camera"],
    )
    problem = GaugeMetricFamily(
        "camwatch_camera_problem", "The camera's problems (1 while present)", labels=["camera", "problem"]
    )
    fps = GaugeMetricFamily("camwatch_camera_frames_per_second", "Frames delivered per second", labels=["camera"])
    rate = GaugeMetricFamily(
        "camwatch_camera_received_bytes_per_second", "The stream's bitrate, in bytes per second", labels=["camera"]
    )
    counters = {name: CounterMetricFamily(name, text, labels=["camera"]) for name, text, _ in CAMERA_COUNTERS}
    detection = {name: CounterMetricFamily(name, text, labels=["camera"]) for name, text, _ in DETECTION_COUNTERS}
    for cam, c in sorted(cameras.items()):
        for s in STATES:
            state.add_metric([cam, s], int(c.state == s))
        since.add_metric([cam], c.since_wall)
        for p in c.problems:
            problem.add_metric([cam, p], 1)
        f = c.figures
        if f.get("fps") is not None:
            fps.add_metric([cam], f["fps"])
        if f.get("bitrate_kbps") is not None:
            rate.add_metric([cam], f["bitrate_kbps"] * 1000 / 8)
        for name, _, key in CAMERA_COUNTERS:
            counters[name].add_metric([cam], f.get(key, 0))
        for name, _, key in DETECTION_COUNTERS:
            if "detection" in f:
                detection[name].add_metric([cam], f["detection"].get(key, 0))
    yield from (state, since, problem, fps, rate, *counters.values())
    if any("detection" in c.figures for c in cameras.values()):
        yield from detection.values()


def _outbox(now: AgentNow) -> Iterator[Metric]:
    o = now.outbox
    yield GaugeMetricFamily("camwatch_outbox_messages", "Messages waiting to be sent", value=o.get("pending", 0))
    yield GaugeMetricFamily(
        "camwatch_outbox_inflight_messages", "Messages sent, not yet acknowledged", value=o.get("inflight", 0)
    )
    yield GaugeMetricFamily("camwatch_outbox_bytes", "Bytes in the on-disk outbox", value=o.get("bytes", 0))
    for name, text, key in OUTBOX_COUNTERS:
        yield CounterMetricFamily(name, text, value=o.get(key, 0))


def _detector(d: dict[str, Any]) -> Iterator[Metric]:
    if d.get("inference_ms") is not None:
        yield GaugeMetricFamily(
            "camwatch_detector_inference_seconds", "Mean time of one detector run", value=d["inference_ms"] / 1000
        )
    if d.get("rested_s") is not None:
        yield CounterMetricFamily(
            "camwatch_detector_rested_seconds", "Time the detector rested to keep to max_cores", value=d["rested_s"]
        )
    if d.get("max_cores") is not None:
        yield GaugeMetricFamily("camwatch_detector_max_cores", "The CPU the detector may use", value=d["max_cores"])


def registry_for(agent: Observed) -> CollectorRegistry:
    """The agent's figures and its process's (CPU seconds, memory, open files, start time)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(AgentCollector(agent))
    ProcessCollector(registry=registry)
    return registry


def health(now: AgentNow) -> tuple[int, str]:
    age = now.loop_age_s
    if age is None:
        return 503, "starting: the health loop has not ticked yet\n"
    if age > STALLED_LOOP_S:
        return 503, f"the health loop has not ticked for {age:.0f} s\n"
    return 200, "ok\n"


def readiness(now: AgentNow) -> tuple[int, str]:
    if now.not_ready:
        return 503, "not ready: " + "; ".join(now.not_ready) + "\n"
    return 200, "ok\n"


class MetricsServer:
    """``/metrics``, ``/healthz``, ``/readyz`` over HTTP in a thread of its own."""

    def __init__(self, agent: Observed, host: str, port: int) -> None:
        registry = registry_for(agent)
        pages: dict[str, Callable[[], tuple[int, str, bytes]]] = {
            "/metrics": lambda: (200, CONTENT_TYPE_LATEST, generate_latest(registry)),
            "/healthz": lambda: _text(*health(agent.observe())),
            "/readyz": lambda: _text(*readiness(agent.observe())),
        }

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                page = pages.get(self.path.split("?", 1)[0])
                status, kind, body = page() if page is not None else _text(404, "not found\n")
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                log.debug("metrics: " + format, *args)

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, name="metrics", daemon=True)

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def start(self) -> MetricsServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def _text(status: int, text: str) -> tuple[int, str, bytes]:
    return status, "text/plain; charset=utf-8", text.encode()
