"""Public events: what integrators (other agencies) are told, without personal data.

Internal events (:mod:`shared.contracts`) carry phone numbers, NIKs, names and officers'
free text. A public event is derived from one internal event of a request stream and keeps
only facts that are safe to hand out:

* the envelope (:class:`PublicEvent`): the internal event's id (integrators deduplicate on
  it), the public type and its schema version, the global position (to replay from), when it
  happened, the ticket, the document type and the kecamatan code;
* ``data``: the type's own payload, one versioned model per type (:class:`PublicData`).

Rules of the derivation: a NIK or No. KK appears only as a keyed pseudonym (the request's
``subject``); names, phone numbers and document numbers (a KTP's number is the NIK) never
appear; officers' free text (reasons) may name people, so only counts are published;
officers appear by id, never by name.

Public events are published on ``adminduk.public.<Type>`` by
:mod:`services.integrations.publisher` and read back in position order through
:class:`PublicLog`. ``python -m shared.public`` writes ``docs/asyncapi.yaml`` and
``docs/EVENTS.md`` from the models here.
"""

from __future__ import annotations

import logging
import re
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, ClassVar, Final, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared import contracts as internal
from shared.bus.jetstream import PUBLIC_SUBJECT_PREFIX
from shared.eventstore.envelope import Event, RecordedEvent
from shared.eventstore.store import EventStore
from shared.privacy import pseudonym

log = logging.getLogger(__name__)

SUBJECT_PURPOSE: Final = "public-subject"
"""Purpose of the keyed pseudonym of a request's subject (see :func:`subject_pseudonym`)."""
REQUEST_CATEGORY: Final = "request"
_KECAMATAN: Final = re.compile(r"\d{6}")


def public_subject(public_type: str) -> str:
    """``adminduk.public.<Type>``: the NATS subject of a public event type."""
    return f"{PUBLIC_SUBJECT_PREFIX}.{public_type}"


# -- the envelope ----------------------------------------------------------------------


class PublicEvent(BaseModel):
    """One public event as integrators receive it (JSON on ``adminduk.public.<type>``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(
        description="Unique id of the event (the internal event's id): deduplicate on it."
    )
    type: str = Field(description="The public event type, also the last subject token.")
    schema_version: int = Field(
        ge=1, description="Version of this type's `data` schema; a change of meaning bumps it."
    )
    position: int = Field(
        ge=1,
        description="Global position in the office's event log: increases with every "
        "event, so a consumer can replay from the last position it saw.",
    )
    occurred_at: datetime = Field(description="When it happened (ISO 8601, with time zone).")
    ticket: str = Field(description="The request's ticket, e.g. `KTP-7Q2M9XAB`.")
    doc_type: str | None = Field(
        description="The document requested (`KTP`, `KK`, `KIA`, `AKTA`, ...), null if unknown."
    )
    kecamatan: str | None = Field(
        description="6-digit code of the applicant's kecamatan, null if unknown."
    )
    data: dict[str, Any] = Field(description="The type's own payload (see its schema).")

    @property
    def subject(self) -> str:
        return public_subject(self.type)


# -- payloads, one versioned model per public type ------------------------------------------


class PublicData(BaseModel):
    """Base of a public type's payload. The type's name is the class name without ``Data``;
    ``schema_version`` travels in the envelope, as internal events carry theirs."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    public_type: ClassVar[str]
    schema_version: int = 1

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.public_type = cls.__name__.removesuffix("Data")

    def payload(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude={"schema_version"})


OfficerId = str
Channel = Literal["office", "whatsapp"]


class RequestReceivedData(PublicData):
    """A valid request was received and given its ticket."""

    schema_version: Literal[1] = 1
    subject: str | None = Field(
        description="Keyed pseudonym of who the request is for (the NIK, or the family "
        "card): equal for two requests of one person and document, meaningless without the "
        "office's key. Null when unknown or after the citizen's data was erased."
    )
    received_at: datetime = Field(description="When the citizen sent the request.")
    attachments: int = Field(ge=0, description="How many files came with the request.")


