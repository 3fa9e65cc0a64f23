"""What the cameras did: the compacted assertions, events, snapshots, agents' statuses, maintenance windows,
and the rollups that cache whole days of it; the batched write that keeps the rollups true, and the reads.

- ``assertions``: compacted — a camera's heartbeats all repeat the same
  ``since``, so (camera, start, state, problems) is one row whose ``end_ts``
  only grows. Rows grow with state changes, not with time;
- ``events``: every contract event once (primary key = its id: at-least-once
  delivery is deduplicated by the database itself);
- ``rollups``: each camera's seconds per state over a whole local day, so
  that a month over the city adds up rows instead of replaying assertions.
  A rollup is a cache of what the assertions say: a write that changes what
  they say about a rolled-up day deletes that camera's rollups from then on
  (see :meth:`History.write`), and they are computed again when asked.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from center.background import give_way
from center.store.database import FOREVER_SQL, Database, StoreError, from_sql, problems_text, problems_tuple, to_sql
from center.store.rows import AgentRow, CameraRow, EventRow, MaintenanceRow, RollupRow
from center.timeline import TIE_BREAK, Assertion, known_at
from contract.vocab import STATES, State

AssertionKey = tuple[str, str, float, str, str]  # ward, camera, start, state, problems (text)
ROLLUPS_SCHEMA = 4  # the migration that made the rollups table
KNOWN_ASSERTIONS = 100_000  # assertion rows whose end is remembered (a few per camera suffice)


class History(Database):
    """The cameras' history: written in batches, read by camera, by time, or what holds now."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self._rollup_lock = threading.Lock()
        self._rollup_gen = 0
        self._rolled_until = -math.inf
        self._known: OrderedDict[AssertionKey, float] = OrderedDict()  # assertion row -> its end as stored
        # per camera: (when its latest-known row is known, that row), kept only while sure it is the only one
        self._latest: OrderedDict[tuple[str, str], tuple[float, AssertionKey]] = OrderedDict()
        try:
            if self.schema_version() >= ROLLUPS_SCHEMA:
                last = self._query("SELECT max(day_end) FROM rollups")[0][0]
                self._rolled_until = float(last) if last is not None else -math.inf
        except BaseException:
            self.close()
            raise

    # --- writes ----------------------------------------------------------------

    def write(self, batch: WriteBatch) -> list[bool]:
        """Apply a batch in one transaction; for each event, whether it was new (False: a duplicate).

        Rows go in with ``executemany`` (PostgreSQL pipelines them: one round
        trip per batch, not per row). Rollups the batch makes stale are
        deleted in the same transaction; the whole write holds the rollup
        lock, so a rollup being computed either sees it or is not stored.
        """
        with self._rollup_lock:
            with self.transaction() as cur:
                if batch.cameras:
                    cur.executemany(
                        self._sql(
                            "INSERT INTO cameras (ward, camera, name, first_seen, last_seen) VALUES (?, ?, ?, ?, ?) "
                            "ON CONFLICT (ward, camera) DO UPDATE SET "
                            "name = COALESCE(excluded.name, cameras.name), "
                            "last_seen = CASE WHEN excluded.last_seen > cameras.last_seen "
                            "THEN excluded.last_seen ELSE cameras.last_seen END"
                        ),
                        [(ward, camera, name, seen, seen) for ward, camera, name, seen in batch.cameras.values()],
                    )
                fresh = self._write_events(cur, batch.events, batch.received)
                stale = self._stale_from(cur, batch.assertions)
                if batch.assertions:
                    cur.executemany(
                        self._sql(
                            "INSERT INTO assertions (ward, camera, start_ts, end_ts, state, problems) "
                            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (ward, camera, start_ts, state, problems) "
                            "DO UPDATE SET end_ts = CASE WHEN excluded.end_ts > assertions.end_ts "
                            "THEN excluded.end_ts ELSE assertions.end_ts END"
                        ),
                        [
                            (ward, camera, start, to_sql(end), state, problems)
                            for (ward, camera, start, state, problems), end in batch.assertions.items()
                        ],
                    )
                if stale:
                    self._rollup_gen += 1  # a rollup computed meanwhile from older assertions is not kept
                    cur.executemany(
                        self._sql("DELETE FROM rollups WHERE ward = ? AND camera = ? AND day_end > ?"),
                        [(ward, camera, since) for (ward, camera), since in stale.items()],
                    )
                if batch.agents:  # already ordered by the ingest: the newest connection's word
                    cur.executemany(
                        self._sql(
                            "INSERT INTO agents (ward, state, problems, version, ts, reason, hostname, started_at, "
                            "seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (ward) DO UPDATE SET "
                            "state = excluded.state, problems = excluded.problems, version = excluded.version, "
                            "ts = excluded.ts, reason = excluded.reason, hostname = excluded.hostname, "
                            "started_at = excluded.started_at, seq = excluded.seq"
                        ),
                        [
                            (
                                a.ward,
                                a.state,
                                problems_text(a.problems),
                                a.version,
                                a.ts,
                                a.reason,
                                a.hostname,
                                a.started_at,
                                a.seq,
                            )
                            for a, _ in batch.agents.values()
                        ],
                    )
                if batch.heard:
                    cur.executemany(
                        self._sql(
                            "INSERT INTO heard (ward, ts) VALUES (?, ?) ON CONFLICT (ward) DO UPDATE SET "
                            "ts = CASE WHEN excluded.ts > heard.ts THEN excluded.ts ELSE heard.ts END"
                        ),
                        list(batch.heard.items()),
                    )
                if batch.snapshots:
                    cur.executemany(
                        self._sql(
                            "INSERT INTO snapshots (event_id, ward, camera, received, jpeg) VALUES (?, ?, ?, ?, ?) "
                            "ON CONFLICT (event_id) DO NOTHING"
                        ),
                        [
                            (event_id, ward, camera, batch.received, jpeg)
                            for event_id, ward, camera, jpeg in batch.snapshots
                        ],
                    )
            self._learn(batch.assertions)  # only once committed: a failed batch is tried again whole
        return fresh

    def _write_events(self, cur: Any, events: list[EventRow], received: float) -> list[bool]:
        if not events:
            return []
        sql = self._sql(
            "INSERT INTO events (id, ward, camera, ts, type, replayed, payload, received) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING"
        )
        rows = [(e.id, e.ward, e.camera, e.ts, e.type, int(e.replayed), e.payload, received) for e in events]
        if self.kind == "sqlite":  # in-process: a statement per row costs no round trip
            fresh = []
            for row in rows:
                cur.execute(sql, row)
                fresh.append(cur.rowcount == 1)
            return fresh
        inserted: set[str] = set()
        cur.executemany(sql + " RETURNING id", rows, returning=True)
        while True:
            got = cur.fetchone()
            if got is not None:
                inserted.add(got[0])
            if not cur.nextset():
                break
        out = []
        for e in events:  # the same id twice in one batch: the first is the new one
            out.append(e.id in inserted)
            inserted.discard(e.id)
        return out

    # --- rollups ---------------------------------------------------------------
    #
    # A rolled-up day of a camera stays true until a write changes what the
    # assertions say about that day (the winner where they overlap is the one
    # known latest: :func:`center.timeline.rank`). A new assertion changes the
    # camera from its start on. A longer end changes it from the old end on
    # (the added validity), and, since the row is now known later, wherever it
    # overlaps a rival it did not beat before: a row of the camera known between
    # the old end and the new one (from the later of the two starts). Only
    # assertions starting before ``_rolled_until`` (the end of the latest day
    # ever claimed for a rollup) can touch one. The old end of each row, and
    # each camera's latest-known row, are remembered after the first look, so a
    # heartbeat of a camera's current state costs no query.

    def _stale_from(self, cur: Any, assertions: dict[AssertionKey, float]) -> dict[tuple[str, str], float]:
        """Per camera, from when this batch changes what its assertions say about rolled-up days."""
        stale: dict[tuple[str, str], float] = {}
        by_camera: dict[tuple[str, str], list[tuple[AssertionKey, float]]] = {}
        for key, end in assertions.items():
            by_camera.setdefault((key[0], key[1]), []).append((key, end))
        for key, end in assertions.items():
            ward, camera, start, state, problems = key
            if start >= self._rolled_until:
                continue
            old = self._known.get(key)
            if old is None:
                cur.execute(
                    self._sql(
                        "SELECT end_ts FROM assertions WHERE ward = ? AND camera = ? AND start_ts = ? "
                        "AND state = ? AND problems = ?"
                    ),
                    (ward, camera, start, state, problems),
                )
                got = cur.fetchone()
                old = from_sql(got[0]) if got is not None else None
            if old is None:
                since = start  # a new row: it may win anywhere from its start
            elif end <= old:
                continue
            elif math.isinf(end):
                since = start  # now known at its start, earlier than before: anything may flip
            else:
                since = min(old, self._rival_from(cur, key, old, end, by_camera[(ward, camera)]))
            if since < self._rolled_until:
                stale[(ward, camera)] = min(since, stale.get((ward, camera), since))
        return stale

    def _rival_from(
        self, cur: Any, key: AssertionKey, old: float, new: float, batch: list[tuple[AssertionKey, float]]
    ) -> float:
        """A row of the camera grows from ``old`` to ``new``: from when it may now beat a row it lost to (inf: none)."""
        ward, camera, start = key[0], key[1], key[2]
        rivals = [(k[2], known_at(k[2], e)) for k, e in batch if k != key]
        latest = self._latest.get((ward, camera))
        if latest is None or latest != (old, key):
            # Not known to be the camera's latest row: look at every row known at or after ``old``.
            cur.execute(
                self._sql(
                    "SELECT start_ts, end_ts, state, problems FROM assertions WHERE ward = ? AND camera = ? "
                    "AND end_ts >= ?"
                ),
                (ward, camera, old),
            )
            rows = [(k_start, from_sql(e), st, p) for k_start, e, st, p in cur.fetchall()]
            others = [(r[0], known_at(r[0], r[1])) for r in rows if (ward, camera, r[0], r[2], r[3]) != key]
            rivals += others
            top = max((k for _, k in others), default=-math.inf)
            if new > top:
                self._remember_latest(ward, camera, new, key)
            else:
                self._latest.pop((ward, camera), None)  # several rows or another one: looked up again next time
        since = math.inf
        for r_start, r_known in rivals:
            if old <= r_known <= new:
                since = min(since, max(start, r_start))
        return since

    def _remember_latest(self, ward: str, camera: str, known: float, key: AssertionKey) -> None:
        self._latest[(ward, camera)] = (known, key)
        self._latest.move_to_end((ward, camera))
        while len(self._latest) > KNOWN_ASSERTIONS:
            self._latest.popitem(last=False)

    def _learn(self, assertions: dict[AssertionKey, float]) -> None:
        known = self._known
        for key, end in assertions.items():
            cam = (key[0], key[1])
            latest = self._latest.get(cam)
            if latest is not None:  # keep the camera's latest-known row true
                stored = max(end, known.get(key, end))
                k = known_at(key[2], stored)
                if latest[1] == key and k >= latest[0]:
                    self._remember_latest(cam[0], cam[1], k, key)
                elif k >= latest[0]:
                    self._latest.pop(cam)  # another row is as recent or more: unsure, look again next time
            if key[2] >= self._rolled_until and key not in known:
                continue  # nothing rolled up can depend on it yet; looked up once when that changes
            known[key] = max(end, known.get(key, end))
            known.move_to_end(key)
        while len(known) > KNOWN_ASSERTIONS:
            known.popitem(last=False)

    def claim_rollups(self, until: float) -> int:
        """Before computing rollups of days ending by ``until``: a token for :meth:`put_rollups`.

        From now on writes about times before ``until`` are checked for staleness,
        and any write that makes a rollup stale changes the token.
        """
        with self._rollup_lock:
            self._rolled_until = max(self._rolled_until, until)
            return self._rollup_gen

    def put_rollups(self, token: int, unknown_after_s: float, rows: Sequence[RollupRow]) -> bool:
        """Keep rollups computed since :meth:`claim_rollups`; False (nothing kept) if a write made them stale."""
        with self._rollup_lock:
            if token != self._rollup_gen:
                return False
            with self.transaction() as cur:
                cur.executemany(
                    self._sql(
                        "INSERT INTO rollups (ward, camera, day_start, day_end, unknown_after_s, "
                        "online_s, degraded_s, offline_s, unknown_s) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
                        "ON CONFLICT (ward, camera, day_start, unknown_after_s) DO UPDATE SET "
                        "day_end = excluded.day_end, online_s = excluded.online_s, "
                        "degraded_s = excluded.degraded_s, offline_s = excluded.offline_s, "
                        "unknown_s = excluded.unknown_s"
                    ),
                    [(r.ward, r.camera, r.day_start, r.day_end, unknown_after_s, *r.seconds) for r in rows],
                )
        return True

    def rollup_sums(
        self, begin: float, end: float, unknown_after_s: float
    ) -> dict[tuple[str, str], tuple[int, tuple[float, float, float, float]]]:
        """Per camera: how many days inside [begin, end) are rolled up, and their seconds added (in SQL)."""
        rows = self._query(
            "SELECT ward, camera, count(*), sum(online_s), sum(degraded_s), sum(offline_s), sum(unknown_s) "
            "FROM rollups WHERE unknown_after_s = ? AND day_start >= ? AND day_end <= ? GROUP BY ward, camera",
            (unknown_after_s, begin, end),
        )
        return {(w, c): (int(n), (on, deg, off, unk)) for w, c, n, on, deg, off, unk in rows}

    def rollups(
        self, begin: float, end: float, unknown_after_s: float
    ) -> dict[tuple[str, str], dict[float, RollupRow]]:
        """The rollups of days inside [begin, end), per camera and day start."""
        rows = self._query(
            "SELECT ward, camera, day_start, day_end, online_s, degraded_s, offline_s, unknown_s FROM rollups "
            "WHERE unknown_after_s = ? AND day_start >= ? AND day_end <= ?",
            (unknown_after_s, begin, end),
        )
        out: dict[tuple[str, str], dict[float, RollupRow]] = {}
        for w, c, d0, d1, on, deg, off, unk in rows:
            out.setdefault((w, c), {})[d0] = RollupRow(w, c, d0, d1, (on, deg, off, unk))
        return out

    def add_maintenance(
        self, *, ward: str, camera: str | None, start: float, end: float, note: str, created_by: str, now: float
    ) -> int:
        if end <= start:
            raise ValueError("a maintenance window must end after it starts")
        with self.transaction() as cur:
            cur.execute(
                self._sql(
                    "INSERT INTO maintenance (ward, camera, start_ts, end_ts, note, created_by, created) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id"
                ),
                (ward, camera, start, end, note, created_by, now),
            )
            return int(cur.fetchone()[0])

    def delete_maintenance(self, window_id: int) -> bool:
        with self.transaction() as cur:
            cur.execute(self._sql("DELETE FROM maintenance WHERE id = ?"), (window_id,))
            return bool(cur.rowcount)

    # --- reads -------------------------------------------------------------------

    def agents(self) -> dict[str, AgentRow]:
        rows = self._query("SELECT ward, state, problems, version, ts, reason, hostname, started_at, seq FROM agents")
        return {
            w: AgentRow(w, st, problems_tuple(p), v, ts, r, h, float(sa), int(sq))
            for w, st, p, v, ts, r, h, sa, sq in rows
        }

    def heard(self) -> dict[str, float]:
        """When each ward's agent last spoke (its own messages' times; a last will does not count)."""
        return {w: float(ts) for w, ts in self._query("SELECT ward, ts FROM heard")}

    def cameras(self) -> list[CameraRow]:
        rows = self._query("SELECT ward, camera, name, first_seen, last_seen FROM cameras ORDER BY ward, camera")
        return [CameraRow(*r) for r in rows]

    def assertions(self, ward: str, camera: str, begin: float, end: float, unknown_after_s: float) -> list[Assertion]:
        """What may bear on the camera's state over [begin, end): started before it ends, valid after it begins."""
        rows = self._query(
            "SELECT start_ts, end_ts, state, problems FROM assertions "
            "WHERE ward = ? AND camera = ? AND end_ts > ? AND start_ts < ?",
            (ward, camera, begin - unknown_after_s, end),
        )
        return [Assertion(s, from_sql(e), _state(st), problems_tuple(p)) for s, e, st, p in rows]

    def all_assertions(
        self, begin: float, end: float, unknown_after_s: float
    ) -> dict[tuple[str, str], list[Assertion]]:
        """Every camera's assertions bearing on [begin, end), in one query."""
        return self._per_camera("end_ts > ? AND start_ts < ?", (begin - unknown_after_s, end))

    def holding_now(
        self, now: float, unknown_after_s: float
    ) -> dict[tuple[str, str], tuple[float, State, tuple[str, ...]]]:
        """Per camera, the assertion that wins at ``now`` as (start, state, problems), or nothing.

        The same winner as :func:`center.timeline.intervals` picks (known
        latest, then started latest, then most severe: :func:`center.timeline.rank`),
        chosen without building an object per row: the fleet page asks for
        this city-wide every time.
        """
        rows = self._query(
            "SELECT ward, camera, start_ts, end_ts, state, problems FROM assertions WHERE end_ts > ? AND start_ts <= ?",
            (now - unknown_after_s, now),
        )
        best: dict[tuple[str, str], tuple[tuple[float, float, tuple[bool, int], str], str]] = {}
        for w, c, start, end, state, problems in rows:
            known = start if end >= FOREVER_SQL else end
            r = ((-known, -start, TIE_BREAK[state], problems), state)
            old = best.get((w, c))
            if old is None or r < old:
                best[(w, c)] = r
        return {key: (-r[0][1], _state(r[1]), problems_tuple(r[0][3])) for key, r in best.items()}

    def _per_camera(self, where: str, args: Sequence[Any]) -> dict[tuple[str, str], list[Assertion]]:
        rows = self._query(
            f"SELECT ward, camera, start_ts, end_ts, state, problems FROM assertions WHERE {where}", args
        )
        out: dict[tuple[str, str], list[Assertion]] = {}
        for i, (w, c, s, e, st, p) in enumerate(rows):
            give_way(i)
            out.setdefault((w, c), []).append(Assertion(s, from_sql(e), _state(st), problems_tuple(p)))
        return out

    def cameras_in_state(self, state: str, begin: float, end: float, unknown_after_s: float) -> set[tuple[str, str]]:
        """Cameras asserted to be in ``state`` at some time bearing on [begin, end)."""
        rows = self._query(
            "SELECT DISTINCT ward, camera FROM assertions WHERE state = ? AND end_ts > ? AND start_ts < ?",
            (state, begin - unknown_after_s, end),
        )
        return {(w, c) for w, c in rows}

    def last_ends(self) -> dict[tuple[str, str], float | None]:
        """:meth:`last_end` of every camera in one statement (an index seek each, one round trip)."""
        rows = self._query(
            "SELECT c.ward, c.camera, (SELECT max(a.end_ts) FROM assertions a "
            "WHERE a.ward = c.ward AND a.camera = c.camera AND a.end_ts < ?) FROM cameras c",
            (FOREVER_SQL,),
        )
        return {(w, c): None if e is None else float(e) for w, c, e in rows}

    def last_end(self, ward: str, camera: str) -> float | None:
        """When the last finite assertion about a camera ended (an index seek)."""
        rows = self._query(
            "SELECT max(end_ts) FROM assertions WHERE ward = ? AND camera = ? AND end_ts < ?",
            (ward, camera, FOREVER_SQL),
        )
        return float(rows[0][0]) if rows and rows[0][0] is not None else None

    def events(
        self,
        ward: str | None = None,
        camera: str | None = None,
        since: float | None = None,
        types: Iterable[str] | None = None,
        limit: int = 100,
    ) -> list[EventRow]:
        where: list[str] = []
        args: list[Any] = []
        if ward is not None:
            where.append("ward = ?")
            args.append(ward)
        if camera is not None:
            where.append("camera = ?")
            args.append(camera)
        if since is not None:
            where.append("ts >= ?")
            args.append(since)
        kinds = list(types or [])
        if kinds:
            where.append("type IN (" + ", ".join("?" for _ in kinds) + ")")
            args.extend(kinds)
        sql = "SELECT id, ward, camera, ts, type, replayed, payload FROM events"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY ts DESC LIMIT ?"
        args.append(int(limit))
        return [EventRow(i, w, c, t, ty, bool(r), p) for i, w, c, t, ty, r, p in self._query(sql, args)]

    def snapshot(self, event_id: str) -> bytes | None:
        rows = self._query("SELECT jpeg FROM snapshots WHERE event_id = ?", (event_id,))
        return bytes(rows[0][0]) if rows else None

    def maintenance(self, begin: float, end: float) -> list[MaintenanceRow]:
        rows = self._query(
            "SELECT id, ward, camera, start_ts, end_ts, note, created_by FROM maintenance "
            "WHERE end_ts > ? AND start_ts < ? ORDER BY start_ts",
            (begin, end),
        )
        return [MaintenanceRow(*r) for r in rows]


