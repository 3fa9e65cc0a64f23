"""The center tells the truth when a ward dies, its uplink drops, or its history arrives late.

Messages are built by the agent's own payload builders and go through the
center's ingest into a real store (SQLite and PostgreSQL).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Iterator
from typing import Any, cast

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import health_message, stats_message

from agent.health.state import Change
from agent.publish.payloads import agent_payload, encode, event_payload
from center.fleet import Fleet
from center.ingest import Ingest
from center.store import Store
from center.timeline import Interval
from center.uptime import uptime
from contract.vocab import State

T0 = 1_764_000_000.0
U = 90.0
STARTED = T0 - 3600.0  # the agent process started an hour before T0


class Center:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.ingest = Ingest(store)
        self.fleet = Fleet(store, unknown_after_s=U)

    def take(self, topic: str, payload: bytes, now: float) -> None:
        self.ingest.add(f"camwatch/w1/{topic}", payload, now)
        self.ingest.flush()

    def timeline(self, begin: float, end: float, camera: str = "c1") -> list[Interval]:
        return self.fleet.timeline("w1", camera, T0 + begin, T0 + end)


def ivs(*spans: tuple[float, float, str] | tuple[float, float, str, tuple[str, ...]]) -> list[Interval]:
    return [Interval(T0 + s[0], T0 + s[1], cast(State, s[2]), s[3] if len(s) > 3 else ()) for s in spans]


def status(state: str, at: float, seq: int | None, reason: str | None = None, **kw: Any) -> bytes:
    p = agent_payload(
        ward="w1",
        state=state,
        version="1",
        cameras=["c1", "c2"],
        started_at=kw.pop("started_at", STARTED),
        now_wall=T0 + at,
        reason=reason,
        hostname=kw.pop("hostname", "ward-pc"),
    )
    if seq is not None:
        p["seq"] = seq
    return encode(p)


def health(state: str, since: float, at: float, problems: tuple[str, ...] = (), camera: str = "c1") -> bytes:
    return health_message(camera, camera, state, T0 + since, T0 + at, problems)


def change(
    frm: str,
    to: str,
    from_since: float,
    since: float,
    at: float,
    problems: tuple[str, ...] = (),
    camera: str = "c1",
    from_problems: tuple[str, ...] = (),
) -> bytes:
    """A state change as the outbox replays it after a cut."""
    c = Change(
        "state_changed",
        at,
        cast(State, frm),
        cast(State, to),
        problems=problems,
        from_since=from_since,
        from_problems=from_problems,
    )
    p = event_payload(
        ward="w1", camera=camera, change=c, wall=T0 + at, since_wall=T0 + since, from_since_wall=T0 + from_since
    )
    return encode({**p, "replayed": True})


def stats(at: float) -> bytes:
    return stats_message(T0 + at)


def _ts(at: float) -> str:
    from agent.clock import rfc3339

    return rfc3339(T0 + at)


@pytest.fixture
def center(store_url: str) -> Iterator[Center]:
    s = Store(store_url)
    yield Center(s)
    s.close()


def live_until(center: Center, end: float, seq: int = 1) -> None:
    """A ward agent connected at 0: birth, then every camera online with heartbeats every 30 s up to ``end``."""
    center.take("agent/status", status("online", 0, seq), T0)
    for t in range(0, int(end) + 1, 30):
        for cam in ("c1", "c2"):
            center.take(f"{cam}/health", health("online", 0, t, camera=cam), T0 + t)


def test_a_last_will_makes_the_ward_unknown_from_its_last_word_at_once(center: Center) -> None:
    live_until(center, 300)
    center.take("agent/stats", stats(312), T0 + 312)  # the last it said: stats
    center.take("agent/status", status("offline", 0, 1, "lost"), T0 + 335)  # the broker's will, built at 0
    assert center.timeline(0, 400) == ivs((0, 312, "online"), (312, 400, "unknown"))
    now = center.fleet.states(T0 + 336)
    assert now[("w1", "c1")] == Interval(T0 + 312, T0 + 336, "unknown")  # at once, not 90 s later
    agent = center.store.agents()["w1"]
    assert (agent.state, agent.reason, agent.ts) == ("offline", "lost", T0 + 312)  # gone since its last word


def test_after_the_cut_the_agent_fills_it_with_what_it_saw(center: Center) -> None:
    live_until(center, 300)
    center.take("agent/status", status("offline", 0, 1, "lost"), T0 + 330)
    # c2 died during the cut: its change is replayed; c1 stayed online (its health since 0, said after the cut).
    center.take("agent/status", status("online", 500, 2), T0 + 500)
    center.take("c1/health", health("online", 0, 500), T0 + 500)
    center.take("c2/events", change("online", "offline", 0, 350, 355, ("unreachable",), camera="c2"), T0 + 501)
    center.take("c2/health", health("offline", 350, 500, ("unreachable",), camera="c2"), T0 + 501)
    assert center.timeline(0, 500) == ivs((0, 500, "online"))  # no unknown: it kept watching
    assert center.timeline(0, 500, "c2") == ivs((0, 350, "online"), (350, 500, "offline", ("unreachable",)))
    assert center.store.agents()["w1"].state == "online"


def test_a_chain_of_replayed_changes_accounts_for_every_second(center: Center) -> None:
    live_until(center, 300)
    center.take("agent/status", status("offline", 0, 1, "lost"), T0 + 330)  # uplink cut after 300
    center.take("agent/status", status("online", 2000, 2), T0 + 2000)
    center.take("c1/health", health("online", 1300, 2000), T0 + 2000)
    # Only events tell the cut: online -> degraded (blurred) at 400 -> online at 1300; no heartbeat in between.
    center.take("c1/events", change("online", "degraded", 0, 400, 430, ("blurred",)), T0 + 2001)
    center.take("c1/events", change("degraded", "online", 400, 1300, 1305, from_problems=("blurred",)), T0 + 2002)
    got = center.timeline(0, 2000)
    assert got == ivs((0, 400, "online"), (400, 1300, "degraded", ("blurred",)), (1300, 2000, "online"))
    up = uptime(got, T0, T0 + 2000)
    assert (up.online_s, up.degraded_s, up.unknown_s) == (1100, 900, 0)


def test_statuses_of_an_old_connection_are_not_believed(center: Center) -> None:
    live_until(center, 60)
    center.take("agent/status", status("online", 100, 2), T0 + 100)  # it reconnected (seq 2)...
    center.take("c1/health", health("online", 0, 100), T0 + 100)
    center.take("agent/status", status("offline", 0, 1, "lost"), T0 + 101)  # ...then the old connection's will
    assert center.store.agents()["w1"].state == "online"
    assert center.fleet.states(T0 + 102)[("w1", "c1")].state == "online"
    assert center.ingest.stale_status == 1
    center.take("agent/status", status("offline", 100, 2, "lost"), T0 + 200)  # its own will: gone
    center.take("agent/status", status("online", 50, 1), T0 + 201)  # a birth of the old connection, late
    assert center.store.agents()["w1"].state == "offline" and center.ingest.stale_status == 2


def test_a_restarted_process_is_newer_than_any_connection_of_the_old_one(center: Center) -> None:
    center.take("agent/status", status("online", 0, 7), T0)
    center.take("agent/status", status("online", 60, 1, started_at=T0 + 50), T0 + 60)  # restarted at 50
    center.take("agent/status", status("offline", 0, 7, "lost"), T0 + 61)  # the old process's will, late
    assert center.store.agents()["w1"].state == "online"


def test_two_agents_claiming_one_ward_and_statuses_without_seq(
    center: Center, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "center.ingest")
    center.take("agent/status", status("online", 0, 1, started_at=T0 - 10, hostname="pc-b"), T0)
    for i in range(3):  # the older process keeps speaking: always the older one, whatever the order
        center.take("agent/status", status("online", 10 + i, 1, started_at=T0 - 900, hostname="pc-a"), T0 + 10 + i)
    assert center.store.agents()["w1"].hostname == "pc-b" and center.ingest.stale_status == 3
    assert sum("two agents claim it" in r.getMessage() for r in caplog.records) == 1  # said once
    center.take("agent/status", status("offline", 20, None, "lost"), T0 + 20)  # no seq: ordered oldest
    center.take("agent/status", b'{"schema":"camwatch.agent/1","state":"online","ts":"x"}', T0 + 21)
    assert center.ingest.unsequenced == 1 and center.ingest.bad == 1
    assert center.store.agents()["w1"].state == "online"


# -- any order of arrival a real broker can produce gives one account ------------------------


def _scenario(rng: random.Random) -> tuple[list[tuple[str, bytes]], list[tuple[str, bytes]], bytes, list[Interval]]:
    """Connection 1's live messages, connection 2's (birth first), the old will, and the truth."""
    first = [("agent/status", status("online", 0, 1))]
    first += [("c1/health", health("online", 0, t)) for t in range(0, 301, 30)]
    states = ["online"]
    sinces = [0.0]
    problems: list[tuple[str, ...]] = [()]
    t = 300.0
    for _ in range(rng.randint(0, 4)):
        t += rng.choice([20.0, 60.0, 300.0])
        nxt = rng.choice([s for s in ("online", "degraded", "offline") if s != states[-1]])
        states.append(nxt)
        sinces.append(t)
        problems.append({"online": (), "degraded": ("blurred",), "offline": ("stalled",)}[nxt])
    second: list[tuple[str, bytes]] = [("agent/status", status("online", 2000, 2))]
    rest = [("c1/health", health(states[-1], sinces[-1], at, problems[-1])) for at in (2000, 2030)]
    for i in range(1, len(states)):
        rest.append(
            (
                "c1/events",
                change(
                    states[i - 1],
                    states[i],
                    sinces[i - 1],
                    sinces[i],
                    sinces[i] + 5,
                    problems[i],
                    "c1",
                    problems[i - 1],
                ),
            )
        )
    rng.shuffle(rest)  # replayed changes and the new connection's health interleave as the drain goes
    second += rest
    will = status("offline", 0, 1, "lost")
    truth = [
        Interval(
            T0 + sinces[i], T0 + (sinces[i + 1] if i + 1 < len(states) else 2030), cast(State, states[i]), problems[i]
        )
        for i in range(len(states))
    ]
    return first, second, will, truth


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10_000), will_at=st.integers(0, 20))
def test_wills_births_and_replayed_chains_give_one_account_in_any_order(
    tmp_path_factory: pytest.TempPathFactory, seed: int, will_at: int
) -> None:
    first, second, will, truth = _scenario(random.Random(seed))
    # The old connection's will comes after all it said, anywhere among the new connection's messages.
    at = min(will_at, len(second))
    arrival = [*first, *second[:at], ("agent/status", will), *second[at:]]
    store = Store(f"sqlite:///{tmp_path_factory.mktemp('s')}/c.db")
    try:
        center = Center(store)
        for i, (topic, payload) in enumerate(arrival):
            center.take(topic, payload, T0 + 2030 + i)
        got = center.timeline(0, 2030)
        merged: list[Interval] = []
        for iv in truth:  # equal neighbours join
            if merged and (merged[-1].state, merged[-1].problems) == (iv.state, iv.problems):
                merged[-1] = Interval(merged[-1].start, iv.end, iv.state, iv.problems)
            else:
                merged.append(iv)
        assert got == merged
        assert store.agents()["w1"].state == "online"
    finally:
        store.close()
