"""Center load: a simulated city (5,000 cameras, 230 wards) with 90 days of history; ingest rate and page latency.

For each store (SQLite, and PostgreSQL when its server is installed):

1. history: 90 days of state changes for every camera (a few a day, some
   long outages, a few agents dying), written through the store as the
   center would have compacted them;
2. ingest, the center's own capacity: contract messages (heartbeats of every
   camera, state changes, detection events, now and then an agent's last
   will) parsed, compacted and committed by ``Ingest`` as fast as it can,
   for ``--seconds``;
3. ingest through the real Mosquitto: a publisher process sends the same
   kind of traffic at QoS 1 to the running ``CenterIngest`` (persistent
   session, ack after commit); messages stored per second;
4. latency of the fleet page, a camera page, the outages page and the
   uptime API (24 h, 30 d, custom months) over real HTTP with 90 days in
   the store, while the city keeps reporting (every camera's heartbeat every
   30 s through ``Ingest``, as the running center would write them):
   the first request and p50 / p95 of ``--requests`` each (uptime and outage
   answers are reused for a while and the standard periods kept computed in
   the background: see center/views.py, center/web.py), and beside them what
   computing them from scratch costs (``compute_*``).

Baseline in the same run: the raw cost of the store's INSERT for the same
messages without parsing (what the database alone allows).

    .venv/bin/python bench/center_load.py [--cameras 5000] [--wards 230] [--days 90] [--seconds 10]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import random
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import paho.mqtt.client as mqtt  # noqa: E402
from paho.mqtt.enums import CallbackAPIVersion  # noqa: E402

from agent.sim.mosquitto import Mosquitto  # noqa: E402
from agent.sim.postgres import Postgres, pg_bin  # noqa: E402
from agent.sim.rtsp import free_port  # noqa: E402
from center.auth import hash_password  # noqa: E402
from center.background import tune_gc  # noqa: E402
from center.config import CenterConfig, parse_center_config  # noqa: E402
from center.ingest import Ingest  # noqa: E402
from center.periods import period_bounds  # noqa: E402
from center.service import CenterIngest  # noqa: E402
from center.store import Store, WriteBatch  # noqa: E402
from center.timeline import Assertion  # noqa: E402
from center.web import WebServer, build_app  # noqa: E402

PASSWORD = "bench-password-1"


def rfc3339(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1000):03d}Z"


def city(cameras: int, wards: int) -> list[tuple[str, str]]:
    return [(f"w{i % wards:03d}", f"cam-{i:05d}") for i in range(cameras)]


def fill_history(store: Store, cams: list[tuple[str, str]], days: int, now: float, seed: int) -> int:
    """90 days of compacted assertions: a few state changes a day per camera; returns rows written."""
    rnd = random.Random(seed)
    rows = 0
    begin = now - days * 86400
    batch = WriteBatch.empty(now)
    for ward, cam in cams:
        batch.camera(ward, cam, f"Camera {cam}", now)
        t = begin
        state = "online"
        while t < now - 120:
            if state == "online":
                length = rnd.expovariate(1 / (8 * 3600))  # ~3 changes a day
            elif state == "offline":
                length = rnd.expovariate(1 / 1800) if rnd.random() < 0.95 else rnd.uniform(86400, 3 * 86400)
            else:
                length = rnd.expovariate(1 / 600)
            end = min(t + max(length, 30), now - 60)
            problems = ("stalled",) if state == "offline" else ("blurred",) if state == "degraded" else ()
            batch.assertion(ward, cam, Assertion(t, end, state, problems))  # type: ignore[arg-type]
            rows += 1
            t = end
            state = (
                rnd.choices(["online", "offline", "degraded"], [0.2, 0.5, 0.3])[0] if state == "online" else "online"
            )
        if rnd.random() < 0.01:  # a ward's agent died at some point
            died = now - rnd.uniform(0, days * 86400)
            batch.assertion(ward, cam, Assertion(died, died + rnd.uniform(60, 7200), "unknown"))
        if len(batch) > 20000:
            store.write(batch)
            batch = WriteBatch.empty(now)
    store.write(batch)
    return rows


def health(ward: str, cam: str, state: str, problems: tuple[str, ...], since: float, ts: float) -> tuple[str, bytes]:
    """A camera's retained health message as its ward agent publishes it."""
    p: dict[str, Any] = {
        "schema": "camwatch.health/1",
        "ward": ward,
        "camera": cam,
        "name": f"Camera {cam}",
        "ts": rfc3339(ts),
        "state": state,
        "problems": list(problems),
        "since": rfc3339(since),
        "stream": {
            "codec": "h264",
            "width": 1920,
            "height": 1080,
            "fps": 25.0,
            "bitrate_kbps": 2048,
            "last_packet_ts": rfc3339(ts),
        },
        "uptime": {"window_s": 86400, "online_ratio": 0.99},
        "reconnects": 0,
    }
    return f"camwatch/{ward}/{cam}/health", json.dumps(p).encode()


