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
from shared.eventstore.envelope import Metadata, NewEvent, deterministic_event_id
from shared.eventstore.errors import IdempotencyConflictError
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
    """Every message and status the webhook carries, as appends with deterministic ids (one
    per stream, events in the order the webhook lists them): the same WhatsApp message
    delivered again, days later, appends nothing."""
    metadata = Metadata(trace=current_trace_context(), actor="system:intake")
    streams: dict[str, list[NewEvent]] = {}
    for value, message in payload.messages():
        event = _message_event(value, message)
        streams.setdefault(citizen_stream(message.from_, key), []).append(
            event.to_new_event(
                event_id=deterministic_event_id("whatsapp-message", message.id),
                metadata=metadata,
            )
        )
    for _, status in payload.statuses():
        status_event = _status_event(status)
        streams.setdefault(f"delivery-{status.id}", []).append(
            status_event.to_new_event(
                event_id=deterministic_event_id(
                    "whatsapp-status", status.id, status.status, status.timestamp
                ),
                metadata=metadata,
            )
        )
    return [StreamAppend(stream, events) for stream, events in streams.items()]


async def record_webhook(store: EventStore, payload: WebhookPayload, key: bytes) -> int:
    """Append what the webhook carries, as one append; returns how many events it carried.
    Raises when anything could not be stored, so the webhook answers 5xx and Meta retries.

    A webhook that repeats part of an earlier one (Meta retries, and may regroup what it
    retries) is refused whole by the store's idempotency check; its parts are then appended
    one event at a time (in order within each stream), so the new ones are stored and the
    repeated ones are no-ops."""
    appends = webhook_appends(payload, key)
    if not appends:
        return 0
    try:
        await store.append_streams(appends)
    except IdempotencyConflictError:
        await asyncio.gather(*(_one_by_one(store, append) for append in appends))
    return sum(len(append.events) for append in appends)


async def _one_by_one(store: EventStore, append: StreamAppend) -> None:
    for event in append.events:
        await store.append_streams([StreamAppend(append.stream_id, [event])])
