"""Notify's use case: send the reply an event calls for, once.

Per cause event there is one notification stream, ``notification-<cause event id>``. A
handler that finds a result there does nothing, and the result is written with the
consumer's inbox record, so a redelivery after the commit is harmless. A crash between
the send and that commit can still send twice; the 24-hour-window, rate-limit and
reconciliation work of the notify issue closes that gap with the delivery statuses (every
send carries the notification id as ``biz_opaque_callback_data`` for that purpose).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Final

from services.notify.domain.messages import render
from shared.bus.consumer import HandlerContext
from shared.contracts import NotificationFailed, NotificationSent, registry
from shared.eventstore.envelope import NO_STREAM, UnknownEventTypeError
from shared.eventstore.store import EventStore
from shared.whatsapp.client import CloudApiClient, CloudApiError

log = logging.getLogger(__name__)

REPLY_EVENTS: Final = (
    ("citizen", "InvalidRequestReceived"),
    ("citizen", "StatusReported"),
    ("citizen", "InfoRequested"),
    ("citizen", "MenuRequested"),
    ("citizen", "AttachmentRejected"),
    ("citizen", "AttachmentLinked"),
    ("citizen", "AttachmentHeld"),
    ("citizen", "UnsupportedCommandReceived"),
    ("citizen", "CorrectionRefused"),
    ("citizen", "DuplicateRequestReceived"),
    ("request", "RequestReceived"),
    ("request", "ChangesRequested"),
    ("request", "RequestAmended"),
    ("request", "RequestVerified"),
    ("request", "RequestRejected"),
    ("request", "RequestCancelled"),
    ("complaint", "ComplaintReceived"),
    ("complaint", "ComplaintAnswered"),
)


@dataclass
class Notify:
    store: EventStore
    cloud: CloudApiClient

    async def reply(self, context: HandlerContext) -> None:
        try:
            event = registry.decode(context.event)
        except UnknownEventTypeError:
            return
        reply = render(event)
        if reply is None:
            return
        stream = f"notification-{context.event.event_id}"
        if await self.store.stream_version(stream) > 0:
            return  # sent (or failed for good) before; only the ack was lost
        meta = context.metadata(actor="system:notify")
        cause = str(context.event.event_id)
        try:
            wamid = await self.cloud.send(
                {
                    "to": reply.to,
                    "type": "text",
                    "text": {"body": reply.body, "preview_url": False},
                    "biz_opaque_callback_data": f"notification:{cause}",
                }
            )
        except CloudApiError as error:
            if error.retryable:
                raise
            log.warning("reply %s failed for good: code %s", reply.kind, error.code)
            failed = NotificationFailed(
                cause_event_id=cause,
                kind=reply.kind,
                to=reply.to,
                error_code=error.code,
                reason=f"status {error.status}",
            )
            await context.append(
                stream,
                [failed.to_new_event(event_id=context.event_id("failed"), metadata=meta)],
                NO_STREAM,
            )
            return
        sent = NotificationSent(cause_event_id=cause, kind=reply.kind, to=reply.to, wamid=wamid)
        await context.append(
            stream,
            [sent.to_new_event(event_id=context.event_id("sent"), metadata=meta)],
            NO_STREAM,
        )
