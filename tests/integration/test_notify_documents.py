"""Notify sends a signed letter as a WhatsApp document: uploaded, then named in a document
message, once, against a real Postgres and the simulator as the Cloud API (in process,
over its real HTTP interface)."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import httpx
import pytest

from services.notify.domain.messages import CAPTION_MAX, SURVEY_QUESTION
from services.notify.handlers import Notify
from services.simulator.app import create_app as create_simulator
from services.simulator.app import simulator_of
from services.simulator.state import Simulator
from shared.bus.consumer import HandlerContext
from shared.config import Settings
from shared.contracts import Attachment, Delivery, DocumentIssued, request_stream
from shared.eventstore.envelope import RecordedEvent
from shared.eventstore.store import EventStore
from shared.mediastore import FileMediaStore
from shared.whatsapp.client import CloudApiClient

pytestmark = pytest.mark.integration

PHONE = "6281234567890"
TICKET = "SKPWNI-7Q2M9XAB"
LETTER = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\n" + bytes(range(256)) + b"\n%%EOF\n"


@dataclass
class Office:
    notify: Notify
    simulator: Simulator
    store: EventStore
    media: FileMediaStore

    async def issue(self, letter: bytes | None) -> RecordedEvent:
        """A letter issued for the chat, as issuance records it."""
        digest = hashlib.sha256(letter or b"never stored").hexdigest()
        if letter is not None:
            self.media.put(letter)
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
        result = await self.store.append(request_stream(TICKET), [event.to_new_event()])
        [recorded] = result.events
        return recorded

    async def deliver(self, event: RecordedEvent) -> None:
        """One delivery of ``event`` to notify, as the consumer framework makes it."""
        await self.notify.reply(
            HandlerContext(consumer="notify-replies", store=self.store, event=event, deliveries=1)
        )

    async def notifications(self, event: RecordedEvent) -> list[RecordedEvent]:
        return await self.store.read_stream(f"notification-{event.event_id}")


@pytest.fixture
async def office(event_store: EventStore, data_dir: Path) -> AsyncIterator[Office]:
    settings = Settings(data_dir=data_dir)
    app = create_simulator(
        settings, intake_webhook_url="http://127.0.0.1:9/unused", send_statuses=False
    )
    cloud = CloudApiClient(
        "http://simulator/v21.0",
        settings.whatsapp_access_token.get_secret_value(),
        settings.whatsapp_phone_number_id,
        transport=httpx.ASGITransport(app=app),
    )
    media = FileMediaStore(data_dir / "media")
    yield Office(
        Notify(store=event_store, cloud=cloud, media=media), simulator_of(app), event_store, media
    )
    await cloud.close()


async def test_a_letter_is_uploaded_and_sent_as_a_document_once(office: Office) -> None:
    event = await office.issue(LETTER)

    await office.deliver(event)
    await office.deliver(event)  # JetStream redelivered it: the ack was lost

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

    [notification] = await office.notifications(event)
    assert notification.event_type == "NotificationSent"
    assert notification.data["wamid"] == sent.id
    assert notification.data["kind"] == "letter-sent"
    assert len(office.simulator.media) == 1  # the redelivery uploaded nothing either


async def test_a_letter_missing_from_the_media_store_fails_for_good(
    office: Office, caplog: pytest.LogCaptureFixture
) -> None:
    event = await office.issue(None)

    await office.deliver(event)
    await office.deliver(event)

    assert office.simulator.outbox == []
    assert office.simulator.media == {}
    [notification] = await office.notifications(event)
    assert notification.event_type == "NotificationFailed"
    assert notification.data["error_code"] is None
    assert "not in the media store" in notification.data["reason"]
    assert "reply letter-sent failed for good" in caplog.text
    assert PHONE not in caplog.text


async def test_a_letter_whose_bytes_changed_is_not_sent(office: Office) -> None:
    event = await office.issue(LETTER)
    digest = hashlib.sha256(LETTER).hexdigest()
    office.media.path(digest).write_bytes(b"%PDF-1.7 tampered")

    await office.deliver(event)

    assert office.simulator.outbox == []
    [notification] = await office.notifications(event)
    assert notification.event_type == "NotificationFailed"
    assert "does not match" in notification.data["reason"]
