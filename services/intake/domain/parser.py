"""Tolerant parsing of citizens' WhatsApp messages into typed commands.

Citizens write the ``#`` formats of :mod:`shared.documents` by hand, often on an old phone:
any case, spaces around ``#``, the leading or trailing ``#`` missing, a field broken over
two lines, the label of a field left in (``NIK: 3603...``), the published misspellings
(``#SKDWN#``, ``NIKS``, ``NO-SKPWNI``). :func:`parse_message` accepts all of that, and turns
everything else into an :class:`Invalid` that names every wrong field in plain Indonesian,
or into :class:`Unrecognised` (answered with the menu). It never raises, whatever the text:
the text comes from strangers, through a chat or an image caption alike.

The rules, with examples, are in ``docs/FORMATS.md``.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import date
from enum import StrEnum
from typing import Annotated, Any, Final, Literal, Self, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, TypeAdapter, model_validator

from shared.documents import DocType, FormField, KtpReason, by_keyword, document
from shared.identity import (
    InvalidIdentityNumberError,
    Kecamatan,
    KecamatanError,
    Nik,
    NoKk,
    OfficeArea,
    describe_region,
    parse_nik,
    parse_no_kk,
    typo_distance,
)
from shared.privacy import mask_identity_number

__all__ = [
    "MAX_INPUT_CHARS",
    "PARSED_MESSAGE",
    "Cancellation",
    "Command",
    "Complaint",
    "DocumentRequest",
    "InfoQuery",
    "Invalid",
    "MenuRequest",
    "ParsedMessage",
    "Problem",
    "Resubmission",
    "StatusQuery",
    "Unrecognised",
    "check_field",
    "compose_format",
    "parse_message",
]

MAX_INPUT_CHARS: Final = 10_000
"""Text beyond this is ignored: WhatsApp caps a message at 4,096 characters, so only a
crafted payload is longer, and the cap bounds the work spent on it."""

TICKET_PATTERN: Final = re.compile(r"[A-Z0-9-]{6,24}")

_TICKET = Annotated[str, StringConstraints(pattern=r"^[A-Z0-9-]{6,24}$")]
_IDENTITY_NUMBER = Annotated[str, StringConstraints(pattern=r"^[0-9]{16}$")]
_KECAMATAN_CODE = Annotated[str, StringConstraints(pattern=r"^[0-9]{6}$")]
_NAME = Annotated[str, StringConstraints(min_length=2, max_length=100)]


class Command(StrEnum):
    """A keyword that is not a document: the citizen asks something of the office."""

    STATUS = "STATUS"
    INFO = "INFO"
    MENU = "MENU"
    LENGKAPI = "LENGKAPI"
    BATAL = "BATAL"
    ADUAN = "ADUAN"


class Problem(BaseModel):
    """One thing wrong in a message: the column label as the format shows it (``NIK``,
    ``KECAMATAN``, or ``FORMAT`` for the message as a whole) and what to fix."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    field: str
    message: str


