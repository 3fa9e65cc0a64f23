"""The center reads the contract as the agent writes it (payloads built by the agent's own builders)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

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

T0 = 1_764_000_000.0  # wall clock of the test ward's monotonic 0


def health(state: str, since: float, at: float, problems: tuple[str, ...] = ()) -> bytes:
    return health_message("cam-1", "Cổng", state, T0 + since, T0 + at, problems)


def state_changed(to: str, since: float, at: float, problems: tuple[str, ...] = ()) -> dict[str, Any]:
    change = Change("state_changed", at, "online", to, None, problems)  # type: ignore[arg-type]
    return event_payload(ward="w1", camera="cam-1", change=change, wall=T0 + at, since_wall=T0 + since)


class Center:
    """Ingest and fleet over one store, flushing after every message (the service batches)."""

    def __init__(self, store: Store) -> None:
        self.ingest_ = Ingest(store)
        self.fleet = Fleet(store, unknown_after_s=90)

    def ingest(self, topic: str, payload: bytes, now: float) -> None:
        self.ingest_.add(topic, payload, now)
        self.ingest_.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.ingest_ if hasattr(self.ingest_, name) else self.fleet, name)


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    s = Store(store_url)
    yield s
    s.close()


def test_a_day_of_a_camera_from_contract_messages(store: Store) -> None:
    fleet = Center(store)
    for t in range(0, 601, 30):  # online, heartbeats
        fleet.ingest("camwatch/w1/cam-1/health", health("online", 0, t), now=T0 + t)
    died = state_changed("offline", since=615, at=620, problems=("stalled",))  # last packet at 615
    fleet.ingest("camwatch/w1/cam-1/events", encode(died), now=T0 + 620)
    fleet.ingest("camwatch/w1/cam-1/events", encode({**died, "replayed": True}), now=T0 + 700)  # sent twice
    for t in range(620, 1201, 30):
        fleet.ingest("camwatch/w1/cam-1/health", health("offline", 615, t, ("stalled",)), now=T0 + t)
    will = agent_payload(
        ward="w1", state="offline", version="1", cameras=["cam-1"], started_at=T0, now_wall=T0 + 1250, reason="lost"
    )
    fleet.ingest("camwatch/w1/agent/status", encode({**will, "seq": 1}), now=T0 + 1250)
    ivs = fleet.timeline("w1", "cam-1", T0, T0 + 2000)
    assert ivs == [
        Interval(T0, T0 + 615, "online"),
        Interval(T0 + 615, T0 + 1190, "offline", ("stalled",)),
        Interval(T0 + 1190, T0 + 2000, "unknown"),  # the agent is gone from its last word on: not offline
    ]
    up = uptime(ivs, T0, T0 + 2000)
    assert up.online_s == 615 and up.offline_s == 575 and up.unknown_s == 810
    assert fleet.duplicates == 1 and fleet.bad == 0
    assert fleet.state_at("w1", "cam-1", T0 + 1000).state == "offline"


def test_bad_messages_are_counted_and_future_clocks_clamped(store: Store) -> None:
    fleet = Center(store)
    fleet.ingest("camwatch/w1/cam-1/health", b"{not json", now=T0)
    fleet.ingest("camwatch/w1/cam-1/health", json.dumps({"schema": "other/9"}).encode(), now=T0)
    fleet.ingest("camwatch/w1/cam-1/health", json.dumps({"schema": "camwatch.health/1", "state": "x"}).encode(), T0)
    fleet.ingest("elsewhere/w1/cam-1/health", b"{}", now=T0)
    assert fleet.bad == 4 and not fleet.cameras()
    fleet.ingest("camwatch/w9/new-cam/health", health("online", 0, 10_000), now=T0 + 10)  # clock a day ahead
    assert fleet.clamped == 1 and [(c.ward, c.camera) for c in fleet.cameras()] == [("w9", "new-cam")]  # learned
    assert fleet.timeline("w9", "new-cam", T0, T0 + 10)[-1].state == "online"
    assert fleet.bad_reasons == {
        "health: not JSON": 1,
        "health: schema: literal_error": 1,
        "health: ward: missing": 1,
        "topic not in the contract": 1,
    }
    fleet.ingest("camwatch/w1/agent/stats", stats_message(T0), now=T0)  # asserts nothing about state
    fleet.ingest("camwatch/w1/cam-1/snapshot/abc", b"\xff\xd8", now=T0)
    assert fleet.bad == 4 and fleet.snapshots == 1 and store.snapshot("abc") == b"\xff\xd8"


def test_the_fleet_view_of_now_agrees_with_the_timeline(store: Store) -> None:
    center = Center(store)
    center.ingest("camwatch/w1/cam-1/health", health("online", 0, 300), now=T0 + 300)
    died = state_changed("offline", since=310, at=312, problems=("stalled",))
    center.ingest("camwatch/w1/cam-1/events", encode(died), now=T0 + 312)
    center.ingest("camwatch/w1/cam-1/health", health("offline", 310, 330, ("stalled",)), now=T0 + 330)
    for at in (100, 305, 311, 330, 419, 421, 5000):  # online, online, offline, offline, stale -> unknown
        now = T0 + at
        view = center.fleet.states(now)[("w1", "cam-1")]
        exact = center.fleet.state_at("w1", "cam-1", now)
        assert (view.state, view.problems, view.start) == (exact.state, exact.problems, exact.start), at


def test_many_silent_cameras_are_looked_up_in_one_query(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    import center.fleet as module
    from center.store import WriteBatch
    from center.timeline import FOREVER, Assertion

    batch = WriteBatch.empty(T0)
    for i in range(module.MANY_SILENT + 5):
        batch.camera("w1", f"cam-{i}", None, T0)
        batch.assertion("w1", f"cam-{i}", Assertion(T0, T0 + 10 * i, "online"))
        if i % 4 == 0:  # an older fact ending later, and a last will: never the "last end"
            batch.assertion("w1", f"cam-{i}", Assertion(T0 - 50, T0 + 10 * i + 5, "degraded"))
        if i % 7 == 0:
            batch.assertion("w1", f"cam-{i}", Assertion(T0 + 5000, FOREVER, "unknown"))
    batch.camera("w1", "never-asserted", None, T0 + 3)
    store.write(batch)
    fleet = Fleet(store, 90)
    now = T0 + 4000
    together = fleet.states(now)
    monkeypatch.setattr(module, "MANY_SILENT", 10_000)
    assert fleet.states(now) == together
    assert together[("w1", "cam-8")] == Interval(T0 + 85 + 90, now, "unknown")
    assert together[("w1", "never-asserted")] == Interval(T0 + 3, now, "unknown")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    facts=st.lists(
        st.tuples(
            st.integers(0, 20).map(lambda k: T0 + k * 50.0),  # starts collide often
            st.sampled_from([10.0, 100.0, 1000.0, float("inf")]),
            st.sampled_from(["online", "degraded", "offline", "unknown"]),
            st.sampled_from([(), ("stalled",), ("blurred",)]),
        ),
        min_size=1,
        max_size=12,
    ),
    at=st.integers(0, 1200).map(lambda k: T0 + k),
)
def test_the_city_wide_state_now_picks_the_timelines_winner(
    tmp_path_factory: pytest.TempPathFactory, facts: list[tuple[float, float, str, tuple[str, ...]]], at: float
) -> None:
    from center.store import WriteBatch
    from center.timeline import Assertion

    store = Store(f"sqlite:///{tmp_path_factory.mktemp('s')}/c.db")
    try:
        batch = WriteBatch.empty(T0)
        batch.camera("w1", "c1", None, T0)
        for start, length, state, problems in facts:
            batch.assertion("w1", "c1", Assertion(start, start + length, state, problems))  # type: ignore[arg-type]
        store.write(batch)
        fleet = Fleet(store, 90)
        now_view = fleet.states(at)[("w1", "c1")]
        exact = fleet.timeline("w1", "c1", at - 1e-3, at + 1e-3)[-1]
        assert (now_view.state, now_view.problems) == (exact.state, exact.problems)
    finally:
        store.close()
