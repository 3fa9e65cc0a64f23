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
import ssl
import threading
import time
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode

from agent.config.model import MqttConfig
from agent.publish.outbox import MemoryOutbox, Outbox, OutMessage
from agent.publish.payloads import encode
from agent.publish.topics import Topics
from agent.redact import redact

log = logging.getLogger(__name__)

MAX_INFLIGHT = 20
LATE_AFTER_S = 5.0  # a message sent this long after it was queued is "replayed"


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
    ) -> None:
        self.config = config
        self.topics = topics
        self._birth = birth
        self._will = will
        self.outbox: Outbox = outbox or MemoryOutbox(config.queue_max)
        self._clock = clock
        self._cond = threading.Condition()
        self._connected = False
        self._fresh_connection = False
        self._stopping = False
        self._health: dict[str, dict[str, Any]] = {}
        self._health_lock = threading.Lock()
        self.connects = 0
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
        client.enable_logger(logging.getLogger("agent.publish.paho"))
        if c.username is not None:
            client.username_pw_set(c.username.get_secret_value(), c.password.get_secret_value() if c.password else None)
        if c.use_tls:
            client.tls_set(
                ca_certs=str(c.ca_file) if c.ca_file else None,
                certfile=str(c.cert_file) if c.cert_file else None,
                keyfile=str(c.key_file) if c.key_file else None,
                tls_version=ssl.PROTOCOL_TLS_CLIENT,
            )
        client.reconnect_delay_set(min_delay=1, max_delay=30)
        client.max_inflight_messages_set(MAX_INFLIGHT)
        client.on_pre_connect = self._on_pre_connect
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        self._set_will(client)
        return client

    def _set_will(self, client: mqtt.Client) -> None:
        client.will_set(self.topics.agent_status, encode(self._will()), qos=1, retain=True)

    # -- paho callbacks (paho's thread: record and wake the pump) -------------

    def _on_pre_connect(self, client: mqtt.Client, userdata: Any) -> None:
        self._set_will(client)  # fresh ts in the last will for each connection

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
            self.client.publish(self.topics.agent_status, encode(self._birth()), qos=1, retain=True)

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
            info = self.client.publish(self.topics.agent_status, encode(final_status), qos=1, retain=True)
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
        self.client.publish(self.topics.agent_status, encode(self._birth()), qos=1, retain=True)
        with self._health_lock:
            health = list(self._health.items())
        for camera, payload in health:
            self.client.publish(self.topics.health(camera), encode(payload), qos=1, retain=True)

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
            info = self.client.publish(msg.topic, data, qos=1, retain=False)
            # MQTT_ERR_NO_CONN: the connection dropped just now; paho keeps the
            # message queued and resends it, so it counts as handed over.
            if info.rc not in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_NO_CONN):
                log.warning("publish to %s failed: %s", msg.topic, mqtt.error_string(info.rc))
                return
            self.outbox.mark_sent(msg, info.mid)
