"""Guided mode: a request built one answer at a time, for citizens who cannot type a format.

A greeting (or a tap on a service in the menu, or on the button offered under a broken
format or a document's information) opens a session: the citizen chooses the document,
then answers its columns one by one (the order of the document's ``#`` format), each
checked at once with the parser's own check of that column, then confirms a summary.
The confirmed answers are composed into the document's ``#`` format and parsed like a
typed message, so a guided request is exactly the request the format gives, and goes the
same way (ticket, duplicate detection, files sent before or during it).

The session is event-sourced on the citizen stream: its state is the last
``GuidedStepAsked`` (see :class:`~services.intake.domain.conversation.GuidedState`), and it
closes with ``GuidedEnded``. This module decides; it does no I/O. :func:`interpret` takes the
open state and a message and returns one of

* :class:`Ask`: record the next question (or the same one again with the problem);
* :class:`Leave`: the citizen left;
* :class:`Submit`: the request is complete;
* :class:`Handle`: not an answer; handle the message as without guided mode, ending the
  session first (``expired``, or ``replaced`` by a ``#`` command or format) if it says so.

What the citizen may send, besides an answer:

==========================================  ==============================================
reply id (button / list row)                typed
==========================================  ==============================================
``svc:<DOC>``, ``guided:start:<DOC>``       (in the first step) ``KTP``, ``ktp``, ``2``, the
                                            document's name
``guided:answer:<VALUE>`` (fixed choices)   the value, as the format accepts it (``hilang``)
``guided:confirm``                          (in the summary) ``ya``, ``kirim``, ``ok``
``guided:edit``                             (in the summary) ``ubah``, ``ganti``, ``tidak``
``guided:restart``                          ``ulang``, ``mulai lagi``, ``dari awal``
``guided:leave``                            ``keluar``, ``batal``, ``stop``, ``berhenti``
``status:<TICKET>``, ``menu``               ``#STATUS#...``, ``#MENU``, ``menu``: end the
                                            session and answer as usual
==========================================  ==============================================
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from types import MappingProxyType
from typing import Final, Literal

from services.intake.domain.conversation import GuidedState
from services.intake.domain.parser import (
    Cancellation,
    DocumentRequest,
    InfoQuery,
    Invalid,
    MenuRequest,
    ParsedMessage,
    Problem,
    Resubmission,
    StatusQuery,
    Unrecognised,
    check_field,
    compose_format,
    parse_message,
)
from shared import reply_ids
from shared.contracts import (
    GUIDED_CHOOSE_DOCUMENT,
    GUIDED_CONFIRM,
    GuidedEnded,
    GuidedStepAsked,
)
from shared.documents import CATALOGUE, DocType, FormField, KtpReason, by_keyword, document
from shared.eventstore.envelope import Event
from shared.identity import OfficeArea

__all__ = [
    "FIXED_CHOICES",
    "SESSION_ENDED",
    "Ask",
    "Decision",
    "Handle",
    "Inbound",
    "Leave",
    "Submit",
    "interpret",
]

EndReason = Literal["expired", "replaced"]

FIXED_CHOICES: Final[Mapping[FormField, tuple[str, ...]]] = MappingProxyType(
    {FormField.ALASAN_KTP: tuple(reason.value for reason in KtpReason)}
)
"""Columns answered by choosing from a list (``guided:answer:<value>``)."""

SESSION_ENDED: Final = (
    "Sesi pengisian sebelumnya sudah berakhir. Silakan pilih layanan untuk memulai lagi."
)
_CHOOSE_DOCUMENT: Final = (
    f"Layanan itu tidak ada di daftar. Pilih dari daftar, atau ketik nomornya (1-{len(CATALOGUE)})."
)
_UNKNOWN_DOCUMENT: Final = "Layanan itu tidak dikenal. Pilih dari daftar layanan."
_NOT_THIS_QUESTION: Final = "Pilihan itu untuk pertanyaan lain. Mohon jawab pertanyaan ini."
_NOT_COMPLETE: Final = "Isian belum lengkap. Mohon jawab pertanyaan ini dulu."
_CONFIRM_CHOICE: Final = (
    "Balas KIRIM untuk mengirim permohonan, UBAH untuk mengisi ulang, atau KELUAR untuk batal."
)

# Typed answers, compared in capitals without spaces or punctuation.
_LEAVE: Final = frozenset({"KELUAR", "BATAL", "STOP", "BERHENTI", "CANCEL"})
_RESTART: Final = frozenset({"ULANG", "ULANGI", "MULAIULANG", "MULAILAGI", "DARIAWAL"})
_CONFIRM: Final = frozenset(
    {"YA", "IYA", "Y", "KIRIM", "OK", "OKE", "BENAR", "SUDAHBENAR", "SETUJU", "LANJUT"}
)
_EDIT: Final = frozenset({"UBAH", "GANTI", "EDIT", "PERBAIKI", "TIDAK", "SALAH"})
_MENU: Final = "MENU"
_NOT_ALNUM: Final = re.compile(r"[^0-9A-Z]+")


@dataclass(frozen=True)
class Inbound:
    """What guided mode reads of a message: its text (or the title of the button or row),
    the id of the button or row, and whether a file came with it."""

    text: str | None
    reply_id: str | None = None
    has_media: bool = False


@dataclass(frozen=True)
class Ask:
    """Record ``GuidedStepAsked``: the next question, or the same one with ``problem``.
    ``ended``: a lapsed session is closed first (``GuidedEnded(expired)``)."""

    doc_type: DocType | None
    field: str
    answers: Mapping[str, str]
    problem: str | None = None
    ended: Literal["expired"] | None = None

    def events(self, phone: str, message_id: str) -> list[Event]:
        """The events to append to the citizen stream, in order."""
        asked = GuidedStepAsked(
            phone=phone,
            message_id=message_id,
            doc_type=None if self.doc_type is None else self.doc_type.value,
            field=self.field,
            answers=dict(self.answers),
            problem=self.problem,
        )
        if self.ended is None:
            return [asked]
        return [GuidedEnded(phone=phone, message_id=message_id, reason=self.ended), asked]


@dataclass(frozen=True)
class Leave:
    """Record ``GuidedEnded(left)``: the citizen left (answered with a goodbye)."""

    def events(self, phone: str, message_id: str) -> list[Event]:
        return [GuidedEnded(phone=phone, message_id=message_id, reason="left")]


@dataclass(frozen=True)
class Submit:
    """Every answer is in and confirmed: ``request`` is what ``text``, the document's
    ``#`` format filled with the answers, parses to. Submit it like a typed request, with
    ``GuidedEnded(submitted)`` and the ticket."""

    request: DocumentRequest
    text: str


@dataclass(frozen=True)
class Handle:
    """Not for guided mode: handle the message as if no session were open, ``parsed``
    being what its text means (None: no text, e.g. a file alone). ``ended``: close the
    session in the same append."""

    parsed: ParsedMessage | None
    ended: EndReason | None = None


Decision = Ask | Leave | Submit | Handle


def interpret(
    state: GuidedState | None,
    message: Inbound,
    *,
    now: datetime,
    idle: timedelta,
    area: OfficeArea,
    today: date,
) -> Decision:
    """What a citizen's message means for guided mode.

    ``state`` is the conversation's open question (None when no session is open), ``now``
    the time the message was sent and ``idle`` how long a session waits for an answer: an
    older session counts as expired and the message is read as if none were open.
    """
    expired = state is not None and state.expired(now, idle)
    if state is None or expired:
        return _without_session(message, "expired" if expired else None, area, today)
    return _within_session(state, message, area, today)


# -- no session open ----------------------------------------------------------------------


def _without_session(  # noqa: PLR0911 - one case per kind of message
    message: Inbound, ended: Literal["expired"] | None, area: OfficeArea, today: date
) -> Decision:
    reply = reply_ids.parse(message.reply_id)
    if reply is not None:
        match reply.action:
            case "svc" | "guided:start":
                return _start(reply.value, ended)
            case reply_ids.GUIDED_LEAVE:
                return Leave()
            case (
                reply_ids.GUIDED_RESTART
                | reply_ids.GUIDED_CONFIRM
                | reply_ids.GUIDED_EDIT
                | "guided:answer"
            ):
                # A button of a session that is over (lapsed, sent or left).
                return _choose_document(SESSION_ENDED, ended)
            case "status" | reply_ids.MENU:
                return Handle(_command_of(reply.action, reply.value, area, today), ended)
            case _:  # survey: the handler answers it
                return Handle(Unrecognised(), None)
    parsed = _parse(message.text, area, today)
    if isinstance(parsed, MenuRequest) and parsed.greeting:
        return _choose_document(None, ended)
    if ended is not None and isinstance(parsed, Unrecognised) and not message.has_media:
        # Most likely an answer to the lapsed question: begin again, saying why.
        return _choose_document(SESSION_ENDED, ended)
    return Handle(parsed, ended)


def _start(value: str | None, ended: Literal["expired"] | None) -> Ask:
    doc_type = _doc_type(value)
    if doc_type is None:
        return _choose_document(_UNKNOWN_DOCUMENT, ended)
    return _next(doc_type, {}, ended=ended)


# -- a session open -----------------------------------------------------------------------


def _within_session(  # noqa: PLR0911 - one case per kind of message
    state: GuidedState, message: Inbound, area: OfficeArea, today: date
) -> Decision:
    doc_type = _doc_type(state.doc_type)
    if state.doc_type is not None and doc_type is None:
        # A document the catalogue no longer has: begin again.
        return _choose_document(_UNKNOWN_DOCUMENT)
    answers = dict(state.answers)
    reply = reply_ids.parse(message.reply_id)
    if reply is not None:
        return _reply(reply, state, doc_type, answers, area, today)

    parsed = _parse(message.text, area, today)
    if _takes_over(message.text, parsed):
        return Handle(parsed, "replaced")
    if message.has_media:
        # A file (with a caption that is no command): kept for the request, as always.
        return Handle(None)
    key = _key(message.text or "")
    if key in _LEAVE:
        return Leave()
    if key in _RESTART:
        return _choose_document()
    if doc_type is None or state.field == GUIDED_CHOOSE_DOCUMENT:
        return _choose(message.text or "", parsed, state)
    if state.field == GUIDED_CONFIRM:
        if key in _CONFIRM:
            return _confirm(doc_type, answers, area, today)
        if key in _EDIT:
            return _next(doc_type, {})
        return _again(state, doc_type, _CONFIRM_CHOICE)
    return _answer(state, doc_type, answers, message.text or "", area, today)


def _reply(  # noqa: PLR0911 - one case per reply id
    reply: reply_ids.ReplyId,
    state: GuidedState,
    doc_type: DocType | None,
    answers: dict[str, str],
    area: OfficeArea,
    today: date,
) -> Decision:
    match reply.action:
        case "svc" | "guided:start":
            return _start(reply.value, None)
        case reply_ids.GUIDED_LEAVE:
            return Leave()
        case reply_ids.GUIDED_RESTART:
            return _choose_document()
        case reply_ids.GUIDED_EDIT if doc_type is not None:
            return _next(doc_type, {})
        case reply_ids.GUIDED_CONFIRM if doc_type is not None and state.field == GUIDED_CONFIRM:
            return _confirm(doc_type, answers, area, today)
        case reply_ids.GUIDED_CONFIRM | reply_ids.GUIDED_EDIT:
            # An old summary's button while the answers are not all in.
            return _again(state, doc_type, _NOT_COMPLETE)
        case "guided:answer":
            column = _column(state.field, doc_type)
            value = reply.value or ""
            if doc_type is None or column is None or value not in FIXED_CHOICES.get(column, ()):
                return _again(state, doc_type, _NOT_THIS_QUESTION)
            return _answer(state, doc_type, answers, value, area, today)
        case "status" | reply_ids.MENU:
            return Handle(_command_of(reply.action, reply.value, area, today), "replaced")
        case _:  # survey: the handler answers it; the session stays open
            return Handle(Unrecognised(), None)


def _takes_over(text: str | None, parsed: ParsedMessage | None) -> bool:
    """Whether a message typed during a session is something else than an answer: a ``#``
    command or format, a command with a ticket, or ``menu`` alone. Anything else is an
    answer, even when it looks like a greeting or a command word (``SELAMAT`` is a name,
    ``BANTUAN SOSIAL`` a purpose)."""
    if parsed is None or text is None:
        return False
    if isinstance(parsed, StatusQuery | Cancellation | Resubmission):
        return True
    if _key(text) == _MENU:
        return True
    if "#" not in text:
        return False
    if isinstance(parsed, MenuRequest):
        return not parsed.greeting
    return not isinstance(parsed, Unrecognised)


def _choose(text: str, parsed: ParsedMessage | None, state: GuidedState) -> Ask:
    """The first step: which document."""
    doc_type = _typed_document(text, parsed)
    if doc_type is not None:
        return _next(doc_type, {})
    if isinstance(parsed, MenuRequest) and parsed.greeting:
        return _choose_document()
    return _again(state, None, _CHOOSE_DOCUMENT)


def _typed_document(text: str, parsed: ParsedMessage | None) -> DocType | None:
    key = _key(text)
    if key.isdigit():
        number = int(key)
        documents = list(CATALOGUE)
        return documents[number - 1] if 1 <= number <= len(documents) else None
    found = by_keyword(key) if key else None
    if found is not None:
        return found
    for spec in CATALOGUE.values():
        if key and key == _key(spec.name):
            return spec.doc_type
    # "ktp hilang", "akta kelahiran anak saya": the document named first.
    if isinstance(parsed, InfoQuery):
        return parsed.doc_type
    if isinstance(parsed, Invalid) and parsed.command is None:
        return parsed.doc_type
    return None


def _answer(
    state: GuidedState,
    doc_type: DocType,
    answers: dict[str, str],
    raw: str,
    area: OfficeArea,
    today: date,
) -> Ask:
    column = _column(state.field, doc_type)
    if column is None:
        # The document's format changed under an open session: ask what is missing.
        return _next(doc_type, _known(doc_type, answers))
    checked = check_field(
        column,
        raw,
        area=area,
        today=today,
        doc_type=doc_type,
        answers={FormField(k): v for k, v in _known(doc_type, answers).items()},
    )
    if isinstance(checked, Problem):
        return _again(state, doc_type, checked.message)
    return _next(doc_type, {**answers, column.value: checked})


def _confirm(doc_type: DocType, answers: dict[str, str], area: OfficeArea, today: date) -> Decision:
    known = _known(doc_type, answers)
    spec = document(doc_type)
    if any(column.value not in known for column in spec.fields):
        return _next(doc_type, known)
    text = compose_format(doc_type, {FormField(k): v for k, v in known.items()})
    parsed = parse_message(text, area=area, today=today)
    if isinstance(parsed, DocumentRequest):
        return Submit(parsed, text)
    problems = parsed.problems if isinstance(parsed, Invalid) else ()
    for problem in problems:
        if problem.field in known:
            # Back to the column at fault, with the parser's words.
            rest = {k: v for k, v in known.items() if k != problem.field}
            return Ask(doc_type, problem.field, rest, problem.message)
    message = problems[0].message if problems else None
    return Ask(doc_type, spec.fields[0].value, {}, message)


# -- helpers ------------------------------------------------------------------------------


def _choose_document(problem: str | None = None, ended: Literal["expired"] | None = None) -> Ask:
    return Ask(None, GUIDED_CHOOSE_DOCUMENT, {}, problem, ended)


def _next(
    doc_type: DocType, answers: Mapping[str, str], *, ended: Literal["expired"] | None = None
) -> Ask:
    """The first column of the document not answered yet, or the summary."""
    for column in document(doc_type).fields:
        if column.value not in answers:
            return Ask(doc_type, column.value, dict(answers), ended=ended)
    return Ask(doc_type, GUIDED_CONFIRM, dict(answers), ended=ended)


def _again(state: GuidedState, doc_type: DocType | None, problem: str) -> Ask:
    return Ask(doc_type, state.field, dict(state.answers), problem)


def _known(doc_type: DocType, answers: Mapping[str, str]) -> dict[str, str]:
    """The answers that are columns of the document's format."""
    columns = {column.value for column in document(doc_type).fields}
    return {k: v for k, v in answers.items() if k in columns}


def _column(value: str, doc_type: DocType | None) -> FormField | None:
    if doc_type is None:
        return None
    for column in document(doc_type).fields:
        if column.value == value:
            return column
    return None


def _doc_type(value: str | None) -> DocType | None:
    if value is None:
        return None
    try:
        return DocType(value)
    except ValueError:
        return None


def _command_of(action: str, value: str | None, area: OfficeArea, today: date) -> ParsedMessage:
    if action == "status":
        return parse_message(f"#STATUS#{value or ''}", area=area, today=today)
    return MenuRequest()


def _parse(text: str | None, area: OfficeArea, today: date) -> ParsedMessage | None:
    return parse_message(text, area=area, today=today) if text else None


def _key(text: str) -> str:
    return _NOT_ALNUM.sub("", unicodedata.normalize("NFKC", text).upper())
