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
    AgentProcess,
    Collector,
)

from agent.sim.mosquitto import MOSQUITTO, Mosquitto
from agent.sim.postgres import Postgres, pg_bin
from agent.sim.rtsp import RtspServer, gst_missing


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
        s = RtspServer(mounts or {"live": "video:320x240@25,gop=25"}, user=CAM_USER, password=CAM_PASSWORD, **kw)
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
