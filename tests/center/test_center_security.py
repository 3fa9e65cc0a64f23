"""The center's web, attacked: headers, HTTPS, logins that leak nothing and lock nobody out, the audit trail,
removing users and revoking tokens. A real uvicorn serving the real app on a real SQLite store."""

from __future__ import annotations

import base64
import hashlib
import re
import ssl
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from support import camwatch

from agent.sim.mosquitto import run_pki
from agent.sim.rtsp import free_port
from center import auth
from center.auth import hash_password, new_token
from center.config import parse_center_config
from center.store import Store
from center.web import WebServer, build_app

PASSWORD = "correct horse battery"


@pytest.fixture
def store(workdir: Path) -> Iterator[Store]:
    s = Store(f"sqlite:///{workdir}/center.db")
    s.migrate()
    now = time.time()
    s.put_user("admin", "admin", hash_password(PASSWORD), now)
    s.put_user("op", "viewer", hash_password(PASSWORD), now)
    yield s
    s.close()


def serve(store: Store, workdir: Path, **web: Any) -> tuple[str, WebServer]:
    port = free_port()
    config = parse_center_config({"web": {"listen": f"127.0.0.1:{port}", **web}})
    w = config.web
    tls = (w.tls_cert, w.tls_key) if w.tls_cert and w.tls_key else None
    server = WebServer(build_app(config, store), "127.0.0.1", port, tls=tls, trusted_proxies=w.trusted_proxies)
    server.start()
    return f"{'https' if tls else 'http'}://127.0.0.1:{port}", server


@pytest.fixture
def site(store: Store, workdir: Path) -> Iterator[str]:
    """Behind a (pretend) reverse proxy on 127.0.0.1: X-Forwarded-For says who the client is."""
    base, server = serve(store, workdir, trusted_proxies=["127.0.0.1"])
    yield base
    server.stop()


def login(c: httpx.Client, user: str, password: str, addr: str = "10.0.0.1") -> httpx.Response:
    page = c.get("/login", headers={"X-Forwarded-For": addr})
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    return c.post(
        "/login",
        data={"user": user, "password": password, "csrf": csrf, "next": "/"},
        headers={"X-Forwarded-For": addr},
    )


def test_every_answer_carries_the_security_headers_and_page_scripts_their_nonce(site: str) -> None:
    with httpx.Client(base_url=site) as c:
        assert login(c, "op", PASSWORD).status_code == 303
        page = c.get("/")
        csp = page.headers["content-security-policy"]
        nonce = re.search(r"'nonce-([^']+)'", csp).group(1)  # type: ignore[union-attr]
        assert f'<script nonce="{nonce}">' in page.text and f'<style nonce="{nonce}">' in page.text
        assert (
            "default-src 'none'" in csp
            and "frame-ancestors 'none'" in csp
            and "unsafe-inline'" not in csp.split("style-src-attr")[0]
        )
        assert c.get("/").headers["content-security-policy"] != csp  # a new nonce every answer
        for path in ("/", "/login", "/api/v1/cameras", "/report.csv"):
            h = c.get(path).headers
            assert h["x-frame-options"] == "DENY"
            assert h["x-content-type-options"] == "nosniff"
            assert h["referrer-policy"] == "same-origin"
            assert h["cache-control"] == "no-store"
            assert "strict-transport-security" not in h  # plain HTTP: no HSTS, no Secure cookie
        assert "secure" not in page.request.headers.get("cookie", "").lower()


def test_the_api_docs_are_behind_the_login_and_load_nothing_from_outside(site: str) -> None:
    with httpx.Client(base_url=site) as c:
        assert c.get("/api/v1/openapi.json").status_code == 401
        assert c.get("/api/v1/docs").status_code in (303, 404)
        assert c.get("/docs").status_code in (303, 404)
        assert login(c, "op", PASSWORD).status_code == 303
        doc = c.get("/api/v1/openapi.json").json()
        assert "/api/v1/cameras" in doc["paths"] and "/api/v1/audit" in doc["paths"]


