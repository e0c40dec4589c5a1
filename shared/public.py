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

import json
import logging
import re
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, ClassVar, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from shared import contracts as internal
from shared.bus.jetstream import PUBLIC_SUBJECT_PREFIX
from shared.eventstore.envelope import Event, RecordedEvent, deterministic_event_id
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
    """Base of a public type's payload. The type's name is the class name without ``Data``.

    ``schema_version`` is a class constant that travels in the envelope (as an internal
    event's version travels in its envelope): a change of meaning is a new version."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    public_type: ClassVar[str]
    schema_version: ClassVar[int] = 1

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.public_type = cls.__name__.removesuffix("Data")

    def payload(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


OfficerId = str
TicketRef = Annotated[str, Field(pattern=r"^[A-Z]+-[0-9A-Z]{4,19}$")]
"""Another request's ticket (shaped as the office makes them: never a number a citizen
typed)."""
Channel = Literal["office", "whatsapp"]


class RequestReceivedData(PublicData):
    """A valid request was received and given its ticket."""

    schema_version: ClassVar[Literal[1]] = 1
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

    schema_version: ClassVar[Literal[1]] = 1
    round: int = Field(ge=0, description="1 for the first check, +1 after each amendment.")
    outcome: Literal["passed", "flagged", "changes_needed", "duplicate"] = Field(
        description="`passed`/`flagged`: to the officers' queue (flagged: with failed checks "
        "shown); `changes_needed`: the citizen is asked to correct; `duplicate`: closed in "
        "favour of another open request."
    )
    checks: tuple[CheckOutcome, ...]
    duplicate_of: TicketRef | None = Field(
        description="The ticket of the open request this one duplicates, if any."
    )


class RequestClaimedData(PublicData):
    """An officer took the request into work."""

    schema_version: ClassVar[Literal[1]] = 1
    officer_id: OfficerId = Field(description="Id of the officer who has the request.")
    assigned_by: OfficerId = Field(
        description="Id of the officer who assigned it (the same officer when taken)."
    )


class ClaimReleasedData(PublicData):
    """The request went back to the queue."""

    schema_version: ClassVar[Literal[1]] = 1
    officer_id: OfficerId
    reason: Literal["released", "expired"]


class ChangesRequestedData(PublicData):
    """The citizen was asked to correct the request."""

    schema_version: ClassVar[Literal[1]] = 1
    reasons: int = Field(ge=0, description="How many corrections were asked for.")
    officer_id: OfficerId | None = Field(
        description="Id of the officer who asked; null when the automatic checks asked."
    )


class RequestAmendedData(PublicData):
    """The citizen's correction arrived; the request is checked again."""

    schema_version: ClassVar[Literal[1]] = 1
    attachments: int = Field(ge=0, description="How many files came with the correction.")


class RequestVerifiedData(PublicData):
    """An officer approved the request."""

    schema_version: ClassVar[Literal[1]] = 1
    officer_id: OfficerId


class RequestRejectedData(PublicData):
    """An officer refused the request (the reason is told to the citizen only)."""

    schema_version: ClassVar[Literal[1]] = 1
    officer_id: OfficerId


class RequestCancelledData(PublicData):
    """Closed before issuance, by the citizen or as a duplicate."""

    schema_version: ClassVar[Literal[1]] = 1
    reason: Literal["citizen", "duplicate"]
    duplicate_of: TicketRef | None = Field(description="The ticket kept instead, for a duplicate.")


class IssuanceScheduledData(PublicData):
    """A verified request has its promised date."""

    schema_version: ClassVar[Literal[1]] = 1
    promised_on: date = Field(
        description="The day it can be collected (a letter: the day it is sent at the latest)."
    )
    working_days: int = Field(ge=0, description="The promise in working days.")
    channel: Channel = Field(
        description="`office`: collected at the counter; `whatsapp`: a signed PDF in the chat."
    )


class HandedToSiakData(PublicData):
    """The request went to SIAK, the national system; it can no longer be cancelled."""

    schema_version: ClassVar[Literal[1]] = 1


class IssuanceDelayedData(PublicData):
    """The promise cannot be kept; the citizen was given a new date."""

    schema_version: ClassVar[Literal[1]] = 1
    previous_date: date
    promised_on: date
    reason: Literal["siak_unavailable", "siak_refused"]


