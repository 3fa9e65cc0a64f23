"""Contract messages (v1) in, assertions about cameras' states out, into the store.

No MQTT here. :func:`read_message` turns one message (topic, payload) into
what it asserts (pure); :class:`Ingest` gathers what a burst of messages
asserts into one compacted batch and writes it to the :class:`Store` in one
transaction (repeated event ids are dropped by the database: at-least-once
delivery is safe); :class:`Fleet` answers what each camera's state is and was.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from center.store import AgentRow, CameraRow, EventRow, Store, WriteBatch
from center.timeline import FOREVER, Assertion, Interval, intervals

log = logging.getLogger(__name__)

STATES = ("online", "degraded", "offline", "unknown")
FUTURE_SLACK_S = 60.0  # a clock this far ahead is clamped to our time and flagged
LOOKBACK_S = 400 * 86400  # how far back "since when" may look


class BadMessage(ValueError):
    """A message that is not the contract: counted and logged, never fatal."""


def parse_ts(value: Any) -> float:
    if not isinstance(value, str):
        raise BadMessage(f"timestamp is not a string: {value!r}")
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise BadMessage(f"bad timestamp {value!r}") from None


@dataclass(frozen=True)
class Read:
    """What one message says."""

    ward: str
    camera: str | None  # None: about the whole ward (agent status)
    assertion: Assertion | None
    event_id: str | None = None
    clamped: bool = False  # its time was in the future: set to the center's time
    agent_cameras: tuple[str, ...] = ()
    name: str | None = None  # the camera's display name (health messages carry it)
    event: EventRow | None = None  # every event, stored once
    agent: AgentRow | None = None  # a ward agent's own status (birth, last will, problems)


def read_message(topic: str, payload: bytes, prefix: str, now: float) -> Read | None:
    """What a message asserts; None for messages that assert nothing about state (stats, snapshots)."""
    parts = topic.split("/")
    head = prefix.split("/")
    if parts[: len(head)] != head or len(parts) < len(head) + 3:
        raise BadMessage(f"topic {topic!r} is not under {prefix}/")
    ward, camera, kind = parts[len(head)], parts[len(head) + 1], parts[len(head) + 2]
    if kind == "snapshot" or (camera == "agent" and kind == "stats"):
        return None
    try:
        p = json.loads(payload)
    except ValueError:
        raise BadMessage(f"{topic}: not JSON") from None
    if not isinstance(p, dict):
        raise BadMessage(f"{topic}: not a JSON object")

    def clamp(t: float) -> tuple[float, bool]:
        return (now, True) if t > now + FUTURE_SLACK_S else (t, False)

    if camera == "agent" and kind == "status":
        if p.get("schema") != "camwatch.agent/1":
            raise BadMessage(f"{topic}: unknown schema {p.get('schema')!r}")
        cameras = tuple(c for c in p.get("cameras", []) if isinstance(c, str))
        state = p.get("state")
        if state not in ("online", "offline"):
            raise BadMessage(f"{topic}: unknown agent state {state!r}")
        at, clamped = clamp(parse_ts(p.get("ts")))
        agent = AgentRow(
            ward,
            state,
            _problems(p),
            str(p.get("version") or ""),
            at,
            str(p.get("reason") or ""),
            str(p.get("hostname") or ""),
        )
        if state != "offline":
            return Read(ward, None, None, agent_cameras=cameras, clamped=clamped, agent=agent)
        # The agent is gone (last will) or stopped: nobody watches its cameras from now on.
        unknown = Assertion(at, FOREVER, "unknown")
        return Read(ward, None, unknown, clamped=clamped, agent_cameras=cameras, agent=agent)
    if kind == "health":
        if p.get("schema") != "camwatch.health/1":
            raise BadMessage(f"{topic}: unknown schema {p.get('schema')!r}")
        state = p.get("state")
        if state not in STATES:
            raise BadMessage(f"{topic}: unknown state {state!r}")
        end, clamped = clamp(parse_ts(p.get("ts")))
        start = min(parse_ts(p.get("since", p.get("ts"))), end)
        name = p.get("name") if isinstance(p.get("name"), str) else None
        return Read(ward, camera, Assertion(start, end, state, _problems(p)), clamped=clamped, name=name)
    if kind == "events":
        if p.get("schema") != "camwatch.event/1":
            raise BadMessage(f"{topic}: unknown schema {p.get('schema')!r}")
        event_id = p.get("id")
        if not isinstance(event_id, str):
            raise BadMessage(f"{topic}: event without an id")
        kind_of = p.get("type")
        if not isinstance(kind_of, str):
            raise BadMessage(f"{topic}: event without a type")
        end, clamped = clamp(parse_ts(p.get("ts")))
        event = EventRow(event_id, ward, camera, end, kind_of, p.get("replayed") is True, payload.decode())
        if kind_of != "state_changed":
            return Read(ward, camera, None, event_id=event_id, clamped=clamped, event=event)
        state = p.get("to")
        if state not in STATES:
            raise BadMessage(f"{topic}: unknown state {state!r}")
        start = min(parse_ts(p.get("since", p.get("ts"))), end)
        assertion = Assertion(start, end, state, _problems(p))
        return Read(ward, camera, assertion, event_id=event_id, clamped=clamped, event=event)
    raise BadMessage(f"{topic}: unknown message kind {kind!r}")


def _problems(p: dict[str, Any]) -> tuple[str, ...]:
    raw = p.get("problems", [])
    return tuple(x for x in raw if isinstance(x, str)) if isinstance(raw, list) else ()


class Ingest:
    """Messages in, batches out: :meth:`add` is cheap (parse and compact), :meth:`flush` writes. Thread-safe."""

    def __init__(self, store: Store, prefix: str = "camwatch") -> None:
        self.store = store
        self.prefix = prefix
        self._lock = threading.Lock()
        self._batch = WriteBatch.empty(time.time())
        self._pending = 0
        self.messages = 0
        self.bad = 0
        self.duplicates = 0
        self.clamped = 0
        self.events = 0
        self.snapshots = 0

    @property
    def pending(self) -> int:
        return self._pending

    def add(self, topic: str, payload: bytes, now: float) -> None:
        """Take one message; a bad one is counted and logged, never raised."""
        self.messages += 1
        parts = topic.split("/")
        head = self.prefix.split("/")
        if len(parts) == len(head) + 4 and parts[: len(head)] == head and parts[-2] == "snapshot":
            ward, camera, event_id = parts[len(head)], parts[len(head) + 1], parts[-1]
            with self._lock:
                self._batch.snapshots.append((event_id, ward, camera, bytes(payload)))
                self._batch.camera(ward, camera, None, now)
                self._pending += 1
            return
        try:
            read = read_message(topic, payload, self.prefix, now)
        except (BadMessage, UnicodeDecodeError) as exc:
            self.bad += 1
            log.warning("ignored a message: %s", exc)
            return
        if read is None:
            return
        with self._lock:
            self.clamped += read.clamped
            batch = self._batch
            if read.camera is None:  # the agent's status: about itself and each of its cameras
                if read.agent is not None:
                    batch.agent(read.agent)
                for cam in read.agent_cameras:
                    batch.camera(read.ward, cam, None, now)
                    if read.assertion is not None:
                        batch.assertion(read.ward, cam, read.assertion)
            else:
                batch.camera(read.ward, read.camera, read.name, now)
                if read.assertion is not None:
                    batch.assertion(read.ward, read.camera, read.assertion)
                if read.event is not None:
                    batch.events.append(read.event)
            self._pending += 1

    def flush(self) -> int:
        """Write what was gathered in one transaction; how many messages it held."""
        with self._lock:
            batch, count = self._batch, self._pending
            self._batch, self._pending = WriteBatch.empty(time.time()), 0
        if not count:
            return 0
        try:
            fresh = self.store.write(batch)
        except BaseException:
            with self._lock:  # nothing lost: put it back in front of what came meanwhile
                self._merge_back(batch, count)
            raise
        self.duplicates += fresh.count(False)
        self.events += fresh.count(True)
        self.snapshots += len(batch.snapshots)
        return count

    def _merge_back(self, old: WriteBatch, count: int) -> None:
        new = self._batch
        for ward, camera, name, seen in new.cameras.values():
            old.camera(ward, camera, name, seen)
        for key, end in new.assertions.items():
            old.assertions[key] = max(old.assertions.get(key, end), end)
        for row in new.agents.values():
            old.agent(row)
        old.events.extend(new.events)
        old.snapshots.extend(new.snapshots)
        self._batch = old
        self._pending += count


MANY_SILENT = 20  # more cameras than this with nothing holding: their last ends in one query


class Fleet:
    """What the center knows of every camera, read from the store."""

    def __init__(self, store: Store, unknown_after_s: float = 90.0) -> None:
        self.store = store
        self.unknown_after_s = unknown_after_s

    def cameras(self) -> list[CameraRow]:
        return self.store.cameras()

    def timeline(self, ward: str, camera: str, begin: float, end: float) -> list[Interval]:
        facts = self.store.assertions(ward, camera, begin, end, self.unknown_after_s)
        return intervals(facts, begin, end, self.unknown_after_s)

    def state_at(self, ward: str, camera: str, when: float) -> Interval:
        """The camera's state at ``when`` and since when it has been in it."""
        return self.timeline(ward, camera, when - LOOKBACK_S, when + 1e-3)[-1]

    def states(self, now: float, cameras: list[CameraRow] | None = None) -> dict[tuple[str, str], Interval]:
        """Every known camera's state now and since when, from what still holds now (cheap: an index range).

        ``since`` is when the holding assertion says the state began (the
        agent's own ``since``); a camera nothing holds for is ``unknown``
        since its last assertion went stale. The camera page's
        :meth:`state_at` looks further back and joins equal neighbours.
        """
        holding = self.store.holding_now(now, self.unknown_after_s)
        cameras = self.store.cameras() if cameras is None else cameras
        silent = sum(1 for row in cameras if (row.ward, row.camera) not in holding)
        ends = self.store.last_ends() if silent > MANY_SILENT else None
        out: dict[tuple[str, str], Interval] = {}
        for row in cameras:
            key = (row.ward, row.camera)
            winner = holding.get(key)
            if winner is not None:
                start, state, problems = winner
                out[key] = Interval(start, now, state, problems)
            else:
                last = ends.get(key) if ends is not None else self.store.last_end(row.ward, row.camera)
                since = last + self.unknown_after_s if last is not None else row.first_seen
                out[key] = Interval(min(since, now), now, "unknown")
        return out