class LiveCity(threading.Thread):
    """The city keeps reporting while pages are measured: every camera's heartbeat every 30 s.

    ~170 messages/s at 5,000 cameras, through ``Ingest`` into the same store
    (parse, compact, commit every 0.1 s) as the running center would. Each
    camera keeps one state: 85 % online, 10 % offline, 5 % degraded, begun in
    the last 10 minutes.
    """

    def __init__(self, store: Store, cams: list[tuple[str, str]], period_s: float = 30.0) -> None:
        super().__init__(name="live-city", daemon=True)
        self.store, self.cams, self.period_s = store, cams, period_s
        rnd = random.Random(11)
        now = time.time()
        self.states: list[tuple[str, tuple[str, ...], float]] = []
        for _ in cams:
            r = rnd.random()
            state, problems = (
                ("online", ()) if r < 0.85 else ("offline", ("stalled",)) if r < 0.95 else ("degraded", ("blurred",))
            )
            self.states.append((state, problems, now - rnd.uniform(0, 600)))
        self.sent = 0
        self._halt = threading.Event()

    def run(self) -> None:
        ingest = Ingest(self.store)
        i = 0
        per_tick = max(1, round(len(self.cams) / self.period_s / 10))
        started = time.monotonic()
        while not self._halt.is_set():
            now = time.time()
            for _ in range(len(self.cams) if self.sent == 0 else per_tick):  # the whole city once, then in turn
                (ward, cam), (state, problems, since) = self.cams[i], self.states[i]
                ingest.add(*health(ward, cam, state, problems, since, now), now)
                i = (i + 1) % len(self.cams)
                self.sent += 1
            ingest.flush()
            self._halt.wait(max(0.0, 0.1 - (time.monotonic() - started) % 0.1))

    def stop(self) -> float:
        """Stop; how many heartbeats it sent."""
        self._halt.set()
        self.join(10)
        return self.sent


def traffic(cams: list[tuple[str, str]], now: float, count: int, seed: int) -> list[tuple[str, bytes]]:
    """Contract messages as wards send them: mostly heartbeats, some state changes and detections, a few wills."""
    rnd = random.Random(seed)
    out: list[tuple[str, bytes]] = []
    for n in range(count):
        ward, cam = cams[n % len(cams)]
        ts = now - 5 + n * 1e-4
        r = rnd.random()
        if r < 0.9:
            out.append(health(ward, cam, "online", (), now - 3600, ts))
        elif r < 0.97:
            p = {
                "schema": "camwatch.event/1",
                "id": f"ev-{seed}-{n:08d}",
                "ward": ward,
                "camera": cam,
                "ts": rfc3339(ts),
                "type": "detection_started",
                "problems": [],
                "label": "person",
                "score": 0.8,
                "box": [0.1, 0.1, 0.3, 0.6],
                "zones": [],
                "track_id": n,
                "snapshot": None,
            }
            out.append((f"camwatch/{ward}/{cam}/events", json.dumps(p).encode()))
        elif r < 0.9995:
            p = {
                "schema": "camwatch.event/1",
                "id": f"sc-{seed}-{n:08d}",
                "ward": ward,
                "camera": cam,
                "ts": rfc3339(ts),
                "type": "state_changed",
                "from": "online",
                "to": "offline",
                "problems": ["stalled"],
                "since": rfc3339(ts - 2),
            }
            out.append((f"camwatch/{ward}/{cam}/events", json.dumps(p).encode()))
        else:
            ward_cams = [c for w, c in cams if w == ward]
            p = {
                "schema": "camwatch.agent/1",
                "ward": ward,
                "ts": rfc3339(ts),
                "state": "offline",
                "version": "0.1.0",
                "cameras": ward_cams,
                "started_at": rfc3339(now - 86400),
                "problems": [],
                "reason": "lost",
                "seq": n,  # each will of a later connection of the same process
            }
            out.append((f"camwatch/{ward}/agent/status", json.dumps(p).encode()))
    return out


