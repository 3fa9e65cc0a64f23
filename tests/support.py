"""What the tests share besides fixtures (those are in conftest.py): helpers to run the agent and the
`camwatch` command, to wait on a condition, to write configs and build contract messages, and to collect
what a broker carries. Imported one way: ``from support import ...``."""

from __future__ import annotations

import json
import os
import signal
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jsonschema
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from contract.schemas import SCHEMAS, schema

if TYPE_CHECKING:
    from center.service import CenterIngest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"  # ../shared: the models and test data shipped beside the project
SHARED_MODELS = SHARED / "models"
TESTDATA = SHARED / "testdata"


def child_pids(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (the agent's reader processes, for one)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as f:
                if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry))
        except (OSError, ValueError, IndexError):
            continue
    return found


def wait_until(predicate: Callable[[], Any], timeout: float, interval: float = 0.05) -> Any:
    """Poll ``predicate`` until it returns something truthy; bounded in time."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            return value
        time.sleep(interval)


# -- contract messages -----------------------------------------------------------


def health_message(
    camera: str, name: str, state: str, since: float, at: float, problems: tuple[str, ...] = (), ward: str = "w1"
) -> bytes:
    """A camera's retained health as the agent's own builder writes it (times are wall-clock seconds)."""
    from agent.health.state import Verdict
    from agent.publish.payloads import encode, health_payload
    from agent.stream.stats import StreamSnapshot

    payload = health_payload(
        ward=ward,
        camera=camera,
        name=name,
        verdict=Verdict(state, problems, since),  # type: ignore[arg-type]
        stream=StreamSnapshot(),
        wall_of=lambda m: m,
        now_wall=at,
        uptime_window_s=86400,
        online_ratio=None,
    )
    return encode(payload)


def flowing(now: float, since: float, started: float | None = None) -> Any:
    """A 360p H.264 camera's stream as its reader reports it: connected, packets flowing since ``since``, the
    last one at ``now`` (monotonic seconds)."""
    from agent.stream.stats import StreamSnapshot

    return StreamSnapshot(
        connected=True,
        connects=1,
        last_packet=now,
        flow_since=since,
        started_at=since if started is None else started,
        codec="h264",
        width=640,
        height=360,
        nominal_fps=15.0,
        fps=15.0,
        as_of=now,
    )


def stats_message(at: float, ward: str = "w1") -> bytes:
    """An agent's stats with the fields every one carries, none measured (``at``: wall-clock seconds)."""
    from agent.clock import rfc3339

    payload = {
        "schema": "camwatch.stats/1",
        "ward": ward,
        "ts": rfc3339(at),
        "uptime_s": 60.0,
        "cpu_s": 1.5,
        "rss_bytes": None,
        "threads": 9,
        "fds": None,
        "outbox": {"pending": 0, "dropped": 0},
        "cameras": {},
    }
    return json.dumps(payload).encode()


# -- a ward and a center, for the center's tests ------------------------------------

PASSWORD = "Mat-khau-9x"  # every test user's password


