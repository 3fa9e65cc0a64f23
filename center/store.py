"""Where the center keeps what it learned: SQLite (WAL) by default, PostgreSQL by URL.

One schema for both, written in the SQL they share; placeholders are ``?``
and become ``%s`` for PostgreSQL. Migrations are numbered steps applied in
order inside a transaction and recorded in ``schema_version``: an older
database is brought up to date at open, a newer one is refused.

What is stored:

- ``cameras``: every camera the wards told us of (the fleet is learned);
- ``assertions``: compacted — a camera's heartbeats all repeat the same
  ``since``, so (camera, start, state, problems) is one row whose ``end_ts``
  only grows. Rows grow with state changes, not with time;
- ``events``: every contract event once (primary key = its id: at-least-once
  delivery is deduplicated by the database itself);
- ``snapshots``: event JPEGs, kept ``snapshot_retention_days``;
- ``maintenance``: windows per camera or per ward, excluded from uptime;
- ``users``: operator accounts (hashed passwords); ``sessions``: their
  logins (the SHA-256 of the cookie's token), so a restart logs nobody out;
- ``rollups``: each camera's seconds per state over a whole local day, so
  that a month over the city adds up rows instead of replaying assertions.
  A rollup is a cache of what the assertions say: a write that changes what
  they say about a rolled-up day deletes that camera's rollups from then on
  (see :meth:`Store.write`), and they are computed again when asked.

Times are UTC seconds (float). ``end_ts`` of a last will is +inf.
"""

from __future__ import annotations

import math
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from center.background import give_way
from center.timeline import TIE_BREAK, Assertion, known_at
from contract.vocab import STATES, State

AssertionKey = tuple[str, str, float, str, str]  # ward, camera, start, state, problems (text)
ROLLUPS_SCHEMA = 4  # the migration that made the rollups table
KNOWN_ASSERTIONS = 100_000  # assertion rows whose end is remembered (a few per camera suffice)
FOREVER_SQL = 1e300  # +inf as stored: PostgreSQL and SQLite both take it as a plain double


class StoreError(RuntimeError):
    """The store cannot be opened or used; the message names the URL (redacted) and why."""


MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (  # 1: the first schema
        """CREATE TABLE cameras (
            ward TEXT NOT NULL, camera TEXT NOT NULL, name TEXT,
            first_seen DOUBLE PRECISION NOT NULL, last_seen DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (ward, camera))""",
        """CREATE TABLE assertions (
            ward TEXT NOT NULL, camera TEXT NOT NULL,
            start_ts DOUBLE PRECISION NOT NULL, end_ts DOUBLE PRECISION NOT NULL,
            state TEXT NOT NULL, problems TEXT NOT NULL,
            PRIMARY KEY (ward, camera, start_ts, state, problems))""",
        "CREATE INDEX assertions_by_end ON assertions (ward, camera, end_ts)",
        """CREATE TABLE events (
            id TEXT PRIMARY KEY, ward TEXT NOT NULL, camera TEXT NOT NULL,
            ts DOUBLE PRECISION NOT NULL, type TEXT NOT NULL, replayed INTEGER NOT NULL,
            payload TEXT NOT NULL, received DOUBLE PRECISION NOT NULL)""",
        "CREATE INDEX events_by_camera ON events (ward, camera, ts)",
        "CREATE INDEX events_by_ts ON events (ts)",
        """CREATE TABLE snapshots (
            event_id TEXT PRIMARY KEY, ward TEXT NOT NULL, camera TEXT NOT NULL,
            received DOUBLE PRECISION NOT NULL, jpeg {blob} NOT NULL)""",
        "CREATE INDEX snapshots_by_received ON snapshots (received)",
        """CREATE TABLE maintenance (
            id {serial}, ward TEXT NOT NULL, camera TEXT,
            start_ts DOUBLE PRECISION NOT NULL, end_ts DOUBLE PRECISION NOT NULL,
            note TEXT NOT NULL, created_by TEXT NOT NULL, created DOUBLE PRECISION NOT NULL)""",
        """CREATE TABLE users (
            name TEXT PRIMARY KEY, role TEXT NOT NULL, password_hash TEXT NOT NULL,
            created DOUBLE PRECISION NOT NULL)""",
    ),
    (  # 2: what holds now is found by end time alone (the fleet page)
        "CREATE INDEX assertions_by_end_ts ON assertions (end_ts)",
    ),
    (  # 3: API tokens for the center's other systems (only their SHA-256 is kept); each ward agent's status
        """CREATE TABLE agents (
            ward TEXT PRIMARY KEY, state TEXT NOT NULL, problems TEXT NOT NULL, version TEXT NOT NULL,
            ts DOUBLE PRECISION NOT NULL, reason TEXT NOT NULL, hostname TEXT NOT NULL)""",
        """CREATE TABLE api_tokens (
            name TEXT PRIMARY KEY, token_sha256 TEXT NOT NULL UNIQUE, role TEXT NOT NULL,
            created DOUBLE PRECISION NOT NULL)""",
    ),
    (  # 4: seconds per state of each camera's whole local days (long periods add these up)
        """CREATE TABLE rollups (
            ward TEXT NOT NULL, camera TEXT NOT NULL,
            day_start DOUBLE PRECISION NOT NULL, day_end DOUBLE PRECISION NOT NULL,
            unknown_after_s DOUBLE PRECISION NOT NULL,
            online_s DOUBLE PRECISION NOT NULL, degraded_s DOUBLE PRECISION NOT NULL,
            offline_s DOUBLE PRECISION NOT NULL, unknown_s DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (ward, camera, day_start, unknown_after_s))""",
        "CREATE INDEX rollups_by_day ON rollups (day_start)",
    ),
    (  # 5: logins survive a restart of the center (only the token's SHA-256 is kept)
        """CREATE TABLE sessions (
            token_sha256 TEXT PRIMARY KEY, user_name TEXT NOT NULL, csrf TEXT NOT NULL,
            expires DOUBLE PRECISION NOT NULL)""",
    ),
    (  # 6: each agent status's connection (a will of an old one is not believed); when each ward last spoke
        "ALTER TABLE agents ADD COLUMN started_at DOUBLE PRECISION NOT NULL DEFAULT 0",
        "ALTER TABLE agents ADD COLUMN seq BIGINT NOT NULL DEFAULT -1",
        "CREATE TABLE heard (ward TEXT PRIMARY KEY, ts DOUBLE PRECISION NOT NULL)",
    ),
    (  # 7: the audit trail: who did what, when, from where (logins, maintenance, snapshot and report views)
        """CREATE TABLE audit (
            id {serial}, ts DOUBLE PRECISION NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL,
            detail TEXT NOT NULL, addr TEXT NOT NULL)""",
        "CREATE INDEX audit_by_ts ON audit (ts)",
    ),
)


@dataclass(frozen=True)
class AuditRow:
    id: int
    ts: float
    actor: str  # a user name, "token:NAME", or "cli"
    action: str  # login, login_failed, logout, maintenance_added, ..., snapshot_viewed, report_viewed
    detail: str
    addr: str  # the client's address ("cli" for the command line)


@dataclass(frozen=True)
class CameraRow:
    ward: str
    camera: str
    name: str | None
    first_seen: float
    last_seen: float


@dataclass(frozen=True)
class EventRow:
    id: str
    ward: str
    camera: str
    ts: float
    type: str
    replayed: bool
    payload: str


@dataclass(frozen=True)
class AgentRow:
    """A ward agent as its newest connection last described itself."""

    ward: str
    state: str  # online | offline
    problems: tuple[str, ...]
    version: str
    ts: float  # since when it is in this state (gone: when the ward was last heard from)
    reason: str = ""  # offline: lost (last will) | shutdown
    hostname: str = ""
    started_at: float = 0.0  # the agent process's start
    seq: int = -1  # its connection number (-1: none given)


@dataclass(frozen=True)
class RollupRow:
    """A camera's seconds (online, degraded, offline, unknown) over the local day [day_start, day_end)."""

    ward: str
    camera: str
    day_start: float
    day_end: float
    seconds: tuple[float, float, float, float]


@dataclass(frozen=True)
class MaintenanceRow:
    id: int
    ward: str
    camera: str | None
    start: float
    end: float
    note: str
    created_by: str


def _problems_text(problems: Sequence[str]) -> str:
    return ",".join(problems)


def _problems_tuple(text: str) -> tuple[str, ...]:
    return tuple(text.split(",")) if text else ()


def _to_sql(t: float) -> float:
    return FOREVER_SQL if math.isinf(t) else t


