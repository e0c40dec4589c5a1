"""Issuance's view of one request, folded from the request stream, and its decisions.

Issuance starts where verification ends (``RequestVerified``) and owns what follows::

    verified ─schedule─▶ scheduled ─hand over─▶ with SIAK ─issue─▶ issued ─ready─▶ ready
                              │  ▲                  │   └─(letter in the chat: done at once)
                              └──┴─delay (new date) ┘   └─refused─▶ failed

The request can be cancelled by the citizen until it is handed to SIAK, and collected
(recorded by an officer) once issued; both are verification's events, read here only to
stop. Every decision returns the events it causes, or nothing when there is nothing to do
(a repeated or outdated call); the caller appends them with :attr:`Issuance.version`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from services.issuance.domain.promises import delayed_day, is_ready, promised_day
from shared.calendar import WorkingCalendar
from shared.contracts import (
    Attachment,
    Delivery,
    DocumentCollected,
    DocumentIssued,
    DocumentReady,
    HandedToSiak,
    IssuanceDelayed,
    IssuanceFailed,
    IssuanceScheduled,
    RequestCancelled,
    RequestReceived,
    RequestVerified,
)
from shared.documents import DocType, KtpReason, document
from shared.eventstore.envelope import Decoded, Event, RecordedEvent


@dataclass
class Issuance:
    ticket: str = ""
    version: int = 0
    doc_type: str = ""
    phone: str = ""
    kecamatan_code: str | None = None
    applicant: dict[str, Any] = field(default_factory=dict)
    verified_at: datetime | None = None
    cancelled: bool = False
    promised_on: date | None = None
    delivery: Delivery | None = None
    idempotency_key: str | None = None
    failed: bool = False
    document_number: str | None = None
    ready_on: date | None = None
    ready: bool = False
    collected: bool = False

    @classmethod
    def fold(cls, events: Iterable[Decoded]) -> Issuance:
        issuance = cls()
        for recorded, event in events:
            issuance.apply(recorded, event)
        return issuance

    def apply(self, recorded: RecordedEvent, event: Event) -> None:
        self.version = recorded.stream_version
        match event:
            case RequestReceived() as received:
                self.ticket, self.doc_type, self.phone = (
                    received.ticket,
                    received.doc_type,
                    received.phone,
                )
                self.kecamatan_code = received.kecamatan_code
                self.applicant = dict(received.applicant)
            case RequestVerified():
                # When the officer decided (the desk's clock), not when this was read.
                self.verified_at = recorded.occurred_at
            case RequestCancelled():
                self.cancelled = True
            case IssuanceScheduled() as scheduled:
                self.promised_on, self.delivery = scheduled.promised_on, scheduled.delivery
            case HandedToSiak() as handed:
                self.idempotency_key = handed.idempotency_key
            case IssuanceDelayed() as delayed:
                self.promised_on = delayed.promised_on
            case IssuanceFailed():
                self.failed = True
            case DocumentIssued() as issued:
                self.document_number, self.ready_on = issued.document_number, issued.ready_on
                self.collected = issued.delivery.channel == "whatsapp"
            case DocumentReady():
                self.ready = True
            case DocumentCollected():
                self.collected = True
            case _:
                pass

    # -- questions --------------------------------------------------------------------------

    @property
    def electronic(self) -> bool:
        return self.delivery is not None and self.delivery.channel == "whatsapp"

    @property
    def awaiting_siak(self) -> bool:
        """Scheduled, not yet issued, and still wanted."""
        return (
            self.promised_on is not None
            and self.document_number is None
            and not self.cancelled
            and not self.failed
        )

    @property
    def ktp_reason(self) -> KtpReason | None:
        reason = self.applicant.get("reason")
        return KtpReason(reason) if reason in set(KtpReason) else None

    # -- decisions --------------------------------------------------------------------------

    def schedule(self, calendar: WorkingCalendar, place: str) -> list[Event]:
        """The promised date, once the request is verified."""
        if self.verified_at is None or self.promised_on is not None or self.cancelled:
            return []
        spec = document(DocType(self.doc_type))
        if spec.electronic:
            delivery = Delivery(channel="whatsapp")
        else:
            delivery = Delivery(
                channel="office", place=place, bring=spec.collect_with_for(self.ktp_reason)
            )
        return [
            IssuanceScheduled(
                ticket=self.ticket,
                doc_type=self.doc_type,
                phone=self.phone,
                promised_on=promised_day(self.doc_type, self.verified_at, calendar),
                working_days=spec.turnaround_working_days,
                delivery=delivery,
            )
        ]

    def hand_over(self, idempotency_key: str) -> list[Event]:
        """Mark the first submission to SIAK (after it, no cancellation)."""
        if not self.awaiting_siak or self.idempotency_key is not None:
            return []
        return [HandedToSiak(ticket=self.ticket, idempotency_key=idempotency_key)]

    def issue(
        self,
        document_number: str,
        issued_at: datetime,
        now: datetime,
        calendar: WorkingCalendar,
        letter: Attachment | None = None,
    ) -> list[Event]:
        """SIAK answered (``issued_at`` by its clock) with the document's number; production
        counts from ``now``, when the office learns of it."""
        if self.idempotency_key is None or self.document_number is not None:
            return []
        assert self.delivery is not None
        ready_on = (
            now.astimezone(calendar.timezone).date()
            if self.electronic
            else promised_day(self.doc_type, now, calendar)
        )
        return [
            DocumentIssued(
                ticket=self.ticket,
                doc_type=self.doc_type,
                phone=self.phone,
                document_number=document_number,
                issued_at=issued_at,
                ready_on=ready_on,
                delivery=self.delivery,
                letter=letter,
            )
        ]

    def refuse(self, status: int | None, message: str) -> list[Event]:
        """SIAK refused the submission for good."""
        if not self.awaiting_siak:
            return []
        return [IssuanceFailed(ticket=self.ticket, status=status, message=message[:500])]

    def check_promise(self, now: datetime, calendar: WorkingCalendar) -> list[Event]:
        """A new date when the promised one can no longer be kept."""
        if not self.awaiting_siak:
            return []
        assert self.promised_on is not None
        new_date = delayed_day(self.doc_type, self.promised_on, now, calendar)
        if new_date is None:
            return []
        return [
            IssuanceDelayed(
                ticket=self.ticket,
                doc_type=self.doc_type,
                phone=self.phone,
                previous_date=self.promised_on,
                promised_on=new_date,
                reason="siak_unavailable",
            )
        ]

    def announce_ready(self, now: datetime, calendar: WorkingCalendar) -> list[Event]:
        """The document is at the counter from ``ready_on``: tell the citizen."""
        if (
            self.document_number is None
            or self.ready_on is None
            or self.ready
            or self.collected
            or self.electronic
            or not is_ready(self.ready_on, now, calendar)
        ):
            return []
        assert self.delivery is not None
        return [
            DocumentReady(
                ticket=self.ticket,
                doc_type=self.doc_type,
                phone=self.phone,
                document_number=self.document_number,
                ready_on=self.ready_on,
                delivery=self.delivery,
            )
        ]
