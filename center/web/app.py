"""The center's web application: the site's parts wired together, its hardening, its routers."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from center.auth import LoginLimit, prepare_dummy
from center.config import CenterConfig
from center.delivery import Delivery
from center.fleet import Fleet
from center.service import CenterIngest
from center.store import Store
from center.views import Recent
from center.web import api, login, pages, probes
from center.web.sessions import NeedLogin, Sessions
from center.web.site import Site

TEMPLATES = Path(__file__).resolve().parents[1] / "templates"
CSP = (
    "default-src 'none'; script-src 'nonce-{nonce}'; style-src 'self' 'nonce-{nonce}'; "
    "style-src-attr 'unsafe-inline'; img-src 'self'; connect-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)  # style attributes: the timeline's interval widths (no script can come of them)
HSTS = "max-age=31536000"


def build_app(
    config: CenterConfig,
    store: Store,
    service: CenterIngest | None = None,
    clock: Callable[[], float] = time.time,
    delivery: Delivery | None = None,
) -> FastAPI:
    """The pages and the API over ``store`` (and ``service``'s fleet and figures, when it runs); ``clock``:
    wall-clock seconds, the one every route reads; ``delivery``: the alerts' channels, counted in /metrics."""
    app = FastAPI(
        title="camwatch center API",
        version="1",
        description="Cameras, their state now, uptime per period, outages and events, as the wards reported them.",
        openapi_url=None,  # served by the API router, behind the login
        docs_url=None,  # the interactive docs load scripts from a CDN: a police network has no internet
        redoc_url=None,
    )
    templates = Jinja2Templates(directory=str(TEMPLATES))
    templates.env.filters["fromjson"] = json.loads
    prepare_dummy()
    fleet = service.fleet if service is not None else Fleet(store, config.uptime.unknown_after_s)
    site = Site(
        config=config,
        store=store,
        service=service,
        fleet=fleet,
        sessions=Sessions(store, config.web.session_hours, clock),
        templates=templates,
        clock=clock,
        limit=LoginLimit(),
        recent=Recent(),
        delivery=delivery,
    )
    site.registry = probes.registry_for(site)
    app.state.site = site
    app.middleware("http")(_harden)
    app.add_exception_handler(NeedLogin, _to_login)
    app.include_router(login.router)
    app.include_router(pages.router)
    app.include_router(api.router)
    app.include_router(probes.router)
    return app


async def _harden(request: Request, call_next: Any) -> Response:
    """Every answer: a CSP whose only scripts and styles are the page's own (a nonce each), no framing, no
    sniffing, no referrer elsewhere, never cached; HSTS over HTTPS."""
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


async def _to_login(request: Request, exc: Exception) -> Response:
    return RedirectResponse(f"/login?next={quote(request.url.path)}", status_code=303)
