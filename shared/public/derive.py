"""How a public event is derived from an internal one (:mod:`shared.contracts`).

Internal events carry phone numbers, NIKs, names and officers' free text. A public event
is derived from one internal event of a request stream and keeps only facts that are safe to
hand out. Rules of the derivation: a NIK or No. KK appears only as a keyed pseudonym (the
request's ``subject``); names, phone numbers and document numbers (a KTP's number is the
NIK) never appear; officers' free text (reasons) may name people, so only counts are
published; officers appear by id, never by name.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from pydantic import ValidationError

from shared import contracts as internal
from shared.eventstore.envelope import Event, RecordedEvent
from shared.privacy import pseudonym
from shared.public.models import (
    ChangesRequestedData,
    ClaimReleasedData,
    DocumentCollectedData,
    DocumentIssuedData,
    DocumentReadyData,
    HandedToSiakData,
    IssuanceDelayedData,
    IssuanceFailedData,
    IssuanceScheduledData,
    PublicData,
    PublicEvent,
    RequestAmendedData,
    RequestCancelledData,
    RequestCheckedData,
    RequestClaimedData,
    RequestReceivedData,
    RequestRejectedData,
    RequestVerifiedData,
    SurveyAnsweredData,
)

log = logging.getLogger(__name__)

SUBJECT_PURPOSE: Final = "public-subject"
"""Purpose of the keyed pseudonym of a request's subject (see :func:`subject_pseudonym`)."""
REQUEST_CATEGORY: Final = "request"
_KECAMATAN: Final = re.compile(r"\d{6}")


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


DERIVED_FROM: Final[dict[str, str]] = {
    form.public.public_type: name for name, form in _FORMS.items()
}
"""The internal event type each public type is derived from (every type of
:data:`~shared.public.models.PUBLIC_TYPES` has one)."""


def has_public_form(event_type: str) -> bool:
    return event_type in _FORMS


def kecamatan_code(value: object) -> str | None:
    return value if isinstance(value, str) and _KECAMATAN.fullmatch(value) else None


def facts_of(received: RecordedEvent) -> TicketFacts | None:
    """The facts a request's ``RequestReceived`` gives every later event of the request."""
    if received.event_type != internal.RequestReceived.event_type:
        return None
    fields = _fields(received)
    doc_type = fields.get("doc_type")
    return TicketFacts(
        doc_type=doc_type if isinstance(doc_type, str) and doc_type else None,
        kecamatan=kecamatan_code(fields.get("kecamatan_code")),
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
