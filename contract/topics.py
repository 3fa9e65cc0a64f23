"""Topic names of the MQTT contract, version 1, and their parser.

``{prefix}/{ward}/agent/status``, ``{prefix}/{ward}/agent/stats``,
``{prefix}/{ward}/{camera}/health``, ``{prefix}/{ward}/{camera}/events``,
``{prefix}/{ward}/{camera}/snapshot/{event_id}``. The prefix may have
levels of its own (``city/camwatch``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final, Literal

from contract.vocab import AGENT_SCHEMA, EVENT_SCHEMA, HEALTH_SCHEMA, STATS_SCHEMA

Kind = Literal["status", "stats", "health", "events", "snapshot"]
AGENT: Final = "agent"  # the topic level where a camera id would be, for the agent's own topics


@dataclass(frozen=True)
class Topics:
    """The topics one ward's agent publishes to."""

    prefix: str
    ward: str

    @property
    def agent_status(self) -> str:
        return f"{self.prefix}/{self.ward}/{AGENT}/status"

    @property
    def agent_stats(self) -> str:
        return f"{self.prefix}/{self.ward}/{AGENT}/stats"

    def health(self, camera: str) -> str:
        return f"{self.prefix}/{self.ward}/{camera}/health"

    def events(self, camera: str) -> str:
        return f"{self.prefix}/{self.ward}/{camera}/events"

    def snapshot(self, camera: str, event_id: str) -> str:
        return f"{self.prefix}/{self.ward}/{camera}/snapshot/{event_id}"


def health_filter(prefix: str, ward: str | None = None) -> str:
    """Subscription filter for the retained health of one ward or all wards."""
    return f"{prefix}/{ward or '+'}/+/health"


@dataclass(frozen=True)
class Channel:
    """One kind of topic of the contract: where (``address``, its ``{parameters}`` after the prefix), how it is
    published, and what it carries (``schema``: the payload's schema name; None for a JPEG)."""

    kind: Kind
    address: str
    qos: int
    retain: bool
    content_type: str
    schema: str | None
    summary: str


CHANNELS: Final[tuple[Channel, ...]] = (
    Channel(
        "health",
        "{ward}/{camera}/health",
        1,
        True,
        "application/json",
        HEALTH_SCHEMA,
        "A camera's health, on every change and every heartbeat_s; retained, so a subscriber has every "
        "camera's last word at once.",
    ),
    Channel(
        "events",
        "{ward}/{camera}/events",
        1,
        False,
        "application/json",
        EVENT_SCHEMA,
        "A camera's state changes, problems and detections, queued on disk and delivered at least once "
        "(repeats share an id).",
    ),
    Channel(
        "status",
        f"{{ward}}/{AGENT}/status",
        1,
        True,
        "application/json",
        AGENT_SCHEMA,
        "A ward agent's birth (online), clean stop or last will (offline); retained.",
    ),
    Channel(
        "snapshot",
        "{ward}/{camera}/snapshot/{event_id}",
        1,
        False,
        "image/jpeg",
        None,
        "The JPEG of a detection_started event, the best sighting boxed; event_id is the event's id.",
    ),
    Channel(
        "stats",
        f"{{ward}}/{AGENT}/stats",
        0,
        False,
        "application/json",
        STATS_SCHEMA,
        "A ward agent's resource figures every stats_s (QoS 0: the next one replaces a lost one).",
    ),
)


def center_subscriptions(prefix: str) -> list[tuple[str, int]]:
    """What the center subscribes to, every ward, with the QoS each is published at."""
    return [(f"{prefix}/{re.sub(r'{[a-z_]+}', '+', c.address)}", c.qos) for c in CHANNELS]


@dataclass(frozen=True)
class Topic:
    """A topic of the contract, taken apart. ``camera`` is None for the agent's own topics; ``event_id`` is
    set for snapshots only."""

    ward: str
    camera: str | None
    kind: Kind
    event_id: str | None = None


class NotOurs(ValueError):
    """A topic that is not one of the contract's under the prefix."""


def parse_topic(topic: str, prefix: str) -> Topic:
    """Take a topic apart; raises :class:`NotOurs` (saying why) for anything the contract does not name."""
    head = prefix.split("/")
    parts = topic.split("/")
    if parts[: len(head)] != head:
        raise NotOurs(f"topic {topic!r} is not under {prefix}/")
    rest = parts[len(head) :]
    if len(rest) == 4 and rest[2] == "snapshot" and rest[3]:
        return Topic(rest[0], rest[1], "snapshot", rest[3])
    if len(rest) != 3 or not rest[0] or not rest[1]:
        raise NotOurs(f"topic {topic!r} is not ward/camera/kind under {prefix}/")
    ward, who, kind = rest
    if who == AGENT and kind in ("status", "stats"):
        return Topic(ward, None, "status" if kind == "status" else "stats")
    if kind == "health":
        return Topic(ward, who, "health")
    if kind == "events":
        return Topic(ward, who, "events")
    raise NotOurs(f"{topic}: unknown message kind {kind!r}")