class CheckOutcome(BaseModel):
    """One automatic check, without its free-text reason."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    check: Literal["nik_region", "age", "kk_region", "papers", "duplicate"]
    passed: bool
    fixable: bool = Field(description="The citizen can put it right (a correction is asked).")


class RequestCheckedData(PublicData):
    """The automatic checks ran (on receipt, and again after each amendment)."""

    schema_version: Literal[1] = 1
    round: int = Field(ge=0, description="1 for the first check, +1 after each amendment.")
    outcome: Literal["passed", "flagged", "changes_needed", "duplicate"] = Field(
        description="`passed`/`flagged`: to the officers' queue (flagged: with failed checks "
        "shown); `changes_needed`: the citizen is asked to correct; `duplicate`: closed in "
        "favour of another open request."
    )
    checks: tuple[CheckOutcome, ...]
    duplicate_of: str | None = Field(
        description="The ticket of the open request this one duplicates, if any."
    )


class RequestClaimedData(PublicData):
    """An officer took the request into work."""

    schema_version: Literal[1] = 1
    officer_id: OfficerId = Field(description="Id of the officer who has the request.")
    assigned_by: OfficerId = Field(
        description="Id of the officer who assigned it (the same officer when taken)."
    )


class ClaimReleasedData(PublicData):
    """The request went back to the queue."""

    schema_version: Literal[1] = 1
    officer_id: OfficerId
    reason: Literal["released", "expired"]


class ChangesRequestedData(PublicData):
    """The citizen was asked to correct the request."""

    schema_version: Literal[1] = 1
    reasons: int = Field(ge=0, description="How many corrections were asked for.")
    officer_id: OfficerId | None = Field(
        description="Id of the officer who asked; null when the automatic checks asked."
    )


class RequestAmendedData(PublicData):
    """The citizen's correction arrived; the request is checked again."""

    schema_version: Literal[1] = 1
    attachments: int = Field(ge=0, description="How many files came with the correction.")


class RequestVerifiedData(PublicData):
    """An officer approved the request."""

    schema_version: Literal[1] = 1
    officer_id: OfficerId


class RequestRejectedData(PublicData):
    """An officer refused the request (the reason is told to the citizen only)."""

    schema_version: Literal[1] = 1
    officer_id: OfficerId


class RequestCancelledData(PublicData):
    """Closed before issuance, by the citizen or as a duplicate."""

    schema_version: Literal[1] = 1
    reason: Literal["citizen", "duplicate"]
    duplicate_of: str | None = Field(description="The ticket kept instead, for a duplicate.")


class IssuanceScheduledData(PublicData):
    """A verified request has its promised date."""

    schema_version: Literal[1] = 1
    promised_on: date = Field(
        description="The day it can be collected (a letter: the day it is sent at the latest)."
    )
    working_days: int = Field(ge=0, description="The promise in working days.")
    channel: Channel = Field(
        description="`office`: collected at the counter; `whatsapp`: a signed PDF in the chat."
    )


class HandedToSiakData(PublicData):
    """The request went to SIAK, the national system; it can no longer be cancelled."""

    schema_version: Literal[1] = 1


class IssuanceDelayedData(PublicData):
    """The promise cannot be kept; the citizen was given a new date."""

    schema_version: Literal[1] = 1
    previous_date: date
    promised_on: date
    reason: Literal["siak_unavailable", "siak_refused"]


class IssuanceFailedData(PublicData):
    """SIAK refused the submission for good; officers must look at it."""

    schema_version: Literal[1] = 1
    siak_status: int | None = Field(description="SIAK's HTTP status, null when none came.")


class DocumentIssuedData(PublicData):
    """SIAK issued the document (its number is not published: a KTP's number is the NIK)."""

    schema_version: Literal[1] = 1
    issued_at: datetime
    ready_on: date = Field(description="The day it can be collected or was sent.")
    channel: Channel
    letter_sent: bool = Field(description="A signed PDF letter was sent in the chat.")


