"""The center's pages in a real browser (Debian's headless Chromium driven by Playwright): what a person sees.

Screenshots of every page in both languages are saved to ``artifacts/screenshots/``
(or ``$CAMWATCH_ARTIFACTS/screenshots``).
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import PASSWORD, ROOT

from center.service import CenterIngest

pytestmark = pytest.mark.integration
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SHOTS = Path(os.environ.get("CAMWATCH_ARTIFACTS", ROOT / "artifacts")) / "screenshots"
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not os.path.exists(CHROMIUM):
        pytest.fail("chromium is not installed: run the README's test command (it installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        yield b
        b.close()


def test_operator_logs_in_and_reads_every_page_in_both_languages(
    browser: object,
    site: tuple[str, CenterIngest],
) -> None:
    base, _ = site
    SHOTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1280, "height": 900})  # type: ignore[attr-defined]
    console: list[str] = []  # a script or style the page's CSP refused shows up here
    page.on("console", lambda m: console.append(m.text))
    page.goto(f"{base}/")
    assert "/login" in page.url  # not logged in: the login page
    page.fill("input[name=user]", "op")
    page.fill("input[name=password]", "wrong password")
    page.click("button[type=submit]")
    assert page.locator("[role=alert]").inner_text() == "Sai tên đăng nhập hoặc mật khẩu."
    page.screenshot(path=str(SHOTS / "login-vi.png"))
    page.fill("input[name=user]", "op")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/")

    for lang, offline, ongoing, availability, stalled in (
        ("vi", "Mất tín hiệu", "Đang diễn ra", "Khả dụng", "luồng bị treo"),
        ("en", "Offline", "Ongoing", "Availability", "stream stalled"),
    ):
        page.goto(f"{base}/lang/{lang}?next=/")
        assert page.locator("html").get_attribute("lang") == lang
        totals = page.locator("#totals").inner_text()
        assert f"{offline}: 1" in totals
        tile = page.locator("a.tile.offline")
        assert tile.count() == 1 and stalled in tile.inner_text()  # the reason in words, not its code
        assert tile.evaluate("e => getComputedStyle(e).backgroundColor") == "rgb(198, 40, 40)"  # red
        page.screenshot(path=str(SHOTS / f"fleet-{lang}.png"), full_page=True)

        tile.click()
        page.wait_for_url(f"{base}/camera/w1/c1")
        assert page.locator(".bar div.offline").count() == 1  # the last 10 minutes, on the timeline
        assert page.locator(".bar div.offline").evaluate("e => e.getBoundingClientRect().width") > 0
        assert availability in page.locator("table").first.inner_text()
        page.screenshot(path=str(SHOTS / f"camera-{lang}.png"), full_page=True)

        page.goto(f"{base}/camera/w1/c2")
        assert page.locator("img[alt]").count() == 1  # the latest detection snapshot
        page.screenshot(path=str(SHOTS / f"camera-snapshot-{lang}.png"), full_page=True)

        page.goto(f"{base}/outages")
        assert f"{ongoing} (1)" in page.locator("h2").first.inner_text()
        page.screenshot(path=str(SHOTS / f"outages-{lang}.png"), full_page=True)

        page.goto(f"{base}/report?period=24h")
        assert availability in page.locator("h2").first.inner_text()
        with page.expect_download() as download:
            page.click("a[href^='/report.csv']")
        csv_path = SHOTS / f"report-{lang}.csv"
        download.value.save_as(str(csv_path))
        assert csv_path.read_bytes().startswith(b"\xef\xbb\xbf")
        page.screenshot(path=str(SHOTS / f"report-{lang}.png"), full_page=True)
    page.close()
    assert not [m for m in console if "Content Security Policy" in m], console


def test_an_operator_takes_an_alert_on_from_the_alerts_page(browser: object, site: tuple[str, CenterIngest]) -> None:
    base, service = site
    SHOTS.mkdir(parents=True, exist_ok=True)
    now = time.time()
    alert = service.store.fire_alert(("camera_offline", "w1", "c1"), now - 900, "stalled", now - 300)
    page = browser.new_page(viewport={"width": 1280, "height": 900})  # type: ignore[attr-defined]
    console: list[str] = []
    page.on("console", lambda m: console.append(m.text))
    page.goto(f"{base}/login")
    page.fill("input[name=user]", "op")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/")
    link = page.locator("nav a[href='/alerts']")
    assert link.locator(".badge").inner_text() == "1"  # seen from every page: one alert open
    link.click()
    page.wait_for_url(f"{base}/alerts")
    row = page.locator(f"#alert-{alert.id}")
    assert "Camera mất tín hiệu" in row.inner_text() and "luồng bị treo" in row.inner_text()
    assert "Chợ Đông Ba" in row.inner_text()  # the camera by its name, as operators know it
    page.screenshot(path=str(SHOTS / "alerts-vi.png"), full_page=True)
    row.locator("input[name=note]").fill("Đã cử anh Nam ra xem")
    row.locator("button[type=submit]").click()
    page.wait_for_url(f"{base}/alerts")
    taken = page.locator(f"#alert-{alert.id}").inner_text()
    assert "op · " in taken and "Đã cử anh Nam ra xem" in taken
    assert page.locator(f"#alert-{alert.id} form").count() == 0  # taken on: no second form
    page.goto(f"{base}/lang/en?next=/alerts")
    assert "Camera offline" in page.locator(f"#alert-{alert.id}").inner_text()
    page.screenshot(path=str(SHOTS / "alerts-en.png"), full_page=True)
    page.close()
    assert not [m for m in console if "Content Security Policy" in m], console
    (row_now,) = service.store.open_alerts()
    assert (row_now.acked_by, row_now.ack_note) == ("op", "Đã cử anh Nam ra xem")
