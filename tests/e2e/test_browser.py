"""A person types a request into the WhatsApp simulator page and sees the ticket.

Drives Debian's Chromium (installed here with apt when missing, as Playwright's own
browser download cannot work on these machines) through Playwright.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from tests.e2e.harness import Runtime

pytestmark = pytest.mark.e2e

KTP = "#KTP#3603015708990001#3603012001180003#SITI AMINAH#SENTUL#BALARAJA#PEMULA#"


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
