"""``camwatch status --broker URL``: every camera's retained health as a table."""

from __future__ import annotations

import json
import sys
import threading
import time
from datetime import datetime
from typing import Any
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from common.i18n import SPEAKER, _, ngettext
from common.redact import redact, register_secret
from common.words import word
from contract.topics import health_filter
from contract.vocab import SEVERITY


class BrokerURL:
    def __init__(self, url: str) -> None:
        parts = urlsplit(url if "://" in url else f"mqtt://{url}")
        if parts.scheme not in ("mqtt", "mqtts"):
            raise ValueError(f"broker URL must be mqtt://host:port or mqtts://host:port, got {redact(url)}")
        if not parts.hostname:
            raise ValueError(f"broker URL has no host: {redact(url)}")
        self.tls = parts.scheme == "mqtts"
        self.host = parts.hostname
        self.port = parts.port or (8883 if self.tls else 1883)
        self.username = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else None
        register_secret(self.password)


class RetainedView:
    """Subscribes to health and agent status; keeps the newest of each. Thread-safe."""

    def __init__(self, broker: BrokerURL, prefix: str = "camwatch", ward: str | None = None) -> None:
        self.prefix = prefix
        self.ward = ward
        self.health: dict[tuple[str, str], dict[str, Any]] = {}
        self.agents: dict[str, dict[str, Any]] = {}
        self.last_message = time.monotonic()
        self.connected = threading.Event()
        self.error: str | None = None
        self._lock = threading.Lock()
        client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
        if broker.username:
            client.username_pw_set(broker.username, broker.password)
        if broker.tls:
            client.tls_set()
        client.on_connect = self._on_connect
        client.on_message = self._on_message
        self.client = client
        self.broker = broker

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        if reason.is_failure:
            self.error = f"broker refused the connection: {reason}"
            self.connected.set()
            return
        client.subscribe(health_filter(self.prefix, self.ward), qos=1)
        client.subscribe(f"{self.prefix}/{self.ward or '+'}/agent/status", qos=1)
        self.connected.set()

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        try:
            payload = json.loads(msg.payload)
        except ValueError:
            return
        if not isinstance(payload, dict):
            return
        with self._lock:
            self.last_message = time.monotonic()
            if msg.topic.endswith("/agent/status"):
                self.agents[str(payload.get("ward"))] = payload
            else:
                self.health[(str(payload.get("ward")), str(payload.get("camera")))] = payload

    def start(self, timeout: float = 5.0) -> None:
        try:
            self.client.connect(self.broker.host, self.broker.port, keepalive=30)
        except OSError as exc:
            raise ConnectionError(
                f"cannot connect to broker {self.broker.host}:{self.broker.port}: {exc.strerror or exc}"
            ) from None
        self.client.loop_start()
        if not self.connected.wait(timeout):
            self.stop()
            raise ConnectionError(f"no answer from broker {self.broker.host}:{self.broker.port} within {timeout:g} s")
        if self.error:
            self.stop()
            raise ConnectionError(self.error)

    def settle(self, quiet_s: float = 0.5, max_s: float = 3.0) -> None:
        """Wait until the retained messages have come in."""
        start = time.monotonic()
        while time.monotonic() - start < max_s:
            if time.monotonic() - self.last_message >= quiet_s and time.monotonic() - start >= quiet_s:
                return
            time.sleep(0.05)

    def rows(self) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
        with self._lock:
            return list(self.health.values()), dict(self.agents)

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _parse_ts(ts: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(ts).replace("Z", "+00:00"))
    except ValueError:
        return None


def _ago(seconds: float) -> str:
    s = int(max(0, seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def render_table(health: list[dict[str, Any]], agents: dict[str, dict[str, Any]], now: datetime | None = None) -> str:
    """A plain-text table, worst state first; cameras of an agent that is gone show as unknown."""
    now = now or datetime.now().astimezone()
    lang = SPEAKER.lang
    rows = []
    for h in health:
        ward = str(h.get("ward", "?"))
        state = str(h.get("state", "unknown"))
        agent = agents.get(ward)
        agent_gone = agent is not None and agent.get("state") == "offline"
        since = _parse_ts(h.get("since"))
        stream = h.get("stream") or {}
        fps = stream.get("fps")
        rows.append(
            (
                SEVERITY.get("unknown" if agent_gone else state, 9),
                ward,
                str(h.get("camera", "?")),
                state if not agent_gone or not agent else f"unknown:{agent.get('reason', 'offline')}",
                ", ".join(word(p, lang) for p in h.get("problems") or []) or "-",
                f"{since.astimezone():%Y-%m-%d %H:%M:%S} ({_ago((now - since).total_seconds())})" if since else "-",
                "-" if fps is None else f"{fps:.1f}",
            )
        )
    rows.sort()
    header = (_("WARD"), _("CAMERA"), _("STATE"), _("PROBLEMS"), _("SINCE"), _("FPS"))
    table = [header] + [(*r[1:3], _state_words(r[3], lang), *r[4:]) for r in rows]
    widths = [max(len(str(row[i])) for row in table) for i in range(len(header))]
    lines = ["  ".join(str(cell).ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in table]
    counts: dict[str, int] = {}
    for r in rows:
        key = r[3].split(":")[0]
        counts[key] = counts.get(key, 0) + 1
    summary = ", ".join(f"{counts[k]} {word(k, lang)}" for k in sorted(counts, key=lambda k: SEVERITY.get(k, 9)))
    total = ngettext("{n} camera: {summary}", "{n} cameras: {summary}", len(rows))
    lines.append(total.format(n=len(rows), summary=summary or _("none yet")))
    for ward, agent in sorted(agents.items()):
        if agent.get("state") == "offline":
            lines.append(
                _("agent of ward {ward}: offline ({reason}) since {ts}").format(
                    ward=ward, reason=word(str(agent.get("reason", "?")), lang), ts=agent.get("ts", "?")
                )
            )
        elif agent.get("problems"):
            problems = ", ".join(word(p, lang) for p in agent["problems"])
            lines.append(_("agent of ward {ward}: problems: {problems}").format(ward=ward, problems=problems))
    return "\n".join(lines)


def _state_words(state: str, lang: str) -> str:
    """``unknown (agent connection lost)`` for a camera whose agent is gone, else the state's word."""
    code, _sep, reason = state.partition(":")
    if not reason:
        return word(code, lang)
    return _("{unknown} (agent {reason})").format(unknown=word(code, lang), reason=word(reason, lang))


def cmd_status(broker: str, *, ward: str | None, prefix: str, watch: bool, as_json: bool) -> int:
    try:
        view = RetainedView(BrokerURL(broker), prefix=prefix, ward=ward)
        view.start()
    except (ValueError, ConnectionError) as exc:
        print(f"camwatch status: {redact(exc)}", file=sys.stderr)
        return 2
    try:
        view.settle()
        while True:
            health, agents = view.rows()
            if as_json:
                for h in sorted(health, key=lambda h: (h.get("ward", ""), h.get("camera", ""))):
                    print(json.dumps(h, ensure_ascii=False))
            else:
                if watch:
                    print("\033[2J\033[H", end="")
                print(render_table(health, agents))
            sys.stdout.flush()
            if not watch:
                return 0
            time.sleep(2.0)
    except KeyboardInterrupt:
        return 0
    finally:
        view.stop()