class _Parsed(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# Which attribute of DocumentRequest each column fills. For akta kematian the NIK and name
# are the deceased's: they stay in ``nik``/``nama`` so that everything masking or
# pseudonymising those attributes covers them too.
_ATTRIBUTE: Final[Mapping[FormField, str]] = {
    FormField.NIK: "nik",
    FormField.NIK_ALMARHUM: "nik",
    FormField.NO_KK: "no_kk",
    FormField.NAMA: "nama",
    FormField.NAMA_KEPALA_KELUARGA: "nama",
    FormField.NAMA_ALMARHUM: "nama",
    FormField.DESA: "desa",
    FormField.KECAMATAN: "kecamatan_code",
    FormField.ALASAN_KTP: "reason",
    FormField.ALAMAT_PINDAH: "alamat_pindah",
    FormField.NO_SKPWNI: "no_skpwni",
    FormField.KEPERLUAN: "keperluan",
    FormField.NAMA_ANAK: "nama_anak",
    FormField.TANGGAL_LAHIR: "tanggal_lahir",
    FormField.TANGGAL_MENINGGAL: "tanggal_meninggal",
}
_PERSONAL: Final = frozenset({"nik", "no_kk", "nama", "nama_anak", "alamat_pindah"})


class DocumentRequest(_Parsed):
    """A well-formed request for a document: every column of its format present and valid.

    Exactly the attributes of the document's columns are set (``kecamatan_name`` comes with
    ``kecamatan_code``); the others are None. For :attr:`DocType.AKTA_KEMATIAN`, ``nik`` and
    ``nama`` are the deceased's. ``repr()`` masks the personal data; ``model_dump()`` does
    not, so events carrying it must stay internal.
    """

    kind: Literal["document_request"] = "document_request"
    doc_type: DocType
    nik: _IDENTITY_NUMBER | None = None
    no_kk: _IDENTITY_NUMBER | None = None
    nama: _NAME | None = None
    desa: Annotated[str, StringConstraints(min_length=2, max_length=60)] | None = None
    kecamatan_code: _KECAMATAN_CODE | None = None
    kecamatan_name: str | None = None
    reason: KtpReason | None = None
    alamat_pindah: Annotated[str, StringConstraints(min_length=5, max_length=200)] | None = None
    no_skpwni: Annotated[str, StringConstraints(pattern=r"^[A-Z0-9/.\-]{5,40}$")] | None = None
    keperluan: Annotated[str, StringConstraints(min_length=3, max_length=200)] | None = None
    nama_anak: _NAME | None = None
    tanggal_lahir: date | None = None
    tanggal_meninggal: date | None = None

    @model_validator(mode="after")
    def _columns_of_the_format(self) -> Self:
        wanted = {_ATTRIBUTE[column] for column in document(self.doc_type).fields}
        if "kecamatan_code" in wanted:
            wanted.add("kecamatan_name")
        for name in _OPTIONAL_ATTRIBUTES:
            if (getattr(self, name) is not None) != (name in wanted):
                state = "missing" if name in wanted else "not part of the format"
                raise ValueError(f"{name} is {state} for {self.doc_type.value}")
        return self

    def __repr_args__(self) -> Iterable[tuple[str | None, Any]]:
        for name, value in super().__repr_args__():
            if name in _PERSONAL and isinstance(value, str):
                yield name, _masked(value)
            else:
                yield name, value


_OPTIONAL_ATTRIBUTES: Final = tuple(
    name for name in DocumentRequest.model_fields if name not in {"kind", "doc_type"}
)


def _masked(value: str) -> str:
    if value.isdigit():
        return mask_identity_number(value)
    return value[:1] + "***" if value else value


class StatusQuery(_Parsed):
    """``#STATUS#<ticket>`` or ``#CEK#<ticket>``: where is my request?"""

    kind: Literal["status_query"] = "status_query"
    ticket: _TICKET


class InfoQuery(_Parsed):
    """``#INFO#<DOC>``: requirements and promised time of a document. ``doc_type`` None
    means the document was not recognised: answer with the menu and a note."""

    kind: Literal["info_query"] = "info_query"
    doc_type: DocType | None


class MenuRequest(_Parsed):
    """``#MENU`` or a greeting: answer with the list of services. ``greeting`` tells a
    greeting (which starts a guided request) from the explicit command."""

    kind: Literal["menu_request"] = "menu_request"
    greeting: bool = False


class Resubmission(_Parsed):
    """``#LENGKAPI#<ticket>``: the citizen sends what an officer asked to correct."""

    kind: Literal["resubmission"] = "resubmission"
    ticket: _TICKET


class Cancellation(_Parsed):
    """``#BATAL#<ticket>``: the citizen withdraws a request."""

    kind: Literal["cancellation"] = "cancellation"
    ticket: _TICKET


class Complaint(_Parsed):
    """``#ADUAN#<text>``: a complaint, with the ticket it mentions, if any. The text keeps the
    citizen's case and line breaks; whoever displays it must escape it."""

    kind: Literal["complaint"] = "complaint"
    text: Annotated[str, StringConstraints(min_length=5, max_length=1000)]
    ticket: _TICKET | None = None


class Invalid(_Parsed):
    """A message that asks for something recognisable but is wrong; ``problems`` lists every
    wrong column. ``doc_type`` is the document asked for (the reply shows its format and
    example); ``command`` the non-document keyword, if that is what was wrong."""

    kind: Literal["invalid"] = "invalid"
    doc_type: DocType | None = None
    command: Command | None = None
    problems: tuple[Problem, ...] = Field(min_length=1)


class Unrecognised(_Parsed):
    """Nothing we understand: answer with the menu."""

    kind: Literal["unrecognised"] = "unrecognised"


ParsedMessage = Annotated[
    DocumentRequest
    | StatusQuery
    | InfoQuery
    | MenuRequest
    | Resubmission
    | Cancellation
    | Complaint
    | Invalid
    | Unrecognised,
    Field(discriminator="kind"),
]
"""What a message means; ``kind`` tells the variants apart in JSON."""

PARSED_MESSAGE: Final[TypeAdapter[ParsedMessage]] = TypeAdapter(ParsedMessage)
"""Validates and serialises a :data:`ParsedMessage` (e.g. ``PARSED_MESSAGE.validate_json``)."""


# -- entry point ---------------------------------------------------------------------------


def parse_message(text: str, *, area: OfficeArea, today: date) -> ParsedMessage:
    """What a citizen's message asks for.

    ``area`` is the office's regency (kecamatan names and jurisdiction), ``today`` the
    office's date (century of birth years, dates in the future). Never raises.
    """
    normalised = _normalise(text)
    if not normalised:
        return Unrecognised()
    if "#" not in normalised:
        return _without_separators(normalised)
    return _with_separators(normalised, area, today)


# -- normalisation -------------------------------------------------------------------------

_SURROGATES: Final = re.compile("[\ud800-\udfff]")
# Invisible characters: zero-width joiners and spaces, bidirectional overrides (which can
# make text read differently from what it is), soft hyphens, the byte-order mark.
_INVISIBLE: Final = re.compile("[\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]")
_CONTROL: Final = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f]")
_LINE_BREAKS: Final = re.compile("\r\n|[\r\x0b\x0c\x1c-\x1e\x85\u2028\u2029]")
# NFKC leaves these alone; phones' smart punctuation produces them.
_LOOKALIKES: Final = str.maketrans(
    {
        "\u2018": "'",
        "\u2019": "'",
        "\u201a": "'",
        "\u201b": "'",
        "\u2032": "'",
        "\u00b4": "'",
        "`": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u201e": '"',
        "\u2033": '"',
        "\u2010": "-",
        "\u2011": "-",
        "\u2012": "-",
        "\u2013": "-",
        "\u2014": "-",
        "\u2015": "-",
        "\u2212": "-",
        "\u266f": "#",
    }
)
# WhatsApp's markup for bold, italic, strike and monospace, and quotes, around a copied
# format.
_EDGE_MARKUP: Final = " \n*_~'\""


