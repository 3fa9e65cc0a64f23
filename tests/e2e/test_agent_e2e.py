"""The real agent (subprocess) against a real Mosquitto and the real GStreamer RTSP server."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from support import CAM_PASSWORD, AgentProcess, Collector, wait_until, write_config

from agent.sim.mosquitto import Mosquitto
from agent.sim.rtsp import RtspServer, free_port

pytestmark = pytest.mark.integration
OFFLINE_AFTER = 3  # write_config's offline_after_s


def state_is(state: str, problem: str | None = None) -> Callable[[dict[str, Any]], bool]:
    return lambda p: p["state"] == state and (problem is None or problem in p["problems"])


def test_camera_states_end_to_end(
    workdir: Path,
    mosquitto: Mosquitto,
    shared_rtsp: RtspServer,
    rtsp_factory: Callable[..., RtspServer],
    collector_factory: Callable[[int, str], Collector],
    agent_factory: Callable[[Path], AgentProcess],
    prefix: str,
) -> None:
    own = rtsp_factory()
    cams = [
        {"id": "good", "name": "Ngã tư Lê Duẩn", "url": shared_rtsp.url("cam1")},
        {"id": "flaky", "url": own.url("live")},
        {"id": "badpw", "url": shared_rtsp.url("cam1", password="wrong-pass")},
        {"id": "badpath", "url": shared_rtsp.url("nope")},
        {"id": "closed", "url": f"rtsp://{'admin'}:{CAM_PASSWORD}@127.0.0.1:{free_port()}/x"},
        {"id": "audio", "url": shared_rtsp.url("audio")},
        # The form some DVRs take: credentials in the query string.
        {"id": "dvr", "url": f"rtsp://127.0.0.1:{free_port()}/live?channel=1&user=admin&password={QS_CANARY}"},
    ]
    col = collector_factory(mosquitto.port, prefix)
    agent = agent_factory(write_config(workdir / "ward.toml", "w1", mosquitto.port, prefix, cams))

    # Birth, retained, with the camera list.
    birth = col.wait_for("w1/agent/status", lambda p: p["state"] == "online", 10)
    assert birth and birth["cameras"] == [c["id"] for c in cams]

    for cam, state, problem in [
        ("good", "online", None),
        ("flaky", "online", None),
        ("badpw", "offline", "auth_failed"),
        ("badpath", "offline", "not_found"),
        ("closed", "offline", "unreachable"),
        ("audio", "offline", "no_video"),
        ("dvr", "offline", "unreachable"),
    ]:
        found = col.wait_for(f"w1/{cam}/health", state_is(state, problem), 15)
        assert found, f"{cam}: expected {state} {problem}, got {col.last(f'w1/{cam}/health')}"
    good = col.wait_for("w1/good/health", lambda p: p["stream"]["fps"] is not None, 10)
    assert good["name"] == "Ngã tư Lê Duẩn"
    assert good["stream"]["codec"] == "h264" and good["stream"]["width"] == 320
    assert 20 <= good["stream"]["fps"] <= 30

    # Stalled: the server process is frozen (socket open, no data).
    own.pause()
    t0 = time.monotonic()
    stalled = col.wait_for("w1/flaky/health", state_is("offline", "stalled"), OFFLINE_AFTER + 5)
    took = time.monotonic() - t0
    assert stalled, col.last("w1/flaky/health")
    assert took <= OFFLINE_AFTER + 2, f"offline after {took:.1f} s"
    own.resume()
    assert col.wait_for("w1/flaky/health", lambda p: p["state"] == "online" and p["ts"] > stalled["ts"], 15)

    # Killed: the port closes.
    online_before = col.last("w1/flaky/health")
    port = own.port
    own.kill()
    t0 = time.monotonic()
    dead = col.wait_for("w1/flaky/health", lambda p: p["state"] == "offline" and p["ts"] > online_before["ts"], 10)
    took = time.monotonic() - t0
    assert dead and took <= OFFLINE_AFTER + 2, (took, dead)
    assert col.wait_for("w1/flaky/health", state_is("offline", "unreachable"), 8)

    # Back, on the same port.
    own.start()
    assert own.port == port
    assert col.wait_for("w1/flaky/health", lambda p: p["state"] == "online" and p["ts"] > dead["ts"], 20)

    # The events tell the same story, each with a unique id.
    events = col.of("w1/flaky/events")
    changes = [(e["from"], e["to"]) for e in events if e["type"] == "state_changed"]
    assert changes[:3] == [("unknown", "online"), ("online", "offline"), ("offline", "online")]
    assert ("online", "offline") in changes[3:]
    all_events = [p for t, p, _ in col.messages if t.endswith("/events")]
    assert len({e["id"] for e in all_events}) == len(all_events)

    # Stats arrive, every stats_s.
    assert col.wait_for("w1/agent/stats", lambda p: p["cameras"]["good"]["packets"] > 0, 5)

    # Clean stop: shutdown status; the canary password is nowhere.
    assert agent.stop() == 0
    assert col.wait_for("w1/agent/status", lambda p: p.get("reason") == "shutdown", 5)
    log = agent.log_text()
    assert "auth_failed" in log or "refused the credentials" in log
    assert CAM_PASSWORD not in log and QS_CANARY not in log
    assert "password=***" in log  # the dvr camera's URL, said with its password masked
    for _topic, payload, _ in col.messages:
        assert CAM_PASSWORD not in str(payload) and QS_CANARY not in str(payload)


def test_unwritable_state_dir_is_reported_and_monitoring_goes_on(
    workdir: Path,
    mosquitto: Mosquitto,
    shared_rtsp: RtspServer,
    collector_factory: Callable[..., Collector],
    agent_factory: Callable[[Path], AgentProcess],
    prefix: str,
) -> None:
    col = collector_factory(mosquitto.port, prefix)
    cams = [{"id": "c1", "url": shared_rtsp.url("cam2")}]
    agent = agent_factory(
        write_config(workdir / "ward.toml", "w11", mosquitto.port, prefix, cams, state_dir="/proc/camwatch-state")
    )
    birth = col.wait_for("w11/agent/status", lambda p: p["state"] == "online", 10)
    assert birth and "state_dir_unwritable" in birth["problems"]
    assert col.wait_for("w11/c1/health", state_is("online"), 15)
    assert "state_dir /proc/camwatch-state is not writable" in agent.log_text()


def test_kill_9_fires_last_will(
    workdir: Path,
    mosquitto: Mosquitto,
    shared_rtsp: RtspServer,
    collector_factory: Callable[[int, str], Collector],
    agent_factory: Callable[[Path], AgentProcess],
    prefix: str,
) -> None:
    col = collector_factory(mosquitto.port, prefix)
    agent = agent_factory(
        write_config(
            workdir / "ward.toml", "w2", mosquitto.port, prefix, [{"id": "c1", "url": shared_rtsp.url("cam1")}]
        )
    )
    assert col.wait_for("w2/c1/health", state_is("online"), 15)
    agent.kill9()
    lost = col.wait_for("w2/agent/status", lambda p: p["state"] == "offline", 5)
    assert lost and lost["reason"] == "lost"


def test_broker_down_at_start_then_up_and_restarted(
    workdir: Path,
    shared_rtsp: RtspServer,
    collector_factory: Callable[[int, str], Collector],
    agent_factory: Callable[[Path], AgentProcess],
    prefix: str,
) -> None:
    port = free_port()
    agent = agent_factory(
        write_config(workdir / "ward.toml", "w3", port, prefix, [{"id": "c1", "url": shared_rtsp.url("cam1")}])
    )
    # The agent watches cameras with no broker, and says why it cannot publish.
    assert wait_until(lambda: "camera c1: unknown -> online" in agent.log_text(), 10), agent.log_text()
    assert f"cannot connect to broker 127.0.0.1:{port}: Connection refused" in agent.log_text()
    broker = Mosquitto(workdir, port=port).start()
    try:
        col = collector_factory(port, prefix)
        assert col.wait_for("w3/agent/status", lambda p: p["state"] == "online", 40)
        first = col.wait_for("w3/c1/health", state_is("online"), 15)
        assert first
        # A broker restart without persistence forgets everything retained:
        # the agent re-publishes birth and health on reconnect.
        broker.stop()
        col.close()
        broker = Mosquitto(workdir, port=port).start()
        fresh = collector_factory(port, prefix)
        assert fresh.wait_for("w3/agent/status", lambda p: p["state"] == "online", 40)
        assert fresh.wait_for("w3/c1/health", state_is("online"), 10)
    finally:
        broker.stop()


def test_camera_that_never_works_does_not_disturb_others(
    workdir: Path,
    mosquitto: Mosquitto,
    shared_rtsp: RtspServer,
    collector_factory: Callable[[int, str], Collector],
    agent_factory: Callable[[Path], AgentProcess],
    prefix: str,
) -> None:
    # A socket that accepts TCP and never answers RTSP: the open blocks until its timeout.
    import socket

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    try:
        cams = [
            {"id": "silent", "url": f"rtsp://127.0.0.1:{silent.getsockname()[1]}/x"},
            {"id": "good", "url": shared_rtsp.url("cam2")},
        ]
        col = collector_factory(mosquitto.port, prefix)
        agent_factory(write_config(workdir / "ward.toml", "w4", mosquitto.port, prefix, cams))
        assert col.wait_for("w4/good/health", state_is("online"), 15)
        assert col.wait_for("w4/silent/health", state_is("offline", "stalled"), 15)
        good = col.last("w4/good/health")
        assert good["state"] == "online"
        assert wait_until(lambda: len(col.of("w4/good/health")) >= 2, 8)  # heartbeats keep coming
    finally:
        silent.close()


MQTT_CANARY = "Mqtt-Canary-91b2"
QS_CANARY = "Qs-Canary-3e8d"  # a camera password given in the URL's query string


def test_broker_with_password_and_no_secret_leaks(
    workdir: Path,
    shared_rtsp: RtspServer,
    collector_factory: Callable[..., Collector],
    agent_factory: Callable[[Path], AgentProcess],
    prefix: str,
) -> None:
    broker = Mosquitto(workdir, users={"ward5": MQTT_CANARY, "center": "center-pass"}).start()
    try:
        col = collector_factory(broker.port, prefix, ("center", "center-pass"))
        secret = workdir / "mqtt.pass"
        secret.write_text(MQTT_CANARY + "\n")
        cams = [
            {"id": "c1", "url": shared_rtsp.url("cam1")},
            {"id": "c2", "url": shared_rtsp.url("cam1", password="nope")},
        ]
        good = agent_factory(
            write_config(
                workdir / "ward.toml",
                "w5",
                broker.port,
                prefix,
                cams,
                mqtt={"username": "ward5", "password_file": str(secret)},
            )
        )
        assert col.wait_for("w5/c1/health", state_is("online"), 15)
        assert col.wait_for("w5/c2/health", state_is("offline", "auth_failed"), 15)
        good.stop()

        # A wrong MQTT password: refused, said plainly, the agent keeps going.
        (workdir / "bad").mkdir()
        bad = agent_factory(
            write_config(
                workdir / "bad" / "ward.toml",
                "w6",
                broker.port,
                prefix,
                cams,
                mqtt={"username": "ward5", "password": "wrong-" + MQTT_CANARY},
            )
        )
        assert wait_until(lambda: "refused the connection" in bad.log_text(), 10), bad.log_text()
        assert bad.proc is not None and bad.proc.poll() is None
        assert bad.stop() == 0
        for text in (good.log_text(), bad.log_text(), *(str(p) for _, p, _ in col.messages)):
            assert MQTT_CANARY not in text
            assert CAM_PASSWORD not in text
    finally:
        broker.stop()


def test_low_fps_degrades(
    workdir: Path,
    mosquitto: Mosquitto,
    rtsp_factory: Callable[..., RtspServer],
    collector_factory: Callable[..., Collector],
    agent_factory: Callable[[Path], AgentProcess],
    prefix: str,
) -> None:
    # The camera announces 25 fps but only about 8 arrive.
    server = rtsp_factory({"slow": "video:320x240@25,gop=25,deliver=8"})
    col = collector_factory(mosquitto.port, prefix)
    cfg = write_config(
        workdir / "ward.toml",
        "w7",
        mosquitto.port,
        prefix,
        [{"id": "slow", "url": server.url("slow")}],
        low_fps_after_s=2,
        fps_window_s=2,
    )
    agent_factory(cfg)
    degraded = col.wait_for("w7/slow/health", state_is("degraded", "low_fps"), 20)
    assert degraded, col.last("w7/slow/health")
    assert degraded["stream"]["nominal_fps"] == 25
    assert degraded["stream"]["fps"] < 12.5
    started = col.wait_for("w7/slow/events", lambda e: e["type"] == "problem_started" and e["problem"] == "low_fps", 5)
    assert started


def test_state_changes_during_broker_outage_are_replayed(
    workdir: Path,
    rtsp_factory: Callable[..., RtspServer],
    collector_factory: Callable[..., Collector],
    agent_factory: Callable[[Path], AgentProcess],
    prefix: str,
) -> None:
    broker = Mosquitto(workdir, persistence=True).start()
    try:
        server = rtsp_factory()
        # A persistent session: what is published while this subscriber is away waits for it.
        col = collector_factory(broker.port, prefix, None, f"{prefix}-center")
        agent_factory(
            write_config(workdir / "ward.toml", "w8", broker.port, prefix, [{"id": "c1", "url": server.url("live")}])
        )
        assert col.wait_for("w8/c1/health", state_is("online"), 15)
        live = col.wait_for("w8/c1/events", lambda e: e["type"] == "state_changed" and e["to"] == "online", 5)
        assert live, col.of("w8/c1/events")
        assert "replayed" not in live  # sent at once with the broker up: live, never marked late
        broker.stop()
        outage_start = time.time()
        server.kill()  # the camera dies while the uplink is down
        time.sleep(OFFLINE_AFTER + 3)
        broker.start()
        replayed = col.wait_for("w8/c1/events", lambda e: e["type"] == "state_changed" and e["to"] == "offline", 20)
        assert replayed, col.of("w8/c1/events")
        assert replayed["replayed"] is True
        # It keeps its original time: when the camera died, not when the broker came back.
        from datetime import datetime

        ts = datetime.fromisoformat(replayed["ts"].replace("Z", "+00:00")).timestamp()
        assert outage_start - 1 <= ts <= outage_start + OFFLINE_AFTER + 2
        problem = col.wait_for("w8/c1/events", lambda e: e["type"] == "problem_started", 5)
        assert problem and problem["replayed"] is True
    finally:
        broker.stop()


def make_tls_files(d: Path) -> tuple[Path, Path, Path]:
    """A throw-away CA and a broker certificate for 127.0.0.1 (openssl CLI)."""
    import subprocess

    def ssl(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=d)

    ssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=camwatch-test-ca",
    )
    ssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "broker.key", "-out", "broker.csr", "-subj", "/CN=127.0.0.1")
    (d / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    ssl(
        "x509",
        "-req",
        "-in",
        "broker.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "broker.pem",
        "-days",
        "2",
        "-extfile",
        "san.ext",
    )
    return d / "ca.pem", d / "broker.pem", d / "broker.key"


def test_tls_broker(
    workdir: Path,
    shared_rtsp: RtspServer,
    collector_factory: Callable[..., Collector],
    agent_factory: Callable[[Path], AgentProcess],
    prefix: str,
) -> None:
    ca, cert, key = make_tls_files(workdir)
    broker = Mosquitto(workdir, tls=(ca, cert, key)).start()
    try:
        col = collector_factory(broker.port, prefix)  # the plain listener, for the test's own eyes
        assert broker.tls_port is not None
        cams = [{"id": "c1", "url": shared_rtsp.url("cam1")}]
        agent_factory(
            write_config(workdir / "ward.toml", "w9", broker.tls_port, prefix, cams, mqtt={"ca_file": str(ca)})
        )
        assert col.wait_for("w9/agent/status", lambda p: p["state"] == "online", 15)
        assert col.wait_for("w9/c1/health", state_is("online"), 15)

        # A broker whose certificate the agent does not trust: refused, logged, no crash.
        other = workdir / "other"
        other.mkdir()
        other_ca, _, _ = make_tls_files(other)
        (workdir / "bad").mkdir()
        bad = agent_factory(
            write_config(
                workdir / "bad" / "ward.toml", "w10", broker.tls_port, prefix, cams, mqtt={"ca_file": str(other_ca)}
            )
        )
        assert wait_until(lambda: "TLS handshake failed: CERTIFICATE_VERIFY_FAILED" in bad.log_text(), 15), (
            bad.log_text()[-2000:]
        )
        assert bad.proc is not None and bad.proc.poll() is None
        assert not col.of("w10/agent/status")
    finally:
        broker.stop()
