"""From webhook to events: every WhatsApp message and delivery status a webhook carries
becomes one event with a deterministic id, so nothing is stored twice however often Meta
delivers it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Final
from uuid import UUID

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

log = logging.getLogger(__name__)

MAX_WEBHOOK_ITEMS: Final = 1000
"""Messages and statuses one webhook may carry. Meta sends one or a few; a signed webhook
with more is refused whole (413) before anything is appended."""
APPEND_BATCH: Final = 250
"""Events per append: a webhook within it (every ordinary one) is one append."""
APPEND_CONCURRENCY: Final = 8
"""Streams appended at once when a repeated webhook is appended event by event."""


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


def webhook_appends(
    payload: WebhookPayload, key: bytes, phone_number_id: str | None = None
) -> list[StreamAppend]:
    """Every message and status the webhook carries (for the business number
    ``phone_number_id`` when given), as appends with deterministic ids (one per stream,
    events in the order the webhook lists them): the same WhatsApp message delivered again,
    days later, appends nothing."""
    metadata = Metadata(trace=current_trace_context(), actor="system:intake")
    streams: dict[str, list[NewEvent]] = {}
    # The same message or status twice in one webhook is stored once (the store refuses an
    # append that repeats an event id).
    seen: set[UUID] = set()
    for value, message in payload.messages(phone_number_id):
        event_id = deterministic_event_id("whatsapp-message", message.id)
        if event_id in seen:
            continue
        seen.add(event_id)
        event = _message_event(value, message)
        streams.setdefault(citizen_stream(message.from_, key), []).append(
            event.to_new_event(event_id=event_id, metadata=metadata)
        )
    for _, status in payload.statuses(phone_number_id):
        event_id = deterministic_event_id(
            "whatsapp-status", status.id, status.status, status.timestamp
        )
        if event_id in seen:
            continue
        seen.add(event_id)
        streams.setdefault(f"delivery-{status.id}", []).append(
            _status_event(status).to_new_event(event_id=event_id, metadata=metadata)
        )
    return [StreamAppend(stream, events) for stream, events in streams.items()]


async def record_webhook(
    store: EventStore, payload: WebhookPayload, key: bytes, phone_number_id: str | None = None
) -> int:
    """Append what the webhook carries (for ``phone_number_id`` when given), as one append
    of up to :data:`APPEND_BATCH` events, else in such batches one after the other; returns
    how many events it carried. Raises when anything could not be stored, so the webhook
    answers 5xx and Meta retries (what was stored before is then a no-op).

    A webhook that repeats part of an earlier one (Meta retries, and may regroup what it
    retries) is refused whole by the store's idempotency check; its parts are then appended
    one event at a time (in order within each stream, :data:`APPEND_CONCURRENCY` streams at
    a time), so the new ones are stored and the repeated ones are no-ops."""
    appends = webhook_appends(payload, key, phone_number_id)
    if not appends:
        return 0
    for batch in _batches(appends, APPEND_BATCH):
        try:
            await store.append_streams(batch)
        except IdempotencyConflictError:
            await _one_by_one(store, batch)
    return sum(len(append.events) for append in appends)


def _batches(appends: list[StreamAppend], size: int) -> Iterator[list[StreamAppend]]:
    """``appends`` in groups of at most ``size`` events, a stream's events in order (a
    stream longer than ``size`` is split over consecutive groups)."""
    if sum(len(append.events) for append in appends) <= size:
        yield appends
        return
    batch: list[StreamAppend] = []
    count = 0
    for append in appends:
        events: Sequence[NewEvent] = append.events
        for start in range(0, len(events), size):
            chunk = events[start : start + size]
            if batch and (count + len(chunk) > size or start > 0):
                yield batch
                batch, count = [], 0
            batch.append(StreamAppend(append.stream_id, chunk))
            count += len(chunk)
    if batch:
        yield batch


async def _one_by_one(store: EventStore, appends: list[StreamAppend]) -> None:
    gate = asyncio.Semaphore(APPEND_CONCURRENCY)

    async def stream(append: StreamAppend) -> None:
        async with gate:
            for event in append.events:
                try:
                    await store.append_streams([StreamAppend(append.stream_id, [event])])
                except IdempotencyConflictError:
                    # Its id is stored on another stream: a message id seen before from
                    # another number. Meta does not reuse ids; refusing the webhook would
                    # only have it retried for days.
                    log.warning(
                        "event %s of a webhook stored before elsewhere; ignored", event.event_id
                    )

    await asyncio.gather(*(stream(append) for append in appends))