class IssuanceFailedData(PublicData):
    """SIAK refused the submission for good; officers must look at it."""

    schema_version: ClassVar[Literal[1]] = 1
    siak_status: int | None = Field(description="SIAK's HTTP status, null when none came.")


class DocumentIssuedData(PublicData):
    """SIAK issued the document (its number is not published: a KTP's number is the NIK)."""

    schema_version: ClassVar[Literal[1]] = 1
    issued_at: datetime
    ready_on: date = Field(description="The day it can be collected or was sent.")
    channel: Channel
    letter_sent: bool = Field(description="A signed PDF letter was sent in the chat.")


class DocumentReadyData(PublicData):
    """The document can be collected at the office."""

    schema_version: ClassVar[Literal[1]] = 1
    ready_on: date
    channel: Channel


class DocumentCollectedData(PublicData):
    """The citizen picked the document up; the request is done."""

    schema_version: ClassVar[Literal[1]] = 1
    officer_id: OfficerId = Field(description="Id of the officer who handed it over.")


class SurveyAnsweredData(PublicData):
    """The satisfaction survey after a request (1 = tidak puas ... 4 = sangat puas)."""

    schema_version: ClassVar[Literal[1]] = 1
    score: int = Field(ge=1, le=4)


# -- derivation ------------------------------------------------------------------------------


@dataclass(frozen=True)
class TicketFacts:
    """What every public event of a request carries, from its first event."""

    doc_type: str | None
    kecamatan: str | None


Fields = dict[str, Any]
"""An internal event's data, as typed as it could be read (see :func:`_fields`)."""


@dataclass(frozen=True)
class _Form:
    """How one internal event type becomes its public payload: ``derive`` picks the
    public fields from the internal ones (the public model then validates them)."""

    internal: type[Event]
    public: type[PublicData]
    derive: Callable[[Fields, bytes], Fields]


def subject_pseudonym(doc_type: object, applicant: object, key: bytes) -> str | None:
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


def _pick(*names: str, **renamed: str) -> Callable[[Fields, bytes], Fields]:
    """Public fields taken as they are: ``names`` keep their name, ``renamed`` maps a
    public name to the internal one."""
    mapping = {name: name for name in names} | renamed
    return lambda fields, _: {public: fields[source] for public, source in mapping.items()}


def _received(fields: Fields, key: bytes) -> Fields:
    return {
        "subject": subject_pseudonym(fields["doc_type"], fields.get("applicant"), key),
        "received_at": fields["received_at"],
        "attachments": _count(fields.get("attachments")),
    }


def _checked(fields: Fields, _: bytes) -> Fields:
    results = fields["results"]
    return {
        "round": fields["round"],
        "outcome": fields["outcome"],
        "checks": [
            {"check": r["check"], "passed": r["passed"], "fixable": r.get("fixable", False)}
            for r in results
        ],
        "duplicate_of": next(
            (
                r.get("related_ticket")
                for r in results
                if r["check"] == "duplicate" and not r["passed"]
            ),
            None,
        ),
    }


def _delivered(*names: str) -> Callable[[Fields, bytes], Fields]:
    """``names`` as they are, plus the delivery channel."""
    pick = _pick(*names)
    return lambda fields, key: pick(fields, key) | {"channel": fields["delivery"]["channel"]}


