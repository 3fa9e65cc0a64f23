"""Alerts: fired once after their limit, ended once, quiet in maintenance, kept across a restart; told by a signed
webhook to a real HTTP receiver and by e-mail through a real SMTP server (aiosmtpd)."""

from __future__ import annotations

import email
import email.policy
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiosmtpd.controller import Controller
from support import WebhookReceiver

import center.delivery as delivery_module
from agent.sim.rtsp import free_port
from center.alerts import DAILY, AlertWatch, DayUptime, Notice
from center.config import AlertRule, AlertsConfig, EmailConfig
from center.delivery import Delivery, document, sentence, sign
from center.fleet import Fleet
from center.store import AgentRow, Store, WriteBatch
from center.timeline import Assertion

T0 = 1_800_000_000.0
TZ = ZoneInfo("Asia/Ho_Chi_Minh")


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(f"sqlite:///{tmp_path / 'center.db'}")
    yield s
    s.close()


def report(store: Store, now: float, cameras: dict[str, tuple[str, float, tuple[str, ...]]], ward: str = "w1") -> None:
    """The ward's heartbeats at ``now``: each camera's (state, since, problems)."""
    batch = WriteBatch.empty(now)
    for camera, (state, since, problems) in cameras.items():
        batch.camera(ward, camera, None, now)
        batch.assertion(ward, camera, Assertion(since, now, state, problems))  # type: ignore[arg-type]
    store.write(batch)


def agent(store: Store, state: str, ts: float, reason: str = "", ward: str = "w1") -> None:
    batch = WriteBatch.empty(ts)
    batch.agent(AgentRow(ward, state, (), "0.1.0", ts, reason), (ts, 0, 0, ""))
    store.write(batch)


def watch(store: Store, clock: Clock, tz: ZoneInfo | None = None, **limits: Any) -> tuple[AlertWatch, list[Notice]]:
    told: list[Notice] = []
    config = AlertsConfig(**({"offline_after_s": 600, "degraded_after_s": 1800} | limits))
    return AlertWatch(config, store, Fleet(store), told.extend, clock=clock, tz=tz), told


def said(notices: list[Notice]) -> list[tuple[str, str, str]]:
    return [(n.what, n.alert.kind, n.alert.camera) for n in notices]


def test_an_outage_fires_once_after_its_limit_and_its_end_is_said_once(store: Store) -> None:
    clock = Clock()
    alerts, told = watch(store, clock)
    agent(store, "online", T0 - 3600)
    for minute in range(0, 16):  # c1 offline from T0 (stalled); c2 well
        clock.now = T0 + 60 * minute
        report(store, clock.now, {"c1": ("offline", T0, ("stalled",)), "c2": ("online", T0 - 3600, ())})
        alerts.check()
    assert said(told) == [("fired", "camera_offline", "c1")]  # at 10 min, once
    assert told[0].alert.fired == T0 + 600 and told[0].alert.since == T0 and told[0].alert.detail == "stalled"
    # A restart of the center neither repeats nor forgets it.
    again, told_again = watch(store, clock)
    clock.now += 60
    report(store, clock.now, {"c1": ("offline", T0, ("stalled",))})
    assert again.check() == [] and told_again == []
    clock.now += 60
    report(store, clock.now, {"c1": ("online", clock.now - 5, ())})
    assert said(again.check()) == [("resolved", "camera_offline", "c1")]
    assert again.check() == []
    (row,) = store.alerts(since=T0)
    assert row.resolved == clock.now


def test_a_short_outage_and_a_camera_in_maintenance_raise_nothing(store: Store) -> None:
    clock = Clock()
    alerts, told = watch(store, clock)
    store.add_maintenance(
        ward="w1", camera="c2", start=T0 - 60, end=T0 + 7200, note="thay dây", created_by="op", now=T0
    )
    for minute in range(0, 20):
        clock.now = T0 + 60 * minute
        c1 = ("offline", T0, ("unreachable",)) if minute < 8 else ("online", T0 + 480, ())
        report(store, clock.now, {"c1": c1, "c2": ("offline", T0, ("unreachable",))})
        alerts.check()
    assert told == []