def _normalise(text: str) -> str:
    text = _SURROGATES.sub("", text[:MAX_INPUT_CHARS])
    text = _LINE_BREAKS.sub("\n", text)
    text = unicodedata.normalize("NFKC", text).translate(_LOOKALIKES)
    text = _INVISIBLE.sub("", text)
    text = _CONTROL.sub(" ", text)
    return text.strip(_EDGE_MARKUP)


def _one_line(text: str) -> str:
    """Newlines and runs of spaces inside a field become one space."""
    return " ".join(text.split())


# -- keywords ------------------------------------------------------------------------------

_COMMANDS: Final[Mapping[str, Command]] = {
    "STATUS": Command.STATUS,
    "CEK": Command.STATUS,
    "CEKSTATUS": Command.STATUS,
    "STATUSTIKET": Command.STATUS,
    "CEKTIKET": Command.STATUS,
    "INFO": Command.INFO,
    "INFORMASI": Command.INFO,
    "SYARAT": Command.INFO,
    "PERSYARATAN": Command.INFO,
    "MENU": Command.MENU,
    "BANTUAN": Command.MENU,
    "HELP": Command.MENU,
    "LAYANAN": Command.MENU,
    "LENGKAPI": Command.LENGKAPI,
    "PERBAIKI": Command.LENGKAPI,
    "PERBAIKAN": Command.LENGKAPI,
    "BATAL": Command.BATAL,
    "BATALKAN": Command.BATAL,
    "PEMBATALAN": Command.BATAL,
    "ADUAN": Command.ADUAN,
    "PENGADUAN": Command.ADUAN,
    "KELUHAN": Command.ADUAN,
    "KOMPLAIN": Command.ADUAN,
}
_NOT_ALNUM: Final = re.compile(r"[^0-9A-Z]+")
_Keyword = DocType | Command
# Keywords a one-letter typo may be read as. Short ones (KK, KTP, KIA, CEK) are too close
# to each other for a typo to say which was meant.
_FUZZY_KEYWORDS: Final[Mapping[str, _Keyword]] = {
    **{word: command for word, command in _COMMANDS.items() if len(word) >= 5},
    **{doc.value: doc for doc in DocType if len(doc.value) >= 5},
}


def _lookup_keyword(word: str) -> _Keyword | None:
    key = _NOT_ALNUM.sub("", word.upper())
    if not key:
        return None
    if key in _COMMANDS:
        return _COMMANDS[key]
    doc_type = by_keyword(key)
    if doc_type is not None:
        return doc_type
    if len(key) >= 5 and len(key) <= 20:
        return _unique_near(key, _FUZZY_KEYWORDS)
    return None


def _keyword_at_start(piece: str) -> tuple[_Keyword, str] | None:
    """The keyword at the start of ``piece`` and what follows it (a first field typed after a
    space instead of ``#``). Keywords of several words (``AKTA KELAHIRAN``) win over their
    first word."""
    words = piece.split()
    for count in range(min(3, len(words)), 0, -1):
        keyword = _lookup_keyword(" ".join(words[:count]))
        if keyword is not None:
            return keyword, " ".join(words[count:])
    return None


_T = TypeVar("_T")


def _unique_near(key: str, choices: Mapping[str, _T]) -> _T | None:
    """The choice one typo away from ``key``, if exactly one meaning is that close and every
    other is at least two typos further."""
    distances: dict[_T, int] = {}
    for word, meaning in choices.items():
        distance = typo_distance(key, word)
        distances[meaning] = min(distance, distances.get(meaning, distance))
    ranked = sorted(distances.items(), key=lambda item: item[1])
    if not ranked or ranked[0][1] > 1:
        return None
    if len(ranked) > 1 and ranked[1][1] < ranked[0][1] + 2:
        return None
    return ranked[0][0]


# -- messages without '#' ------------------------------------------------------------------

_GREETING_WORDS: Final = frozenset(
    {
        # Compared after repeated letters are collapsed: "haloooo", "hallo" -> "halo".
        "halo",
        "helo",
        "hai",
        "hay",
        "hi",
        "hei",
        "hey",
        "p",
        "ping",
        "permisi",
        "misi",
        "punten",
        "sampurasun",
        "salam",
        "selamat",
        "slmt",
        "met",
        "pagi",
        "siang",
        "sore",
        "malam",
        "tes",
        "test",
        "min",
        "admin",
        "kak",
        "shalom",
        "om",
    }
)
_SALAM_PREFIXES: Final = ("asalam", "aslam", "aslm", "salamualaikum", "samlekom", "mikum")
_REPEATS: Final = re.compile(r"(.)\1+")
_LONG_NUMBER: Final = re.compile(r"[0-9](?:[ .\-]?[0-9]){9,}")


def _is_greeting(text: str) -> bool:
    words = [_REPEATS.sub(r"\1", word) for word in re.sub(r"[^a-z0-9]+", " ", text.lower()).split()]
    if not words:
        return False
    compact = "".join(words)
    return words[0] in _GREETING_WORDS or compact.startswith(_SALAM_PREFIXES)


def _without_separators(text: str) -> ParsedMessage:
    found = _keyword_at_start(text)
    if found is None:
        return MenuRequest(greeting=True) if _is_greeting(text) else Unrecognised()
    keyword, rest = found
    if isinstance(keyword, Command):
        return _loose_command(keyword, rest)
    if _LONG_NUMBER.search(rest):
        # An identity number after the keyword: a request typed without its separators.
        return Invalid(
            doc_type=keyword,
            problems=(Problem(field="FORMAT", message="Pisahkan setiap kolom dengan tanda #."),),
        )
    # "KTP" alone, or a question about it: its requirements and format answer it.
    return InfoQuery(doc_type=keyword)


