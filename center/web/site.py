"""What every route of the center's pages and API shares: :class:`Site`, and the FastAPI dependencies that
hand it and the caller's session to a route."""

from __future__ import annotations

import base64
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import Depends, HTTPException, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from prometheus_client import CollectorRegistry

from center.auth import LoginLimit, hash_password, needs_rehash, token_sha256, verify_login
from center.background import in_background
from center.config import CenterConfig
from center.delivery import Delivery
from center.fleet import Fleet
from center.i18n import LANGUAGES, alert_detail, count, duration, history_cut, problems, t
from center.periods import BadPeriod, period_bounds
from center.service import CenterIngest
from center.store import Store
from center.uptime import Uptime
from center.views import OutageRow, Recent, UptimeRow, outage_list, reuse_for, uptime_table
from center.web.sessions import NeedLogin, Session, Sessions
from common.redact import redact

log = logging.getLogger(__name__)

SESSION_COOKIE = "cw_session"
LOGIN_CSRF_COOKIE = "cw_login_csrf"
LANG_COOKIE = "cw_lang"
WARM_PERIODS = ("24h", "today", "7d", "30d")  # kept computed in the background (see WebServer)


@dataclass(frozen=True)
class Report:
    """Uptime over a period: per camera, per ward, the city."""

    begin: float
    end: float
    per_camera: list[UptimeRow]
    per_ward: list[UptimeRow]
    city: Uptime


@dataclass
class Site:
    """The center as its pages and API see it: config, store and fleet, logins, templates, and one clock."""

    config: CenterConfig
    store: Store
    service: CenterIngest | None
    fleet: Fleet
    sessions: Sessions
    templates: Jinja2Templates
    clock: Callable[[], float]
    limit: LoginLimit
    recent: Recent
    delivery: Delivery | None = None  # the alerts' webhook and e-mail, when the center runs them
    registry: CollectorRegistry = field(init=False)  # /metrics: set once the site exists (it reads the site)

    @property
    def tz(self) -> ZoneInfo:
        return self.config.tz

    # -- who is asking ----------------------------------------------------------------

    def session_of(self, request: Request) -> Session | None:
        return self.sessions.get(request.cookies.get(SESSION_COOKIE))

    def check_login(self, request: Request, user: str, password: str) -> tuple[str | None, str | None]:
        """(role, None) for a good login; (None, why) otherwise. Audited; throttled per (user, address)."""
        addr = addr_of(request)
        if self.limit.blocked_login(user, addr):
            self.audit(request, user, "login_blocked", "too many failed logins from this address")
            return None, "blocked"
        time.sleep(self.limit.delay(user))
        found = self.store.user(user)
        if verify_login(password, found.password_hash if found else None):
            assert found is not None
            if needs_rehash(found.password_hash):
                self.store.put_user(user, found.role, hash_password(password), self.clock())
            return found.role, None
        self.limit.failed_login(user, addr)
        self.audit(request, user, "login_failed", "no such user" if found is None else "wrong password")
        return None, "bad"

    def audit(self, request: Request, actor: str, action: str, detail: str = "") -> None:
        try:
            self.store.audit(actor, action, redact(detail), addr_of(request), self.clock())
        except Exception as exc:  # the audit trail must not take the pages down with it
            log.error("audit entry %s by %s not written: %s", action, actor, redact(exc))

    # -- words and times ----------------------------------------------------------------

    def lang_of(self, request: Request) -> str:
        lang = request.cookies.get(LANG_COOKIE, self.config.language)
        return lang if lang in LANGUAGES else self.config.language

    def fmt_time(self, ts: float | None) -> str:
        return "" if ts is None else datetime.fromtimestamp(ts, self.tz).strftime("%Y-%m-%d %H:%M:%S")

    def iso(self, ts: float | None) -> str | None:
        return None if ts is None else datetime.fromtimestamp(ts, self.tz).isoformat(timespec="seconds")

    def render(self, request: Request, name: str, session: Session | None, **context: Any) -> HTMLResponse:
        lang = self.lang_of(request)
        return self.templates.TemplateResponse(
            request,
            name,
            {
                "lang": lang,
                "t": lambda key: t(key, lang),
                "dur": lambda s: duration(s, lang),
                "words": lambda codes: problems(codes, lang),
                "detail": lambda detail: alert_detail(detail, lang),
                "count": lambda n: count(n, lang),
                "history_cut": lambda shown, total: history_cut(shown, total, lang),
                "fmt_time": self.fmt_time,
                "pct": pct,
                "session": session,
                "alerts_open": len(self.store.open_alerts()) if session is not None else 0,
                "path": request.url.path,
                "nonce": request.state.nonce,
                **context,
            },
        )

    def message(self, request: Request, session: Session, text: str, status: int) -> HTMLResponse:
        response = self.render(request, "message.html", session, message=text)
        response.status_code = status
        return response

    # -- figures -----------------------------------------------------------------------

    def outages(self, ward: str | None, days: int, now: float) -> list[OutageRow]:
        # Never reused: a camera that just went down must be on the page at once.
        cams = [c for c in self.store.cameras() if ward is None or c.ward == ward]
        return outage_list(self.fleet, cams, now - days * 86400, now)

    def report(self, period: str, start: str | None, end: str | None, refresh: bool = False) -> Report:
        """Uptime over a named period (or ``custom`` from ``start`` to ``end``), reused for a while."""
        try:
            begin, stop = period_bounds(period, self.clock(), self.tz, start, end)
        except BadPeriod as exc:
            raise HTTPException(400, str(exc)) from None

        def compute() -> Report:
            cams = self.store.cameras()
            maintenance = self.store.maintenance(begin, stop)
            per_camera, per_ward, city = uptime_table(self.fleet, cams, maintenance, begin, stop, tz=self.tz)
            return Report(begin, stop, per_camera, per_ward, city)

        key = ("uptime", period, start, end)
        if refresh:
            self.recent.put(key, compute())
        report: Report = self.recent.get(key, reuse_for(stop - begin), compute)
        return report

    def warm(self) -> None:
        """Keep the standard periods computed, so that nobody waits for them (called every few seconds)."""
        for period in WARM_PERIODS:
            begin, stop = period_bounds(period, self.clock(), self.tz)
            age = self.recent.age(("uptime", period, None, None))
            if age is None or age > reuse_for(stop - begin) * 0.7:
                with in_background():  # a page request asked meanwhile goes first
                    self.report(period, None, None, refresh=True)


