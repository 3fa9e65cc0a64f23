"""The center as a user runs it (``camwatch center``), fed by the real agent reading the real RTSP server."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from support import (
    CAM_PASSWORD,
    ROOT,
    AgentProcess,
    WebhookReceiver,
    camwatch,
    promtool_check,
    wait_until,
    write_config,
)

from agent.sim.mosquitto import Mosquitto
from agent.sim.rtsp import RtspServer, free_port

pytestmark = pytest.mark.integration
PASSWORD = "Quan-tri-2026"


def center_config(path: Path, broker_port: int, web_port: int, prefix: str, alerts: str = "") -> Path:
    path.write_text(
        f'timezone = "Asia/Ho_Chi_Minh"\nlanguage = "en"\n[mqtt]\nport = {broker_port}\ntopic_prefix = "{prefix}"\n'
        f'[store]\nurl = "sqlite:///{path.parent}/center.db"\n[web]\nlisten = "127.0.0.1:{web_port}"\n'
        f"[uptime]\nunknown_after_s = 30\n{alerts}",
        encoding="utf-8",
    )
    return path


def add_user(config: Path, name: str, role: str, password: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agent.cli.main", "center", "--config", str(config), "add-user", name, "--role", role],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=ROOT,
        check=False,
        env={**os.environ, "CAMWATCH_PASSWORD": password},
    )


def test_a_killed_camera_is_an_ongoing_outage_on_the_outages_page(
    workdir: Path,
    mosquitto: Mosquitto,
    shared_rtsp: RtspServer,
    rtsp_factory: Callable[..., RtspServer],
    agent_factory: Callable[[Path], AgentProcess],
    prefix: str,
) -> None:
    web_port = free_port()
    hook = WebhookReceiver().__enter__()
    alerts = f'[alerts]\noffline_after_s = 3\ncheck_every_s = 1\nwebhook_url = "{hook.url}"\nwebhook_secret = "Hook-s3cret"\n'
    cfg = center_config(workdir / "center.toml", mosquitto.port, web_port, prefix, alerts)
    check = camwatch("check-config", str(cfg))
    assert check.returncode == 0 and "OK: center" in check.stdout
    assert add_user(cfg, "op", "viewer", "short").returncode == 1  # too short: refused, nothing saved
    made = add_user(cfg, "op", "viewer", PASSWORD)
    assert made.returncode == 0 and "user op (viewer) saved" in made.stdout

    issued = camwatch("center", "--config", str(cfg), "add-token", "erp")
    assert issued.returncode == 0, issued.stderr
    token = issued.stdout.strip().splitlines()[-1]
    assert token.startswith("cw_")

    center = AgentProcess(cfg, workdir / "center.log", command="center").start()
    doomed = rtsp_factory()
    cams = [
        {"id": "cong-chinh", "name": "Cổng chính", "url": shared_rtsp.url("cam1")},
        {"id": "bai-xe", "name": "Bãi xe", "url": doomed.url("live")},
    ]
    agent_factory(write_config(workdir / "ward.toml", "phuoc-vinh", mosquitto.port, prefix, cams))
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{web_port}", timeout=10) as c:
            assert wait_until(lambda: _up(c), 20), center.log_text()
            page = c.get("/login")
            csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
            assert c.post("/login", data={"user": "op", "password": PASSWORD, "csrf": csrf}).status_code == 303

            def states() -> dict[str, str]:
                return {x["camera"]: x["state"] for x in c.get("/api/v1/cameras").json()["cameras"]}

            assert wait_until(lambda: states() == {"cong-chinh": "online", "bai-xe": "online"}, 30), states()
            doomed.kill()  # the camera dies
            assert wait_until(lambda: states().get("bai-xe") == "offline", 30), states()
            outages = c.get("/outages").text
            ongoing = outages.split("Ongoing (")[1].split("History")[0]
            assert ongoing.startswith("1)") and "Bãi xe" in ongoing and "Cổng chính" not in ongoing
            assert re.search(r"stalled|unreachable", ongoing)
            assert "Cổng chính" in c.get("/").text
            # an alert, told once to the webhook and shown on the alerts page
            assert wait_until(lambda: len(hook.got) >= 1, 30), center.log_text()
            (fired,) = hook.documents()
            assert (fired["event"], fired["kind"], fired["camera"]) == ("fired", "camera_offline", "bai-xe")
            assert fired["name"] == "Bãi xe" and "phuoc-vinh/bai-xe (Bãi xe)" in fired["text"]  # as operators say it
            assert "Camera offline" in c.get("/alerts").text
        # the center's other systems: an API token, no session
        api = httpx.get(f"http://127.0.0.1:{web_port}/api/v1/cameras", headers={"Authorization": f"Bearer {token}"})
        assert api.status_code == 200 and len(api.json()["cameras"]) == 2
        wrong = httpx.get(f"http://127.0.0.1:{web_port}/api/v1/cameras", headers={"Authorization": "Bearer cw_nope"})
        assert wrong.status_code == 401
        # ... which take the alert on, and the center's monitoring counts the notice it sent
        taken = httpx.post(
            f"http://127.0.0.1:{web_port}/api/v1/alerts/{fired['id']}/ack",
            json={"note": "ticket #4411"},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert taken.status_code == 200 and taken.json()["acked_by"] == "token:erp"
        exposed = httpx.get(f"http://127.0.0.1:{web_port}/metrics").text
        assert promtool_check(exposed) == []  # with the alert notices' counters, as Prometheus' checker reads them
        scraped = {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(exposed)
            for s in family.samples
        }
        assert scraped[("camwatch_center_alert_notices_total", (("channel", "webhook"), ("result", "sent")))] == 1
        assert scraped[("camwatch_center_alert_notices_total", (("channel", "webhook"), ("result", "failed")))] == 0
        assert scraped[("camwatch_center_alert_notices_dropped_total", ())] == 0
    finally:
        hook.__exit__()
        assert center.stop() == 0
    text = center.log_text()
    assert CAM_PASSWORD not in text and PASSWORD not in text and token not in text and "Hook-s3cret" not in text
    assert "Traceback" not in text


def _up(c: httpx.Client) -> bool:
    try:
        return c.get("/login").status_code == 200
    except httpx.HTTPError:
        return False


def test_center_killed_mid_stream_loses_no_event(workdir: Path, broker: Mosquitto, prefix: str) -> None:
    """kill -9 of the center while a ward sends 600 events: after a restart every one is stored, once."""
    import json
    import sqlite3
    import time

    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    cfg = center_config(workdir / "center.toml", broker.port, free_port(), prefix)
    center = AgentProcess(cfg, workdir / "center-1.log", command="center").start()
    db = workdir / "center.db"

    def stored() -> int:
        try:
            with sqlite3.connect(db) as conn:
                return int(conn.execute("SELECT count(*) FROM events").fetchone()[0])
        except sqlite3.Error:
            return 0

    assert wait_until(lambda: "connected to broker" in center.log_text(), 20), center.log_text()
    ward = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="ward-k9", protocol=mqtt.MQTTv311)
    ward.max_inflight_messages_set(100)
    ward.connect("127.0.0.1", broker.port)
    ward.loop_start()
    now = time.time()
    sent = []
    for i in range(600):
        event = {
            "schema": "camwatch.event/1",
            "id": f"k9-event-{i:04d}",
            "ward": "w1",
            "camera": f"c{i % 7}",
            "type": "problem_started",
            "problem": "blurred",
            "problems": ["blurred"],
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now - 600 + i)) + ".000Z",
        }
        sent.append(ward.publish(f"{prefix}/w1/c{i % 7}/events", json.dumps(event), qos=1))
        if i == 300:
            assert wait_until(lambda: stored() > 0, 10)
            center.kill9()  # mid-stream, with messages in flight and some not yet committed
    for info in sent:
        info.wait_for_publish(10)  # the broker has every one
    again = AgentProcess(cfg, workdir / "center-2.log", command="center").start()
    try:
        assert wait_until(lambda: stored() == 600, 30), stored()  # each once: the id is the key
    finally:
        assert again.stop() == 0
        ward.loop_stop()
        ward.disconnect()


def test_a_port_in_use_or_a_bad_store_is_a_plain_error(workdir: Path) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        cfg = center_config(workdir / "center.toml", free_port(), busy.getsockname()[1], "camwatch")
        r = camwatch("center", "--config", str(cfg), timeout=30)
    assert r.returncode == 1 and "cannot listen on 127.0.0.1:" in r.stderr and "Traceback" not in r.stderr
    bad = workdir / "bad.toml"
    bad.write_text('[store]\nurl = "postgresql://cw:Hidden-pw@127.0.0.1:1/x"\n', encoding="utf-8")
    r = camwatch("center", "--config", str(bad), timeout=30)
    assert r.returncode == 1 and "cannot connect to postgresql://cw:***@127.0.0.1:1/x" in r.stderr
    assert "Hidden-pw" not in r.stderr + r.stdout and "Traceback" not in r.stderr
