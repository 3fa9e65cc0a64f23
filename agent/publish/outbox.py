"""Messages waiting for the broker's PUBACK.

:class:`MemoryOutbox` is bounded and in memory: what is queued survives a
broker outage but not an agent restart (the durable SQLite outbox replaces
it later behind the same interface). On overflow it drops the oldest
detection events and snapshots first, never state changes, and counts.
"""

from __future__ import annotations

import itertools
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

Kind = Literal["state", "detection", "snapshot"]
DROPPABLE: tuple[Kind, ...] = ("snapshot", "detection")


@dataclass
class OutMessage:
    topic: str
    payload: dict[str, Any] | bytes
    kind: Kind
    camera: str
    queued_at: float  # monotonic
    late: bool = False  # queued while the broker was unreachable: sent with replayed: true
    seq: int = field(default=0)
    mid: int | None = None


class Outbox(Protocol):
    def put(self, message: OutMessage) -> None: ...
    def next_unsent(self) -> OutMessage | None: ...
    def mark_sent(self, message: OutMessage, mid: int) -> None: ...
    def ack(self, mid: int) -> bool: ...
    def counts(self) -> dict[str, int]: ...


class MemoryOutbox:
    """Bounded FIFO of unsent messages plus the in-flight ones keyed by MQTT message id."""

    def __init__(self, max_messages: int = 10_000) -> None:
        self.max_messages = max_messages
        self._lock = threading.Lock()
        self._unsent: deque[OutMessage] = deque()
        self._inflight: dict[int, OutMessage] = {}
        self._seq = itertools.count(1)
        # PUBACKs that arrive before mark_sent() records the mid (paho's
        # network thread can be faster than the publishing thread).
        self._early_acks: set[int] = set()
        self.dropped = 0
        self.sent = 0
        self.overflowed = False

    def put(self, message: OutMessage) -> None:
        with self._lock:
            message.seq = next(self._seq)
            self._unsent.append(message)
            while len(self._unsent) > self.max_messages and self._drop_one():
                pass

    def _drop_one(self) -> bool:
        for kind in DROPPABLE:
            for i, msg in enumerate(self._unsent):
                if msg.kind == kind:
                    del self._unsent[i]
                    self.dropped += 1
                    self.overflowed = True
                    return True
        # Only state changes left: keep them (they are small and never dropped).
        self.overflowed = True
        return False

    def next_unsent(self) -> OutMessage | None:
        with self._lock:
            return self._unsent[0] if self._unsent else None

    def mark_sent(self, message: OutMessage, mid: int) -> None:
        with self._lock:
            if self._unsent and self._unsent[0] is message:
                self._unsent.popleft()
            message.mid = mid
            if mid in self._early_acks:
                self._early_acks.discard(mid)
                self.sent += 1
                return
            self._inflight[mid] = message

    def ack(self, mid: int) -> bool:
        with self._lock:
            msg = self._inflight.pop(mid, None)
            if msg is None:
                self._early_acks.add(mid)
                if len(self._early_acks) > 1024:  # acks of messages not ours (health, birth)
                    self._early_acks.clear()
                return False
            self.sent += 1
            return True

    def counts(self) -> dict[str, int]:
        with self._lock:
            return {
                "pending": len(self._unsent),
                "inflight": len(self._inflight),
                "dropped": self.dropped,
                "sent": self.sent,
            }
