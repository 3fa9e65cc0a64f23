"""The center's time-keeping: intervals from assertions, and uptime over a period (pure, property-tested)."""

from __future__ import annotations

import itertools
import random
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from center.timeline import FOREVER, Assertion, Interval, intervals, merge_heartbeats
from center.uptime import Uptime, outages, uptime

U = 90.0  # unknown_after_s


def test_heartbeats_then_silence_then_unknown() -> None:
    beats = [Assertion(0, t, "online") for t in range(0, 301, 30)]  # heartbeats every 30 s until 300
    ivs = intervals(merge_heartbeats(beats), 0, 1000, U)
    assert ivs == [Interval(0, 390, "online"), Interval(390, 1000, "unknown")]  # silent: unknown, not offline


def test_a_dead_camera_is_offline_from_its_last_packet() -> None:
    facts = [
        Assertion(0, 600, "online"),
        Assertion(540, 600, "offline", ("stalled",)),  # noticed at 600, died at 540 (last packet)
        Assertion(540, 900, "offline", ("stalled",)),
    ]
    ivs = intervals(facts, 0, 900, U)
    assert ivs == [Interval(0, 540, "online"), Interval(540, 900, "offline", ("stalled",))]
    up = uptime(ivs, 0, 900)
    assert up.offline_s == 360 and up.availability == 540 / 900


def test_last_will_makes_the_ward_unknown_until_the_agent_is_back() -> None:
    facts = [Assertion(0, 1000, "online"), Assertion(1000, FOREVER, "unknown"), Assertion(1600, 1800, "online")]
    ivs = intervals(facts, 0, 1800, U)
    assert ivs == [Interval(0, 1000, "online"), Interval(1000, 1600, "unknown"), Interval(1600, 1800, "online")]
    up = uptime(ivs, 0, 1800)
    assert up.unknown_s == 600 and up.offline_s == 0 and up.availability == 1.0


def test_maintenance_is_left_out_of_the_denominator() -> None:
    ivs = [Interval(0, 1000, "online"), Interval(1000, 2000, "offline", ("unreachable",))]
    up = uptime(ivs, 0, 2000, maintenance=[(1000, 1500)])  # half the outage was planned work
    assert up.maintenance_s == 500 and up.offline_s == 500
    assert up.availability == 1000 / 1500
    assert up.online_s + up.degraded_s + up.offline_s + up.unknown_s + up.maintenance_s == 2000


def test_outages_join_changing_reasons_and_say_ongoing() -> None:
    ivs = [
        Interval(0, 100, "online"),
        Interval(100, 200, "offline", ("stalled",)),
        Interval(200, 300, "offline", ("unreachable",)),
        Interval(300, 400, "online"),
        Interval(400, 500, "offline", ("auth_failed",)),
    ]
    found = outages(ivs, now=500)
    assert [(o.start, o.end, o.reasons) for o in found] == [
        (100, 300, ("stalled", "unreachable")),
        (400, None, ("auth_failed",)),
    ]
    assert found[1].duration_s(now=560) == 160


def test_ward_figures_add_camera_seconds() -> None:
    a = uptime([Interval(0, 100, "online")], 0, 100)
    b = uptime([Interval(0, 50, "offline"), Interval(50, 100, "online")], 0, 100)
    ward = a + b
    assert ward.period_s == 200 and ward.availability == 150 / 200
    assert Uptime(0).availability is None  # nothing known: no figure, not 0 %


# -- properties ---------------------------------------------------------------------------

states = st.sampled_from(["online", "degraded", "offline", "unknown"])
assertions = st.builds(
    lambda s, d, state, will: Assertion(s, FOREVER if will else s + d, state),
    st.integers(0, 5000).map(float),
    st.integers(0, 2000).map(float),
    states,
    st.integers(0, 9).map(lambda n: n == 0),  # now and then an agent's last will (holds for ever)
)


@settings(max_examples=300, deadline=None)
@given(st.lists(assertions, max_size=25), st.integers(0, 3000), st.integers(1, 6000), st.randoms())
def test_intervals_cover_the_period_exactly_and_ignore_arrival_order(
    facts: list[Assertion], begin: int, length: int, rnd: random.Random
) -> None:
    end = begin + length
    ivs = intervals(facts, begin, end, U)
    assert ivs[0].start == begin and ivs[-1].end == end
    for a, b in itertools.pairwise(ivs):
        assert a.end == b.start and a.start < a.end
        assert (a.state, a.problems) != (b.state, b.problems)  # merged when equal
    shuffled = facts[:]
    rnd.shuffle(shuffled)
    assert intervals(shuffled + facts[:3], begin, end, U) == ivs  # late, repeated, out of order: same answer
    if not any(f.state == "offline" for f in facts):
        assert all(iv.state != "offline" for iv in ivs)  # unknown is never counted as offline


windows = st.lists(st.tuples(st.integers(0, 8000), st.integers(0, 3000)).map(lambda t: (t[0], t[0] + t[1])), max_size=4)


@settings(max_examples=300, deadline=None)
@given(st.lists(assertions, max_size=25), st.integers(0, 3000), st.integers(0, 6000), windows)
def test_uptime_parts_add_up_to_the_period(
    facts: list[Assertion], begin: int, length: int, maint: list[tuple[int, int]]
) -> None:
    end = begin + length
    up = uptime(intervals(facts, begin, end, U), begin, end, [(float(a), float(b)) for a, b in maint])
    parts = up.online_s + up.degraded_s + up.offline_s + up.unknown_s + up.maintenance_s
    assert abs(parts - length) < 1e-6
    assert min(up.online_s, up.degraded_s, up.offline_s, up.unknown_s, up.maintenance_s) >= -1e-9
    if up.availability is not None:
        assert 0 <= up.healthy <= up.availability <= 1  # type: ignore[operator]


def test_same_span_different_states_the_more_severe_wins_in_any_order() -> None:
    a = Assertion(0, 100, "online")
    b = Assertion(0, 100, "offline", ("stalled",))
    assert intervals([a, b], 0, 100, U) == intervals([b, a], 0, 100, U) == [Interval(0, 100, "offline", ("stalled",))]


def test_background_work_gives_way_only_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    import center.background as bg

    slept: list[float] = []
    monkeypatch.setattr(time, "sleep", slept.append)  # the time module center.background sleeps with
    for i in range(100):
        bg.give_way(i)
    assert slept == []  # a page request computing for itself never waits
    with bg.in_background():
        for i in range(100):
            bg.give_way(i)
    assert slept == [0] * 4  # every 32 items
    bg.give_way(0)
    assert len(slept) == 4


def test_the_center_collects_garbage_less_often_once_up() -> None:
    import subprocess
    import sys

    code = (
        "import gc; from center.background import GC_THRESHOLDS, tune_gc; tune_gc(); "
        "print(gc.get_threshold() == GC_THRESHOLDS, gc.get_freeze_count() > 1000)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.split() == ["True", "True"]  # in its own process: the tests' own GC is left alone
