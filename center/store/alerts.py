"""The alerts the center raised: open ones, their end, and an operator's acknowledgement."""

from __future__ import annotations

from typing import Any

from center.store.database import Database
from center.store.rows import AlertRow

_COLUMNS = "id, kind, ward, camera, since, fired, resolved, detail, acked_by, acked, ack_note"


def _row(r: Any) -> AlertRow:
    return AlertRow(
        int(r[0]), r[1], r[2], r[3], float(r[4]), float(r[5]), None if r[6] is None else float(r[6]), r[7], *r[8:]
    )


class AlertBook(Database):
    """Alerts as rows: one open per (kind, ward, camera) at most, kept after they end (history)."""

    def open_alerts(self) -> list[AlertRow]:
        return [_row(r) for r in self._query(f"SELECT {_COLUMNS} FROM alerts WHERE resolved IS NULL ORDER BY id")]

    def alerts(self, since: float, limit: int = 500) -> list[AlertRow]:
        """Open alerts and those that fired or ended after ``since``, newest first."""
        rows = self._query(
            f"SELECT {_COLUMNS} FROM alerts WHERE resolved IS NULL OR resolved >= ? OR fired >= ? "
            "ORDER BY fired DESC LIMIT ?",
            (since, since, limit),
        )
        return [_row(r) for r in rows]

    def alert(self, alert_id: int) -> AlertRow | None:
        rows = self._query(f"SELECT {_COLUMNS} FROM alerts WHERE id = ?", (alert_id,))
        return _row(rows[0]) if rows else None

    def fire_alert(self, key: tuple[str, str, str], since: float, detail: str, now: float) -> AlertRow:
        """Open an alert for ``(kind, ward, camera)`` whose condition began at ``since``."""
        kind, ward, camera = key
        with self.transaction() as cur:
            cur.execute(
                self._sql(
                    "INSERT INTO alerts (kind, ward, camera, since, fired, detail) "
                    "VALUES (?, ?, ?, ?, ?, ?) RETURNING id"
                ),
                (kind, ward, camera, since, now, detail[:500]),
            )
            alert_id = int(cur.fetchone()[0])
        return AlertRow(alert_id, kind, ward, camera, since, now, None, detail[:500])

    def resolve_alert(self, alert_id: int, now: float) -> None:
        with self.transaction() as cur:
            cur.execute(self._sql("UPDATE alerts SET resolved = ? WHERE id = ? AND resolved IS NULL"), (now, alert_id))

    def ack_alert(self, alert_id: int, user: str, note: str, now: float) -> tuple[AlertRow | None, bool]:
        """An operator takes the alert on ("đã tiếp nhận"), with a note; the first who does keeps it.

        The alert as it is now (None: no such alert), and whether ``user`` took it on now (False: it was
        already taken on, by whoever ``acked_by`` names).
        """
        with self.transaction() as cur:
            cur.execute(
                self._sql("UPDATE alerts SET acked_by = ?, acked = ?, ack_note = ? WHERE id = ? AND acked_by IS NULL"),
                (user[:200], now, note[:1000], alert_id),
            )
            took = cur.rowcount == 1
        return self.alert(alert_id), took
