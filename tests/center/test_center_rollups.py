"""Daily rollups: long periods added up from whole days give the same seconds as replaying every assertion.

Whatever arrives late — a replayed state change in a day already rolled up, a
heartbeat that ends a silence, two assertions sharing a start — the figures
from rollups must equal the figures worked out from the assertions alone.
"""

from __future__ import annotations

import random
import tempfile
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from center.fleet import Fleet
from center.periods import whole_days
from center.store import MaintenanceRow, Store, WriteBatch
from center.timeline import FOREVER, Assertion
from center.uptime import Uptime
from center.views import ROLLUP_FROM_CAMERAS, uptime_table
from contract.vocab import State

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
DAY = 86400.0
DAY0 = datetime(2026, 11, 1, tzinfo=TZ).timestamp()  # a local midnight
CAMS = [(f"w{i % 3}", f"c{i:02d}") for i in range(ROLLUP_FROM_CAMERAS + 4)]  # enough to use rollups
U = 90.0


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    s = Store(store_url)
    yield s
    s.close()


def put(store: Store, facts: list[tuple[str, str, Assertion]], received: float = DAY0) -> None:
    batch = WriteBatch.empty(received)
    for ward, camera, a in facts:
        batch.camera(ward, camera, None, min(a.start, received))
        batch.assertion(ward, camera, a)
    store.write(batch)


def same_either_way(
    store: Store, begin: float, end: float, maintenance: Sequence[MaintenanceRow] = ()
) -> dict[tuple[str, str | None], Uptime]:
    """Uptime per camera from rollups and from the assertions alone; asserts they agree; returns the rolled-up."""
    fleet = Fleet(store, U)
    cams = fleet.cameras()
    rolled, wards_r, city_r = uptime_table(fleet, cams, list(maintenance), begin, end, tz=TZ)
    replayed, wards_p, city_p = uptime_table(fleet, cams, list(maintenance), begin, end)  # no tz: no rollups
    for r, p in zip([*rolled, *wards_r], [*replayed, *wards_p], strict=True):
        assert (r.ward, r.camera) == (p.ward, p.camera)
        for field in ("period_s", "online_s", "degraded_s", "offline_s", "unknown_s", "maintenance_s"):
            assert getattr(r.uptime, field) == pytest.approx(getattr(p.uptime, field), abs=1e-6), (r.camera, field)
    assert city_r.online_s == pytest.approx(city_p.online_s, abs=1e-5)
    return {(r.ward, r.camera): r.uptime for r in rolled}


def test_whole_days_are_the_local_days_inside_a_period() -> None:
    assert whole_days(DAY0, DAY0 + 3 * DAY, TZ) == [(DAY0 + i * DAY, DAY0 + (i + 1) * DAY) for i in range(3)]
    assert whole_days(DAY0 + 1, DAY0 + 3 * DAY - 1, TZ) == [(DAY0 + DAY, DAY0 + 2 * DAY)]
    assert whole_days(DAY0 + 10, DAY0 + DAY + 10, TZ) == []


