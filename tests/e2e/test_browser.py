"""A person types a request into the WhatsApp simulator page and sees the ticket; an
approved template reaches the page as the citizen would read it.

Drives Debian's Chromium (installed here with apt when missing, as Playwright's own
browser download cannot work on these machines) through Playwright.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, expect

from services.notify.domain.templates import TemplateSpec
from services.simulator.app import create_app
from shared.config import load_settings
from shared.runtime.processes import free_port, wait_for_port
from shared.runtime.service import serve_http
from tests.e2e.harness import Runtime

pytestmark = pytest.mark.e2e

KTP = "#KTP#3603015708990001#3603012001180003#SITI AMINAH#SENTUL#BALARAJA#PEMULA#"
TOKEN = "browser-test-token"
PHONE_NUMBER_ID = "109876543210"
LETTER = TemplateSpec(
    key="letter",
    name="surat_siap",
    body="Surat untuk tiket {{1}} terlampir. Simpan baik-baik.",
    parameters=("tiket",),
    document_header=True,
)


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


@contextlib.contextmanager
def simulator_alone(tmp_path: Path) -> Iterator[str]:
    """Only the WhatsApp simulator (knowing one approved template), served from a thread:
    the page needs no runtime to show what the Cloud API was asked to send."""
    settings = load_settings(
        data_dir=tmp_path,
        whatsapp_access_token=TOKEN,
        whatsapp_phone_number_id=PHONE_NUMBER_ID,
    )
    app = create_app(
        settings,
        intake_webhook_url=f"http://127.0.0.1:{free_port()}/webhook/whatsapp",
        send_statuses=False,
        templates={"surat_siap": LETTER},
    )
    port = free_port()
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    thread = threading.Thread(
        target=loop.run_until_complete, args=(serve_http(app, "127.0.0.1", port, stop),)
    )
    thread.start()
    try:
        wait_for_port("127.0.0.1", port, 10)
        yield f"http://127.0.0.1:{port}"
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(15)
        loop.close()


def test_a_template_shows_its_rendered_body_and_its_document(
    browser: Browser, tmp_path: Path
) -> None:
    phone = "6281299990001"
    pdf = b"%PDF-1.4\nsurat pindah\n%%EOF\n"
    auth = {"Authorization": f"Bearer {TOKEN}"}
    with simulator_alone(tmp_path) as base:
        upload = httpx.post(
            f"{base}/v21.0/{PHONE_NUMBER_ID}/media",
            headers=auth,
            data={"messaging_product": "whatsapp", "type": "application/pdf"},
            files={"file": ("surat.pdf", pdf, "application/pdf")},
            timeout=10,
        )
        assert upload.status_code == 200, upload.text
        header = {
            "type": "document",
            "document": {"id": upload.json()["id"], "filename": "SKPWNI.pdf"},
        }
        body = {"type": "body", "parameters": [{"type": "text", "text": "SKPWNI-4K7P2Q"}]}
        sent = httpx.post(
            f"{base}/v21.0/{PHONE_NUMBER_ID}/messages",
            headers=auth,
            json={
                "messaging_product": "whatsapp",
                "to": phone,
                "type": "template",
                "template": {
                    "name": "surat_siap",
                    "language": {"code": "id"},
                    "components": [{"type": "header", "parameters": [header]}, body],
                },
            },
            timeout=10,
        )
        assert sent.status_code == 200, sent.text

        page = browser.new_page()
        page.goto(f"{base}/?phone={phone}")
        message = page.get_by_test_id("message-out").first
        expect(message).to_have_attribute("data-type", "template")
        expect(message.get_by_test_id("template-name")).to_contain_text("surat_siap")
        expect(message).to_contain_text("Surat untuk tiket SKPWNI-4K7P2Q terlampir. Simpan")
        link = message.get_by_test_id("document-link")
        expect(link).to_contain_text("SKPWNI.pdf")
        href = link.get_attribute("href")
        assert href is not None
        assert httpx.get(href, timeout=5).content == pdf
        page.screenshot(path=str(tmp_path / "template.png"), full_page=True)
