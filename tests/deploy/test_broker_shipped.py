"""The shipped broker config (deploy/mosquitto on Debian's stock mosquitto.conf), attacked by a careless or
hostile ward: each attack refused, and its victim unharmed.

Mosquitto runs from exactly the shipped files (paths and ports moved into a temp dir), with a PKI made by
deploy/camwatch-pki. Clients speak MQTT 5, so a refused publish comes back with its reason code.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support import AgentProcess, Client, connect, wait_until, write_config

from agent.sim.mosquitto import MOSQUITTO, ShippedMosquitto, run_pki
from agent.sim.rtsp import free_port

pytestmark = pytest.mark.integration


def refused(port: int, **kw: Any) -> bool:
    """Whether a login is refused (the client is closed either way)."""
    c = connect(port, "someone", timeout=2.0, **kw)
    try:
        return not c.connected
    finally:
        c.close()


@pytest.fixture
def shipped(workdir: Path) -> Iterator[tuple[ShippedMosquitto, dict[str, str]]]:
    """The shipped broker with a PKI: wards 'a' and 'b'; returns the broker and every user's password."""
    if not os.path.exists(MOSQUITTO):
        pytest.fail("mosquitto is not installed: run the README's test command (it installs it)")
    pki = workdir / "pki"
    run_pki("init", str(pki), "localhost", "127.0.0.1")
    run_pki("ward", str(pki), "a")
    run_pki("ward", str(pki), "b")
    passwords = {
        "center": _env(pki / "center.env")["CAMWATCH_MQTT_PASSWORD"],
        "a": _env(pki / "wards/a/agent.env")["CAMWATCH_MQTT_PASSWORD"],
        "b": _env(pki / "wards/b/agent.env")["CAMWATCH_MQTT_PASSWORD"],
    }
    broker = ShippedMosquitto(workdir / "root", pki).install().start()
    yield broker, passwords
    broker.stop()


def _env(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)


def _ward(broker: ShippedMosquitto, ward: str, passwords: dict[str, str], client_id: str, **kw: Any) -> Client:
    return connect(broker.password_port, client_id, user=ward, password=passwords[ward], ca=broker.pki / "ca.pem", **kw)


def _center(broker: ShippedMosquitto, passwords: dict[str, str], **kw: Any) -> Client:
    c = connect(broker.local_port, "camwatch-center", user="center", password=passwords["center"], **kw)
    assert c.connected, c.connack
    assert c.subscribe("camwatch/#") == 1
    return c


def test_the_shipped_config_starts_on_debians_stock_layout(shipped: tuple[ShippedMosquitto, dict[str, str]]) -> None:
    broker, _ = shipped
    conf = (broker.root / "etc/mosquitto/mosquitto.conf").read_text()
    assert "persistence_location" in conf and "include_dir" in conf  # Debian's own lines, kept
    assert "Error" not in broker.log_text()


def test_anonymous_and_wrong_passwords_are_refused(shipped: tuple[ShippedMosquitto, dict[str, str]]) -> None:
    broker, passwords = shipped
    ca = broker.pki / "ca.pem"
    assert refused(broker.local_port)
    assert refused(broker.password_port, ca=ca)
    assert refused(broker.password_port, user="a", password=passwords["b"], ca=ca)
    assert refused(broker.local_port, user="center", password="guess")
    # The WAN listener speaks only TLS: a plain connection gets nowhere.
    assert refused(broker.password_port, user="a", password=passwords["a"])
    ok = _ward(broker, "a", passwords, "camwatch-agent-a")
    assert ok.connected
    ok.close()