def _loose_command(command: Command, argument: str) -> ParsedMessage:
    """A command typed without '#'. Its first word may be plain chat ("batal ya min",
    "status permohonan saya"), so only a complete command whose ticket has the office's
    shape is taken as one."""
    parsed = _command(command, argument, [])
    if isinstance(parsed, Invalid):
        return Unrecognised()
    if isinstance(parsed, StatusQuery | Resubmission | Cancellation) and not (
        _TICKET_OF_SERVICE.fullmatch(parsed.ticket)
    ):
        return Unrecognised()
    return parsed


# -- messages with '#' ---------------------------------------------------------------------


def _with_separators(text: str, area: OfficeArea, today: date) -> ParsedMessage:
    pieces = text.split("#")
    starts_with_separator = not pieces[0].strip()
    while pieces and not pieces[0].strip():
        pieces.pop(0)
    while pieces and not pieces[-1].strip():
        pieces.pop()
    if not pieces:
        return Unrecognised()

    found = _keyword_at_start(pieces[0])
    rest = pieces[1:]
    if found is None and "\n" in pieces[0].strip():
        # Lines before the keyword ("Selamat pagi\nKTP#...") are a preface.
        found = _keyword_at_start(pieces[0].strip().rsplit("\n", 1)[-1])
    if found is None and rest and (not starts_with_separator or _is_greeting(pieces[0])):
        # Text before the first '#' that is no keyword is a preface too ("Halo min #KTP#"),
        # and so is a greeting in a column of its own ("#Halo#KTP#").
        found = _keyword_at_start(rest[0])
        rest = rest[1:]
    if found is None:
        if _is_greeting(text.replace("#", " ")):
            return MenuRequest(greeting=True)
        return Unrecognised()

    keyword, first = found
    columns = ([first] if first else []) + rest
    if isinstance(keyword, Command):
        return _command(keyword, first, rest)
    if not any(column.strip() for column in columns):
        return InfoQuery(doc_type=keyword)
    return _document(keyword, columns, area, today)


_TICKET_COMMANDS: Final[Mapping[Command, type[StatusQuery | Resubmission | Cancellation]]] = {
    Command.STATUS: StatusQuery,
    Command.LENGKAPI: Resubmission,
    Command.BATAL: Cancellation,
}


def _command(command: Command, first: str, rest: Sequence[str]) -> ParsedMessage:
    arguments = [column for column in (first, *rest) if column.strip()]
    argument = arguments[0] if arguments else ""
    if command is Command.MENU or (command is Command.INFO and not argument):
        return MenuRequest()
    if command is Command.INFO:
        return InfoQuery(doc_type=by_keyword(argument))
    if command is Command.ADUAN:
        # Everything after the keyword, '#' included: a complaint is free text.
        return _complaint("#".join((first, *rest)) if first else "#".join(rest))
    ticket = _ticket(argument)
    if isinstance(ticket, Problem):
        return Invalid(command=command, problems=(ticket,))
    return _TICKET_COMMANDS[command](ticket=ticket)


_TICKET_LABEL: Final = re.compile(r"^(?:(?:NOMOR|NO)[\s.]*)?TIKET\s*[:=.]?\s*")
_TICKET_PREFIXES: Final = frozenset({*(doc_type.value for doc_type in DocType), "ADUAN"})


def _ticket(raw: str) -> str | Problem:
    tokens = _TICKET_LABEL.sub("", _one_line(raw).upper()).split()
    if len(tokens) == 2 and tokens[0] in _TICKET_PREFIXES:
        # "KTP 7Q2M9XAB": a space typed for the dash.
        tokens = ["-".join(tokens)]
    if not tokens:
        return Problem(
            field="NOMOR_TIKET",
            message="Nomor tiket belum diisi, misalnya #STATUS#KTP-7Q2M9XAB.",
        )
    # Several words are not one ticket: joining them could make "SAYA BAGAIMANA" a ticket.
    if len(tokens) > 1 or not TICKET_PATTERN.fullmatch(tokens[0]):
        return Problem(
            field="NOMOR_TIKET",
            message=(
                "Nomor tiket terdiri dari 6 sampai 24 huruf, angka atau tanda hubung (-) "
                "tanpa spasi, misalnya KTP-7Q2M9XAB."
            ),
        )
    return tokens[0]


_TICKET_AFTER_LABEL: Final = re.compile(r"(?<![A-Z])TIKET\s*[:=.#]?\s*([A-Z0-9]+(?:-[A-Z0-9]+)*)")
_TICKET_OF_SERVICE: Final = re.compile(
    r"(?<![A-Z0-9-])((?:"
    + "|".join(sorted({*(d.value for d in DocType), "ADUAN"}, key=len, reverse=True))
    + r")-[A-Z0-9]{4,})(?![A-Z0-9-])"
)


def _complaint(raw: str) -> ParsedMessage:
    lines = [_one_line(line) for line in raw.split("\n")]
    text = "\n".join(line for line in lines if line).strip("# ")
    problem: str | None = None
    if len(text) < 5:
        problem = "Isi pengaduan terlalu pendek: tulis paling sedikit 5 huruf."
    elif len(text) > 1000:
        problem = (
            f"Isi pengaduan terlalu panjang: paling banyak 1000 karakter, "
            f"yang Anda kirim {len(text)}. Mohon diringkas."
        )
    if problem is not None:
        return Invalid(
            command=Command.ADUAN, problems=(Problem(field="ISI_ADUAN", message=problem),)
        )
    return Complaint(text=text, ticket=_mentioned_ticket(text))


