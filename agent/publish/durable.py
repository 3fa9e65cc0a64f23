"""The durable outbox: QoS 1 messages in SQLite (WAL) until the broker's PUBACK.

Every event, state change and snapshot is written before it is sent and
deleted only when acknowledged, so a broker outage, a lost uplink, an agent
restart or a ``kill -9`` loses nothing: rows left by a previous run are sent
again at start (marked late: they carry ``replayed: true``; receivers dedup
by ``id``). Order is the insertion order, so per-camera order holds.

Caps: ``max_messages``, ``max_bytes`` and ``max_age_s``. Over a cap the
oldest snapshots, then the oldest detection events, are dropped (counted);
state changes never are, nor do they expire.

When the disk cannot take a write (full, read-only, gone) the message is
kept in memory instead (bounded by ``max_messages``), and everything after
it too until that backlog is sent, so order still holds; :attr:`problem`
says so until a write works again. Monitoring never stops for the outbox.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agent.publish.outbox import DROPPABLE, EarlyAcks, OutMessage
from agent.publish.payloads import encode

log = logging.getLogger(__name__)

EXPIRE_EVERY_S = 60.0  # old snapshots and detections are looked for at most this often

SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq     INTEGER PRIMARY KEY AUTOINCREMENT,
    topic   TEXT    NOT NULL,
    payload BLOB    NOT NULL,
    json    INTEGER NOT NULL,
    kind    TEXT    NOT NULL,
    camera  TEXT    NOT NULL,
    created REAL    NOT NULL,
    late    INTEGER NOT NULL DEFAULT 0,
    size    INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS outbox_kind ON outbox (kind, seq);
"""


