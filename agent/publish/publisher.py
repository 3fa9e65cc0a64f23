"""What the agent needs of a publisher (:class:`Publisher`), and one that keeps everything in memory.

:class:`agent.publish.mqtt.MqttPublisher` is the real one. :class:`MemoryPublisher`
is for driving a whole agent without a broker: tests tick it with a driven clock
and read what it would have published.
"""

from __future__ import annotations

from typing import Any, Protocol

from agent.publish.outbox import Outbox, OutMessage


class Publisher(Protocol):
    refused: int  # messages the broker refused
    refusal: tuple[str, str] | None  # (topic, reason) of the last refusal, until one is taken again

    @property
    def connected(self) -> bool: ...

    def start(self) -> None: ...

    def set_health(self, camera: str, payload: dict[str, Any]) -> None:
        """A camera's retained health (re-sent after every reconnect)."""

    def send(self, message: OutMessage) -> None:
        """A QoS 1 message (event, snapshot): in order, at least once, through the outbox."""

    def publish_stats(self, payload: dict[str, Any]) -> None: ...

    def republish_birth(self) -> None:
        """The agent's retained status again (its problems changed)."""

    def stop(self, final_status: dict[str, Any] | None = None, timeout: float = 3.0) -> None: ...


class MemoryPublisher:
    """A publisher whose broker is always there and takes everything: what it was given, in order."""

    def __init__(self, outbox: Outbox) -> None:
        self.outbox = outbox
        self.refused = 0
        self.refusal: tuple[str, str] | None = None
        self.started = self.stopped = False
        self.health: dict[str, list[dict[str, Any]]] = {}  # camera -> every retained health set, in order
        self.sent: list[OutMessage] = []  # events and snapshots, in the order the outbox would deliver them
        self.stats: list[dict[str, Any]] = []
        self.births = 0
        self.final_status: dict[str, Any] | None = None
        self._mid = 0

    @property
    def connected(self) -> bool:
        return self.started and not self.stopped

    def start(self) -> None:
        self.started = True

    def set_health(self, camera: str, payload: dict[str, Any]) -> None:
        self.health.setdefault(camera, []).append(payload)

    def send(self, message: OutMessage) -> None:
        self.outbox.put(message)
        while (item := self.outbox.next_unsent()) is not None:  # delivered at once: the broker took it
            self._mid += 1
            self.outbox.mark_sent(item, self._mid)
            self.outbox.ack(self._mid)
            self.sent.append(item)

    def publish_stats(self, payload: dict[str, Any]) -> None:
        self.stats.append(payload)

    def republish_birth(self) -> None:
        self.births += 1

    def stop(self, final_status: dict[str, Any] | None = None, timeout: float = 3.0) -> None:
        self.final_status = final_status
        self.stopped = True
