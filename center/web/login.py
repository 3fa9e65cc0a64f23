"""Logging in and out, and the language: the routes a caller reaches without a session."""

from __future__ import annotations

import logging
import secrets
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from center.i18n import LANGUAGES, t
from center.web.site import (
    LANG_COOKIE,
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    Site,
    SiteDep,
    addr_of,
    https,
    safe_next,
)

log = logging.getLogger(__name__)

router = APIRouter(include_in_schema=False)


def _login_form(request: Request, site: Site, next: str, error: str | None, status: int = 200) -> HTMLResponse:
    """The login page, with a fresh CSRF token bound to a cookie (double-submit: there is no session yet)."""
    token = secrets.token_urlsafe(24)
    response = site.render(request, "login.html", None, csrf=token, next=safe_next(next), error=error)
    response.status_code = status
    response.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict", secure=https(request))
    return response


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, site: SiteDep, next: str = "/") -> HTMLResponse:
    return _login_form(request, site, next, None)


@router.post("/login")
def login(
    request: Request,
    site: SiteDep,
    *,
    user: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    csrf: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/",
) -> Response:
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    lang = site.lang_of(request)
    if not cookie or not secrets.compare_digest(cookie, csrf):
        return _login_form(request, site, next, t("bad_form", lang), 401)
    role, why = site.check_login(request, user, password)
    if role is None:
        return _login_form(request, site, next, t("too_many" if why == "blocked" else "bad_login", lang), 401)
    ok = RedirectResponse(safe_next(next), status_code=303)
    ok.set_cookie(
        SESSION_COOKIE,
        site.sessions.new(user, role),
        httponly=True,
        samesite="lax",
        max_age=int(site.sessions.ttl),
        secure=https(request),
    )
    ok.delete_cookie(LOGIN_CSRF_COOKIE)
    log.info("user %s logged in from %s", user, addr_of(request))
    site.audit(request, user, "login")
    return ok


@router.post("/logout")
def logout(request: Request, site: SiteDep, csrf: Annotated[str, Form()] = "") -> Response:
    s = site.session_of(request)
    if s is not None and secrets.compare_digest(s.csrf, csrf):
        site.sessions.drop(request.cookies.get(SESSION_COOKIE))
        site.audit(request, s.user, "logout")
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response


@router.get("/lang/{code}")
def set_lang(request: Request, code: str, next: str = "/") -> Response:
    response = RedirectResponse(safe_next(next), status_code=303)
    if code in LANGUAGES:
        response.set_cookie(LANG_COOKIE, code, max_age=365 * 86400, samesite="lax", secure=https(request))
    return response
