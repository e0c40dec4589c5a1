"""Verification's use cases: the automatic checks, corrections, the read models, the
sweeper that expires idle claims, and the officers' desk behind the console and the API.

Every decision follows one path: read the stream, fold the aggregate, let it decide,
append with the version it decided on. A concurrent decision therefore fails on the
expected version instead of overwriting, and is answered 409 (officers) or retried on
the fresh state (consumers).
"""

from __future__ import annotations

import copy
import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Final

from opentelemetry import metrics, propagate, trace
from opentelemetry.trace import Link

from services.verification.adapters import postgres as db
from services.verification.cli import check_scope
from services.verification.domain.accounts import (
    UnknownOfficerError,
    is_officer_id,
    kecamatan_codes,
    officer_name,
    require_assignable,
    require_covers,
    require_other_account,
)
from services.verification.domain.checks import (
    JAKARTA,
    CheckPolicy,
    ready_for_checks,
    run_checks,
)
from services.verification.domain.complaint import Complaint
from services.verification.domain.officers import NotAllowedError, OfficerAccount, Role
from services.verification.domain.request import (
    FINAL_STATES,
    OPEN_STATES,
    InvalidDecisionError,
    InvalidTransitionError,
    Officer,
    Request,
    State,
)
from shared.bus.consumer import HandlerContext
from shared.calendar import WorkingCalendar
from shared.contracts import (
    CancellationRefused,
    CancellationRequested,
    CorrectionRefused,
    CorrectionSubmitted,
    citizen_status_of,
    complaint_stream,
    registry,
    request_stream,
    subject_key,
)
from shared.documents import DocType, document
from shared.eventstore.envelope import Event, Metadata, RecordedEvent, deterministic_event_id
from shared.eventstore.errors import ConcurrencyConflictError
from shared.eventstore.repository import Repository
from shared.eventstore.store import EventStore
from shared.figures import DeliveryFigures
from shared.identity import OfficeArea
from shared.mediastore import FileMediaStore

log = logging.getLogger(__name__)
tracer = trace.get_tracer("adminduk.verification")
CHECKS_CONSUMER: Final = "verification-checks"
SYSTEM: Final = "system:verification"
METER: Final = "adminduk.verification"
# From a minute to two weeks: officers answer within minutes on a good day and within
# days on a bad one (the field studies' main complaint).
LATENCY_BUCKETS: Final = (
    60.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0, 14400.0, 28800.0,
    86400.0, 172800.0, 345600.0, 604800.0, 1209600.0,
)  # fmt: skip


class UnknownTicketError(LookupError):
    """No request or complaint with this ticket (the API answers 404)."""


class ConflictError(Exception):
    """Someone else changed the request at the same moment (the API answers 409)."""


# -- helpers ------------------------------------------------------------------------------


def _new_events(
    events: Sequence[Event], metadata: Metadata, ids: Callable[[int], uuid.UUID]
) -> list[Any]:
    return [
        event.to_new_event(event_id=ids(i), metadata=metadata) for i, event in enumerate(events)
    ]


def _link_to(recorded: RecordedEvent | None) -> list[Link]:
    """A link to the trace the request arrived in: an officer acts hours later, in a trace
    of their own."""
    if recorded is None or not recorded.metadata.trace:
        return []
    span_context = trace.get_current_span(
        propagate.extract(dict(recorded.metadata.trace))
    ).get_span_context()
    return [Link(span_context)] if span_context.is_valid else []


