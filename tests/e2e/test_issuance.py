"""Issuance from outside: an officer approves through the API, the citizen is told the
pickup date on WhatsApp, SIAK (the built-in simulator) issues the document, the officer
records the pickup, and the citizen answers the survey. A moving letter arrives in the
chat as a signed PDF whose signature verifies. A SIAK outage delays nothing but the
documents themselves.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.issuance.adapters.letters import LetterCheck, LetterSigner, verify_letter
from services.issuance.domain.promises import promised_day
from shared.calendar import OfficeHours, WorkingCalendar, format_tanggal
from tests.e2e.harness import Runtime, serving
from tests.e2e.test_verification import BOOTSTRAP, PHONE, PHOTO, TICKET, Office, wait

pytestmark = pytest.mark.e2e

KTP = "#KTP#3603015708990001#3603012001180003#SITI AMINAH#SENTUL#BALARAJA#PEMULA#"
KIA = "#KIA#3603031203190002#3603031505150007#RIZKI PRATAMA#MARGASARI#TIGARAKSA"
SKPWNI = (
    "#SKPWNI#3603281011850004#3603282306100002#BUDI SANTOSO"
    "#JL. MAWAR NO. 5 RT 002/RW 004, KEL. SUKASARI, KOTA TANGERANG"
)
MOVER = "6281311112222"
CALENDAR = WorkingCalendar(OfficeHours.parse())


ENV = {
    "ADMINDUK_BOOTSTRAP_TOKEN": BOOTSTRAP,
    "ADMINDUK_PAPERS_GRACE": "PT1S",
    "ADMINDUK_VERIFICATION_SWEEP_INTERVAL": "0.5",
    "ADMINDUK_ISSUANCE_SWEEP_INTERVAL": "0.5",
    "ADMINDUK_SIAK_RETRY_MAX": "PT1S",
}


@pytest.fixture
def runtime(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Runtime]:
    marker = request.node.get_closest_marker("env")
    runtime = Runtime(tmp_path / "data", {**ENV, **(marker.args[0] if marker else {})})
    with serving(runtime):
        yield runtime


@pytest.fixture
def office(runtime: Runtime) -> Office:
    return Office(runtime)


def request_ticket(office: Office, text: str, phone: str = PHONE, photo: bytes = PHOTO) -> str:
    """Send a request with a photo; its ticket (tickets begin with the document keyword)."""
    office.send_photo(text, photo, phone=phone)
    keyword = text.split("#")[1]
    ack = office.wait_for_reply(
        lambda t: f"Nomor tiket: {keyword}-" in t and "sudah kami terima" in t, phone
    )
    match = TICKET.search(ack)
    assert match is not None
    return match[1]


def approve(office: Office, ticket: str, token: str) -> tuple[datetime, datetime]:
    """Approve once the checks queued it; the moments just before and after the approval."""
    wait(lambda: office.state(ticket, token)["state"] == "in_queue" or None)
    before = datetime.now(UTC)
    answer = office.call("POST", f"/api/requests/{ticket}/approve", token)
    assert answer.status_code == 200, answer.text
    return before, datetime.now(UTC)


def siak(office: Office, path: str, **kwargs: Any) -> httpx.Response:
    return httpx.request(kwargs.pop("method", "GET"), f"{office.simulator}/siak{path}", **kwargs)


def test_approval_pickup_date_collection_and_survey(office: Office) -> None:
    supervisor = office.officer("supervisor", [])
    ticket = request_ticket(office, KTP)
    before, after = approve(office, ticket, supervisor)

    told = office.wait_for_reply(lambda t: ticket in t and "DIPROSES" in t)
    expected = {format_tanggal(promised_day("KTP", at, CALENDAR)) for at in (before, after)}
    assert any(f"diambil mulai {day}" in told for day in expected), told
    assert "Kartu Keluarga (KK) asli" in told
    assert "pukul 08.00 sampai 16.00" in told

    # SIAK issues it; the counter hands it over and records that.
    def when_issued() -> dict[str, Any] | None:
        detail = office.state(ticket, supervisor)
        return detail if detail["state"] == "issued" else None

    issued = wait(when_issued)
    # The request's own events (the history also shows what became of each WhatsApp
    # message about it).
    steps = [h["type"] for h in issued["history"] if not h["type"].startswith("Notification")]
    assert steps[-3:] == ["IssuanceScheduled", "HandedToSiak", "DocumentIssued"]
    messages = [h for h in issued["history"] if h["type"] == "NotificationSent"]
    assert messages, "the messages to the citizen are in the history"
    documents = siak(office, "/_sim/documents").json()
    assert [d["ticket"] for d in documents] == [ticket]
    collected = office.call("POST", f"/api/requests/{ticket}/collected", supervisor)
    assert collected.status_code == 200, collected.text
    assert office.call("POST", f"/api/requests/{ticket}/collected", supervisor).status_code == 409

    survey = office.wait_for_reply(lambda t: ticket in t and "SELESAI" in t and "Balas" in t)
    assert "1" in survey and "4" in survey
    office.send_text(f"#STATUS#{ticket}")
    office.wait_for_reply(lambda t: f"Status tiket {ticket}: SELESAI" in t)
    office.send_text("4")
    office.wait_for_reply(lambda t: ticket in t and "Terima kasih" in t and "penilaian" in t)
    history = office.state(ticket, supervisor)["history"]
    (answer,) = [h for h in history if h["type"] == "SurveyAnswered"]
    assert answer["data"]["score"] == 4

    # Too late to cancel: the citizen is told why.
    office.send_text(f"#BATAL#{ticket}")
    office.wait_for_reply(lambda t: ticket in t and "tidak dapat dibatalkan" in t)


def test_a_moving_letter_reaches_the_chat_as_a_signed_pdf(office: Office, runtime: Runtime) -> None:
    supervisor = office.officer("supervisor", [])
    ticket = request_ticket(office, SKPWNI, phone=MOVER)
    approve(office, ticket, supervisor)

    def letter() -> dict[str, Any] | None:
        answer = httpx.get(f"{office.simulator}/simulator/api/conversations/{MOVER}", timeout=5)
        return next(
            (
                m
                for m in answer.json()["messages"]
                if m["direction"] == "out" and m["type"] == "document"
            ),
            None,
        )

    message = wait(letter)
    assert message["media"]["filename"].endswith(".pdf")
    assert ticket in (message["text"] or "")
    pdf = httpx.get(
        f"{office.simulator}/simulator/api/media/{message['media']['id']}", timeout=5
    ).content
    assert pdf.startswith(b"%PDF")
    signer = LetterSigner.development(runtime.data_dir / "signing", "ignored: the key exists")
    check = _verify(pdf, signer.certificate_pem)
    assert check.valid and check.pades and check.covers_whole_document
    office.send_text(f"#STATUS#{ticket}", phone=MOVER)
    office.wait_for_reply(lambda t: f"Status tiket {ticket}: SELESAI" in t, phone=MOVER)


def _verify(pdf: bytes, certificate: bytes) -> LetterCheck:
    return asyncio.run(verify_letter(pdf, certificate))


# The first failure opens the circuit, and it stays open long enough for the citizen's
# #BATAL# to reach a request that was never handed to SIAK.
@pytest.mark.env({"ADMINDUK_SIAK_BREAKER_FAILURES": "1", "ADMINDUK_SIAK_BREAKER_COOLDOWN": "PT10S"})
def test_approvals_during_a_siak_outage_are_issued_once_it_returns(office: Office) -> None:
    supervisor = office.officer("supervisor", [])
    assert siak(office, "/_sim/outage", method="POST", json={"down": True}).status_code == 200
    kia = request_ticket(office, KIA)
    cancelled = request_ticket(office, KTP, photo=PHOTO + b"another paper")
    approve(office, kia, supervisor)
    approve(office, cancelled, supervisor)
    # Approvals are accepted and promised while SIAK is down.
    office.wait_for_reply(lambda t: kia in t and "DIPROSES" in t)
    office.wait_for_reply(lambda t: cancelled in t and "DIPROSES" in t)

    # Not handed to SIAK yet, so the citizen may still withdraw one of them.
    office.send_text(f"#BATAL#{cancelled}")
    office.wait_for_reply(lambda t: cancelled in t and "DIBATALKAN" in t)

    assert siak(office, "/_sim/outage", method="POST", json={"down": False}).status_code == 200
    wait(lambda: office.state(kia, supervisor)["state"] == "issued" or None, timeout=60)
    documents = siak(office, "/_sim/documents").json()
    assert [d["ticket"] for d in documents] == [kia], "once, and nothing for the cancelled one"
    assert office.state(cancelled, supervisor)["state"] == "cancelled"
