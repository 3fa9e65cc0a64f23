"""A camera's state over time, told truthfully, from what the agents asserted.

Every contract message asserts that a camera was in some state over a span:

- a health message: ``state`` held from its ``since`` to its ``ts``;
- a ``state_changed`` event: ``to`` held from its ``since`` (when the change
  really happened, e.g. the last packet of a camera that died) to its ``ts``;
- an agent's last will: every camera of that ward is ``unknown`` from then on.

An assertion stays true for ``unknown_after_s`` past its end (heartbeats
come every 30 s); after that, with nothing newer, the camera is ``unknown``
— never ``offline``: silence is not evidence of an outage. Where assertions
overlap, the one that started later wins (it is newer knowledge of what
happened from then on); for the same start, the one that reaches further.

Pure functions: messages may come late, twice or out of order; the result
depends only on the set of assertions, not on their arrival order.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

State = Literal["online", "degraded", "offline", "unknown"]
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
# of the same instant): the more severe wins, whatever order they came in.
SEVERITY = {"offline": 0, "degraded": 1, "online": 2, "unknown": 3}


def _order(a: Assertion) -> tuple[float, float, int, tuple[str, ...]]:
    return (a.start, a.end, SEVERITY[a.state], a.problems)


def intervals(assertions: Iterable[Assertion], begin: float, end: float, unknown_after_s: float) -> list[Interval]:
    """The camera's states over [begin, end): consecutive, non-overlapping, covering it exactly."""
    if end <= begin:
        return []
    items = sorted(assertions, key=_order)
    # Boundaries where the winner may change: every start and every end of validity.
    points = {begin, end}
    for a in items:
        for p in (a.start, a.end + unknown_after_s):
            if begin < p < end:
                points.add(p)
    cuts = sorted(points)
    out: list[Interval] = []
    # Sweep: assertions enter when they start; the winner is the latest start still valid.
    heap: list[tuple[float, float, int, tuple[str, ...], int]] = []  # (-start, -valid_until, rank, problems, index)
    i = 0
    for lo, hi in itertools.pairwise(cuts):
        while i < len(items) and items[i].start <= lo:
            a = items[i]
            heapq.heappush(heap, (-a.start, -(a.end + unknown_after_s), SEVERITY[a.state], a.problems, i))
            i += 1
        while heap and -heap[0][1] <= lo:
            heapq.heappop(heap)  # expired (stale) at the top: an older one below may still hold
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
