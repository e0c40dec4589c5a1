"""Public events: what integrators (other agencies) are told, without personal data.

This module is the contract's vocabulary: the envelope every public event travels in
(:class:`PublicEvent`), one versioned payload model per public type (:class:`PublicData`),
every type by name (:data:`PUBLIC_TYPES`) and the typed envelope of one type
(:func:`typed_envelope`), the schema integrators validate against. How a public event is
derived from an internal one is :mod:`shared.public.derive`.

* the envelope: the internal event's id (integrators deduplicate on it), the public type and
  its schema version, the global position (to replay from), when it happened, the ticket,
  the document type and the kecamatan code;
* ``data``: the type's own payload, one versioned model per type.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, ClassVar, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from shared.bus.jetstream import PUBLIC_SUBJECT_PREFIX


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


PUBLIC_TYPES: Final[dict[str, type[PublicData]]] = {
    data.public_type: data
    for data in (
        RequestReceivedData,
        RequestCheckedData,
        RequestClaimedData,
        ClaimReleasedData,
        ChangesRequestedData,
        RequestAmendedData,
        RequestVerifiedData,
        RequestRejectedData,
        RequestCancelledData,
        IssuanceScheduledData,
        HandedToSiakData,
        IssuanceDelayedData,
        IssuanceFailedData,
        DocumentIssuedData,
        DocumentReadyData,
        DocumentCollectedData,
        SurveyAnsweredData,
    )
}
"""Every public type by name, with its payload model (in a request's order of life)."""


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
"""The core types: one for each step every integration needs (a request received, verified,
sent back for changes or rejected, its document issued and collected); docs/EVENTS.md marks
them."""


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