def test_late_facts_make_rollups_stale_and_figures_stay_exact(store: Store) -> None:
    # Every camera online from day 0; one offline across a midnight; one silent for two hours; one silent
    # from day 3 on (its uplink was cut: what it saw comes later).
    put(store, [(w, c, Assertion(DAY0, DAY0 + 5 * DAY, "online")) for w, c in CAMS[3:]])
    put(store, [(*CAMS[2], Assertion(DAY0, DAY0 + 3 * DAY, "online"))])
    gone = [("w9", "x1"), ("w9", "x2")]  # a ward whose agent is last heard from at day 4.5
    put(store, [(w, c, Assertion(DAY0, DAY0 + 4.5 * DAY, "online")) for w, c in gone])
    w0, c0 = CAMS[0]
    put(store, [(w0, c0, Assertion(DAY0, DAY0 + 1.9 * DAY, "online"))])
    put(store, [(w0, c0, Assertion(DAY0 + 1.9 * DAY, DAY0 + 2.2 * DAY, "offline", ("no_packets",)))])
    put(store, [(w0, c0, Assertion(DAY0 + 2.2 * DAY, DAY0 + 5 * DAY, "degraded", ("blurred",)))])
    w1, c1 = CAMS[1]
    put(store, [(w1, c1, Assertion(DAY0, DAY0 + 2 * DAY + 3600, "online"))])
    now = DAY0 + 5 * DAY
    begin = DAY0 + 0.5 * DAY
    first = same_either_way(store, begin, now)
    assert len(store.rollups(DAY0, now, U)[(w0, c0)]) == 4  # days 1-4 whole inside the period
    assert first[(w0, c0)].offline_s == pytest.approx(0.3 * DAY)  # the one known later wins at once

    # A replayed state change in a day already rolled up, and the health after the cut.
    w2, c2 = CAMS[2]
    assert first[(w2, c2)].unknown_s == pytest.approx(2 * DAY - U)
    put(store, [(w2, c2, Assertion(DAY0 + 3 * DAY, DAY0 + 3 * DAY + 600, "offline", ("refused",)))], now)
    put(store, [(w2, c2, Assertion(DAY0 + 3 * DAY + 600, DAY0 + 5 * DAY, "online"))], now)
    second = same_either_way(store, begin, now)
    assert second[(w2, c2)].offline_s == pytest.approx(600)
    assert second[(w2, c2)].unknown_s == 0
    assert second[(w0, c0)] == first[(w0, c0)]  # other cameras' rollups untouched

    # A heartbeat that ends camera 1's silence: same since, so the silence was online after all.
    assert first[(w1, c1)].unknown_s > 2 * DAY
    put(store, [(w1, c1, Assertion(DAY0, DAY0 + 5 * DAY, "online"))], now)
    third = same_either_way(store, begin, now)
    assert third[(w1, c1)].unknown_s == 0

    # Two assertions with one start: the one reaching further wins, and that can flip later.
    w3, c3 = CAMS[3]
    put(store, [(w3, c3, Assertion(DAY0, DAY0 + 6 * DAY, "offline", ("no_packets",)))], now)
    assert same_either_way(store, begin, now)[(w3, c3)].offline_s == pytest.approx(now - begin)
    put(store, [(w3, c3, Assertion(DAY0, DAY0 + 7 * DAY, "online"))], now)
    assert same_either_way(store, begin, now)[(w3, c3)].online_s == pytest.approx(now - begin)

    # The same, both arriving in one batch (neither is in the database yet when the batch is checked).
    w4, c4 = CAMS[4]
    put(
        store,
        [
            (w4, c4, Assertion(DAY0 + DAY / 2, DAY0 + 6 * DAY, "offline")),
            (w4, c4, Assertion(DAY0 + DAY / 2, DAY0 + 2 * DAY, "online")),
        ],
        now,
    )
    assert same_either_way(store, begin, now)[(w4, c4)].offline_s == pytest.approx(now - begin)
    put(store, [(w4, c4, Assertion(DAY0 + DAY / 2, DAY0 + 7 * DAY, "online"))], now)
    assert same_either_way(store, begin, now)[(w4, c4)].online_s == pytest.approx(now - begin)

    # A ward's agent died (last will): unknown from when it was last heard from, in days already rolled up.
    assert all(third[k].unknown_s == pytest.approx(0.5 * DAY - U) for k in gone)
    put(store, [(w, c, Assertion(DAY0 + 4.5 * DAY, FOREVER, "unknown")) for w, c in gone], now)
    fourth = same_either_way(store, begin, now)
    assert all(fourth[k].unknown_s == pytest.approx(0.5 * DAY) for k in gone)
    # A will older than what the agents said afterwards (their later heartbeats) changes nothing.
    put(store, [(w, c, Assertion(DAY0 + 4.5 * DAY, FOREVER, "unknown")) for w, c in CAMS if w == "w1"], now)
    assert same_either_way(store, begin, now) == fourth


def test_a_row_known_later_after_a_heartbeat_flips_rolled_up_days_before_its_old_end(store: Store) -> None:
    """A heartbeat makes its row known later: it may now beat a rival before its old end, in a rolled-up day."""
    put(store, [(w, c, Assertion(DAY0, DAY0 + 4 * DAY, "online")) for w, c in CAMS[1:]])
    w, c = CAMS[0]
    put(store, [(w, c, Assertion(DAY0, DAY0 + 2 * DAY, "online"))])
    put(store, [(w, c, Assertion(DAY0 + 1.5 * DAY, DAY0 + 2.5 * DAY, "offline", ("stalled",)))])  # known at 2.5 d
    now = DAY0 + 4 * DAY
    before = same_either_way(store, DAY0, now)[(w, c)]
    assert before.offline_s == pytest.approx(DAY + U)  # valid U past its end, then unknown
    put(store, [(w, c, Assertion(DAY0, DAY0 + 4 * DAY, "online"))], now)  # "online since day 0", said at day 4
    after = same_either_way(store, DAY0, now)[(w, c)]
    assert after.offline_s == 0 and after.online_s == pytest.approx(4 * DAY)


def test_maintenance_and_a_month_with_partial_ends(store: Store) -> None:
    rng = random.Random(3)
    facts = []
    for w, c in CAMS:
        t = DAY0 - 2 * DAY
        while t < DAY0 + 40 * DAY:
            length = rng.uniform(600, 2 * DAY)
            state: State = rng.choice(["online", "online", "degraded", "offline"])
            facts.append((w, c, Assertion(t, t + length, state)))
            t += length + rng.choice([0, 0, 0, 300])
    put(store, facts)
    maint = [MaintenanceRow(1, CAMS[4][0], CAMS[4][1], DAY0 + 3 * DAY, DAY0 + 3.5 * DAY, "", "admin")]
    month = same_either_way(store, DAY0 + 0.3 * DAY, DAY0 + 30.7 * DAY, maint)
    assert month[CAMS[4]].maintenance_s == pytest.approx(0.5 * DAY)
    again = same_either_way(store, DAY0 + 0.3 * DAY, DAY0 + 30.7 * DAY, maint)  # now from rollups kept
    assert again == month


