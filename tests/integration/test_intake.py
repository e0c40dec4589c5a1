"""Intake's interpretation of citizens' messages, against a real Postgres and the WhatsApp
simulator as the Cloud API (in process, over its real HTTP interface)."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path

import pytest

from shared.contracts import (
    ChangesRequested,
    Delivery,
    DocumentCollected,
    IssuanceScheduled,
    RequestRejected,
    request_stream,
)
from shared.eventstore.envelope import RecordedEvent
from shared.eventstore.store import EventStore
from shared.whatsapp.client import MediaTooLargeError

from .citizens import Citizen, citizen_of

pytestmark = pytest.mark.integration

PHONE = "6281234567890"
OTHER_PHONE = "6289876543210"
KTP = "#KTP#3603015708990001#3603012001180003#SITI AMINAH#SENTUL#BALARAJA#PEMULA#"
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(256)) * 4
PNG = b"\x89PNG\r\n\x1a\n" + bytes(200)
GIF = b"GIF89a" + bytes(200)


@pytest.fixture
async def citizen(event_store: EventStore, tmp_path: Path) -> AsyncIterator[Citizen]:
    async with citizen_of(event_store, tmp_path) as citizen:
        yield citizen


def types(events: list[RecordedEvent]) -> list[str]:
    return [event.event_type for event in events]


async def test_a_request_gets_a_ticket_once_even_when_redelivered(
    citizen: Citizen, event_store: EventStore
) -> None:
    message = await citizen.send(KTP)
    await citizen.handle(message)  # JetStream redelivered it

    requests = await event_store.read_category("request")
    assert types(requests) == ["RequestReceived"]
    received = requests[0].data
    assert received["ticket"].startswith("KTP-")
    assert requests[0].stream_id == f"request-{received['ticket']}"
    assert received["applicant"]["nik"] == "3603015708990001"
    assert received["kecamatan_code"] == "360301"
    assert types(await citizen.events()) == ["WhatsAppMessageReceived", "RequestSubmitted"]


async def test_files_before_and_after_the_request_text_belong_to_it(
    citizen: Citizen, event_store: EventStore
) -> None:
    await citizen.send(media=(JPEG, "image/jpeg"))
    await citizen.send(KTP)
    await citizen.send(media=(PNG, "image/png"))

    [received, added] = await event_store.read_category("request")
    assert [a["sha256"] for a in received.data["attachments"]] == [hashlib.sha256(JPEG).hexdigest()]
    assert added.event_type == "AttachmentAdded"
    assert added.stream_id == received.stream_id
    assert added.data["attachment"]["sha256"] == hashlib.sha256(PNG).hexdigest()
    assert added.data["attachment"]["content_type"] == "image/png"
    assert types(await citizen.events()) == [
        "WhatsAppMessageReceived",
        "AttachmentStored",
        "AttachmentHeld",
        "WhatsAppMessageReceived",
        "RequestSubmitted",
        "WhatsAppMessageReceived",
        "AttachmentStored",
        "AttachmentLinked",
    ]


async def test_a_file_of_the_wrong_kind_is_refused_and_the_citizen_told(
    citizen: Citizen, event_store: EventStore
) -> None:
    await citizen.send(KTP, media=(GIF, "image/jpeg"))  # claims JPEG, is a GIF

    stream = await citizen.events()
    rejected = next(e for e in stream if e.event_type == "AttachmentRejected")
    assert rejected.data["reason"] == "unsupported_type"
    [received] = await event_store.read_category("request")
    assert received.data["attachments"] == []


async def test_status_answers_only_the_number_that_made_the_request(
    citizen: Citizen, event_store: EventStore
) -> None:
    await citizen.send(KTP)
    await citizen.project()
    [received] = await event_store.read_category("request")
    ticket = received.data["ticket"]

    await citizen.send(f"#STATUS#{ticket}")
    await citizen.send(f"#cek# {ticket.lower()}", phone=OTHER_PHONE)

    mine = [e for e in await citizen.events() if e.event_type == "StatusReported"]
    theirs = [e for e in await citizen.events(OTHER_PHONE) if e.event_type == "StatusReported"]
    assert mine[0].data["status"] == "DITERIMA"
    assert theirs[0].data["status"] is None


async def test_mistakes_complaints_and_greetings(citizen: Citizen, event_store: EventStore) -> None:
    await citizen.send(KTP.replace("3603015708990001", "36030157089900"))
    await citizen.send("#ADUAN#Antrean di kantor kecamatan terlalu lama sejak pagi")
    await citizen.send("halo min")

    stream = await citizen.events()
    invalid = next(e for e in stream if e.event_type == "InvalidRequestReceived")
    assert invalid.data["doc_type"] == "KTP"
    assert any("16 angka" in p["message"] for p in invalid.data["problems"])
    [complaint] = await event_store.read_category("complaint")
    assert complaint.data["ticket"].startswith("ADUAN-")
    # A greeting opens guided mode at the choice of document (shown as the menu list).
    greeted = next(e for e in stream if e.event_type == "GuidedStepAsked")
    assert (greeted.data["field"], greeted.data["doc_type"]) == ("doc_type", None)
    assert await event_store.read_category("request") == []


async def test_a_media_id_that_is_not_metas_is_refused_and_the_citizen_told(
    citizen: Citizen, event_store: EventStore
) -> None:
    # A signed webhook naming another path of the Cloud API's host as its media id: the
    # office's token must not fetch it, and the citizen learns the file did not arrive.
    await citizen.upload(JPEG, "image/jpeg")
    message = await citizen.send(
        KTP, media=(JPEG, "image/jpeg"), media_id="../simulator/api/conversations"
    )

    [rejected] = [e for e in await citizen.answer_to(message) if e.event_type.startswith("Attach")]
    assert rejected.event_type == "AttachmentRejected"
    assert rejected.data["reason"] == "download_failed"
    assert rejected.data["detail"] == "berkas tidak dapat diambil dari WhatsApp"
    assert not any("conversations" in path for path in citizen.intake_requests)
    [received] = await event_store.read_category("request")
    assert received.data["attachments"] == []


async def test_downloads_beyond_the_limit_are_refused(citizen: Citizen) -> None:
    media_id = await citizen.upload(JPEG, "image/jpeg")
    info = await citizen.intake.cloud.media_info(media_id)
    with pytest.raises(MediaTooLargeError):
        await citizen.intake.cloud.download(info.url, max_bytes=100)
    assert await citizen.intake.cloud.download(info.url, max_bytes=len(JPEG)) == JPEG


async def test_the_same_request_again_is_answered_with_the_open_ticket(
    citizen: Citizen, event_store: EventStore
) -> None:
    await citizen.send(KTP)
    # Again at once (before the status read model has the first) and again later.
    await citizen.send(KTP.replace("SITI AMINAH", "siti aminah"))
    await citizen.project()
    await citizen.send(KTP, phone=OTHER_PHONE)
    [received] = await event_store.read_category("request")
    ticket = received.data["ticket"]
    mine = [e for e in await citizen.events() if e.event_type == "DuplicateRequestReceived"]
    theirs = [
        e for e in await citizen.events(OTHER_PHONE) if e.event_type == "DuplicateRequestReceived"
    ]
    assert [e.data["existing_ticket"] for e in mine + theirs] == [ticket, ticket]
    assert theirs[0].data["status"] == "DITERIMA"

    # Once the first is closed, a new request is welcome.
    rejected = RequestRejected(
        ticket=ticket, officer_id="off_1", reason="x", phone=PHONE, doc_type="KTP"
    )
    await event_store.append(f"request-{ticket}", [rejected.to_new_event()])
    await citizen.project()
    await citizen.send(KTP)
    assert len(await event_store.read_category("request", limit=100)) == 3  # 2nd ticket's event


async def test_a_correction_goes_to_verification_only_while_one_is_pending(
    citizen: Citizen, event_store: EventStore
) -> None:
    await citizen.send(KTP)
    await citizen.project()
    [received] = await event_store.read_category("request")
    ticket = received.data["ticket"]

    await citizen.send(f"#LENGKAPI#{ticket}")
    await citizen.send("#LENGKAPI#KTP-NOTMINE1")
    changes = ChangesRequested(
        ticket=ticket, reasons=("Foto KK buram",), officer_id="off_1", phone=PHONE, doc_type="KTP"
    )
    await event_store.append(f"request-{ticket}", [changes.to_new_event()])
    await citizen.project()
    await citizen.send(f"#LENGKAPI#{ticket}")  # no file
    await citizen.send(None, media=(PNG, "image/png"))  # a file alone is the correction

    stream = await citizen.events()
    refused = [e.data["reason"] for e in stream if e.event_type == "CorrectionRefused"]
    assert refused == ["not_pending", "unknown_ticket", "no_files"]
    [submitted] = [e for e in stream if e.event_type == "CorrectionSubmitted"]
    assert submitted.data["ticket"] == ticket
    assert [a["content_type"] for a in submitted.data["attachments"]] == ["image/png"]


# -- cancellation, the survey, and dates in the status -----------------------------------------


async def test_a_cancellation_is_passed_on_only_for_the_senders_own_ticket(
    citizen: Citizen, event_store: EventStore
) -> None:
    await citizen.send(KTP)
    [received] = await event_store.read_category("request")
    ticket = received.data["ticket"]

    # Before the status read model has the ticket: the conversation knows it.
    await citizen.send(f"#BATAL#{ticket}")
    await citizen.send(f"#BATAL#{ticket}", phone=OTHER_PHONE)
    await citizen.send("#BATAL#KTP-NOPE1234")

    mine = [e for e in await citizen.events() if e.event_type.startswith("Cancellation")]
    assert [(e.event_type, e.data["ticket"]) for e in mine] == [
        ("CancellationRequested", ticket),
        ("CancellationRefused", "KTP-NOPE1234"),
    ]
    assert mine[1].data["reason"] == "unknown_ticket"
    [theirs] = [e for e in await citizen.events(OTHER_PHONE) if e.event_type.startswith("Cancel")]
    assert (theirs.event_type, theirs.data["reason"]) == ("CancellationRefused", "unknown_ticket")


async def finished_request(citizen: Citizen, event_store: EventStore) -> str:
    """A KTP request collected at the counter (the survey question is then asked)."""
    await citizen.send(KTP)
    [received] = await event_store.read_category("request")
    ticket = str(received.data["ticket"])
    scheduled = IssuanceScheduled(
        ticket=ticket,
        doc_type="KTP",
        phone=PHONE,
        promised_on=date(2026, 12, 8),
        working_days=1,
        delivery=Delivery(channel="office", place="Loket 3"),
    )
    collected = DocumentCollected(ticket=ticket, doc_type="KTP", phone=PHONE, officer_id="o-1")
    await event_store.append(
        request_stream(ticket), [scheduled.to_new_event(), collected.to_new_event()]
    )
    await citizen.project()
    return ticket


async def test_the_status_tells_the_promised_date_and_then_selesai(
    citizen: Citizen, event_store: EventStore
) -> None:
    await citizen.send(KTP)
    [received] = await event_store.read_category("request")
    ticket = received.data["ticket"]
    scheduled = IssuanceScheduled(
        ticket=ticket,
        doc_type="KTP",
        phone=PHONE,
        promised_on=date(2026, 12, 8),
        working_days=1,
        delivery=Delivery(channel="office", place="Loket 3"),
    )
    await event_store.append(request_stream(ticket), [scheduled.to_new_event()])
    await citizen.project()
    await citizen.send(f"#STATUS#{ticket}")
    collected = DocumentCollected(ticket=ticket, doc_type="KTP", phone=PHONE, officer_id="o-1")
    await event_store.append(request_stream(ticket), [collected.to_new_event()])
    await citizen.project()
    await citizen.send(f"#STATUS#{ticket}")

    answers = [e.data for e in await citizen.events() if e.event_type == "StatusReported"]
    assert (answers[0]["status"], answers[0]["promised_on"]) == ("DIPROSES", "2026-12-08")
    assert answers[1]["status"] == "SELESAI"


async def test_a_digit_after_a_finished_request_answers_its_survey_once(
    citizen: Citizen, event_store: EventStore
) -> None:
    ticket = await finished_request(citizen, event_store)
    await citizen.send(" 4 ")
    await citizen.send("3")  # before the read model caught up: not a second answer
    await citizen.project()
    await citizen.send("2")  # after: the survey is closed

    answers = [
        e
        for e in await event_store.read_stream(request_stream(ticket))
        if e.event_type == "SurveyAnswered"
    ]
    assert [a.data["score"] for a in answers] == [4]
    stream = await citizen.events()
    menus = [e for e in stream if e.event_type == "MenuRequested"]
    assert len(menus) == 2, "later digits are ordinary messages, answered with the menu"
    pending = await event_store.pool.fetchval(
        "SELECT survey_pending FROM request_status WHERE ticket = $1", ticket
    )
    assert pending is False


async def test_a_digit_with_no_survey_waiting_is_an_ordinary_message(citizen: Citizen) -> None:
    await citizen.send("1")
    assert types(await citizen.events())[-1] == "MenuRequested"