class Ward:
    """A ward agent's voice: QoS 1 publishes, waited for."""

    def __init__(self, port: int, client_id: str = "ward-w1") -> None:
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def send(self, topic: str, payload: bytes, retain: bool = False) -> None:
        """Publish to ``camwatch/w1/{topic}`` at QoS 1 and wait for the broker's acknowledgement."""
        info = self.client.publish(f"camwatch/w1/{topic}", payload, qos=1, retain=retain)
        info.wait_for_publish(5)

    def health(self, state: str, since: float, at: float, problems: tuple[str, ...] = ()) -> None:
        self.send("c1/health", health_message("c1", "Chợ Đông Ba", state, since, at, problems), retain=True)

    def change(self, frm: str, to: str, since: float, at: float, problems: tuple[str, ...] = ()) -> dict[str, Any]:
        from agent.health.state import Change
        from agent.publish.payloads import encode, event_payload

        change = Change("state_changed", at, frm, to, None, problems)  # type: ignore[arg-type]
        payload = event_payload(ward="w1", camera="c1", change=change, wall=at, since_wall=since)
        self.send("c1/events", encode(payload))
        return payload

    def stop(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def center_for(port: int, url: str) -> CenterIngest:
    """The center's ingest service on the broker at ``port``, storing to ``url``, connected."""
    from center.config import parse_center_config
    from center.service import CenterIngest
    from center.store import Store

    config = parse_center_config({"mqtt": {"port": port}, "store": {"url": url}})
    service = CenterIngest(config, Store(config.store.url))
    service.start()
    assert service.wait_connected(10)
    return service


# -- MQTT collector ----------------------------------------------------------------


class Collector:
    """Subscribes to a prefix; keeps every message; validates every JSON payload."""

    def __init__(self, port: int, prefix: str, auth: tuple[str, str] | None = None, session: str | None = None) -> None:
        self.prefix = prefix
        self.messages: list[tuple[str, Any, bool]] = []
        self.schema_errors: list[str] = []
        self._lock = threading.Lock()
        # session: a fixed client id with a persistent session (QoS 1 messages wait at the broker)
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=session or "", clean_session=session is None, protocol=mqtt.MQTTv311
        )
        self.client.reconnect_delay_set(1, 1)
        self.client.on_message = self._on_message
        if auth:
            self.client.username_pw_set(*auth)
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe(f"{prefix}/#", qos=1)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def _on_message(self, client: Any, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        payload: Any = msg.payload
        if "/snapshot/" not in msg.topic:
            try:
                payload = json.loads(msg.payload)
            except ValueError:
                self.schema_errors.append(f"{msg.topic}: not JSON: {msg.payload[:80]!r}")
                return
            name = payload.get("schema") if isinstance(payload, dict) else None
            if name not in SCHEMAS:
                self.schema_errors.append(f"{msg.topic}: unknown schema {name!r}")
            else:
                try:
                    jsonschema.validate(payload, schema(name))
                except jsonschema.ValidationError as exc:
                    self.schema_errors.append(f"{msg.topic}: {exc.message}")
        with self._lock:
            self.messages.append((msg.topic, payload, bool(msg.retain)))

    def of(self, suffix: str) -> list[Any]:
        with self._lock:
            return [p for t, p, _ in self.messages if t.endswith(suffix)]

    def last(self, suffix: str) -> Any:
        found = self.of(suffix)
        return found[-1] if found else None

    def wait_for(self, suffix: str, predicate: Callable[[Any], bool], timeout: float) -> Any:
        def check() -> Any:
            for p in reversed(self.of(suffix)):
                if predicate(p):
                    return p
            return None

        return wait_until(check, timeout)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


# -- RTSP server ------------------------------------------------------------------

CAM_USER = "admin"
CAM_PASSWORD = "Canary-7f3a9c"  # the canary: must never appear in logs, payloads or output


# -- the agent as a subprocess ----------------------------------------------------------


def toml_value(v: Any) -> str:
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k} = {toml_value(x)}" for k, x in v.items()) + "}"
    if isinstance(v, list | tuple):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    return json.dumps(str(v), ensure_ascii=False)


