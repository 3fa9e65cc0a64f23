"""A camera's state over time, told truthfully, from what the agents asserted.

Every contract message asserts that a camera was in some state over a span:

- a health message: ``state`` held from its ``since`` to its ``ts``;
- a ``state_changed`` event: ``to`` held from its ``since`` (when the change
  really happened, e.g. the last packet of a camera that died) to its ``ts``,
  and ``from`` held from its ``from_since`` up to ``since``: a chain of them
  (replayed after a cut, with no heartbeat between) accounts for every second;
- an agent's last will: every camera of that ward is ``unknown`` from when the
  ward was last heard from, until the agent says otherwise.

An assertion stays true for ``unknown_after_s`` past its end (heartbeats
come every 30 s); after that, with nothing newer, the camera is ``unknown``
— never ``offline``: silence is not evidence of an outage.

Where assertions overlap, the one **known latest** wins: an agent's
assertion is known at its end (what the agent said at ``ts``), a last will
at its start (the ward was last heard from then; the will itself says
nothing newer). So what an agent says after a cut of its uplink — its
health ``since`` before the cut, its replayed changes — is newer knowledge
than the will and fills the cut, while a camera last heard of before the will
stays ``unknown`` after it. For the same knowledge time the later start wins,
then the more severe state.

Pure functions: messages may come late, twice or out of order; the result
depends only on the set of assertions, not on their arrival order.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterable
from dataclasses import dataclass, field

from contract.vocab import SEVERITY, STATES, State

FOREVER = float("inf")


@dataclass(frozen=True, order=True)
class Assertion:
    """``state`` held over [start, end] (UTC seconds); ``end = inf`` for a last will."""

    start: float
    end: float
    state: State = field(compare=False)
    problems: tuple[str, ...] = field(default=(), compare=False)


@dataclass(frozen=True)
class Interval:
    start: float
    end: float
    state: State
    problems: tuple[str, ...] = ()

    @property
    def seconds(self) -> float:
        return self.end - self.start


def merge_heartbeats(assertions: Iterable[Assertion]) -> list[Assertion]:
    """Compact: assertions with the same start, state and problems become one reaching the furthest.

    A camera's heartbeats all repeat the same ``since``: what is kept grows with
    its state changes, not with time.
    """
    furthest: dict[tuple[float, str, tuple[str, ...]], float] = {}
    for a in assertions:
        key = (a.start, a.state, a.problems)
        furthest[key] = max(furthest.get(key, a.end), a.end)
    return sorted(Assertion(s, e, st, p) for (s, st, p), e in furthest.items())  # type: ignore[arg-type]


# Two assertions with the same start and end that disagree (rare: two messages
# of the same instant): one that knows wins over unknown, then the more severe,
# whatever order they came in.
TIE_BREAK: dict[str, tuple[bool, int]] = {state: (state == "unknown", SEVERITY[state]) for state in STATES}


def known_at(start: float, end: float) -> float:
    """When an assertion was known: at its end, or (a last will: no end) at its start."""
    return start if end == FOREVER else end


Rank = tuple[float, float, tuple[bool, int], tuple[str, ...]]


def rank(start: float, end: float, state: State, problems: tuple[str, ...]) -> Rank:
    """Where assertions overlap the smallest rank wins: known latest, then started latest, then knowing and
    most severe."""
    return (-known_at(start, end), -start, TIE_BREAK[state], problems)


def intervals(assertions: Iterable[Assertion], begin: float, end: float, unknown_after_s: float) -> list[Interval]:
    """The camera's states over [begin, end): consecutive, non-overlapping, covering it exactly."""
    if end <= begin:
        return []
    items = sorted(assertions, key=lambda a: a.start)
    # Boundaries where the winner may change: every start and every end of validity.
    points = {begin, end}
    for a in items:
        for p in (a.start, a.end + unknown_after_s):
            if begin < p < end:
                points.add(p)
    cuts = sorted(points)
    out: list[Interval] = []
    # Sweep: assertions enter when they start; the winner is the best-ranked one still valid.
    heap: list[tuple[Rank, int]] = []  # (rank, index)
    i = 0
    for lo, hi in itertools.pairwise(cuts):
        while i < len(items) and items[i].start <= lo:
            a = items[i]
            heapq.heappush(heap, (rank(a.start, a.end, a.state, a.problems), i))
            i += 1
        while heap and items[heap[0][1]].end + unknown_after_s <= lo:
            heapq.heappop(heap)  # expired (stale) at the top: one ranked below may still hold
        state: State = "unknown"
        problems: tuple[str, ...] = ()
        if heap:
            winner = items[heap[0][-1]]
            state, problems = winner.state, winner.problems
        if out and out[-1].state == state and out[-1].problems == problems:
            out[-1] = Interval(out[-1].start, hi, state, problems)
        else:
            out.append(Interval(lo, hi, state, problems))
    return out
