"""The center's web server: uvicorn in a thread, and a thread keeping the standard uptime periods computed."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import uvicorn
from fastapi import FastAPI

from center.config import CenterConfig
from center.delivery import Delivery
from center.service import CenterIngest
from center.store import Store
from center.web.app import build_app
from common.redact import redact

log = logging.getLogger(__name__)


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
                self.app.state.site.warm()
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


def serve(config: CenterConfig, store: Store, service: CenterIngest, delivery: Delivery | None = None) -> WebServer:
    w = config.web
    tls = (w.tls_cert, w.tls_key) if w.tls_cert is not None and w.tls_key is not None else None
    app = build_app(config, store, service, delivery=delivery)
    return WebServer(app, w.host, w.port, tls=tls, trusted_proxies=w.trusted_proxies).start()