def test_a_ward_cannot_take_over_another_wards_session_or_fire_its_will(
    shipped: tuple[ShippedMosquitto, dict[str, str]],
) -> None:
    broker, passwords = shipped
    center = _center(broker, passwords)
    victim = _ward(broker, "b", passwords, "camwatch-agent-b", will=("camwatch/b/agent/status", b'{"state":"offline"}'))
    assert victim.connected
    assert victim.publish("camwatch/b/agent/status", b'{"state":"online"}', retain=True) == 0
    # Ward a logs in with b's client id (and with the center's): its client id is replaced by its user name.
    for stolen in ("camwatch-agent-b", "b", "camwatch-center", "center"):
        thief = _ward(broker, "a", passwords, stolen)
        assert thief.connected
        thief.close()
    time.sleep(0.5)
    assert victim.connected, victim.disconnects
    assert center.connected, center.disconnects
    statuses = [m.payload for m in center.messages if m.topic == "camwatch/b/agent/status"]
    assert statuses == [b'{"state":"online"}'], "b's last will fired"
    victim.close()
    center.close()


def test_a_ward_cannot_wipe_the_centers_persistent_session(shipped: tuple[ShippedMosquitto, dict[str, str]]) -> None:
    broker, passwords = shipped
    center = _center(broker, passwords, persistent=True)
    center.close()  # the center is stopped: the broker queues for its session
    ward = _ward(broker, "b", passwords, "camwatch-agent-b")
    assert ward.publish("camwatch/b/cam1/events", b'{"id":"1"}') == 0
    # A hostile ward connects with the center's client id and a clean start: the center's session must not go.
    for stolen in ("camwatch-center", "center"):
        thief = _ward(broker, "a", passwords, stolen)
        assert thief.connected
        thief.close()
    assert ward.publish("camwatch/b/cam1/events", b'{"id":"2"}') == 0
    back = connect(broker.local_port, "camwatch-center", user="center", password=passwords["center"], persistent=True)
    assert back.connected
    assert back.connack[-1] == 0
    got = wait_until(lambda: [m.payload for m in back.messages if m.topic == "camwatch/b/cam1/events"] or None, 5)
    assert got == [b'{"id":"1"}', b'{"id":"2"}'], "the center's queued messages were lost"
    back.close()
    ward.close()


def test_a_ward_writes_only_its_own_topics_and_reads_nothing(shipped: tuple[ShippedMosquitto, dict[str, str]]) -> None:
    broker, passwords = shipped
    center = _center(broker, passwords)
    a = _ward(broker, "a", passwords, "camwatch-agent-a")
    assert a.publish("camwatch/a/cam1/events", b"mine") == 0
    for topic in ("camwatch/b/cam1/events", "camwatch/b/agent/status", "camwatch/center/x", "other/topic"):
        rc = a.publish(topic, b"forged")
        assert rc is not None and rc.is_failure and rc.getName() == "Not authorized", (topic, rc)
    # A ward reads nothing (Mosquitto grants the subscription, then delivers nothing through it).
    a.subscribe("camwatch/#")
    b = _ward(broker, "b", passwords, "camwatch-agent-b")
    assert b.publish("camwatch/b/cam1/events", b"b's") == 0
    assert b.publish("camwatch/b/agent/status", b"b's", retain=True) == 0
    time.sleep(0.3)
    assert a.messages == []
    assert [m.topic for m in center.messages] == [
        "camwatch/a/cam1/events",
        "camwatch/b/cam1/events",
        "camwatch/b/agent/status",
    ]
    b.close()
    a.close()
    center.close()


def test_the_center_reads_everything_and_writes_nothing(shipped: tuple[ShippedMosquitto, dict[str, str]]) -> None:
    broker, passwords = shipped
    center = _center(broker, passwords)
    for topic in ("camwatch/center/cam1/events", "camwatch/a/agent/status", "camwatch/x"):
        rc = center.publish(topic, b"{}")
        assert rc is not None and rc.is_failure, topic
    center.close()


def test_an_oversized_message_is_refused(shipped: tuple[ShippedMosquitto, dict[str, str]]) -> None:
    broker, passwords = shipped
    center = _center(broker, passwords)
    a = _ward(broker, "a", passwords, "camwatch-agent-a")
    assert a.publish("camwatch/a/cam1/snapshot/1", b"x" * 500_000) == 0  # a large snapshot goes
    a.client.publish("camwatch/a/cam1/snapshot/2", b"x" * 20_000_000, qos=1)
    assert wait_until(lambda: a.disconnects, 10), "a 20 MB message was taken"
    time.sleep(0.3)
    assert [m.topic for m in center.messages] == ["camwatch/a/cam1/snapshot/1"]
    a.close()
    center.close()


