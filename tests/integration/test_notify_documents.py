"""Notify sends a signed letter as a WhatsApp document: uploaded, then named in a document
message, once, against a real Postgres and the simulator as the Cloud API (in process,
over its real HTTP interface)."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from services.notify.domain.messages import CAPTION_MAX, SURVEY_QUESTION
from shared.contracts import Attachment, Delivery, DocumentIssued, request_stream
from shared.eventstore.envelope import RecordedEvent
from shared.eventstore.store import EventStore

from .notifying import Notifying, notifying

pytestmark = pytest.mark.integration

PHONE = "6281234567890"
TICKET = "SKPWNI-7Q2M9XAB"
LETTER = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\n" + bytes(range(256)) + b"\n%%EOF\n"


async def issue(office: Notifying, letter: bytes | None) -> RecordedEvent:
    """A letter issued for the chat, as issuance records it; notify queues its message."""
    digest = hashlib.sha256(letter or b"never stored").hexdigest()
    if letter is not None:
        office.media.put(letter)
    event = DocumentIssued(
        ticket=TICKET,
        doc_type="SKPWNI",
        phone=PHONE,
        document_number="474.2/0021/SKPWNI/XII/2026",
        issued_at=datetime(2026, 12, 4, 3, 0, tzinfo=UTC),
        ready_on=date(2026, 12, 4),
        delivery=Delivery(channel="whatsapp"),
        letter=Attachment(
            sha256=digest,
            content_type="application/pdf",
            size=len(letter or b""),
            filename=f"{TICKET}.pdf",
            message_id=f"letter:{TICKET}",
        ),
    )
    # The citizen wrote an hour ago: the letter goes free-form, as a document message.
    await office.citizen_wrote(PHONE, office.clock.now - timedelta(hours=1))
    return await office.cause(request_stream(TICKET), event)


@pytest.fixture
async def office(event_store: EventStore, data_dir: Path) -> AsyncIterator[Notifying]:
    async with notifying(event_store, data_dir) as office:
        yield office


async def test_a_letter_is_uploaded_and_sent_as_a_document_once(office: Notifying) -> None:
    event = await issue(office, LETTER)

    await office.deliver(event)  # JetStream redelivered it: the ack was lost
    await office.drain()

    [sent] = office.simulator.outbox
    assert sent.phone == PHONE
    assert sent.type == "document"
    part = sent.payload["document"]
    assert part["filename"] == f"{TICKET}.pdf"
    assert part["filename"].endswith(".pdf")
    media = office.simulator.media[part["id"]]
    assert office.simulator.media_bytes(media) == LETTER
    assert media.mime_type == "application/pdf"
    assert media.filename == f"{TICKET}.pdf"
    caption = part["caption"]
    assert len(caption) <= CAPTION_MAX
    assert f"Nomor tiket: {TICKET}" in caption
    assert "474.2/0021/SKPWNI/XII/2026" in caption
    assert SURVEY_QUESTION in caption
    assert sent.payload["biz_opaque_callback_data"] == f"notification:{event.event_id}"

    _, notification = await office.notifications(event)
    assert notification.event_type == "NotificationSent"
    assert notification.data["wamid"] == sent.id
    assert notification.data["kind"] == "letter-sent"
    assert len(office.simulator.media) == 1  # the redelivery uploaded nothing either


async def test_a_letter_missing_from_the_media_store_fails_for_good(
    office: Notifying, caplog: pytest.LogCaptureFixture
) -> None:
    event = await issue(office, None)

    await office.deliver(event)
    await office.drain()

    assert office.simulator.outbox == []
    assert office.simulator.media == {}
    _, notification = await office.notifications(event)
    assert notification.event_type == "NotificationFailed"
    assert notification.data["error_code"] is None
    assert "not in the media store" in notification.data["reason"]
    assert "message letter-sent failed for good" in caplog.text
    assert PHONE not in caplog.text


async def test_a_letter_whose_bytes_changed_is_not_sent(office: Notifying) -> None:
    event = await issue(office, LETTER)
    digest = hashlib.sha256(LETTER).hexdigest()
    office.media.path(digest).write_bytes(b"%PDF-1.7 tampered")

    await office.drain()

    assert office.simulator.outbox == []
    _, notification = await office.notifications(event)
    assert notification.event_type == "NotificationFailed"
    assert "does not match" in notification.data["reason"]
