"""Accounts: scrypt password hashes (stdlib), checks that take as long for an unknown user, login throttling."""

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
# scrypt cost: one of OWASP's equivalent settings (N=2^15, r=8, p=3; 32 MiB, ~0.3 s per check here).
# Hashes made with other settings still verify (they carry theirs) and are redone at the next login.
_N, _R, _P = 2**15, 8, 3
_MAXMEM = 256 * 1024 * 1024
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
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=32, maxmem=_MAXMEM)
    b64 = base64.b64encode
    return f"scrypt${_N}${_R}${_P}${b64(salt).decode()}${b64(digest).decode()}"


def check_password(password: str, stored: str) -> bool:
    try:
        kind, n, r, p, salt, digest = stored.split("$")
        if kind != "scrypt":
            return False
        want = base64.b64decode(digest)
        got = hashlib.scrypt(
            password.encode(),
            salt=base64.b64decode(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=len(want),
            maxmem=_MAXMEM,
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, want)


def needs_rehash(stored: str) -> bool:
    """Whether a stored hash was made with weaker settings than today's."""
    parts = stored.split("$")
    return len(parts) != 6 or parts[0] != "scrypt" or (parts[1], parts[2], parts[3]) != (str(_N), str(_R), str(_P))


_dummy: list[str] = []


def prepare_dummy() -> None:
    """Make the hash unknown users are checked against (once, before the first login, so that the first one
    costs no more than any other)."""
    if not _dummy:
        _dummy.append(hash_password(secrets.token_urlsafe(16)))


def verify_login(password: str, stored: str | None) -> bool:
    """Check a password against a user's stored hash, or against a dummy one when there is no such user:
    a login takes as long either way, so user names cannot be probed by timing."""
    if stored is None:
        prepare_dummy()
        check_password(password, _dummy[0])
        return False
    return check_password(password, stored)


class LoginLimit:
    """Failed logins, counted per key over ``window_s``.

    A key is blocked after ``attempts`` failures: the web uses (user, address)
    pairs, so a stranger guessing the admin's password locks out only their own
    address, never the admin at theirs; and an address alone after
    ``attempts * 6``, spraying many names. Failures for a user from anywhere
    slow every further login of that name (:meth:`delay`) instead of blocking it.
    """

    SLOW_PER_FAILURE_S = 0.25
    SLOW_MAX_S = 3.0

    def __init__(self, attempts: int = 5, window_s: float = 300.0) -> None:
        self.attempts = attempts
        self.window_s = window_s
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    @staticmethod
    def keys(user: str, addr: str) -> list[str]:
        return [f"pair:{user}\x00{addr}", f"addr:{addr}"]

    def blocked_login(self, user: str, addr: str, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        with self._lock:
            return (
                len(self._recent(f"pair:{user}\x00{addr}", now)) >= self.attempts
                or len(self._recent(f"addr:{addr}", now)) >= self.attempts * 6
            )

    def failed_login(self, user: str, addr: str, now: float | None = None) -> None:
        self.failed([*self.keys(user, addr), f"user:{user}"], now)

    def delay(self, user: str, now: float | None = None) -> float:
        """Seconds to wait before answering a login for ``user``: grows with its recent failures from anywhere."""
        now = time.monotonic() if now is None else now
        with self._lock:
            over = len(self._recent(f"user:{user}", now)) - self.attempts
        return 0.0 if over < 0 else min(self.SLOW_MAX_S, self.SLOW_PER_FAILURE_S * (over + 1))

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
