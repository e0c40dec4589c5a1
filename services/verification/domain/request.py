"""The request aggregate: one document request's life in verification, from its events.

Every decision is a method that checks the state and returns the events it causes, or
raises :class:`InvalidTransitionError`; only :meth:`Request.apply` changes state. The
caller appends the events with the version the decision was made on, so two officers
deciding at once cannot both succeed: the second append fails on the expected version.

States and the transitions between them::

    received ──checks──▶ in_queue ──claim──▶ claimed ──approve──▶ verified
       │                  ▲  │  ◀─release/expire─┘ │ └──reject──▶ rejected
       │                  │  └──approve/reject/request changes (claims implicitly)
       ├─checks: citizen can fix─▶ changes_requested ◀──request changes──┘
       │                  │              │
       └─checks: duplicate─┼─▶ cancelled  └──correction──▶ amended ──checks──▶ in_queue …
                           └── (citizen #BATAL# from any open state, verified, scheduled)

After verification, issuance moves it on (its events are folded here too, so the desk and
the citizen's cancellation see them)::

    verified ──scheduled──▶ scheduled ──handed to SIAK──▶ with_siak ──issued──▶ issued
                                                             │  (letter in the chat: completed)
                                                             └─refused─▶ issuance_failed
    issued ──ready on its day──▶ ready ──collected (officer)──▶ completed
       └────────collected (the counter had it early)────────────┘

Invariants: a decision on a claimed request belongs to the officer who claimed it (a
supervisor reassigns first); a final state takes no further verification decision; files
can be added to any open request; a request can be cancelled until it is handed to SIAK
(that hand-off and the cancellation are both expected-version appends: one of them wins).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Any, Final

from shared.contracts import (
    Attachment,
    AttachmentAdded,
    ChangesRequested,
    CheckResult,
    ClaimReleased,
    DocumentCollected,
    DocumentIssued,
    DocumentReady,
    HandedToSiak,
    IssuanceDelayed,
    IssuanceFailed,
    IssuanceScheduled,
    RequestAmended,
    RequestCancelled,
    RequestChecked,
    RequestClaimed,
    RequestReceived,
    RequestRejected,
    RequestVerified,
    SurveyAnswered,
)
from shared.eventstore.envelope import Decoded, Event, RecordedEvent


class State(StrEnum):
    NEW = "new"
    RECEIVED = "received"
    IN_QUEUE = "in_queue"
    CLAIMED = "claimed"
    CHANGES_REQUESTED = "changes_requested"
    AMENDED = "amended"
    VERIFIED = "verified"
    REJECTED = "rejected"
    CANCELLED = "cancelled"
    SCHEDULED = "scheduled"
    WITH_SIAK = "with_siak"
    ISSUANCE_FAILED = "issuance_failed"
    ISSUED = "issued"
    READY = "ready"
    COMPLETED = "completed"


OPEN_STATES: Final = frozenset(
    {State.RECEIVED, State.IN_QUEUE, State.CLAIMED, State.CHANGES_REQUESTED, State.AMENDED}
)
"""States in which the request still waits for verification (a duplicate would compete)."""
ISSUANCE_STATES: Final = frozenset(
    {
        State.SCHEDULED,
        State.WITH_SIAK,
        State.ISSUANCE_FAILED,
        State.ISSUED,
        State.READY,
        State.COMPLETED,
    }
)
"""After verification: issuance's part of the request's life."""
FINAL_STATES: Final = frozenset({State.VERIFIED, State.REJECTED, State.CANCELLED}) | ISSUANCE_STATES
"""No verification decision is taken any more."""
CANCELLABLE: Final = OPEN_STATES | {State.VERIFIED, State.SCHEDULED}
AWAITING_CHECKS: Final = frozenset({State.RECEIVED, State.AMENDED})
DECIDABLE: Final = frozenset({State.IN_QUEUE, State.CLAIMED})

MAX_REASONS: Final = 10
MAX_REASON_LENGTH: Final = 500


class InvalidTransitionError(Exception):
    """The request's state does not allow the action (the API answers 409)."""

    def __init__(self, ticket: str, action: str, state: State, detail: str = "") -> None:
        self.ticket, self.action, self.state = ticket, action, state
        message = f"cannot {action} request {ticket} in state {state.value}"
        super().__init__(f"{message}: {detail}" if detail else message)


