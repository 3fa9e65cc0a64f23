"""Ward deaths and uplink cuts, told truthfully at the center: the real agent, RTSP server, Mosquitto and center.

Between the agent and the broker sits :class:`agent.sim.uplink.Uplink`, a TCP
proxy that can go silent as a dead uplink does (no byte either way, new
connections refused).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from support import AgentProcess, wait_until, write_config

from agent.sim.mosquitto import Mosquitto
from agent.sim.rtsp import RtspServer
from agent.sim.uplink import Uplink
from center.config import parse_center_config
from center.service import CenterIngest
from center.store import Store

pytestmark = pytest.mark.integration
KEEPALIVE = 5  # the least the config allows: the broker sends the will ~7.5 s after the link goes silent


class WillWatch:
    """At the broker itself (not through the uplink): when a ward's last will comes, and its last word before."""

    def __init__(self, port: int, prefix: str, ward: str) -> None:
        self.at: list[float] = []
        self.last_word: float | None = None  # the newest ``ts`` of the ward's own messages before its will
        self._lock = threading.Lock()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2)
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.subscribe(f"{prefix}/{ward}/#", qos=1)
        self.client.loop_start()

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        if "/snapshot/" in msg.topic or msg.retain:
            return
        p = json.loads(msg.payload)
        with self._lock:
            if p.get("state") == "offline" and p.get("reason") == "lost":
                self.at.append(time.time())
            elif not self.at and isinstance(p.get("ts"), str):
                ts = datetime.fromisoformat(p["ts"].replace("Z", "+00:00")).timestamp()
                self.last_word = max(ts, self.last_word or ts)

    def stop(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@pytest.fixture
def center(mosquitto: Mosquitto, workdir: Path, prefix: str) -> Iterator[CenterIngest]:
    config = parse_center_config(
        {
            "mqtt": {"port": mosquitto.port, "topic_prefix": prefix, "client_id": f"{prefix}-center"},
            "store": {"url": f"sqlite:///{workdir}/center.db"},
            "uptime": {"unknown_after_s": 30},
        }
    )
    service = CenterIngest(config, Store(config.store.url))
    service.start()
    assert service.wait_connected(10)
    yield service
    service.stop()
    service.store.close()


def state_now(center: CenterIngest, ward: str, camera: str) -> tuple[str, float]:
    iv = center.fleet.states(time.time()).get((ward, camera))
    return (iv.state, iv.start) if iv is not None else ("", 0.0)


def test_an_uplink_cut_is_seen_at_once_and_filled_in_when_the_link_is_back(
    workdir: Path,
    mosquitto: Mosquitto,
    center: CenterIngest,
    rtsp_factory: Callable[..., RtspServer],
    agent_factory: Callable[[Path], AgentProcess],
    prefix: str,
) -> None:
    uplink = Uplink(mosquitto.port).start()
    wills = WillWatch(mosquitto.port, prefix, "w1")
    steady, doomed = rtsp_factory(), rtsp_factory()
    cams = [{"id": "c1", "url": steady.url("live")}, {"id": "c2", "url": doomed.url("live")}]
    agent = agent_factory(
        write_config(workdir / "ward.toml", "w1", uplink.port, prefix, cams)  # keepalive_s = KEEPALIVE
    )
    try:
        assert wait_until(lambda: all(state_now(center, "w1", c)[0] == "online" for c in ("c1", "c2")), 30), (
            agent.log_text()[-3000:],
            center.stats(),
        )
        time.sleep(3)
        cut = time.time()
        uplink.cut()
        assert wait_until(lambda: wills.at, 15), agent.log_text()[-2000:]
        will_at = wills.at[0]
        # Within 2 s of the will: the ward is gone and its cameras unknown, from when it was last heard from.
        assert wait_until(lambda: state_now(center, "w1", "c1")[0] == "unknown", 2.0)
        gone = center.store.agents()["w1"]
        assert gone.state == "offline" and gone.reason == "lost"
        for cam in ("c1", "c2"):
            state, since = state_now(center, "w1", cam)
            assert state == "unknown"
            assert since == pytest.approx(wills.last_word, abs=0.002), (since - cut, will_at - cut)
        assert cut - 3 <= since <= cut  # its last word came moments before the cut (stats every 2 s)

        doomed.kill()  # a camera dies while nobody can see the ward
        died = time.time()
        time.sleep(6)
        uplink.restore()
        back = time.time()
        # Within 5 s of the link's return: the true state of every camera, and the agent running again.
        assert wait_until(
            lambda: state_now(center, "w1", "c1")[0] == "online" and state_now(center, "w1", "c2")[0] == "offline", 5
        ), (state_now(center, "w1", "c1"), state_now(center, "w1", "c2"), time.time() - back)
        assert wait_until(lambda: center.store.agents()["w1"].state == "online", 5)
        assert wait_until(lambda: center.ingest.pending == 0, 5)
        time.sleep(1.0)
        # The cut filled in from what the agent saw: c1 online all along, c2's outage at its real time.
        now = time.time()
        c1 = center.fleet.timeline("w1", "c1", cut - 2, now - 1)
        assert [iv.state for iv in c1] == ["online"], c1
        c2 = center.fleet.timeline("w1", "c2", cut - 2, now - 1)
        assert [iv.state for iv in c2] == ["online", "offline"], c2
        assert abs(c2[1].start - died) < 1.5, c2[1].start - died
    finally:
        wills.stop()
        uplink.stop()


def test_a_killed_agent_is_gone_at_the_center_at_once_and_its_last_seconds_count(
    workdir: Path,
    mosquitto: Mosquitto,
    center: CenterIngest,
    shared_rtsp: RtspServer,
    agent_factory: Callable[[Path], AgentProcess],
    prefix: str,
) -> None:
    cams = [{"id": "c1", "url": shared_rtsp.url("cam1")}]
    agent = agent_factory(
        write_config(workdir / "ward.toml", "w2", mosquitto.port, prefix, cams)  # keepalive_s = KEEPALIVE
    )
    assert wait_until(lambda: state_now(center, "w2", "c1")[0] == "online", 30)
    time.sleep(3)
    killed = time.time()
    agent.kill9()
    assert wait_until(lambda: state_now(center, "w2", "c1")[0] == "unknown", KEEPALIVE * 1.5 + 2)
    _, since = state_now(center, "w2", "c1")
    assert killed - 2.5 <= since <= killed + 0.1  # online until its last word (stats every 2 s), then unknown
    agent_row = center.store.agents()["w2"]
    assert (agent_row.state, agent_row.reason) == ("offline", "lost") and agent_row.ts == pytest.approx(since)
    ivs = center.fleet.timeline("w2", "c1", killed - 2.5, killed + 1)
    assert [iv.state for iv in ivs] == ["online", "unknown"]
