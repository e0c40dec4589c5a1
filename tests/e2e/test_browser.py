"""A person types a request into the WhatsApp simulator page and sees the ticket.

Drives Debian's Chromium (installed here with apt when missing, as Playwright's own
browser download cannot work on these machines) through Playwright.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect, sync_playwright

from tests.e2e.harness import Runtime

pytestmark = pytest.mark.e2e

CHROMIUM = "/usr/bin/chromium"
KTP = "#KTP#3603015708990001#3603012001180003#SITI AMINAH#SENTUL#BALARAJA#PEMULA#"


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


def test_typing_a_request_in_the_simulator_page_gets_a_ticket(
    browser: Browser, tmp_path: Path
) -> None:
    runtime = Runtime(tmp_path / "data")
    runtime.start()
    try:
        runtime.wait_until_serving()
        page = browser.new_page()
        page.goto(f"http://127.0.0.1:{runtime.env['ADMINDUK_SIMULATOR_PORT']}/")
        page.get_by_test_id("phone").fill("6281299990000")
        page.get_by_test_id("message-input").fill(KTP)
        page.get_by_test_id("send").click()

        expect(page.get_by_test_id("message-in").first).to_contain_text("#KTP#")
        reply = page.get_by_test_id("message-out").filter(has_text="Nomor tiket:")
        expect(reply.first).to_be_visible(timeout=30_000)
        expect(reply.first).to_contain_text("KTP-")
        page.screenshot(path=str(tmp_path / "simulator.png"), full_page=True)

        # What a citizen types is shown as text, never run as markup.
        page.get_by_test_id("message-input").fill("<b id='injected'>halo</b>")
        page.get_by_test_id("send").click()
        expect(page.get_by_test_id("message-in").last).to_contain_text("<b id='injected'>")
        assert page.locator("#injected").count() == 0
    finally:
        runtime.stop()
