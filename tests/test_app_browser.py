"""The classroom page in a real browser: `greatgame app` on a free loopback port, driven by
Playwright with Debian's Chromium (conftest's `browser`; never a browser download).

At 1400 x 900, the size of a classroom projector: Reset with nothing changed rebuilds the
model `greatgame run` runs (same shares); chart and log text is at least 14 px and the
tiles fill the window; Mesa's technical controls are gone; steps, plays, a year per Step;
the treaty switched off moves China's share below the dashed unchanged scenario; the
download holds the run's shares; picking a scenario rebuilds its switches at once; each
tab has its own model. Screenshots at 1400 x 900 and 1920 x 1080 go to test-artifacts/.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pandas as pd
import pytest
import solara  # noqa: F401, E402 - the test extra installs it: a missing page fails, never skips
from playwright.sync_api import expect  # noqa: E402

from sim.app.classroom import replication_seed  # noqa: E402
from sim.runs.runner import run_one  # noqa: E402
from sim.scenario.scenarios import load_scenario  # noqa: E402
from sim.world.quarters import parse_quarter  # noqa: E402

pytestmark = pytest.mark.slow

VIEWPORT = {"width": 1400, "height": 900}
WIDE = {"width": 1920, "height": 1080}
TREATY = "2025Q2 China–Central Asia treaty"
WAR = "2022Q1 Russia invades Ukraine"
TIMINGS: dict[str, float] = {}
MIN_TEXT_JS = """() => {
  let charts = 1e9, log = 1e9;
  for (const svg of document.querySelectorAll('svg[data-chart]')) {
    const scale = svg.getScreenCTM().a;
    for (const t of svg.querySelectorAll('text')) {
      charts = Math.min(charts, parseFloat(getComputedStyle(t).fontSize) * scale);
    }
  }
  for (const el of document.querySelectorAll('table[data-log] td, table[data-log] span')) {
    log = Math.min(log, parseFloat(getComputedStyle(el).fontSize));
  }
  return [charts, log];
}"""


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


def _open(browser, url, viewport=VIEWPORT):
    page = browser.new_page(viewport=viewport, accept_downloads=True)
    t = time.monotonic()
    page.goto(url)
    expect(page.get_by_role("button", name="Step", exact=True)).to_be_enabled(timeout=60_000)
    expect(_chart(page)).to_have_attribute("data-step", "0", timeout=30_000)
    TIMINGS.setdefault("page_ready_s", round(time.monotonic() - t, 2))
    return page


def _open_group(page, title):
    """Unfold a group of sliders (folded until opened)."""
    page.get_by_role("button", name=title).click()
    expect(page.get_by_role("button", name=title)).to_contain_text("▾")


def _quarter(page):
    return page.locator("[data-quarter]")


def _chart(page, name="regional-shares"):
    return page.locator(f'svg[data-chart="{name}"]')


def _step_to(page, quarter, clicks):
    step = page.get_by_role("button", name="Step", exact=True)
    for _ in range(clicks):
        expect(step).to_be_enabled(timeout=30_000)
        step.click()
    expect(_quarter(page)).to_have_attribute("data-quarter", quarter, timeout=30_000)
    steps = str(parse_quarter(quarter) - parse_quarter("2014Q4"))
    for name in ("regional-shares", "map", "state-shares"):
        expect(_chart(page, name)).to_have_attribute("data-step", steps, timeout=30_000)


def _reset(page):
    page.get_by_role("button", name="Reset", exact=True).click()
    expect(_quarter(page)).to_have_attribute("data-quarter", "2014Q4", timeout=30_000)
    expect(_chart(page)).to_have_attribute("data-step", "0", timeout=30_000)


def _shares(page):
    return dict((k, float(v)) for k, v in (
        kv.split("=") for kv in _chart(page).get_attribute("data-shares").split()))


def _greatgame_run(quarter):
    """Regional shares of `greatgame run baseline`'s first replication at a quarter."""
    shares = run_one(load_scenario("baseline").with_end(quarter), replication_seed(0),
                     replication=0).shares
    now = shares[(shares["quarter"] == quarter) & (shares["area"] == "region")]
    return dict(zip(now["power"], now["share"], strict=True))


