"""The center's pages and JSON API (FastAPI + Jinja2, served by uvicorn in a thread; no front-end build).

Pages: fleet (``/``), camera, outages, report (+ CSV with a BOM, printable),
audit (admins), login. API under ``/api/v1/`` with its OpenAPI document at
``/api/v1/openapi.json``. Every page and API answer, the OpenAPI document
included, needs a login: a session cookie (pages and API), an API token or
HTTP Basic (API clients). Sessions are kept in the store. Forms carry a CSRF
token bound to the session (the login form: to a cookie, double-submit).

Hardening: every answer carries a CSP whose only scripts and style sheets are
the page's own (a nonce per answer), ``X-Frame-Options: DENY``, ``nosniff``,
``Referrer-Policy: same-origin`` and ``Cache-Control: no-store``; over HTTPS
(its own TLS, or a trusted reverse proxy's ``X-Forwarded-Proto``) cookies are
``Secure`` and HSTS is sent. A login takes as long for an unknown user as for
a wrong password. Failed logins lock out a (user, address) pair, never a user
everywhere, and slow further tries of that user name. Logins, failed logins,
maintenance changes, snapshot and report views go to the audit trail.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import logging
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import uvicorn
from fastapi import FastAPI, Form, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from center.auth import LoginLimit, hash_password, needs_rehash, prepare_dummy, token_sha256, verify_login
from center.background import in_background
from center.config import CenterConfig
from center.i18n import LANGUAGES, duration, t
from center.periods import PERIODS, BadPeriod, period_bounds
from center.service import CenterIngest
from center.store import Store
from center.uptime import Uptime
from center.views import (
    OutageRow,
    Recent,
    fleet_now,
    outage_list,
    reuse_for,
    uptime_table,
    ward_counts,
    wards_now,
)
from common.redact import redact

log = logging.getLogger(__name__)

SESSION_COOKIE = "cw_session"
LOGIN_CSRF_COOKIE = "cw_login_csrf"
LANG_COOKIE = "cw_lang"
CSP = (
    "default-src 'none'; script-src 'nonce-{nonce}'; style-src 'self' 'nonce-{nonce}'; "
    "style-src-attr 'unsafe-inline'; img-src 'self'; connect-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)  # style attributes: the timeline's interval widths (no script can come of them)
HSTS = "max-age=31536000"
AUDIT_SHOWN = 200
HISTORY_SHOWN = 500  # the most recent ended outages on the page; the API has them all
WARM_PERIODS = ("24h", "today", "7d", "30d")  # kept computed in the background (see WebServer)
ALL_TILES_UP_TO = 600  # cameras; above this the fleet page shows healthy ones as a count per ward


@dataclass
class Session:
    user: str
    role: str
    csrf: str
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

    def __init__(self, store: Store, hours: float) -> None:
        self.store = store
        self.ttl = hours * 3600
        self._seen: dict[str, tuple[Session, float]] = {}  # token -> (session, when checked)
        self._lock = threading.Lock()

    def new(self, user: str, role: str) -> str:
        token = secrets.token_urlsafe(32)
        now = time.time()
        session = Session(user, role, secrets.token_urlsafe(24), now + self.ttl)
        self.store.put_session(token_sha256(token), user, session.csrf, session.expires)
        with self._lock:
            self._seen = {k: v for k, v in self._seen.items() if v[0].expires > now}
            self._seen[token] = (session, now)
        return token

    def get(self, token: str | None) -> Session | None:
        if not token:
            return None
        now = time.time()
        with self._lock:
            hit = self._seen.get(token)
        if hit is not None and hit[0].expires > now and now - hit[1] < self.RECHECK_S:
            return hit[0]
        row = self.store.session(token_sha256(token), now)
        with self._lock:
            if row is None:
                self._seen.pop(token, None)
                return None
            session = Session(row[0], row[1], row[2], row[3])
            self._seen[token] = (session, now)
            return session

    def drop(self, token: str | None) -> None:
        if not token:
            return
        with self._lock:
            self._seen.pop(token, None)
        self.store.drop_session(token_sha256(token))


FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: object) -> object:
    """A CSV cell that a spreadsheet will not run: text starting like a formula gets a leading apostrophe.

    Ward-supplied names reach the report; ``=HYPERLINK(...)`` in one must stay text (OWASP's CSV injection advice).
    """
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


class SafeCsv:
    """A csv writer whose every cell goes through :func:`csv_cell`."""

    def __init__(self, writer: Any) -> None:
        self._writer = writer

    def writerow(self, row: list[object]) -> None:
        self._writer.writerow([csv_cell(v) for v in row])


# Long: Every route in one closure: to be split into routers (issue 16, item 3).
def build_app(config: CenterConfig, store: Store, service: CenterIngest | None = None) -> FastAPI:  # noqa: C901, PLR0915
    app = FastAPI(
        title="camwatch center API",
        version="1",
        description="Cameras, their state now, uptime per period, outages and events, as the wards reported them.",
        openapi_url=None,  # served below, behind the login
        docs_url=None,  # the interactive docs load scripts from a CDN: a police network has no internet
        redoc_url=None,
    )
    templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
    templates.env.filters["fromjson"] = json.loads
    sessions = Sessions(store, config.web.session_hours)
    limit = LoginLimit()
    prepare_dummy()
    fleet = service.fleet if service is not None else None
    if fleet is None:
        from center.ingest import Fleet

        fleet = Fleet(store, config.uptime.unknown_after_s)
    tz = config.tz
    recent = Recent()

    @app.middleware("http")
    async def _harden(request: Request, call_next: Any) -> Response:
        nonce = secrets.token_urlsafe(16)
        request.state.nonce = nonce
        response: Response = await call_next(request)
        h = response.headers
        h["Content-Security-Policy"] = CSP.format(nonce=nonce)
        h["X-Frame-Options"] = "DENY"
        h["X-Content-Type-Options"] = "nosniff"
        h["Referrer-Policy"] = "same-origin"
        h.setdefault("Cache-Control", "no-store")  # live state, behind a login: never kept by a browser or proxy
        if request.url.scheme == "https":
            h["Strict-Transport-Security"] = HSTS
        return response

    def https(request: Request) -> bool:
        return request.url.scheme == "https"

    def addr_of(request: Request) -> str:
        return request.client.host if request.client else "?"

    def audit(request: Request, actor: str, action: str, detail: str = "") -> None:
        try:
            store.audit(actor, action, redact(detail), addr_of(request), time.time())
        except Exception as exc:  # the audit trail must not take the pages down with it
            log.error("audit entry %s by %s not written: %s", action, actor, redact(exc))

    def check_login(request: Request, user: str, password: str) -> tuple[str | None, str | None]:
        """(role, None) for a good login; (None, why) otherwise. Audited; throttled per (user, address)."""
        addr = addr_of(request)
        if limit.blocked_login(user, addr):
            audit(request, user, "login_blocked", "too many failed logins from this address")
            return None, "blocked"
        time.sleep(limit.delay(user))
        found = store.user(user)
        if verify_login(password, found[1] if found else None):
            assert found is not None
            if needs_rehash(found[1]):
                store.put_user(user, found[0], hash_password(password), time.time())
            return found[0], None
        limit.failed_login(user, addr)
        audit(request, user, "login_failed", "no such user" if found is None else "wrong password")
        return None, "bad"

    def lang_of(request: Request) -> str:
        lang = request.cookies.get(LANG_COOKIE, config.language)
        return lang if lang in LANGUAGES else config.language

    def fmt_time(ts: float | None) -> str:
        if ts is None:
            return ""
        return datetime.fromtimestamp(ts, tz).strftime("%Y-%m-%d %H:%M:%S")

    def iso(ts: float | None) -> str | None:
        return None if ts is None else datetime.fromtimestamp(ts, tz).isoformat(timespec="seconds")

    def pct(x: float | None) -> str:
        return "—" if x is None else f"{x * 100:.2f} %"

    def session_of(request: Request) -> Session | None:
        return sessions.get(request.cookies.get(SESSION_COOKIE))

    def page_session(request: Request) -> Session:
        s = session_of(request)
        if s is None:
            raise NeedLogin
        return s

    def api_session(request: Request) -> Session:
        s = session_of(request)
        if s is not None:
            return s
        header = request.headers.get("authorization", "")
        if header.lower().startswith("bearer "):
            found_token = store.token(token_sha256(header[7:].strip()))
            if found_token is not None:
                return Session(f"token:{found_token[0]}", found_token[1], "", time.time() + 60)
            raise HTTPException(401, "unknown API token", {"WWW-Authenticate": "Bearer"})
        if header.lower().startswith("basic "):
            try:
                user, _, password = base64.b64decode(header[6:]).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                user, password = "", ""
            role, why = check_login(request, user, password)
            if role is not None:
                return Session(user, role, "", time.time() + 60)
            if why == "blocked":
                raise HTTPException(429, "too many failed logins; try again later")
        raise HTTPException(
            401, "log in (session cookie), or send an API token (Bearer) or HTTP Basic", {"WWW-Authenticate": "Bearer"}
        )

    @app.exception_handler(NeedLogin)
    async def _to_login(request: Request, exc: NeedLogin) -> Response:
        return RedirectResponse(f"/login?next={quote(request.url.path)}", status_code=303)

    def render(request: Request, name: str, session: Session | None, **context: Any) -> HTMLResponse:
        lang = lang_of(request)
        return templates.TemplateResponse(
            request,
            name,
            {
                "lang": lang,
                "t": lambda key: t(key, lang),
                "dur": lambda s: duration(s, lang),
                "fmt_time": fmt_time,
                "pct": pct,
                "session": session,
                "path": request.url.path,
                "nonce": request.state.nonce,
                **context,
            },
        )

    # -- login -----------------------------------------------------------------------

    @app.get("/login", response_class=HTMLResponse, include_in_schema=False)
    def login_page(request: Request, next: str = "/") -> HTMLResponse:
        token = secrets.token_urlsafe(24)
        response = render(request, "login.html", None, csrf=token, next=_safe_next(next), error=None)
        response.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict", secure=https(request))
        return response

    @app.post("/login", include_in_schema=False)
    def login(
        request: Request,
        user: str = Form(""),
        password: str = Form(""),
        csrf: str = Form(""),
        next: str = Form("/"),
    ) -> Response:
        cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")
        lang = lang_of(request)
        error = None
        if not cookie or not secrets.compare_digest(cookie, csrf):
            error = t("bad_form", lang)
        else:
            role, why = check_login(request, user, password)
            if role is not None:
                ok = RedirectResponse(_safe_next(next), status_code=303)
                ok.set_cookie(
                    SESSION_COOKIE,
                    sessions.new(user, role),
                    httponly=True,
                    samesite="lax",
                    max_age=int(sessions.ttl),
                    secure=https(request),
                )
                ok.delete_cookie(LOGIN_CSRF_COOKIE)
                log.info("user %s logged in from %s", user, addr_of(request))
                audit(request, user, "login")
                return ok
            error = t("too_many" if why == "blocked" else "bad_login", lang)
        token = secrets.token_urlsafe(24)
        response = render(request, "login.html", None, csrf=token, next=_safe_next(next), error=error)
        response.status_code = 401
        response.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict", secure=https(request))
        return response

    @app.post("/logout", include_in_schema=False)
    def logout(request: Request, csrf: str = Form("")) -> Response:
        s = session_of(request)
        if s is not None and secrets.compare_digest(s.csrf, csrf):
            sessions.drop(request.cookies.get(SESSION_COOKIE))
            audit(request, s.user, "logout")
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE)
        return response

    @app.get("/lang/{code}", include_in_schema=False)
    def set_lang(request: Request, code: str, next: str = "/") -> Response:
        response = RedirectResponse(_safe_next(next), status_code=303)
        if code in LANGUAGES:
            response.set_cookie(LANG_COOKIE, code, max_age=365 * 86400, samesite="lax", secure=https(request))
        return response

    # -- pages -------------------------------------------------------------------------

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def fleet_page(request: Request, ward: str = "") -> HTMLResponse:
        s = page_session(request)
        rows = fleet_now(fleet, time.time())
        counts = ward_counts(rows)
        totals = {k: sum(c[k] for c in counts.values()) for k in ("offline", "unknown", "degraded", "online")}
        ward_states = wards_now(store.agents(), list(counts))
        down = {w for w, st in ward_states.items() if st.state in ("unreachable", "stopped")}
        # A big city: healthy cameras are a count per ward (a link shows them); the rest are always tiles.
        # A ward that is unreachable is one ward problem: its unknown cameras are a count, not tiles.
        show_online = bool(ward) or len(rows) <= ALL_TILES_UP_TO
        wards: dict[str, list[Any]] = {}
        for r in rows:
            if ward and r.ward != ward:
                continue
            if (show_online or r.state != "online") and not (r.ward in down and r.state == "unknown" and not ward):
                wards.setdefault(r.ward, []).append(r)
        return render(
            request,
            "fleet.html",
            s,
            wards=[(w, wards.get(w, []), counts[w]) for w in counts if not ward or w == ward],
            totals=totals,
            now=time.time(),
            ward_states=ward_states,
            wards_down=sorted(down),
            show_online=show_online,
            ward=ward,
            ward_filter=ward,
        )

    @app.get("/camera/{ward}/{camera}", response_class=HTMLResponse, include_in_schema=False)
    def camera_page(request: Request, ward: str, camera: str, span: str = "24h") -> HTMLResponse:
        s = page_session(request)
        cams = {(c.ward, c.camera): c for c in store.cameras()}
        cam = cams.get((ward, camera))
        if cam is None:
            response = render(request, "message.html", s, message=t("not_found", lang_of(request)))
            response.status_code = 404
            return response
        now = time.time()
        span_s = 7 * 86400 if span == "7d" else 86400
        ivs = fleet.timeline(ward, camera, now - span_s, now)
        maint = store.maintenance(now - 30 * 86400, now + 365 * 86400)
        figures = {}
        for name in ("24h", "7d", "30d"):
            begin, end = period_bounds(name, now, tz)
            _, _, up = uptime_table(fleet, [cam], maint, begin, end)
            figures[name] = up
        events = store.events(ward=ward, camera=camera, limit=50)
        snaps = [e for e in events if e.type == "detection_started"]
        latest = next((e.id for e in snaps if store.snapshot(e.id) is not None), None)
        state = fleet.state_at(ward, camera, now)
        return render(
            request,
            "camera.html",
            s,
            cam=cam,
            state=state,
            ivs=ivs,
            span=span,
            span_s=span_s,
            begin=now - span_s,
            figures=figures,
            events=events,
            latest=latest,
            now=now,
            maintenance=[m for m in maint if m.ward == ward and m.camera in (None, camera)],
        )

    @app.get("/snapshot/{event_id}", include_in_schema=False)
    def snapshot(request: Request, event_id: str) -> Response:
        s = page_session(request)
        jpeg = store.snapshot(event_id)
        if jpeg is None:
            raise HTTPException(404, "no such snapshot")
        audit(request, s.user, "snapshot_viewed", event_id)
        return Response(jpeg, media_type="image/jpeg", headers={"Cache-Control": "no-store"})

    @app.get("/outages", response_class=HTMLResponse, include_in_schema=False)
    def outages_page(request: Request, ward: str = "", days: int = Query(7, ge=1, le=400)) -> HTMLResponse:
        s = page_session(request)
        now = time.time()
        rows = _outages(ward or None, days, now)
        history = [r for r in rows if r.outage.end is not None]
        wards = sorted({c.ward for c in store.cameras()})
        return render(
            request,
            "outages.html",
            s,
            ongoing=[r for r in rows if r.outage.end is None],
            history=history[:HISTORY_SHOWN],
            history_total=len(history),
            now=now,
            wards=wards,
            ward=ward,
            days=days,
        )

    def _outages(ward: str | None, days: int, now: float) -> list[OutageRow]:
        # Never reused: a camera that just went down must be on this page at once.
        cams = [c for c in store.cameras() if ward is None or c.ward == ward]
        return outage_list(fleet, cams, now - days * 86400, now)

    def _report(
        period: str, start: str | None, end: str | None, refresh: bool = False
    ) -> tuple[float, float, Any, Any, Uptime]:
        try:
            begin, stop = period_bounds(period, time.time(), tz, start, end)
        except BadPeriod as exc:
            raise HTTPException(400, str(exc)) from None

        def compute() -> tuple[float, float, Any, Any, Uptime]:
            cams = store.cameras()
            per_camera, per_ward, city = uptime_table(fleet, cams, store.maintenance(begin, stop), begin, stop, tz=tz)
            return begin, stop, per_camera, per_ward, city

        key = ("uptime", period, start, end)
        if refresh:
            recent.put(key, compute())
        return recent.get(key, reuse_for(stop - begin), compute)  # type: ignore[no-any-return]

    def warm() -> None:
        """Keep the standard periods computed, so that nobody waits for them (called every few seconds)."""
        for period in WARM_PERIODS:
            begin, stop = period_bounds(period, time.time(), tz)
            age = recent.age(("uptime", period, None, None))
            if age is None or age > reuse_for(stop - begin) * 0.7:
                with in_background():  # a page request asked meanwhile goes first
                    _report(period, None, None, refresh=True)

    app.state.warm = warm

    @app.get("/report", response_class=HTMLResponse, include_in_schema=False)
    def report_page(
        request: Request, period: str = "24h", start: str | None = None, end: str | None = None
    ) -> HTMLResponse:
        s = page_session(request)
        begin, stop, per_camera, per_ward, city = _report(period, start, end)
        audit(request, s.user, "report_viewed", f"{period} {start or ''} {end or ''}".strip())
        return render(
            request,
            "report.html",
            s,
            period=period,
            periods=PERIODS,
            begin=begin,
            end=stop,
            per_camera=per_camera,
            per_ward=per_ward,
            city=city,
            start=start or "",
            end_day=end or "",
        )

    @app.get("/report.csv", include_in_schema=False)
    def report_csv(request: Request, period: str = "24h", start: str | None = None, end: str | None = None) -> Response:
        s = page_session(request)
        lang = lang_of(request)
        begin, stop, per_camera, per_ward, city = _report(period, start, end)
        audit(request, s.user, "report_downloaded", f"{period} {start or ''} {end or ''}".strip())
        out = io.StringIO()
        w = SafeCsv(csv.writer(out))
        w.writerow(
            [
                t("ward", lang),
                t("camera", lang),
                "name",
                t("availability", lang),
                t("healthy", lang),
                "online_s",
                "degraded_s",
                "offline_s",
                "unknown_s",
                "maintenance_s",
                t("start", lang),
                t("end", lang),
            ]
        )
        for r in [*per_camera, *per_ward]:
            u = r.uptime
            w.writerow(
                [
                    r.ward,
                    r.camera or "*",
                    r.name or "",
                    _ratio(u.availability),
                    _ratio(u.healthy),
                    round(u.online_s),
                    round(u.degraded_s),
                    round(u.offline_s),
                    round(u.unknown_s),
                    round(u.maintenance_s),
                    fmt_time(begin),
                    fmt_time(stop),
                ]
            )
        w.writerow(
            [
                "*",
                "*",
                t("city", lang),
                _ratio(city.availability),
                _ratio(city.healthy),
                round(city.online_s),
                round(city.degraded_s),
                round(city.offline_s),
                round(city.unknown_s),
                round(city.maintenance_s),
                fmt_time(begin),
                fmt_time(stop),
            ]
        )
        body = "\ufeff" + out.getvalue()  # the BOM: Excel then reads UTF-8 (Vietnamese) correctly
        name = f"camwatch-uptime-{period}.csv"
        return Response(
            body.encode("utf-8"),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )

    @app.post("/maintenance", include_in_schema=False)
    def add_maintenance(  # noqa: PLR0917 (FastAPI form fields)
        request: Request,
        ward: str = Form(...),
        camera: str = Form(""),
        start: str = Form(...),
        end: str = Form(...),
        note: str = Form(""),
        csrf: str = Form(""),
    ) -> Response:
        s, refused = admin_form(request, csrf)
        if refused is not None:
            return refused
        lang = lang_of(request)
        try:
            lo = datetime.fromisoformat(start).replace(tzinfo=tz).timestamp()
            hi = datetime.fromisoformat(end).replace(tzinfo=tz).timestamp()
            store.add_maintenance(
                ward=ward, camera=camera or None, start=lo, end=hi, note=note[:500], created_by=s.user, now=time.time()
            )
        except ValueError:
            return _message(request, s, t("bad_form", lang), 400)
        audit(request, s.user, "maintenance_added", f"{ward}/{camera or '*'} {start} – {end}: {note[:200]}")
        recent.clear()  # uptime figures change with maintenance
        back = f"/camera/{quote(ward)}/{quote(camera)}" if camera else "/"
        return RedirectResponse(back, status_code=303)

    @app.post("/maintenance/{window_id}/delete", include_in_schema=False)
    def delete_maintenance(request: Request, window_id: int, back: str = Form("/"), csrf: str = Form("")) -> Response:
        s, refused = admin_form(request, csrf)
        if refused is not None:
            return refused
        if not store.delete_maintenance(window_id):
            return _message(request, s, t("not_found", lang_of(request)), 404)
        log.info("maintenance window %d deleted by %s", window_id, s.user)
        audit(request, s.user, "maintenance_deleted", f"window {window_id}")
        recent.clear()
        return RedirectResponse(_safe_next(back), status_code=303)

    @app.get("/audit", response_class=HTMLResponse, include_in_schema=False)
    def audit_page(request: Request, before: int | None = None) -> HTMLResponse:
        s = page_session(request)
        if s.role != "admin":
            return _message(request, s, t("admins_only", lang_of(request)), 403)
        rows = store.audit_log(AUDIT_SHOWN, before)
        return render(request, "audit.html", s, rows=rows, more=rows[-1].id if len(rows) == AUDIT_SHOWN else None)

    @app.get("/api/v1/audit", tags=["service"])
    def api_audit(request: Request, limit: int = Query(200, ge=1, le=5000), before: int | None = None) -> JSONResponse:
        """The audit trail, newest first (admins): logins, failed logins, logouts, maintenance changes,
        snapshot and report views; who, what, when (``ts``, Unix seconds) and from which address.
        Older entries: pass the smallest ``id`` seen as ``before``."""
        s = api_session(request)
        if s.role != "admin":
            raise HTTPException(403, "admins only")
        rows = store.audit_log(limit, before)
        return JSONResponse(
            {
                "entries": [
                    {"id": r.id, "ts": r.ts, "actor": r.actor, "action": r.action, "detail": r.detail, "addr": r.addr}
                    for r in rows
                ]
            }
        )

    @app.get("/api/v1/openapi.json", include_in_schema=False)
    def api_openapi(request: Request) -> JSONResponse:
        api_session(request)
        return JSONResponse(app.openapi())

    def admin_form(request: Request, csrf: str) -> tuple[Session, HTMLResponse | None]:
        """The session of an admin's form post, or the refusal to send (forged form, not an admin)."""
        s = page_session(request)
        lang = lang_of(request)
        if not secrets.compare_digest(s.csrf, csrf):
            return s, _message(request, s, t("bad_form", lang), 403)
        if s.role != "admin":
            return s, _message(request, s, t("admins_only", lang), 403)
        return s, None

    def _message(request: Request, s: Session, text: str, status: int) -> HTMLResponse:
        response = render(request, "message.html", s, message=text)
        response.status_code = status
        return response

    # -- API -------------------------------------------------------------------------------

    @app.get("/api/v1/cameras", tags=["cameras"])
    def api_cameras(request: Request) -> JSONResponse:
        """Every camera's state now, since when (UTC seconds and local ISO time), its problems, its ward's state.

        A camera ``offline`` is a camera problem; cameras ``unknown`` whose
        ``ward_state`` is ``unreachable`` are one ward problem (see /api/v1/agents).
        """
        api_session(request)
        rows = fleet_now(fleet, time.time())
        wards = wards_now(store.agents(), [r.ward for r in rows])
        return JSONResponse(
            {
                "cameras": [
                    {
                        "ward": r.ward,
                        "camera": r.camera,
                        "name": r.name,
                        "state": r.state,
                        "since": r.since,
                        "since_local": iso(r.since),
                        "problems": list(r.problems),
                        "ward_state": wards[r.ward].state,
                    }
                    for r in rows
                ]
            }
        )

    @app.get("/api/v1/uptime", tags=["uptime"])
    def api_uptime(
        request: Request, period: str = "24h", start: str | None = None, end: str | None = None
    ) -> JSONResponse:
        """Uptime per camera, per ward and for the city over a period (today, 24h, 7d, 30d, YYYY-MM, custom)."""
        api_session(request)
        begin, stop, per_camera, per_ward, city = _report(period, start, end)
        return JSONResponse(
            {
                "period": {
                    "name": period,
                    "begin": begin,
                    "end": stop,
                    "begin_local": iso(begin),
                    "end_local": iso(stop),
                },
                "cameras": [{"ward": r.ward, "camera": r.camera, **_uptime_json(r.uptime)} for r in per_camera],
                "wards": [{"ward": r.ward, **_uptime_json(r.uptime)} for r in per_ward],
                "city": _uptime_json(city),
            }
        )

    @app.get("/api/v1/outages", tags=["outages"])
    def api_outages(request: Request, days: int = Query(7, ge=1, le=400), ward: str | None = None) -> JSONResponse:
        """Outages (offline stretches) overlapping the last ``days``: ongoing first, longest first."""
        api_session(request)
        now = time.time()
        rows = _outages(ward, days, now)
        return JSONResponse(
            {
                "outages": [
                    {
                        "ward": r.ward,
                        "camera": r.camera,
                        "start": r.outage.start,
                        "end": r.outage.end,
                        "ongoing": r.outage.end is None,
                        "duration_s": round(r.outage.duration_s(now), 3),
                        "reasons": list(r.outage.reasons),
                    }
                    for r in rows
                ]
            }
        )

    @app.get("/api/v1/events", tags=["events"])
    def api_events(  # noqa: PLR0917 (FastAPI query parameters)
        request: Request,
        ward: str | None = None,
        camera: str | None = None,
        since: float | None = None,
        type: str | None = None,
        limit: int = Query(100, ge=1, le=1000),
    ) -> Response:
        """Contract events as the wards sent them (newest first), deduplicated."""
        api_session(request)
        rows = store.events(ward=ward, camera=camera, since=since, types=[type] if type else None, limit=limit)
        body = "[" + ",".join(r.payload for r in rows) + "]"
        return Response('{"events":' + body + "}", media_type="application/json")

    @app.get("/api/v1/agents", tags=["cameras"])
    def api_agents(request: Request) -> JSONResponse:
        """Each ward agent as its newest connection described itself: online, or gone since it was last heard from.

        ``ward_state`` says where a failure is: ``up``, ``unreachable`` (the
        broker sent its last will: the ward PC or its uplink is down, its
        cameras are unknown) or ``stopped`` (a clean stop).
        """
        api_session(request)
        agents = store.agents()
        heard = store.heard()
        states = wards_now(agents, [])
        return JSONResponse(
            {
                "agents": [
                    {
                        "ward": a.ward,
                        "state": a.state,
                        "ward_state": states[a.ward].state,
                        "since": a.ts,
                        "since_local": iso(a.ts),
                        "reason": a.reason,
                        "version": a.version,
                        "hostname": a.hostname,
                        "problems": list(a.problems),
                        "started_at": a.started_at or None,
                        "seq": a.seq if a.seq >= 0 else None,
                        "last_heard": heard.get(a.ward),
                    }
                    for a in sorted(agents.values(), key=lambda a: a.ward)
                ]
            }
        )

    @app.get("/api/v1/status", tags=["service"])
    def api_status(request: Request) -> JSONResponse:
        """The center's own ingest figures."""
        api_session(request)
        return JSONResponse(service.stats() if service is not None else {})

    return app


def _safe_next(target: str) -> str:
    """Only local paths after login: never an open redirect."""
    return target if target.startswith("/") and not target.startswith("//") else "/"


def _ratio(x: float | None) -> str:
    return "" if x is None else f"{x:.6f}"


def _uptime_json(u: Uptime) -> dict[str, Any]:
    return {
        "availability": u.availability,
        "healthy": u.healthy,
        "unknown_share": u.unknown_share,
        "maintenance_share": u.maintenance_share,
        "period_s": u.period_s,
        "online_s": u.online_s,
        "degraded_s": u.degraded_s,
        "offline_s": u.offline_s,
        "unknown_s": u.unknown_s,
        "maintenance_s": u.maintenance_s,
    }


class WebServer:
    """uvicorn in a thread, and a thread keeping the standard uptime periods computed."""

    def __init__(
        self,
        app: FastAPI,
        host: str,
        port: int,
        warm_every_s: float = 3.0,
        *,
        tls: tuple[Path, Path] | None = None,
        trusted_proxies: list[str] | None = None,
    ) -> None:
        self.app = app
        self.server = uvicorn.Server(
            uvicorn.Config(
                app,
                host=host,
                port=port,
                log_level="warning",
                access_log=False,
                ssl_certfile=str(tls[0]) if tls else None,
                ssl_keyfile=str(tls[1]) if tls else None,
                # X-Forwarded-For/-Proto believed from these only (uvicorn would trust 127.0.0.1 by default)
                proxy_headers=bool(trusted_proxies),
                forwarded_allow_ips=list(trusted_proxies or []),
            )
        )
        self.thread = threading.Thread(target=self.server.run, name="center-web", daemon=True)
        self.warm_every_s = warm_every_s
        self._stop = threading.Event()
        self.warmed = threading.Event()  # the standard periods have been computed once
        self.warmer = threading.Thread(target=self._warm_loop, name="center-warm", daemon=True)

    def _warm_loop(self) -> None:
        while not self._stop.wait(0 if not self.warmed.is_set() else self.warm_every_s):
            try:
                self.app.state.warm()
                self.warmed.set()
            except Exception as exc:  # the store may be briefly unavailable: the pages say so themselves
                log.warning("could not precompute uptime: %s", redact(exc))
                self._stop.wait(self.warm_every_s)

    def start(self, timeout: float = 10.0) -> WebServer:
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started and self.thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.02)
        if not self.server.started:
            raise RuntimeError("the web server did not start (is the port in use?)")
        self.warmer.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.warmer.join(timeout=30)


def serve(config: CenterConfig, store: Store, service: CenterIngest) -> WebServer:
    w = config.web
    tls = (w.tls_cert, w.tls_key) if w.tls_cert is not None and w.tls_key is not None else None
    return WebServer(
        build_app(config, store, service), w.host, w.port, tls=tls, trusted_proxies=w.trusted_proxies
    ).start()