@dataclass
class Verification:
    """The consumers' side: checks, corrections, read models, and the sweeper."""

    store: EventStore
    policy: CheckPolicy
    key: bytes
    claim_idle: timedelta
    now: Callable[[], datetime] = lambda: datetime.now(UTC)

    def __post_init__(self) -> None:
        self.requests = Repository(self.store, registry, Request)
        self.complaints = Repository(self.store, registry, Complaint)

    def subject_key(self, request: Request) -> str | None:
        return subject_key(request.doc_type, request.applicant, self.key)

    # -- automatic checks --------------------------------------------------------------------

    async def on_request_event(self, context: HandlerContext) -> None:
        """After a request arrives, gains a file, or is amended: check it when it is ready."""
        event = context.event
        if event.stream_version == 1 and not ready_for_checks(
            self.requests.fold([event]), self.policy, self.now()
        ):
            # Just received and waiting for its papers (most requests): its files, or the
            # sweeper once the grace period is over, bring it back; nothing to read now.
            return
        await self.check(event.stream_id, context)

    async def check(self, stream_id: str, context: HandlerContext | None = None) -> bool:
        """Run the automatic checks if the request waits for them; True when it was done.

        The events' ids derive from the request's version, so the consumer and the
        sweeper reaching the same decision write it once."""
        loaded = await self.requests.load(stream_id)
        request = loaded.aggregate
        if not ready_for_checks(request, self.policy, self.now()):
            return False
        assert request.received_at is not None
        subject = self.subject_key(request)
        received_on = request.received_at.astimezone(JAKARTA).date()
        uow_factory = context.unit_of_work if context is not None else self.store.unit_of_work
        async with uow_factory() as uow:
            duplicate_of = None
            if subject is not None and request.check_round == 0:
                # One checker at a time per person: of two requests checked at once, the
                # second sees the first and is the duplicate.
                await uow.connection.execute(
                    "SELECT pg_advisory_xact_lock(hashtextextended($1, 7))", subject
                )
                await db.project_request(uow.connection, request, 0, subject)
                duplicate_of = await db.open_duplicate(uow.connection, subject, request.ticket)
            events = request.record_checks(
                run_checks(request, self.policy, received_on, duplicate_of)
            )
            metadata = Metadata(
                correlation_id=context.event.metadata.correlation_id if context else None,
                causation_id=context.event.event_id if context else None,
                actor=SYSTEM,
            )
            self.requests.stage(
                uow,
                loaded,
                _new_events(
                    events,
                    metadata,
                    lambda i: deterministic_event_id(
                        CHECKS_CONSUMER, stream_id, str(loaded.version), str(i)
                    ),
                ),
            )
        return True

    # -- corrections --------------------------------------------------------------------------

    async def on_correction(self, context: HandlerContext) -> None:
        if context.event.erased:
            return  # the citizen's data (and files) were erased before it was handled
        submitted = context.decode(CorrectionSubmitted)
        loaded = await self.requests.load(request_stream(submitted.ticket))
        request = loaded.aggregate
        meta = context.metadata(actor=SYSTEM)
        try:
            events = request.amend(submitted.message_id, submitted.attachments)
        except InvalidTransitionError:
            # Intake let it through on a status that changed meanwhile: tell the citizen.
            refused = CorrectionRefused(
                phone=submitted.phone,
                message_id=submitted.message_id,
                ticket=submitted.ticket,
                reason="not_pending",
            )
            await context.append(
                context.event.stream_id,
                [refused.to_new_event(event_id=context.event_id("refused"), metadata=meta)],
            )
            return
        await self.requests.append(
            loaded,
            _new_events(events, meta, lambda i: context.event_id("amended", str(i))),
            via=context,
        )

    # -- cancellations ------------------------------------------------------------------------

    async def on_cancellation(self, context: HandlerContext) -> None:
        """``#BATAL#``: cancel the request if it has not gone to SIAK, else explain why not."""
        if context.event.erased:
            return  # whose number asked can no longer be told: nothing is decided
        asked = context.decode(CancellationRequested)
        loaded = await self.requests.load(request_stream(asked.ticket))
        request = loaded.aggregate
        meta = context.metadata(actor=SYSTEM)
        if request.phone != asked.phone:
            # Intake knew the ticket from the conversation; the stream must agree.
            refusal = "unknown_ticket"
        else:
            try:
                cancelled = request.cancel()
            except InvalidTransitionError:
                refusal = "not_cancellable"
            else:
                # Expected version: losing to the SIAK hand-off raises, and the retry
                # (on the fresh state) explains the refusal instead.
                await self.requests.append(
                    loaded,
                    _new_events(cancelled, meta, lambda i: context.event_id("cancelled", str(i))),
                    via=context,
                )
                return
        refused = CancellationRefused(
            phone=asked.phone,
            message_id=asked.message_id,
            ticket=asked.ticket,
            reason=refusal,  # type: ignore[arg-type]
            status=citizen_status_of(loaded.events) if refusal == "not_cancellable" else None,
        )
        await context.append(
            context.event.stream_id,
            [refused.to_new_event(event_id=context.event_id("refused"), metadata=meta)],
        )

    # -- read models -------------------------------------------------------------------------

    async def project(self, context: HandlerContext) -> None:
        """Write the row of the stream as it stands now. Its ``position`` is that of the
        last event folded (not of the event being handled, which may be older): a row is
        then a function of the log alone, so a rebuild gives the same table as the live
        consumer, however far the stream had grown when each event was handled."""
        # The stream is read before the unit of work opens: a handler that holds its
        # transaction's connection while it waits for another starves the pool when many
        # streams arrive at once (each holding one, all waiting for one more).
        events = await self.store.read_stream(context.event.stream_id)
        async with context.unit_of_work() as uow:
            await self._write_row(uow.connection, events)

    async def project_many(self, contexts: Sequence[HandlerContext]) -> None:
        """:meth:`project` for a batch in its shared transaction: every stream of the batch
        read with one statement on the batch's connection, each row written once."""
        connection = None
        for context in contexts:
            async with context.unit_of_work() as uow:  # the batch's: records the receipt
                connection = uow.connection
        assert connection is not None
        streams = dict.fromkeys(context.event.stream_id for context in contexts)
        history = await self.store.read_streams(list(streams), connection=connection)
        for events in history.values():
            await self._write_row(connection, events)

    async def _write_row(self, connection: db.Connection, events: list[RecordedEvent]) -> None:
        """The read-model row of a request or complaint stream, from its whole history."""
        if not events:
            return
        position, category = events[-1].position, events[-1].category
        if category == "request":
            request = self.requests.fold(events)
            if request.state != State.NEW:
                await db.project_request(connection, request, position, self.subject_key(request))
        elif category == "complaint":
            complaint = self.complaints.fold(events)
            if complaint.ticket:
                kecamatan = await db.kecamatan_of(connection, complaint.related_ticket)
                await db.project_complaint(connection, complaint, kecamatan, position)

    async def kecamatan_of(self, ticket: str | None) -> str | None:
        """The kecamatan of a request, from the queue's read model (None if unknown)."""
        return await db.kecamatan_of(self.store.pool, ticket)

    # -- the sweeper -------------------------------------------------------------------------

    async def sweep(self) -> int:
        """Check requests whose grace period for files is over; release idle claims.
        Safe with several replicas: each change is an expected-version append."""
        now = self.now()
        stale = await db.stale_requests(
            self.store.pool,
            received_before=now - self.policy.papers_grace,
            claimed_before=now - self.claim_idle,
        )
        done = 0
        for ticket, state in stale:
            try:
                if state == State.RECEIVED.value:
                    done += await self.check(request_stream(ticket))
                else:
                    done += await self._expire_claim(ticket, now)
            except ConcurrencyConflictError:
                continue  # someone acted at the same moment; looked at again next round
        return done

    async def _expire_claim(self, ticket: str, now: datetime) -> bool:
        loaded = await self.requests.load(request_stream(ticket))
        request = loaded.aggregate
        if (
            request.state != State.CLAIMED
            or request.claimed_at is None
            or now - request.claimed_at < self.claim_idle
        ):
            return False
        holder = Officer(id=request.claimed_by or "", name=request.claimed_by_name or "")
        events = request.release(holder, expired=True)
        recorded = await self.requests.append(
            loaded,
            _new_events(
                events,
                Metadata(actor=SYSTEM),
                lambda i: deterministic_event_id(
                    "verification-expiry", ticket, str(loaded.version), str(i)
                ),
            ),
        )
        await self.project_appended(request, recorded.events)
        log.info("claim on %s expired after %s idle", ticket, self.claim_idle)
        return True

    async def project_appended(
        self, request: Request, appended: Sequence[RecordedEvent]
    ) -> Request:
        """Apply what was just appended to ``request`` and write its read-model row now, so
        the officer who acted sees the result without waiting for the projection consumer
        (which writes the same row again, harmlessly)."""
        self.requests.apply(request, appended)
        position = appended[-1].position if appended else 0
        async with self.store.pool.acquire() as connection:
            await db.project_request(connection, request, position, self.subject_key(request))
        return request