def ingest_capacity(store: Store, messages: list[tuple[str, bytes]], seconds: float) -> tuple[float, int]:
    """Messages per second through Ingest.add + flush (batches of 5,000), for ``seconds``; and how many the
    contract's models refused (0, or the bench's traffic is not the contract)."""
    ingest = Ingest(store)
    done = 0
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        for topic, payload in messages[:5000] if done % 2 else messages[5000:10000]:
            ingest.add(topic, payload, time.time())
        ingest.flush()
        done += 5000
    return done / (time.perf_counter() - started), ingest.bad


def raw_insert_rate(store: Store, messages: list[tuple[str, bytes]]) -> float:
    """The baseline: the store's upsert for as many heartbeats, no parsing, one transaction per 5,000."""
    now = time.time()
    started = time.perf_counter()
    n = 0
    for chunk in range(0, len(messages), 5000):
        batch = WriteBatch.empty(now)
        for i, (topic, _) in enumerate(messages[chunk : chunk + 5000]):
            _, ward, cam, _ = topic.split("/", 3)
            batch.assertions[(ward, cam, now - 7200 - (chunk + i) * 1e-3, "online", "bench")] = now
            n += 1
        store.write(batch)
    rate = n / (time.perf_counter() - started)
    with store.transaction() as cur:  # the baseline's rows are not the city's
        cur.execute("DELETE FROM assertions WHERE problems = 'bench'")
    return rate


def _publisher(port: int, messages: list[tuple[str, bytes]], ready: Any) -> None:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-ward", protocol=mqtt.MQTTv311)
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    client.connect("127.0.0.1", port)
    client.loop_start()
    ready.wait()
    last = None
    for topic, payload in messages:
        last = client.publish(topic, payload, qos=1)
    if last is not None:
        last.wait_for_publish(120)
    client.loop_stop()
    client.disconnect()


class Watchers:
    """What runs beside the ingest in ``camwatch center``, made busier than it is: the alert checks and a
    Prometheus scrape of /metrics, each every second (15 s and 15-60 s in a real deployment)."""

    def __init__(self, config: CenterConfig, store: Store, service: CenterIngest) -> None:
        from center.alerts import AlertWatch
        from center.fleet import Fleet

        port = free_port()
        self.web = WebServer(build_app(config, store, service), "127.0.0.1", port).start()
        self.web.warmed.wait(300)  # the pages' first warm-up is the center's start, not its steady cost
        alerts = config.alerts.model_copy(update={"check_every_s": 1.0})
        self.watch = AlertWatch(alerts, store, Fleet(store), lambda notices: None, tz=config.tz).start()
        self.url = f"http://127.0.0.1:{port}/metrics"
        self.scrapes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._scrape, daemon=True)
        self._thread.start()

    def _scrape(self) -> None:
        with httpx.Client(timeout=30) as c:
            while not self._stop.wait(1.0):
                c.get(self.url).raise_for_status()
                self.scrapes += 1

    def stop(self) -> dict[str, int]:
        self._stop.set()
        self._thread.join(30)
        self.watch.stop()
        self.web.stop()
        return {"alert_checks": self.watch.checks, "scrapes": self.scrapes}


def through_broker(
    url: str, messages: list[tuple[str, bytes]], workdir: Path, inflight: int, *, watched: bool = False
) -> dict[str, float]:
    # Room to queue for the center, as in deploy/mosquitto/conf.d/camwatch.conf (the default, 1000, drops the rest).
    conf = f"max_inflight_messages {inflight}\nmax_queued_messages 1000000"
    broker = Mosquitto(workdir, persistence=False, extra_conf=conf)
    broker.start()
    try:
        config = parse_center_config({"mqtt": {"port": broker.port}, "store": {"url": url}})
        store = Store(url)
        service = CenterIngest(config, store)
        service.start()
        service.wait_connected(10)
        watchers = Watchers(config, store, service) if watched else None
        ctx = mp.get_context("spawn")  # not fork: this process has threads (paho, the writer)
        ready = ctx.Event()
        pub = ctx.Process(target=_publisher, args=(broker.port, messages, ready))
        pub.start()
        time.sleep(1.0)
        before = service.ingest.messages
        started = time.perf_counter()
        ready.set()
        deadline = started + 120
        while service.ingest.messages - before < len(messages) and time.perf_counter() < deadline:
            time.sleep(0.05)
        while service.ingest.pending and time.perf_counter() < deadline:
            time.sleep(0.01)
        elapsed = time.perf_counter() - started
        got = service.ingest.messages - before
        pub.join(30)
        beside = watchers.stop() if watchers is not None else {}
        service.stop()
        store.close()
        return {"messages": got, "per_s": round(got / elapsed, 1), **beside}
    finally:
        broker.stop()