class DocumentReadyData(PublicData):
    """The document can be collected at the office."""

    schema_version: Literal[1] = 1
    ready_on: date
    channel: Channel


class DocumentCollectedData(PublicData):
    """The citizen picked the document up; the request is done."""

    schema_version: Literal[1] = 1
    officer_id: OfficerId = Field(description="Id of the officer who handed it over.")


class SurveyAnsweredData(PublicData):
    """The satisfaction survey after a request (1 = tidak puas ... 4 = sangat puas)."""

    schema_version: Literal[1] = 1
    score: int = Field(ge=1, le=4)


# -- derivation ------------------------------------------------------------------------------


@dataclass(frozen=True)
class TicketFacts:
    """What every public event of a request carries, from its first event."""

    doc_type: str | None
    kecamatan: str | None


E = TypeVar("E", bound=Event)


@dataclass(frozen=True)
class _Form(Generic[E]):
    """How one internal event type becomes its public payload."""

    internal: type[E]
    public: type[PublicData]
    derive: Callable[[E, bytes], PublicData]


def subject_pseudonym(doc_type: str, applicant: object, key: bytes) -> str | None:
    """The keyed pseudonym of :func:`shared.contracts.request_subject`, or None when it
    cannot be computed (no NIK/No. KK, or the citizen's data was erased)."""
    if not isinstance(applicant, dict) or not isinstance(doc_type, str):
        return None
    try:
        subject = internal.request_subject(doc_type, applicant)
    except (TypeError, KeyError):
        return None
    return None if subject is None else pseudonym(subject, key, purpose=SUBJECT_PURPOSE)


def _count(values: object) -> int:
    return len(values) if isinstance(values, tuple | list) else 0


def _received(event: internal.RequestReceived, key: bytes) -> PublicData:
    return RequestReceivedData(
        subject=subject_pseudonym(event.doc_type, event.applicant, key),
        received_at=event.received_at,
        attachments=_count(event.attachments),
    )


def _checked(event: internal.RequestChecked, key: bytes) -> PublicData:
    duplicate = next(
        (r.related_ticket for r in event.results if r.check == "duplicate" and not r.passed),
        None,
    )
    return RequestCheckedData(
        round=event.round,
        outcome=event.outcome,
        checks=tuple(
            CheckOutcome(check=r.check, passed=r.passed, fixable=r.fixable) for r in event.results
        ),
        duplicate_of=duplicate,
    )


