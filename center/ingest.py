"""Contract messages (v1) in, assertions about cameras' states out, into the store.

No MQTT here. :func:`read_message` turns one message (topic, payload) into
what it asserts (pure); :class:`Ingest` gathers what a burst of messages
asserts into one compacted batch and writes it to the :class:`Store` in one
transaction (repeated event ids are dropped by the database: at-least-once
delivery is safe). What each camera's state is and was is read by
:class:`center.fleet.Fleet`.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Final

from pydantic import TypeAdapter, ValidationError

from center.store import AgentRow, EventRow, Store, WriteBatch
from center.timeline import FOREVER, Assertion
from contract.payloads import ADAPTERS, AgentStatus, Health, StateChanged, Stats
from contract.topics import Kind, NotOurs, Topic, parse_topic
from contract.vocab import AGENT_SCHEMA, EVENT_SCHEMA, EVENT_TYPES, HEALTH_SCHEMA, STATS_SCHEMA

log = logging.getLogger(__name__)

BAD_LOG_EVERY_S = 60.0  # a refused message's reason is logged at most this often
FUTURE_SLACK_S = 60.0  # a clock this far ahead is clamped to our time and flagged
READERS: Final[dict[Kind, TypeAdapter[Any]]] = {
    "health": ADAPTERS[HEALTH_SCHEMA],
    "events": ADAPTERS[EVENT_SCHEMA],
    "status": ADAPTERS[AGENT_SCHEMA],
    "stats": ADAPTERS[STATS_SCHEMA],
}


class BadMessage(ValueError):
    """A message that is not the contract: counted by ``reason`` and logged, never fatal."""

    def __init__(self, detail: str, reason: str = "bad") -> None:
        super().__init__(detail)
        self.reason = reason  # few and fixed (what kind of message, what was wrong): a counter's key


def parse_ts(value: str) -> float:
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise BadMessage(f"bad timestamp {value!r}", "bad timestamp") from None


def _refusal(topic: str, kind: str, exc: ValidationError) -> BadMessage:
    """What the contract's model found wrong, for the log (where, what, the input) and for the counter."""
    first = exc.errors(include_url=False)[0]
    if first["type"] == "json_invalid":
        return BadMessage(f"{topic}: not JSON ({first['msg']})", f"{kind}: not JSON")
    loc = [str(x) for x in first["loc"]]
    field = next((x for x in loc if x not in EVENT_TYPES), "")  # an event's loc starts with its type
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    given = repr(first.get("input"))[:80]
    detail = f"{topic}: {'.'.join(loc) or 'payload'}: {first['msg']}, given {given}{more}"
    return BadMessage(detail, f"{kind}: {field or 'payload'}: {first['type']}")


@dataclass(frozen=True)
class StatusKey:
    """Orders every status message of a ward: newer process, then newer connection, then death after birth.

    A birth and the last will of one connection share ``started_at`` and
    ``seq`` (the agent's connection number, as Sparkplug's bdSeq); the will
    ranks after its birth. A status is believed only if its key is not older
    than the newest one seen for the ward, so a will of an old connection
    never overrides a newer birth and a birth never hides a newer will.
    """

    started_at: float
    seq: int
    death: int  # 0 birth (online), 1 will or clean stop (offline)
    hostname: str = ""  # two agents claiming one ward, started the same millisecond: still one order

    def order(self) -> tuple[float, int, int, str]:
        return (self.started_at, self.seq, self.death, self.hostname)


@dataclass(frozen=True)
class Read:
    """What one message says."""

    ward: str
    camera: str | None  # None: about the whole ward (agent status, stats)
    assertions: tuple[Assertion, ...] = ()
    event_id: str | None = None
    clamped: bool = False  # its time was in the future: set to the center's time
    agent_cameras: tuple[str, ...] = ()
    name: str | None = None  # the camera's display name (health messages carry it)
    event: EventRow | None = None  # every event, stored once
    agent: AgentRow | None = None  # a ward agent's own status (birth, last will, problems)
    heard: float | None = None  # the agent itself spoke at this time (not the broker for it: a will is not)
    status: StatusKey | None = None
    unsequenced: bool = False  # a status without a usable seq/started_at: ordered as oldest, counted


