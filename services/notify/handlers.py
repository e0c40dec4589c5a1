"""Notify's use case: send the reply an event calls for, once.

Per cause event there is one notification stream, ``notification-<cause event id>``. A
handler that finds a result there does nothing, and the result is written with the
consumer's inbox record, so a redelivery after the commit is harmless. A crash between
the send and that commit can still send twice; the 24-hour-window, rate-limit and
reconciliation work of the notify issue closes that gap with the delivery statuses (every
send carries the notification id as ``biz_opaque_callback_data`` for that purpose).

A reply with a document (a signed letter) is sent as the Cloud API wants it: the bytes are
uploaded first for a media id, then a document message names that id, with the reply's
text as its caption. A letter missing from the media store is a failure for good.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from dataclasses import dataclass
from typing import Any, Final

from services.notify.domain.messages import Reply, ReplyDocument, render
from shared.bus.consumer import HandlerContext
from shared.calendar import OfficeHours
from shared.contracts import NotificationFailed, NotificationSent, registry
from shared.eventstore.envelope import NO_STREAM, UnknownEventTypeError
from shared.eventstore.store import EventStore
from shared.mediastore import FileMediaStore
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
    ("citizen", "CancellationRefused"),
    ("request", "RequestReceived"),
    ("request", "ChangesRequested"),
    ("request", "RequestAmended"),
    ("request", "RequestVerified"),
    ("request", "RequestRejected"),
    ("request", "RequestCancelled"),
    ("request", "IssuanceScheduled"),
    ("request", "IssuanceDelayed"),
    ("request", "DocumentIssued"),
    ("request", "DocumentReady"),
    ("request", "DocumentCollected"),
    ("request", "SurveyAnswered"),
    ("complaint", "ComplaintReceived"),
    ("complaint", "ComplaintAnswered"),
)


class LetterMissingError(Exception):
    """The file a reply must carry is not in the media store (or not the bytes named)."""


@dataclass
class Notify:
    store: EventStore
    cloud: CloudApiClient
    media: FileMediaStore
    office_hours: OfficeHours | None = None

    async def reply(self, context: HandlerContext) -> None:
        try:
            event = registry.decode(context.event)
        except UnknownEventTypeError:
            return
        reply = render(event, office_hours=self.office_hours)
        if reply is None:
            return
        stream = f"notification-{context.event.event_id}"
        if await self.store.stream_version(stream) > 0:
            return  # sent (or failed for good) before; only the ack was lost
        meta = context.metadata(actor="system:notify")
        cause = str(context.event.event_id)
        outcome: NotificationSent | NotificationFailed
        try:
            wamid = await self._send(reply, cause)
        except LetterMissingError as error:
            log.warning("reply %s failed for good: %s", reply.kind, error)
            outcome = NotificationFailed(
                cause_event_id=cause,
                kind=reply.kind,
                to=reply.to,
                error_code=None,
                reason=str(error),
            )
        except CloudApiError as error:
            if error.retryable:
                raise
            log.warning("reply %s failed for good: code %s", reply.kind, error.code)
            outcome = NotificationFailed(
                cause_event_id=cause,
                kind=reply.kind,
                to=reply.to,
                error_code=error.code,
                reason=f"status {error.status}",
            )
        else:
            outcome = NotificationSent(
                cause_event_id=cause, kind=reply.kind, to=reply.to, wamid=wamid
            )
        part = "sent" if isinstance(outcome, NotificationSent) else "failed"
        await context.append(
            stream,
            [outcome.to_new_event(event_id=context.event_id(part), metadata=meta)],
            NO_STREAM,
        )

    async def _send(self, reply: Reply, cause: str) -> str:
        message: dict[str, Any]
        if reply.document is None:
            message = {"type": "text", "text": {"body": reply.body, "preview_url": False}}
        else:
            data = await self._letter(reply.document)
            media_id = await self.cloud.upload_media(
                data, reply.document.content_type, reply.document.filename
            )
            message = {
                "type": "document",
                "document": {
                    "id": media_id,
                    "filename": reply.document.filename,
                    "caption": reply.body,
                },
            }
        return await self.cloud.send(
            {"to": reply.to, **message, "biz_opaque_callback_data": f"notification:{cause}"}
        )

    async def _letter(self, document: ReplyDocument) -> bytes:
        # The reasons name no person: they end up in logs and in the notification stream.
        if document.sha256 is None:
            raise LetterMissingError("the event carries no letter")
        try:
            data = await asyncio.to_thread(self.media.get, document.sha256)
        except (FileNotFoundError, ValueError) as error:  # other I/O errors are retried
            raise LetterMissingError(
                f"letter {document.sha256[:12]} not in the media store"
            ) from error
        if hashlib.sha256(data).hexdigest() != document.sha256:
            raise LetterMissingError(f"letter {document.sha256[:12]} does not match its digest")
        return data
