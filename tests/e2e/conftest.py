"""The end-to-end tests' browser: Debian's Chromium driven by Playwright.

Playwright's own browser download cannot work on these machines, so the fixture installs
Debian's ``chromium`` with apt when it is missing (as root), and fails clearly otherwise.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, sync_playwright

CHROMIUM = "/usr/bin/chromium"


def _install_chromium() -> None:
    if Path(CHROMIUM).exists():
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        pytest.fail(f"{CHROMIUM} is missing; install Debian's chromium package to run this test")
    environment = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "chromium"]):
        subprocess.run(command, check=True, env=environment, capture_output=True, timeout=900)


# Function scope on purpose: sync Playwright keeps an event loop running in this thread
# while it is open, which would break every later test that calls asyncio.run().
@pytest.fixture
def browser() -> Iterator[Browser]:
    _install_chromium()
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        yield launched
        launched.close()