# -- the officers' desk ----------------------------------------------------------------------


@dataclass(frozen=True)
class Badge:
    """How a request stands against its promise: ``ok``, ``at_risk`` (half of the promised
    working time spent waiting for an officer) or ``late``."""

    level: str
    waited_working: timedelta
    waited_wall: timedelta
    promised_working: timedelta


@dataclass(frozen=True)
class QueueItem:
    ticket: str
    doc_type: str
    doc_name: str
    kecamatan_code: str | None
    kecamatan_name: str | None
    state: str
    flags: list[dict[str, Any]]
    attachments: int
    claimed_by: str | None
    claimed_by_name: str | None
    returned_to_me: bool
    received_at: datetime
    badge: Badge


@dataclass(frozen=True)
class HistoryEntry:
    position: int
    type: str
    at: datetime
    actor: str | None
    data: dict[str, Any]
    erased: bool = False
    """The citizen's personal data in it was erased (placeholders in ``data``)."""


@dataclass(frozen=True)
class RequestDetail:
    request: Request
    item: QueueItem
    history: list[HistoryEntry]
    kecamatan_name: str | None
    personal_data_erased: bool = False
    """The applicant's data was erased (``adminduk citizens erase``): the facts remain."""


@dataclass(frozen=True)
class KecamatanBacklog:
    kecamatan_code: str | None
    kecamatan_name: str | None
    waiting: int
    claimed: int
    changes_requested: int
    at_risk: int
    late: int
    oldest_waiting_working: timedelta
    mean_waiting_working: timedelta