_FORMS: Final[dict[str, _Form]] = {
    form.internal.event_type: form
    for form in (
        _Form(internal.RequestReceived, RequestReceivedData, _received),
        _Form(internal.RequestChecked, RequestCheckedData, _checked),
        _Form(internal.RequestClaimed, RequestClaimedData, _pick("officer_id", assigned_by="by")),
        _Form(internal.ClaimReleased, ClaimReleasedData, _pick("officer_id", "reason")),
        _Form(
            internal.ChangesRequested,
            ChangesRequestedData,
            lambda f, _: {"reasons": _count(f["reasons"]), "officer_id": f["officer_id"]},
        ),
        _Form(
            internal.RequestAmended,
            RequestAmendedData,
            lambda f, _: {"attachments": _count(f.get("attachments"))},
        ),
        _Form(internal.RequestVerified, RequestVerifiedData, _pick("officer_id")),
        _Form(internal.RequestRejected, RequestRejectedData, _pick("officer_id")),
        _Form(internal.RequestCancelled, RequestCancelledData, _pick("reason", "duplicate_of")),
        _Form(
            internal.IssuanceScheduled,
            IssuanceScheduledData,
            _delivered("promised_on", "working_days"),
        ),
        _Form(internal.HandedToSiak, HandedToSiakData, _pick()),
        _Form(
            internal.IssuanceDelayed,
            IssuanceDelayedData,
            _pick("previous_date", "promised_on", "reason"),
        ),
        _Form(internal.IssuanceFailed, IssuanceFailedData, _pick(siak_status="status")),
        _Form(
            internal.DocumentIssued,
            DocumentIssuedData,
            lambda f, key: (
                _delivered("issued_at", "ready_on")(f, key)
                | {"letter_sent": f.get("letter") is not None}
            ),
        ),
        _Form(internal.DocumentReady, DocumentReadyData, _delivered("ready_on")),
        _Form(internal.DocumentCollected, DocumentCollectedData, _pick("officer_id")),
        _Form(internal.SurveyAnswered, SurveyAnsweredData, _pick("score")),
    )
}

PUBLIC_TYPES: Final[dict[str, type[PublicData]]] = {
    form.public.public_type: form.public for form in _FORMS.values()
}
"""Every public type by name, with its payload model."""

DERIVED_FROM: Final[dict[str, str]] = {
    form.public.public_type: name for name, form in _FORMS.items()
}
"""The internal event type each public type is derived from."""

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


def _fields(recorded: RecordedEvent) -> Fields:
    """The internal event's fields, upcast to its current schema and typed. Personal
    fields of an erased citizen read back as placeholders that may not validate; the fields
    a public form takes are never personal, so such an event is used as stored, and the
    public model validates what it takes."""
    try:
        return internal.registry.decode(recorded).model_dump()
    except ValidationError:
        return recorded.data


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
    fields = _fields(recorded)
    try:
        payload = form.public.model_validate(form.derive(fields, key))
    except (ValidationError, LookupError, AttributeError, TypeError) as error:
        # One malformed event must not stop every integrator's feed; it is logged by id.
        log.warning(
            "event %s (%s at position %d) has no public form: %s",
            recorded.event_id,
            recorded.event_type,
            recorded.position,
            type(error).__name__,
        )
        return None
    facts = facts_of(recorded) or facts or TicketFacts(None, None)
    doc_type = fields.get("doc_type")
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
        # Only the internal types that have a public form are read (and their personal
        # fields opened): most of the log (conversations, notifications) has none.
        wanted = [
            DERIVED_FROM[t] for t in (DERIVED_FROM if types is None else types) if t in DERIVED_FROM
        ]
        if not wanted:
            return [], after
        # Positions are gapless and commit in order (see the store): everything up to the
        # head read first is committed, so a short filtered read scanned up to it.
        head = await self._store.last_position()
        recorded = await self._store.read_all(after_position=after, limit=limit, event_types=wanted)
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


# -- documentation: docs/asyncapi.yaml and docs/EVENTS.md ------------------------------------

DOCS_COMMAND: Final = "python -m shared.public"
ASYNCAPI_FILE: Final = "docs/asyncapi.yaml"
CATALOGUE_FILE: Final = "docs/EVENTS.md"
_EXAMPLE_KEY: Final = b"example-office-key"
_EXAMPLE_TICKET: Final = "KTP-7Q2M9XAB"