def _mentioned_ticket(text: str) -> str | None:
    """A ticket the complaint refers to: the token after the word ``tiket``, else a token
    shaped like the office's tickets (``KTP-7Q2M9XAB``). Ordinary words and dates are not
    mistaken for tickets."""
    upper = text.upper()
    for match in _TICKET_AFTER_LABEL.finditer(upper):
        token = match.group(1)
        if TICKET_PATTERN.fullmatch(token) and any(char.isdigit() for char in token):
            return token
    for match in _TICKET_OF_SERVICE.finditer(upper):
        if TICKET_PATTERN.fullmatch(match.group(1)):
            return match.group(1)
    return None


# -- document requests ---------------------------------------------------------------------


def _document(
    doc_type: DocType, columns: list[str], area: OfficeArea, today: date
) -> ParsedMessage:
    spec = document(doc_type)
    aligned = _align(columns, len(spec.fields), spec.keyword)
    if isinstance(aligned, Problem):
        return Invalid(doc_type=doc_type, problems=(aligned,))

    values: dict[str, Any] = {}
    problems: list[Problem] = []
    checked: dict[FormField, object] = {}
    for column, raw in zip(spec.fields, aligned, strict=True):
        outcome = _column(column, raw, area, today)
        if isinstance(outcome, Problem):
            problems.append(outcome)
            continue
        checked[column] = outcome
        values.update(_as_attributes(column, outcome))
    problems += _consistency(doc_type, checked, area)
    if problems:
        return Invalid(doc_type=doc_type, problems=tuple(problems))
    return DocumentRequest(doc_type=doc_type, **values)


def _align(columns: list[str], expected: int, keyword: str) -> list[str] | Problem:
    """The columns in the format's order, or the problem of their number.

    A doubled ``##`` is a slip of the finger only when dropping the empty column leaves
    exactly as many columns as the format has; if the count is right with the empty column,
    it is a column left blank. Any other count is reported, never guessed.
    """
    filled = [column for column in columns if column.strip()]
    if len(columns) == expected:
        return columns
    if len(filled) == expected:
        return filled
    return _count_problem(len(filled), expected, keyword)


def _count_problem(filled: int, expected: int, keyword: str) -> Problem:
    # Counted with the keyword, as a citizen counts the parts of the format.
    sent, wanted = filled + 1, expected + 1
    if sent < wanted:
        message = (
            f"Jumlah kolom kurang: format {keyword} punya {wanted} kolom, Anda mengirim {sent}."
        )
    else:
        message = (
            f"Jumlah kolom lebih: format {keyword} punya {wanted} kolom, Anda mengirim {sent}. "
            "Tanda # hanya untuk memisahkan kolom."
        )
    return Problem(field="FORMAT", message=message)


def _as_attributes(column: FormField, value: object) -> dict[str, object]:
    if isinstance(value, Nik | NoKk):
        return {_ATTRIBUTE[column]: value.value}
    if isinstance(value, Kecamatan):
        return {"kecamatan_code": value.code, "kecamatan_name": value.name}
    return {_ATTRIBUTE[column]: value}


# Jurisdiction: the office serves the families registered in its regency, so the family
# card (No. KK) must carry one of its region codes. The applicant's NIK is not checked
# here: a NIK keeps for life the region where it was first issued, so a resident who moved
# in would be refused although their family card is local. Whether the NIK's region fits
# is one of verification's automatic checks, flagged to officers, not a format error.
_SUBJECT_KK: Final = frozenset(
    {
        DocType.KK,
        DocType.KTP,
        DocType.KIA,
        DocType.SKPWNI,
        DocType.VALIDASI_NIK,
        DocType.AKTA_KELAHIRAN,
        DocType.AKTA_KEMATIAN,
    }
)


def _consistency(
    doc_type: DocType, checked: Mapping[FormField, object], area: OfficeArea
) -> list[Problem]:
    problems: list[Problem] = []
    no_kk = checked.get(FormField.NO_KK)
    if doc_type in _SUBJECT_KK and isinstance(no_kk, NoKk) and not area.contains(no_kk.region_code):
        problems.append(
            Problem(
                field=FormField.NO_KK.value,
                message=(
                    f"No. KK ini terdaftar di {describe_region(no_kk.region_code)}, di luar "
                    f"{area.name}. Permohonan ini hanya untuk keluarga yang terdaftar di "
                    f"{area.name}."
                ),
            )
        )
    deceased = checked.get(FormField.NIK_ALMARHUM)
    died = checked.get(FormField.TANGGAL_MENINGGAL)
    if isinstance(deceased, Nik) and isinstance(died, date) and died < deceased.birth_date:
        problems.append(
            Problem(
                field=FormField.TANGGAL_MENINGGAL.value,
                message="TANGGAL_MENINGGAL lebih awal dari tanggal lahir di NIK_ALMARHUM.",
            )
        )
    return problems


# -- columns -------------------------------------------------------------------------------