def latencies(url: str, cams: list[tuple[str, str]], requests: int) -> dict[str, dict[str, float]]:
    store = Store(url)
    store.put_user("bench", "viewer", hash_password(PASSWORD), time.time())
    port = free_port()
    config = parse_center_config({"store": {"url": url}, "web": {"listen": f"127.0.0.1:{port}"}})
    out: dict[str, dict[str, float]] = {}
    from center.fleet import Fleet
    from center.views import outage_list, uptime_table

    fleet = Fleet(store, config.uptime.unknown_after_s)
    now = time.time()

    def timed(key: str, begin: float, end: float, tz: ZoneInfo | None) -> None:
        t0 = time.perf_counter()
        uptime_table(fleet, store.cameras(), store.maintenance(begin, end), begin, end, tz=tz)
        out[key] = {"ms": round((time.perf_counter() - t0) * 1000, 1)}

    for name, seconds in (("24h", 86400), ("30d", 30 * 86400)):  # the cost when nothing is reused
        timed(f"compute_uptime_{name}_replayed", now - seconds, now, None)
    tz = config.tz
    month = period_bounds(datetime.fromtimestamp(now - 32 * 86400, tz).strftime("%Y-%m"), now, tz)
    timed("compute_uptime_30d_rolling_up", now - 30 * 86400, now, tz)  # first time: rollups made and kept
    timed("compute_uptime_30d_rolled_up", now - 30 * 86400, now, tz)
    timed("compute_uptime_last_month_rolling_up", *month, tz)
    t0 = time.perf_counter()
    outage_list(fleet, store.cameras(), now - 7 * 86400, now)
    out["compute_outages_7d"] = {"ms": round((time.perf_counter() - t0) * 1000, 1)}
    live = LiveCity(store, cams)  # pages are measured while the city reports, as at the center
    live.start()
    live_started = time.monotonic()
    web = WebServer(build_app(config, store), "127.0.0.1", port).start()
    tune_gc()  # as `camwatch center` does once started
    t0 = time.perf_counter()
    web.warmed.wait(300)  # as a center that has been running: the standard periods computed once
    out["first_warm_up"] = {"ms": round((time.perf_counter() - t0) * 1000, 1)}
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", auth=("bench", PASSWORD), timeout=120) as c:
            login = c.get("/login")
            csrf = login.text.split('name="csrf" value="')[1].split('"')[0]
            c.post("/login", data={"user": "bench", "password": PASSWORD, "csrf": csrf})
            rnd = random.Random(7)
            # Custom ranges nobody asked before (not reused): whole days from rollups, no partial day.
            custom_months = iter(
                [
                    (
                        datetime.fromtimestamp(now - (k + 31) * 86400, tz).date().isoformat(),
                        datetime.fromtimestamp(now - (k + 2) * 86400, tz).date().isoformat(),
                    )
                    for k in range(0, max(50, requests))
                ]
            )
            targets: dict[str, Callable[[], str]] = {
                "fleet_page": lambda: "/",
                "camera_page": lambda: "/camera/{}/{}".format(*rnd.choice(cams)),
                "outages_page": lambda: "/outages?days=7",
                "uptime_api_24h": lambda: "/api/v1/uptime?period=24h",
                "uptime_api_30d": lambda: "/api/v1/uptime?period=30d",
                "uptime_api_custom_month": lambda: "/api/v1/uptime?period=custom&start={}&end={}".format(
                    *next(custom_months)
                ),
                "cameras_api": lambda: "/api/v1/cameras",
                "metrics_scrape": lambda: "/metrics",  # Prometheus' scrape: what it costs the center each time
            }
            for name, path in targets.items():
                times = []
                for _ in range(requests):
                    t0 = time.perf_counter()
                    r = c.get(path())
                    times.append((time.perf_counter() - t0) * 1000)
                    if r.status_code != 200:
                        raise RuntimeError(f"{name}: HTTP {r.status_code}")
                first = times[0]
                times.sort()
                out[name] = {
                    "first_ms": round(first, 1),
                    "p50_ms": round(statistics.median(times), 1),
                    "p95_ms": round(times[min(len(times) - 1, int(len(times) * 0.95))], 1),
                }
        # The alert checks: what each look costs the running center (every check_every_s, 15 s by default).
        from center.alerts import AlertWatch, Notice
        from center.config import AlertsConfig

        watch = AlertWatch(AlertsConfig(), store, fleet, lambda notices: None)
        times = []
        for _ in range(10):
            t0 = time.perf_counter()
            watch.check()
            times.append((time.perf_counter() - t0) * 1000)
        out["alerts_check"] = {"first_ms": round(times[0], 1), "p50_ms": round(statistics.median(times), 1)}
        # The day's uptime against a target for every camera: once a day, just after midnight (and again after
        # a restart, when it finds the same alerts already open).
        day = AlertWatch(
            AlertsConfig(uptime_below_pct=95), store, fleet, lambda notices: None, tz=ZoneInfo("Asia/Ho_Chi_Minh")
        )
        fired: list[Notice] = []
        t0 = time.perf_counter()
        day.judge_day(time.time(), fired)
        first_ms = (time.perf_counter() - t0) * 1000
        day.judged = None
        again: list[Notice] = []
        t0 = time.perf_counter()
        day.judge_day(time.time(), again)
        out["alerts_day"] = {
            "first_ms": round(first_ms, 1),
            "again_ms": round((time.perf_counter() - t0) * 1000, 1),
            "fired": len(fired),
            "fired_again": len(again),
        }
    finally:
        web.stop()
        sent = live.stop()
        out["live_city"] = {"heartbeats_per_s": round(sent / (time.monotonic() - live_started), 1)}
        store.close()
    return out