_STREAMS: Final[dict[str, tuple[str, str]]] = {
    # The internal event types by stream category, with a meaning for those whose class
    # has no docstring (the class's docstring wins where there is one).
    **{
        name: ("citizen", meaning)
        for name, meaning in {
            "WhatsAppMessageReceived": "",
            "AttachmentStored": "A file the citizen sent was downloaded and stored.",
            "AttachmentRejected": "A file the citizen sent could not be taken.",
            "AttachmentHeld": "",
            "AttachmentLinked": "",
            "RequestSubmitted": "",
            "DuplicateRequestReceived": "",
            "InvalidRequestReceived": "A message that is not a valid request, with its problems.",
            "StatusReported": "",
            "InfoRequested": "The citizen asked for a document's requirements.",
            "MenuRequested": "The citizen was shown the list of services.",
            "UnsupportedCommandReceived": "A command the office does not offer.",
            "CorrectionSubmitted": "",
            "CorrectionRefused": "",
            "CancellationRequested": "",
            "CancellationRefused": "",
            "ComplaintSubmitted": "The citizen's side of a new complaint.",
            "GuidedStepAsked": "",
            "GuidedEnded": "",
        }.items()
    },
    **{
        name: ("request", meaning)
        for name, meaning in {
            "RequestReceived": "",
            "AttachmentAdded": "A file sent after the request was added to it.",
            "RequestChecked": "",
            "RequestClaimed": "",
            "ClaimReleased": "An officer gave the request back, or the claim expired.",
            "ChangesRequested": "",
            "RequestAmended": "",
            "RequestVerified": "An officer approved the request.",
            "RequestRejected": "An officer refused the request, with a reason.",
            "RequestCancelled": "",
            "IssuanceScheduled": "",
            "HandedToSiak": "",
            "IssuanceDelayed": "",
            "IssuanceFailed": "",
            "DocumentIssued": "",
            "DocumentReady": "",
            "DocumentCollected": "",
            "SurveyAnswered": "",
        }.items()
    },
    "ComplaintReceived": ("complaint", "A complaint with its ticket and text."),
    "ComplaintAnswered": ("complaint", ""),
    "DeliveryStatusReceived": ("delivery", ""),
    "NotificationQueued": ("notification", ""),
    "NotificationSent": ("notification", ""),
    "NotificationFailed": ("notification", ""),
    "NotificationStatusChanged": ("notification", ""),
    "CitizenErased": ("erasure", ""),
}


def typed_envelope(public_type: str) -> type[PublicEvent]:
    """The envelope of one public type with its ``type``, version and ``data`` typed: the
    schema integrators validate against (and the AsyncAPI message payload)."""
    data = PUBLIC_TYPES[public_type]
    # Literals made at run time: one per type, so the schema says exactly which.
    type_literal: Any = Literal[public_type]
    version_literal: Any = Literal[data.schema_version]
    model: type[PublicEvent] = create_model(
        f"{public_type}Event",
        __base__=PublicEvent,
        __doc__=data.__doc__,
        type=(type_literal, Field(description="The public event type.")),
        schema_version=(
            version_literal,
            Field(description="Version of this type's `data` schema."),
        ),
        data=(data, Field(description=f"{public_type}'s own payload.")),
    )
    return model


_SENTENCE_END: Final = re.compile(r"[.:]\s+(?=[A-Z`])")


def _first_sentence(text: str | None) -> str:
    flat = " ".join((text or "").split())
    end = _SENTENCE_END.search(flat)
    return flat if end is None else flat[: end.start() + 1]


def _example_events() -> list[Event]:
    """A KTP request's life with made-up personal data, one event per public type."""
    ticket, phone, day = _EXAMPLE_TICKET, "6281234567890", date(2026, 12, 9)
    at = datetime(2026, 12, 7, 3, 0, tzinfo=UTC)
    office = internal.Delivery(channel="office", place="Loket 3")
    return [
        internal.RequestReceived(
            ticket=ticket,
            phone=phone,
            doc_type="KTP",
            citizen="citizen-wa_0f2c",
            kecamatan_code="360301",
            applicant={"nik": "3603015708990001", "nama": "Siti Aminah", "reason": "RUSAK"},
            message_id="wamid.1",
            received_at=at,
        ),
        internal.RequestChecked(
            ticket=ticket,
            round=1,
            results=(
                internal.CheckResult(check="nik_region", passed=True),
                internal.CheckResult(check="papers", passed=True),
            ),
            outcome="passed",
        ),
        internal.RequestClaimed(
            ticket=ticket, officer_id="officer-17", officer_name="Bambang", by="officer-17"
        ),
        internal.ClaimReleased(ticket=ticket, officer_id="officer-17", reason="released"),
        internal.ChangesRequested(
            ticket=ticket,
            phone=phone,
            doc_type="KTP",
            reasons=("Foto KK buram.",),
            officer_id="officer-17",
        ),
        internal.RequestAmended(ticket=ticket, phone=phone, message_id="wamid.2", attachments=()),
        internal.RequestVerified(
            ticket=ticket, phone=phone, doc_type="KTP", officer_id="officer-17"
        ),
        internal.RequestRejected(
            ticket=ticket,
            phone=phone,
            doc_type="KTP",
            officer_id="officer-17",
            reason="Data tidak sesuai.",
        ),
        internal.RequestCancelled(ticket=ticket, phone=phone, doc_type="KTP", reason="citizen"),
        internal.IssuanceScheduled(
            ticket=ticket,
            phone=phone,
            doc_type="KTP",
            promised_on=day,
            working_days=2,
            delivery=office,
        ),
        internal.HandedToSiak(ticket=ticket, idempotency_key=f"siak-{ticket}"),
        internal.IssuanceDelayed(
            ticket=ticket,
            phone=phone,
            doc_type="KTP",
            previous_date=day,
            promised_on=date(2026, 12, 11),
            reason="siak_unavailable",
        ),
        internal.IssuanceFailed(ticket=ticket, status=422, message="NIK tidak ditemukan"),
        internal.DocumentIssued(
            ticket=ticket,
            phone=phone,
            doc_type="KTP",
            document_number="3603015708990001",
            issued_at=at,
            ready_on=day,
            delivery=office,
        ),
        internal.DocumentReady(
            ticket=ticket,
            phone=phone,
            doc_type="KTP",
            document_number="3603015708990001",
            ready_on=day,
            delivery=office,
        ),
        internal.DocumentCollected(
            ticket=ticket, phone=phone, doc_type="KTP", officer_id="officer-17"
        ),
        internal.SurveyAnswered(ticket=ticket, phone=phone, message_id="wamid.3", score=4),
    ]


