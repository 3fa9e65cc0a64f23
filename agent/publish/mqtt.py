"""The MQTT publisher (paho-mqtt 2.x): birth and last will, retained health, QoS 1 events.

Paho runs its network loop in its own thread and reconnects by itself
(capped backoff). Its callbacks only record facts and wake the pump thread,
which does the publishing: birth and every camera's retained health after
each (re)connect, then the outbox in order, a bounded number in flight.
Messages handed to paho stay in its session until PUBACK and are resent by
it after a reconnect; only then are they removed from the outbox.

The agent speaks MQTT 5, so a PUBACK says whether the broker took the
message: one it refused (its ACL, a quota) is never taken for delivered. It
goes back in line in the outbox; the publisher says so once (log, agent
problem ``publish_refused``), holds its queue, and tries again with backoff
(5 s doubling to 5 min), first with its birth and health, so the moment the
broker's ACL or the ward's config is fixed everything waiting goes out.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode

from agent.clock import rfc3339
from agent.publish.outbox import MemoryOutbox, Outbox, OutMessage
from agent.publish.payloads import encode
from common.mqtt import MqttConfig, configure_client, diagnose_broker, plain_socket_error
from common.redact import redact
from contract.topics import Topics

log = logging.getLogger(__name__)

MAX_INFLIGHT = 20
REFUSED_RETRY_S = (5.0, 300.0)  # after a refused publish, the queue waits this long (doubling) before trying again
LATE_AFTER_S = 5.0  # a message sent this long after it was queued is "replayed"


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
        self.refused = 0  # messages the broker refused (a PUBACK reason code of 0x80 or more)
        self.refusal: tuple[str, str] | None = None  # (topic, reason) of the last refusal, until one is taken again
        self._hold_until = float("-inf")  # no publishing before this (monotonic), after a refusal
        self._hold_s = REFUSED_RETRY_S[0]
        self._held = False
        self._logged_refusal: str | None = None  # the reason said in the log, until messages are taken again
        self._direct_lock = threading.Lock()
        self._direct: dict[int, str] = {}  # mid -> topic of a message published outside the outbox (birth, health)
        self._unclaimed: dict[int, str] = {}  # refusals of mids not (yet) known: reason
        self._after_hold: set[int] = set()  # mids published since the last hold ended: one taken clears the refusal
        self.max_packet: int | None = None  # the broker's Maximum Packet Size (its CONNACK), if it said one
        self._pump_thread: threading.Thread | None = None
        self.client = self._make_client(client_id)

    # -- setup ---------------------------------------------------------------

    def _make_client(self, client_id: str) -> mqtt.Client:
        c = self.config
        # MQTT 5: a PUBACK carries a reason code, so a publish the broker refuses is known as refused.
        # No session is kept at the broker (the outbox is the agent's memory): clean start, no expiry.
        v5 = c.protocol == "5"
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
            clean_session=None if v5 else True,
        )
        if not v5:
            log.warning("MQTT 3.1.1 ([mqtt] protocol): a publish the broker refuses cannot be told from a sent one")
        configure_client(client, c, "agent.publish.paho", on_socket_error=self._on_socket_error)
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
        self.max_packet = getattr(properties, "MaximumPacketSize", None)
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

    def _on_socket_error(self, text: str) -> None:
        msg = f"broker {self.config.host}:{self.config.port}: {plain_socket_error(text)}"
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
        if getattr(reason, "is_failure", False):
            topic = self.outbox.refuse(mid)
            if topic is None:
                with self._direct_lock:
                    topic = self._direct.pop(mid, None)
                    if topic is None:  # published moments ago: the publishing thread claims it
                        self._unclaimed[mid] = str(reason)
                        return
            self._refused(topic, str(reason))
            return
        with self._direct_lock:
            self._direct.pop(mid, None)
            taken_after_hold = mid in self._after_hold
        if taken_after_hold and self.refusal is not None:
            self._taken_again()
        if self.outbox.ack(mid):
            with self._cond:
                self._cond.notify_all()

    # -- refusals ----------------------------------------------------------------

    def _refused(self, topic: str, reason: str) -> None:
        """The broker refused a message: it stays queued; hold the queue and say why, once."""
        self.refused += 1
        self.refusal = (topic, reason)
        now = self._clock()
        with self._cond:
            if now >= self._hold_until:
                self._hold_until = now + self._hold_s
                self._hold_s = min(self._hold_s * 2, REFUSED_RETRY_S[1])
                self._held = True
            with self._direct_lock:
                self._after_hold.clear()
        if self._logged_refusal != reason:
            self._logged_refusal = reason
            log.error(
                "the broker refused a message on %s (%s): nothing is lost, it stays queued and is tried again; %s",
                topic,
                reason,
                self.refusal_hint(topic, reason),
            )

    def refusal_hint(self, topic: str, reason: str) -> str:
        """What to check, in plain words, when the broker refuses a topic."""
        own = f"{self.topics.prefix}/{self.topics.ward}/"
        if "authori" not in reason.lower():
            return "the broker gave that reason; see its log"
        who = (
            f"broker user {self.config.username.get_secret_value()!r}"
            if self.config.username is not None
            else "the client certificate's name (CN)"
            if self.config.cert_file is not None
            else "an anonymous login"
        )
        if topic.startswith(own):
            return (
                f"this agent's login ({who}) may not write {own}#: the broker's user for a ward must be the ward id, "
                f"and ward.toml says ward = {self.topics.ward!r} (a typo in one of the two?)"
            )
        return f"this agent's login ({who}) may not write there (its ACL)"

    def _taken_again(self) -> None:
        log.info("the broker takes this agent's messages again")
        self.refusal = None
        self._logged_refusal = None
        self._hold_s = REFUSED_RETRY_S[0]
        with self._direct_lock:
            self._after_hold.clear()

    def _held_now(self) -> bool:
        return self._clock() < self._hold_until

    def _publish_direct(self, topic: str, data: bytes, retain: bool) -> None:
        """A QoS 1 publish outside the outbox (birth, retained health), its refusal watched for."""
        info = self.client.publish(topic, data, qos=1, retain=retain)
        if info.rc not in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_NO_CONN):
            return
        self._track(info.mid, topic, direct=True)

    def _track(self, mid: int, topic: str, *, direct: bool) -> None:
        """After a publish: claim a refusal that came first, or remember the mid for the one to come."""
        with self._direct_lock:
            reason = self._unclaimed.pop(mid, None)
            if reason is None:
                if direct:
                    if len(self._direct) > 10_000:  # acks lost with a connection: forget them
                        self._direct.clear()
                    self._direct[mid] = topic
                if self.refusal is not None:
                    self._after_hold.add(mid)
        if reason is not None:
            self._refused(topic, reason)

    # -- public API ------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._connected

    def start(self) -> None:
        """Start connecting (in the background: a broker that is down does not block)."""
        try:
            v5 = self.config.protocol == "5"
            self.client.connect_async(
                self.config.host,
                self.config.port,
                keepalive=self.config.keepalive_s,
                clean_start=True if v5 else mqtt.MQTT_CLEAN_START_FIRST_ONLY,
            )
        except (OSError, ValueError) as exc:
            log.error("cannot start MQTT connection: %s", redact(exc))
        self.client.loop_start()
        self._pump_thread = threading.Thread(target=self._pump, name="mqtt-pump", daemon=True)
        self._pump_thread.start()

    def set_health(self, camera: str, payload: dict[str, Any]) -> None:
        """Publish a camera's retained health now if connected; it is re-sent after every reconnect."""
        with self._health_lock:
            self._health[camera] = payload
        if self._connected and not self._held_now():
            self._publish_direct(self.topics.health(camera), encode(payload), retain=True)

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
        if self._connected and not self._held_now():
            self._publish_direct(self.topics.agent_status, encode(self._status(self._birth)), retain=True)

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
                if self._held and not self._held_now():
                    self._held = False  # a refusal's wait is over: birth and health first, then the queue
                    self._fresh_connection = True
                fresh = self._fresh_connection
                self._fresh_connection = False
                connected = self._connected
            if not connected or self._held_now():
                if fresh:
                    with self._cond:
                        self._fresh_connection = True  # announce once the hold is over
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
        self._publish_direct(self.topics.agent_status, encode(self._status(self._birth)), retain=True)
        with self._health_lock:
            health = list(self._health.items())
        now = rfc3339(self._wall())
        for camera, payload in health:
            self._publish_direct(self.topics.health(camera), encode({**payload, "ts": now}), retain=True)

    def _drain(self) -> None:
        while self._connected and not self._stopping and not self._held_now():
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
            if self.max_packet is not None and len(data) + len(msg.topic) + 64 > self.max_packet:
                # The broker would drop the connection on it, again after every reconnect.
                log.error(
                    "a %s of %d bytes on %s is larger than the broker takes (%d bytes): dropped",
                    msg.kind,
                    len(data),
                    msg.topic,
                    self.max_packet,
                )
                self.outbox.drop(msg)
                continue
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
            self._track(info.mid, msg.topic, direct=False)
