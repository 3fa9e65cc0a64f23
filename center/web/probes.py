"""What the center's IT sees without logging in: ``/metrics`` (Prometheus), ``/healthz``, ``/readyz``.

Only aggregate figures: how many cameras are in each state, how many wards
are up or gone, the ingest's counters, the process's own figures. No camera
or ward is named, no URL, no user: an address that may be scraped by a
monitoring server needs no login and gives away nothing an attacker could
use.

- ``/healthz``: 200 while the process serves and its store writer turns;
- ``/readyz``: 200 while it can take messages in: the broker connected, the
  last write to the store went through, the store answers.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from typing import Final

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse, Response
from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

from center.alerts import KINDS
from center.delivery import Delivery
from center.views import fleet_now, wards_now
from center.web.site import Site, SiteDep
from common.redact import redact
from contract.vocab import STATES

STALLED_WRITER_S: Final = 10.0  # the store writer silent this long: not healthy
WARD_STATES: Final = ("up", "unreachable", "stopped", "unreported")
COUNTERS: Final = (
    ("camwatch_center_messages", "Contract messages received", "messages"),
    ("camwatch_center_events", "Events stored (each id once)", "events"),
    ("camwatch_center_duplicate_events", "Events received again (at-least-once delivery) and dropped", "duplicates"),
    ("camwatch_center_snapshots", "Snapshots stored", "snapshots"),
    ("camwatch_center_clamped_messages", "Messages whose time was in the future, set to the center's", "clamped"),
    ("camwatch_center_stale_statuses", "Agent statuses of an older connection, not believed", "stale_status"),
    ("camwatch_center_store_errors", "Writes to the store that failed (kept and tried again)", "store_errors"),
)

router = APIRouter(include_in_schema=False)


class CenterCollector(Collector):
    """The center's figures, read at each scrape."""

    def __init__(self, site: Site) -> None:
        self.site = site

    def collect(self) -> Iterator[Metric]:
        site = self.site
        rows = fleet_now(site.fleet, site.clock())
        by_state = Counter(r.state for r in rows)
        cameras = GaugeMetricFamily("camwatch_center_cameras", "Cameras in each state now", labels=["state"])
        for state in STATES:
            cameras.add_metric([state], by_state[state])
        yield cameras
        wards = wards_now(site.store.agents(), [r.ward for r in rows])
        by_ward = Counter(w.state for w in wards.values())
        gauge = GaugeMetricFamily("camwatch_center_wards", "Wards by where their agent is", labels=["state"])
        for ward_state in WARD_STATES:
            gauge.add_metric([ward_state], by_ward[ward_state])
        yield gauge
        open_alerts = Counter(a.kind for a in site.store.open_alerts())
        alerts = GaugeMetricFamily("camwatch_center_alerts_open", "Alerts open now, by kind", labels=["kind"])
        for kind in KINDS:
            alerts.add_metric([kind], open_alerts[kind])
        yield alerts
        if site.delivery is not None:
            yield from _deliveries(site.delivery)
        if site.service is None:
            return
        stats = site.service.stats()
        yield GaugeMetricFamily(
            "camwatch_center_broker_connected", "1 while connected to the broker", value=int(stats["connected"])
        )
        yield GaugeMetricFamily(
            "camwatch_center_pending_messages", "Messages taken in, not yet written", value=stats["pending"]
        )
        for name, text, key in COUNTERS:
            yield CounterMetricFamily(name, text, value=stats[key])
        bad = CounterMetricFamily("camwatch_center_bad_messages", "Messages the contract refused", labels=["reason"])
        for reason, n in sorted(stats["bad_reasons"].items()):
            bad.add_metric([reason], n)
        yield bad


def _deliveries(delivery: Delivery) -> Iterator[Metric]:
    """The alerts' notices told outside: sent and given up per channel, dropped, waiting."""
    told = CounterMetricFamily(
        "camwatch_center_alert_notices",
        "Alert notices by channel: sent, or given up after every retry",
        labels=["channel", "result"],
    )
    for channel in delivery.channels:
        told.add_metric([channel, "sent"], delivery.sent[channel])
        told.add_metric([channel, "failed"], delivery.failed[channel])
    yield told
    yield CounterMetricFamily(
        "camwatch_center_alert_notices_dropped", "Alert notices dropped: too many waiting", value=delivery.dropped
    )
    yield GaugeMetricFamily(
        "camwatch_center_alert_notices_waiting", "Alert notices not yet sent or given up", value=delivery.waiting
    )


def registry_for(site: Site) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(CenterCollector(site))
    ProcessCollector(registry=registry)
    return registry


@router.get("/metrics")
def metrics(site: SiteDep) -> Response:
    return Response(generate_latest(site.registry), media_type=CONTENT_TYPE_LATEST)


@router.get("/healthz")
def healthz(site: SiteDep) -> PlainTextResponse:
    service = site.service
    if service is not None and time.monotonic() - service.beat > STALLED_WRITER_S:
        idle = time.monotonic() - service.beat
        return PlainTextResponse(f"the store writer has not turned for {idle:.0f} s\n", 503)
    return PlainTextResponse("ok\n")


@router.get("/readyz")
def readyz(site: SiteDep) -> PlainTextResponse:
    why = []
    service = site.service
    if service is not None:
        stats = service.stats()
        if not stats["connected"]:
            why.append(f"not connected to the broker {site.config.mqtt.host}:{site.config.mqtt.port}")
        if stats["store_error"]:
            why.append(f"the last write to the store failed: {stats['store_error']}")
    try:
        site.store.schema_version()
    except Exception as exc:  # down, full, unreachable: say which
        why.append(f"the store does not answer: {redact(exc)}")
    if why:
        return PlainTextResponse("not ready: " + "; ".join(why) + "\n", 503)
    return PlainTextResponse("ok\n")
