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

The package: :mod:`~center.store.database` (connections, dialects, the
schema and its migrations), :mod:`~center.store.history` (what the cameras
did, rollups), :mod:`~center.store.accounts` (users, API tokens, sessions,
the audit trail), :mod:`~center.store.rows` (what reads give back).
"""

from __future__ import annotations

from center.store.accounts import Accounts
from center.store.alerts import AlertBook
from center.store.database import MIGRATIONS, StoreError, redact_url
from center.store.history import AssertionKey, History, WriteBatch
from center.store.rows import (
    AgentRow,
    AlertRow,
    AuditRow,
    CameraRow,
    Credentials,
    EventRow,
    MaintenanceRow,
    RollupRow,
    SessionRow,
    TokenRow,
    UserRow,
)

__all__ = [
    "MIGRATIONS",
    "AgentRow",
    "AlertRow",
    "AssertionKey",
    "AuditRow",
    "CameraRow",
    "Credentials",
    "EventRow",
    "MaintenanceRow",
    "RollupRow",
    "SessionRow",
    "Store",
    "StoreError",
    "TokenRow",
    "UserRow",
    "WriteBatch",
    "redact_url",
]


class Store(History, Accounts, AlertBook):
    """The center's one store: its history, its accounts and its alerts over one database."""

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