def test_a_rollup_computed_while_a_late_fact_arrives_is_not_kept(store: Store) -> None:
    w, c = CAMS[0]
    put(store, [(w, c, Assertion(DAY0, DAY0 + 3 * DAY, "online"))])
    token = store.claim_rollups(DAY0 + 2 * DAY)
    put(store, [(w, c, Assertion(DAY0 + DAY, DAY0 + DAY + 60, "offline"))], DAY0 + 3 * DAY)  # lands meanwhile
    from center.store import RollupRow

    assert store.put_rollups(token, U, [RollupRow(w, c, DAY0 + DAY, DAY0 + 2 * DAY, (DAY, 0, 0, 0))]) is False
    assert store.rollups(DAY0, DAY0 + 3 * DAY, U) == {}
    token = store.claim_rollups(DAY0 + 2 * DAY)
    put(store, [(w, c, Assertion(DAY0, DAY0 + 3 * DAY, "online"))], DAY0 + 3 * DAY)  # changes nothing known
    assert store.put_rollups(token, U, [RollupRow(w, c, DAY0 + DAY, DAY0 + 2 * DAY, (DAY, 0, 0, 0))]) is True


def test_rollups_survive_a_restart_and_late_facts_after_it(store_url: str) -> None:
    store = Store(store_url)
    w, c = CAMS[5]  # its uplink is cut on day 2: what it saw then comes after the restart
    put(store, [(w2, c2, Assertion(DAY0, DAY0 + 4 * DAY, "online")) for w2, c2 in CAMS if (w2, c2) != (w, c)])
    put(store, [(w, c, Assertion(DAY0, DAY0 + 2 * DAY, "online"))])
    same_either_way(store, DAY0, DAY0 + 4 * DAY)
    store.close()
    store = Store(store_url)  # a new process knows nothing of what it remembered
    try:
        put(store, [(w, c, Assertion(DAY0 + 2 * DAY, DAY0 + 2 * DAY + 60, "offline"))], DAY0 + 4 * DAY)
        put(store, [(w, c, Assertion(DAY0 + 2 * DAY + 60, DAY0 + 4 * DAY, "online"))], DAY0 + 4 * DAY)
        got = same_either_way(store, DAY0, DAY0 + 4 * DAY)[(w, c)]
        assert got.offline_s == pytest.approx(60) and got.unknown_s == 0
    finally:
        store.close()


_fact = st.tuples(
    st.one_of(st.integers(0, 2), st.integers(0, len(CAMS) - 1)),  # a few cameras get most facts
    st.one_of(  # starts on the hour, or at one of a few instants (ties, also within one batch)
        st.integers(0, 5 * 24).map(lambda h: DAY0 + h * 3600.0),
        st.sampled_from([DAY0 + 0.5 * DAY, DAY0 + 2 * DAY, DAY0 + 3.25 * DAY]),
    ),
    st.sampled_from([60.0, 3600.0, 6 * 3600.0, DAY, 2 * DAY, FOREVER]),
    st.sampled_from(["online", "degraded", "offline", "unknown"]),
)


# A heartbeat: an assertion sent before comes again reaching further (so it is known later and may now win).
_grow = st.tuples(st.integers(0, 50), st.sampled_from([60.0, 3600.0, 6 * 3600.0, DAY]))


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    steps=st.lists(st.one_of(st.lists(_fact, min_size=1, max_size=6), st.just("query"), _grow), min_size=2, max_size=14)
)
def test_rollups_equal_replaying_whatever_the_order_of_arrival(steps: list) -> None:  # type: ignore[type-arg]
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(f"sqlite:///{Path(tmp) / 'c.db'}")
        sent: list[tuple[str, str, Assertion]] = []
        try:
            put(store, [(w, c, Assertion(DAY0 - DAY, DAY0 - DAY + 1, "online")) for w, c in CAMS])  # the fleet
            for step in [*steps, "query"]:
                if step == "query":
                    same_either_way(store, DAY0 + 1800, DAY0 + 6 * DAY)
                    continue
                if isinstance(step, tuple):
                    if not sent:
                        continue
                    w, c, a = sent[step[0] % len(sent)]
                    facts = [(w, c, Assertion(a.start, a.end + step[1], a.state))]
                else:
                    facts = [(*CAMS[i], Assertion(s, s + n, state)) for i, s, n, state in step]
                sent += facts
                put(store, facts, DAY0 + 6 * DAY)
        finally:
            store.close()