# Labels people leave in front of a value ("NIK: 3603...", "NO-SKPWNI 123/..."), including
# the published misspellings. A bare label means the format was sent without filling it in.
_LABELS: Final[Mapping[FormField, tuple[str, ...]]] = {
    FormField.NIK: ("NOMOR NIK", "NO NIK", "NIKS", "NIK"),
    FormField.NIK_ALMARHUM: ("NIK ALMARHUMAH", "NIK ALMARHUM", "NIK ALM", "NIKS", "NIK"),
    FormField.NO_KK: (
        "NOMOR KARTU KELUARGA",
        "NO KARTU KELUARGA",
        "NOMOR KK",
        "NO KK",
        "NKK",
        "KK",
    ),
    FormField.NAMA: ("NAMA LENGKAP", "NAMA"),
    FormField.NAMA_KEPALA_KELUARGA: (
        "NAMA KEPALA KELUARGA",
        "KEPALA KELUARGA",
        "NAMA KK",
        "NAMA",
    ),
    FormField.NAMA_ANAK: ("NAMA ANAK", "NAMA"),
    FormField.NAMA_ALMARHUM: ("NAMA ALMARHUMAH", "NAMA ALMARHUM", "NAMA ALM", "NAMA"),
    FormField.DESA: ("DESA/KELURAHAN", "KELURAHAN", "DESA", "KEL", "DS"),
    FormField.KECAMATAN: ("KECAMATAN",),
    FormField.ALASAN_KTP: ("PEMULA/HILANG/RUSAK", "ALASAN"),
    FormField.ALAMAT_PINDAH: ("ALAMAT PINDAH", "ALAMAT TUJUAN", "ALAMAT"),
    FormField.NO_SKPWNI: (
        "NOMOR SURAT PINDAH",
        "NO SURAT PINDAH",
        "NOMOR SKPWNI",
        "NO SKPWNI",
    ),
    FormField.KEPERLUAN: ("KEPERLUAN",),
    FormField.TANGGAL_LAHIR: ("TANGGAL LAHIR", "TGL LAHIR", "TANGGAL", "TGL"),
    FormField.TANGGAL_MENINGGAL: (
        "TANGGAL MENINGGAL",
        "TGL MENINGGAL",
        "TANGGAL WAFAT",
        "TANGGAL",
        "TGL",
    ),
}


def _label_pattern(labels: Iterable[str]) -> re.Pattern[str]:
    alternatives = "|".join(
        r"[\s_.\-/]*".join(re.escape(word) for word in re.split(r"[\s/]+", label))
        for label in sorted(labels, key=len, reverse=True)
    )
    return re.compile(rf"^(?:{alternatives})(?:\s*[:=.]\s*|\s+|(?=[0-9])|$)")


_LABEL_PATTERNS: Final = {column: _label_pattern(labels) for column, labels in _LABELS.items()}


def _column(column: FormField, raw: str, area: OfficeArea, today: date) -> object:
    value = _one_line(raw)
    if not value:
        return _problem(column, f"{column.value} belum diisi.")
    upper = value.upper()
    unlabelled = _LABEL_PATTERNS[column].sub("", upper, count=1)
    if not unlabelled:
        if column is FormField.ALASAN_KTP:
            return _problem(column, _REASON_CHOICE)
        return _problem(
            column,
            f"Kolom {column.value} masih berisi tulisan '{_shown(value)}' dari format; "
            "ganti dengan isian Anda.",
        )
    return _CHECKS[column](unlabelled, column, area, today)


def _problem(column: FormField, message: str) -> Problem:
    return Problem(field=column.value, message=message)


def _shown(value: str, limit: int = 30) -> str:
    shown = value.replace("'", "")
    return shown if len(shown) <= limit else shown[: limit - 1] + "…"


# A column's check: the typed value, or the Problem that says what is wrong with it.
_Check = Callable[[str, FormField, OfficeArea, date], object]


def _check_nik(value: str, column: FormField, area: OfficeArea, today: date) -> object:
    label = "NIK almarhum" if column is FormField.NIK_ALMARHUM else "NIK"
    try:
        return parse_nik(value, today, field=column.value, label=label)
    except InvalidIdentityNumberError as error:
        return _problem(column, error.message_id_text)


def _check_no_kk(value: str, column: FormField, area: OfficeArea, today: date) -> object:
    try:
        return parse_no_kk(value, today, field=column.value)
    except InvalidIdentityNumberError as error:
        return _problem(column, error.message_id_text)


def _check_kecamatan(value: str, column: FormField, area: OfficeArea, today: date) -> object:
    try:
        return area.match_kecamatan(value)
    except KecamatanError as error:
        return _problem(column, error.message_id_text)


_LETTERS: Final = re.compile(r"[A-Z]")
_DIGIT: Final = re.compile(r"[0-9]")
_NAME_CHARS: Final = re.compile(r"[A-Z .'\-]")
_NAME_CHARS_WITH_DIGITS: Final = re.compile(r"[A-Z0-9 .'\-]")
_DOUBLE_PUNCTUATION: Final = re.compile(r"[.'\-]\s*[.'\-]")
_HTML: Final = re.compile(r"[<>]")


def _is_emoji(char: str) -> bool:
    code = ord(char)
    return (
        code >= 0x1F000
        or 0x2600 <= code <= 0x27BF
        or 0xFE00 <= code <= 0xFE0F
        or unicodedata.category(char) == "So"
    )


def _latin(value: str) -> str:
    """Letters with accents lose them (``JOSÉ`` -> ``JOSE``): KTP names are plain A-Z."""
    decomposed = unicodedata.normalize("NFKD", value)
    return "".join(char for char in decomposed if unicodedata.category(char) != "Mn")


def _check_name_like(
    value: str, column: FormField, *, longest: int, digits_allowed: bool
) -> str | Problem:
    value = _latin(value)
    message = next(
        _name_problems(value, column.value, longest, digits_allowed=digits_allowed), None
    )
    return value if message is None else _problem(column, message)