def test_a_gone_ward_is_one_alert_and_its_cameras_alerts_stay_open_until_they_are_seen(store: Store) -> None:
    clock = Clock()
    alerts, told = watch(store, clock, agent_gone_after_s=300)
    agent(store, "online", T0 - 3600)
    report(store, T0, {"c1": ("offline", T0 - 900, ("auth_failed",)), "c2": ("online", T0 - 900, ())})
    alerts.check()
    assert said(told) == [("fired", "camera_offline", "c1")]
    agent(store, "offline", T0 + 10, reason="lost")  # the last will: every camera becomes unknown
    for minute in range(1, 12):
        clock.now = T0 + 60 * minute
        alerts.check()
    assert said(told)[1:] == [("fired", "agent_gone", "")]  # one for the ward, none per camera
    assert told[1].alert.detail == "lost"
    agent(store, "online", clock.now)
    report(store, clock.now, {"c1": ("online", clock.now, ()), "c2": ("online", clock.now, ())})
    alerts.check()
    assert sorted(said(told)[2:]) == [("resolved", "agent_gone", ""), ("resolved", "camera_offline", "c1")]


def test_a_store_failing_half_way_through_a_look_loses_no_notice(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock()
    alerts, told = watch(store, clock)
    clock.now = T0 + 700
    report(store, clock.now, {"c1": ("offline", T0, ()), "c2": ("offline", T0, ())})
    fire = store.fire_alert
    calls = []

    def fire_once(*args: Any) -> Any:
        calls.append(args)
        if len(calls) == 2:
            raise OSError("disk I/O error")
        return fire(*args)

    monkeypatch.setattr(store, "fire_alert", fire_once)
    with pytest.raises(OSError):
        alerts.check()
    assert said(told) == [("fired", "camera_offline", "c1")]  # stored, so told
    monkeypatch.setattr(store, "fire_alert", fire)
    alerts.check()  # the next look fires the other, and not the first again
    assert said(told) == [("fired", "camera_offline", "c1"), ("fired", "camera_offline", "c2")]


def test_rules_per_ward_and_camera_win_key_by_key(store: Store) -> None:
    clock = Clock()
    rules = [AlertRule(ward="w1", offline_after_s=60), AlertRule(ward="w1", camera="c9", offline_after_s=0)]
    alerts, told = watch(store, clock, rules=rules)
    clock.now = T0 + 120
    report(store, clock.now, {"c1": ("offline", T0, ()), "c9": ("offline", T0, ())})
    report(store, clock.now, {"c1": ("offline", T0, ())}, ward="w2")  # the default: 600 s
    alerts.check()
    assert [(n.alert.ward, n.alert.camera) for n in told] == [("w1", "c1")]


def test_a_degraded_camera_gone_offline_has_not_recovered(store: Store) -> None:
    clock = Clock()
    alerts, told = watch(store, clock, degraded_after_s=60)
    clock.now = T0 + 120
    report(store, clock.now, {"c1": ("degraded", T0, ("blurred",))})
    alerts.check()
    clock.now += 60
    report(store, clock.now, {"c1": ("offline", clock.now - 30, ("stalled",))})
    alerts.check()
    assert said(told) == [("fired", "camera_degraded", "c1")]


def held(store: Store, ward: str, camera: str, *spans: tuple[float, float, str]) -> None:
    """The camera's states as its ward told them: each (start, end, state) asserted at its end."""
    for start, end, state in spans:
        batch = WriteBatch.empty(end)
        batch.camera(ward, camera, None, start)
        problems = ("stalled",) if state == "offline" else ()
        batch.assertion(ward, camera, Assertion(start, end, state, problems))  # type: ignore[arg-type]
        store.write(batch)


def test_a_day_below_its_uptime_target_fires_once_after_midnight_and_a_good_day_ends_it(store: Store) -> None:
    d0 = datetime(2027, 1, 16, tzinfo=TZ).timestamp()  # a local day, and the two after it
    d1, d2 = d0 + 86400, d0 + 2 * 86400
    rules = [
        AlertRule(ward="w1", uptime_below_pct=95),
        AlertRule(ward="w1", camera="c3", uptime_below_pct=0),  # off for this one
    ]
    clock = Clock()
    alerts, told = watch(store, clock, rules=rules, offline_after_s=0, tz=TZ)
    hours = 3600.0
    held(store, "w1", "c1", (d0 - hours, d0 + 10 * hours, "online"), (d0 + 10 * hours, d0 + 12 * hours, "offline"))
    held(store, "w1", "c1", (d0 + 12 * hours, d1 + 20 * 60, "online"))  # 22 h of 24: 91.7 %
    held(store, "w1", "c2", (d0 - hours, d1 + 20 * 60, "online"))
    held(store, "w1", "c3", (d0 - hours, d1 + 20 * 60, "offline"))
    held(store, "w1", "c4", (d0 - 2 * hours, d0 - hours, "online"))  # nothing known of it that day
    clock.now = d1 + 600  # the day has ended, but messages of its last minutes may still come
    assert alerts.check() == []
    clock.now = d1 + 900
    (fired,) = alerts.check()
    assert (fired.what, fired.alert.kind, fired.alert.camera, fired.alert.since) == ("fired", DAILY, "c1", d0)
    assert DayUptime.parse(fired.alert.detail) == DayUptime("2027-01-16", 91.67, 95)
    assert sentence(fired, "en") == "ALERT: uptime below target: w1/c1, up 91.7 % on 2027-01-16 (target 95 %)"
    facts = document(fired, TZ, "vi")
    assert facts["uptime"] == {"day": "2027-01-16", "percent": 91.67, "target": 95} and facts["detail"] == []
    clock.now += 60
    assert alerts.check() == []
    again, told_again = watch(store, clock, rules=rules, offline_after_s=0, tz=TZ)  # a restart judges it again
    assert again.check() == [] and [a.kind for a in store.open_alerts()] == [DAILY]
    held(store, "w1", "c1", (d1 + 20 * 60, d2 + 20 * 60, "online"))  # the next day, a good one
    clock.now = d2 + 900
    (resolved,) = again.check()
    assert (resolved.what, resolved.alert.camera) == ("resolved", "c1")
    assert sentence(resolved, "en") == "RECOVERED: uptime below target: w1/c1, up 100.0 % on 2027-01-17 (target 95 %)"
    assert store.open_alerts() == [] and told == [fired] and told_again == [resolved]


def test_turning_a_target_off_ends_its_open_uptime_alert_quietly(store: Store) -> None:
    clock = Clock()
    held(store, "w1", "c1", (T0 - 7200, T0, "online"))
    store.fire_alert((DAILY, "w1", "c1"), T0 - 86400, "day=2027-01-14,uptime=80.00,target=95", T0 - 3600)
    alerts, told = watch(store, clock, tz=TZ)  # no uptime_below_pct any more
    assert alerts.check() == [] and told == []
    assert store.open_alerts() == [] and store.alerts(since=0)[0].resolved == T0


class Inbox:
    """An aiosmtpd handler keeping every message."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.arrived = threading.Event()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's name
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        self.messages.append(parsed)
        self.arrived.set()
        return "250 OK"


@contextmanager
def channels(fail: int = 0) -> Iterator[tuple[Inbox, WebhookReceiver, AlertsConfig]]:
    """A real SMTP server and a real webhook receiver (failing its first ``fail`` POSTs), and the config for them."""
    inbox = Inbox()
    smtp = Controller(inbox, hostname="127.0.0.1", port=free_port())
    smtp.start()
    try:
        with WebhookReceiver(fail=fail) as hook:
            yield (
                inbox,
                hook,
                AlertsConfig(
                    webhook_url=hook.url,
                    webhook_secret="s3cret-shared",
                    email=EmailConfig(
                        host="127.0.0.1", port=smtp.port, sender="camwatch@center", to=["truc-ban@center"]
                    ),
                ),
            )
    finally:
        smtp.stop()


def test_notices_reach_a_signed_webhook_and_an_smtp_server_in_vietnamese(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(delivery_module, "RETRIES_S", (0.05, 0.05))
    with channels(fail=1) as (inbox, hook, config):  # the first POST fails: it is tried again
        clock = Clock()
        sender = Delivery(config, TZ, "vi", clock=clock).start()
        alerts = AlertWatch(config, store, Fleet(store), sender, clock=clock)
        clock.now = T0 + 700
        report(store, clock.now, {"c1": ("offline", T0, ("auth_failed",))})
        alerts.check()
        clock.now += 60
        report(store, clock.now, {"c1": ("online", clock.now, ())})
        alerts.check()
        assert sender.settle(timeout=20)
        sender.stop()
    assert sender.sent == {"webhook": 2, "email": 2} and sender.failed == {"webhook": 0, "email": 0}
    (h1, b1), (_h2, b2) = hook.got
    assert h1["X-Camwatch-Signature"] == sign("s3cret-shared", int(h1["X-Camwatch-Timestamp"]), b1)
    fired, resolved = json.loads(b1), json.loads(b2)
    assert fired["schema"] == "camwatch.alert/1" and fired["event"] == "fired" and resolved["event"] == "resolved"
    assert (fired["kind"], fired["ward"], fired["camera"], fired["detail"]) == (
        "camera_offline",
        "w1",
        "c1",
        ["auth_failed"],
    )
    assert fired["since"] == "2027-01-15T15:00:00+07:00"
    assert fired["text"] == "CẢNH BÁO: camera mất tín hiệu: w1/c1 đã 11 phút 40 giây (sai tên đăng nhập hoặc mật khẩu)"
    subjects = [str(m["Subject"]) for m in inbox.messages]
    assert subjects == [f"[camwatch] {fired['text']}", f"[camwatch] {resolved['text']}"]
    assert "s3cret" not in b1.decode() + "".join(m.as_string() for m in inbox.messages)


def test_a_receiver_that_never_answers_is_given_up_and_counted(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(delivery_module, "RETRIES_S", (0.05,))
    closed = free_port()  # nothing listens there
    config = AlertsConfig(webhook_url=f"http://127.0.0.1:{closed}/hook", webhook_secret="x")
    clock = Clock()
    sender = Delivery(config, TZ, "en", clock=clock).start()
    alerts = AlertWatch(config, store, Fleet(store), sender, clock=clock)
    clock.now = T0 + 700
    report(store, clock.now, {f"c{i}": ("offline", T0, ()) for i in range(5)})
    started = time.monotonic()
    assert len(alerts.check()) == 5
    assert sender.settle(timeout=20)
    sender.stop()
    assert sender.failed == {"webhook": 5, "email": 0} and sender.sent["webhook"] == 0 and sender.waiting == 0
    assert time.monotonic() - started < 5  # one round of retries for the look, not one per notice


def test_the_notices_of_one_look_are_one_email_and_a_document_each(store: Store) -> None:
    with channels() as (inbox, hook, config):
        clock = Clock()
        sender = Delivery(config, TZ, "en", clock=clock).start()
        alerts = AlertWatch(config, store, Fleet(store), sender, clock=clock)
        clock.now = T0 + 700  # a ward's power strip: three cameras down at once
        report(store, clock.now, {f"c{i}": ("offline", T0, ("unreachable",)) for i in range(3)})
        alerts.check()
        assert sender.settle(timeout=20)
        sender.stop()
    assert sorted(doc["camera"] for doc in hook.documents()) == ["c0", "c1", "c2"]
    (digest,) = inbox.messages
    assert str(digest["Subject"]) == "[camwatch] 3 alert notices: 3 new, 0 ended"
    lines = digest.get_content().splitlines()
    assert lines == [f"ALERT: camera offline: w1/c{i} for 11 min 40 s (unreachable)" for i in range(3)]
    assert sender.sent == {"webhook": 3, "email": 3}


def test_a_webhook_needs_its_secret() -> None:
    with pytest.raises(ValueError, match="webhook_secret"):
        AlertsConfig(webhook_url="https://example.invalid/hook")