def test_a_login_costs_the_same_whether_or_not_the_user_exists(site: str, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    real = hashlib.scrypt

    def counting(*args: Any, **kw: Any) -> bytes:
        calls.append(kw["n"])
        return real(*args, **kw)

    monkeypatch.setattr(hashlib, "scrypt", counting)  # the hashlib center.auth calls
    with httpx.Client(base_url=site) as c:
        assert login(c, "op", "wrong password").status_code == 401
        known = list(calls)
        calls.clear()
        assert login(c, "nobody-by-this-name", "wrong password", addr="10.0.0.2").status_code == 401
        unknown = list(calls)
    assert known == unknown == [2**15]  # one scrypt of today's cost either way


def test_a_stranger_guessing_cannot_lock_the_admin_out(site: str) -> None:
    with httpx.Client(base_url=site) as attacker, httpx.Client(base_url=site) as admin:
        for _ in range(6):
            assert login(attacker, "admin", "guess", addr="203.0.113.9").status_code == 401
        blocked = login(attacker, "admin", PASSWORD, addr="203.0.113.9")  # even the right one, from there
        assert blocked.status_code == 401 and "quá nhiều lần" in blocked.text
        started = time.monotonic()
        assert login(admin, "admin", PASSWORD, addr="10.0.0.5").status_code == 303  # the admin, at their desk
        assert time.monotonic() - started < 6  # slowed, never stopped
        # Basic auth for the API goes through the same door.
        basic = base64.b64encode(b"admin:guess").decode()
        assert (
            attacker.get(
                "/api/v1/cameras", headers={"Authorization": f"Basic {basic}", "X-Forwarded-For": "203.0.113.9"}
            ).status_code
            == 429
        )


def test_an_old_hash_is_upgraded_at_login(store: Store, site: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(auth, "_N", 2**14)
    monkeypatch.setattr(auth, "_P", 1)
    store.put_user("old", "viewer", hash_password(PASSWORD), time.time())
    monkeypatch.undo()
    assert store.user("old").password_hash.startswith("scrypt$16384$8$1$")  # type: ignore[union-attr]
    with httpx.Client(base_url=site) as c:
        assert login(c, "old", PASSWORD).status_code == 303
    assert store.user("old").password_hash.startswith("scrypt$32768$8$3$")  # type: ignore[union-attr]


def test_the_audit_trail_says_who_did_what_from_where(store: Store, site: str) -> None:
    with httpx.Client(base_url=site) as op, httpx.Client(base_url=site) as boss:
        assert login(op, "op", "wrong password", addr="10.1.1.1").status_code == 401
        assert login(op, "op", PASSWORD, addr="10.1.1.1").status_code == 303
        op.get("/report?period=24h", headers={"X-Forwarded-For": "10.1.1.1"})
        op.get("/report.csv?period=7d", headers={"X-Forwarded-For": "10.1.1.1"})
        assert op.get("/audit").status_code == 403
        assert op.get("/api/v1/audit").status_code == 403
        assert login(boss, "admin", PASSWORD, addr="10.2.2.2").status_code == 303
        page = boss.get("/")
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
        added = boss.post(
            "/maintenance",
            data={"ward": "w1", "start": "2026-01-01T00:00", "end": "2026-01-01T01:00", "note": "=cmd", "csrf": csrf},
            headers={"X-Forwarded-For": "10.2.2.2"},
        )
        assert added.status_code == 303
        entries = boss.get("/api/v1/audit").json()["entries"]
        seen = [(e["actor"], e["action"], e["addr"]) for e in reversed(entries)]
        assert seen == [
            ("op", "login_failed", "10.1.1.1"),
            ("op", "login", "10.1.1.1"),
            ("op", "report_viewed", "10.1.1.1"),
            ("op", "report_downloaded", "10.1.1.1"),
            ("admin", "login", "10.2.2.2"),
            ("admin", "maintenance_added", "10.2.2.2"),
        ]
        assert "w1/*" in entries[0]["detail"]
        audit_page = boss.get("/audit").text
        assert "10.1.1.1" in audit_page and ("đăng nhập sai" in audit_page or "failed login" in audit_page)


def test_removing_a_user_and_revoking_a_token_take_effect_at_once(store: Store, site: str, workdir: Path) -> None:
    config = workdir / "center.toml"
    config.write_text(f'[store]\nurl = "sqlite:///{workdir}/center.db"\n')
    token, digest = new_token()
    store.put_token("erp", "viewer", digest, time.time())
    with httpx.Client(base_url=site) as op:
        assert login(op, "op", PASSWORD).status_code == 303
        assert op.get("/api/v1/cameras").status_code == 200
        assert op.get("/api/v1/cameras", headers={"Authorization": f"Bearer {token}"}).status_code == 200
        listed = camwatch("center", "--config", str(config), "list-users")
        assert "op" in listed.stdout and "erp" in listed.stdout
        removed = camwatch("center", "--config", str(config), "remove-user", "op")
        assert removed.returncode == 0, removed.stderr
        revoked = camwatch("center", "--config", str(config), "revoke-token", "erp")
        assert revoked.returncode == 0, revoked.stderr
        assert camwatch("center", "--config", str(config), "revoke-token", "erp").returncode == 1
        time.sleep(0.1)
        with httpx.Client(base_url=site) as fresh:
            assert fresh.get("/api/v1/cameras", headers={"Authorization": f"Bearer {token}"}).status_code == 401
            assert login(fresh, "op", PASSWORD).status_code == 401
    actions = [e.action for e in store.audit_log()]
    assert "user_removed" in actions and "token_revoked" in actions


def test_over_https_cookies_are_secure_and_hsts_is_sent(store: Store, workdir: Path) -> None:
    pki = workdir / "pki"
    run_pki("init", str(pki), "localhost", "127.0.0.1")
    base, server = serve(store, workdir, tls_cert=str(pki / "broker.pem"), tls_key=str(pki / "broker.key"))
    try:
        with httpx.Client(base_url=base, verify=ssl.create_default_context(cafile=str(pki / "ca.pem"))) as c:
            r = login(c, "op", PASSWORD)
            assert r.status_code == 303
            cookie = r.headers["set-cookie"]
            assert "cw_session=" in cookie and "Secure" in cookie and "HttpOnly" in cookie
            assert c.get("/").headers["strict-transport-security"].startswith("max-age=")
    finally:
        server.stop()


def test_behind_a_trusted_proxy_that_speaks_https_cookies_are_secure(site: str) -> None:
    with httpx.Client(base_url=site) as c:
        page = c.get("/login", headers={"X-Forwarded-Proto": "https"})
        assert "Secure" in page.headers["set-cookie"]
        assert "strict-transport-security" in page.headers