def write_config(
    path: Path,
    ward: str,
    port: int,
    prefix: str,
    cameras: list[dict[str, Any]],
    mqtt: dict[str, Any] | None = None,
    detection: dict[str, Any] | None = None,
    metrics: str | None = None,
    **health: Any,
) -> Path:
    """A ward config for tests; detection stays off unless ``detection`` (the [detection] table) is given;
    ``metrics``: ``[metrics] listen``."""
    state_dir = health.pop("state_dir", path.parent / "state")
    lines = [f'ward = "{ward}"', f"state_dir = {toml_value(state_dir)}", 'log_level = "debug"', "[mqtt]"]
    lines += ['host = "127.0.0.1"', f"port = {port}", f'topic_prefix = "{prefix}"', "keepalive_s = 5"]
    lines += [f"{k} = {toml_value(v)}" for k, v in (mqtt or {}).items()]
    health = {"offline_after_s": 3, "online_after_s": 1, "heartbeat_s": 5, "stats_s": 2, **health}
    lines += ["[health]"] + [f"{k} = {toml_value(v)}" for k, v in health.items()]
    lines += ["[stream]", "open_timeout_s = 3", "read_timeout_s = 1", "backoff_initial_s = 0.5", "backoff_max_s = 2"]
    lines += ["[detection]"] + [f"{k} = {toml_value(v)}" for k, v in (detection or {"enabled": False}).items()]
    if metrics is not None:
        lines += ["[metrics]", f"listen = {toml_value(metrics)}"]
    for cam in cameras:
        lines.append("[[cameras]]")
        lines += [f"{k} = {toml_value(v)}" for k, v in cam.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def plain_locale() -> dict[str, str]:
    """This process's environment in the C locale: the command line speaks English unless a test says otherwise."""
    locale = ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG")
    return {k: v for k, v in os.environ.items() if k not in locale} | {"LANG": "C.UTF-8"}


def camwatch(
    *args: str, timeout: float = 60, stdin: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the command line as a user would (``stdin``: what is typed; ``env``: added to the environment)."""
    return subprocess.run(
        [sys.executable, "-m", "agent.cli.main", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env=plain_locale() | (env or {}),
        check=False,
    )


class AgentProcess:
    """``camwatch run --config`` (or another command taking --config, e.g. ``center``) as a subprocess."""

    def __init__(self, config: Path, log_path: Path, command: str = "run") -> None:
        self.config = config
        self.log_path = log_path
        self.command = command
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> AgentProcess:
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "agent.cli.main", self.command, "--config", str(self.config)],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
        return self

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(5)
        self._log.close()

    def stop(self) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()
        return self.proc.returncode

    def log_text(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")


# -- an MQTT 5 client that records what happens to it (attacks on the shipped broker) ------------------


@dataclass
class Client:
    """A paho MQTT 5 client that records what happens to it."""

    client: mqtt.Client
    connack: list[Any] = field(default_factory=list)
    disconnects: list[Any] = field(default_factory=list)
    pubacks: dict[int, Any] = field(default_factory=dict)
    subacks: dict[int, list[Any]] = field(default_factory=dict)
    messages: list[mqtt.MQTTMessage] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def connected(self) -> bool:
        return bool(self.connack) and not self.connack[-1].is_failure and not self.disconnects

    def publish(self, topic: str, payload: bytes | str, *, retain: bool = False, timeout: float = 5.0) -> Any:
        """Publish at QoS 1 and return the PUBACK's reason code (None: no PUBACK came)."""
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        return wait_until(lambda: self.pubacks.get(info.mid), timeout)

    def subscribe(self, topic: str, timeout: float = 5.0) -> Any:
        _, mid = self.client.subscribe(topic, qos=1)
        codes = wait_until(lambda: self.subacks.get(mid) if mid is not None else None, timeout)
        return codes[0] if codes else None

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def connect(
    port: int,
    client_id: str,
    *,
    user: str | None = None,
    password: str | None = None,
    ca: Path | None = None,
    cert: tuple[Path, Path] | None = None,
    will: tuple[str, bytes] | None = None,
    persistent: bool = False,
    timeout: float = 5.0,
) -> Client:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    rec = Client(client)
    if user is not None:
        client.username_pw_set(user, password)
    if ca is not None:
        client.tls_set(
            ca_certs=str(ca),
            certfile=str(cert[0]) if cert else None,
            keyfile=str(cert[1]) if cert else None,
            tls_version=ssl.PROTOCOL_TLS_CLIENT,
        )
    if will is not None:
        client.will_set(will[0], will[1], qos=1, retain=True)
    client.on_connect = lambda c, u, f, rc, p: rec.connack.append(rc)
    client.on_connect_fail = lambda c, u: rec.connack.append(ReasonCode(PacketTypes.CONNACK, "Unspecified error"))
    client.on_disconnect = lambda c, u, f, rc, p: rec.disconnects.append(rc)
    client.on_publish = lambda c, u, mid, rc, p: rec.pubacks.__setitem__(mid, rc)
    client.on_subscribe = lambda c, u, mid, rcs, p: rec.subacks.__setitem__(mid, rcs)
    client.on_message = lambda c, u, m: rec.messages.append(m)
    props = None
    if persistent:
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = 3600
    client.connect_async("127.0.0.1", port, keepalive=30, clean_start=not persistent, properties=props)
    client.loop_start()
    wait_until(lambda: rec.connack or rec.disconnects, timeout)
    return rec


class WebhookReceiver:
    """A local HTTP receiver of webhooks: keeps (headers, body) of each POST; answers 500 to the first ``fail``."""

    def __init__(self, fail: int = 0) -> None:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        receiver = self
        self.got: list[tuple[dict[str, str], bytes]] = []
        self.fail = fail

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if receiver.fail > 0:
                    receiver.fail -= 1
                    self.send_response(500)
                else:
                    receiver.got.append((dict(self.headers.items()), body))
                    self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def __enter__(self) -> WebhookReceiver:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def documents(self) -> list[dict[str, Any]]:
        return [json.loads(body) for _headers, body in self.got]


PROMTOOL = ROOT / ".cache" / "promtool" / "promtool"


def promtool_check(text: str) -> list[str]:
    """What Prometheus' own checker (``promtool check metrics``: the text format and the naming rules) says of a
    /metrics page: its complaints, [] when it has none."""
    if not PROMTOOL.exists():
        raise AssertionError(f"{PROMTOOL} is missing: run scripts/setup.sh dev (it takes it from Debian's prometheus)")
    done = subprocess.run(
        [str(PROMTOOL), "check", "metrics"], input=text.encode(), capture_output=True, timeout=60, check=False
    )
    return (done.stdout + done.stderr).decode().splitlines()
