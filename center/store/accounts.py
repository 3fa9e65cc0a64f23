"""Operator accounts, API tokens, login sessions and the audit trail."""

from __future__ import annotations

from center.store.database import Database
from center.store.rows import AuditRow, Credentials, SessionRow, TokenRow, UserRow


class Accounts(Database):
    """Who may use the center, and what they did."""

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

    def users(self) -> list[UserRow]:
        return [UserRow(r[0], r[1]) for r in self._query("SELECT name, role FROM users ORDER BY name")]

    def tokens(self) -> list[TokenRow]:
        return [TokenRow(r[0], r[1]) for r in self._query("SELECT name, role FROM api_tokens ORDER BY name")]

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

    def session(self, token_sha256: str, now: float) -> SessionRow | None:
        """A live session whose user still exists (with the user's role now), or None."""
        rows = self._query(
            "SELECT s.user_name, u.role, s.csrf, s.expires FROM sessions s JOIN users u ON u.name = s.user_name "
            "WHERE s.token_sha256 = ? AND s.expires > ?",
            (token_sha256, now),
        )
        return SessionRow(rows[0][0], rows[0][1], rows[0][2], float(rows[0][3])) if rows else None

    def drop_session(self, token_sha256: str) -> None:
        with self.transaction() as cur:
            cur.execute(self._sql("DELETE FROM sessions WHERE token_sha256 = ?"), (token_sha256,))

    def put_token(self, name: str, role: str, token_sha256: str, now: float) -> None:
        """Create or replace (a new secret) the API token called ``name``."""
        with self.transaction() as cur:
            cur.execute(self._sql("DELETE FROM api_tokens WHERE name = ?"), (name,))
            cur.execute(
                self._sql("INSERT INTO api_tokens (name, token_sha256, role, created) VALUES (?, ?, ?, ?)"),
                (name, token_sha256, role, now),
            )

    def token(self, token_sha256: str) -> TokenRow | None:
        """The API token with this hash, or None."""
        rows = self._query("SELECT name, role FROM api_tokens WHERE token_sha256 = ?", (token_sha256,))
        return TokenRow(rows[0][0], rows[0][1]) if rows else None

    def user(self, name: str) -> Credentials | None:
        """What a login as ``name`` is checked against, or None (no such user)."""
        rows = self._query("SELECT role, password_hash FROM users WHERE name = ?", (name,))
        return Credentials(rows[0][0], rows[0][1]) if rows else None