def examples() -> dict[str, PublicEvent]:
    """One public event of each type, derived from :func:`_example_events` as the
    publisher derives them."""
    found: dict[str, PublicEvent] = {}
    facts: TicketFacts | None = None
    for position, event in enumerate(_example_events(), start=1):
        new = event.to_new_event(
            event_id=deterministic_event_id("example", event.event_type),
            occurred_at=datetime(2026, 12, 7, 3, 0, tzinfo=UTC) + timedelta(minutes=position),
        )
        recorded = RecordedEvent(
            **new.model_dump(),
            stream_id=internal.request_stream(_EXAMPLE_TICKET),
            stream_version=position,
            position=position,
            recorded_at=new.occurred_at,
        )
        facts = facts_of(recorded) or facts
        public = public_event(recorded, facts, _EXAMPLE_KEY)
        if public is not None:
            found[public.type] = public
    return found


_ASYNCAPI_DESCRIPTION: Final = """\
Public events of the adminduk civil-registry front office, for integrators (other
agencies). Every event of a document request is published, in the order it happened, on
`adminduk.public.<Type>` (JetStream stream `ADMINDUK_PUBLIC`, kept for
`ADMINDUK_PUBLIC_STREAM_MAX_AGE`). Connect as NATS user `integrator` with
`ADMINDUK_INTEGRATOR_PASSWORD`; the embedded server writes its URL to
`$ADMINDUK_DATA_DIR/nats.url`. A plain subscription receives events live; to read the
stored stream from a position, use a pull consumer on `ADMINDUK_PUBLIC` through JetStream
domain `adminduk` (the stream lives in the services' account: `nc.jetstream(domain=
"adminduk")` in Python, `nats --js-domain adminduk` on the command line). Integrators who
cannot speak NATS register a signed HTTP webhook instead (docs/WEBHOOKS.md).

No event carries a NIK, a No. KK, a name or a phone number in clear: a request's subject
is a keyed pseudonym, officers' free text is published only as counts.

Headers: `Nats-Msg-Id` (= the envelope's `id`; deduplicate on it), `Adminduk-Position`
(= `position`, for replay from a position), `Adminduk-Event-Type` (= `type`), and the W3C
trace context (`traceparent`) of the request's trace.

Versioning: each type's `schema_version` changes when the meaning of its `data` changes;
new optional fields may be added within a version. The catalogue with examples is
docs/EVENTS.md. Generated by `python -m shared.public`.
"""


