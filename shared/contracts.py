"""Internal event contracts: what the services tell each other.

Services meet only through these events (a service never imports another's domain). They
are internal: they carry personal data (phone numbers, NIK, names) and are never shown to
integrators as they are; public events are derived from them without it.

Streams:
* ``citizen-<pseudonym>``: one WhatsApp number's conversation (the pseudonym is a keyed
  hash of the number, so no stream id reveals it);
* ``request-<TICKET>``: one document request;
* ``complaint-<TICKET>``: one complaint;
* ``delivery-<wamid>``: delivery statuses of one outbound WhatsApp message;
* ``notification-<id>``: one message the office sends.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.eventstore.envelope import Event, EventRegistry, RecordedEvent
from shared.privacy import pseudonym

registry = EventRegistry()


def citizen_stream(phone: str, key: bytes) -> str:
    return f"citizen-{pseudonym(phone, key, purpose='wa')}"


def request_stream(ticket: str) -> str:
    return f"request-{ticket}"


def complaint_stream(ticket: str) -> str:
    return f"complaint-{ticket}"


class _Value(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class MediaRef(_Value):
    """A file as the webhook announced it (the bytes are fetched afterwards)."""

    media_id: str
    kind: Literal["image", "document"]
    mime_type: str | None = None
    sha256: str | None = None
    filename: str | None = None


class Attachment(_Value):
    """A stored file: its bytes are in the media store under ``sha256``."""

    sha256: str
    content_type: str
    size: int
    filename: str | None = None
    message_id: str


class Problem(_Value):
    field: str
    message: str


# -- citizen stream ------------------------------------------------------------------


@registry.register
class WhatsAppMessageReceived(Event):
    """A citizen's WhatsApp message, exactly once per WhatsApp message id."""

    schema_version: Literal[1] = 1
    personal: ClassVar[frozenset[str]] = frozenset(
        {"phone", "profile_name", "text", "media.filename"}
    )
    citizen_field: ClassVar[str | None] = "phone"
    message_id: str
    phone: str
    profile_name: str | None = None
    sent_at: datetime
    message_type: str
    text: str | None = None
    """The text body, a media caption, or an interactive reply's title."""
    media: MediaRef | None = None
    reply_id: str | None = None
    """The id of the button or list row the citizen chose."""
    context_message_id: str | None = None
    phone_number_id: str


@registry.register
class AttachmentStored(Event):
    schema_version: Literal[1] = 1
    personal: ClassVar[frozenset[str]] = frozenset({"phone", "attachment.filename"})
    citizen_field: ClassVar[str | None] = "phone"
    phone: str
    attachment: Attachment


@registry.register
class AttachmentRejected(Event):
    schema_version: Literal[1] = 1
    personal: ClassVar[frozenset[str]] = frozenset({"phone"})
    citizen_field: ClassVar[str | None] = "phone"
    phone: str
    message_id: str
    reason: Literal["too_large", "unsupported_type", "digest_mismatch", "download_failed"]
    detail: str


@registry.register
class AttachmentHeld(Event):
    """A file that belongs to no request yet: kept for a request text that may follow."""

    schema_version: Literal[1] = 1
    personal: ClassVar[frozenset[str]] = frozenset({"phone"})
    citizen_field: ClassVar[str | None] = "phone"
    phone: str
    message_id: str


@registry.register
class AttachmentLinked(Event):
    """A file sent after a request was added to it."""

    schema_version: Literal[1] = 1
    personal: ClassVar[frozenset[str]] = frozenset({"phone"})
    citizen_field: ClassVar[str | None] = "phone"
    phone: str
    ticket: str
    sha256: str


@registry.register
class RequestSubmitted(Event):
    """The citizen's side of a new request: links the conversation to the ticket."""

    schema_version: Literal[1] = 1
    personal: ClassVar[frozenset[str]] = frozenset({"subject_key"})
    ticket: str
    doc_type: str
    message_id: str
    attachments: tuple[str, ...] = ()
    subject_key: str | None = None
    """Who the request is for (see :func:`subject_key`): lets the conversation spot a
    repeated request before the status read model has it."""


