"""Contract messages (v1) in, assertions about cameras' states out; the fleet as the center knows it.

Pure: no MQTT here. :func:`read_message` turns one message (topic, payload)
into what it asserts; :class:`Fleet` keeps the assertions per camera
(compacted: heartbeats with the same ``since`` are one), drops repeated
event ids, and answers what each camera's state is and was.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from center.timeline import FOREVER, Assertion, Interval, intervals, merge_heartbeats

log = logging.getLogger(__name__)

STATES = ("online", "degraded", "offline", "unknown")
FUTURE_SLACK_S = 60.0  # a clock this far ahead is clamped to our time and flagged
SEEN_IDS_MAX = 200_000


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
        if p.get("state") != "offline":
            return Read(ward, None, None, agent_cameras=cameras)
        at, clamped = clamp(parse_ts(p.get("ts")))
        # The agent is gone (last will) or stopped: nobody watches its cameras from now on.
        return Read(ward, None, Assertion(at, FOREVER, "unknown"), clamped=clamped, agent_cameras=cameras)
    if kind == "health":
        if p.get("schema") != "camwatch.health/1":
            raise BadMessage(f"{topic}: unknown schema {p.get('schema')!r}")
        state = p.get("state")
        if state not in STATES:
            raise BadMessage(f"{topic}: unknown state {state!r}")
        end, clamped = clamp(parse_ts(p.get("ts")))
        start = min(parse_ts(p.get("since", p.get("ts"))), end)
        return Read(ward, camera, Assertion(start, end, state, _problems(p)), clamped=clamped)
    if kind == "events":
        if p.get("schema") != "camwatch.event/1":
            raise BadMessage(f"{topic}: unknown schema {p.get('schema')!r}")
        event_id = p.get("id")
        if not isinstance(event_id, str):
            raise BadMessage(f"{topic}: event without an id")
        if p.get("type") != "state_changed":
            return Read(ward, camera, None, event_id=event_id)
        state = p.get("to")
        if state not in STATES:
            raise BadMessage(f"{topic}: unknown state {state!r}")
        end, clamped = clamp(parse_ts(p.get("ts")))
        start = min(parse_ts(p.get("since", p.get("ts"))), end)
        return Read(ward, camera, Assertion(start, end, state, _problems(p)), event_id=event_id, clamped=clamped)
    raise BadMessage(f"{topic}: unknown message kind {kind!r}")


def _problems(p: dict[str, Any]) -> tuple[str, ...]:
    raw = p.get("problems", [])
    return tuple(x for x in raw if isinstance(x, str)) if isinstance(raw, list) else ()


@dataclass
class Camera:
    ward: str
    camera: str
    assertions: list[Assertion] = field(default_factory=list)


class Fleet:
    """Every camera the center has heard of, and what was asserted about each. Thread-safe."""

    def __init__(self, prefix: str = "camwatch", unknown_after_s: float = 90.0) -> None:
        self.prefix = prefix
        self.unknown_after_s = unknown_after_s
        self.cameras: dict[tuple[str, str], Camera] = {}
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()
        self.bad = 0
        self.duplicates = 0
        self.clamped = 0

    def ingest(self, topic: str, payload: bytes, now: float) -> None:
        """Take one message; a bad one is counted and logged, never raised."""
        try:
            read = read_message(topic, payload, self.prefix, now)
        except BadMessage as exc:
            self.bad += 1
            log.warning("ignored a message: %s", exc)
            return
        if read is None:
            return
        with self._lock:
            if read.event_id is not None:
                if read.event_id in self._seen:
                    self.duplicates += 1
                    return
                self._seen[read.event_id] = None
                if len(self._seen) > SEEN_IDS_MAX:
                    self._seen.popitem(last=False)
            self.clamped += read.clamped
            if read.camera is None:
                for cam in read.agent_cameras:
                    entry = self._camera(read.ward, cam)
                    if read.assertion is not None:
                        entry.assertions.append(read.assertion)
                        entry.assertions = merge_heartbeats(entry.assertions)
                return
            entry = self._camera(read.ward, read.camera)
            if read.assertion is not None:
                entry.assertions.append(read.assertion)
                entry.assertions = merge_heartbeats(entry.assertions)

    def _camera(self, ward: str, camera: str) -> Camera:
        key = (ward, camera)
        if key not in self.cameras:
            self.cameras[key] = Camera(ward, camera)  # the center learns the fleet from the wards
        return self.cameras[key]

    def timeline(self, ward: str, camera: str, begin: float, end: float) -> list[Interval]:
        with self._lock:
            entry = self.cameras.get((ward, camera))
            facts = list(entry.assertions) if entry else []
        return intervals(facts, begin, end, self.unknown_after_s)

    def state_at(self, ward: str, camera: str, when: float) -> Interval:
        """The camera's state at ``when`` and since when it has been in it (looking back 400 days at most)."""
        ivs = self.timeline(ward, camera, when - 400 * 86400, when + 1e-3)
        return ivs[-1]