def test_client_certificates_authenticate_wards(
    shipped: tuple[ShippedMosquitto, dict[str, str]], workdir: Path
) -> None:
    broker, _ = shipped
    pki = broker.pki
    ca = pki / "ca.pem"
    center = _center(broker, shipped[1])
    a_cert = (pki / "wards/a/a.pem", pki / "wards/a/a.key")
    a = connect(broker.cert_port, "camwatch-agent-b", ca=ca, cert=a_cert)
    assert a.connected, a.connack
    assert a.publish("camwatch/a/cam1/events", b"by cert") == 0
    assert a.publish("camwatch/b/cam1/events", b"forged").is_failure
    a.close()
    # No certificate, or one from another CA: refused.
    assert refused(broker.cert_port, ca=ca)
    other = workdir / "other-pki"
    run_pki("init", str(other), "localhost", "127.0.0.1")
    run_pki("ward", str(other), "a")
    assert refused(broker.cert_port, ca=ca, cert=(other / "wards/a/a.pem", other / "wards/a/a.key"))
    # A revoked ward: neither its certificate nor its password works after the broker reloads.
    b_cert = (pki / "wards/b/b.pem", pki / "wards/b/b.key")
    saved = [p.read_bytes() for p in b_cert]
    run_pki("revoke", str(pki), "b")
    for p, data in zip(b_cert, saved, strict=True):
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    broker.reload_pki()
    assert refused(broker.cert_port, ca=ca, cert=b_cert)
    time.sleep(0.3)
    assert [m.payload for m in center.messages] == [b"by cert"]
    center.close()


def test_an_agent_whose_ward_is_not_its_login_loses_nothing(
    shipped: tuple[ShippedMosquitto, dict[str, str]], workdir: Path
) -> None:
    """ward.toml says ward b, but the agent logs in as a: every publish is refused. It says so once, in plain
    words, keeps everything queued, and once the broker lets it write, all of it arrives."""
    broker, passwords = shipped
    center = _center(broker, passwords)
    config = write_config(
        workdir / "ward.toml",
        "b",
        broker.password_port,
        "camwatch",
        [{"id": "cam1", "url": f"rtsp://127.0.0.1:{free_port()}/nothing"}],
        mqtt={"username": "a", "password": passwords["a"], "ca_file": str(broker.pki / "ca.pem")},
    )
    agent = AgentProcess(config, workdir / "agent.log").start()
    try:
        assert wait_until(lambda: "refused a message" in agent.log_text(), 15), agent.log_text()
        line = next(x for x in agent.log_text().splitlines() if "refused a message" in x)
        assert "Not authorized" in line and "ward = 'b'" in line and "'a'" in line, line
        # The camera goes offline meanwhile: its change is queued, not lost.
        assert wait_until(lambda: "state_changed on cam1" in agent.log_text(), 15), agent.log_text()
        time.sleep(1.0)
        assert not [m for m in center.messages if m.topic.startswith("camwatch/b/")]
        # The center's admin lets user a write ward b's topics (systemctl reload mosquitto).
        acl = broker.root / "etc/mosquitto/camwatch/acl"
        acl.write_text(acl.read_text() + "\nuser a\ntopic write camwatch/b/#\n")
        broker.reload_pki()

        def topics() -> set[str]:
            return {m.topic for m in center.messages}

        want = {"camwatch/b/agent/status", "camwatch/b/cam1/health", "camwatch/b/cam1/events"}
        assert wait_until(lambda: want <= topics(), 30), topics()
        events = [json.loads(m.payload) for m in center.messages if m.topic == "camwatch/b/cam1/events"]
        assert any(e["type"] == "state_changed" and e["to"] == "offline" for e in events), events
        status = wait_until(
            lambda: [
                s
                for m in center.messages
                if m.topic == "camwatch/b/agent/status"
                and "publish_refused" not in (s := json.loads(m.payload))["problems"]
            ],
            15,
        )
        assert status, [m.payload for m in center.messages if m.topic == "camwatch/b/agent/status"]
        stats = wait_until(
            lambda: [json.loads(m.payload) for m in center.messages if m.topic == "camwatch/b/agent/stats"], 10
        )
        assert stats and stats[-1]["outbox"]["refused"] >= 1
        assert sum("refused a message" in x for x in agent.log_text().splitlines()) == 1
        assert "takes this agent's messages again" in agent.log_text()
    finally:
        agent.stop()
        center.close()