@registry.register
class DuplicateRequestReceived(Event):
    """A request for a person and document that already have an open request: the citizen
    is given that ticket, not a new one."""

    schema_version: Literal[1] = 1
    personal: ClassVar[frozenset[str]] = frozenset({"phone"})
    citizen_field: ClassVar[str | None] = "phone"
    phone: str
    message_id: str
    doc_type: str
    existing_ticket: str
    status: str | None = None


@registry.register
class InvalidRequestReceived(Event):
    schema_version: Literal[1] = 1
    personal: ClassVar[frozenset[str]] = frozenset({"phone", "problems"})
    citizen_field: ClassVar[str | None] = "phone"
    phone: str
    message_id: str
    doc_type: str | None
    problems: tuple[Problem, ...]


@registry.register
class StatusReported(Event):
    """The answer to ``#STATUS#``: ``status`` is None when the ticket is not the sender's."""

    schema_version: Literal[1] = 1
    personal: ClassVar[frozenset[str]] = frozenset({"phone"})
    citizen_field: ClassVar[str | None] = "phone"
    phone: str
    message_id: str
    ticket: str
    status: str | None
    doc_type: str | None = None
    promised_on: date | None = None
    """While the document is in progress or ready: the day it can be collected."""


@registry.register
class InfoRequested(Event):
    schema_version: Literal[1] = 1
    personal: ClassVar[frozenset[str]] = frozenset({"phone"})
    citizen_field: ClassVar[str | None] = "phone"
    phone: str
    message_id: str
    doc_type: str | None


@registry.register
class MenuRequested(Event):
    schema_version: Literal[1] = 1
    personal: ClassVar[frozenset[str]] = frozenset({"phone"})
    citizen_field: ClassVar[str | None] = "phone"
    phone: str
    message_id: str
    understood: bool
    """False when the message was not understood (the menu then says so)."""


@registry.register
class UnsupportedCommandReceived(Event):
    schema_version: Literal[1] = 1
    personal: ClassVar[frozenset[str]] = frozenset({"phone", "command"})
    citizen_field: ClassVar[str | None] = "phone"
    phone: str
    message_id: str
    command: str
    ticket: str | None = None


@registry.register
class CorrectionSubmitted(Event):
    """The citizen answered a correction request (``#LENGKAPI#<ticket>``, or files sent
    while a correction is pending). Verification decides whether it amends the request."""

    schema_version: Literal[1] = 1
    personal: ClassVar[frozenset[str]] = frozenset({"phone", "attachments[].filename"})
    citizen_field: ClassVar[str | None] = "phone"
    phone: str
    ticket: str
    message_id: str
    attachments: tuple[Attachment, ...] = ()


@registry.register
class CorrectionRefused(Event):
    """A ``#LENGKAPI#`` that cannot be taken: the ticket is not the sender's, nothing is
    pending, or no file came with it."""

    schema_version: Literal[1] = 1
    personal: ClassVar[frozenset[str]] = frozenset({"phone"})
    citizen_field: ClassVar[str | None] = "phone"
    phone: str
    message_id: str
    ticket: str
    reason: Literal["unknown_ticket", "not_pending", "no_files"]
    status: str | None = None


@registry.register
class CancellationRequested(Event):
    """``#BATAL#<ticket>`` from the number that made the request. Verification decides:
    the request is cancelled, or the refusal is explained."""

    schema_version: Literal[1] = 1
    personal: ClassVar[frozenset[str]] = frozenset({"phone"})
    citizen_field: ClassVar[str | None] = "phone"
    phone: str
    ticket: str
    message_id: str


@registry.register
class CancellationRefused(Event):
    """A ``#BATAL#`` that cannot be done: the ticket is not the sender's, or the request is
    already with SIAK, issued, decided or closed (``status`` says which)."""

    schema_version: Literal[1] = 1
    personal: ClassVar[frozenset[str]] = frozenset({"phone"})
    citizen_field: ClassVar[str | None] = "phone"
    phone: str
    message_id: str
    ticket: str
    reason: Literal["unknown_ticket", "not_cancellable"]
    status: str | None = None


@registry.register
class ComplaintSubmitted(Event):
    schema_version: Literal[1] = 1
    ticket: str
    message_id: str


# -- request and complaint streams ----------------------------------------------------


