"""The health verdict of one camera: a small state machine over packet stats.

Pure logic: it is fed :class:`~agent.stream.stats.StreamSnapshot` values and
``now`` from a monotonic clock the caller owns, so tests drive time directly.
Liveness is judged from the time of the last packet on this clock, never by
waiting for a blocked read to return.

States: ``unknown`` (before the first verdict), ``online``, ``degraded``
(online with problems such as ``low_fps``), ``offline`` (one of the offline
reasons). Extra image problems (issue: image health) come in through
``extra_problems`` and degrade an online camera the same way.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from agent.health.debounce import Debounce
from agent.stream.stats import StreamSnapshot
from contract.vocab import FAILURE_REASONS, State

OFFLINE_REASONS = FAILURE_REASONS
BEHIND_PATIENCE = 6.0  # how many offline_after_s a reader that is behind may take to catch up


@dataclass(frozen=True)
class Thresholds:
    offline_after_s: float = 5.0
    online_after_s: float = 2.0
    low_fps_ratio: float = 0.5
    low_fps_after_s: float = 10.0
    clear_after_s: float = 5.0


@dataclass(frozen=True)
class Verdict:
    state: State
    problems: tuple[str, ...]
    since: float  # monotonic time at which this state began
    detail: str = ""


@dataclass(frozen=True)
class Change:
    """Something an operator should hear about; becomes an MQTT event."""

    type: Literal["state_changed", "problem_started", "problem_ended"]
    at: float  # monotonic
    from_state: State | None = None
    to_state: State | None = None
    problem: str | None = None
    problems: tuple[str, ...] = field(default_factory=tuple)
    detail: str = ""
    from_since: float | None = None  # state_changed: when the old state began (monotonic)
    from_problems: tuple[str, ...] = ()  # state_changed: the old state's problems


class HealthMachine:
    """One camera's verdict over time."""

    def __init__(self, thresholds: Thresholds, started: float) -> None:
        self.t = thresholds
        self.started = started
        self.verdict = Verdict("unknown", (), started)
        self._low_fps = Debounce(thresholds.low_fps_after_s, thresholds.clear_after_s)

    # Long: The state machine's one transition: every rule of the health semantics, in the order it applies.
    def update(  # noqa: PLR0915
        self,
        s: StreamSnapshot,
        now: float,
        extra_problems: Iterable[str] = (),
        evidence: Mapping[str, str] | None = None,
    ) -> list[Change]:
        """Advance to ``now`` given the latest stream snapshot; return what changed.

        ``evidence``: for problems found elsewhere (the picture's), why, in words: it goes in the
        events' and the health's ``detail`` so an installer sees what was measured.
        """
        evidence = evidence or {}
        old = self.verdict
        t = self.t
        if s.pending and old.state == "unknown":
            return []  # its reader has not begun: nothing is known yet
        age = None if s.last_packet is None else now - s.last_packet
        # A reader that is behind (waiting for the CPU, its packets in its socket) is not a silent
        # camera; only a reader that has not caught up for far longer is (a hung reader).
        patience = t.offline_after_s * (BEHIND_PATIENCE if s.behind else 1.0)
        recent = age is not None and age < patience
        flowing = recent and s.flow_since is not None and now - s.flow_since >= t.online_after_s
        failed_after_last_packet = s.failure is not None and (
            s.last_packet is None or (s.failure_at is not None and s.failure_at >= s.last_packet)
        )

        new_state: State
        problems: tuple[str, ...]
        detail = ""
        alive = recent if old.state in ("online", "degraded") else flowing
        if alive:
            self._low_fps.update(self._fps_low(s), now)
            found = set(extra_problems)
            if self._low_fps.reported:
                found.add("low_fps")
            problems = tuple(sorted(found))
            new_state = "degraded" if problems else "online"
            detail = "; ".join(f"{p}: {evidence[p]}" for p in problems if evidence.get(p))
        else:
            self._low_fps.reset()
            if recent and old.state in ("offline", "unknown"):
                # Packets flow (back, or for the first time after a slow start): wait online_after_s
                # before saying so, and never call a camera whose packets are arriving stalled.
                return []
            trying_since = self.started if s.started_at is None else max(self.started, s.started_at)
            # A refusal (wrong password, no such path, no video, port closed) is known at once; a server
            # slow to answer (an NVR opening many channels at once) is only a stall after offline_after_s.
            definitive = failed_after_last_packet and s.failure != "stalled"
            dead = old.state != "unknown" or definitive or now - trying_since >= patience
            if not dead:
                return []
            reason = s.failure if failed_after_last_packet and s.failure else "stalled"
            problems = (reason,)
            if failed_after_last_packet:
                detail = s.failure_detail
            else:
                detail = f"no packet for {t.offline_after_s:g} s" if s.last_packet is not None else "no packet yet"
            new_state = "offline"

        if new_state == old.state:
            since = old.since
        elif new_state == "offline":
            # The camera died when its last packet came, not when we noticed.
            since = s.last_packet if s.last_packet is not None and s.last_packet > old.since else now
        elif old.state in ("unknown", "offline") and s.flow_since is not None:
            since = s.flow_since  # up since packets began to flow again
        else:
            since = now

        self.verdict = Verdict(new_state, problems, since, detail)
        changes: list[Change] = []
        if new_state != old.state:
            changes.append(
                Change(
                    "state_changed",
                    now,
                    old.state,
                    new_state,
                    problems=problems,
                    detail=detail,
                    from_since=old.since,
                    from_problems=old.problems,
                )
            )
        for p in sorted(set(old.problems) - set(problems)):
            changes.append(Change("problem_ended", now, problem=p, problems=problems))
        for p in sorted(set(problems) - set(old.problems)):
            why = f"{p}: {evidence[p]}" if evidence.get(p) else detail
            changes.append(Change("problem_started", now, problem=p, problems=problems, detail=why))
        return changes

    def _fps_low(self, s: StreamSnapshot) -> bool:
        if not s.fps_window_full or s.fps is None or not s.nominal_fps:
            return False
        if self._low_fps.reported:
            # Hysteresis: clear only once clearly above the threshold.
            return s.fps < s.nominal_fps * min(0.95, self.t.low_fps_ratio * 1.2)
        return s.fps < s.nominal_fps * self.t.low_fps_ratio
