"""The MQTT publisher (paho-mqtt 2.x): birth and last will, retained health, QoS 1 events.

Paho runs its network loop in its own thread and reconnects by itself
(capped backoff). Its callbacks only record facts and wake the pump thread,
which does the publishing: birth and every camera's retained health after
each (re)connect, then the outbox in order, a bounded number in flight.
Messages handed to paho stay in its session until PUBACK and are resent by
it after a reconnect; only then are they removed from the outbox.
"""

from __future__ import annotations

import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode

from agent.clock import rfc3339
from agent.config.model import MqttConfig
from agent.publish.outbox import MemoryOutbox, Outbox, OutMessage
from agent.publish.payloads import encode
from agent.publish.topics import Topics
from agent.redact import redact

log = logging.getLogger(__name__)

MAX_INFLIGHT = 20
LATE_AFTER_S = 5.0  # a message sent this long after it was queued is "replayed"
RECONNECT_MAX_S = 3  # the broker is tried again at least this often while it cannot be reached


def _quiet_reconnect_noise(record: logging.LogRecord) -> bool:
    # Paho logs this at ERROR on every reconnect attempt; _on_connect_fail says why, once.
    return "Client is not connected" not in record.getMessage()


def diagnose_broker(config: MqttConfig, timeout: float = 3.0) -> str:
    """Why a connection to the broker fails, in plain words (TCP, then TLS)."""
    try:
        sock = socket.create_connection((config.host, config.port), timeout=timeout)
    except socket.gaierror as exc:
        return f"cannot resolve host name ({exc.strerror})"
    except TimeoutError:
        return f"no answer within {timeout:g} s (host down or port filtered)"
    except OSError as exc:
        return exc.strerror or str(exc)
    with sock:
        if not config.use_tls:
            return "TCP connects but the MQTT handshake failed"
        try:
            context = ssl.create_default_context(cafile=str(config.ca_file) if config.ca_file else None)
            if config.cert_file and config.key_file:
                context.load_cert_chain(str(config.cert_file), str(config.key_file))
            with context.wrap_socket(sock, server_hostname=config.host):
                return "TLS works but the MQTT handshake failed"
        except ssl.SSLError as exc:
            return f"TLS handshake failed: {exc.reason or exc}"
        except OSError as exc:
            return f"TLS set-up failed: {exc.strerror or exc}"


def configure_client(client: mqtt.Client, c: MqttConfig, logger: str) -> None:
    """Credentials, TLS, quiet logging and reconnect backoff from an ``[mqtt]`` table."""
    paho_log = logging.getLogger(logger)
    paho_log.addFilter(_quiet_reconnect_noise)
    client.enable_logger(paho_log)
    if c.username is not None:
        client.username_pw_set(c.username.get_secret_value(), c.password.get_secret_value() if c.password else None)
    if c.use_tls:
        client.tls_set(
            ca_certs=str(c.ca_file) if c.ca_file else None,
            certfile=str(c.cert_file) if c.cert_file else None,
            keyfile=str(c.key_file) if c.key_file else None,
            tls_version=ssl.PROTOCOL_TLS_CLIENT,
        )
    # A link that comes back is used within seconds (a ward's cameras must show their true state at the
    # center within 5 s of its uplink's return); one connect attempt every few seconds costs a broker nothing.
    client.reconnect_delay_set(min_delay=1, max_delay=RECONNECT_MAX_S)