def _name_problems(value: str, label: str, longest: int, *, digits_allowed: bool) -> Iterator[str]:
    """What is wrong with a name or a village name, most telling first."""
    if _HTML.search(value):
        yield f"{label} tidak boleh berisi kode HTML (tanda < atau >)."
    if any(_is_emoji(char) for char in value):
        yield f"{label} tidak boleh berisi emoji."
    if not digits_allowed and _DIGIT.search(value):
        hint = " Periksa urutan kolom." if _LONG_NUMBER.search(value) else ""
        yield f"{label} tidak boleh berisi angka.{hint}"
    allowed = _NAME_CHARS_WITH_DIGITS if digits_allowed else _NAME_CHARS
    bad = sorted({char for char in value if not allowed.fullmatch(char)})
    if bad:
        what = "huruf, angka" if digits_allowed else "huruf"
        yield (
            f"{label} hanya boleh berisi {what}, spasi, titik (.), petik (') dan tanda "
            f"hubung (-); hapus: {' '.join(bad[:5])}"
        )
    if not (value[:1].isalnum() if digits_allowed else _LETTERS.match(value)):
        yield f"{label} harus diawali huruf."
    if _DOUBLE_PUNCTUATION.search(value):
        yield f"{label} tidak boleh berisi tanda baca berturut-turut."
    if len(_LETTERS.findall(value)) < 2:
        yield f"{label} terlalu pendek: paling sedikit 2 huruf."
    if len(value) > longest:
        yield (
            f"{label} terlalu panjang: paling banyak {longest} karakter, "
            f"yang Anda kirim {len(value)}."
        )


def _check_name(value: str, column: FormField, area: OfficeArea, today: date) -> object:
    return _check_name_like(value, column, longest=100, digits_allowed=False)


def _check_desa(value: str, column: FormField, area: OfficeArea, today: date) -> object:
    # Village names may carry numbers ("SUMBERSARI 2", Palembang's "1 ULU").
    return _check_name_like(value, column, longest=60, digits_allowed=True)


_FREE_TEXT_ALLOWED: Final = re.compile(r"[A-Z0-9 .,/\-()'\":;&+!?@°]")


def _check_free_text(value: str, column: FormField, *, shortest: int) -> str | Problem:
    label = column.value
    value = _latin(value)
    if _HTML.search(value):
        return _problem(column, f"{label} tidak boleh berisi kode HTML (tanda < atau >).")
    if any(_is_emoji(char) for char in value):
        return _problem(column, f"{label} tidak boleh berisi emoji.")
    bad = sorted({char for char in value if not _FREE_TEXT_ALLOWED.fullmatch(char)})
    if bad:
        return _problem(
            column,
            f"{label} hanya boleh berisi huruf, angka dan tanda baca; hapus: {' '.join(bad[:5])}",
        )
    if len(value) < shortest or not re.search(r"[A-Z0-9]", value):
        return _problem(column, f"{label} terlalu pendek: paling sedikit {shortest} karakter.")
    if len(value) > 200:
        return _problem(
            column,
            f"{label} terlalu panjang: paling banyak 200 karakter, yang Anda kirim {len(value)}.",
        )
    return value


def _check_alamat(value: str, column: FormField, area: OfficeArea, today: date) -> object:
    return _check_free_text(value, column, shortest=5)


def _check_keperluan(value: str, column: FormField, area: OfficeArea, today: date) -> object:
    return _check_free_text(value, column, shortest=3)


_SKPWNI_NUMBER: Final = re.compile(r"[A-Z0-9/.\-]+")


def _check_no_skpwni(value: str, column: FormField, area: OfficeArea, today: date) -> object:
    number = "".join(value.split())
    if not _SKPWNI_NUMBER.fullmatch(number):
        return _problem(
            column,
            "NO_SKPWNI hanya boleh berisi huruf, angka, garis miring (/), titik (.) dan tanda "
            "hubung (-).",
        )
    if not 5 <= len(number) <= 40:
        return _problem(
            column, f"NO_SKPWNI harus 5 sampai 40 karakter, yang Anda kirim {len(number)}."
        )
    if not _DIGIT.search(number):
        return _problem(column, "NO_SKPWNI harus memuat angka nomor surat pindah.")
    return number


_REASONS: Final[Mapping[str, KtpReason]] = {
    "PEMULA": KtpReason.PEMULA,
    # "KTP baru" is how first-time applicants say it.
    "BARU": KtpReason.PEMULA,
    "PERTAMA": KtpReason.PEMULA,
    "HILANG": KtpReason.HILANG,
    "KEHILANGAN": KtpReason.HILANG,
    "RUSAK": KtpReason.RUSAK,
}
_REASON_CHOICE: Final = "Pilih salah satu: PEMULA, HILANG atau RUSAK."


def _check_reason(value: str, column: FormField, area: OfficeArea, today: date) -> object:
    key = _NOT_ALNUM.sub("", value)
    if key in _REASONS:
        return _REASONS[key]
    if len(key) >= 4:
        near = _unique_near(key, _REASONS) if len(key) <= 20 else None
        if near is not None:
            return near
    named = [reason.value for reason in KtpReason if reason.value in key]
    if len(named) > 1:
        return _problem(column, f"Alasan hanya boleh satu. {_REASON_CHOICE}")
    return _problem(column, f"Alasan '{_shown(value)}' tidak dikenal. {_REASON_CHOICE}")


