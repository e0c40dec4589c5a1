"""Issuance's use cases: schedule verified requests, hand them to SIAK until each is issued
exactly once, keep or renew the promise, announce the ready day.

Crash safety, step by step. Scheduling appends ``IssuanceScheduled`` and inserts the work
row in one transaction. The worker leases a due row, appends ``HandedToSiak`` (an
expected-version append, so it and a citizen's cancellation cannot both succeed), then
calls SIAK with the request's idempotency key. A crash or timeout after SIAK did the work
leaves the row queued; the retry carries the same key and SIAK answers the same document
number. ``DocumentIssued`` and the row's new state commit together. While SIAK is down the
circuit breaker fails calls fast and the rows wait for its next probe instead of each
burning an attempt.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final

from opentelemetry import trace

from services.issuance.adapters import postgres as db
from services.issuance.adapters.letters import LetterContent, LetterSigner, render_letter
from services.issuance.adapters.siak import (
    Breaker,
    SiakCircuitOpenError,
    SiakPort,
    SiakReceipt,
    SiakRejectedError,
    SiakSubmission,
    SiakUnavailableError,
    retry_delay,
)
from services.issuance.domain.issuance import Issuance
from services.issuance.domain.promises import start_day
from shared.bus.consumer import HandlerContext
from shared.calendar import WorkingCalendar
from shared.contracts import (
    Attachment,
    DocumentIssued,
    IssuanceDelayed,
    IssuanceScheduled,
    registry,
    request_stream,
)
from shared.documents import DocType, document
from shared.eventstore.envelope import (
    Event,
    Metadata,
    NewEvent,
    RecordedEvent,
    deterministic_event_id,
)
from shared.eventstore.errors import ConcurrencyConflictError
from shared.eventstore.repository import Repository
from shared.eventstore.store import EventStore
from shared.mediastore import FileMediaStore
from shared.runtime.rounds import report_failed_round

log = logging.getLogger(__name__)
tracer = trace.get_tracer("adminduk.issuance")
SYSTEM: Final = "system:issuance"
WORKER: Final = "issuance-worker"


@dataclass(frozen=True)
class SiakPolicy:
    """How hard to try: calls at once, backoff between attempts of one request."""

    concurrency: int = 4
    retry_base: timedelta = timedelta(seconds=2)
    retry_max: timedelta = timedelta(minutes=5)
    lease: timedelta = timedelta(seconds=60)


@dataclass(frozen=True)
class Office:
    """What issuance says about the office: its key for SIAK, its name, its counter."""

    region_code: str
    name: str
    pickup_place: str


@dataclass
class IssuanceService:
    store: EventStore
    siak: SiakPort
    breaker: Breaker
    calendar: WorkingCalendar
    office: Office
    signer: LetterSigner
    media: FileMediaStore
    policy: SiakPolicy = field(default_factory=SiakPolicy)
    now: Callable[[], datetime] = lambda: datetime.now(UTC)
    wake: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self.issuances = Repository(self.store, registry, Issuance)

    def idempotency_key(self, ticket: str) -> str:
        """The same for every submission of one request, forever."""
        return f"adminduk-{self.office.region_code}-{ticket}"

    async def _fold(self, ticket: str) -> Issuance:
        return (await self.issuances.load(request_stream(ticket))).aggregate

    # -- consumers ---------------------------------------------------------------------------

    async def on_verified(self, context: HandlerContext) -> None:
        """Schedule the request: its promised date, and its row in the work list."""
        ticket = context.event.stream_id.removeprefix("request-")
        issuance = await self._fold(ticket)
        events = issuance.schedule(self.calendar, self.office.pickup_place)
        if not events:
            return
        (scheduled,) = events
        assert isinstance(scheduled, IssuanceScheduled)
        async with context.unit_of_work() as uow:
            await db.add(
                uow.connection,
                ticket=ticket,
                idempotency_key=self.idempotency_key(ticket),
                doc_type=issuance.doc_type,
                channel=scheduled.delivery.channel,
                promised_on=scheduled.promised_on,
                due_at=self.now(),
            )
            uow.append(
                request_stream(ticket),
                [
                    scheduled.to_new_event(
                        event_id=context.event_id("scheduled"),
                        metadata=context.metadata(actor=SYSTEM),
                    )
                ],
                issuance.version,
            )
        self.wake.set()

    async def on_closed(self, context: HandlerContext) -> None:
        """Cancelled or collected: nothing more is due for the request."""
        async with context.unit_of_work() as uow:
            await db.close(uow.connection, context.event.stream_id.removeprefix("request-"))

    # -- the SIAK worker -------------------------------------------------------------------

    async def run_worker(self, stop: asyncio.Event, idle: float = 1.0) -> None:
        """Hand due requests to SIAK until ``stop``; woken early by new schedules."""
        while not stop.is_set():
            try:
                done = await self.drain_once()
            except Exception as error:  # noqa: BLE001 - reported; the loop goes on
                report_failed_round(log, "SIAK worker round", error)
                done = 0
            if done == 0:
                self.wake.clear()
                waiters = [asyncio.create_task(stop.wait()), asyncio.create_task(self.wake.wait())]
                _, pending = await asyncio.wait(
                    waiters, timeout=idle, return_when=asyncio.FIRST_COMPLETED
                )
                for task in pending:
                    task.cancel()

    async def drain_once(self) -> int:
        """One round: lease due rows and submit them; how many were attempted."""
        if self.breaker.state == "open":
            return 0  # nobody would be let through; the rows keep their place
        due = await db.take_due(
            self.store.pool, self.now(), self.policy.concurrency * 4, self.policy.lease
        )
        gate = asyncio.Semaphore(self.policy.concurrency)

        async def one(ticket: str, attempts: int) -> None:
            async with gate:
                try:
                    await self.submit(ticket, attempts)
                except Exception as error:  # noqa: BLE001 - reported; the row stays due
                    report_failed_round(log, f"submission of {ticket}", error)

        await asyncio.gather(*(one(ticket, attempts) for ticket, attempts in due))
        return len(due)

    async def submit(self, ticket: str, attempts: int = 0) -> str:
        """Hand one request to SIAK; the outcome: issued, retry, postponed, refused, gone."""
        issuance = await self._fold(ticket)
        if not issuance.awaiting_siak:
            await self._settle(issuance)
            return "gone"
        if self.breaker.state == "open":
            await self._postpone(ticket, "SIAK circuit open")
            return "postponed"
        if issuance.idempotency_key is None and not await self._hand_over(issuance):
            return "retry"
        return await self._call_siak(issuance, attempts)

    async def _hand_over(self, issuance: Issuance) -> bool:
        """Record the hand-off before the first call; False when the request changed
        meanwhile (a cancellation won, or another worker was first)."""
        events = issuance.hand_over(self.idempotency_key(issuance.ticket))
        try:
            recorded = await self._append(issuance, events, "handed")
        except ConcurrencyConflictError:
            await db.retry_later(
                self.store.pool, issuance.ticket, self.now(), "changed", count_attempt=False
            )
            return False
        self.issuances.apply(issuance, recorded)
        return True

    async def _call_siak(self, issuance: Issuance, attempts: int) -> str:
        ticket = issuance.ticket
        assert issuance.idempotency_key is not None
        with tracer.start_as_current_span(
            "siak.submit",
            attributes={"adminduk.ticket": ticket, "adminduk.doc_type": issuance.doc_type},
        ):
            try:
                receipt = await self.siak.submit(
                    self._submission(issuance, issuance.idempotency_key)
                )
            except SiakUnavailableError as error:
                if isinstance(error, SiakCircuitOpenError) or self.breaker.state == "open":
                    # Not tried (another call is the probe), or the call that opened it.
                    await self._postpone(ticket, str(error))
                    return "postponed"
                delay = retry_delay(attempts + 1, self.policy.retry_base, self.policy.retry_max)
                await db.retry_later(self.store.pool, ticket, self.now() + delay, str(error))
                return "retry"
            except SiakRejectedError as error:
                log.warning("SIAK refused request %s: status %s", ticket, error.status)
                await self._refused(issuance, error)
                return "refused"
        await self._issued(issuance, receipt)
        return "issued"

    def _submission(self, issuance: Issuance, key: str) -> SiakSubmission:
        return SiakSubmission(
            idempotency_key=key,
            ticket=issuance.ticket,
            doc_type=DocType(issuance.doc_type),
            region_code=self.office.region_code,
            kecamatan_code=issuance.kecamatan_code,
            applicant=issuance.applicant,
        )

    async def _postpone(self, ticket: str, reason: str) -> None:
        """Wait for the breaker's next probe without spending an attempt."""
        at = self.now() + self.breaker.retry_after
        await db.retry_later(self.store.pool, ticket, at, reason, count_attempt=False)

    async def _issued(self, issuance: Issuance, receipt: SiakReceipt) -> None:
        letter = await self._letter(issuance, receipt) if issuance.electronic else None
        events = issuance.issue(
            receipt.document_number, receipt.issued_at, self.now(), self.calendar, letter
        )
        if not events:
            return
        issued = events[0]
        assert isinstance(issued, DocumentIssued)
        async with self.store.unit_of_work() as uow:
            await db.set_state(
                uow.connection,
                issuance.ticket,
                "closed" if issuance.electronic else "issued",
                document_number=receipt.document_number,
                ready_on=issued.ready_on,
            )
            uow.append(
                request_stream(issuance.ticket),
                self._new_events(issuance, events, "issued"),
                issuance.version,
            )
        log.info("request %s issued by SIAK", issuance.ticket)

    async def _refused(self, issuance: Issuance, error: SiakRejectedError) -> None:
        events = issuance.refuse(error.status, str(error))
        async with self.store.unit_of_work() as uow:
            await db.set_state(uow.connection, issuance.ticket, "failed", error=str(error))
            uow.append(
                request_stream(issuance.ticket),
                self._new_events(issuance, events, "refused"),
                issuance.version,
            )

    async def _settle(self, issuance: Issuance) -> None:
        """A leased row whose request needs SIAK no more: match the row to the log."""
        if issuance.cancelled or issuance.collected:
            state = "closed"
        elif issuance.failed:
            state = "failed"
        elif issuance.ready:
            state = "ready"
        elif issuance.document_number is not None:
            state = "issued"
        else:
            return
        await db.set_state(self.store.pool, issuance.ticket, state)

    async def _letter(self, issuance: Issuance, receipt: SiakReceipt) -> Attachment:
        """The signed PDF of a letter sent in the chat, kept in the media store."""
        applicant = issuance.applicant
        labels = (
            ("Nama", "nama"),
            ("NIK", "nik"),
            ("Nomor KK", "no_kk"),
            ("Alamat tujuan", "alamat_pindah"),
            ("Keperluan", "keperluan"),
        )
        content = LetterContent(
            document_number=receipt.document_number,
            doc_name=document(DocType(issuance.doc_type)).name,
            ticket=issuance.ticket,
            issued_on=self.now().astimezone(self.calendar.timezone).date(),
            office_name=self.office.name,
            fields=tuple(
                (label, str(applicant[name])) for label, name in labels if applicant.get(name)
            ),
        )
        pdf = await self.signer.sign(await asyncio.to_thread(render_letter, content))
        digest = await asyncio.to_thread(self.media.put, pdf)
        return Attachment(
            sha256=digest,
            content_type="application/pdf",
            size=len(pdf),
            filename=f"{issuance.doc_type}-{issuance.ticket}.pdf",
            message_id=f"letter:{issuance.ticket}",
        )

    # -- the sweeper -----------------------------------------------------------------------

    async def sweep(self) -> int:
        """Renew promises that can no longer be kept; announce documents ready today.
        Each change is an expected-version append with an id derived from what it
        changes, so replicas sweeping at once write it once."""
        now = self.now()
        changed = 0
        for row in await db.open_rows(self.store.pool, start_day(now, self.calendar)):
            issuance = await self._fold(row.ticket)
            try:
                if row.state == "queued":
                    changed += await self._renew_promise(issuance, now)
                else:
                    changed += await self._announce_ready(issuance, now)
            except ConcurrencyConflictError:
                continue  # looked at again next round
        return changed

    async def _renew_promise(self, issuance: Issuance, now: datetime) -> bool:
        events = issuance.check_promise(now, self.calendar)
        if not events:
            return False
        delayed = events[0]
        assert isinstance(delayed, IssuanceDelayed)
        assert issuance.promised_on is not None
        async with self.store.unit_of_work() as uow:
            await db.set_state(
                uow.connection,
                issuance.ticket,
                "queued",
                promised_on=delayed.promised_on,
            )
            uow.append(
                request_stream(issuance.ticket),
                self._new_events(issuance, events, "delayed", issuance.promised_on.isoformat()),
                issuance.version,
            )
        log.info("promise of %s renewed: SIAK has not issued it in time", issuance.ticket)
        return True

    async def _announce_ready(self, issuance: Issuance, now: datetime) -> bool:
        events = issuance.announce_ready(now, self.calendar)
        if not events:
            if issuance.collected or issuance.ready:
                await self._settle(issuance)
            return False
        async with self.store.unit_of_work() as uow:
            await db.set_state(uow.connection, issuance.ticket, "ready")
            uow.append(
                request_stream(issuance.ticket),
                self._new_events(issuance, events, "ready"),
                issuance.version,
            )
        return True

    def _new_events(
        self, issuance: Issuance, events: Sequence[Event], step: str, *parts: str
    ) -> list[NewEvent]:
        return [
            event.to_new_event(
                event_id=deterministic_event_id(WORKER, issuance.ticket, step, *parts, str(i)),
                metadata=Metadata(actor=SYSTEM),
            )
            for i, event in enumerate(events)
        ]

    async def _append(
        self, issuance: Issuance, events: Sequence[Event], step: str
    ) -> Sequence[RecordedEvent]:
        result = await self.store.append(
            request_stream(issuance.ticket),
            self._new_events(issuance, events, step),
            issuance.version,
        )
        return result.events