def addr_of(request: Request) -> str:
    return request.client.host if request.client else "?"


def https(request: Request) -> bool:
    return request.url.scheme == "https"


def pct(x: float | None) -> str:
    return "—" if x is None else f"{x * 100:.2f} %"


def safe_next(target: str) -> str:
    """Only local paths after login: never an open redirect."""
    return target if target.startswith("/") and not target.startswith("//") else "/"


# -- dependencies --------------------------------------------------------------------------


def site_of(request: Request) -> Site:
    site: Site = request.app.state.site
    return site


SiteDep = Annotated[Site, Depends(site_of)]


def page_session(request: Request, site: SiteDep) -> Session:
    """A page's caller: a logged-in user, or off to the login page."""
    s = site.session_of(request)
    if s is None:
        raise NeedLogin
    return s


def api_session(request: Request, site: SiteDep) -> Session:
    """An API caller: a session cookie, an API token (Bearer) or HTTP Basic; else 401 (429 when throttled)."""
    s = site.session_of(request)
    if s is not None:
        return s
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        found_token = site.store.token(token_sha256(header[7:].strip()))
        if found_token is not None:
            return Session(f"token:{found_token.name}", found_token.role, "", site.clock() + 60)
        raise HTTPException(401, "unknown API token", {"WWW-Authenticate": "Bearer"})
    if header.lower().startswith("basic "):
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            user, password = "", ""
        role, why = site.check_login(request, user, password)
        if role is not None:
            return Session(user, role, "", site.clock() + 60)
        if why == "blocked":
            raise HTTPException(429, "too many failed logins; try again later")
    raise HTTPException(
        401, "log in (session cookie), or send an API token (Bearer) or HTTP Basic", {"WWW-Authenticate": "Bearer"}
    )


PageSession = Annotated[Session, Depends(page_session)]
ApiSession = Annotated[Session, Depends(api_session)]


CSRF_HEADER = "X-CSRF-Token"


def api_writer(request: Request, session: ApiSession) -> Session:
    """An API caller that changes something. A session cookie alone is not enough (a page of another site
    could make the browser send it): it comes with the session's CSRF token in ``X-CSRF-Token``. An API
    token or HTTP Basic is never sent by a browser on its own."""
    if session.csrf and not secrets.compare_digest(request.headers.get(CSRF_HEADER, ""), session.csrf):
        raise HTTPException(403, f"with a session cookie, send {CSRF_HEADER} too (or use an API token)")
    return session


ApiWriter = Annotated[Session, Depends(api_writer)]


def api_admin(session: ApiSession) -> Session:
    if session.role != "admin":
        raise HTTPException(403, "admins only")
    return session


ApiAdmin = Annotated[Session, Depends(api_admin)]


def forged_form(request: Request, site: Site, session: Session, csrf: str) -> HTMLResponse | None:
    """The refusal to send for a form post without the session's CSRF token, or None: go ahead."""
    if not secrets.compare_digest(session.csrf, csrf):
        return site.message(request, session, t("bad_form", site.lang_of(request)), 403)
    return None


def admin_form(request: Request, site: Site, session: Session, csrf: str) -> HTMLResponse | None:
    """The refusal to send for an admin's form post (a forged form, not an admin), or None: go ahead."""
    refused = forged_form(request, site, session, csrf)
    if refused is None and session.role != "admin":
        refused = site.message(request, session, t("admins_only", site.lang_of(request)), 403)
    return refused
