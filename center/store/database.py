"""The database under the store: SQLite (WAL) by default, PostgreSQL by URL; a connection per thread, short
transactions, and the schema's numbered migrations.

One schema for both, written in the SQL they share; placeholders are ``?``
and become ``%s`` for PostgreSQL. Migrations are numbered steps applied in
order inside a transaction and recorded in ``schema_version``: an older
database is brought up to date at open, a newer one is refused.
"""

from __future__ import annotations

import math
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

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
    (  # 8: alerts: a condition that lasted too long, from when it fired until it ended, and who took it on
        """CREATE TABLE alerts (
            id {serial}, kind TEXT NOT NULL, ward TEXT NOT NULL, camera TEXT NOT NULL,
            since DOUBLE PRECISION NOT NULL, fired DOUBLE PRECISION NOT NULL, resolved DOUBLE PRECISION,
            detail TEXT NOT NULL, acked_by TEXT, acked DOUBLE PRECISION, ack_note TEXT)""",
        "CREATE INDEX alerts_open ON alerts (resolved)",
        "CREATE INDEX alerts_by_fired ON alerts (fired)",
    ),
)


def redact_url(url: str) -> str:
    """The store URL without its password (for errors and logs)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return parts._replace(netloc=netloc).geturl()


def problems_text(problems: Sequence[str]) -> str:
    return ",".join(problems)


def problems_tuple(text: str) -> tuple[str, ...]:
    return tuple(text.split(",")) if text else ()


def to_sql(t: float) -> float:
    return FOREVER_SQL if math.isinf(t) else t


def from_sql(t: float) -> float:
    return math.inf if t >= FOREVER_SQL else t


class Database:
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
