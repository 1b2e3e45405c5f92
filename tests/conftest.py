"""Shared fixtures: a headless Chromium for browser tests (Debian's, never a download).

Commands draw parameters from the posterior installed for a world by default
(`sim.runs.runner.installed_for`); every test runs as if none were installed, so its
numbers do not change when a calibration installs one. Tests of posterior draws write their
own posterior files and name them, or replace `installed_for` themselves.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
]
ARTIFACTS = Path(__file__).parent.parent / "test-artifacts"


def ensure_chromium() -> str:
    """Return the Chromium path, installing Debian's package first when missing and root."""
    if Path(CHROMIUM).exists():
        return CHROMIUM
    if shutil.which("apt-get") and os.geteuid() == 0:
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
        subprocess.run(["apt-get", "install", "-y", "-qq", "chromium"], check=True, env=env)
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium package "
                    "(sudo apt-get install chromium) to run the browser tests")
    return CHROMIUM


@pytest.fixture(scope="session")
def browser():
    """A headless Chromium driven by Playwright, shared by the session's browser tests."""
    from playwright.sync_api import sync_playwright

    path = ensure_chromium()
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=path, args=CHROMIUM_FLAGS, headless=True)
        yield b
        b.close()


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    """Folder for screenshots and other test artifacts (git-ignored)."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture(autouse=True)
def no_installed_posterior(monkeypatch):
    """Run each test as if no posterior were installed (see the module docstring)."""
    from sim.runs import runner

    monkeypatch.setattr(runner, "installed_for", lambda world: None)