class Pace:
    """Token buckets on messages and bytes per second: a backlog drains without flooding a thin uplink."""

    def __init__(self, per_s: float, bytes_per_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_s, self.bytes_per_s = per_s, bytes_per_s
        self._clock = clock
        self._msgs, self._bytes = per_s, bytes_per_s  # start full: one second's worth
        self._at = clock()

    def delay(self, size: int) -> float:
        """Seconds to wait before sending ``size`` bytes (0: go, and the tokens are taken)."""
        now = self._clock()
        dt, self._at = now - self._at, now
        self._msgs = min(self.per_s, self._msgs + dt * self.per_s)
        self._bytes = min(self.bytes_per_s, self._bytes + dt * self.bytes_per_s)
        need_bytes = min(size, self.bytes_per_s)  # a message larger than a second's worth still goes
        if self._msgs >= 1 and self._bytes >= need_bytes:
            self._msgs -= 1
            self._bytes -= need_bytes
            return 0.0
        return max((1 - self._msgs) / self.per_s, (need_bytes - self._bytes) / self.bytes_per_s, 0.001)


class MqttPublisher:
    """Publishes one ward agent's messages; safe to call from any thread."""

    def __init__(
        self,
        config: MqttConfig,
        topics: Topics,
        *,
        client_id: str,
        birth: Callable[[], dict[str, Any]],
        will: Callable[[], dict[str, Any]],
        outbox: Outbox | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        pace: Pace | None = None,
    ) -> None:
        self.config = config
        self.topics = topics
        self._birth = birth
        self._will = will
        self.outbox: Outbox = outbox or MemoryOutbox(config.queue_max)
        self._clock = clock
        self._wall = wall
        self._pace = pace
        self._cond = threading.Condition()
        self._connected = False
        self._fresh_connection = False
        self._stopping = False
        self._health: dict[str, dict[str, Any]] = {}
        self._health_lock = threading.Lock()
        self.connects = 0
        self.seq = 0  # this process's connection number: its birth and its will carry it
        self.last_error: str | None = None
        self._pump_thread: threading.Thread | None = None
        self.client = self._make_client(client_id)

    # -- setup ---------------------------------------------------------------

    def _make_client(self, client_id: str) -> mqtt.Client:
        c = self.config
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=mqtt.MQTTv311,
            clean_session=True,
        )
        configure_client(client, c, "agent.publish.paho")
        client.max_inflight_messages_set(MAX_INFLIGHT)
        client.on_pre_connect = self._on_pre_connect
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        self._set_will(client)
        return client

    def _set_will(self, client: mqtt.Client) -> None:
        client.will_set(self.topics.agent_status, encode(self._status(self._will)), qos=1, retain=True)

    def _status(self, build: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """A status message of the current connection (its ``seq``)."""
        return {**build(), "seq": self.seq}

    # -- paho callbacks (paho's thread: record and wake the pump) -------------

    def _on_pre_connect(self, client: mqtt.Client, userdata: Any) -> None:
        # A new connection: a new seq, and a will that carries it. The center
        # believes a will only if no birth of a newer connection came.
        self.seq += 1
        self._set_will(client)

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        if reason.is_failure:
            msg = f"broker {self.config.host}:{self.config.port} refused the connection: {reason}"
            if msg != self.last_error:
                log.error("%s", msg)
            self.last_error = msg
            return
        self.last_error = None
        self.connects += 1
        log.info("connected to broker %s:%s", self.config.host, self.config.port)
        with self._cond:
            self._connected = True
            self._fresh_connection = True
            self._cond.notify_all()

    def _on_connect_fail(self, client: mqtt.Client, userdata: Any) -> None:
        # Paho retries by itself but says nothing about why: find out, and
        # say it once per distinct reason (an installer must see it at once).
        msg = f"cannot connect to broker {self.config.host}:{self.config.port}: {diagnose_broker(self.config)}"
        if msg != self.last_error:
            log.error("%s; retrying", msg)
        self.last_error = msg

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        with self._cond:
            was = self._connected
            self._connected = False
            self._cond.notify_all()
        if was and not self._stopping:
            log.warning("lost the broker connection (%s); reconnecting", reason)

    def _on_publish(self, client: mqtt.Client, userdata: Any, mid: int, reason: Any, properties: Any) -> None:
        if self.outbox.ack(mid):
            with self._cond:
                self._cond.notify_all()

    # -- public API ------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._connected

    def start(self) -> None:
        """Start connecting (in the background: a broker that is down does not block)."""
        try:
            self.client.connect_async(self.config.host, self.config.port, keepalive=self.config.keepalive_s)
        except (OSError, ValueError) as exc:
            log.error("cannot start MQTT connection: %s", redact(exc))
        self.client.loop_start()
        self._pump_thread = threading.Thread(target=self._pump, name="mqtt-pump", daemon=True)
        self._pump_thread.start()

    def set_health(self, camera: str, payload: dict[str, Any]) -> None:
        """Publish a camera's retained health now if connected; it is re-sent after every reconnect."""
        with self._health_lock:
            self._health[camera] = payload
        if self._connected:
            self.client.publish(self.topics.health(camera), encode(payload), qos=1, retain=True)

    def send(self, message: OutMessage) -> None:
        """Queue a QoS 1 message (event, snapshot) for in-order, at-least-once delivery."""
        message.late = not self._connected
        self.outbox.put(message)
        with self._cond:
            self._cond.notify_all()

    def publish_stats(self, payload: dict[str, Any]) -> None:
        if self._connected:
            self.client.publish(self.topics.agent_stats, encode(payload), qos=0, retain=False)

    def republish_birth(self) -> None:
        if self._connected:
            self.client.publish(self.topics.agent_status, encode(self._status(self._birth)), qos=1, retain=True)

    def stop(self, final_status: dict[str, Any] | None = None, timeout: float = 3.0) -> None:
        """Publish the final status (clean shutdown), drain briefly, disconnect."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self._connected and self.outbox.counts()["pending"]:
            time.sleep(0.05)
        self._stopping = True
        with self._cond:
            self._cond.notify_all()
        if self._pump_thread is not None:
            self._pump_thread.join(2.0)
        if final_status is not None and self._connected:
            info = self.client.publish(
                self.topics.agent_status, encode({**final_status, "seq": self.seq}), qos=1, retain=True
            )
            try:
                info.wait_for_publish(max(0.1, deadline - time.monotonic()))
            except (RuntimeError, ValueError):
                pass
        self.client.disconnect()
        self.client.loop_stop()

    # -- the pump ----------------------------------------------------------------

    def _pump(self) -> None:
        while not self._stopping:
            with self._cond:
                self._cond.wait(timeout=1.0)
                fresh = self._fresh_connection
                self._fresh_connection = False
                connected = self._connected
            if not connected:
                continue
            try:
                if fresh:
                    self._announce()
                self._drain()
            except Exception:
                log.exception("MQTT publishing failed; will retry")

    def _announce(self) -> None:
        """After a (re)connect: the birth, then every camera's health as of now.

        The health is what the agent holds now (it would have published any
        change), so it is stamped now: said after the link came back, it is
        newer knowledge than the last will the broker sent meanwhile, and the
        center fills the cut with it.
        """
        self.client.publish(self.topics.agent_status, encode(self._status(self._birth)), qos=1, retain=True)
        with self._health_lock:
            health = list(self._health.items())
        now = rfc3339(self._wall())
        for camera, payload in health:
            self.client.publish(self.topics.health(camera), encode({**payload, "ts": now}), qos=1, retain=True)

    def _drain(self) -> None:
        while self._connected and not self._stopping:
            if self.outbox.counts()["inflight"] >= MAX_INFLIGHT:
                return
            msg = self.outbox.next_unsent()
            if msg is None:
                return
            payload = msg.payload
            if isinstance(payload, dict):
                if msg.late or self._clock() - msg.queued_at > LATE_AFTER_S:
                    payload = {**payload, "replayed": True}
                data = encode(payload)
            else:
                data = payload
            if self._pace is not None:
                wait = self._pace.delay(len(data))
                if wait > 0:
                    time.sleep(min(wait, 1.0))
                    continue
            info = self.client.publish(msg.topic, data, qos=1, retain=False)
            # MQTT_ERR_NO_CONN: the connection dropped just now; paho keeps the
            # message queued and resends it, so it counts as handed over.
            if info.rc not in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_NO_CONN):
                log.warning("publish to %s failed: %s", msg.topic, mqtt.error_string(info.rc))
                return
            self.outbox.mark_sent(msg, info.mid)
