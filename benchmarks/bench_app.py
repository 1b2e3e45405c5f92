"""Benchmark the classroom page as a teacher uses it: how long a Step takes to show.

Starts `greatgame app` on a free loopback port, opens it in headless Chromium (Debian's,
as the browser tests do) at 1400 x 900, and prints:

- the time from clicking Step to the new quarter showing with all three charts redrawn
  (median, 90th percentile, worst, over `--steps` steps), measured inside the page;
- the time to play all 84 quarters at the fastest speed;
- the server's own work per step (model step plus the three charts), without a browser.

    python benchmarks/bench_app.py [--steps 30] [--width 1400 --height 900]

Needs the app and test extras (solara, playwright) and /usr/bin/chromium.
"""

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

STEP_JS = """async () => {
  const badge = () => document.querySelector('[data-quarter]');
  const charts = () => [...document.querySelectorAll('[data-chart]')];
  const before = badge().dataset.quarter;
  const want = String(Number(charts()[0].dataset.step) + 1);
  const button = [...document.querySelectorAll('button')]
    .find(b => b.textContent.trim() === 'Step');
  const t0 = performance.now();
  button.click();
  await new Promise(done => {
    const check = () => {
      if (badge().dataset.quarter !== before && charts().every(c => c.dataset.step === want)) {
        done();
      } else {
        requestAnimationFrame(check);
      }
    };
    check();
  });
  await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));  // painted
  return performance.now() - t0;
}"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_side(steps: int) -> list[float]:
    """Seconds per step of the model plus the three charts, in this process."""
    from sim.app.classroom import ClassroomModel
    from sim.app.page import map_svg, region_svg, states_svg

    model = ClassroomModel()
    out = []
    for _ in range(steps):
        t = time.perf_counter()
        model.step()
        region_svg(model), states_svg(model), map_svg(model)
        out.append(time.perf_counter() - t)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=30, help="Steps to time (default 30)")
    ap.add_argument("--width", type=int, default=1400)
    ap.add_argument("--height", type=int, default=900)
    args = ap.parse_args()

    from conftest import CHROMIUM_FLAGS, ensure_chromium
    from playwright.sync_api import expect, sync_playwright

    port = _free_port()
    url = f"http://127.0.0.1:{port}/"
    proc = subprocess.Popen([sys.executable, "-m", "sim", "app", "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(url, timeout=2):
                    break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise SystemExit("greatgame app did not start") from None
                time.sleep(0.3)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=ensure_chromium(),
                                        args=CHROMIUM_FLAGS, headless=True)
            page = browser.new_page(viewport={"width": args.width, "height": args.height})
            page.goto(url)
            step = page.get_by_role("button", name="Step", exact=True)
            expect(step).to_be_enabled(timeout=60_000)
            page.wait_for_timeout(500)
            for _ in range(2):  # warm-up
                page.evaluate(STEP_JS)
                expect(step).to_be_enabled(timeout=30_000)
            times = []
            for _ in range(args.steps):
                times.append(page.evaluate(STEP_JS) / 1000)
                expect(step).to_be_enabled(timeout=30_000)

            page.get_by_role("button", name="Reset", exact=True).click()
            expect(page.locator("[data-quarter]")).to_have_attribute("data-quarter", "2014Q4")
            page.get_by_role("button", name="Fast", exact=True).click()
            t0 = time.perf_counter()
            page.get_by_role("button", name="▶", exact=True).click()
            expect(page.locator("[data-quarter]")).to_have_attribute(
                "data-quarter", "2035Q4", timeout=600_000)
            play = time.perf_counter() - t0
            browser.close()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=15)

    own = server_side(args.steps)
    times.sort()
    print(f"Step to new quarter shown, {args.width}x{args.height}, {len(times)} steps: "
          f"median {statistics.median(times):.3f} s, "
          f"p90 {times[int(0.9 * (len(times) - 1))]:.3f} s, worst {times[-1]:.3f} s")
    print(f"Play all 84 quarters at 'Fast': {play:.1f} s")
    print(f"Server work per step (model + 3 charts): median "
          f"{statistics.median(own) * 1000:.1f} ms, worst {max(own) * 1000:.1f} ms")
    print(f"Load on this machine while measuring: {os.getloadavg()[0]:.2f} (1-min average, "
          f"{os.cpu_count()} cores)")


if __name__ == "__main__":
    main()
