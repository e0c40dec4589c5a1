"""Verification from outside: a citizen writes on WhatsApp (the built-in simulator), the
automatic checks run, officers act only through the officer API, and the citizen reads
each decision on WhatsApp.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from tests.e2e.harness import Runtime, serving

pytestmark = pytest.mark.e2e

BOOTSTRAP = "e2e-bootstrap-token"
PHONE = "6281234567890"
OTHER_PHONE = "6281298765432"
KTP = "#KTP#3603015708990001#3603012001180003#SITI AMINAH#SENTUL#BALARAJA#PEMULA#"
OTHER_KTP = "#KTP#3603011503950003#3603012001180003#BUDI HARTONO#SENTUL#BALARAJA#PEMULA#"
BALARAJA, CIKUPA = "360301", "360318"
TICKET = re.compile(r"Nomor tiket: ([A-Z0-9-]{6,24})")
PHOTO = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(256)) * 8
CORRECTED_PHOTO = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(255, -1, -1)) * 8


T = TypeVar("T")


class Office:
    def __init__(self, runtime: Runtime) -> None:
        self.api = f"http://127.0.0.1:{runtime.console_port}"
        self.simulator = f"http://127.0.0.1:{runtime.env['ADMINDUK_SIMULATOR_PORT']}"

    def send_photo(self, caption: str, data: bytes = PHOTO, phone: str = PHONE) -> None:
        sent = httpx.post(
            f"{self.simulator}/simulator/api/messages",
            data={"from": phone, "caption": caption},
            files={"file": ("berkas.jpg", data, "image/jpeg")},
            timeout=10,
        )
        assert sent.status_code == 200, sent.text

    def send_text(self, text: str, phone: str = PHONE) -> None:
        sent = httpx.post(
            f"{self.simulator}/simulator/api/messages",
            json={"from": phone, "text": text},
            timeout=10,
        )
        assert sent.status_code == 200, sent.text

    def replies(self, phone: str = PHONE) -> list[str]:
        answer = httpx.get(f"{self.simulator}/simulator/api/conversations/{phone}", timeout=5)
        answer.raise_for_status()
        return [
            m.get("text") or "" for m in answer.json()["messages"] if m.get("direction") == "out"
        ]

    def wait_for_reply(self, predicate: Callable[[str], bool], phone: str = PHONE) -> str:
        return wait(lambda: next((t for t in self.replies(phone) if predicate(t)), None))

    def call(self, method: str, path: str, token: str, **kwargs: Any) -> httpx.Response:
        return httpx.request(
            method,
            f"{self.api}{path}",
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
            **kwargs,
        )

    def officer(self, role: str, kecamatan: list[str]) -> str:
        answer = self.call(
            "POST",
            "/api/officers",
            BOOTSTRAP,
            json={"name": f"Petugas {role}", "role": role, "kecamatan": kecamatan},
        )
        assert answer.status_code == 201, answer.text
        return str(answer.json()["token"])

    def state(self, ticket: str, token: str) -> dict[str, Any]:
        answer = self.call("GET", f"/api/requests/{ticket}", token)
        assert answer.status_code == 200, answer.text
        return dict(answer.json())


def wait(probe: Callable[[], T | None], timeout: float = 30.0) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (value := probe()) is not None:
            return value
        time.sleep(0.1)
    raise AssertionError("timed out waiting")


@pytest.fixture
def office(tmp_path: Path) -> Iterator[Office]:
    runtime = Runtime(
        tmp_path / "data",
        {
            "ADMINDUK_BOOTSTRAP_TOKEN": BOOTSTRAP,
            "ADMINDUK_PAPERS_GRACE": "PT2S",
            "ADMINDUK_VERIFICATION_SWEEP_INTERVAL": "0.5",
        },
    )
    with serving(runtime):
        yield Office(runtime)


def test_officers_verify_a_request_through_the_api_and_the_citizen_hears_each_step(
    office: Office,
) -> None:
    office.send_photo(KTP)
    ticket_match = TICKET.search(office.wait_for_reply(lambda t: "Nomor tiket:" in t))
    assert ticket_match is not None
    ticket = ticket_match[1]
    balaraja = office.officer("operator", [BALARAJA])
    cikupa = office.officer("operator", [CIKUPA])

    # The automatic checks put it in the queue of the Balaraja operator, not Cikupa's.
    wait(lambda: office.state(ticket, balaraja)["state"] == "in_queue" or None)
    assert office.call("GET", f"/api/requests/{ticket}", cikupa).status_code == 403
    assert office.call("POST", f"/api/requests/{ticket}/claim", cikupa).status_code == 403
    listed = office.call("GET", "/api/requests", cikupa).json()
    assert ticket not in {item["ticket"] for item in listed}

    assert office.call("POST", f"/api/requests/{ticket}/claim", balaraja).status_code == 200
    reason = "Foto KK tidak terbaca, kirim ulang foto yang jelas"
    changes = office.call(
        "POST", f"/api/requests/{ticket}/request-changes", balaraja, json={"reasons": [reason]}
    )
    assert changes.status_code == 200, changes.text
    asked = office.wait_for_reply(lambda t: "PERLU PERBAIKAN" in t)
    assert ticket in asked
    assert reason in asked

    office.send_photo(f"#LENGKAPI#{ticket}", CORRECTED_PHOTO)
    office.wait_for_reply(lambda t: f"Perbaikan untuk tiket {ticket} sudah kami terima" in t)
    returned = wait(
        lambda: (
            ((detail := office.state(ticket, balaraja))["state"] == "in_queue" and detail) or None
        )
    )
    assert returned["returned_to_me"] is True
    assert len(returned["attachment_list"]) == 2
    photo = office.call("GET", returned["attachment_list"][1]["url"], balaraja)
    assert photo.status_code == 200
    assert photo.content == CORRECTED_PHOTO

    assert office.call("POST", f"/api/requests/{ticket}/approve", balaraja).status_code == 200
    verified = office.wait_for_reply(lambda t: "DIVERIFIKASI" in t)
    assert ticket in verified
    assert office.call("POST", f"/api/requests/{ticket}/approve", balaraja).status_code == 409

    office.send_text(f"#STATUS#{ticket}")
    # Issuance schedules it at once: verified, then in progress.
    office.wait_for_reply(
        lambda t: re.search(f"Status tiket {ticket}: (DIVERIFIKASI|DIPROSES)", t) is not None
    )

    # Another citizen's request is rejected with a reason the citizen reads.
    office.send_photo(OTHER_KTP, phone=OTHER_PHONE)
    other_match = TICKET.search(
        office.wait_for_reply(lambda t: "Nomor tiket:" in t, phone=OTHER_PHONE)
    )
    assert other_match is not None
    other = other_match[1]
    wait(lambda: office.state(other, balaraja)["state"] == "in_queue" or None)
    refusal = "Pemohon belum berusia 17 tahun dan belum kawin"
    rejected = office.call(
        "POST", f"/api/requests/{other}/reject", balaraja, json={"reason": refusal}
    )
    assert rejected.status_code == 200, rejected.text
    told = office.wait_for_reply(lambda t: "DITOLAK" in t, phone=OTHER_PHONE)
    assert refusal in told
    # Each decision reached the citizen once.
    assert sum("PERLU PERBAIKAN" in t for t in office.replies()) == 1
    assert sum("DIVERIFIKASI" in t and "Status tiket" not in t for t in office.replies()) == 1


def test_a_request_without_files_is_sent_back_automatically_and_a_photo_completes_it(
    office: Office,
) -> None:
    office.send_text(KTP)
    ticket_match = TICKET.search(office.wait_for_reply(lambda t: "Nomor tiket:" in t))
    assert ticket_match is not None
    ticket = ticket_match[1]
    asked = office.wait_for_reply(lambda t: "PERLU PERBAIKAN" in t)
    assert "Kartu Keluarga" in asked
    # Just the photo, no text: it is the correction.
    sent = httpx.post(
        f"{office.simulator}/simulator/api/messages",
        data={"from": PHONE},
        files={"file": ("kk.jpg", PHOTO, "image/jpeg")},
        timeout=10,
    )
    assert sent.status_code == 200, sent.text
    office.wait_for_reply(lambda t: f"Perbaikan untuk tiket {ticket} sudah kami terima" in t)
    supervisor = office.officer("supervisor", [])
    wait(lambda: office.state(ticket, supervisor)["state"] == "in_queue" or None)
