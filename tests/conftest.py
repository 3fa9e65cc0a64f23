"""Fixtures: a real Mosquitto on a loopback port, the real GStreamer RTSP server,
an MQTT collector that validates every payload against the contract's schemas,
and the agent run as a subprocess."""

from __future__ import annotations

import os
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from support import (
    CAM_PASSWORD,
    CAM_USER,
    PASSWORD,
    AgentProcess,
    Collector,
    Ward,
    center_for,
    health_message,
    wait_until,
)

from agent.publish.payloads import agent_payload, encode
from agent.sim.mosquitto import MOSQUITTO, Mosquitto
from agent.sim.postgres import Postgres, pg_bin
from agent.sim.rtsp import RtspServer, free_port, gst_missing
from center.auth import hash_password
from center.config import parse_center_config
from center.service import CenterIngest
from center.web import WebServer, build_app


@pytest.fixture
def workdir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="camwatch-test-") as d:
        yield Path(d)


@pytest.fixture
def mosquitto(workdir: Path) -> Iterator[Mosquitto]:
    if not os.path.exists(MOSQUITTO):
        pytest.fail("mosquitto is not installed: run the README's test command (it installs it)")
    broker = Mosquitto(workdir).start()
    yield broker
    broker.stop()


@pytest.fixture
def broker(workdir: Path) -> Iterator[Mosquitto]:
    """A Mosquitto with persistence (it can be restarted and keep sessions and retained messages)."""
    b = Mosquitto(workdir, persistence=True).start()
    yield b
    b.stop()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[Postgres]:
    """One PostgreSQL for the session (Debian's server, a temp cluster on loopback); each test resets it."""
    if pg_bin() is None:
        pytest.fail("PostgreSQL is not installed: run the README's test command (it installs it)")
    server = Postgres().start()
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The center's store, once on SQLite and once on a real PostgreSQL: the same tests for both."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/center.db"
    server: Postgres = request.getfixturevalue("postgres_server")
    server.reset()
    return server.url


@pytest.fixture
def collector_factory() -> Iterator[Callable[..., Collector]]:
    made: list[Collector] = []

    def make(port: int, prefix: str, auth: tuple[str, str] | None = None, session: str | None = None) -> Collector:
        c = Collector(port, prefix, auth, session)
        made.append(c)
        time.sleep(0.2)  # subscription in place
        return c

    yield make
    errors = [e for c in made for e in c.schema_errors]
    for c in made:
        c.close()
    assert not errors, f"payloads that break the contract: {errors}"


@pytest.fixture
def prefix() -> str:
    """A unique topic prefix per test."""
    return f"cwtest{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="session")
def rtsp_required() -> None:
    why = gst_missing()
    if why:
        pytest.fail(f"the GStreamer RTSP server cannot run ({why}): run the README's test command (it installs it)")


@pytest.fixture(scope="session")
def shared_rtsp(rtsp_required: None) -> Iterator[RtspServer]:
    """One server for the whole session, Digest auth, with healthy and audio-only mounts."""
    server = RtspServer(
        {"cam1": "video:320x240@25,gop=25", "cam2": "video:320x240@25,gop=25", "audio": "audio"},
        user=CAM_USER,
        password=CAM_PASSWORD,
    ).start()
    yield server
    server.kill()


@pytest.fixture
def rtsp_factory(rtsp_required: None) -> Iterator[Callable[..., RtspServer]]:
    servers: list[RtspServer] = []

    def make(mounts: dict[str, str] | None = None, **kw: Any) -> RtspServer:
        kw = {"user": CAM_USER, "password": CAM_PASSWORD} | kw
        s = RtspServer(mounts or {"live": "video:320x240@25,gop=25"}, **kw)
        s.start()
        servers.append(s)
        return s

    yield make
    for s in servers:
        s.resume()
        s.kill()


@pytest.fixture
def agent_factory(workdir: Path) -> Iterator[Callable[[Path], AgentProcess]]:
    agents: list[AgentProcess] = []

    def make(config: Path) -> AgentProcess:
        a = AgentProcess(config, workdir / f"agent-{len(agents)}.log").start()
        agents.append(a)
        return a

    yield make
    for a in agents:
        a.stop()


# -- the center's pages, with a ward's data in them ---------------------------------------------------


@pytest.fixture
def site(  # a center (SQLite), a ward's day in it through Mosquitto, its pages on loopback
    broker: Mosquitto, workdir: Path
) -> Iterator[tuple[str, CenterIngest]]:
    center = center_for(broker.port, f"sqlite:///{workdir}/center.db")
    center.store.put_user("op", "viewer", hash_password(PASSWORD), time.time())
    center.store.put_user("boss", "admin", hash_password(PASSWORD), time.time())
    ward = Ward(broker.port)
    now = time.time()
    birth = agent_payload(
        ward="w1",
        state="online",
        version="0.1.0",
        cameras=["c1", "c2"],
        started_at=now - 7200,
        now_wall=now - 7200,
        problems=["outbox_overflow"],
        hostname="ubnd-phuong-1",
    )
    ward.send("agent/status", encode(birth), retain=True)
    ward.health("online", now - 3600, now - 610)
    ward.change("online", "offline", since=now - 600, at=now - 595, problems=("stalled",))  # c1: down 10 min
    ward.health("offline", now - 600, now, ("stalled",))
    ward.send("c2/health", health_message("c2", "Cầu Trường Tiền", "online", now - 7200, now))
    snap_event = {
        "schema": "camwatch.event/1",
        "id": "det-00000001",
        "ward": "w1",
        "camera": "c2",
        "type": "detection_started",
        "ts": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(now - 30)),
        "label": "person",
        "score": 0.81,
        "box": [0.1, 0.2, 0.3, 0.9],
        "zones": [],
        "track_id": 3,
        "snapshot": "det-00000001",
        "problems": [],
    }
    ward.send("c2/snapshot/det-00000001", b"\xff\xd8\xff\xe0 fake jpeg")
    ward.send("c2/events", encode(snap_event))
    assert wait_until(
        lambda: center.ingest.events == 2 and center.ingest.snapshots == 1 and not center.ingest.pending, 10
    )
    config = parse_center_config({"language": "vi", "web": {"listen": f"127.0.0.1:{free_port()}"}})
    web = WebServer(build_app(config, center.store, center), "127.0.0.1", config.web.port).start()
    yield f"http://127.0.0.1:{config.web.port}", center
    web.stop()
    center.stop()
    center.store.close()
    ward.stop()