def read_message(topic: str, payload: bytes, prefix: str, now: float, where: Topic | None = None) -> Read | None:
    """What a message asserts, once the contract's model has taken it; None for messages that assert nothing
    (snapshots). ``where``: the topic already taken apart (else it is, here)."""
    if where is None:
        try:
            where = parse_topic(topic, prefix)
        except NotOurs as exc:
            raise BadMessage(str(exc), "topic not in the contract") from None
    if where.kind == "snapshot":
        return None
    try:
        message = READERS[where.kind].validate_json(payload)
    except ValidationError as exc:
        raise _refusal(topic, where.kind, exc) from None

    def clamp(t: float) -> tuple[float, bool]:
        return (now, True) if t > now + FUTURE_SLACK_S else (t, False)

    ward, camera = where.ward, where.camera
    if isinstance(message, Stats):
        at, clamped = clamp(parse_ts(message.ts))
        return Read(ward, None, heard=at, clamped=clamped)  # the agent is alive: all it said still holds
    if isinstance(message, AgentStatus):
        return _read_status(ward, message, clamp)
    assert camera is not None  # health and events are a camera's
    end, clamped = clamp(parse_ts(message.ts))
    if isinstance(message, Health):
        held = Assertion(min(parse_ts(message.since), end), end, message.state, tuple(message.problems))
        return Read(ward, camera, (held,), clamped=clamped, name=message.name, heard=end)
    event = EventRow(message.id, ward, camera, end, message.type, message.replayed is True, payload.decode())
    if not isinstance(message, StateChanged):
        return Read(ward, camera, event_id=message.id, clamped=clamped, event=event, heard=end)
    start = min(parse_ts(message.since or message.ts), end)
    found = [Assertion(start, end, message.to, tuple(message.problems))]
    # What it was before: ``from`` from ``from_since`` up to ``since`` (a chain of changes is a whole account).
    if message.from_ != "unknown" and message.from_since is not None:
        from_since = parse_ts(message.from_since)
        if from_since <= start:
            found.append(Assertion(from_since, start, message.from_, tuple(message.from_problems or ())))
    return Read(ward, camera, tuple(found), event_id=message.id, clamped=clamped, event=event, heard=end)