def _from_sql(t: float) -> float:
    return math.inf if t >= FOREVER_SQL else t


def redact_url(url: str) -> str:
    """The store URL without its password (for errors and logs)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return parts._replace(netloc=netloc).geturl()


class Store:
    """A connection per thread to one database; every write is one short transaction."""

    def __init__(self, url: str) -> None:
        self.url = url
        parts = urlsplit(url)
        self.kind = parts.scheme.split("+")[0]
        self._local = threading.local()
        self._connections: list[Any] = []
        self._lock = threading.Lock()
        if self.kind == "sqlite":
            # sqlite:////abs/path.db, sqlite:///rel/path.db, sqlite:///:memory: is refused (one connection per thread)
            path = unquote(parts.path)[1:] if parts.path.startswith("/") else unquote(parts.path)
            if not path or path == ":memory:":
                raise StoreError(f"store url {url!r}: give a file, e.g. sqlite:////var/lib/camwatch/center.db")
            self.path: Path | None = Path(path)
        elif self.kind in ("postgresql", "postgres"):
            self.path = None
        else:
            raise StoreError(f"store url {redact_url(url)!r}: use sqlite:///PATH or postgresql://USER@HOST/DB")
        self._placeholder = "?" if self.kind == "sqlite" else "%s"
        self._rollup_lock = threading.Lock()
        self._rollup_gen = 0
        self._rolled_until = -math.inf
        self._known: OrderedDict[AssertionKey, float] = OrderedDict()  # assertion row -> its end as stored
        # per camera: (when its latest-known row is known, that row), kept only while sure it is the only one
        self._latest: OrderedDict[tuple[str, str], tuple[float, AssertionKey]] = OrderedDict()
        self._types = (
            {"serial": "INTEGER PRIMARY KEY", "blob": "BLOB"}
            if self.kind == "sqlite"
            else {"serial": "INTEGER GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY", "blob": "BYTEA"}
        )
        try:
            self.migrate()
            if self.schema_version() >= ROLLUPS_SCHEMA:
                last = self._query("SELECT max(day_end) FROM rollups")[0][0]
                self._rolled_until = float(last) if last is not None else -math.inf
        except BaseException:
            self.close()  # refused (e.g. a newer schema): leave no connection behind
            raise

    # --- connections -------------------------------------------------------

    def _connect(self) -> Any:
        if self.kind == "sqlite":
            assert self.path is not None
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.execute("PRAGMA foreign_keys=ON")
            except (OSError, sqlite3.Error) as exc:
                raise StoreError(f"cannot open the store {self.path}: {exc}") from None
            return conn
        try:
            import psycopg
        except ImportError:
            raise StoreError("a postgresql:// store needs psycopg: pip install 'camwatch[postgres]'") from None
        try:
            return psycopg.connect(self.url, autocommit=True)
        except psycopg.Error as exc:
            raise StoreError(f"cannot connect to {redact_url(self.url)}: {str(exc).strip()}") from None

    def _conn(self) -> Any:
        conn = getattr(self._local, "conn", None)
        if conn is not None and (getattr(conn, "closed", False) or getattr(conn, "broken", False)):
            conn = None  # the server went away (PostgreSQL restarted): connect again
            with self._lock:
                self._connections = [c for c in self._connections if c is not self._local.conn]
        if conn is None:
            conn = self._connect()
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    def close(self) -> None:
        with self._lock:
            for conn in self._connections:
                try:
                    conn.close()
                except Exception:  # closing at shutdown: nothing useful to do with an error
                    pass
            self._connections.clear()
        self._local = threading.local()

    def _sql(self, sql: str) -> str:
        return sql if self._placeholder == "?" else sql.replace("?", "%s")

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        """A cursor inside BEGIN ... COMMIT (ROLLBACK on error)."""
        conn = self._conn()
        cur = conn.cursor()
        cur.execute("BEGIN IMMEDIATE" if self.kind == "sqlite" else "BEGIN")
        try:
            yield cur
        except BaseException:
            try:
                cur.execute("ROLLBACK")
            except Exception:  # the connection itself is gone: the original error says why
                pass
            raise
        else:
            cur.execute("COMMIT")
        finally:
            cur.close()

    def _query(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        for attempt in (1, 2):
            conn = self._conn()
            cur = conn.cursor()
            try:
                cur.execute(self._sql(sql), tuple(args))
                return list(cur.fetchall())
            except Exception:
                # A read on a connection the server dropped (PostgreSQL restarted) is tried once more
                # on a new one; anything else, or a second failure, is the caller's to handle.
                if attempt == 2 or not (getattr(conn, "closed", False) or getattr(conn, "broken", False)):
                    raise
            finally:
                cur.close()
        raise AssertionError("unreachable")

    # --- schema --------------------------------------------------------------

    def schema_version(self) -> int:
        rows = self._query("SELECT max(version) FROM schema_version")
        return int(rows[0][0] or 0)

    def migrate(self) -> None:
        with self.transaction() as cur:
            cur.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY)")
            cur.execute("SELECT max(version) FROM schema_version")
            current = int(cur.fetchone()[0] or 0)
            if current > len(MIGRATIONS):
                raise StoreError(
                    f"the store {redact_url(self.url)} has schema {current}, newer than this camwatch knows "
                    f"({len(MIGRATIONS)}): upgrade camwatch"
                )
            for version in range(current + 1, len(MIGRATIONS) + 1):
                for statement in MIGRATIONS[version - 1]:
                    cur.execute(statement.format(**self._types))
                cur.execute(self._sql("INSERT INTO schema_version (version) VALUES (?)"), (version,))

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
                            (ward, camera, start, _to_sql(end), state, problems)
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
                                _problems_text(a.problems),
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
                old = _from_sql(got[0]) if got is not None else None
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
            rows = [(k_start, _from_sql(e), st, p) for k_start, e, st, p in cur.fetchall()]
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

    def put_user(self, name: str, role: str, password_hash: str, now: float) -> None:
        with self.transaction() as cur:
            cur.execute(
                self._sql(
                    "INSERT INTO users (name, role, password_hash, created) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT (name) DO UPDATE SET role = excluded.role, password_hash = excluded.password_hash"
                ),
                (name, role, password_hash, now),
            )
            cur.execute(self._sql("DELETE FROM sessions WHERE user_name = ?"), (name,))  # log in again

    def delete_user(self, name: str) -> bool:
        """Remove a user and end their sessions; whether there was one."""
        with self.transaction() as cur:
            cur.execute(self._sql("DELETE FROM sessions WHERE user_name = ?"), (name,))
            cur.execute(self._sql("DELETE FROM users WHERE name = ?"), (name,))
            return bool(cur.rowcount)

    def delete_token(self, name: str) -> bool:
        """Revoke the API token called ``name``; whether there was one."""
        with self.transaction() as cur:
            cur.execute(self._sql("DELETE FROM api_tokens WHERE name = ?"), (name,))
            return bool(cur.rowcount)

    def users(self) -> list[tuple[str, str]]:
        """(name, role) of every user."""
        return [(r[0], r[1]) for r in self._query("SELECT name, role FROM users ORDER BY name")]

    def tokens(self) -> list[tuple[str, str]]:
        """(name, role) of every API token."""
        return [(r[0], r[1]) for r in self._query("SELECT name, role FROM api_tokens ORDER BY name")]

    def audit(self, actor: str, action: str, detail: str, addr: str, now: float) -> None:
        """Add an entry to the audit trail."""
        with self.transaction() as cur:
            cur.execute(
                self._sql("INSERT INTO audit (ts, actor, action, detail, addr) VALUES (?, ?, ?, ?, ?)"),
                (now, actor[:200], action, detail[:500], addr[:100]),
            )

    def audit_log(self, limit: int = 200, before_id: int | None = None) -> list[AuditRow]:
        """The newest audit entries first (older ones: pass the last id seen as ``before_id``)."""
        rows = self._query(
            "SELECT id, ts, actor, action, detail, addr FROM audit WHERE id < ? ORDER BY id DESC LIMIT ?",
            (before_id if before_id is not None else 2**62, limit),
        )
        return [AuditRow(int(r[0]), float(r[1]), r[2], r[3], r[4], r[5]) for r in rows]

    def put_session(self, token_sha256: str, user: str, csrf: str, expires: float) -> None:
        with self.transaction() as cur:
            cur.execute(
                self._sql("INSERT INTO sessions (token_sha256, user_name, csrf, expires) VALUES (?, ?, ?, ?)"),
                (token_sha256, user, csrf, expires),
            )

    def session(self, token_sha256: str, now: float) -> tuple[str, str, str, float] | None:
        """(user, role now, csrf, expires) of a live session whose user still exists, or None."""
        rows = self._query(
            "SELECT s.user_name, u.role, s.csrf, s.expires FROM sessions s JOIN users u ON u.name = s.user_name "
            "WHERE s.token_sha256 = ? AND s.expires > ?",
            (token_sha256, now),
        )
        return (rows[0][0], rows[0][1], rows[0][2], float(rows[0][3])) if rows else None

    def drop_session(self, token_sha256: str) -> None:
        with self.transaction() as cur:
            cur.execute(self._sql("DELETE FROM sessions WHERE token_sha256 = ?"), (token_sha256,))

    def prune(self, now: float, retention_days: float, snapshot_retention_days: float) -> dict[str, int]:
        """Forget what is older than the retention (an assertion: when it ended); counts per table."""
        cut = now - retention_days * 86400
        snap_cut = now - snapshot_retention_days * 86400
        counts: dict[str, int] = {}
        with self._rollup_lock, self.transaction() as cur:
            for table, sql, arg in (
                ("assertions", "DELETE FROM assertions WHERE end_ts < ?", cut),
                ("events", "DELETE FROM events WHERE ts < ?", cut),
                ("maintenance", "DELETE FROM maintenance WHERE end_ts < ?", cut),
                ("snapshots", "DELETE FROM snapshots WHERE received < ?", snap_cut),
                ("sessions", "DELETE FROM sessions WHERE expires < ?", now),
                ("audit", "DELETE FROM audit WHERE ts < ?", cut),
                # the day at the edge may have lost assertions that reached into it
                ("rollups", "DELETE FROM rollups WHERE day_start < ?", cut + 86400),
            ):
                cur.execute(self._sql(sql), (arg,))
                counts[table] = max(cur.rowcount, 0)
            self._known.clear()
            self._latest.clear()
            self._rollup_gen += 1
        return counts

    # --- reads -------------------------------------------------------------------

    def agents(self) -> dict[str, AgentRow]:
        rows = self._query("SELECT ward, state, problems, version, ts, reason, hostname, started_at, seq FROM agents")
        return {
            w: AgentRow(w, st, _problems_tuple(p), v, ts, r, h, float(sa), int(sq))
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
        return [Assertion(s, _from_sql(e), _state(st), _problems_tuple(p)) for s, e, st, p in rows]

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
        return {key: (-r[0][1], _state(r[1]), _problems_tuple(r[0][3])) for key, r in best.items()}

    def _per_camera(self, where: str, args: Sequence[Any]) -> dict[tuple[str, str], list[Assertion]]:
        rows = self._query(
            f"SELECT ward, camera, start_ts, end_ts, state, problems FROM assertions WHERE {where}", args
        )
        out: dict[tuple[str, str], list[Assertion]] = {}
        for i, (w, c, s, e, st, p) in enumerate(rows):
            give_way(i)
            out.setdefault((w, c), []).append(Assertion(s, _from_sql(e), _state(st), _problems_tuple(p)))
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

    def put_token(self, name: str, role: str, token_sha256: str, now: float) -> None:
        """Create or replace (a new secret) the API token called ``name``."""
        with self.transaction() as cur:
            cur.execute(self._sql("DELETE FROM api_tokens WHERE name = ?"), (name,))
            cur.execute(
                self._sql("INSERT INTO api_tokens (name, token_sha256, role, created) VALUES (?, ?, ?, ?)"),
                (name, token_sha256, role, now),
            )

    def token(self, token_sha256: str) -> tuple[str, str] | None:
        """(name, role) of the API token with this hash, or None."""
        rows = self._query("SELECT name, role FROM api_tokens WHERE token_sha256 = ?", (token_sha256,))
        return (rows[0][0], rows[0][1]) if rows else None

    def user(self, name: str) -> tuple[str, str] | None:
        """(role, password hash) of a user, or None."""
        rows = self._query("SELECT role, password_hash FROM users WHERE name = ?", (name,))
        return (rows[0][0], rows[0][1]) if rows else None


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
        key = (ward, camera, a.start, a.state, _problems_text(a.problems))
        self.assertions[key] = max(self.assertions.get(key, a.end), a.end)