def test_reset_unchanged_is_greatgame_run_and_text_is_legible(browser, app_url,
                                                              artifacts_dir):
    page = _open(browser, app_url)
    # the sliders start at the scenario's own values (they showed 0.7 for both before)
    _open_group(page, "Decisions")
    from sim.scenario.scenarios import load_scenario

    params = load_scenario("baseline").params
    for name, value in (("States' decision temperature", round(params.alignment_temperature, 4)),
                        ("Powers' investment temperature",
                         round(params.allocation_temperature, 4))):
        expect(page.get_by_role("slider", name=name)).to_have_count(1)
        expect(page.get_by_text(f"{name}: {value}")).to_be_visible()
    fresh = _shares(page)
    _step_to(page, "2015Q3", clicks=3)
    stepped = _shares(page)
    expected = _greatgame_run("2015Q3")
    assert stepped == pytest.approx(expected, abs=5e-5)  # data-shares has four decimals

    # Reset without touching anything: the same model, the same numbers
    _reset(page)
    assert _shares(page) == fresh
    expect(page.locator(".gg-pending")).to_have_count(0)
    _step_to(page, "2015Q3", clicks=3)
    assert _shares(page) == stepped

    # legible from the back: chart and log text at least 14 px, tiles fill the window
    expect(page.locator("table[data-log]")).to_contain_text("Kyrgyzstan joins the EAEU")
    charts, log = page.evaluate(MIN_TEXT_JS)
    assert charts >= 14 and log >= 14, (charts, log)
    TIMINGS["smallest_chart_text_px_1400"] = round(charts, 1)
    box = page.locator(".gg-grid").bounding_box()
    assert box["width"] > 0.6 * VIEWPORT["width"]
    assert box["y"] + box["height"] <= VIEWPORT["height"] + 1  # no scrolling to the log
    assert box["height"] > 0.75 * VIEWPORT["height"]
    for name in ("regional-shares", "map", "state-shares"):
        chart = _chart(page, name).bounding_box()
        assert chart["width"] > 0.3 * VIEWPORT["width"]
    expect(page.get_by_text("runs on")).to_have_count(0)  # no Solara banner over the log
    for technical in ("Play Interval", "Render Interval", "Use Threads"):
        expect(page.get_by_text(technical)).to_have_count(0)
    page.screenshot(path=str(artifacts_dir / "app_1400x900_start.png"))

    # a wider screen: the charts grow, and so does their text
    wide = _open(browser, app_url, WIDE)
    _step_to(wide, "2015Q3", clicks=3)
    assert wide.evaluate(MIN_TEXT_JS)[0] > 1.2 * charts
    TIMINGS["smallest_chart_text_px_1920"] = round(wide.evaluate(MIN_TEXT_JS)[0], 1)
    assert _chart(wide).bounding_box()["width"] > _chart(page).bounding_box()["width"] * 1.3
    wide.close()
    page.close()


