"""Logins: sessions kept in the store, and what a request carries of one."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass

from center.auth import token_sha256
from center.store import Store


@dataclass(frozen=True)
class Session:
    """Who is asking: a logged-in user (pages and API), or an API client for one request."""

    user: str
    role: str  # viewer | admin
    csrf: str  # the token every form of this session carries ("" for API clients)
    expires: float


class NeedLogin(Exception):
    """A page was asked for without a session: go to the login page."""


class Sessions:
    """Logins, kept in the store (a restart logs nobody out) and remembered here for ``RECHECK_S``.

    The cookie carries a random token; the store keeps its SHA-256. Each
    session is checked against the store again every ``RECHECK_S``, so a user
    whose password or role was reset (``add-user``) is logged out within that.
    """

    RECHECK_S = 30.0

    def __init__(self, store: Store, hours: float, clock: Callable[[], float]) -> None:
        self.store = store
        self.ttl = hours * 3600
        self.clock = clock
        self._seen: dict[str, tuple[Session, float]] = {}  # token -> (session, when checked)
        self._lock = threading.Lock()

    def new(self, user: str, role: str) -> str:
        token = secrets.token_urlsafe(32)
        now = self.clock()
        session = Session(user, role, secrets.token_urlsafe(24), now + self.ttl)
        self.store.put_session(token_sha256(token), user, session.csrf, session.expires)
        with self._lock:
            self._seen = {k: v for k, v in self._seen.items() if v[0].expires > now}
            self._seen[token] = (session, now)
        return token

    def get(self, token: str | None) -> Session | None:
        if not token:
            return None
        now = self.clock()
        with self._lock:
            hit = self._seen.get(token)
        if hit is not None and hit[0].expires > now and now - hit[1] < self.RECHECK_S:
            return hit[0]
        row = self.store.session(token_sha256(token), now)
        with self._lock:
            if row is None:
                self._seen.pop(token, None)
                return None
            session = Session(row.user, row.role, row.csrf, row.expires)
            self._seen[token] = (session, now)
            return session

    def drop(self, token: str | None) -> None:
        if not token:
            return
        with self._lock:
            self._seen.pop(token, None)
        self.store.drop_session(token_sha256(token))