def _state(text: str) -> State:
    for state in STATES:
        if text == state:
            return state
    raise StoreError(f"the store holds an unknown state {text!r}")


@dataclass
class WriteBatch:
    """What a burst of messages asserts, compacted before it reaches the database."""

    received: float
    cameras: dict[tuple[str, str], tuple[str, str, str | None, float]]
    assertions: dict[tuple[str, str, float, str, str], float]
    events: list[EventRow]
    snapshots: list[tuple[str, str, str, bytes]]
    agents: dict[str, tuple[AgentRow, tuple[float, int, int, str]]] = field(default_factory=dict)  # with its order
    heard: dict[str, float] = field(default_factory=dict)  # ward -> when it last spoke

    @classmethod
    def empty(cls, received: float) -> WriteBatch:
        return cls(received, {}, {}, [], [])

    def __len__(self) -> int:
        return (
            len(self.cameras)
            + len(self.assertions)
            + len(self.events)
            + len(self.snapshots)
            + len(self.agents)
            + len(self.heard)
        )

    def agent(self, row: AgentRow, order: tuple[float, int, int, str]) -> None:
        """A ward agent's status, ``order`` as :class:`center.ingest.StatusKey` orders it: the newest is kept."""
        old = self.agents.get(row.ward)
        if old is None or order >= old[1]:
            self.agents[row.ward] = (row, order)

    def camera(self, ward: str, camera: str, name: str | None, seen: float) -> None:
        old = self.cameras.get((ward, camera))
        if old is not None:
            name = name or old[2]
            seen = max(seen, old[3])
        self.cameras[(ward, camera)] = (ward, camera, name, seen)

    def assertion(self, ward: str, camera: str, a: Assertion) -> None:
        key = (ward, camera, a.start, a.state, problems_text(a.problems))
        self.assertions[key] = max(self.assertions.get(key, a.end), a.end)