@registry.register
class RequestReceived(Event):
    """A valid document request with its ticket. ``applicant`` holds the typed fields of
    the request (NIK, No. KK, names, places): personal data, internal only."""

    schema_version: Literal[1] = 1
    personal: ClassVar[frozenset[str]] = frozenset({"phone", "applicant", "attachments[].filename"})
    citizen_field: ClassVar[str | None] = "phone"
    ticket: str
    doc_type: str
    citizen: str
    phone: str
    kecamatan_code: str | None
    applicant: dict[str, Any]
    attachments: tuple[Attachment, ...] = ()
    message_id: str
    received_at: datetime


@registry.register
class AttachmentAdded(Event):
    schema_version: Literal[1] = 1
    ticket: str
    attachment: Attachment


class CheckResult(_Value):
    """One automatic check of a request. ``fixable`` marks what the citizen can put right
    (it becomes a correction request); what is not goes to officers as a flag."""

    check: Literal["nik_region", "age", "kk_region", "papers", "duplicate"]
    passed: bool
    fixable: bool = False
    reason: str = ""
    """In Bahasa Indonesia, shown to officers and (when fixable) to the citizen."""
    related_ticket: str | None = None


@registry.register
class RequestChecked(Event):
    """The automatic checks of a request (on receipt, and again after each amendment).

    ``outcome``: ``passed`` and ``flagged`` put it in the officers' queue (``flagged`` with
    the failed checks shown); ``changes_needed`` asks the citizen for what they can fix;
    ``duplicate`` closes it in favour of ``related_ticket`` of the duplicate check."""

    schema_version: Literal[1] = 1
    ticket: str
    round: int
    results: tuple[CheckResult, ...]
    outcome: Literal["passed", "flagged", "changes_needed", "duplicate"]


@registry.register
class RequestClaimed(Event):
    """An officer took the request. ``by`` differs from ``officer_id`` when a supervisor
    assigned it."""

    schema_version: Literal[1] = 1
    ticket: str
    officer_id: str
    officer_name: str
    by: str


@registry.register
class ClaimReleased(Event):
    schema_version: Literal[1] = 1
    ticket: str
    officer_id: str
    reason: Literal["released", "expired"]


@registry.register
class ChangesRequested(Event):
    """The citizen is asked to correct the request; ``officer_id`` is None when the
    automatic checks asked."""

    schema_version: Literal[1] = 1
    personal: ClassVar[frozenset[str]] = frozenset({"phone", "reasons"})
    citizen_field: ClassVar[str | None] = "phone"
    ticket: str
    reasons: tuple[str, ...]
    officer_id: str | None
    phone: str
    doc_type: str


@registry.register
class RequestAmended(Event):
    """The citizen's correction arrived; the request is checked again."""

    schema_version: Literal[1] = 1
    personal: ClassVar[frozenset[str]] = frozenset({"phone", "attachments[].filename"})
    citizen_field: ClassVar[str | None] = "phone"
    ticket: str
    message_id: str
    attachments: tuple[Attachment, ...]
    phone: str


@registry.register
class RequestVerified(Event):
    schema_version: Literal[1] = 1
    personal: ClassVar[frozenset[str]] = frozenset({"phone"})
    citizen_field: ClassVar[str | None] = "phone"
    ticket: str
    officer_id: str
    phone: str
    doc_type: str


@registry.register
class RequestRejected(Event):
    schema_version: Literal[1] = 1
    personal: ClassVar[frozenset[str]] = frozenset({"phone", "reason"})
    citizen_field: ClassVar[str | None] = "phone"
    ticket: str
    officer_id: str
    reason: str
    phone: str
    doc_type: str


@registry.register
class RequestCancelled(Event):
    """Closed before issuance: by the citizen (``#BATAL#``) or as a duplicate of another
    open request of the same document for the same person."""

    schema_version: Literal[1] = 1
    personal: ClassVar[frozenset[str]] = frozenset({"phone"})
    citizen_field: ClassVar[str | None] = "phone"
    ticket: str
    reason: Literal["citizen", "duplicate"]
    duplicate_of: str | None = None
    phone: str
    doc_type: str


# -- issuance (on the request stream) ------------------------------------------------