def asyncapi() -> dict[str, Any]:
    """The AsyncAPI 3.0 document of the public events, made by FastStream from a broker
    that declares one publisher per public type with its typed envelope as schema."""
    from faststream.nats import NatsBroker  # noqa: PLC0415 - only the docs need it
    from faststream.nats.security import NatsUserPassword  # noqa: PLC0415
    from faststream.specification import AsyncAPI  # noqa: PLC0415

    broker = NatsBroker(
        "nats://localhost:4222",
        description="The office's NATS server (embedded: the URL is in "
        "$ADMINDUK_DATA_DIR/nats.url).",
        security=NatsUserPassword("integrator", "ADMINDUK_INTEGRATOR_PASSWORD"),
    )
    for public_type, data in PUBLIC_TYPES.items():
        broker.publisher(
            public_subject(public_type),
            title=public_type,
            description=_first_sentence(data.__doc__),
            schema=typed_envelope(public_type),
        )
    specification = AsyncAPI(
        broker,
        title="adminduk public events",
        version="1.0.0",
        description=_ASYNCAPI_DESCRIPTION,
        identifier="urn:adminduk:public-events",
    ).to_specification()
    document: dict[str, Any] = json.loads(specification.to_json())
    # FastStream keeps publishers in a set: sort, so that the committed file is stable.
    for section in (document, document["components"]):
        for name in ("channels", "operations", "messages", "schemas"):
            if name in section:
                section[name] = dict(sorted(section[name].items()))
    return document


_PLAIN_KEY: Final = re.compile(r"[A-Za-z_$][\w.$/-]*")


def _yaml_scalar(value: object) -> str:
    """A JSON scalar is a YAML scalar too (strings double-quoted, with JSON's escapes)."""
    if isinstance(value, dict | list):
        return "{}" if isinstance(value, dict) else "[]"
    return json.dumps(value, ensure_ascii=False)


def _literal_block(text: str, indent: int) -> list[str] | None:
    """A multi-line text as a YAML literal block (``|``), when it can be one as it is."""
    body = text.removesuffix("\n")
    lines = body.split("\n")
    if "\n" not in body or body.endswith("\n") or lines[0].startswith(" "):
        return None
    if any(not line.isprintable() for line in lines):
        return None
    pad = " " * indent
    return [f"|{'' if text.endswith(chr(10)) else '-'}"] + [
        f"{pad}{line}" if line else "" for line in lines
    ]


def to_yaml(value: object, indent: int = 0) -> list[str]:
    """Block-style YAML lines of a JSON value (no YAML library in the project: the subset
    a JSON document needs is small)."""
    pad = " " * indent
    lines: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            name = key if _PLAIN_KEY.fullmatch(key) else json.dumps(key, ensure_ascii=False)
            block = _literal_block(item, indent + 2) if isinstance(item, str) else None
            if isinstance(item, dict | list) and item:
                lines.append(f"{pad}{name}:")
                lines.extend(to_yaml(item, indent + 2))
            elif block is not None:
                lines.append(f"{pad}{name}: {block[0]}")
                lines.extend(block[1:])
            else:
                lines.append(f"{pad}{name}: {_yaml_scalar(item)}")
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, dict | list) and item:
                nested = to_yaml(item, indent + 2)
                lines.append(f"{pad}- {nested[0][indent + 2 :]}")
                lines.extend(nested[1:])
            else:
                lines.append(f"{pad}- {_yaml_scalar(item)}")
    else:
        lines.append(pad + _yaml_scalar(value))
    return lines


def asyncapi_yaml() -> str:
    header = f"# Generated by `{DOCS_COMMAND}` from shared/public.py: do not edit.\n"
    return header + "\n".join(to_yaml(asyncapi())) + "\n"


def _schema_type(schema: dict[str, Any]) -> str:
    """A field's JSON schema as a short type for the catalogue's tables."""
    if "$ref" in schema:
        return str(schema["$ref"]).rsplit("/", 1)[-1]
    if "anyOf" in schema:
        return " or ".join(_schema_type(option) for option in schema["anyOf"])
    if "enum" in schema or "const" in schema:
        options = schema.get("enum", [schema.get("const")])
        return " / ".join(f"`{json.dumps(option)}`" for option in options)
    kind = str(schema.get("type", "any"))
    if kind == "array":
        return f"list of {_schema_type(schema.get('items', {}))}"
    return f"{kind} ({schema['format']})" if "format" in schema else kind