class DurableOutbox:
    """Implements :class:`agent.publish.outbox.Outbox` on SQLite; safe to call from any thread."""

    def __init__(
        self,
        path: Path,
        *,
        max_messages: int = 10_000,
        max_bytes: int = 200 * 1024 * 1024,
        max_age_s: float = 7 * 86400,
        wall: Callable[[], float] = time.time,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = path
        self.max_messages = max_messages
        self.max_bytes = max_bytes
        self.max_age_s = max_age_s
        self._wall = wall
        self._clock = clock
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        self._cursor = 0  # highest row handed to the publisher in this run
        self._inflight: dict[int, tuple[OutMessage, bool]] = {}  # mid -> (message, kept in memory, not in a row)
        self._early_acks = EarlyAcks(clock)
        self._spill: deque[OutMessage] = deque()  # written nowhere durable (the disk refused)
        self._acked: list[int] = []  # rows acknowledged, deleted in one batch by the publishing thread
        self._rows = 0
        self._bytes = 0
        self._expired_at = float("-inf")
        self.dropped = 0
        self.expired = 0
        self.sent = 0
        self.recovered = 0  # rows left by a previous run, sent again
        self.problem: str | None = None
        self._open()

    # -- the database ----------------------------------------------------------------

    def _open(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=5.0)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")  # a ward PC loses power: an event written is an event kept
            db.executescript(SCHEMA)
            db.execute("UPDATE outbox SET late = 1")  # anything left is from before this run
            self._rows, self._bytes = db.execute("SELECT COUNT(*), COALESCE(SUM(size), 0) FROM outbox").fetchone()
        except (OSError, sqlite3.Error) as exc:
            self._fail(f"cannot open the outbox {self.path}: {exc}")
            return
        self._db = db
        self.recovered = self._rows
        if self._rows:
            log.info("outbox %s: %d message(s) from before the restart will be sent", self.path, self._rows)

    def _fail(self, reason: str) -> None:
        if self.problem is None:
            log.error("%s; messages are kept in memory until it works again", reason)
        self.problem = reason

    def _insert(self, m: OutMessage, data: bytes) -> bool:
        if self._db is None or self._spill:
            return False
        try:
            self._db.execute(
                "INSERT INTO outbox (topic, payload, json, kind, camera, created, late, size) VALUES (?,?,?,?,?,?,?,?)",
                (m.topic, data, isinstance(m.payload, dict), m.kind, m.camera, self._wall(), int(m.late), len(data)),
            )
        except sqlite3.Error as exc:
            self._fail(f"cannot write the outbox {self.path}: {exc}")
            return False
        self._rows += 1
        self._bytes += len(data)
        if self.problem is not None:
            log.info("outbox %s: writable again", self.path)
            self.problem = None
        return True

    # -- Outbox ------------------------------------------------------------------------

    def put(self, message: OutMessage) -> None:
        data = encode(message.payload) if isinstance(message.payload, dict) else message.payload
        with self._lock:
            if not self._insert(message, data):
                self._spill.append(message)
                while len(self._spill) > self.max_messages and self._drop_spilled():
                    pass
            self._enforce_caps()

    def next_unsent(self) -> OutMessage | None:
        with self._lock:
            self._flush_acks()
            if self._db is not None:
                # Rows in flight are skipped: after a refusal the cursor goes back, past some of them.
                flying = [m.seq for m, in_memory in self._inflight.values() if not in_memory and m.seq > self._cursor]
                skip = f"AND seq NOT IN ({','.join('?' * len(flying))}) " if flying else ""
                try:
                    row = self._db.execute(
                        "SELECT seq, topic, payload, json, kind, camera, late, created FROM outbox WHERE seq > ? "
                        f"{skip}ORDER BY seq LIMIT 1",
                        (self._cursor, *flying),
                    ).fetchone()
                except sqlite3.Error as exc:
                    self._fail(f"cannot read the outbox {self.path}: {exc}")
                    row = None
                if row is not None:
                    seq, topic, payload, is_json, kind, camera, late, created = row
                    body: dict[str, Any] | bytes = json.loads(payload) if is_json else bytes(payload)
                    # When it was queued, on the publisher's clock: a message sent at once is not "late".
                    queued_at = self._clock() - max(0.0, self._wall() - created)
                    return OutMessage(topic, body, kind, camera, queued_at=queued_at, late=bool(late), seq=seq)
            return self._spill[0] if self._spill else None

    def mark_sent(self, message: OutMessage, mid: int) -> None:
        with self._lock:
            in_memory = bool(self._spill) and self._spill[0] is message
            if in_memory:
                self._spill.popleft()
            else:
                self._cursor = max(self._cursor, message.seq)
            early = self._early_acks.take(mid)
            if early is True:
                self._done(message, in_memory)
            elif early is False:
                self._put_back(message, in_memory)
            else:
                self._inflight[mid] = (message, in_memory)

    def ack(self, mid: int) -> bool:
        with self._lock:
            item = self._inflight.pop(mid, None)
            if item is None:
                self._early_acks.add(mid)
                return False
            self._done(*item)
            return True

    def refuse(self, mid: int) -> str | None:
        """The broker refused ``mid``: its message goes back in line (in order); its topic, if it was ours."""
        with self._lock:
            item = self._inflight.pop(mid, None)
            if item is None:
                self._early_acks.add(mid, ok=False)
                return None
            self._put_back(*item)
            return item[0].topic

    def _put_back(self, message: OutMessage, in_memory: bool) -> None:
        if in_memory:
            self._spill.appendleft(message)
        else:
            self._cursor = min(self._cursor, message.seq - 1)

    def drop(self, message: OutMessage) -> None:
        """Give up on an unsent message that can never be delivered (counted as dropped)."""
        with self._lock:
            if self._spill and self._spill[0] is message:
                self._spill.popleft()
            elif self._db is not None:
                self._cursor = max(self._cursor, message.seq)
                try:
                    row = self._db.execute("DELETE FROM outbox WHERE seq = ? RETURNING size", (message.seq,)).fetchone()
                except sqlite3.Error as exc:
                    self._fail(f"cannot update the outbox {self.path}: {exc}")
                    return
                if row is None:
                    return
                self._rows -= 1
                self._bytes -= row[0]
            self.dropped += 1

    def _done(self, message: OutMessage, in_memory: bool) -> None:
        self.sent += 1
        if not in_memory:
            # Deleting is left to the publishing thread, in batches: PUBACKs arrive on MQTT's
            # network thread, which must not wait for the disk. A delete lost in a crash only
            # means the message is sent once more (receivers dedup by id).
            self._acked.append(message.seq)

    def _flush_acks(self) -> None:
        if not self._acked or self._db is None:
            self._acked.clear()
            return
        seqs, self._acked = self._acked, []
        try:
            self._db.execute("BEGIN")
            for seq in seqs:
                row = self._db.execute("DELETE FROM outbox WHERE seq = ? RETURNING size", (seq,)).fetchone()
                if row is not None:
                    self._rows -= 1
                    self._bytes -= row[0]
            self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            self._fail(f"cannot update the outbox {self.path}: {exc}")
            try:
                self._db.execute("ROLLBACK")
            except sqlite3.Error:
                pass

    # -- caps --------------------------------------------------------------------------

    def _enforce_caps(self) -> None:
        if self._db is None:
            return
        try:
            now = self._wall()
            if now - self._expired_at < EXPIRE_EVERY_S:
                kinds: tuple[str, ...] = ()
            else:
                kinds, self._expired_at = DROPPABLE, now
            cutoff = now - self.max_age_s
            for kind in kinds:
                cur = self._db.execute(
                    "DELETE FROM outbox WHERE kind = ? AND created < ? RETURNING size", (kind, cutoff)
                )
                for (size,) in cur.fetchall():
                    self.expired += 1
                    self._rows -= 1
                    self._bytes -= size
            while (self._rows > self.max_messages or self._bytes > self.max_bytes) and self._drop_row():
                pass
        except sqlite3.Error as exc:
            self._fail(f"cannot trim the outbox {self.path}: {exc}")

    def _drop_row(self) -> bool:
        assert self._db is not None
        for kind in DROPPABLE:
            row = self._db.execute(
                "DELETE FROM outbox WHERE seq = (SELECT seq FROM outbox WHERE kind = ? ORDER BY seq LIMIT 1) "
                "RETURNING size",
                (kind,),
            ).fetchone()
            if row is not None:
                self.dropped += 1
                self._rows -= 1
                self._bytes -= row[0]
                return True
        return False  # only state changes left: they stay

    def _drop_spilled(self) -> bool:
        for kind in DROPPABLE:
            for i, msg in enumerate(self._spill):
                if msg.kind == kind:
                    del self._spill[i]
                    self.dropped += 1
                    return True
        return False

    def counts(self) -> dict[str, int]:
        with self._lock:
            in_db_not_pending = len(self._acked) + sum(1 for _, in_memory in self._inflight.values() if not in_memory)
            pending = max(0, self._rows - in_db_not_pending)
            return {
                "pending": pending + len(self._spill),
                "inflight": len(self._inflight),
                "dropped": self.dropped,
                "expired": self.expired,
                "sent": self.sent,
                "bytes": self._bytes,
                "in_memory": len(self._spill),
                "recovered": self.recovered,
            }

    def close(self) -> None:
        with self._lock:
            self._flush_acks()
            if self._db is not None:
                self._db.close()
                self._db = None