_MONTHS: Final[Mapping[str, int]] = {
    **{
        name: number
        for number, name in enumerate(
            (
                "JANUARI",
                "FEBRUARI",
                "MARET",
                "APRIL",
                "MEI",
                "JUNI",
                "JULI",
                "AGUSTUS",
                "SEPTEMBER",
                "OKTOBER",
                "NOVEMBER",
                "DESEMBER",
            ),
            start=1,
        )
    },
    **{
        name: number
        for number, name in enumerate(
            ("JAN", "FEB", "MAR", "APR", "MEI", "JUN", "JUL", "AGU", "SEP", "OKT", "NOV", "DES"),
            start=1,
        )
    },
    "AGT": 8,
    "AGS": 8,
    "PEBRUARI": 2,
    "NOPEMBER": 11,
}
_DAY_MONTH_YEAR: Final = re.compile(r"([0-9]{1,2})\s*[-/.]\s*([0-9]{1,2})\s*[-/.]\s*([0-9]+)")
_YEAR_MONTH_DAY: Final = re.compile(r"([0-9]{4})\s*[-/.]\s*([0-9]{1,2})\s*[-/.]\s*([0-9]{1,2})")
_DAY_MONTHNAME_YEAR: Final = re.compile(r"([0-9]{1,2})[\s\-/.]*([A-Z]+)[\s\-/.]*([0-9]+)")
_EARLIEST_YEAR: Final = 1900


def _check_date(value: str, column: FormField, area: OfficeArea, today: date) -> object:
    label = column.value
    shape = f"{label} ditulis tanggal-bulan-tahun, misalnya 05-11-2025."
    day_month_year: tuple[int, int, str] | None = None
    if match := _YEAR_MONTH_DAY.fullmatch(value):
        day_month_year = int(match[3]), int(match[2]), match[1]
    elif match := _DAY_MONTH_YEAR.fullmatch(value):
        day_month_year = int(match[1]), int(match[2]), match[3]
    elif (match := _DAY_MONTHNAME_YEAR.fullmatch(value)) and match[2] in _MONTHS:
        day_month_year = int(match[1]), _MONTHS[match[2]], match[3]
    if day_month_year is None:
        return _problem(column, shape)
    day, month, year_text = day_month_year
    if len(year_text) != 4:
        return _problem(column, f"Tulis tahun {label} dengan 4 angka, misalnya 05-11-2025.")
    year = int(year_text)
    try:
        result = date(year, month, day)
    except ValueError:
        return _problem(
            column, f"{label} tidak ada di kalender: {day:02d}-{month:02d}-{year_text}."
        )
    if result > today:
        return _problem(column, f"{label} belum terjadi: {result:%d-%m-%Y}.")
    if year < _EARLIEST_YEAR:
        return _problem(column, f"Tahun pada {label} tidak masuk akal: {year_text}.")
    return result


_CHECKS: Final[Mapping[FormField, _Check]] = {
    FormField.NIK: _check_nik,
    FormField.NIK_ALMARHUM: _check_nik,
    FormField.NO_KK: _check_no_kk,
    FormField.NAMA: _check_name,
    FormField.NAMA_KEPALA_KELUARGA: _check_name,
    FormField.NAMA_ANAK: _check_name,
    FormField.NAMA_ALMARHUM: _check_name,
    FormField.DESA: _check_desa,
    FormField.KECAMATAN: _check_kecamatan,
    FormField.ALASAN_KTP: _check_reason,
    FormField.ALAMAT_PINDAH: _check_alamat,
    FormField.NO_SKPWNI: _check_no_skpwni,
    FormField.KEPERLUAN: _check_keperluan,
    FormField.TANGGAL_LAHIR: _check_date,
    FormField.TANGGAL_MENINGGAL: _check_date,
}


# -- one column at a time (guided mode) ----------------------------------------------------


def check_field(
    column: FormField,
    raw: str,
    *,
    area: OfficeArea,
    today: date,
    doc_type: DocType | None = None,
    answers: Mapping[FormField, str] | None = None,
) -> str | Problem:
    """One column checked on its own, exactly as :func:`parse_message` checks it inside a
    message: the value as the format carries it (upper case, labels dropped, a kecamatan by
    its name, a date as ``DD-MM-YYYY``), or the :class:`Problem` that says what to fix.

    With ``doc_type``, the checks across columns that concern ``column`` run too, against
    the columns already in ``answers`` (the No. KK inside the office's regency, a death
    after the birth in the NIK), so that a guided answer is refused at once rather than
    at the end. The value never contains ``#``, so it can go into :func:`compose_format`.
    """
    value = _column(column, _normalise(raw), area, today)
    if isinstance(value, Problem):
        return value
    if doc_type is not None:
        checked: dict[FormField, object] = {}
        for other, text in (answers or {}).items():
            if other is not column:
                earlier = _column(other, text, area, today)
                if not isinstance(earlier, Problem):
                    checked[other] = earlier
        checked[column] = value
        for problem in _consistency(doc_type, checked, area):
            if problem.field == column.value:
                return problem
    return _as_text(value)


def _as_text(value: object) -> str:
    if isinstance(value, Nik | NoKk):
        return value.value
    if isinstance(value, Kecamatan):
        return value.name
    if isinstance(value, date):
        return f"{value:%d-%m-%Y}"
    return str(value)


def compose_format(doc_type: DocType, values: Mapping[FormField, str]) -> str:
    """The ``#`` format of ``doc_type`` filled with ``values`` (one per column of the
    format; a missing column raises ``KeyError``), as a citizen would type it."""
    spec = document(doc_type)
    text = "#".join((f"#{spec.keyword}", *(values[column] for column in spec.fields)))
    return text + "#" if spec.format.endswith("#") else text
