"""Accounts: scrypt password hashes (stdlib), constant-time checks, a login rate limit."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import threading
import time
from collections import deque

ROLES = ("viewer", "admin")
_N, _R, _P = 2**14, 8, 1  # scrypt cost: ~50 ms and 16 MB per check
_NAME = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def valid_user_name(name: str) -> bool:
    return bool(_NAME.match(name))


def new_token() -> tuple[str, str]:
    """A new API token and its SHA-256 (what is stored: the token itself is shown once)."""
    token = "cw_" + secrets.token_urlsafe(32)
    return token, token_sha256(token)


def token_sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    b64 = base64.b64encode
    return f"scrypt${_N}${_R}${_P}${b64(salt).decode()}${b64(digest).decode()}"


def check_password(password: str, stored: str) -> bool:
    try:
        kind, n, r, p, salt, digest = stored.split("$")
        if kind != "scrypt":
            return False
        want = base64.b64decode(digest)
        got = hashlib.scrypt(
            password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p), dklen=len(want)
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, want)


class LoginLimit:
    """At most ``attempts`` failed logins per ``window_s`` per key (user name and client address)."""

    def __init__(self, attempts: int = 5, window_s: float = 300.0) -> None:
        self.attempts = attempts
        self.window_s = window_s
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float]:
        q = self._failures.setdefault(key, deque())
        while q and q[0] <= now - self.window_s:
            q.popleft()
        return q

    def blocked(self, keys: list[str], now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        with self._lock:
            return any(len(self._recent(k, now)) >= self.attempts for k in keys)

    def failed(self, keys: list[str], now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            for k in keys:
                self._recent(k, now).append(now)
            if len(self._failures) > 10_000:  # bounded: forget keys with no recent failure
                self._failures = {k: q for k, q in self._failures.items() if q and q[-1] > now - self.window_s}
