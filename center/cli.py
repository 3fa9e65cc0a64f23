"""``camwatch center --config PATH``: the service; ``... add-user NAME --role ROLE``, ``remove-user NAME``,
``add-token NAME``, ``revoke-token NAME``, ``list-users``."""

from __future__ import annotations

import getpass
import logging
import os
import sys
import threading
import time

from center.background import tune_gc
from center.config import CenterConfig, load_center_config
from center.store import Store, StoreError
from common.errors import ConfigError
from common.i18n import _
from common.notify import stop_on_signals
from common.redact import redact

log = logging.getLogger("center")


def _load(path: str) -> CenterConfig | None:
    try:
        return load_center_config(path)
    except ConfigError as exc:
        print(_("{path}: the center does not start; fix these first:").format(path=path), file=sys.stderr)
        for problem in exc.problems:
            print(f"  {redact(problem)}", file=sys.stderr)
        return None


def _open_store(config: CenterConfig) -> Store | None:
    try:
        return Store(config.store.url)
    except StoreError as exc:
        print(_("the center does not start: {why}").format(why=redact(exc)), file=sys.stderr)
        return None


WRITER_STUCK_S = 60.0  # a store write that has not returned for this long is a hang


def cmd_center(path: str) -> int:
    config = _load(path)
    if config is None:
        return 1
    from common.logs import setup_logging

    setup_logging("info")
    store = _open_store(config)
    if store is None:
        return 1
    from center.service import CenterIngest

    service = CenterIngest(config, store)
    alerts = _Alerts(config, store)
    stop = threading.Event()

    stop_on_signals(stop.set)
    web = None
    try:
        from center.web import serve
    except ImportError:
        log.warning("web pages are off: install camwatch[center] for them")
    else:
        try:  # the pages first: a port in use stops the center before it takes any message
            web = serve(config, store, service, alerts.delivery)
        except RuntimeError:
            print(
                _(
                    "the center does not start: cannot listen on {listen} (is another program using it? "
                    "set [web] listen)"
                ).format(listen=config.web.listen),
                file=sys.stderr,
            )
            alerts.stop()
            store.close()
            return 1
    service.start()
    alerts.start()
    tune_gc()
    log.info(
        "camwatch center: store %s, broker %s:%d%s",
        redact(config.store.url),
        config.mqtt.host,
        config.mqtt.port,
        f", pages on http://{config.web.listen}/" if web else "",
    )
    from common.notify import Notifier

    notifier = Notifier()
    notifier.ready()
    while not stop.wait(1.0):
        # systemd's watchdog: pinged only while the writer loop turns and the pages' server runs
        writer_alive = time.monotonic() - service.beat < WRITER_STUCK_S
        if writer_alive and (web is None or web.thread.is_alive()):
            notifier.alive()
    notifier.stopping()
    alerts.stop()
    if web is not None:
        web.stop()
    service.stop()
    store.close()
    return 0


class _Alerts:
    """The alert checks and their delivery (webhook, e-mail), each in a thread of its own."""

    def __init__(self, config: CenterConfig, store: Store) -> None:
        from center.alerts import AlertWatch
        from center.delivery import Delivery
        from center.fleet import Fleet

        self.config = config
        self.delivery = Delivery(config.alerts, config.tz, config.language).start()
        self.watch = AlertWatch(
            config.alerts, store, Fleet(store, config.uptime.unknown_after_s), self.delivery, tz=config.tz
        )

    def start(self) -> None:
        """The checks start once messages come in (the delivery runs from the start)."""
        self.watch.start()
        channels = ", ".join(self.delivery.channels) or "the pages only"
        log.info("alerts: checked every %g s, told by %s", self.config.alerts.check_every_s, channels)

    def stop(self) -> None:
        self.watch.stop()
        self.delivery.stop()


def _name_ok(name: str) -> bool:
    from center.auth import valid_user_name

    if not valid_user_name(name):
        print(_("the name {name!r}: use 1-64 letters, digits, '.', '_' or '-'").format(name=name), file=sys.stderr)
    return valid_user_name(name)


def cmd_add_user(path: str, name: str, role: str) -> int:
    """Create or update an account; the password comes from $CAMWATCH_PASSWORD or a prompt."""
    config = _load(path)
    if config is None:
        return 1
    from center.auth import hash_password

    if not _name_ok(name):
        return 2
    password = os.environ.get("CAMWATCH_PASSWORD")
    if password is None:
        password = getpass.getpass(_("password for {name}: ").format(name=name))
        if getpass.getpass(_("again: ")) != password:
            print(_("the two passwords differ; nothing changed"), file=sys.stderr)
            return 1
    if len(password) < 8:
        print(_("a password needs at least 8 characters; nothing changed"), file=sys.stderr)
        return 1
    store = _open_store(config)
    if store is None:
        return 1
    store.put_user(name, role, hash_password(password), time.time())
    store.audit("cli", "user_added", f"{name} ({role})", "cli", time.time())
    store.close()
    print(_("user {name} ({role}) saved").format(name=name, role=role))
    return 0


def cmd_add_token(path: str, name: str, role: str) -> int:
    """Create (or replace) an API token for another system; it is printed once and only its hash is kept."""
    config = _load(path)
    if config is None:
        return 1
    from center.auth import new_token

    if not _name_ok(name):
        return 2
    store = _open_store(config)
    if store is None:
        return 1
    token, digest = new_token()
    store.put_token(name, role, digest, time.time())
    store.audit("cli", "token_added", f"{name} ({role})", "cli", time.time())
    store.close()
    print(
        _("API token {name} ({role}); send it as 'Authorization: Bearer <token>'. It is shown only now:").format(
            name=name, role=role
        )
    )
    print(token)
    return 0


def _store_of(path: str) -> Store | None:
    """The store a config file names, opened (or None, the reason printed)."""
    config = _load(path)
    return None if config is None else _open_store(config)


def cmd_remove(path: str, what: str, name: str) -> int:
    """``remove-user NAME`` (their sessions end at once) or ``revoke-token NAME``."""
    store = _store_of(path)
    if store is None:
        return 1
    try:
        if what == "remove-user":
            done, action = store.delete_user(name), "user_removed"
            missing, done_text = _("there is no user called {name!r}; nothing changed"), _("user {name} removed")
        else:
            done, action = store.delete_token(name), "token_revoked"
            missing = _("there is no API token called {name!r}; nothing changed")
            done_text = _("API token {name} revoked: it no longer works")
        if not done:
            print(missing.format(name=name), file=sys.stderr)
            return 1
        store.audit("cli", action, name, "cli", time.time())
    finally:
        store.close()
    print(done_text.format(name=name))
    return 0


def cmd_list_users(path: str) -> int:
    store = _store_of(path)
    if store is None:
        return 1
    try:
        for user in store.users():
            print(f"{_('user'):<7}{user.name:<24} {user.role}")
        for token in store.tokens():
            print(f"{_('token'):<7}{token.name:<24} {token.role}")
    finally:
        store.close()
    return 0