_FORMS: Final[dict[str, _Form[Any]]] = {
    form.internal.event_type: form
    for form in (
        _Form(internal.RequestReceived, RequestReceivedData, _received),
        _Form(internal.RequestChecked, RequestCheckedData, _checked),
        _Form(
            internal.RequestClaimed,
            RequestClaimedData,
            lambda e, _: RequestClaimedData(officer_id=e.officer_id, assigned_by=e.by),
        ),
        _Form(
            internal.ClaimReleased,
            ClaimReleasedData,
            lambda e, _: ClaimReleasedData(officer_id=e.officer_id, reason=e.reason),
        ),
        _Form(
            internal.ChangesRequested,
            ChangesRequestedData,
            lambda e, _: ChangesRequestedData(reasons=_count(e.reasons), officer_id=e.officer_id),
        ),
        _Form(
            internal.RequestAmended,
            RequestAmendedData,
            lambda e, _: RequestAmendedData(attachments=_count(e.attachments)),
        ),
        _Form(
            internal.RequestVerified,
            RequestVerifiedData,
            lambda e, _: RequestVerifiedData(officer_id=e.officer_id),
        ),
        _Form(
            internal.RequestRejected,
            RequestRejectedData,
            lambda e, _: RequestRejectedData(officer_id=e.officer_id),
        ),
        _Form(
            internal.RequestCancelled,
            RequestCancelledData,
            lambda e, _: RequestCancelledData(reason=e.reason, duplicate_of=e.duplicate_of),
        ),
        _Form(
            internal.IssuanceScheduled,
            IssuanceScheduledData,
            lambda e, _: IssuanceScheduledData(
                promised_on=e.promised_on,
                working_days=e.working_days,
                channel=e.delivery.channel,
            ),
        ),
        _Form(internal.HandedToSiak, HandedToSiakData, lambda e, _: HandedToSiakData()),
        _Form(
            internal.IssuanceDelayed,
            IssuanceDelayedData,
            lambda e, _: IssuanceDelayedData(
                previous_date=e.previous_date, promised_on=e.promised_on, reason=e.reason
            ),
        ),
        _Form(
            internal.IssuanceFailed,
            IssuanceFailedData,
            lambda e, _: IssuanceFailedData(siak_status=e.status),
        ),
        _Form(
            internal.DocumentIssued,
            DocumentIssuedData,
            lambda e, _: DocumentIssuedData(
                issued_at=e.issued_at,
                ready_on=e.ready_on,
                channel=e.delivery.channel,
                letter_sent=e.letter is not None,
            ),
        ),
        _Form(
            internal.DocumentReady,
            DocumentReadyData,
            lambda e, _: DocumentReadyData(ready_on=e.ready_on, channel=e.delivery.channel),
        ),
        _Form(
            internal.DocumentCollected,
            DocumentCollectedData,
            lambda e, _: DocumentCollectedData(officer_id=e.officer_id),
        ),
        _Form(
            internal.SurveyAnswered,
            SurveyAnsweredData,
            lambda e, _: SurveyAnsweredData(score=e.score),
        ),
    )
}

PUBLIC_TYPES: Final[dict[str, type[PublicData]]] = {
    form.public.public_type: form.public for form in _FORMS.values()
}
"""Every public type by name, with its payload model."""

REQUIRED_TYPES: Final = frozenset(
    {
        "RequestReceived",
        "RequestVerified",
        "ChangesRequested",
        "RequestRejected",
        "DocumentIssued",
        "DocumentCollected",
    }
)
"""The types the integrator contract promises (CONTRACT.md)."""


def internal_type(public_type: str) -> str:
    """The internal event type a public type is derived from."""
    return next(name for name, form in _FORMS.items() if form.public.public_type == public_type)


def has_public_form(event_type: str) -> bool:
    return event_type in _FORMS


def kecamatan_code(value: object) -> str | None:
    return value if isinstance(value, str) and _KECAMATAN.fullmatch(value) else None


def facts_of(received: RecordedEvent) -> TicketFacts | None:
    """The facts a request's ``RequestReceived`` gives every later event of the request."""
    if received.event_type != internal.RequestReceived.event_type:
        return None
    doc_type = received.data.get("doc_type")
    return TicketFacts(
        doc_type=doc_type if isinstance(doc_type, str) and doc_type else None,
        kecamatan=kecamatan_code(received.data.get("kecamatan_code")),
    )


def _decode(recorded: RecordedEvent) -> Event:
    """The typed internal event. Personal fields of an erased citizen read back as
    placeholders that may not validate; the fields a public form uses are never personal,
    so such an event is built unchecked and the public model validates what it takes."""
    try:
        return internal.registry.decode(recorded)
    except ValidationError:
        event_class: type[Event] = _FORMS[recorded.event_type].internal
        return event_class.model_construct(**recorded.data)