def test_play_treaty_off_ghost_and_download(browser, app_url, artifacts_dir):
    t0 = time.monotonic()
    page = _open(browser, app_url)
    expect(page.get_by_text("quarter 0 of 84")).to_be_visible()
    first = _chart(page).inner_html()

    # Play advances on its own; pause.
    page.get_by_role("button", name="Fast", exact=True).click()
    page.get_by_role("button", name="▶", exact=True).click()
    expect(_quarter(page)).not_to_have_attribute("data-quarter", "2014Q4", timeout=30_000)
    page.get_by_role("button", name="❚❚", exact=True).click()
    expect(page.get_by_role("button", name="Step", exact=True)).to_be_enabled(timeout=30_000)
    assert _chart(page).inner_html() != first

    # A year per Step: replay to 2026Q4 with the treaty.
    page.get_by_role("button", name="1 year", exact=True).click()
    _reset(page)
    _step_to(page, "2026Q4", clicks=12)
    log = page.locator("table[data-log]")
    expect(log).to_contain_text("China–Central Asia treaty:")
    expect(_chart(page)).to_have_attribute("data-ghost", "0")
    china_with = _shares(page)["china"]
    assert china_with == pytest.approx(_greatgame_run("2026Q4")["china"], abs=5e-5)

    # Switch the treaty off: a note says Reset applies it; the same quarters again.
    switch = page.get_by_role("checkbox", name=TREATY)
    switch.uncheck(force=True)
    expect(switch).not_to_be_checked()
    expect(page.locator(".gg-pending")).to_contain_text("Press Reset")
    _reset(page)
    expect(page.locator(".gg-pending")).to_have_count(0)
    _step_to(page, "2026Q4", clicks=12)
    expect(log).to_contain_text("EU–Central Asia summit:")
    expect(log).not_to_contain_text("China–Central Asia treaty:")
    assert _shares(page)["china"] < china_with
    # the unchanged scenario as dashed ghost lines, and the difference in the legend
    expect(_chart(page)).to_have_attribute("data-ghost", "1")
    expect(_chart(page).locator("polyline[stroke-dasharray]")).to_have_count(5)
    expect(_chart(page).locator('text[data-power="china"]')).to_contain_text("\u2212")
    page.wait_for_timeout(300)
    page.screenshot(path=str(artifacts_dir / "app_1400x900_no_treaty.png"))

    # The download: the run's shares as CSV, every quarter so far.
    with page.expect_download() as info:
        page.get_by_role("button", name="Download shares (CSV)").click()
    table = pd.read_csv(info.value.path())
    assert info.value.suggested_filename == "greatgame_baseline_run0_shares.csv"
    assert table["quarter"].nunique() == 49 and len(table) == 49 * 6 * 5
    last = table[(table["quarter"] == "2026Q4") & (table["area"] == "region")]
    assert dict(zip(last["power"], last["share"], strict=True))["china"] == pytest.approx(
        _shares(page)["china"], abs=5e-5)

    wide = _open(browser, app_url, WIDE)
    wide.get_by_role("checkbox", name=TREATY).uncheck(force=True)
    wide.get_by_role("button", name="1 year", exact=True).click()
    _reset(wide)
    _step_to(wide, "2026Q4", clicks=12)
    wide.wait_for_timeout(300)
    wide.screenshot(path=str(artifacts_dir / "app_1920x1080_no_treaty.png"))
    wide.close()
    TIMINGS["browser_test_s"] = round(time.monotonic() - t0, 1)
    page.close()


def test_tabs_scenarios_and_impossible_settings(browser, app_url):
    a, b = _open(browser, app_url), _open(browser, app_url)
    _step_to(a, "2015Q2", clicks=2)
    expect(_quarter(b)).to_have_attribute("data-quarter", "2014Q4")
    _step_to(b, "2015Q1", clicks=1)
    expect(_quarter(a)).to_have_attribute("data-quarter", "2015Q2")

    # Tab b picks another scenario: its switches follow at once, before Reset
    b.locator(".v-select").first.click()
    b.get_by_role("option", name="no_ukraine_war", exact=True).click()
    expect(b.get_by_role("checkbox", name=WAR)).to_have_count(0)
    expect(b.get_by_role("button", name="War in Ukraine")).to_have_count(0)
    expect(a.get_by_role("button", name="War in Ukraine")).to_have_count(1)
    expect(b.get_by_role("checkbox", name=TREATY)).to_be_checked()
    expect(b.locator(".gg-pending")).to_contain_text("no_ukraine_war")
    _reset(b)
    expect(b.locator(".gg-pending")).to_have_count(0)
    expect(b.locator(".gg-log")).to_contain_text("no_ukraine_war:")
    expect(b.get_by_text("not a setting of the page")).to_have_count(0)
    expect(a.get_by_role("checkbox", name=WAR)).to_have_count(1)
    expect(_quarter(a)).to_have_attribute("data-quarter", "2015Q2")

    # An impossible combination (every channel weight at 0) is reported, not a crash.
    _open_group(a, "Channel weights")
    for channel in ("trade", "investment", "debt", "remittances", "security", "alignment"):
        a.get_by_role("slider", name=f"Weight of {channel}").focus()
        a.keyboard.press("Home")
    expect(a.get_by_text("Weight of trade: 0", exact=True)).to_be_visible()
    _reset(a)
    expect(a.get_by_text("Channel weights: all six are 0")).to_be_visible()
    expect(a.get_by_text("Weight of trade: 0", exact=True)).to_be_visible()  # as asked
    _step_to(a, "2015Q1", clicks=1)
    a.close()
    b.close()