class ClaimedByAnotherError(InvalidTransitionError):
    """Another officer holds the claim."""

    def __init__(self, ticket: str, action: str, holder: str) -> None:
        super().__init__(ticket, action, State.CLAIMED, f"claimed by {holder}")
        self.holder = holder


class InvalidDecisionError(ValueError):
    """A decision's own input is unusable (no reason given, a reason too long)."""


@dataclass(frozen=True, slots=True)
class Officer:
    """Who acts on a request: enough for the aggregate (roles and scope are the desk's)."""

    id: str
    name: str


@dataclass
class Request:
    """One request's state, folded from its stream."""

    ticket: str = ""
    version: int = 0
    state: State = State.NEW
    doc_type: str = ""
    kecamatan_code: str | None = None
    citizen: str = ""
    phone: str = ""
    applicant: dict[str, Any] = field(default_factory=dict)
    attachments: list[Attachment] = field(default_factory=list)
    received_at: datetime | None = None
    """When the store recorded the request (its WhatsApp send time is in the event)."""
    check_round: int = 0
    flags: tuple[CheckResult, ...] = ()
    claimed_by: str | None = None
    claimed_by_name: str | None = None
    claimed_at: datetime | None = None
    returned_to: str | None = None
    """The officer who asked for the correction: the amended request goes back to them."""
    reasons: tuple[str, ...] = ()
    """The latest correction reasons or rejection reason."""
    amended_at: datetime | None = None
    first_officer_action_at: datetime | None = None
    decided_at: datetime | None = None
    decided_by: str | None = None
    last_event_at: datetime | None = None
    duplicate_of: str | None = None
    promised_on: date | None = None
    """The day the document can be collected (or is sent at the latest), once scheduled."""
    delivery_channel: str | None = None
    document_number: str | None = None
    ready_on: date | None = None
    issued_at: datetime | None = None
    collected_at: datetime | None = None
    survey_score: int | None = None

    @classmethod
    def fold(cls, events: Iterable[Decoded]) -> Request:
        """The request after ``events``: stored events with their decoded, upcast form
        (``Repository.decode`` / ``EventRegistry.decode_all``)."""
        request = cls()
        for recorded, event in events:
            request.apply(recorded, event)
        return request

    # -- state ----------------------------------------------------------------------------

    def apply(self, recorded: RecordedEvent, event: Event) -> None:  # noqa: PLR0912, PLR0915 - one case per event
        """One event: ``recorded`` as stored (version, times), ``event`` decoded."""
        self.version = recorded.stream_version
        # Times of the event store's own clock: one clock for every service and replica.
        at = recorded.recorded_at
        self.last_event_at = at
        match event:
            case RequestReceived() as received:
                self.ticket = received.ticket
                self.state = State.RECEIVED
                self.doc_type = received.doc_type
                self.kecamatan_code = received.kecamatan_code
                self.citizen = received.citizen
                self.phone = received.phone
                self.applicant = dict(received.applicant)
                self.attachments = []
                self._add_files(received.attachments)
                self.received_at = at
            case AttachmentAdded() as added:
                self._add_files([added.attachment])
            case RequestChecked() as checked:
                self.check_round = checked.round
                self.flags = tuple(r for r in checked.results if not r.passed)
                if checked.outcome in {"passed", "flagged"}:
                    self.state = State.IN_QUEUE
            case RequestClaimed() as claimed:
                self.state = State.CLAIMED
                self.claimed_by, self.claimed_by_name = claimed.officer_id, claimed.officer_name
                self.claimed_at = at
                self._officer_acted(at, claimed.by)
            case ClaimReleased():
                self.state = State.IN_QUEUE
                self.claimed_by = self.claimed_by_name = self.claimed_at = None
            case ChangesRequested() as changes:
                self.state = State.CHANGES_REQUESTED
                self.reasons = changes.reasons
                if changes.officer_id is not None:
                    self.returned_to = changes.officer_id
                    self._officer_acted(at, changes.officer_id)
                self.claimed_by = self.claimed_by_name = self.claimed_at = None
            case RequestAmended() as amended:
                self.state = State.AMENDED
                self.amended_at = at
                self._add_files(list(amended.attachments))
            case RequestVerified() as verified:
                self._decided(State.VERIFIED, at, verified.officer_id)
            case RequestRejected() as rejected:
                self.reasons = (rejected.reason,)
                self._decided(State.REJECTED, at, rejected.officer_id)
            case RequestCancelled() as cancelled:
                self.state = State.CANCELLED
                self.duplicate_of = cancelled.duplicate_of
                self.claimed_by = self.claimed_by_name = self.claimed_at = None
            case _:
                self._apply_issuance(event, at)

    def _apply_issuance(self, event: Event, at: datetime) -> None:
        match event:
            case IssuanceScheduled() as scheduled:
                self.state = State.SCHEDULED
                self.promised_on = scheduled.promised_on
                self.delivery_channel = scheduled.delivery.channel
            case HandedToSiak():
                self.state = State.WITH_SIAK
            case IssuanceDelayed() as delayed:
                self.promised_on = delayed.promised_on
            case IssuanceFailed() as failed:
                self.state = State.ISSUANCE_FAILED
                self.reasons = (failed.message,)
            case DocumentIssued() as issued:
                electronic = issued.delivery.channel == "whatsapp"
                self.state = State.COMPLETED if electronic else State.ISSUED
                self.document_number = issued.document_number
                self.ready_on = issued.ready_on
                self.issued_at = issued.issued_at
                if electronic:
                    self.collected_at = at
            case DocumentReady():
                self.state = State.READY
            case DocumentCollected():
                self.state = State.COMPLETED
                self.collected_at = at
            case SurveyAnswered() as answered:
                self.survey_score = answered.score
            case _:
                pass  # events of other services that do not change the request

    def _add_files(self, files: Sequence[Attachment]) -> None:
        """The same photo sent twice is one file (and counts as one paper)."""
        known = {attachment.sha256 for attachment in self.attachments}
        for attachment in files:
            if attachment.sha256 not in known:
                known.add(attachment.sha256)
                self.attachments.append(attachment)

    def _officer_acted(self, at: datetime, officer_id: str) -> None:
        if self.first_officer_action_at is None and not officer_id.startswith("system:"):
            self.first_officer_action_at = at

    def _decided(self, state: State, at: datetime, officer_id: str) -> None:
        self.state = state
        self.decided_at, self.decided_by = at, officer_id
        self._officer_acted(at, officer_id)

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_STATES

    # -- decisions ------------------------------------------------------------------------

    def record_checks(self, results: Sequence[CheckResult]) -> list[Event]:
        """The automatic checks' verdict: queue, correction request, or duplicate."""
        self._require(AWAITING_CHECKS, "record checks")
        duplicate = next((r for r in results if r.check == "duplicate" and not r.passed), None)
        fixable = [r for r in results if not r.passed and r.fixable]
        if duplicate is not None:
            outcome = "duplicate"
        elif fixable:
            outcome = "changes_needed"
        elif any(not r.passed for r in results):
            outcome = "flagged"
        else:
            outcome = "passed"
        events: list[Event] = [
            RequestChecked(
                ticket=self.ticket,
                round=self.check_round + 1,
                results=tuple(results),
                outcome=outcome,  # type: ignore[arg-type]
            )
        ]
        if duplicate is not None:
            events.append(
                RequestCancelled(
                    ticket=self.ticket,
                    reason="duplicate",
                    duplicate_of=duplicate.related_ticket,
                    phone=self.phone,
                    doc_type=self.doc_type,
                )
            )
        elif fixable:
            events.append(
                ChangesRequested(
                    ticket=self.ticket,
                    reasons=tuple(r.reason for r in fixable),
                    officer_id=None,
                    phone=self.phone,
                    doc_type=self.doc_type,
                )
            )
        return events

    def claim(self, officer: Officer, *, by: Officer | None = None) -> list[Event]:
        """``officer`` takes the request; ``by`` is the supervisor who assigns it, who may
        take it from another officer. Claiming one's own claim again changes nothing."""
        assigner = by or officer
        if self.state == State.CLAIMED and self.claimed_by == officer.id:
            return []
        if self.state == State.CLAIMED and by is None:
            raise ClaimedByAnotherError(self.ticket, "claim", self.claimed_by_name or "")
        self._require(DECIDABLE, "claim")
        return [
            RequestClaimed(
                ticket=self.ticket, officer_id=officer.id, officer_name=officer.name, by=assigner.id
            )
        ]

    def release(self, officer: Officer, *, expired: bool = False) -> list[Event]:
        """Give the claim back (or let it expire) so the request returns to the queue."""
        self._require({State.CLAIMED}, "release")
        if not expired and self.claimed_by != officer.id:
            raise ClaimedByAnotherError(self.ticket, "release", self.claimed_by_name or "")
        holder = self.claimed_by or officer.id
        return [
            ClaimReleased(
                ticket=self.ticket, officer_id=holder, reason="expired" if expired else "released"
            )
        ]

    def approve(self, officer: Officer) -> list[Event]:
        self._require_decidable(officer, "approve")
        return [
            RequestVerified(
                ticket=self.ticket, officer_id=officer.id, phone=self.phone, doc_type=self.doc_type
            )
        ]

    def request_changes(self, officer: Officer, reasons: Sequence[str]) -> list[Event]:
        cleaned = _reasons(reasons)
        self._require_decidable(officer, "request changes")
        return [
            ChangesRequested(
                ticket=self.ticket,
                reasons=cleaned,
                officer_id=officer.id,
                phone=self.phone,
                doc_type=self.doc_type,
            )
        ]

    def reject(self, officer: Officer, reason: str) -> list[Event]:
        (cleaned,) = _reasons([reason], limit=1)
        self._require_decidable(officer, "reject")
        return [
            RequestRejected(
                ticket=self.ticket,
                officer_id=officer.id,
                reason=cleaned,
                phone=self.phone,
                doc_type=self.doc_type,
            )
        ]

    def amend(self, message_id: str, attachments: Sequence[Attachment]) -> list[Event]:
        """The citizen's correction: back to the checks, then to the same officer."""
        self._require({State.CHANGES_REQUESTED}, "amend")
        return [
            RequestAmended(
                ticket=self.ticket,
                message_id=message_id,
                attachments=tuple(attachments),
                phone=self.phone,
            )
        ]

    def cancel(self) -> list[Event]:
        """The citizen withdraws the request (``#BATAL#``) before it goes to SIAK."""
        self._require(CANCELLABLE, "cancel")
        return [
            RequestCancelled(
                ticket=self.ticket, reason="citizen", phone=self.phone, doc_type=self.doc_type
            )
        ]

    def collect(self, officer: Officer) -> list[Event]:
        """The citizen picked the document up at the counter."""
        self._require({State.ISSUED, State.READY}, "record collection")
        return [
            DocumentCollected(
                ticket=self.ticket, doc_type=self.doc_type, phone=self.phone, officer_id=officer.id
            )
        ]

    def _require(self, states: Iterable[State], action: str) -> None:
        if self.state not in set(states):
            raise InvalidTransitionError(self.ticket, action, self.state)

    def _require_decidable(self, officer: Officer, action: str) -> None:
        self._require(DECIDABLE, action)
        if self.state == State.CLAIMED and self.claimed_by != officer.id:
            raise ClaimedByAnotherError(self.ticket, action, self.claimed_by_name or "")


def _reasons(reasons: Sequence[str], *, limit: int = MAX_REASONS) -> tuple[str, ...]:
    cleaned = tuple(" ".join(reason.split()) for reason in reasons)
    cleaned = tuple(reason for reason in cleaned if reason)
    if not cleaned:
        raise InvalidDecisionError("at least one reason is required")
    if len(cleaned) > limit:
        raise InvalidDecisionError(f"at most {limit} reasons")
    if any(len(reason) > MAX_REASON_LENGTH for reason in cleaned):
        raise InvalidDecisionError(f"a reason has at most {MAX_REASON_LENGTH} characters")
    return cleaned
