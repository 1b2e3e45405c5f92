"""The classroom page in a real browser: `greatgame app` on a free loopback port, driven by
Playwright with Debian's Chromium (conftest's `browser`; never a browser download).

Steps, plays, switches the China–Central Asia treaty off, replays, and checks that the
quarter advances, the charts change and China's share ends lower without the treaty; each
tab gets its own model; a screenshot of the page is saved in test-artifacts/.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

pytest.importorskip("solara")
from playwright.sync_api import expect  # noqa: E402

pytestmark = pytest.mark.slow

VIEWPORT = {"width": 1600, "height": 1000}
TREATY = "2025Q2 China–Central Asia treaty"
TIMINGS: dict[str, float] = {}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def app_url(tmp_path_factory, artifacts_dir):
    """`greatgame app` as a subprocess on a free port; stopped (its process group) at the end."""
    port = _free_port()
    log = (tmp_path_factory.mktemp("app") / "server.log").open("w+")
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "sim", "app", "--port", str(port)],
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = started + 60
        while True:
            if proc.poll() is not None:
                log.seek(0)
                pytest.fail(f"greatgame app exited with {proc.returncode}:\n{log.read()}")
            try:
                with urllib.request.urlopen(url, timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("greatgame app did not answer within 60 s")
            time.sleep(0.2)
        TIMINGS["server_http_200_s"] = round(time.monotonic() - started, 2)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)
        log.seek(0)
        text = log.read()
        log.close()
        (artifacts_dir / "app_server.log").write_text(text)
        (artifacts_dir / "app_timings.json").write_text(json.dumps(TIMINGS, indent=2))
        assert "Traceback" not in text, text


def _open(browser, url):
    page = browser.new_page(viewport=VIEWPORT)
    t = time.monotonic()
    page.goto(url)
    expect(page.get_by_role("button", name="Step", exact=True)).to_be_enabled(timeout=60_000)
    TIMINGS.setdefault("page_ready_s", round(time.monotonic() - t, 2))
    return page


def _quarter(page):
    return page.locator("[data-quarter]")


def _chart(page, name="regional-shares"):
    return page.locator(f'img[data-chart="{name}"]')


def _step_to(page, quarter, clicks):
    step = page.get_by_role("button", name="Step", exact=True)
    for _ in range(clicks):
        expect(step).to_be_enabled(timeout=30_000)
        step.click()
    expect(_quarter(page)).to_have_attribute("data-quarter", quarter, timeout=30_000)


def _reset(page):
    page.get_by_role("button", name="Reset", exact=True).click()
    expect(_quarter(page)).to_have_attribute("data-quarter", "2014Q4", timeout=30_000)


def _china(page):
    shares = dict(kv.split("=") for kv in _chart(page).get_attribute("data-shares").split())
    return float(shares["china"])


def test_step_play_treaty_off_and_charts_move(browser, app_url, artifacts_dir):
    t0 = time.monotonic()
    page = _open(browser, app_url)
    expect(_quarter(page)).to_have_attribute("data-quarter", "2014Q4")
    expect(page.get_by_text("quarter 0 of 84")).to_be_visible()
    for name in ("regional-shares", "map", "state-shares"):
        expect(_chart(page, name)).to_have_attribute("data-step", "0")
    first = _chart(page).get_attribute("src")

    # Step three quarters: the quarter, every chart and the log move.
    _step_to(page, "2015Q3", clicks=3)
    for name in ("regional-shares", "map", "state-shares"):
        expect(_chart(page, name)).to_have_attribute("data-step", "3")
    assert _chart(page).get_attribute("src") != first
    expect(page.locator("table[data-log]")).to_contain_text("Kyrgyzstan joins the EAEU")

    # Play advances on its own; pause.
    page.get_by_role("button", name="▶", exact=True).click()
    expect(_quarter(page)).not_to_have_attribute("data-quarter", "2015Q3", timeout=30_000)
    page.get_by_role("button", name="❚❚", exact=True).click()
    expect(page.get_by_role("button", name="Step", exact=True)).to_be_enabled(timeout=30_000)

    # Seven quarters per Step (the render interval), then replay to 2027Q1 with the treaty.
    interval = page.get_by_role("slider", name="Render Interval (steps)")
    interval.focus()
    for _ in range(3):
        page.keyboard.press("ArrowRight")
    expect(interval).to_have_attribute("aria-valuenow", "7")
    _reset(page)
    _step_to(page, "2027Q1", clicks=7)
    log = page.locator("table[data-log]")
    expect(log).to_contain_text("China–Central Asia treaty:")
    with_treaty = _chart(page).get_attribute("src")
    china_with = _china(page)
    page.wait_for_timeout(300)
    page.screenshot(path=str(artifacts_dir / "app.png"))

    # Switch the treaty off, Reset (changes apply on Reset), replay the same quarters.
    switch = page.get_by_role("checkbox", name=TREATY)
    switch.uncheck(force=True)
    expect(switch).not_to_be_checked()
    _reset(page)
    _step_to(page, "2027Q1", clicks=7)
    expect(log).to_contain_text("EU–Central Asia summit:")
    expect(log).not_to_contain_text("China–Central Asia treaty:")
    assert _chart(page).get_attribute("src") != with_treaty
    assert _china(page) < china_with
    page.wait_for_timeout(300)
    page.screenshot(path=str(artifacts_dir / "app_no_treaty.png"))
    TIMINGS["browser_test_s"] = round(time.monotonic() - t0, 1)
    page.close()


def test_tabs_scenarios_and_impossible_settings(browser, app_url):
    a, b = _open(browser, app_url), _open(browser, app_url)
    _step_to(a, "2015Q2", clicks=2)
    expect(_quarter(b)).to_have_attribute("data-quarter", "2014Q4")
    _step_to(b, "2015Q1", clicks=1)
    expect(_quarter(a)).to_have_attribute("data-quarter", "2015Q2")

    # Tab b picks another scenario: its switches follow; tab a is untouched.
    b.locator(".v-select").first.click()
    b.get_by_role("option", name="no_ukraine_war", exact=True).click()
    _reset(b)
    expect(b.locator("table[data-log]").locator("xpath=..")).to_contain_text("no_ukraine_war:")
    expect(b.get_by_role("checkbox", name="2022Q1 Russia invades Ukraine")).to_have_count(0)
    expect(b.get_by_role("checkbox", name=TREATY)).to_be_checked()
    expect(b.get_by_text("not a setting of the page")).to_have_count(0)
    expect(a.get_by_role("checkbox", name="2022Q1 Russia invades Ukraine")).to_have_count(1)
    expect(_quarter(a)).to_have_attribute("data-quarter", "2015Q2")

    # An impossible combination (every channel weight at 0) is reported, not a crash.
    for channel in ("trade", "investment", "debt", "remittances", "security", "alignment"):
        a.get_by_role("slider", name=f"Weight of {channel}").focus()
        a.keyboard.press("Home")
    expect(a.get_by_role("slider", name="Weight of trade")).to_have_attribute(
        "aria-valuenow", "0")
    _reset(a)
    expect(a.get_by_text("Channel weights: all six are 0")).to_be_visible()
    expect(a.get_by_role("slider", name="Weight of trade")).to_have_attribute(
        "aria-valuenow", "0")  # what was asked for stays, beside the note saying what ran
    _step_to(a, "2015Q1", clicks=1)
    a.close()
    b.close()