def run_store(kind: str, url: str, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    cams = city(args.cameras, args.wards)
    now = time.time()
    store = Store(url)
    t0 = time.perf_counter()
    rows = fill_history(store, cams, args.days, now, seed=1)
    history_s = time.perf_counter() - t0
    messages = traffic(cams, now, 10000, seed=2)
    capacity, refused = ingest_capacity(store, messages, args.seconds)
    raw = raw_insert_rate(store, traffic(cams, now, 20000, seed=3))
    store.close()
    brokers = {
        f"max_inflight_{n}": through_broker(
            url, traffic(cams, time.time(), args.broker_messages, seed=4 + n), workdir, n
        )
        for n in (20, 1000)  # Mosquitto's default, and deploy/mosquitto/conf.d/camwatch.conf
    }
    # The same, with the alert checks and a /metrics scrape running beside the ingest every second: their cost.
    brokers["max_inflight_1000_watched"] = through_broker(
        url, traffic(cams, time.time(), args.broker_messages, seed=1004), workdir, 1000, watched=True
    )
    lat = latencies(url, cams, args.requests)
    return {
        "store": kind,
        "history_rows": rows,
        "history_write_s": round(history_s, 1),
        "ingest_per_s": round(capacity, 1),
        "ingest_refused": refused,
        "baseline_raw_upsert_per_s": round(raw, 1),
        "through_mosquitto": brokers,
        "latency": lat,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cameras", type=int, default=5000)
    ap.add_argument("--wards", type=int, default=230)
    ap.add_argument("--days", type=int, default=90)
    ap.add_argument("--seconds", type=float, default=10.0, help="how long to measure the ingest capacity")
    ap.add_argument("--broker-messages", type=int, default=50000, help="messages sent through Mosquitto")
    ap.add_argument("--requests", type=int, default=40, help="requests per page for the latency figures")
    ap.add_argument("--stores", default="sqlite,postgresql")
    args = ap.parse_args()
    results = []
    with tempfile.TemporaryDirectory(prefix="camwatch-center-load-") as tmp:
        workdir = Path(tmp)
        for kind in args.stores.split(","):
            if kind == "sqlite":
                results.append(run_store(kind, f"sqlite:///{workdir}/center.db", args, workdir))
            elif kind == "postgresql" and pg_bin() is not None:
                pg = Postgres().start()
                try:
                    results.append(run_store(kind, pg.url, args, workdir))
                finally:
                    pg.stop()
    print(
        json.dumps(
            {
                "bench": "center_load",
                "cameras": args.cameras,
                "wards": args.wards,
                "days": args.days,
                "targets": {"ingest_per_s": 10000, "p95_ms": 200},
                "results": results,
            }
        )
    )


if __name__ == "__main__":
    main()
