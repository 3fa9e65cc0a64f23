"""The center that ships ready: the container file and the compose file, checked as far as this machine
allows. There is no container runtime here, so the compose file is validated by docker-compose's own
parser, and what the containers would run is run directly: Mosquitto from the compose's main file with the
shipped conf.d and ACL, the center from the compose's center.toml against it and a real PostgreSQL."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from support import ROOT, AgentProcess, connect, health_message, wait_until

from agent.sim.mosquitto import MOSQUITTO, ShippedMosquitto, run_pki
from agent.sim.postgres import Postgres
from agent.sim.rtsp import free_port
from center.store import Store

pytestmark = pytest.mark.integration
DEPLOY = ROOT / "deploy"


def test_the_compose_file_is_valid(workdir: Path) -> None:
    tool = shutil.which("docker-compose")
    if tool is None:
        pytest.skip("docker-compose is not installed")
    copy = workdir / "repo" / "deploy"
    shutil.copytree(DEPLOY, copy)
    shutil.copy(DEPLOY / "compose.env.example", copy / "compose.env")
    done = subprocess.run(
        [tool, "-f", str(copy / "compose.yaml"), "config"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    config = done.stdout
    assert "network_mode: service:mosquitto" in config
    assert "ca.key" not in config  # the CA's signing key is never mounted into a container
    assert "127.0.0.1:8080:8080" in config or "host_ip: 127.0.0.1" in config


def test_the_container_runs_the_center_as_a_user_from_the_lock() -> None:
    text = (DEPLOY / "container" / "Containerfile").read_text()
    final = text.split("\nFROM ")[-1]
    assert re.search(r"^USER 10001:10001$", final, flags=re.M)
    assert "--require-hashes" in text and "requirements/center.lock" in text
    for install in re.findall(r"pip install[^\n]*(?:\\\n[^\n]*)*", text):
        assert "--require-hashes" in install or "--no-deps" in install, install
    assert "HEALTHCHECK" in final and 'CMD ["center"' in final


def test_what_the_containers_run_works_without_a_container_runtime(
    workdir: Path, postgres_server: Postgres, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not os.path.exists(MOSQUITTO):
        pytest.fail("mosquitto is not installed: run the README's test command (it installs it)")
    postgres_server.reset()
    pki = workdir / "pki"
    run_pki("init", str(pki), "mosquitto", "localhost", "127.0.0.1")
    run_pki("ward", str(pki), "w1")
    center_password = dict(line.split("=", 1) for line in (pki / "center.env").read_text().splitlines() if "=" in line)[
        "CAMWATCH_MQTT_PASSWORD"
    ]
    ward_password = (pki / "wards/w1/agent.env").read_text().strip().split("=", 1)[1]
    broker = ShippedMosquitto(
        workdir / "root", pki, main_conf=(DEPLOY / "container" / "mosquitto.conf").read_text()
    ).install()
    broker.start()
    web_port = free_port()
    toml = (DEPLOY / "container" / "center.toml").read_text()
    toml = toml.replace("port = 1883", f"port = {broker.local_port}")
    toml = toml.replace(
        "camwatch:${PGPASSWORD}@postgres:5432",
        f"{postgres_server.user}:${{PGPASSWORD}}@127.0.0.1:{postgres_server.port}",
    )
    toml = toml.replace('listen = "0.0.0.0:8080"', f'listen = "127.0.0.1:{web_port}"')
    config = workdir / "center.toml"
    config.write_text(toml)
    monkeypatch.setenv("CAMWATCH_MQTT_PASSWORD", center_password)  # what compose.env gives the container
    monkeypatch.setenv("PGPASSWORD", "unused-trust-auth")
    center = AgentProcess(config, workdir / "center.log", command="center").start()
    try:
        assert wait_until(lambda: "camwatch center:" in center.log_text(), 30), center.log_text()
        ward = connect(broker.password_port, "camwatch-agent-w1", user="w1", password=ward_password, ca=pki / "ca.pem")
        assert ward.connected
        now = time.time()
        health = health_message("c1", "Chợ Đông Ba", "online", now - 60, now)
        assert ward.publish("camwatch/w1/c1/health", health, retain=True) == 0
        ward.close()
        store = Store(postgres_server.url)
        try:
            assert wait_until(lambda: [c.camera for c in store.cameras()] == ["c1"], 20), center.log_text()[-3000:]
        finally:
            store.close()
        with httpx.Client(base_url=f"http://127.0.0.1:{web_port}") as c:
            assert c.get("/login").status_code == 200
        assert "Traceback" not in center.log_text(), center.log_text()[-3000:]
    finally:
        center.stop()
        broker.stop()
    assert "refused" not in center.log_text(), center.log_text()[-2000:]
