"""An officer works a request in the console in Chromium, from login to approval, while the
citizen writes on WhatsApp (the built-in simulator) and reads each decision there.

Screenshots of each step are kept in ``test-artifacts/console/`` of the project.
"""

from __future__ import annotations

import re
import struct
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from services.verification.domain.reasons import CANNED_REASONS
from tests.e2e.harness import PROJECT, Runtime, serving

pytestmark = pytest.mark.e2e

ARTIFACTS = PROJECT / "test-artifacts" / "console"
BOOTSTRAP = "e2e-console-bootstrap-token"
PHONE = "6281234567890"
KTP = "#KTP#3603015708990001#3603012001180003#SITI AMINAH#SENTUL#BALARAJA#PEMULA#"
BALARAJA = "360301"
TICKET = re.compile(r"Nomor tiket: ([A-Z0-9-]{6,24})")

T = TypeVar("T")


def _png(width: int, height: int, colour: tuple[int, int, int]) -> bytes:
    """A real (if plain) photo, so the page shows an image and not a broken icon."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + crc

    rows = b"".join(b"\x00" + bytes(colour) * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


PHOTO = _png(320, 200, (190, 205, 225))
CORRECTED_PHOTO = _png(320, 200, (205, 230, 200))


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[Runtime]:
    runtime = Runtime(
        tmp_path / "data",
        {
            "ADMINDUK_BOOTSTRAP_TOKEN": BOOTSTRAP,
            "ADMINDUK_PAPERS_GRACE": "PT1S",
            "ADMINDUK_VERIFICATION_SWEEP_INTERVAL": "0.5",
        },
    )
    with serving(runtime):
        yield runtime


def wait(probe: Callable[[], T | None], timeout: float = 30.0) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (value := probe()) is not None:
            return value
        time.sleep(0.2)
    raise AssertionError("timed out waiting")


class Citizen:
    """The citizen's phone, through the simulator's HTTP API."""

    def __init__(self, runtime: Runtime) -> None:
        self.simulator = f"http://127.0.0.1:{runtime.env['ADMINDUK_SIMULATOR_PORT']}"

    def send_photo(self, caption: str, data: bytes) -> None:
        sent = httpx.post(
            f"{self.simulator}/simulator/api/messages",
            data={"from": PHONE, "caption": caption},
            files={"file": ("foto.png", data, "image/png")},
            timeout=10,
        )
        assert sent.status_code == 200, sent.text

    def replies(self) -> list[str]:
        answer = httpx.get(f"{self.simulator}/simulator/api/conversations/{PHONE}", timeout=5)
        answer.raise_for_status()
        return [
            m.get("text") or "" for m in answer.json()["messages"] if m.get("direction") == "out"
        ]

    def wait_for_reply(self, predicate: Callable[[str], bool]) -> str:
        return wait(lambda: next((text for text in self.replies() if predicate(text)), None))


def new_operator(console: str) -> str:
    answer = httpx.post(
        f"{console}/api/officers",
        headers={"Authorization": f"Bearer {BOOTSTRAP}"},
        json={"name": "Rina Operator Balaraja", "role": "operator", "kecamatan": [BALARAJA]},
        timeout=10,
    )
    assert answer.status_code == 201, answer.text
    return str(answer.json()["token"])


def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def open_from_queue(page: Page, console: str, ticket: str, *, returned: bool = False) -> None:
    """Wait on the queue page until the request shows up there (as an officer would, by
    reloading), then open it."""
    row = page.locator(f'[data-testid="queue-row"][data-ticket="{ticket}"]')

    def listed() -> bool | None:
        page.goto(f"{console}/console")
        if row.count() == 0:
            return None
        if row.get_attribute("data-state") != "in_queue":
            return None
        if returned and row.get_by_test_id("returned-marker").count() == 0:
            return None
        return True

    wait(listed)
    expect(row.get_by_test_id("sla-badge")).to_have_text("Aman")
    expect(row.get_by_test_id("claimed-by")).to_have_text("-")
    shot(page, "03-queue-returned" if returned else "02-queue")
    row.get_by_test_id("ticket-link").click()
    expect(page.get_by_test_id("request-ticket")).to_have_text(ticket)


def test_an_officer_works_a_request_in_the_console_and_the_citizen_hears_each_step(
    browser: Browser, runtime: Runtime
) -> None:
    console = f"http://127.0.0.1:{runtime.console_port}"
    citizen = Citizen(runtime)
    citizen.send_photo(KTP, PHOTO)
    found = TICKET.search(citizen.wait_for_reply(lambda text: "Nomor tiket:" in text))
    assert found is not None
    ticket = found[1]
    token = new_operator(console)

    page = browser.new_page(viewport={"width": 1366, "height": 800}, locale="id-ID")

    # Login: the console sends an unknown visitor to the login page.
    page.goto(f"{console}/")
    expect(page).to_have_url(re.compile(r"/console/login"))
    page.get_by_test_id("token-input").fill("adk_salah")
    page.get_by_test_id("login-submit").click()
    expect(page.get_by_test_id("error-message")).to_contain_text("Kode akses tidak dikenal")
    page.get_by_test_id("token-input").fill(token)
    shot(page, "01-login")
    page.get_by_test_id("login-submit").click()
    expect(page.get_by_test_id("officer-name")).to_have_text("Rina Operator Balaraja")
    expect(page.get_by_test_id("nav-supervisor")).to_have_count(0)

    # The request in the queue, then on its own page: typed fields beside the photo.
    open_from_queue(page, console, ticket)
    state = page.get_by_test_id("request-state")
    expect(state).to_have_attribute("data-state", "in_queue")
    expect(page.get_by_test_id("field-nama")).to_have_text("SITI AMINAH")
    expect(page.get_by_test_id("field-nik")).to_have_text("3603015708990001")
    image = page.get_by_test_id("attachment-image")
    expect(image).to_have_count(1)
    expect(image).to_have_js_property("naturalWidth", 320)  # the photo itself, not a broken icon

    # Claim it ("Ambil").
    page.get_by_test_id("claim-button").click()
    expect(page.get_by_test_id("flash")).to_be_visible()
    expect(state).to_have_attribute("data-state", "claimed")
    expect(page.get_by_test_id("claimed-by")).to_contain_text("Rina Operator Balaraja")
    shot(page, "04-claimed")

    # Ask for a correction with one canned reason.
    page.get_by_test_id("changes-toggle").click()
    page.get_by_test_id("canned-reason").first.check()
    shot(page, "05-changes-form")
    page.get_by_test_id("changes-submit").click()
    expect(state).to_have_attribute("data-state", "changes_requested")
    expect(page.get_by_test_id("reasons")).to_contain_text(CANNED_REASONS[0])
    shot(page, "06-changes-requested")
    asked = citizen.wait_for_reply(lambda text: "PERLU PERBAIKAN" in text)
    assert ticket in asked
    assert CANNED_REASONS[0] in asked

    # The citizen sends the correction; it comes back to this officer, marked as such.
    citizen.send_photo(f"#LENGKAPI#{ticket}", CORRECTED_PHOTO)
    citizen.wait_for_reply(lambda text: f"Perbaikan untuk tiket {ticket} sudah kami terima" in text)
    open_from_queue(page, console, ticket, returned=True)
    expect(state).to_have_attribute("data-state", "in_queue")
    expect(page.get_by_test_id("attachment-image")).to_have_count(2)
    expect(page.get_by_test_id("returned-marker")).to_be_visible()

    # Claim and approve ("Setujui").
    page.get_by_test_id("claim-button").click()
    expect(state).to_have_attribute("data-state", "claimed")
    page.get_by_test_id("approve-button").click()
    expect(state).to_have_attribute("data-state", "verified")
    expect(page.get_by_test_id("approve-button")).to_have_count(0)
    # In the history (newest first, but notify may already have sent the reply on top).
    expect(page.locator('[data-testid="history-row"][data-type="RequestVerified"]')).to_have_count(
        1
    )
    shot(page, "07-verified")
    verified = citizen.wait_for_reply(lambda text: "DIVERIFIKASI" in text)
    assert ticket in verified

    # Logging out ends the session: the queue asks for the access code again.
    page.get_by_test_id("logout").click()
    expect(page).to_have_url(re.compile(r"/console/login"))
    page.goto(f"{console}/console")
    expect(page).to_have_url(re.compile(r"/console/login"))
    shot(page, "08-logged-out")

    # The admin (bootstrap token) sees the backlog, adds an officer and disables one.
    page.get_by_test_id("token-input").fill(BOOTSTRAP)
    page.get_by_test_id("login-submit").click()
    page.get_by_test_id("nav-supervisor").click()
    expect(page.get_by_test_id("backlog-empty")).to_be_visible()
    page.get_by_test_id("officer-name-input").fill("Dewi <Operator>")
    page.get_by_test_id("officer-role").select_option("operator")
    page.locator(f'[data-testid="officer-kecamatan"][value="{BALARAJA}"]').check()
    page.get_by_test_id("add-officer-submit").click()
    expect(page.get_by_test_id("new-token")).to_have_text(re.compile(r"^adk_\S+$"))
    expect(page.get_by_test_id("officer-row").filter(has_text="Dewi <Operator>")).to_be_visible()
    shot(page, "09-supervisor")
    rina = page.get_by_test_id("officer-row").filter(has_text="Rina Operator Balaraja")
    rina.get_by_test_id("disable-button").click()
    expect(rina).to_contain_text("Nonaktif")
    disabled = httpx.get(
        f"{console}/api/requests", headers={"Authorization": f"Bearer {token}"}, timeout=5
    )
    assert disabled.status_code == 401
