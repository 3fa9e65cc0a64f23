"""The center service's ingest: every ward's contract messages from the broker into the store.

The center subscribes with a persistent MQTT session (clean start off, a
fixed client id, a session that outlives a restart of the center), so the
broker keeps QoS 1 messages while the center is down. A message is
acknowledged (PUBACK) only after the transaction holding it has committed:
a crash loses nothing, and a message delivered twice is harmless (events
are deduplicated by id, assertions are idempotent). Acks of a connection
that has since dropped are never sent on the next one (their ids would name
other messages): the broker redelivers those.

Paho's thread only parses and compacts (:meth:`Ingest.add`); one writer
thread commits a batch every ``FLUSH_S``, or as soon as ``EAGER_ACKS``
messages wait for their ack (the broker stops sending at its in-flight
limit), or at ``BATCH_MAX`` messages.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from center.config import CenterConfig
from center.fleet import Fleet
from center.ingest import Ingest
from center.store import Store, StoreError
from common.mqtt import configure_client, diagnose_broker
from common.redact import redact
from contract.topics import center_subscriptions

log = logging.getLogger(__name__)

FLUSH_S = 0.1
BATCH_MAX = 5000
# Mosquitto sends a client at most max_inflight_messages (default 20) unacknowledged
# QoS 1 messages: commit and ack as soon as this many wait, or ingest crawls.
EAGER_ACKS = 16
RECEIVE_MAXIMUM = 5000  # QoS 1 messages the broker may have in flight to us, unacknowledged
SESSION_EXPIRY_S = 7 * 86400  # the broker keeps our session (and queues for us) this long while we are away
PRUNE_EVERY_S = 3600.0


class CenterIngest:
    """Broker -> store. ``start()``, then ``stop()``; figures in :meth:`stats`."""

    def __init__(self, config: CenterConfig, store: Store, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.store = store
        self.clock = clock
        self.beat = time.monotonic()
        self.prefix = config.mqtt.topic_prefix
        self.ingest = Ingest(store, self.prefix)
        self.fleet = Fleet(store, config.uptime.unknown_after_s)
        self._acks: list[tuple[int, int, int]] = []  # (connection generation, mid, qos)
        self._acks_lock = threading.Lock()
        self._generation = 0
        self._connected = threading.Event()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._writer: threading.Thread | None = None
        self.store_errors = 0
        self.last_flush_error: str | None = None
        self.client = self._make_client()

    def _make_client(self) -> mqtt.Client:
        c = self.config.mqtt
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=c.client_id or "camwatch-center",
            protocol=mqtt.MQTTv5,
            manual_ack=True,
        )
        configure_client(client, c, "center.paho")
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        return client

    # -- paho callbacks ---------------------------------------------------------

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        if reason.is_failure:
            log.error("broker %s:%d refused the center: %s", self.config.mqtt.host, self.config.mqtt.port, reason)
            return
        with self._acks_lock:
            self._generation += 1
            self._acks.clear()  # their ids belong to the old connection: the broker redelivers those messages
        # Every ward's health, events, status and snapshots (QoS 1), and stats (QoS 0, never queued for us:
        # the agent is alive, so all it said still holds).
        client.subscribe(center_subscriptions(self.prefix))
        log.info(
            "connected to broker %s:%d (session %s)",
            self.config.mqtt.host,
            self.config.mqtt.port,
            "resumed" if flags.session_present else "new",
        )
        self._connected.set()

    def _on_connect_fail(self, client: mqtt.Client, userdata: Any) -> None:
        log.warning(
            "cannot connect to broker %s:%d: %s; retrying",
            self.config.mqtt.host,
            self.config.mqtt.port,
            diagnose_broker(self.config.mqtt),
        )

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        self._connected.clear()
        if not self._stop.is_set():
            log.warning("lost the broker (%s); reconnecting", reason)

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        self.ingest.add(message.topic, bytes(message.payload), self.clock())
        with self._acks_lock:  # after add: an ack never goes out before its message is in a batch
            self._acks.append((self._generation, message.mid, message.qos))
            waiting = len(self._acks)
        if waiting >= EAGER_ACKS or self.ingest.pending >= BATCH_MAX:
            self._wake.set()

    # -- the writer ---------------------------------------------------------------

    def _write_loop(self) -> None:
        next_prune = 0.0
        while True:
            self.beat = time.monotonic()  # the main loop's watchdog asks whether this loop still turns
            stopping = self._stop.is_set()
            self._wake.wait(FLUSH_S)
            self._wake.clear()
            with self._acks_lock:  # taken before the batch: every ack here is for a message in it
                acks, self._acks = self._acks, []
                generation = self._generation
            try:
                self.ingest.flush()
                self.last_flush_error = None
            except (StoreError, OSError, Exception) as exc:  # the store is down or full: keep, retry, say so
                self.store_errors += 1
                text = redact(exc)
                if text != self.last_flush_error:
                    log.error("cannot write to the store (%s); keeping messages and retrying", text)
                self.last_flush_error = text
                with self._acks_lock:
                    self._acks[:0] = acks
                if stopping:
                    return
                self._stop.wait(1.0)
                continue
            for gen, mid, qos in acks:
                if gen == generation and qos > 0:
                    self.client.ack(mid, qos)
            now = self.clock()
            if now >= next_prune:
                next_prune = now + PRUNE_EVERY_S
                self._prune(now)
            if stopping:
                return

    def _prune(self, now: float) -> None:
        s = self.config.store
        try:
            counts = self.store.prune(now, s.retention_days, s.snapshot_retention_days)
        except Exception as exc:  # retention is housekeeping: never stop ingest for it
            log.warning("could not prune the store: %s", redact(exc))
            return
        if any(counts.values()):
            log.info("pruned %s", ", ".join(f"{n} {table}" for table, n in counts.items() if n))

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> None:
        c = self.config.mqtt
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = SESSION_EXPIRY_S
        props.ReceiveMaximum = RECEIVE_MAXIMUM
        self.client.connect_async(c.host, c.port, keepalive=c.keepalive_s, clean_start=False, properties=props)
        self.client.loop_start()
        self._writer = threading.Thread(target=self._write_loop, name="center-writer", daemon=True)
        self._writer.start()

    def wait_connected(self, timeout: float) -> bool:
        return self._connected.wait(timeout)

    def stop(self) -> None:
        """Disconnect first (no new messages), then commit and ack what came."""
        self.client.loop_stop()  # the network thread ends: nothing new arrives
        self._stop.set()
        self._wake.set()
        if self._writer is not None:
            self._writer.join(timeout=10)
        try:
            self.client.loop_misc()  # sends nothing more; the acks written above are in paho's queue
        except Exception:  # the socket may be gone already
            pass
        self.client.disconnect()

    def stats(self) -> dict[str, Any]:
        i = self.ingest
        return {
            "connected": self._connected.is_set(),
            "messages": i.messages,
            "bad": i.bad,
            "bad_reasons": dict(i.bad_reasons),
            "duplicates": i.duplicates,
            "clamped": i.clamped,
            "events": i.events,
            "snapshots": i.snapshots,
            "stale_status": i.stale_status,
            "unsequenced": i.unsequenced,
            "pending": i.pending,
            "store_errors": self.store_errors,
            "store_error": self.last_flush_error,
        }