def test_a_wrong_ca_or_another_wards_certificate_is_said_once_in_plain_words(
    shipped: tuple[ShippedMosquitto, dict[str, str]], workdir: Path
) -> None:
    broker, _ = shipped
    other = workdir / "other-pki"
    run_pki("init", str(other), "localhost", "127.0.0.1")
    cam = [{"id": "cam1", "url": f"rtsp://127.0.0.1:{free_port()}/nothing"}]
    wrong_ca = write_config(
        workdir / "wrong-ca.toml",
        "a",
        broker.cert_port,
        "camwatch",
        cam,
        mqtt={
            "ca_file": str(other / "ca.pem"),
            "cert_file": str(broker.pki / "wards/a/a.pem"),
            "key_file": str(broker.pki / "wards/a/a.key"),
        },
        state_dir=workdir / "state-1",
    )
    # Ward b's PC installed with ward a's certificate: it logs in as a, and may not write b's topics.
    wrong_cert = write_config(
        workdir / "wrong-cert.toml",
        "b",
        broker.cert_port,
        "camwatch",
        cam,
        mqtt={
            "ca_file": str(broker.pki / "ca.pem"),
            "cert_file": str(broker.pki / "wards/a/a.pem"),
            "key_file": str(broker.pki / "wards/a/a.key"),
        },
        state_dir=workdir / "state-2",
    )
    # Ward a's certificate, expired yesterday.
    expired_pem, expired_key = workdir / "expired.pem", workdir / "expired.key"
    subprocess.run(
        [
            "openssl",
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-subj",
            "/CN=a",
            "-keyout",
            str(expired_key),
            "-out",
            str(workdir / "expired.csr"),
        ],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [
            "openssl",
            "x509",
            "-req",
            "-in",
            str(workdir / "expired.csr"),
            "-CA",
            str(broker.pki / "ca.pem"),
            "-CAkey",
            str(broker.pki / "ca.key"),
            "-CAcreateserial",
            "-days",
            "-1",
            "-out",
            str(expired_pem),
        ],
        check=True,
        capture_output=True,
    )
    expired = write_config(
        workdir / "expired.toml",
        "a",
        broker.cert_port,
        "camwatch",
        cam,
        mqtt={"ca_file": str(broker.pki / "ca.pem"), "cert_file": str(expired_pem), "key_file": str(expired_key)},
        state_dir=workdir / "state-3",
    )
    agents = [AgentProcess(c, workdir / f"{c.stem}.log").start() for c in (wrong_ca, wrong_cert, expired)]
    try:
        assert wait_until(lambda: "state_changed on cam1" in agents[0].log_text(), 20), agents[0].log_text()
        assert wait_until(lambda: "refused a message" in agents[1].log_text(), 20), agents[1].log_text()
        time.sleep(6)  # several reconnect attempts and refusals later
        ca_lines = [x for x in agents[0].log_text().splitlines() if "CERTIFICATE_VERIFY_FAILED" in x]
        assert len(ca_lines) == 1 and "TLS handshake failed" in ca_lines[0], ca_lines
        cert_lines = [x for x in agents[1].log_text().splitlines() if "refused a message" in x]
        assert len(cert_lines) == 1 and "client certificate's name (CN)" in cert_lines[0], cert_lines
        expired_lines = [x for x in agents[2].log_text().splitlines() if "ERROR" in x]
        assert len(expired_lines) == 1 and "client certificate: it has expired" in expired_lines[0], expired_lines
    finally:
        for a in agents:
            a.stop()
