"""Messages waiting for the broker's PUBACK.

:class:`MemoryOutbox` is bounded and in memory: what is queued survives a
broker outage but not an agent restart (the durable SQLite outbox replaces
it later behind the same interface). On overflow it drops the oldest
detection events and snapshots first, never state changes, and counts.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import deque
from collections.abc import Callable
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
    def refuse(self, mid: int) -> str | None: ...
    def drop(self, message: OutMessage) -> None: ...
    def counts(self) -> dict[str, int]: ...


class EarlyAcks:
    """PUBACKs that came before ``mark_sent`` recorded their message id, with whether each was a success.

    paho's network thread can be faster than the publishing thread, so an ack
    may arrive first. Acks of messages that are not the outbox's (retained
    health, birth) land here too and are never claimed; each ack is honoured
    only for ``RACE_S`` after it came, so when MQTT reuses that id for an
    outbox message much later (ids wrap at 65,535: a long drain does it), the
    stale ack is not taken for the new message's.
    """

    RACE_S = 10.0
    KEEP = 1024  # beyond this many, acks older than RACE_S are forgotten

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._acks: dict[int, tuple[float, bool]] = {}

    def add(self, mid: int, ok: bool = True) -> None:
        now = self._clock()
        self._acks[mid] = (now, ok)
        if len(self._acks) > self.KEEP:
            self._acks = {m: v for m, v in self._acks.items() if now - v[0] <= self.RACE_S}

    def take(self, mid: int) -> bool | None:
        """``mid``'s ack if it already came (moments ago): True taken, False refused; forgets it either way."""
        got = self._acks.pop(mid, None)
        if got is None or self._clock() - got[0] > self.RACE_S:
            return None
        return got[1]

    def __len__(self) -> int:
        return len(self._acks)


class MemoryOutbox:
    """Bounded FIFO of unsent messages plus the in-flight ones keyed by MQTT message id."""

    def __init__(self, max_messages: int = 10_000, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_messages = max_messages
        self._lock = threading.Lock()
        self._unsent: deque[OutMessage] = deque()
        self._inflight: dict[int, OutMessage] = {}
        self._seq = itertools.count(1)
        self._early_acks = EarlyAcks(clock)
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
            early = self._early_acks.take(mid)
            if early is True:
                self.sent += 1
            elif early is False:
                self._put_back(message)
            else:
                self._inflight[mid] = message

    def refuse(self, mid: int) -> str | None:
        """The broker refused ``mid``: its message goes back in line (in order); its topic, if it was ours."""
        with self._lock:
            msg = self._inflight.pop(mid, None)
            if msg is None:
                self._early_acks.add(mid, ok=False)
                return None
            self._put_back(msg)
            return msg.topic

    def _put_back(self, message: OutMessage) -> None:
        i = 0
        while i < len(self._unsent) and self._unsent[i].seq < message.seq:
            i += 1
        self._unsent.insert(i, message)

    def drop(self, message: OutMessage) -> None:
        """Give up on an unsent message that can never be delivered (counted as dropped)."""
        with self._lock:
            if message in self._unsent:
                self._unsent.remove(message)
                self.dropped += 1

    def ack(self, mid: int) -> bool:
        with self._lock:
            msg = self._inflight.pop(mid, None)
            if msg is None:
                self._early_acks.add(mid)
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