class Delivery(_Value):
    """How and where the citizen gets the document."""

    channel: Literal["office", "whatsapp"]
    """``office``: collected at the counter; ``whatsapp``: a signed PDF sent in the chat."""
    place: str | None = None
    bring: tuple[str, ...] = ()
    """What to show or bring when collecting."""


@registry.register
class IssuanceScheduled(Event):
    """A verified request has its promised date: the day it can be collected (or, for a
    letter sent electronically, the day it is sent at the latest)."""

    schema_version: Literal[1] = 1
    personal: ClassVar[frozenset[str]] = frozenset({"phone"})
    citizen_field: ClassVar[str | None] = "phone"
    ticket: str
    doc_type: str
    phone: str
    promised_on: date
    working_days: int
    delivery: Delivery


@registry.register
class HandedToSiak(Event):
    """The first submission to SIAK is about to be made; from here on the request can no
    longer be cancelled. ``idempotency_key`` is the one every retry carries."""

    schema_version: Literal[1] = 1
    ticket: str
    idempotency_key: str


@registry.register
class IssuanceDelayed(Event):
    """The promise cannot be kept (SIAK unavailable): the citizen is given a new date."""

    schema_version: Literal[1] = 1
    personal: ClassVar[frozenset[str]] = frozenset({"phone"})
    citizen_field: ClassVar[str | None] = "phone"
    ticket: str
    doc_type: str
    phone: str
    previous_date: date
    promised_on: date
    reason: Literal["siak_unavailable", "siak_refused"]


@registry.register
class IssuanceFailed(Event):
    """SIAK refused the submission for good: officers must look at it."""

    schema_version: Literal[1] = 1
    ticket: str
    status: int | None
    message: str


@registry.register
class DocumentIssued(Event):
    """SIAK issued the document (its number exists). A document collected at the office is
    then produced (printed) until ``ready_on``, when :class:`DocumentReady` follows; a letter
    for the chat (``delivery.channel == "whatsapp"``) is the signed PDF ``letter``, sent at
    once, which completes the request."""

    schema_version: Literal[1] = 1
    # A KTP-el's number is the NIK, a family card's the No. KK: personal, like the letter's
    # file name.
    personal: ClassVar[frozenset[str]] = frozenset({"phone", "document_number", "letter.filename"})
    citizen_field: ClassVar[str | None] = "phone"
    ticket: str
    doc_type: str
    phone: str
    document_number: str
    issued_at: datetime
    ready_on: date
    delivery: Delivery
    letter: Attachment | None = None


@registry.register
class DocumentReady(Event):
    """The document can be collected at the office from today."""

    schema_version: Literal[1] = 1
    personal: ClassVar[frozenset[str]] = frozenset({"phone", "document_number"})
    citizen_field: ClassVar[str | None] = "phone"
    ticket: str
    doc_type: str
    phone: str
    document_number: str
    ready_on: date
    delivery: Delivery


@registry.register
class DocumentCollected(Event):
    """The citizen picked the document up at the office (recorded by an officer)."""

    schema_version: Literal[1] = 1
    personal: ClassVar[frozenset[str]] = frozenset({"phone"})
    citizen_field: ClassVar[str | None] = "phone"
    ticket: str
    doc_type: str
    phone: str
    officer_id: str


@registry.register
class SurveyAnswered(Event):
    """The one-question satisfaction survey after a request is done (1 = tidak puas ...
    4 = sangat puas, the scale of the public satisfaction index)."""

    schema_version: Literal[1] = 1
    personal: ClassVar[frozenset[str]] = frozenset({"phone"})
    citizen_field: ClassVar[str | None] = "phone"
    ticket: str
    phone: str
    message_id: str
    score: int = Field(ge=1, le=4)


# -- complaints ----------------------------------------------------------------------


@registry.register
class ComplaintReceived(Event):
    schema_version: Literal[1] = 1
    personal: ClassVar[frozenset[str]] = frozenset({"phone", "text"})
    citizen_field: ClassVar[str | None] = "phone"
    ticket: str
    citizen: str
    phone: str
    text: str
    related_ticket: str | None = None
    message_id: str
    received_at: datetime