def public_event(
    recorded: RecordedEvent, facts: TicketFacts | None, key: bytes
) -> PublicEvent | None:
    """The public form of an internal event, or None when it has none.

    ``facts`` come from the request's first event (see :func:`facts_of`); an event that
    carries its own document type uses that. ``key`` keys the subject's pseudonym.
    """
    form = _FORMS.get(recorded.event_type)
    if form is None or recorded.category != REQUEST_CATEGORY:
        return None
    try:
        event = _decode(recorded)
        payload = form.derive(event, key)
    except (ValidationError, AttributeError, TypeError, ValueError) as error:
        # One malformed event must not stop every integrator's feed; it is logged by id.
        log.warning(
            "event %s (%s at position %d) has no public form: %s",
            recorded.event_id,
            recorded.event_type,
            recorded.position,
            type(error).__name__,
        )
        return None
    own = facts_of(recorded)
    facts = own or facts or TicketFacts(None, None)
    doc_type = getattr(event, "doc_type", None)
    return PublicEvent(
        id=str(recorded.event_id),
        type=payload.public_type,
        schema_version=payload.schema_version,
        position=recorded.position,
        occurred_at=recorded.occurred_at,
        ticket=recorded.stream_id.removeprefix(f"{REQUEST_CATEGORY}-"),
        doc_type=doc_type if isinstance(doc_type, str) and doc_type else facts.doc_type,
        kecamatan=facts.kecamatan,
        data=payload.payload(),
    )


# -- reading public events in position order ----------------------------------------------


class PublicLog:
    """The public events of the event store, in position order, from any position.

    Reads through :meth:`EventStore.read_all` (which gives personal fields back as the store
    keeps them readable, or as placeholders after erasure) and looks up each request's facts
    once, keeping the recent ones in a small bounded cache.
    """

    def __init__(self, store: EventStore, key: bytes, *, cache_size: int = 10_000) -> None:
        self._store = store
        self._key = key
        self._cache_size = cache_size
        self._facts: OrderedDict[str, TicketFacts | None] = OrderedDict()

    async def read(
        self, after: int, limit: int = 500, types: frozenset[str] | None = None
    ) -> tuple[list[PublicEvent], int]:
        """Public events after position ``after``, scanning at most ``limit`` internal
        events, and the last position scanned: the next call's ``after``, which moves past
        events that have no public form. ``types`` keeps only those public types."""
        sourced, scanned = await self.read_sourced(after, limit, types)
        return [public for public, _ in sourced], scanned

    async def read_sourced(
        self, after: int, limit: int = 500, types: frozenset[str] | None = None
    ) -> tuple[list[tuple[PublicEvent, RecordedEvent]], int]:
        """As :meth:`read`, each public event with the internal event it came from (whose
        metadata carries the trace context)."""
        if types is None:
            recorded = await self._store.read_all(after_position=after, limit=limit)
            scanned = recorded[-1].position if recorded else after
        else:
            wanted = [internal_type(t) for t in types if t in PUBLIC_TYPES]
            if not wanted:
                return [], after
            # Positions are gapless and commit in order (see the store): everything up to
            # the head read first is committed, so a short filtered read scanned up to it.
            head = await self._store.last_position()
            recorded = await self._store.read_all(
                after_position=after, limit=limit, event_types=wanted
            )
            last = recorded[-1].position if recorded else after
            scanned = last if len(recorded) == limit else max(head, last)
        sourced = []
        for event in recorded:
            facts = await self._facts_for(event)
            public = public_event(event, facts, self._key)
            if public is not None:
                sourced.append((public, event))
        return sourced, scanned

    async def _facts_for(self, event: RecordedEvent) -> TicketFacts | None:
        if not has_public_form(event.event_type) or event.category != REQUEST_CATEGORY:
            return None
        own = facts_of(event)
        if own is not None:
            self._remember(event.stream_id, own)
            return own
        if event.stream_id in self._facts:
            self._facts.move_to_end(event.stream_id)
            return self._facts[event.stream_id]
        first = await self._store.read_stream(event.stream_id)
        facts = facts_of(first[0]) if first else None
        self._remember(event.stream_id, facts)
        return facts

    def _remember(self, stream_id: str, facts: TicketFacts | None) -> None:
        self._facts[stream_id] = facts
        self._facts.move_to_end(stream_id)
        while len(self._facts) > self._cache_size:
            self._facts.popitem(last=False)
