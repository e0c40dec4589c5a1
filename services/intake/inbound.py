"""From webhook to events: every WhatsApp message and delivery status a webhook carries
becomes one event with a deterministic id, so nothing is stored twice however often Meta
delivers it."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from shared.contracts import (
    DeliveryStatusReceived,
    MediaRef,
    WhatsAppMessageReceived,
    citizen_stream,
)
from shared.eventstore.envelope import Metadata, deterministic_event_id
from shared.eventstore.store import EventStore, StreamAppend
from shared.telemetry import current_trace_context
from shared.whatsapp.webhook import Message, Status, Value, WebhookPayload


def _sent_at(timestamp: str) -> datetime:
    try:
        return datetime.fromtimestamp(int(timestamp), UTC)
    except (ValueError, OverflowError, OSError):
        return datetime.now(UTC)


def _message_event(value: Value, message: Message) -> WhatsAppMessageReceived:
    names = {contact.wa_id: contact.profile.name for contact in value.contacts}
    media = None
    text = message.text.body if message.text else None
    for kind in ("image", "document"):
        item = getattr(message, kind)
        if item is not None:
            media = MediaRef(
                media_id=item.id,
                kind=kind,
                mime_type=item.mime_type,
                sha256=item.sha256,
                filename=item.filename,
            )
            text = item.caption
    reply_id = None
    if message.interactive is not None:
        reply = message.interactive.button_reply or message.interactive.list_reply
        if reply is not None:
            reply_id, text = reply.id, reply.title
    return WhatsAppMessageReceived(
        message_id=message.id,
        phone=message.from_,
        profile_name=names.get(message.from_),
        sent_at=_sent_at(message.timestamp),
        message_type=message.type,
        text=text,
        media=media,
        reply_id=reply_id,
        context_message_id=message.context.id if message.context else None,
        phone_number_id=value.metadata.phone_number_id,
    )


def _status_event(status: Status) -> DeliveryStatusReceived:
    return DeliveryStatusReceived(
        wamid=status.id,
        status=status.status,
        at=_sent_at(status.timestamp),
        recipient=status.recipient_id,
        error_codes=tuple(error.code for error in status.errors),
        error_titles=tuple(error.title or "" for error in status.errors),
        callback_data=status.biz_opaque_callback_data,
    )


def webhook_appends(payload: WebhookPayload, key: bytes) -> list[StreamAppend]:
    """Every message and status the webhook carries, as appends with deterministic ids:
    the same WhatsApp message delivered again, days later, appends nothing."""
    metadata = Metadata(trace=current_trace_context(), actor="system:intake")
    appends = []
    for value, message in payload.messages():
        event = _message_event(value, message)
        appends.append(
            StreamAppend(
                citizen_stream(message.from_, key),
                [
                    event.to_new_event(
                        event_id=deterministic_event_id("whatsapp-message", message.id),
                        metadata=metadata,
                    )
                ],
            )
        )
    for _, status in payload.statuses():
        status_event = _status_event(status)
        appends.append(
            StreamAppend(
                f"delivery-{status.id}",
                [
                    status_event.to_new_event(
                        event_id=deterministic_event_id(
                            "whatsapp-status", status.id, status.status, status.timestamp
                        ),
                        metadata=metadata,
                    )
                ],
            )
        )
    return appends


async def record_webhook(store: EventStore, payload: WebhookPayload, key: bytes) -> int:
    """Append what the webhook carries; returns how many appends were made. Raises when
    anything could not be stored, so the webhook answers 5xx and Meta retries."""
    appends = webhook_appends(payload, key)
    await asyncio.gather(*(store.append_streams([append]) for append in appends))
    return len(appends)