def _read_status(ward: str, status: AgentStatus, clamp: Callable[[float], tuple[float, bool]]) -> Read:
    at, clamped = clamp(parse_ts(status.ts))
    unsequenced = status.seq is None
    key = StatusKey(
        parse_ts(status.started_at),
        -1 if unsequenced else status.seq or 0,
        int(status.state == "offline"),
        status.hostname or "",
    )
    agent = AgentRow(
        ward,
        status.state,
        tuple(status.problems),
        status.version,
        at,
        status.reason or "",
        status.hostname or "",
        key.started_at,
        key.seq,
    )
    # A birth or a clean stop is the agent speaking; a last will ("lost") is the broker speaking for it,
    # at a time that says nothing about when it died (it was built when the agent connected).
    heard = None if status.state == "offline" and status.reason != "shutdown" else at
    return Read(
        ward,
        None,
        clamped=clamped,
        agent_cameras=tuple(status.cameras),
        agent=agent,
        heard=heard,
        status=key,
        unsequenced=unsequenced,
    )


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
        self.bad_reasons: Counter[str] = Counter()  # why messages were refused, e.g. "health: state: literal_error"
        self._said: dict[str, tuple[float, int]] = {}  # reason -> (when last logged, how many since)
        self.duplicates = 0
        self.clamped = 0
        self.events = 0
        self.snapshots = 0
        self.stale_status = 0  # status messages of an older connection or process than one already seen
        self.unsequenced = 0  # status messages without a seq (an agent older than seq)
        self._warned: set[tuple[str, str]] = set()  # (ward, what): said once in the log
        known = store.agents()
        self._status: dict[str, StatusKey] = {
            w: StatusKey(a.started_at, a.seq, int(a.state == "offline"), a.hostname) for w, a in known.items()
        }
        self._hosts: dict[str, str] = {w: a.hostname for w, a in known.items()}
        self._heard: dict[str, float] = store.heard()

    @property
    def pending(self) -> int:
        return self._pending

    def add(self, topic: str, payload: bytes, now: float) -> None:
        """Take one message; a bad one is counted and logged, never raised."""
        self.messages += 1
        try:
            where = parse_topic(topic, self.prefix)
        except NotOurs as exc:
            self._refused(BadMessage(str(exc), "topic not in the contract"), now)
            return
        if where.kind == "snapshot" and where.camera and where.event_id:
            ward, camera, event_id = where.ward, where.camera, where.event_id
            with self._lock:
                self._batch.snapshots.append((event_id, ward, camera, bytes(payload)))
                self._batch.camera(ward, camera, None, now)
                self._pending += 1
            return
        try:
            read = read_message(topic, payload, self.prefix, now, where)
        except BadMessage as exc:
            self._refused(exc, now)
            return
        if read is None:
            return
        with self._lock:
            self.clamped += read.clamped
            batch = self._batch
            if read.heard is not None and read.heard > self._heard.get(read.ward, -math.inf):
                self._heard[read.ward] = read.heard
                batch.heard[read.ward] = read.heard
            if read.status is not None:
                self._take_status(read, batch, now)
            elif read.camera is not None:
                batch.camera(read.ward, read.camera, read.name, now)
                for a in read.assertions:
                    batch.assertion(read.ward, read.camera, a)
                if read.event is not None:
                    batch.events.append(read.event)
            self._pending += 1

    def _refused(self, exc: BadMessage, now: float) -> None:
        """Count a message the contract refuses by why; say it in the log, each reason at most once a minute
        (a careless or hostile ward can send thousands)."""
        with self._lock:
            self.bad += 1
            self.bad_reasons[exc.reason] += 1
            said = self._said.get(exc.reason)
            if said is not None and now - said[0] < BAD_LOG_EVERY_S:
                self._said[exc.reason] = (said[0], said[1] + 1)
                return
            self._said[exc.reason] = (now, 0)
        more = f" ({said[1]} more like it not logged)" if said is not None and said[1] else ""
        log.warning("ignored a message: %s%s", exc, more)

    def _take_status(self, read: Read, batch: WriteBatch, now: float) -> None:
        """A birth, a clean stop or a last will: believed only if no newer connection has spoken (lock held)."""
        key, agent = read.status, read.agent
        assert key is not None and agent is not None
        ward = read.ward
        if read.unsequenced:
            self.unsequenced += 1
            self._warn_once(
                ward,
                "unsequenced",
                "ward %s: an agent status without a seq (an agent older than seq?): it is ordered before "
                "every status that has one",
                ward,
            )
        current = self._status.get(ward)
        if current is not None and key.order() < current.order():
            self.stale_status += 1
            if agent.hostname and self._hosts.get(ward) and agent.hostname != self._hosts[ward]:
                self._warn_once(
                    ward,
                    "two agents",
                    "ward %s: two agents claim it (hosts %s and %s); the newest process is believed",
                    ward,
                    agent.hostname,
                    self._hosts[ward],
                )
            return  # an old connection's birth or will: it says nothing about now
        self._status[ward] = key
        if agent.hostname:
            self._hosts[ward] = agent.hostname
        for cam in read.agent_cameras:
            batch.camera(ward, cam, None, now)
        if agent.state == "offline":
            # Nobody watches the ward's cameras from when it was last heard from: a clean stop says when
            # itself; a last will (built at connect time) does not, so the last word heard from the ward does.
            since = agent.ts if agent.reason == "shutdown" else self._heard.get(ward, agent.ts)
            agent = replace(agent, ts=since)
            for cam in read.agent_cameras:
                batch.assertion(ward, cam, Assertion(since, FOREVER, "unknown"))
        batch.agent(agent, key.order())

    def _warn_once(self, ward: str, what: str, msg: str, *args: Any) -> None:
        if (ward, what) not in self._warned:
            self._warned.add((ward, what))
            log.warning(msg, *args)

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
        for row, order in new.agents.values():
            old.agent(row, order)
        for ward, at in new.heard.items():
            old.heard[ward] = max(at, old.heard.get(ward, at))
        old.events.extend(new.events)
        old.snapshots.extend(new.snapshots)
        self._batch = old
        self._pending += count