@dataclass
class Desk:
    """What officers do and see, whatever the screen (console or API). Every method takes
    the acting officer's account and checks role and scope first."""

    store: EventStore
    officers: db.Officers
    verification: Verification
    calendar: WorkingCalendar
    media: FileMediaStore
    area: OfficeArea
    meter: metrics.Meter | None = None
    delivery: DeliveryFigures | None = None
    """Notify's answer to which messages concern a request (its outbox is its own); without
    it a request's history shows no messages."""

    def __post_init__(self) -> None:
        self.kecamatan_names = {k.code: k.name for k in self.area.kecamatan()}
        meter = self.meter or metrics.get_meter(METER)
        self.response_time = meter.create_histogram(
            "adminduk.admin.response_time",
            unit="s",
            description=(
                "Time from a request's receipt to the first officer action (step=first_action)"
                " and to the final decision (step=decision), in wall time and in the office's"
                " working time (clock=wall|working)"
            ),
            explicit_bucket_boundaries_advisory=LATENCY_BUCKETS,
        )

    # -- queries -------------------------------------------------------------------------

    async def list_requests(
        self,
        officer: OfficerAccount,
        *,
        states: Sequence[str] | None = None,
        kecamatan: str | None = None,
        doc_type: str | None = None,
        limit: int = 200,
    ) -> list[QueueItem]:
        """Requests in the officer's scope, oldest first; those sent back to this officer
        after a correction come first."""
        wanted = list(states) if states else sorted(s.value for s in OPEN_STATES)
        scope = None if officer.office_wide else list(officer.kecamatan)
        if kecamatan is not None:
            if not officer.covers(kecamatan):
                raise NotAllowedError(f"kecamatan {kecamatan} is outside the officer's scope")
            scope = [kecamatan]
        rows = await db.queue_rows(
            self.store.pool, states=wanted, kecamatan=scope, doc_type=doc_type, limit=limit
        )
        now = datetime.now(UTC)
        items = [self._item(row, officer, now) for row in rows]
        # Stable: oldest first within each group.
        items.sort(key=lambda item: not item.returned_to_me)
        return items

    def _item(self, row: db.QueueRow, officer: OfficerAccount, now: datetime) -> QueueItem:
        return QueueItem(
            ticket=row.ticket,
            doc_type=row.doc_type,
            doc_name=document(DocType(row.doc_type)).name,
            kecamatan_code=row.kecamatan_code,
            kecamatan_name=self.kecamatan_names.get(row.kecamatan_code or ""),
            state=row.state,
            flags=row.flags,
            attachments=row.attachments,
            claimed_by=row.claimed_by,
            claimed_by_name=row.claimed_by_name,
            returned_to_me=row.returned_to == officer.id
            and row.state in {State.IN_QUEUE.value, State.AMENDED.value},
            received_at=row.received_at,
            badge=self.badge(row.doc_type, row.received_at, row.decided_at or now),
        )

    def badge(self, doc_type: str, received_at: datetime, until: datetime) -> Badge:
        office = self.calendar.hours
        day = datetime.combine(date.min, office.closes) - datetime.combine(date.min, office.opens)
        promised = day * document(DocType(doc_type)).turnaround_working_days
        waited = self.calendar.working_time_between(received_at, until)
        level = "late" if waited >= promised else "at_risk" if waited * 2 >= promised else "ok"
        return Badge(level, waited, until - received_at, promised)

    async def detail(self, officer: OfficerAccount, ticket: str) -> RequestDetail:
        loaded = await self.verification.requests.load(request_stream(ticket))
        events, request = loaded.events, loaded.aggregate
        if not events:
            raise UnknownTicketError(ticket)
        officer.require_scope(request.kecamatan_code)
        row = db.QueueRow(
            ticket=request.ticket,
            doc_type=request.doc_type,
            kecamatan_code=request.kecamatan_code,
            state=request.state.value,
            flags=[flag.model_dump(mode="json") for flag in request.flags],
            attachments=len(request.attachments),
            claimed_by=request.claimed_by,
            claimed_by_name=request.claimed_by_name,
            claimed_at=request.claimed_at,
            returned_to=request.returned_to,
            received_at=request.received_at or events[0].recorded_at,
            amended_at=request.amended_at,
            first_action_at=request.first_officer_action_at,
            decided_at=request.decided_at,
        )
        history = [
            HistoryEntry(
                position=event.position,
                type=event.event_type,
                at=event.recorded_at,
                actor=event.metadata.actor,
                data=_public_history_data(event),
                erased=event.erased,
            )
            for event in sorted(
                [*events, *await self._messages_about(ticket)], key=lambda e: e.position
            )
        ]
        return RequestDetail(
            request=request,
            item=self._item(row, officer, datetime.now(UTC)),
            history=history,
            kecamatan_name=self.kecamatan_names.get(request.kecamatan_code or ""),
            personal_data_erased=events[0].erased,
        )

    async def _messages_about(self, ticket: str) -> list[RecordedEvent]:
        """What became of the WhatsApp messages about ``ticket``: sent (free-form or as a
        template), delivered, read, failed and why. Notify says which messages concern the
        ticket; their streams in the event store say what became of them."""
        if self.delivery is None:
            return []
        found: list[RecordedEvent] = []
        for notification in await self.delivery.notifications_about(ticket):
            stream = await self.store.read_stream(f"notification-{notification}")
            found.extend(event for event in stream if event.event_type in MESSAGE_OUTCOMES)
        return found

    async def attachment(
        self, officer: OfficerAccount, ticket: str, sha256: str
    ) -> tuple[Path, str]:
        """The stored file of one of the request's attachments, and its content type."""
        request = (await self.detail(officer, ticket)).request
        for attachment in request.attachments:
            if attachment.sha256 == sha256:
                return self.media.path(sha256), attachment.content_type
        raise UnknownTicketError(f"{ticket}/{sha256}")

    async def backlog(self, officer: OfficerAccount) -> list[KecamatanBacklog]:
        """Per kecamatan: what waits, how long, and how much is at risk (supervisors)."""
        officer.require_office_wide("the backlog")
        items = await self.list_requests(officer, limit=10_000)
        by_kecamatan: dict[str | None, list[QueueItem]] = {}
        for item in items:
            by_kecamatan.setdefault(item.kecamatan_code, []).append(item)
        report = []
        for code, group in sorted(by_kecamatan.items(), key=lambda kv: kv[0] or ""):
            waiting = [i for i in group if i.state in {"in_queue", "received", "amended"}]
            waits = [i.badge.waited_working for i in waiting] or [timedelta(0)]
            report.append(
                KecamatanBacklog(
                    kecamatan_code=code,
                    kecamatan_name=self.kecamatan_names.get(code or ""),
                    waiting=len(waiting),
                    claimed=sum(i.state == "claimed" for i in group),
                    changes_requested=sum(i.state == "changes_requested" for i in group),
                    at_risk=sum(i.badge.level == "at_risk" for i in group),
                    late=sum(i.badge.level == "late" for i in group),
                    oldest_waiting_working=max(waits),
                    mean_waiting_working=sum(waits, timedelta(0)) / len(waits),
                )
            )
        return report

    # -- decisions -----------------------------------------------------------------------

    async def claim(self, officer: OfficerAccount, ticket: str) -> Request:
        return await self._decide(officer, ticket, "claim", lambda r: r.claim(officer.officer))

    async def release(self, officer: OfficerAccount, ticket: str) -> Request:
        return await self._decide(officer, ticket, "release", lambda r: r.release(officer.officer))

    async def assign(self, officer: OfficerAccount, ticket: str, to_officer_id: str) -> Request:
        """A supervisor hands the request to another officer, who must exist
        (:class:`UnknownOfficerError`), be active (:class:`OfficerDisabledError`) and cover
        the request's kecamatan (:class:`AssigneeOutOfScopeError`)."""
        officer.require_office_wide("assigning requests")
        found = await self.officers.get(to_officer_id) if is_officer_id(to_officer_id) else None
        target = require_assignable(found, to_officer_id)

        def decide(request: Request) -> list[Event]:
            require_covers(target, request.kecamatan_code)
            return request.claim(target.officer, by=officer.officer)

        return await self._decide(officer, ticket, "assign", decide)

    async def approve(self, officer: OfficerAccount, ticket: str) -> Request:
        return await self._decide(officer, ticket, "approve", lambda r: r.approve(officer.officer))

    async def request_changes(
        self, officer: OfficerAccount, ticket: str, reasons: Sequence[str]
    ) -> Request:
        return await self._decide(
            officer,
            ticket,
            "request_changes",
            lambda r: r.request_changes(officer.officer, reasons),
        )

    async def reject(self, officer: OfficerAccount, ticket: str, reason: str) -> Request:
        return await self._decide(
            officer, ticket, "reject", lambda r: r.reject(officer.officer, reason)
        )

    async def collected(self, officer: OfficerAccount, ticket: str) -> Request:
        """The citizen picked the document up at the counter."""
        return await self._decide(
            officer, ticket, "collected", lambda r: r.collect(officer.officer)
        )

    async def _decide(
        self,
        officer: OfficerAccount,
        ticket: str,
        action: str,
        decide: Callable[[Request], list[Event]],
    ) -> Request:
        loaded = await self.verification.requests.load(request_stream(ticket))
        events, request = loaded.events, loaded.aggregate
        if not events:
            raise UnknownTicketError(ticket)
        officer.require_scope(request.kecamatan_code)
        with tracer.start_as_current_span(
            f"officer {action}",
            links=_link_to(events[0]),
            attributes={
                "adminduk.ticket": ticket,
                "adminduk.doc_type": request.doc_type,
                "adminduk.kecamatan": request.kecamatan_code or "",
                "adminduk.officer.id": officer.id,
            },
        ):
            new = decide(request)
            if not new:
                return request
            metadata = Metadata(
                correlation_id=events[0].metadata.correlation_id or events[0].event_id,
                causation_id=events[-1].event_id,
                trace=_carrier(),
                actor=f"officer:{officer.id}",
            )
            try:
                result = await self.verification.requests.append(
                    loaded, _new_events(new, metadata, lambda _: uuid.uuid4())
                )
            except ConcurrencyConflictError as conflict:
                raise ConflictError(f"request {ticket} changed meanwhile; reload it") from conflict
            before = copy.copy(request)
            after = await self.verification.project_appended(request, result.events)
            self._measure(before, after)
            return after

    def _measure(self, before: Request, after: Request) -> None:
        """Admin response time, emitted as the officer acts (a replay emits nothing)."""
        if after.received_at is None:
            return
        attributes = {
            "adminduk.doc_type": after.doc_type,
            "adminduk.kecamatan": after.kecamatan_code or "unknown",
        }
        steps = []
        if before.first_officer_action_at is None and after.first_officer_action_at is not None:
            steps.append(("first_action", after.first_officer_action_at))
        if before.state not in FINAL_STATES and after.state in {State.VERIFIED, State.REJECTED}:
            assert after.decided_at is not None
            steps.append(("decision", after.decided_at))
        span = trace.get_current_span()
        for step, at in steps:
            wall = (at - after.received_at).total_seconds()
            working = self.calendar.working_time_between(after.received_at, at).total_seconds()
            self.response_time.record(wall, {**attributes, "step": step, "clock": "wall"})
            self.response_time.record(working, {**attributes, "step": step, "clock": "working"})
            span.set_attribute(f"adminduk.{step}.wall_seconds", wall)
            span.set_attribute(f"adminduk.{step}.working_seconds", working)

    # -- complaints ----------------------------------------------------------------------

    async def list_complaints(
        self, officer: OfficerAccount, *, state: str | None = "open", limit: int = 200
    ) -> list[db.ComplaintRow]:
        scope = None if officer.office_wide else list(officer.kecamatan)
        return await db.complaint_rows(self.store.pool, state=state, kecamatan=scope, limit=limit)

    async def complaint(self, officer: OfficerAccount, ticket: str) -> Complaint:
        complaint = (await self.verification.complaints.load(complaint_stream(ticket))).aggregate
        if not complaint.ticket:
            raise UnknownTicketError(ticket)
        await self._require_complaint_scope(officer, complaint)
        return complaint

    async def answer_complaint(
        self, officer: OfficerAccount, ticket: str, answer: str
    ) -> Complaint:
        complaints = self.verification.complaints
        loaded = await complaints.load(complaint_stream(ticket))
        events, complaint = loaded.events, loaded.aggregate
        if not complaint.ticket:
            raise UnknownTicketError(ticket)
        await self._require_complaint_scope(officer, complaint)
        new = complaint.answer_with(officer.officer, answer)
        metadata = Metadata(
            correlation_id=events[0].metadata.correlation_id or events[0].event_id,
            causation_id=events[-1].event_id,
            trace=_carrier(),
            actor=f"officer:{officer.id}",
        )
        try:
            result = await complaints.append(
                loaded, _new_events(new, metadata, lambda _: uuid.uuid4())
            )
        except ConcurrencyConflictError as conflict:
            raise ConflictError(f"complaint {ticket} changed meanwhile") from conflict
        complaints.apply(complaint, result.events)
        kecamatan = await self.verification.kecamatan_of(complaint.related_ticket)
        async with self.store.pool.acquire() as connection:
            await db.project_complaint(connection, complaint, kecamatan, result.last_position or 0)
        return complaint

    async def _require_complaint_scope(self, officer: OfficerAccount, complaint: Complaint) -> None:
        if officer.office_wide or complaint.related_ticket is None:
            return
        kecamatan = await self.verification.kecamatan_of(complaint.related_ticket)
        if not officer.covers_complaint(complaint.related_ticket, kecamatan):
            raise NotAllowedError(
                f"officer {officer.id} does not cover the request of complaint {complaint.ticket}"
            )

    # -- officers -----------------------------------------------------------------------

    async def add_officer(
        self, officer: OfficerAccount, name: str, role: Role, kecamatan: Sequence[str]
    ) -> tuple[OfficerAccount, str]:
        """A new account and its token (shown once). The name is stored with single
        spaces; each kecamatan once; an operator needs at least one."""
        officer.require_admin("adding officers")
        name = officer_name(name)
        codes = kecamatan_codes(kecamatan)
        if (problem := check_scope(role, codes, self.area)) is not None:
            raise InvalidDecisionError(problem)
        return await self.officers.add(name, role, codes, created_by=officer.id)

    async def list_officers(self, officer: OfficerAccount) -> list[OfficerAccount]:
        officer.require_office_wide("the list of officers")
        return await self.officers.list()

    async def set_officer_disabled(
        self, officer: OfficerAccount, officer_id: str, disabled: bool
    ) -> None:
        """Lock an officer out (or let them back in); never one's own account
        (:class:`OwnAccountError`), never an unknown one (:class:`UnknownOfficerError`)."""
        require_other_account(officer, officer_id)
        officer.require_admin("disabling officers")
        if not is_officer_id(officer_id) or not await self.officers.set_disabled(
            officer_id, disabled
        ):
            raise UnknownOfficerError(officer_id)


def _carrier() -> dict[str, str]:
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


# What an officer's screen shows of each event: the facts, with the citizen's number
# (which officers never need) left out.
_HIDDEN_FIELDS: Final = frozenset({"phone", "citizen", "to", "message", "wamid"})
MESSAGE_OUTCOMES: Final = frozenset(
    {"NotificationSent", "NotificationFailed", "NotificationStatusChanged"}
)


def _public_history_data(event: RecordedEvent) -> dict[str, Any]:
    return {key: value for key, value in event.data.items() if key not in _HIDDEN_FIELDS}
