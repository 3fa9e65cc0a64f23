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
- ``users``: operator accounts (hashed passwords).

Times are UTC seconds (float). ``end_ts`` of a last will is +inf.
"""

from __future__ import annotations

import math
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from center.timeline import Assertion, State

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
)


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
    """A ward agent as it last described itself (its newest status message wins)."""

    ward: str
    state: str  # online | offline
    problems: tuple[str, ...]
    version: str
    ts: float
    reason: str = ""
    hostname: str = ""


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
        self._types = (
            {"serial": "INTEGER PRIMARY KEY", "blob": "BLOB"}
            if self.kind == "sqlite"
            else {"serial": "INTEGER GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY", "blob": "BYTEA"}
        )
        try:
            self.migrate()
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
        """Apply a batch in one transaction; for each event, whether it was new (False: a duplicate)."""
        fresh: list[bool] = []
        with self.transaction() as cur:
            for ward, camera, name, seen in batch.cameras.values():
                cur.execute(
                    self._sql(
                        "INSERT INTO cameras (ward, camera, name, first_seen, last_seen) VALUES (?, ?, ?, ?, ?) "
                        "ON CONFLICT (ward, camera) DO UPDATE SET "
                        "name = COALESCE(excluded.name, cameras.name), "
                        "last_seen = CASE WHEN excluded.last_seen > cameras.last_seen "
                        "THEN excluded.last_seen ELSE cameras.last_seen END"
                    ),
                    (ward, camera, name, seen, seen),
                )
            for event in batch.events:
                cur.execute(
                    self._sql(
                        "INSERT INTO events (id, ward, camera, ts, type, replayed, payload, received) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING"
                    ),
                    (
                        event.id,
                        event.ward,
                        event.camera,
                        event.ts,
                        event.type,
                        int(event.replayed),
                        event.payload,
                        batch.received,
                    ),
                )
                fresh.append(cur.rowcount == 1)
            for (ward, camera, start, state, problems), end in batch.assertions.items():
                cur.execute(
                    self._sql(
                        "INSERT INTO assertions (ward, camera, start_ts, end_ts, state, problems) "
                        "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (ward, camera, start_ts, state, problems) "
                        "DO UPDATE SET end_ts = CASE WHEN excluded.end_ts > assertions.end_ts "
                        "THEN excluded.end_ts ELSE assertions.end_ts END"
                    ),
                    (ward, camera, start, _to_sql(end), state, problems),
                )
            for a in batch.agents.values():
                cur.execute(
                    self._sql(
                        "INSERT INTO agents (ward, state, problems, version, ts, reason, hostname) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (ward) DO UPDATE SET "
                        "state = excluded.state, problems = excluded.problems, version = excluded.version, "
                        "ts = excluded.ts, reason = excluded.reason, hostname = excluded.hostname "
                        "WHERE excluded.ts >= agents.ts"
                    ),
                    (a.ward, a.state, _problems_text(a.problems), a.version, a.ts, a.reason, a.hostname),
                )
            for event_id, ward, camera, jpeg in batch.snapshots:
                cur.execute(
                    self._sql(
                        "INSERT INTO snapshots (event_id, ward, camera, received, jpeg) VALUES (?, ?, ?, ?, ?) "
                        "ON CONFLICT (event_id) DO NOTHING"
                    ),
                    (event_id, ward, camera, batch.received, jpeg),
                )
        return fresh

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

    def prune(self, now: float, retention_days: float, snapshot_retention_days: float) -> dict[str, int]:
        """Forget what is older than the retention (an assertion: when it ended); counts per table."""
        cut = now - retention_days * 86400
        snap_cut = now - snapshot_retention_days * 86400
        counts: dict[str, int] = {}
        with self.transaction() as cur:
            for table, sql, arg in (
                ("assertions", "DELETE FROM assertions WHERE end_ts < ?", cut),
                ("events", "DELETE FROM events WHERE ts < ?", cut),
                ("maintenance", "DELETE FROM maintenance WHERE end_ts < ?", cut),
                ("snapshots", "DELETE FROM snapshots WHERE received < ?", snap_cut),
            ):
                cur.execute(self._sql(sql), (arg,))
                counts[table] = max(cur.rowcount, 0)
        return counts

    # --- reads -------------------------------------------------------------------

    def agents(self) -> dict[str, AgentRow]:
        rows = self._query("SELECT ward, state, problems, version, ts, reason, hostname FROM agents")
        return {w: AgentRow(w, st, _problems_tuple(p), v, ts, r, h) for w, st, p, v, ts, r, h in rows}

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

    def valid_now(self, now: float, unknown_after_s: float) -> dict[tuple[str, str], list[Assertion]]:
        """Per camera, the assertions still holding at ``now`` (a handful per camera: an index range)."""
        return self._per_camera("end_ts > ? AND start_ts <= ?", (now - unknown_after_s, now))

    def _per_camera(self, where: str, args: Sequence[Any]) -> dict[tuple[str, str], list[Assertion]]:
        rows = self._query(
            f"SELECT ward, camera, start_ts, end_ts, state, problems FROM assertions WHERE {where}", args
        )
        out: dict[tuple[str, str], list[Assertion]] = {}
        for w, c, s, e, st, p in rows:
            out.setdefault((w, c), []).append(Assertion(s, _from_sql(e), _state(st), _problems_tuple(p)))
        return out

    def cameras_in_state(self, state: str, begin: float, end: float, unknown_after_s: float) -> set[tuple[str, str]]:
        """Cameras asserted to be in ``state`` at some time bearing on [begin, end)."""
        rows = self._query(
            "SELECT DISTINCT ward, camera FROM assertions WHERE state = ? AND end_ts > ? AND start_ts < ?",
            (state, begin - unknown_after_s, end),
        )
        return {(w, c) for w, c in rows}

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
    if text not in ("online", "degraded", "offline", "unknown"):
        raise StoreError(f"the store holds an unknown state {text!r}")
    return text  # type: ignore[return-value]


@dataclass
class WriteBatch:
    """What a burst of messages asserts, compacted before it reaches the database."""

    received: float
    cameras: dict[tuple[str, str], tuple[str, str, str | None, float]]
    assertions: dict[tuple[str, str, float, str, str], float]
    events: list[EventRow]
    snapshots: list[tuple[str, str, str, bytes]]
    agents: dict[str, AgentRow] = field(default_factory=dict)

    @classmethod
    def empty(cls, received: float) -> WriteBatch:
        return cls(received, {}, {}, [], [])

    def __len__(self) -> int:
        return len(self.cameras) + len(self.assertions) + len(self.events) + len(self.snapshots) + len(self.agents)

    def agent(self, row: AgentRow) -> None:
        old = self.agents.get(row.ward)
        if old is None or row.ts >= old.ts:
            self.agents[row.ward] = row

    def camera(self, ward: str, camera: str, name: str | None, seen: float) -> None:
        old = self.cameras.get((ward, camera))
        if old is not None:
            name = name or old[2]
            seen = max(seen, old[3])
        self.cameras[(ward, camera)] = (ward, camera, name, seen)

    def assertion(self, ward: str, camera: str, a: Assertion) -> None:
        key = (ward, camera, a.start, a.state, _problems_text(a.problems))
        self.assertions[key] = max(self.assertions.get(key, a.end), a.end)