@registry.register
class ComplaintAnswered(Event):
    """An officer's written answer, sent to the citizen; it closes the complaint."""

    schema_version: Literal[1] = 1
    personal: ClassVar[frozenset[str]] = frozenset({"phone", "answer"})
    citizen_field: ClassVar[str | None] = "phone"
    ticket: str
    officer_id: str
    answer: str
    phone: str


# -- delivery statuses and notifications ---------------------------------------------


@registry.register
class DeliveryStatusReceived(Event):
    """A status of one of our outbound messages (sent, delivered, read, failed)."""

    schema_version: Literal[1] = 1
    personal: ClassVar[frozenset[str]] = frozenset({"recipient"})
    citizen_field: ClassVar[str | None] = "recipient"
    wamid: str
    status: str
    at: datetime
    recipient: str | None = None
    error_codes: tuple[int, ...] = ()
    error_titles: tuple[str, ...] = ()
    callback_data: str | None = None


# -- notification stream (``notification-<cause event id>``) ------------------------------

SendForm = Literal["text", "interactive", "document", "template"]
"""How a message went out: free-form (text, interactive, document) or as a template."""


@registry.register
class NotificationQueued(Event):
    """Notify's intent, recorded before any attempt to send: this message is owed to the
    citizen. ``message`` is the rendered message (free-form text, its buttons or list, the
    attached file, and the template that says it outside the 24-hour window)."""

    schema_version: Literal[1] = 1
    personal: ClassVar[frozenset[str]] = frozenset({"to", "message"})
    citizen_field: ClassVar[str | None] = "to"
    cause_event_id: str
    kind: str
    to: str
    ticket: str | None = None
    message: dict[str, Any]


@registry.register
class NotificationSent(Event):
    """The Cloud API accepted the message (or, after a crash between the send and its
    record, a delivery status proved that it had: ``reconciled``)."""

    schema_version: Literal[1] = 1
    personal: ClassVar[frozenset[str]] = frozenset({"to"})
    citizen_field: ClassVar[str | None] = "to"
    cause_event_id: str
    kind: str
    to: str
    wamid: str
    form: SendForm = "text"
    template: str | None = None
    """The approved template's name, when sent as a template."""
    attempts: int = 1
    ticket: str | None = None
    reconciled: bool = False


@registry.register
class NotificationFailed(Event):
    """The message cannot be sent (undeliverable number, template refused, policy block,
    outside the window with no template, gave up after retrying): officers see why."""

    schema_version: Literal[1] = 1
    personal: ClassVar[frozenset[str]] = frozenset({"to"})
    citizen_field: ClassVar[str | None] = "to"
    cause_event_id: str
    kind: str
    to: str
    error_code: int | None
    reason: str
    attempts: int = 0
    ticket: str | None = None


DeliveryState = Literal["sent", "delivered", "read", "failed"]


@registry.register
class NotificationStatusChanged(Event):
    """A delivery status from the webhook that moved the message forward (``sent`` ->
    ``delivered`` -> ``read``, or ``failed``); statuses that arrive late are not recorded."""

    schema_version: Literal[1] = 1
    cause_event_id: str
    wamid: str
    status: DeliveryState
    at: datetime
    error_code: int | None = None
    error_title: str | None = None
    ticket: str | None = None


# -- guided mode (citizen stream) ----------------------------------------------------

GUIDED_CHOOSE_DOCUMENT = "doc_type"
GUIDED_CONFIRM = "confirm"


@registry.register
class GuidedStepAsked(Event):
    """Guided mode asks the citizen for one answer: the document (``field`` =
    ``doc_type``), a column of the document's format (a ``FormField`` value), or, with every
    answer in, whether to send (``confirm``). ``answers`` holds every answer accepted so
    far, by field; ``problem`` says why the last answer was not accepted (then ``field``
    is asked again). The conversation's guided state is the last of these events, unless
    a :class:`GuidedEnded` follows it."""

    schema_version: Literal[1] = 1
    personal: ClassVar[frozenset[str]] = frozenset({"phone", "answers", "problem"})
    citizen_field: ClassVar[str | None] = "phone"
    phone: str
    message_id: str
    doc_type: str | None
    field: str
    answers: dict[str, str] = Field(default_factory=dict)
    problem: str | None = None


