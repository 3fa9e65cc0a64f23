"""The agent's /metrics, /healthz and /readyz: the real agent, a real camera and broker, scraped over HTTP and
read with Prometheus' own text parser (prometheus_client.parser)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from support import CAM_PASSWORD, AgentProcess, Collector, promtool_check, wait_until, write_config

from agent.sim.mosquitto import Mosquitto
from agent.sim.rtsp import RtspServer, free_port

pytestmark = pytest.mark.integration


def scrape(base: str) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """Every sample by metric name and labels, as Prometheus would read the page."""
    text = httpx.get(f"{base}/metrics", timeout=5).text
    out: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return out


def value(samples: dict[str, dict[tuple[tuple[str, str], ...], float]], name: str, **labels: str) -> float | None:
    return samples.get(name, {}).get(tuple(sorted(labels.items())))


def test_metrics_and_health_of_a_running_agent(
    workdir: Path,
    mosquitto: Mosquitto,
    shared_rtsp: RtspServer,
    collector_factory: Callable[..., Collector],
    agent_factory: Callable[[Path], AgentProcess],
    prefix: str,
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    cams: list[dict[str, Any]] = [
        {"id": "c1", "url": shared_rtsp.url("cam1")},
        {"id": "gone", "url": f"rtsp://admin:{CAM_PASSWORD}@127.0.0.1:{free_port()}/x"},
    ]
    col = collector_factory(mosquitto.port, prefix)
    agent = agent_factory(
        write_config(workdir / "ward.toml", "w1", mosquitto.port, prefix, cams, metrics=f"127.0.0.1:{port}")
    )
    assert col.wait_for("w1/c1/health", lambda h: h["state"] in ("online", "degraded"), 20), agent.log_text()[-2000:]
    assert wait_until(lambda: value(scrape(base), "camwatch_camera_state", camera="gone", state="offline") == 1, 20)
    # a delivered frame rate once the fps window has filled
    assert wait_until(lambda: value(scrape(base), "camwatch_camera_frames_per_second", camera="c1"), 20)
    m = scrape(base)
    c1_state = {
        s: value(m, "camwatch_camera_state", camera="c1", state=s) for s in ("online", "degraded", "offline", "unknown")
    }
    assert sum(v or 0 for v in c1_state.values()) == 1 and c1_state["offline"] == 0 and c1_state["unknown"] == 0
    assert value(m, "camwatch_camera_problem", camera="gone", problem="unreachable") == 1
    assert (value(m, "camwatch_camera_packets_total", camera="c1") or 0) > 0
    assert (value(m, "camwatch_camera_frames_per_second", camera="c1") or 0) > 5
    assert (value(m, "camwatch_camera_received_bytes_per_second", camera="c1") or 0) > 1000
    assert value(m, "camwatch_broker_connected") == 1 and value(m, "camwatch_outbox_messages") == 0
    (info_labels,) = m["camwatch_agent_info"]
    assert dict(info_labels)["ward"] == "w1"
    assert (value(m, "process_cpu_seconds_total") or 0) > 0  # the process's own figures too
    # Prometheus' conventions: our prefix, counters end in _total, no camera's URL or password anywhere.
    text = httpx.get(f"{base}/metrics", timeout=5).text
    for family in text_string_to_metric_families(text):
        assert family.name.startswith(("camwatch_", "process_")), family.name
        if family.type == "counter":
            assert all(s.name.endswith(("_total", "_created")) for s in family.samples), family.name
    assert CAM_PASSWORD not in text and "rtsp://" not in text
    assert promtool_check(text) == []  # and Prometheus' own checker agrees
    # Alive and ready; then the broker goes away: still alive, not ready, saying why.
    assert httpx.get(f"{base}/healthz", timeout=5).status_code == 200
    assert httpx.get(f"{base}/readyz", timeout=5).text == "ok\n"
    mosquitto.stop()
    assert wait_until(lambda: httpx.get(f"{base}/readyz", timeout=5).status_code == 503, 20)
    why = httpx.get(f"{base}/readyz", timeout=5).text
    assert why.startswith("not ready: not connected to the broker 127.0.0.1:"), why
    assert httpx.get(f"{base}/healthz", timeout=5).status_code == 200
    assert wait_until(lambda: value(scrape(base), "camwatch_broker_connected") == 0, 10)
    assert httpx.get(f"{base}/nothing", timeout=5).status_code == 404


def test_a_metrics_port_already_taken_is_said_and_monitoring_goes_on(
    workdir: Path,
    mosquitto: Mosquitto,
    shared_rtsp: RtspServer,
    agent_factory: Callable[[Path], AgentProcess],
    prefix: str,
) -> None:
    import socket

    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    try:
        cams = [{"id": "c1", "url": shared_rtsp.url("cam1")}]
        agent = agent_factory(
            write_config(workdir / "ward.toml", "w1", mosquitto.port, prefix, cams, metrics=f"127.0.0.1:{port}")
        )
        assert wait_until(lambda: "metrics.listen 127.0.0.1:" in agent.log_text(), 15), agent.log_text()[-2000:]
        assert "cannot listen there" in agent.log_text() and agent.proc is not None and agent.proc.poll() is None
    finally:
        taken.close()
