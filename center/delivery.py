"""Alerts told to people and systems outside: a signed webhook and e-mail, from a thread of their own.

The webhook gets one JSON document per notice (``schema: camwatch.alert/1``)
by POST, with two headers a receiver checks before believing it:

- ``X-Camwatch-Timestamp``: Unix seconds when it was sent (refuse old ones: replays);
- ``X-Camwatch-Signature``: ``sha256=`` and the hex HMAC-SHA256, keyed with
  ``webhook_secret``, of ``<timestamp>.<body>``.

E-mail goes through the configured SMTP server (STARTTLS and a login when
set), its subject and text in the center's language. A channel that fails is
tried again (2, 4, 8, 16 s) before the notices are given up and counted; the
checks never wait on it. The notices of one look go together: one e-mail for
them all when there are several.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import queue
import smtplib
import ssl
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import datetime
from email.message import EmailMessage
from typing import Any
from zoneinfo import ZoneInfo

from center.alerts import DAILY, Notice, detail_fields
from center.config import AlertsConfig, EmailConfig
from center.i18n import alert_detail, duration
from common.i18n import N_, translations
from common.redact import redact

log = logging.getLogger("center.alerts")

ALERT_SCHEMA = "camwatch.alert/1"
RETRIES_S = (2.0, 4.0, 8.0, 16.0)
QUEUE_MAX = 10000
KIND_WORDS = {
    "camera_offline": N_("camera offline"),
    "camera_degraded": N_("camera degraded"),
    "agent_gone": N_("ward agent gone"),
    "camera_uptime_low": N_("uptime below target"),
}


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The signature header's value for ``body`` sent at ``timestamp``."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def document(notice: Notice, tz: ZoneInfo, lang: str) -> dict[str, Any]:
    """The webhook's JSON: the alert's facts (codes, ISO times) and its sentence in ``lang``."""
    a = notice.alert

    def iso(ts: float | None) -> str | None:
        return None if ts is None else datetime.fromtimestamp(ts, tz).isoformat(timespec="seconds")

    return {
        "schema": ALERT_SCHEMA,
        "event": notice.what,
        "id": a.id,
        "kind": a.kind,
        "ward": a.ward,
        "camera": a.camera or None,
        "name": notice.name,
        "since": iso(a.since),
        "fired": iso(a.fired),
        "resolved": iso(a.resolved),
        **detail_fields(a),
        "text": sentence(notice, lang),
    }


def sentence(notice: Notice, lang: str) -> str:
    """``ALERT: camera offline: w1/c1 for 12 min (stream stalled)`` in ``lang``."""
    tr = translations(lang)
    a = notice.alert
    subject = f"{a.ward}/{a.camera}" if a.camera else a.ward
    if notice.name:
        subject = f"{subject} ({notice.name})"
    kind = tr.gettext(KIND_WORDS.get(a.kind, a.kind))
    if a.kind == DAILY:  # about a day, not a stretch of time: the day's figure says it
        template = (
            tr.gettext("ALERT: {kind}: {subject}, {detail}")
            if notice.what == "fired"
            else tr.gettext("RECOVERED: {kind}: {subject}, {detail}")
        )
        return template.format(kind=kind, subject=subject, detail=alert_detail(a.detail, lang))
    end = a.resolved if a.resolved is not None else a.fired
    lasted = duration(end - a.since, lang)
    why = alert_detail(a.detail, lang)
    template = (
        tr.gettext("ALERT: {kind}: {subject} for {lasted}")
        if notice.what == "fired"
        else tr.gettext("RECOVERED: {kind}: {subject}, after {lasted}")
    )
    text = template.format(kind=kind, subject=subject, lasted=lasted)
    return f"{text} ({why})" if why else text


class Delivery:
    """Takes the notices of one look (``delivery(notices)`` never blocks) and sends them to every channel.

    The webhook gets one document per notice. E-mail gets one message per look: a notice alone is its own
    message; several (a ward's cameras, the day's uptime) are one digest, not a flood of mails. A channel that
    fails is tried again from the notice it stopped at, so a receiver that is down costs one round of
    retries, not one per notice.
    """

    def __init__(self, config: AlertsConfig, tz: ZoneInfo, lang: str, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.tz = tz
        self.lang = lang
        self.clock = clock
        self._queue: queue.Queue[list[Notice] | None] = queue.Queue(QUEUE_MAX)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.sent = {"webhook": 0, "email": 0}
        self.failed = {"webhook": 0, "email": 0}
        self.dropped = 0
        self._waiting = 0  # notices taken, not yet sent or given up: changed by two threads, under the lock
        self._lock = threading.Lock()

    @property
    def channels(self) -> list[str]:
        return [name for name, on in (("webhook", self.config.webhook_url), ("email", self.config.email)) if on]

    def __call__(self, notices: list[Notice]) -> None:
        if not self.channels or not notices:
            return
        with self._lock:  # counted before the sender can take them
            self._waiting += len(notices)
        try:
            self._queue.put_nowait(list(notices))
        except queue.Full:
            with self._lock:
                self._waiting -= len(notices)
            self.dropped += len(notices)
            log.error(
                "alerts: %d looks' notices waiting to be sent; these %d are dropped (counted)", QUEUE_MAX, len(notices)
            )

    @property
    def waiting(self) -> int:
        """Notices taken and not yet sent or given up."""
        return self._waiting

    def start(self) -> Delivery:
        self._thread = threading.Thread(target=self._run, name="alert-delivery", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop now: notices still being tried are tried no more (they are counted as failed)."""
        self._stop.set()
        self._queue.put(None)
        if self._thread is not None:
            self._thread.join(timeout)

    def settle(self, timeout: float) -> bool:
        """Wait until every notice taken so far is sent or given up; whether that happened within ``timeout``."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.02)
        return not self._queue.unfinished_tasks

    def _run(self) -> None:
        while (notices := self._queue.get()) is not None:
            for channel in self.channels:
                self._send(channel, notices)
            with self._lock:
                self._waiting -= len(notices)
            self._queue.task_done()

    def _send(self, channel: str, notices: list[Notice]) -> None:
        done = 0  # notices sent so far on this channel
        for attempt, pause in enumerate((*RETRIES_S, None), start=1):
            try:
                if channel == "webhook":
                    while done < len(notices):
                        self.post(notices[done])
                        done += 1
                        self.sent[channel] += 1
                else:
                    self.mail(notices)
                    done = len(notices)
                    self.sent[channel] += done
                return
            except (OSError, smtplib.SMTPException, urllib.error.URLError) as exc:
                left = len(notices) - done
                if pause is None or self._stop.is_set():
                    self.failed[channel] += left
                    log.error("alerts: %s: %d not sent after %d tries: %s", channel, left, attempt, redact(str(exc)))
                    return
                log.warning("alerts: %s failed (%s); trying again in %g s", channel, redact(str(exc)), pause)
                self._stop.wait(pause)

    def post(self, notice: Notice) -> None:
        """POST the notice to the webhook, signed; raises OSError (URLError, HTTPError) when it is not taken."""
        assert self.config.webhook_url is not None and self.config.webhook_secret is not None
        body = json.dumps(document(notice, self.tz, self.lang), ensure_ascii=False).encode()
        timestamp = int(self.clock())
        request = urllib.request.Request(
            self.config.webhook_url,
            data=body,
            method="POST",
            headers={
                "Content-Type": "application/json; charset=utf-8",
                "User-Agent": "camwatch-center",
                "X-Camwatch-Timestamp": str(timestamp),
                "X-Camwatch-Signature": sign(self.config.webhook_secret.get_secret_value(), timestamp, body),
            },
        )
        with urllib.request.urlopen(request, timeout=10) as answer:  # the configured http(s) URL only
            answer.read()

    def mail(self, notices: list[Notice]) -> None:
        """One message: a notice alone with its facts, or a digest of several, a line each."""
        email = self.config.email
        assert email is not None
        message = EmailMessage()
        if len(notices) == 1:
            (notice,) = notices
            text = sentence(notice, self.lang)
            facts = document(notice, self.tz, self.lang)
            body = text + "\n\n" + "\n".join(f"{k}: {v}" for k, v in facts.items() if k not in ("text", "schema"))
        else:
            text = digest_subject(notices, self.lang)
            ordered = sorted(notices, key=lambda n: (n.what, n.alert.kind, n.alert.ward, n.alert.camera))
            body = "\n".join(sentence(n, self.lang) for n in ordered) + "\n"
        message["Subject"] = f"[camwatch] {text}"
        message["From"] = email.sender
        message["To"] = ", ".join(email.to)
        message.set_content(body)
        with _smtp(email) as smtp:
            smtp.send_message(message)


def digest_subject(notices: list[Notice], lang: str) -> str:
    """``12 alert notices: 10 new, 2 ended`` in ``lang``."""
    fired = sum(1 for n in notices if n.what == "fired")
    return (
        translations(lang)
        .ngettext(
            "{n} alert notice: {fired} new, {ended} ended",
            "{n} alert notices: {fired} new, {ended} ended",
            len(notices),
        )
        .format(n=len(notices), fired=fired, ended=len(notices) - fired)
    )


def _smtp(email: EmailConfig) -> smtplib.SMTP:
    smtp = smtplib.SMTP(email.host, email.port, timeout=10)
    try:
        if email.starttls:
            smtp.starttls(context=ssl.create_default_context())
        if email.username is not None:
            password = email.password.get_secret_value() if email.password else ""
            smtp.login(email.username.get_secret_value(), password)
    except BaseException:
        smtp.close()
        raise
    return smtp