@registry.register
class GuidedEnded(Event):
    """Guided mode is over: the request was sent (``submitted``, with its ticket), the
    citizen left (``left``), it lapsed after a quiet period (``expired``), or the citizen
    typed the ``#`` format or another command instead (``replaced``)."""

    schema_version: Literal[1] = 1
    personal: ClassVar[frozenset[str]] = frozenset({"phone"})
    citizen_field: ClassVar[str | None] = "phone"
    phone: str
    message_id: str
    reason: Literal["submitted", "left", "expired", "replaced"]
    ticket: str | None = None


# -- erasure (``erasure-<citizen stream>``) -------------------------------------------


@registry.register
class CitizenErased(Event):
    """A citizen's personal data was erased (``adminduk citizens erase``): their data keys
    are destroyed, so every personal field sealed with them now reads as a placeholder,
    everywhere the log was copied. This record itself holds nothing personal."""

    schema_version: Literal[1] = 1
    citizen: str
    """The citizen stream (a keyed pseudonym of the number, never the number)."""
    tickets: tuple[str, ...] = ()
    keys: tuple[str, ...] = ()
    """The ids of the data keys destroyed."""
    files_deleted: int = 0
    by: str
    """Who erased it (the operator's name or account)."""


# -- what the citizen sees -------------------------------------------------------------

CITIZEN_STATUS: dict[str, str] = {
    RequestReceived.event_type: "DITERIMA",
    ChangesRequested.event_type: "PERLU PERBAIKAN",
    RequestAmended.event_type: "DITERIMA",
    RequestVerified.event_type: "DIVERIFIKASI",
    RequestRejected.event_type: "DITOLAK",
    RequestCancelled.event_type: "DIBATALKAN",
    IssuanceScheduled.event_type: "DIPROSES",
    IssuanceDelayed.event_type: "DIPROSES",
    DocumentIssued.event_type: "DIPROSES",
    DocumentReady.event_type: "SIAP DIAMBIL",
    DocumentCollected.event_type: "SELESAI",
}
"""The status a ``#STATUS#`` answer shows after each request event that changes it; see
:func:`citizen_status` for the one event whose status depends on its data."""


def citizen_status(recorded: RecordedEvent) -> str | None:
    """The status a request has after ``recorded`` (None: unchanged). A letter sent in the
    chat is done when it is issued: nothing is left to collect (read from the event decoded
    through the registry, upcast)."""
    if recorded.event_type == DocumentIssued.event_type:
        issued = registry.decode_as(recorded, DocumentIssued)
        return "SELESAI" if issued.delivery.channel == "whatsapp" else "DIPROSES"
    return CITIZEN_STATUS.get(recorded.event_type)


def citizen_status_of(events: Iterable[RecordedEvent]) -> str | None:
    """A request's status as the citizen sees it, after all of ``events``."""
    status = None
    for event in events:
        status = citizen_status(event) or status
    return status


def subject_key(doc_type: str, applicant: dict[str, Any], key: bytes) -> str | None:
    """The keyed pseudonym of :func:`request_subject`: equal for two requests of one
    person and document, meaningless without the office's key."""
    subject = request_subject(doc_type, applicant)
    return None if subject is None else pseudonym(subject, key, purpose="subject")


OPEN_CITIZEN_STATUSES: frozenset[str] = frozenset(
    {"DITERIMA", "PERLU PERBAIKAN", "DIVERIFIKASI", "DIPROSES", "SIAP DIAMBIL"}
)
"""A request in one of these is still in the office's hands: a second one is a duplicate."""


def request_subject(doc_type: str, applicant: dict[str, Any]) -> str | None:
    """Who a request is for, as a key that is the same for two requests of one person:
    the NIK where the format has one, else the family card (with the child, for a birth
    certificate). Personal data: pseudonymise before storing or comparing."""
    if applicant.get("nik"):
        return f"{doc_type}:{applicant['nik']}"
    if doc_type == "AKTA" and applicant.get("no_kk") and applicant.get("nama_anak"):
        return f"{doc_type}:{applicant['no_kk']}:{applicant['nama_anak']}"
    if applicant.get("no_kk"):
        return f"{doc_type}:{applicant['no_kk']}"
    return None
