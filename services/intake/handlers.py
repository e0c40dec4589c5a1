"""Intake's use cases: turn webhooks into events, and each citizen message into what it
means (a request with its ticket, a status answer, the menu, an explanation, the next
question of a guided request)."""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Final
from zoneinfo import ZoneInfo

import asyncpg
from opentelemetry import trace

from services.intake.domain import guided
from services.intake.domain.conversation import Conversation
from services.intake.domain.parser import (
    Cancellation,
    Complaint,
    DocumentRequest,
    InfoQuery,
    Invalid,
    MenuRequest,
    ParsedMessage,
    Resubmission,
    StatusQuery,
)
from services.intake.domain.tickets import ticket_for
from shared import reply_ids
from shared.bus.consumer import HandlerContext, PermanentError
from shared.contracts import (
    OPEN_CITIZEN_STATUSES,
    Attachment,
    AttachmentAdded,
    AttachmentHeld,
    AttachmentLinked,
    AttachmentRejected,
    AttachmentStored,
    CancellationRefused,
    CancellationRequested,
    ComplaintReceived,
    ComplaintSubmitted,
    CorrectionRefused,
    CorrectionSubmitted,
    DuplicateRequestReceived,
    GuidedEnded,
    InfoRequested,
    InvalidRequestReceived,
    MediaRef,
    MenuRequested,
    Problem,
    RequestReceived,
    RequestSubmitted,
    StatusReported,
    SurveyAnswered,
    WhatsAppMessageReceived,
    citizen_status,
    complaint_stream,
    registry,
    request_stream,
    subject_key,
)
from shared.eventstore.envelope import (
    NO_STREAM,
    Event,
)
from shared.eventstore.errors import ConcurrencyConflictError
from shared.eventstore.repository import Repository
from shared.eventstore.store import EventStore, StreamAppend
from shared.identity import OfficeArea
from shared.mediastore import FileMediaStore, sniff_content_type
from shared.whatsapp.client import (
    CloudApiClient,
    CloudApiError,
    MediaRefusedError,
    MediaTooLargeError,
)

log = logging.getLogger(__name__)

JAKARTA: Final = ZoneInfo("Asia/Jakarta")
# The Cloud API's own limits per kind of media.
MEDIA_LIMITS: Final = {"image": 5 * 1024 * 1024, "document": 100 * 1024 * 1024}
ACCEPTED_TYPES: Final = {
    "image": {"image/jpeg", "image/png", "image/webp"},
    "document": {"application/pdf", "image/jpeg", "image/png"},
}
TICKET_ATTEMPTS: Final = 5


def _digest_matches(expected: str | None, data_hex: str) -> bool:
    """Meta documents the webhook's sha256 loosely: accept hex or base64 of the digest."""
    if not expected:
        return True
    if expected.lower() == data_hex:
        return True
    try:
        return base64.b64decode(expected, validate=True).hex() == data_hex
    except (binascii.Error, ValueError):
        return False


