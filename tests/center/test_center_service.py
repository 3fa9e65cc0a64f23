"""The center service against the real Mosquitto: contract messages in, stored time out, to the second.

A ward is played by a plain MQTT client publishing payloads built by the
agent's own builders, with timestamps in the past so every figure is exact.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from support import Ward, center_for, wait_until

from agent.publish.payloads import agent_payload, encode
from agent.sim.mosquitto import Mosquitto
from agent.sim.postgres import Postgres
from center.config import parse_center_config
from center.service import CenterIngest
from center.store import Store
from center.timeline import Interval
from center.uptime import uptime

pytestmark = pytest.mark.integration

T0 = float(int(time.time()) // 3600 * 3600 - 6 * 3600)  # six hours ago, on the hour


def test_outage_restarts_and_last_will_are_counted_to_the_second(broker: Mosquitto, store_url: str) -> None:
    db = store_url
    center = center_for(broker.port, db)
    ward = Ward(broker.port)
    for t in range(0, 601, 30):
        ward.health("online", T0, T0 + t)
    died = ward.change("online", "offline", since=T0 + 615, at=T0 + 620, problems=("stalled",))
    for t in range(650, 771, 30):
        ward.health("offline", T0 + 615, T0 + t, ("stalled",))
    assert wait_until(lambda: center.ingest.events == 1 and center.ingest.pending == 0, 10)

    center.stop()  # the center goes away; the broker keeps its session and queues for it
    center.store.close()
    ward.send("c1/events", encode({**died, "replayed": True}))  # the same event again, from an outbox
    for t in range(800, 891, 30):
        ward.health("offline", T0 + 615, T0 + t, ("stalled",))
    ward.change("offline", "online", since=T0 + 900, at=T0 + 902)
    for t in range(930, 1171, 30):
        ward.health("online", T0 + 900, T0 + t)
    center = center_for(broker.port, db)  # its own restart: what was queued arrives
    assert wait_until(lambda: center.ingest.events == 1 and center.ingest.duplicates == 1, 10), center.stats()

    broker.stop()  # the broker restarts (persistent): the center reconnects by itself
    broker.start()
    assert wait_until(lambda: center.wait_connected(0.1), 15)
    ward.stop()
    ward = Ward(broker.port)
    for t in range(1200, 1291, 30):
        ward.health("online", T0 + 900, T0 + t)
    will = agent_payload(
        ward="w1", state="offline", version="1", cameras=["c1"], started_at=T0, now_wall=T0 + 1300, reason="lost"
    )
    ward.send("agent/status", encode({**will, "seq": 1}), retain=True)
    stored = center.store.assertions
    assert wait_until(lambda: any(a.state == "unknown" for a in stored("w1", "c1", T0, T0 + 2000, 90)), 10)
    center.stop()
    center.store.close()
    ward.stop()

    store = Store(db)
    fleet = CenterIngest(parse_center_config({"store": {"url": db}}), store).fleet
    ivs = fleet.timeline("w1", "c1", T0, T0 + 2000)
    assert ivs == [
        Interval(T0, T0 + 615, "online"),
        Interval(T0 + 615, T0 + 900, "offline", ("stalled",)),
        Interval(T0 + 900, T0 + 1290, "online"),
        Interval(T0 + 1290, T0 + 2000, "unknown"),  # the agent is gone from its last word on: not offline
    ]
    up = uptime(ivs, T0, T0 + 2000)
    assert (up.online_s, up.offline_s, up.unknown_s) == (1005, 285, 710)
    assert [c.name for c in store.cameras()] == ["Chợ Đông Ba"]
    agent = store.agents()["w1"]
    assert (agent.state, agent.reason, agent.ts) == ("offline", "lost", T0 + 1290)  # gone since last heard
    assert [e.type for e in store.events(ward="w1")] == ["state_changed", "state_changed"]
    store.close()


def test_bad_messages_are_counted_and_ingest_goes_on(broker: Mosquitto, workdir: Path) -> None:
    center = center_for(broker.port, f"sqlite:///{workdir}/center.db")
    ward = Ward(broker.port)
    ward.send("c1/health", b"\xff\xfe not json")
    ward.send("c1/events", b'{"schema": "camwatch.event/9"}')
    ward.health("online", T0, T0 + 30)
    assert wait_until(lambda: center.fleet.cameras() and center.ingest.bad == 2, 10), center.stats()
    assert center.fleet.state_at("w1", "c1", T0 + 30).state == "online"
    center.stop()
    center.store.close()
    ward.stop()


def test_postgresql_down_for_a_while_loses_nothing(broker: Mosquitto, postgres_server: Postgres) -> None:
    postgres_server.reset()
    center = center_for(broker.port, postgres_server.url)
    ward = Ward(broker.port)
    ward.health("online", T0, T0 + 30)
    assert wait_until(center.fleet.cameras, 10)
    postgres_server.pause()  # the database goes away: messages wait, unacknowledged
    try:
        ward.change("online", "offline", since=T0 + 40, at=T0 + 42, problems=("unreachable",))
        ward.health("offline", T0 + 40, T0 + 60, ("unreachable",))
        assert wait_until(lambda: center.store_errors > 0, 10)
        assert center.stats()["store_error"]
    finally:
        postgres_server.resume()
    assert wait_until(lambda: center.ingest.events == 1 and not center.stats()["store_error"], 20), center.stats()
    ivs = center.fleet.timeline("w1", "c1", T0, T0 + 60)
    assert ivs == [Interval(T0, T0 + 40, "online"), Interval(T0 + 40, T0 + 60, "offline", ("unreachable",))]
    center.stop()
    center.store.close()
    ward.stop()