def _field_table(model: type[BaseModel]) -> list[str]:
    schema = model.model_json_schema()
    definitions = schema.get("$defs", {})
    rows = ["| field | type | meaning |", "|---|---|---|"]
    for name, field_schema in schema.get("properties", {}).items():
        meaning = field_schema.get("description") or ""
        kind = _schema_type(field_schema)
        rows.append(f"| `{name}` | {kind} | {meaning.replace('|', '/')} |")
    if len(rows) == 2:
        rows.append("| | | (no fields) |")
    for name, definition in definitions.items():
        rows.append("")
        rows.append(f"`{name}`: {_first_sentence(definition.get('description'))}")
        rows.append("")
        rows.append("| field | type | meaning |")
        rows.append("|---|---|---|")
        for field, field_schema in definition.get("properties", {}).items():
            meaning = field_schema.get("description") or ""
            kind = _schema_type(field_schema)
            rows.append(f"| `{field}` | {kind} | {meaning.replace('|', '/')} |")
    return rows


def catalogue() -> str:
    """docs/EVENTS.md: every public type (subject, version, fields, example) and every
    internal event type with its stream and meaning."""
    samples = examples()
    lines = [
        "# Event catalogue",
        "",
        f"Generated by `{DOCS_COMMAND}` from `shared/public.py` and `shared/contracts.py`;",
        "do not edit by hand. The same schemas, machine-readable: [asyncapi.yaml](asyncapi.yaml).",
        "",
        "## Public events (for integrators)",
        "",
        *_ASYNCAPI_DESCRIPTION.replace("docs/EVENTS.md", "this page").splitlines(),
        "",
        "### The envelope",
        "",
        "Every public event is this JSON object; `data` depends on `type`.",
        "",
        *_field_table(PublicEvent),
        "",
        "| type | subject | version | derived from |",
        "|---|---|---|---|",
    ]
    for public_type, data in PUBLIC_TYPES.items():
        lines.append(
            f"| [{public_type}](#{public_type.lower()}) | `{public_subject(public_type)}` | "
            f"{data.schema_version} | `{DERIVED_FROM[public_type]}` |"
        )
    for public_type, data in PUBLIC_TYPES.items():
        example = samples[public_type].model_dump(mode="json")
        lines += [
            "",
            f"### {public_type}",
            "",
            " ".join((data.__doc__ or "").split()),
            "",
            f"Subject `{public_subject(public_type)}`, schema version {data.schema_version}, "
            f"derived from the internal `{DERIVED_FROM[public_type]}`."
            + (" Promised by the contract." if public_type in REQUIRED_TYPES else ""),
            "",
            "`data`:",
            "",
            *_field_table(data),
            "",
            "```json",
            json.dumps(example, indent=2, ensure_ascii=False),
            "```",
        ]
    lines += [
        "",
        "## Internal events (for the project's own services)",
        "",
        "On JetStream stream `ADMINDUK_EVENTS`, subject `adminduk.events.<category>.<Type>`.",
        "They carry personal data and are never given to integrators as they are.",
        "",
        "| type | stream category | public form | meaning |",
        "|---|---|---|---|",
    ]
    for event_class in sorted(internal.registry.classes(), key=_internal_order):
        name = event_class.event_type
        category, fallback = _STREAMS.get(name, ("?", ""))
        public = next((t for t, source in DERIVED_FROM.items() if source == name), None)
        meaning = _first_sentence(event_class.__doc__) or fallback
        lines.append(
            f"| `{name}` | `{category}` | {f'`{public}`' if public else '-'} | "
            f"{meaning.replace('|', '/')} |"
        )
    return "\n".join(lines) + "\n"


def _internal_order(event_class: type[Event]) -> int:
    """By stream category; within one, in the order of shared/contracts.py (stable sort)."""
    order = ["citizen", "request", "complaint", "delivery", "notification", "erasure"]
    category = _STREAMS.get(event_class.event_type, ("?", ""))[0]
    return order.index(category) if category in order else len(order)


def write_docs(root: Path) -> list[Path]:
    """Write docs/asyncapi.yaml and docs/EVENTS.md under ``root``; returns the paths."""
    written = []
    for relative, text in ((ASYNCAPI_FILE, asyncapi_yaml()), (CATALOGUE_FILE, catalogue())):
        path = root / relative
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


if __name__ == "__main__":
    for written_path in write_docs(Path(__file__).resolve().parents[1]):
        print(f"wrote {written_path}")