@dataclass
class Intake:
    """The intake consumers' handlers, with what they need."""

    store: EventStore
    media: FileMediaStore
    cloud: CloudApiClient
    area: OfficeArea
    key: bytes
    today: Callable[[], date] = lambda: datetime.now(JAKARTA).date()
    guided_idle: timedelta = timedelta(minutes=30)
    """A guided request lapses after this long without an answer."""

    def __post_init__(self) -> None:
        self.conversations = Repository(self.store, registry, Conversation)

    # -- messages ----------------------------------------------------------------------

    async def on_message(self, context: HandlerContext) -> None:
        if context.event.event_type != WhatsAppMessageReceived.event_type:
            return
        if context.event.erased:
            return  # a replay after the citizen's data was erased: nothing left to answer
        message = context.decode(WhatsAppMessageReceived)
        citizen = context.event.stream_id
        # What was erased is forgotten: an erased guided session or file does not carry over
        # into the conversation of a citizen who writes again.
        conversation = (await self.conversations.load(citizen, skip_erased=True)).aggregate
        fetched = None
        if message.media is not None:
            fetched = await self._fetch(message, message.media)
        session = conversation.guided
        in_session = session is not None and not session.expired(message.sent_at, self.guided_idle)
        # A digit answers the survey unless a guided question is open (then it answers
        # that); the survey's own buttons always answer the survey.
        if (
            fetched is None
            and (not in_session or _is_survey_reply(message))
            and await self._answer_survey(context, message)
        ):
            return
        decision = guided.interpret(
            session,
            guided.Inbound(message.text, message.reply_id, has_media=message.media is not None),
            now=message.sent_at,
            idle=self.guided_idle,
            area=self.area,
            today=self.today(),
        )
        match decision:
            case guided.Submit():
                await self._submit(
                    context, message, decision.request, conversation, fetched, guided_end=True
                )
            case guided.Ask() | guided.Leave():
                events = decision.events(message.phone, message.message_id)
                await self._append_citizen(context, [*([fetched] if fetched else []), *events])
            case guided.Handle():
                ended: list[Event] = []
                if decision.ended is not None:
                    ended.append(
                        GuidedEnded(
                            phone=message.phone,
                            message_id=message.message_id,
                            reason=decision.ended,
                        )
                    )
                await self._handle(context, message, decision.parsed, conversation, fetched, ended)

    async def _handle(
        self,
        context: HandlerContext,
        message: WhatsAppMessageReceived,
        parsed: ParsedMessage | None,
        conversation: Conversation,
        fetched: AttachmentStored | AttachmentRejected | None,
        before: Sequence[Event],
    ) -> None:
        """A message as the ``#`` formats read it. ``before``: citizen-stream events to
        append first, in the same append (the end of a guided session it replaces)."""
        citizen = context.event.stream_id
        attachment = fetched.attachment if isinstance(fetched, AttachmentStored) else None
        if isinstance(parsed, DocumentRequest):
            await self._submit(context, message, parsed, conversation, fetched, before=before)
            return
        if isinstance(parsed, Complaint):
            await self._complain(context, message, parsed, fetched, before)
            return
        if isinstance(parsed, Resubmission):
            await self._correct(context, message, parsed.ticket, conversation, fetched, before)
            return

        meta = context.metadata(actor="system:intake")
        for_citizen: list[Event] = [*before, *([fetched] if fetched is not None else [])]
        other: list[StreamAppend] = []
        if parsed is None and attachment is not None:
            pending = await self._pending_correction(citizen)
            if pending is not None:
                # A file alone while a correction is pending is that correction.
                await self._correct(context, message, pending, conversation, fetched, before)
                return
            ticket = conversation.recent_ticket(message.sent_at)
            if ticket is None:
                # Kept for the request text that may follow within the window.
                for_citizen.append(
                    AttachmentHeld(phone=message.phone, message_id=message.message_id)
                )
            else:
                for_citizen.append(
                    AttachmentLinked(phone=message.phone, ticket=ticket, sha256=attachment.sha256)
                )
                added = AttachmentAdded(ticket=ticket, attachment=attachment)
                other.append(
                    StreamAppend(
                        request_stream(ticket),
                        [added.to_new_event(event_id=context.event_id("added"), metadata=meta)],
                    )
                )
        elif parsed is not None or fetched is None:
            for_citizen.append(await self._answer(parsed, message, citizen, conversation))
        citizen_events = [
            event.to_new_event(
                event_id=context.event_id(type(event).__name__, str(index)), metadata=meta
            )
            for index, event in enumerate(for_citizen)
        ]
        await context.append_streams([StreamAppend(citizen, citizen_events), *other])

    async def _append_citizen(self, context: HandlerContext, events: Sequence[Event]) -> None:
        meta = context.metadata(actor="system:intake")
        await context.append(
            context.event.stream_id,
            [
                event.to_new_event(
                    event_id=context.event_id(type(event).__name__, str(index)), metadata=meta
                )
                for index, event in enumerate(events)
            ],
        )

    async def _answer(
        self,
        parsed: ParsedMessage | None,
        message: WhatsAppMessageReceived,
        citizen: str,
        conversation: Conversation,
    ) -> Event:
        """The citizen-stream event that answers a message which is not a new request."""
        phone, message_id = message.phone, message.message_id
        match parsed:
            case StatusQuery():
                row = await self._status_row(parsed.ticket, citizen)
                return StatusReported(
                    phone=phone,
                    message_id=message_id,
                    ticket=parsed.ticket,
                    status=None if row is None else str(row["status"]),
                    doc_type=None if row is None else str(row["doc_type"]),
                    promised_on=None if row is None else row["promised_on"],
                )
            case InfoQuery():
                doc_type = parsed.doc_type.value if parsed.doc_type else None
                return InfoRequested(phone=phone, message_id=message_id, doc_type=doc_type)
            case Invalid():
                return InvalidRequestReceived(
                    phone=phone,
                    message_id=message_id,
                    doc_type=parsed.doc_type.value if parsed.doc_type else None,
                    problems=tuple(
                        Problem(field=p.field, message=p.message) for p in parsed.problems
                    ),
                )
            case Cancellation():
                # Verification decides (the request may be with SIAK by now); here only
                # whose ticket it is.
                status, _ = await self._status(parsed.ticket, citizen)
                if status is None and not conversation.owns(parsed.ticket):
                    return CancellationRefused(
                        phone=phone,
                        message_id=message_id,
                        ticket=parsed.ticket,
                        reason="unknown_ticket",
                    )
                return CancellationRequested(
                    phone=phone, message_id=message_id, ticket=parsed.ticket
                )
            case _:
                return MenuRequested(
                    phone=phone,
                    message_id=message_id,
                    understood=isinstance(parsed, MenuRequest),
                )

    async def _submit(
        self,
        context: HandlerContext,
        message: WhatsAppMessageReceived,
        request: DocumentRequest,
        conversation: Conversation,
        fetched: AttachmentStored | AttachmentRejected | None,
        *,
        before: Sequence[Event] = (),
        guided_end: bool = False,
    ) -> None:
        """A new request, or the ticket of the open request it repeats. ``guided_end``: it
        completes a guided session, which ends (``GuidedEnded(submitted)`` with the ticket)
        in the same append, and the files sent since the session began belong to it."""
        since = conversation.guided.started_at if guided_end and conversation.guided else None
        attachments = conversation.recent_attachments(message.sent_at, since=since)
        if isinstance(fetched, AttachmentStored):
            attachments.append(fetched.attachment)
        applicant = request.model_dump(mode="json", exclude={"kind", "doc_type"})
        meta = context.metadata(actor="system:intake")
        citizen = context.event.stream_id
        subject = subject_key(request.doc_type.value, applicant, self.key)
        existing = await self._open_request(subject, conversation) if subject else None
        if existing is not None:
            ticket, status = existing
            duplicate = DuplicateRequestReceived(
                phone=message.phone,
                message_id=message.message_id,
                doc_type=request.doc_type.value,
                existing_ticket=ticket,
                status=status,
            )
            answer: list[Event] = [
                *before,
                *([fetched] if fetched is not None else []),
                duplicate,
                *self._guided_submitted(message, ticket, guided_end),
            ]
            await context.append(
                citizen,
                [
                    event.to_new_event(
                        event_id=context.event_id(type(event).__name__), metadata=meta
                    )
                    for event in answer
                ],
            )
            return
        # The caption's file, stored or refused: the citizen hears about a refusal too.
        file_events: list[Event] = [fetched] if fetched is not None else []
        for attempt in range(TICKET_ATTEMPTS):
            ticket = ticket_for(request.doc_type.value, message.message_id, self.key, attempt)
            received = RequestReceived(
                ticket=ticket,
                doc_type=request.doc_type.value,
                citizen=citizen,
                phone=message.phone,
                kecamatan_code=request.kecamatan_code,
                applicant=applicant,
                attachments=tuple(attachments),
                message_id=message.message_id,
                received_at=message.sent_at,
            )
            submitted = RequestSubmitted(
                ticket=ticket,
                doc_type=request.doc_type.value,
                message_id=message.message_id,
                attachments=tuple(a.sha256 for a in attachments),
                subject_key=subject,
            )
            citizen_events = [
                *before,
                *file_events,
                submitted,
                *self._guided_submitted(message, ticket, guided_end),
            ]
            try:
                # Not context.append_streams: a collision is retried with another ticket,
                # so this may append more than once (all but the last wrote nothing).
                await self.store.append_streams(
                    [
                        StreamAppend(
                            citizen,
                            [
                                event.to_new_event(
                                    event_id=context.event_id(type(event).__name__, str(attempt)),
                                    metadata=meta,
                                )
                                for event in citizen_events
                            ],
                        ),
                        StreamAppend(
                            request_stream(ticket),
                            [
                                received.to_new_event(
                                    event_id=context.event_id("RequestReceived", str(attempt)),
                                    metadata=meta,
                                    occurred_at=message.sent_at,
                                )
                            ],
                            NO_STREAM,
                        ),
                    ],
                    inbox=context.inbox,
                )
            except ConcurrencyConflictError as conflict:
                if conflict.stream_id != request_stream(ticket):
                    raise
                log.warning("ticket collision on attempt %d; trying another", attempt)
                continue
            # The ticket on the handler's span: traces are looked up by ticket.
            trace.get_current_span().set_attributes(
                {"adminduk.ticket": ticket, "adminduk.doc_type": request.doc_type.value}
            )
            return
        raise PermanentError("no free ticket after several attempts")

    async def _complain(
        self,
        context: HandlerContext,
        message: WhatsAppMessageReceived,
        complaint: Complaint,
        fetched: AttachmentStored | AttachmentRejected | None,
        before: Sequence[Event] = (),
    ) -> None:
        meta = context.metadata(actor="system:intake")
        ticket = ticket_for("ADUAN", message.message_id, self.key)
        received = ComplaintReceived(
            ticket=ticket,
            citizen=context.event.stream_id,
            phone=message.phone,
            text=complaint.text,
            related_ticket=complaint.ticket,
            message_id=message.message_id,
            received_at=message.sent_at,
        )
        submitted = ComplaintSubmitted(ticket=ticket, message_id=message.message_id)
        citizen_events: list[Event] = [*before, *([fetched] if fetched else []), submitted]
        await context.append_streams(
            [
                StreamAppend(
                    context.event.stream_id,
                    [
                        event.to_new_event(
                            event_id=context.event_id(type(event).__name__), metadata=meta
                        )
                        for event in citizen_events
                    ],
                ),
                StreamAppend(
                    complaint_stream(ticket),
                    [received.to_new_event(event_id=context.event_id("received"), metadata=meta)],
                ),
            ]
        )

    async def _correct(
        self,
        context: HandlerContext,
        message: WhatsAppMessageReceived,
        ticket: str,
        conversation: Conversation,
        fetched: AttachmentStored | AttachmentRejected | None,
        before: Sequence[Event] = (),
    ) -> None:
        """``#LENGKAPI#<ticket>`` or a file while a correction is pending: the files sent
        with it or just before it go to verification, which amends the request."""
        meta = context.metadata(actor="system:intake")
        citizen = context.event.stream_id
        files = conversation.recent_attachments(message.sent_at)
        if isinstance(fetched, AttachmentStored):
            files.append(fetched.attachment)
        status, _ = await self._status(ticket, citizen)
        answer: Event
        if status is None:
            answer = CorrectionRefused(
                phone=message.phone,
                message_id=message.message_id,
                ticket=ticket,
                reason="unknown_ticket",
            )
        elif status != "PERLU PERBAIKAN":
            answer = CorrectionRefused(
                phone=message.phone,
                message_id=message.message_id,
                ticket=ticket,
                reason="not_pending",
                status=status,
            )
        elif not files:
            answer = CorrectionRefused(
                phone=message.phone,
                message_id=message.message_id,
                ticket=ticket,
                reason="no_files",
                status=status,
            )
        else:
            answer = CorrectionSubmitted(
                phone=message.phone,
                ticket=ticket,
                message_id=message.message_id,
                attachments=tuple(files),
            )
        events: list[Event] = [*before, *([fetched] if fetched is not None else []), answer]
        await context.append(
            citizen,
            [
                event.to_new_event(
                    event_id=context.event_id(type(event).__name__, str(index)), metadata=meta
                )
                for index, event in enumerate(events)
            ],
        )

    @staticmethod
    def _guided_submitted(
        message: WhatsAppMessageReceived, ticket: str, guided_end: bool
    ) -> list[Event]:
        if not guided_end:
            return []
        return [
            GuidedEnded(
                phone=message.phone,
                message_id=message.message_id,
                reason="submitted",
                ticket=ticket,
            )
        ]

    async def _open_request(
        self, subject: str, conversation: Conversation
    ) -> tuple[str, str | None] | None:
        """The open request (ticket, status) for the same person and document, if any:
        from the status read model, or from this conversation for a request made so
        recently that the read model does not have it yet."""
        rows = await self.store.pool.fetch(
            "SELECT ticket, status FROM request_status WHERE subject_key = $1 ORDER BY received_at",
            subject,
        )
        known = {row["ticket"]: row["status"] for row in rows}
        for ticket, status in known.items():
            if status in OPEN_CITIZEN_STATUSES:
                return str(ticket), str(status)
        for ticket in conversation.tickets_for(subject):
            if ticket not in known:
                return ticket, None
        return None

    async def _pending_correction(self, citizen: str) -> str | None:
        """The citizen's request waiting for a correction, the latest if several."""
        value = await self.store.pool.fetchval(
            """
            SELECT ticket FROM request_status
            WHERE citizen = $1 AND status = 'PERLU PERBAIKAN'
            ORDER BY updated_at DESC LIMIT 1
            """,
            citizen,
        )
        return None if value is None else str(value)

    async def _status_row(self, ticket: str, citizen: str) -> asyncpg.Record | None:
        """A ticket's row of the status read model, only for the number that made it."""
        return await self.store.pool.fetchrow(
            """
            SELECT status, doc_type, promised_on FROM request_status
            WHERE ticket = $1 AND citizen = $2
            """,
            ticket,
            citizen,
        )

    async def _status(self, ticket: str, citizen: str) -> tuple[str | None, str | None]:
        """A ticket's status and document, only for the number that made the request."""
        row = await self._status_row(ticket, citizen)
        if row is None:
            return None, None
        return str(row["status"]), str(row["doc_type"])

    async def _survey_waiting(self, citizen: str) -> str | None:
        """The citizen's finished request whose survey question waits for an answer."""
        value = await self.store.pool.fetchval(
            """
            SELECT ticket FROM request_status
            WHERE citizen = $1 AND survey_pending
            ORDER BY updated_at DESC LIMIT 1
            """,
            citizen,
        )
        return None if value is None else str(value)

    async def _answer_survey(
        self, context: HandlerContext, message: WhatsAppMessageReceived
    ) -> bool:
        """A bare ``1``..``4`` (or the survey's button) after a request is done: the
        answer to its one question. False when the message is something else."""
        score = _survey_score(message)
        if score is None:
            return False
        ticket = await self._survey_waiting(context.event.stream_id)
        if ticket is None:
            return False
        stream = await self.store.read_stream(request_stream(ticket))
        if any(event.event_type == SurveyAnswered.event_type for event in stream):
            return False  # answered already (the read model has not caught up yet)
        answered = SurveyAnswered(
            ticket=ticket, phone=message.phone, message_id=message.message_id, score=score
        )
        meta = context.metadata(actor="system:intake")
        await context.append(
            request_stream(ticket),
            [answered.to_new_event(event_id=context.event_id("survey"), metadata=meta)],
        )
        return True

    async def _fetch(
        self, message: WhatsAppMessageReceived, media: MediaRef
    ) -> AttachmentStored | AttachmentRejected:
        """Download through the Cloud API's two steps, check, store. Transient failures
        raise (the consumer retries); a final failure becomes AttachmentRejected, which
        the citizen is told about."""

        def rejected(reason: str, detail: str) -> AttachmentRejected:
            return AttachmentRejected(
                phone=message.phone,
                message_id=message.message_id,
                reason=reason,  # type: ignore[arg-type]
                detail=detail,
            )

        limit = MEDIA_LIMITS[media.kind]
        try:
            info = await self.cloud.media_info(media.media_id)
            if info.file_size is not None and info.file_size > limit:
                raise MediaTooLargeError(limit)
            data = await self.cloud.download(info.url, max_bytes=limit)
        except MediaTooLargeError:
            return rejected("too_large", f"lebih dari {limit // (1024 * 1024)} MB")
        except MediaRefusedError as error:
            # A media id or download URL that is not the Cloud API's: nothing was fetched.
            log.warning("media of message %s refused: %s", message.message_id, error)
            return rejected("download_failed", "berkas tidak dapat diambil dari WhatsApp")
        except CloudApiError as error:
            if error.retryable:
                raise
            return rejected("download_failed", f"kode {error.status}")
        content_type = sniff_content_type(data)
        if content_type is None or content_type not in ACCEPTED_TYPES[media.kind]:
            return rejected("unsupported_type", "hanya foto (JPG/PNG) atau PDF")
        digest = await asyncio.to_thread(self.media.put, data)
        if not _digest_matches(media.sha256 or info.sha256, digest):
            return rejected("digest_mismatch", "berkas rusak saat dikirim")
        return AttachmentStored(
            phone=message.phone,
            attachment=Attachment(
                sha256=digest,
                content_type=content_type,
                size=len(data),
                filename=media.filename,
                message_id=message.message_id,
            ),
        )

    # -- the status read model ----------------------------------------------------------

    async def project_status(self, context: HandlerContext) -> None:
        event = context.event
        if event.event_type == SurveyAnswered.event_type:
            async with context.unit_of_work() as uow:
                await uow.connection.execute(
                    "UPDATE request_status SET survey_pending = false WHERE ticket = $1",
                    event.stream_id.removeprefix("request-"),
                )
            return
        status = citizen_status(event)
        if status is None:
            return
        decoded = context.registry.decode(event)
        async with context.unit_of_work() as uow:
            if isinstance(decoded, RequestReceived):
                received = decoded
                await uow.connection.execute(
                    """
                    INSERT INTO request_status (ticket, citizen, doc_type, kecamatan_code,
                                                status, received_at, updated_at, position,
                                                subject_key)
                    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                    ON CONFLICT (ticket) DO NOTHING
                    """,
                    received.ticket,
                    received.citizen,
                    received.doc_type,
                    received.kecamatan_code,
                    status,
                    received.received_at,
                    event.recorded_at,
                    event.position,
                    subject_key(received.doc_type, received.applicant, self.key),
                )
                return
            # Later events: only forward, so a redelivered old event cannot undo a newer one.
            await uow.connection.execute(
                """
                UPDATE request_status
                SET status = $2, updated_at = $3, position = $4,
                    promised_on = COALESCE($5, promised_on),
                    survey_pending = survey_pending OR $6
                WHERE ticket = $1 AND position < $4
                """,
                event.stream_id.removeprefix("request-"),
                status,
                event.recorded_at,
                event.position,
                _promised_on(decoded),
                status == "SELESAI",
            )


def _promised_on(event: Event) -> date | None:
    """The collection day an issuance event tells (scheduled, delayed, issued, ready)."""
    value = getattr(event, "ready_on", None) or getattr(event, "promised_on", None)
    return value if isinstance(value, date) else None


def _is_survey_reply(message: WhatsAppMessageReceived) -> bool:
    parsed = reply_ids.parse(message.reply_id)
    return parsed is not None and parsed.action == "survey"


def _survey_score(message: WhatsAppMessageReceived) -> int | None:
    """1..4 from a bare digit or the survey's reply id ``survey:<n>``."""
    if message.reply_id is not None and message.reply_id.startswith("survey:"):
        text = message.reply_id.removeprefix("survey:")
    else:
        text = (message.text or "").strip()
    return int(text) if text in {"1", "2", "3", "4"} else None


def message_subjects() -> Sequence[str]:
    return ["adminduk.events.citizen.WhatsAppMessageReceived"]
