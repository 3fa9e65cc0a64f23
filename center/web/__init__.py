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

The package, a room each: :mod:`~center.web.app` (wiring, hardening),
:mod:`~center.web.site` (what routes share, the session dependencies),
:mod:`~center.web.login`, :mod:`~center.web.pages`, :mod:`~center.web.api`
(response models), :mod:`~center.web.sessions`, :mod:`~center.web.csvfile`,
:mod:`~center.web.server`.
"""

from center.web.app import build_app
from center.web.server import WebServer, serve

__all__ = ["WebServer", "build_app", "serve"]
