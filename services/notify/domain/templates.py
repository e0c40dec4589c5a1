"""The approved WhatsApp templates: what the office may say outside the 24-hour window.

Each template is registered with Meta once (category ``UTILITY``, language ``id``) under a
name; the office can rename them (``ADMINDUK_WHATSAPP_TEMPLATES``). Its body has numbered
parameters (``{{1}}``, ``{{2}}``...) filled from typed values; ``docs/TEMPLATES.md`` lists
every template as it must be registered and is generated from this catalogue by
:func:`markdown` (``python -m adminduk.docs``).

Every message the office sends on its own initiative has one, because it may reach a
citizen days after their last message: a pickup date, a finished letter, an officer's
decision, and the acknowledgements of a message Meta delivered to the webhook late.
Answers to what the citizen just typed (the menu, information, a status, a broken format,
guided questions, notes about files) have none: they are sent within the window or not at
all.

A template's body replaces the free-form text, so it reads on its own: the document, the
ticket and what to do next. The functions at the end of this module are the only way to
call one: they take typed values (a :class:`~shared.documents.DocType`, a
:class:`~datetime.date`, a list of papers) and format them the way the free-form messages
do, as the single-line parameters the Cloud API accepts.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from types import MappingProxyType
from typing import Final

from services.notify.domain.outbound import TEMPLATE_PARAMETER_MAX, TemplateCall
from shared.calendar import OfficeHours, format_jam, format_tanggal
from shared.documents import DocType, KtpReason, document

_PLACEHOLDER: Final = re.compile(r"\{\{(\d+)\}\}")
_NAME: Final = re.compile(r"^[a-z0-9_]{1,512}$")

BODY_MAX: Final = 1024
"""Meta's limit on a template body, as registered and as filled in (error 132005)."""

LANGUAGE: Final = "id"
"""The language the bodies are written in (``ADMINDUK_WHATSAPP_TEMPLATE_LANGUAGE``)."""

SURVEY_SCALE: Final = {1: "tidak puas", 2: "kurang puas", 3: "puas", 4: "sangat puas"}
"""The one-question survey's answers: the scale of the public satisfaction index (IKM)."""

SURVEY_QUESTION: Final = "\n".join(
    [
        "Bagaimana pelayanan kami? Balas pesan ini dengan satu angka:",
        *(f"{score} = {words}" for score, words in SURVEY_SCALE.items()),
    ]
)


@dataclass(frozen=True)
class TemplateSpec:
    """One approved template: catalogue ``key``, default ``name``, the ``body`` as
    registered, what each parameter is (``parameters``, in order), and whether it has a
    document header (a letter)."""

    key: str
    name: str
    body: str
    parameters: tuple[str, ...]
    document_header: bool = False
    category: str = "UTILITY"

    def __post_init__(self) -> None:
        numbers = sorted({int(n) for n in _PLACEHOLDER.findall(self.body)})
        if numbers != list(range(1, len(self.parameters) + 1)):
            raise ValueError(f"template {self.key}: placeholders {numbers} do not match")

    def call(self, *values: str) -> TemplateCall:
        """A call of this template with ``values`` for its parameters, in order."""
        if len(values) != len(self.parameters):
            raise ValueError(
                f"template {self.key} takes {len(self.parameters)} parameters, not {len(values)}"
            )
        return TemplateCall(
            key=self.key,
            parameters=tuple(" ".join(value.split()) for value in values),
            document_header=self.document_header,
        )

    def render(self, parameters: tuple[str, ...] | list[str]) -> str:
        """The text the citizen reads: the body with the parameters filled in."""
        return _PLACEHOLDER.sub(lambda match: parameters[int(match.group(1)) - 1], self.body)


def review_problems(spec: TemplateSpec) -> list[str]:
    """Why Meta's review would refuse ``spec`` as written (empty: nothing known).

    The rules are those the review applies to a body: at most 1,024 characters; a
    lowercase name of letters, digits and ``_``; parameters numbered in the order they
    first appear, each used once; no parameter at the very start or end of the body, nor
    two separated by nothing but spaces; at least ``3n + 1`` words (parameters counted)
    for ``n`` parameters; no more than three new lines in a row.
    """
    problems = []
    if len(spec.body) > BODY_MAX:
        problems.append(f"body longer than {BODY_MAX} characters")
    if not _NAME.match(spec.name):
        problems.append(f"name {spec.name!r}: lowercase letters, digits and _ only")
    found = [int(n) for n in _PLACEHOLDER.findall(spec.body)]
    if found != list(range(1, len(found) + 1)):
        problems.append(f"parameters not used once each in order: {found}")
    stripped = spec.body.strip()
    if _PLACEHOLDER.match(stripped) or re.search(r"\{\{\d+\}\}[.!?]?$", stripped):
        problems.append("a parameter at the start or end of the body")
    if re.search(r"\}\}\s*\{\{", spec.body):
        problems.append("two parameters next to each other")
    if len(spec.body.split()) < 3 * len(found) + 1:
        problems.append("too many parameters for the length of the body")
    if "\n\n\n\n" in spec.body:
        problems.append("more than three new lines in a row")
    return problems


# -- the catalogue ------------------------------------------------------------------------

_DOCUMENT: Final = "the document's name, e.g. Kartu Identitas Anak (KIA)"
_TICKET: Final = "the ticket"
_WHEN_OFFICERS_LOOK: Final = (
    "when officers look: pada jam kerja, or mulai [day] pukul [time] when the office was closed"
)

REQUEST_RECEIVED: Final = TemplateSpec(
    key="request_received",
    name="adminduk_request_received",
    body=(
        "Permohonan {{1}} Anda sudah kami terima.\n"
        "Nomor tiket: {{2}}\n"
        "\n"
        "Persyaratan yang perlu dikirim: {{3}}.\n"
        "Kirim foto atau PDF persyaratan yang belum Anda kirim di percakapan ini.\n"
        "\n"
        "Petugas akan memeriksa permohonan Anda {{4}}. "
        "Perkiraan selesai: {{5}} setelah berkas lengkap diperiksa.\n"
        "Cek status: ketik #STATUS#{{6}} lalu kirim."
    ),
    parameters=(
        _DOCUMENT,
        _TICKET,
        "the papers to attach, joined with '; '",
        _WHEN_OFFICERS_LOOK,
        "the promised turnaround, e.g. 14 hari kerja",
        "the ticket again (in the status command)",
    ),
)
CORRECTION_RECEIVED: Final = TemplateSpec(
    key="correction_received",
    name="adminduk_correction_received",
    body=(
        "Perbaikan untuk tiket {{1}} sudah kami terima ({{2}} berkas).\n"
        "Petugas akan memeriksanya kembali {{3}}. "
        "Hasilnya akan kami kabarkan melalui WhatsApp ini."
    ),
    parameters=(
        _TICKET,
        "how many files came",
        _WHEN_OFFICERS_LOOK,
    ),
)
COMPLAINT_RECEIVED: Final = TemplateSpec(
    key="complaint_received",
    name="adminduk_complaint_received",
    body=(
        "Pengaduan Anda sudah kami terima.\n"
        "Nomor tiket: {{1}}\n"
        "Petugas pengaduan akan membalas melalui WhatsApp ini {{2}}. Mohon ditunggu."
    ),
    parameters=(
        _TICKET,
        _WHEN_OFFICERS_LOOK,
    ),
)
CHANGES_REQUESTED: Final = TemplateSpec(
    key="changes_requested",
    name="adminduk_changes_requested",
    body=(
        "Permohonan {{1}} dengan nomor tiket {{2}}: PERLU PERBAIKAN.\n"
        "Yang perlu diperbaiki: {{3}}.\n"
        "\n"
        "Kirim foto atau PDF perbaikannya di percakapan ini dengan keterangan "
        "#LENGKAPI#{{4}} agar petugas memeriksanya kembali."
    ),
    parameters=(
        _DOCUMENT,
        _TICKET,
        "what to correct (the officer's reasons), joined with '; '",
        "the ticket again (in the caption to send with the files)",
    ),
)
REQUEST_VERIFIED: Final = TemplateSpec(
    key="request_verified",
    name="adminduk_request_verified",
    body=(
        "Permohonan {{1}} dengan nomor tiket {{2}} sudah DIVERIFIKASI.\n"
        "Berkas Anda lengkap dan dokumen Anda sekarang dibuat. Anda tidak perlu melakukan "
        "apa pun. Kami akan mengabari Anda melalui WhatsApp ini kapan dokumen dapat diambil "
        "atau dikirim."
    ),
    parameters=(_DOCUMENT, _TICKET),
)
REQUEST_REJECTED: Final = TemplateSpec(
    key="request_rejected",
    name="adminduk_request_rejected",
    body=(
        "Mohon maaf, permohonan {{1}} dengan nomor tiket {{2}} DITOLAK.\n"
        "Alasan: {{3}}.\n"
        "\n"
        "Anda dapat mengajukan permohonan baru bila persyaratannya sudah terpenuhi. "
        "Bila keberatan, ketik #ADUAN# lalu tulis keberatan Anda."
    ),
    parameters=(_DOCUMENT, _TICKET, "the officer's reason"),
)
REQUEST_CANCELLED: Final = TemplateSpec(
    key="request_cancelled",
    name="adminduk_request_cancelled",
    body=(
        "Permohonan {{1}} dengan nomor tiket {{2}} sudah DIBATALKAN atas permintaan Anda.\n"
        "Berkas Anda tidak kami proses lagi. Bila masih memerlukan dokumen ini, kirim "
        "permohonan baru kapan saja. Ketik #MENU untuk melihat layanan."
    ),
    parameters=(_DOCUMENT, _TICKET),
)
DUPLICATE_CANCELLED: Final = TemplateSpec(
    key="duplicate_cancelled",
    name="adminduk_duplicate_cancelled",
    body=(
        "Permohonan {{1}} dengan tiket {{2}} DIBATALKAN karena sama dengan permohonan Anda "
        "yang masih diproses.\n"
        "Nomor tiket: {{3}}\n"
        "Gunakan nomor tiket itu untuk cek status dan mengirim berkas. "
        "Anda tidak perlu mengirim permohonan lagi."
    ),
    parameters=(_DOCUMENT, "the ticket cancelled", "the ticket that goes on (the earlier request)"),
)
PICKUP_DATE: Final = TemplateSpec(
    key="pickup_date",
    name="adminduk_pickup_date",
    body=(
        "Permohonan {{1}} Anda sedang DIPROSES: dokumennya sedang dibuat.\n"
        "Nomor tiket: {{2}}\n"
        "\n"
        "Dokumen dapat diambil mulai {{3}}, {{4}}.\n"
        "Tempat: {{5}}\n"
        "Bawa: {{6}}.\n"
        "Tunjukkan pesan ini atau nomor tiket Anda kepada petugas loket."
    ),
    parameters=(
        _DOCUMENT,
        _TICKET,
        "the first day it can be collected, e.g. Senin, 7 Desember 2026",
        "office hours: pukul 08.00 sampai 16.00, or pada jam layanan kantor when unknown",
        "where to collect it",
        "what to bring, joined with '; '",
    ),
)
LETTER_SCHEDULED: Final = TemplateSpec(
    key="letter_scheduled",
    name="adminduk_letter_scheduled",
    body=(
        "Permohonan {{1}} Anda sedang DIPROSES: suratnya sedang dibuat.\n"
        "Nomor tiket: {{2}}\n"
        "\n"
        "Surat akan dikirim melalui WhatsApp ini sebagai PDF bertanda tangan elektronik "
        "(TTE), paling lambat {{3}}. Anda tidak perlu datang ke kantor dan tidak perlu "
        "membawa apa pun."
    ),
    parameters=(_DOCUMENT, _TICKET, "the day it is sent at the latest"),
)
ISSUANCE_DELAYED: Final = TemplateSpec(
    key="issuance_delayed",
    name="adminduk_issuance_delayed",
    body=(
        "Mohon maaf, dokumen {{1}} Anda belum dapat selesai pada {{2}}.\n"
        "Nomor tiket: {{3}}\n"
        "\n"
        "Penyebabnya: {{4}}\n"
        "Perkiraan selesai yang baru: {{5}}.\n"
        "Anda tidak perlu melakukan apa pun. Kami akan mengabari Anda lagi melalui "
        "WhatsApp ini."
    ),
    parameters=(
        _DOCUMENT,
        "the day promised before",
        _TICKET,
        "why it is late",
        "the new promised day",
    ),
)
DOCUMENT_READY: Final = TemplateSpec(
    key="document_ready",
    name="adminduk_document_ready",
    body=(
        "Dokumen {{1}} Anda SIAP DIAMBIL.\n"
        "Nomor tiket: {{2}}\n"
        "\n"
        "Dokumen dapat diambil mulai {{3}}, {{4}}.\n"
        "Tempat: {{5}}\n"
        "Bawa: {{6}}.\n"
        "Tunjukkan pesan ini atau nomor tiket Anda kepada petugas loket."
    ),
    parameters=(
        _DOCUMENT,
        _TICKET,
        "the first day it can be collected",
        "office hours: pukul 08.00 sampai 16.00, or pada jam layanan kantor when unknown",
        "where to collect it",
        "what to bring, joined with '; '",
    ),
)
LETTER: Final = TemplateSpec(
    key="letter",
    name="adminduk_letter",
    body=(
        "Dokumen {{1}} Anda sudah terbit. Suratnya terlampir (PDF).\n"
        "Nomor tiket: {{2}}\n"
        "Nomor dokumen: {{3}}\n"
        "\n"
        "Surat ini ditandatangani secara elektronik (TTE). Simpan berkas ini. "
        "Anda tidak perlu datang ke kantor. Status: SELESAI.\n"
        "\n" + SURVEY_QUESTION
    ),
    parameters=(_DOCUMENT, _TICKET, "the number of the document issued"),
    document_header=True,
)
DOCUMENT_COLLECTED: Final = TemplateSpec(
    key="document_collected",
    name="adminduk_document_collected",
    body=(
        "Terima kasih. Dokumen {{1}} sudah Anda terima.\n"
        "Nomor tiket: {{2}}\n"
        "Status: SELESAI.\n"
        "\n" + SURVEY_QUESTION
    ),
    parameters=(_DOCUMENT, _TICKET),
)
COMPLAINT_ANSWERED: Final = TemplateSpec(
    key="complaint_answered",
    name="adminduk_complaint_answered",
    body=(
        "Pengaduan Anda sudah dijawab petugas.\n"
        "Nomor tiket: {{1}}\n"
        "\n"
        "Jawaban: {{2}}\n"
        "\n"
        "Pengaduan ini kami tutup. Bila masih ada yang perlu dibantu, ketik #ADUAN# lalu "
        "tulis pesan Anda."
    ),
    parameters=(_TICKET, "the officer's answer, on one line (shortened when very long)"),
)

TEMPLATES: Final[Mapping[str, TemplateSpec]] = MappingProxyType(
    {
        spec.key: spec
        for spec in (
            REQUEST_RECEIVED,
            CORRECTION_RECEIVED,
            COMPLAINT_RECEIVED,
            CHANGES_REQUESTED,
            REQUEST_VERIFIED,
            REQUEST_REJECTED,
            REQUEST_CANCELLED,
            DUPLICATE_CANCELLED,
            PICKUP_DATE,
            LETTER_SCHEDULED,
            ISSUANCE_DELAYED,
            DOCUMENT_READY,
            LETTER,
            DOCUMENT_COLLECTED,
            COMPLAINT_ANSWERED,
        )
    }
)
"""Every template, by key, in the order a request meets them."""


def template_name(key: str, overrides: Mapping[str, str]) -> str:
    """The name Meta approved for template ``key`` at this office."""
    return overrides.get(key) or TEMPLATES[key].name


def by_name(overrides: Mapping[str, str]) -> dict[str, TemplateSpec]:
    """The templates by their approved names (as the Cloud API, or its simulator, knows
    them)."""
    return {template_name(key, overrides): spec for key, spec in TEMPLATES.items()}


# -- typed calls --------------------------------------------------------------------------

# Free text (an officer's words, a place, a document number) is clipped so that every
# parameter, and every filled-in body, stays within Meta's limits whatever it holds.
_SHORT: Final = 120
_LONG: Final = 300
_ANSWER: Final = min(600, TEMPLATE_PARAMETER_MAX)


def _clip(text: str, limit: int) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1].rstrip() + "…"


def _phrase(text: str, limit: int = _LONG) -> str:
    """Text that a body follows with a full stop of its own."""
    return _clip(text, limit).rstrip(" .;,") or "-"


def _items(items: Sequence[str], limit: int = _LONG) -> str:
    parts = [_phrase(item) for item in items if item.strip()]
    return _phrase("; ".join(parts), limit) if parts else "-"


def _document(doc_type: DocType) -> str:
    return document(doc_type).name


def hours_phrase(hours: OfficeHours | None) -> str:
    """``pukul 08.00 sampai 16.00``, or ``pada jam layanan kantor`` when the hours are unknown."""
    if hours is None:
        return "pada jam layanan kantor"
    return f"pukul {format_jam(hours.opens)} sampai {format_jam(hours.closes)}"


def opening_phrase(opening: datetime | None) -> str:
    """When officers look: ``mulai Senin, 7 Desember 2026 pukul 08.00`` when the office was
    closed (``opening`` is its next opening, in the office's zone), else ``pada jam kerja``."""
    if opening is None:
        return "pada jam kerja"
    return f"mulai {format_tanggal(opening.date())} pukul {format_jam(opening.time())}"


def request_received(
    doc_type: DocType, ticket: str, *, reason: KtpReason | None, opening: datetime | None
) -> TemplateCall:
    spec = document(doc_type)
    return REQUEST_RECEIVED.call(
        spec.name,
        ticket,
        _items(spec.requirements_for(reason)),
        opening_phrase(opening),
        spec.turnaround_text,
        ticket,
    )


def correction_received(ticket: str, files: int, *, opening: datetime | None) -> TemplateCall:
    return CORRECTION_RECEIVED.call(ticket, str(files), opening_phrase(opening))


def complaint_received(ticket: str, *, opening: datetime | None) -> TemplateCall:
    return COMPLAINT_RECEIVED.call(ticket, opening_phrase(opening))


def changes_requested(doc_type: DocType, ticket: str, reasons: Sequence[str]) -> TemplateCall:
    return CHANGES_REQUESTED.call(_document(doc_type), ticket, _items(reasons, _ANSWER), ticket)


def request_verified(doc_type: DocType, ticket: str) -> TemplateCall:
    return REQUEST_VERIFIED.call(_document(doc_type), ticket)


def request_rejected(doc_type: DocType, ticket: str, reason: str) -> TemplateCall:
    return REQUEST_REJECTED.call(_document(doc_type), ticket, _phrase(reason, _ANSWER))


def request_cancelled(doc_type: DocType, ticket: str) -> TemplateCall:
    return REQUEST_CANCELLED.call(_document(doc_type), ticket)


def duplicate_cancelled(doc_type: DocType, ticket: str, kept: str) -> TemplateCall:
    return DUPLICATE_CANCELLED.call(_document(doc_type), ticket, kept)


def pickup_date(
    doc_type: DocType,
    ticket: str,
    day: date,
    *,
    hours: OfficeHours | None,
    place: str | None,
    bring: Sequence[str],
) -> TemplateCall:
    return PICKUP_DATE.call(*_pickup(doc_type, ticket, day, hours, place, bring))


def document_ready(
    doc_type: DocType,
    ticket: str,
    day: date,
    *,
    hours: OfficeHours | None,
    place: str | None,
    bring: Sequence[str],
) -> TemplateCall:
    return DOCUMENT_READY.call(*_pickup(doc_type, ticket, day, hours, place, bring))


def _pickup(
    doc_type: DocType,
    ticket: str,
    day: date,
    hours: OfficeHours | None,
    place: str | None,
    bring: Sequence[str],
) -> tuple[str, ...]:
    return (
        _document(doc_type),
        ticket,
        format_tanggal(day),
        hours_phrase(hours),
        _clip(place or "kantor Disdukcapil", _LONG),
        _items(bring) if bring else "bukti permohonan (pesan ini atau nomor tiket)",
    )


def letter_scheduled(doc_type: DocType, ticket: str, day: date) -> TemplateCall:
    return LETTER_SCHEDULED.call(_document(doc_type), ticket, format_tanggal(day))


def issuance_delayed(
    doc_type: DocType, ticket: str, previous: date, promised: date, cause: str
) -> TemplateCall:
    return ISSUANCE_DELAYED.call(
        _document(doc_type),
        format_tanggal(previous),
        ticket,
        _clip(cause, _LONG),
        format_tanggal(promised),
    )


def letter(doc_type: DocType, ticket: str, document_number: str) -> TemplateCall:
    return LETTER.call(_document(doc_type), ticket, _clip(document_number, _SHORT))


def document_collected(doc_type: DocType, ticket: str) -> TemplateCall:
    return DOCUMENT_COLLECTED.call(_document(doc_type), ticket)


def complaint_answered(ticket: str, answer: str) -> TemplateCall:
    return COMPLAINT_ANSWERED.call(ticket, _clip(answer, _ANSWER) or "-")


# -- the registration sheet (docs/TEMPLATES.md) -------------------------------------------

_SAMPLE_TICKET: Final = "KIA-7Q2M9XAB"
_SAMPLE_DAY: Final = date(2026, 12, 7)
_SAMPLE_PLACE: Final = "Loket 3, Kantor Disdukcapil Kabupaten Tangerang, Tigaraksa"


def examples() -> dict[str, TemplateCall]:
    """A call of every template with sample values: Meta asks for samples when a template
    is submitted, and the documentation shows them filled in."""
    kia = DocType.KIA
    hours = OfficeHours()
    bring = document(kia).collect_with_for()
    opening = datetime.combine(date(2026, 12, 28), time(8, 0))
    calls = [
        request_received(kia, _SAMPLE_TICKET, reason=None, opening=opening),
        correction_received(_SAMPLE_TICKET, 2, opening=None),
        complaint_received("ADUAN-3K8P2WQR", opening=None),
        changes_requested(
            kia, _SAMPLE_TICKET, ("Foto akta kelahiran buram", "Lampirkan KTP-el ibu")
        ),
        request_verified(kia, _SAMPLE_TICKET),
        request_rejected(kia, _SAMPLE_TICKET, "Anak sudah berusia 17 tahun"),
        request_cancelled(kia, _SAMPLE_TICKET),
        duplicate_cancelled(kia, "KIA-5H3D8LMN", _SAMPLE_TICKET),
        pickup_date(
            kia, _SAMPLE_TICKET, _SAMPLE_DAY, hours=hours, place=_SAMPLE_PLACE, bring=bring
        ),
        letter_scheduled(DocType.SKPWNI, "SKPWNI-4T6R1ZXC", _SAMPLE_DAY),
        issuance_delayed(
            kia,
            _SAMPLE_TICKET,
            _SAMPLE_DAY,
            date(2026, 12, 9),
            "sistem kependudukan nasional (SIAK) sedang tidak dapat diakses.",
        ),
        document_ready(
            kia, _SAMPLE_TICKET, _SAMPLE_DAY, hours=hours, place=_SAMPLE_PLACE, bring=bring
        ),
        letter(DocType.SKPWNI, "SKPWNI-4T6R1ZXC", "SKPWNI/3603/07122026/0021"),
        document_collected(kia, _SAMPLE_TICKET),
        complaint_answered(
            "ADUAN-3K8P2WQR",
            "Mohon maaf atas antrean kemarin. Mulai Senin loket KIA dibuka dua.",
        ),
    ]
    return {call.key: call for call in calls}


def markdown(language: str = LANGUAGE) -> str:
    """``docs/TEMPLATES.md``: every template as it must be registered with Meta."""
    samples = examples()
    lines = [
        "# WhatsApp message templates",
        "",
        "<!-- Generated by `python -m adminduk.docs` from services/notify/domain/templates.py;"
        " do not edit by hand. -->",
        "",
        "Outside the 24-hour window that a citizen's last message opens, WhatsApp accepts",
        "only templates the business registered and Meta approved (error 131047 otherwise).",
        "Notify sends a message as its template when the window is closed, and never sends",
        "free-form text outside it: a message without a template (answers to what the",
        "citizen just typed: the menu, information, a status, guided questions) is not sent",
        "at all. Register each template below in WhatsApp Manager (or through the Business",
        "Management API) before going live, with the body exactly as shown.",
        "",
        "## Names and language",
        "",
        "Each template has a default name; an office that registered it under another name",
        "maps the catalogue key to that name (keys left out keep their default):",
        "",
        "```sh",
        'ADMINDUK_WHATSAPP_TEMPLATES=\'{"pickup_date": "my_name"}\'',
        f"ADMINDUK_WHATSAPP_TEMPLATE_LANGUAGE={language}",
        "```",
        "",
        f"The bodies are in Bahasa Indonesia, language code `{language}`. A template is",
        "approved per name *and* language: a different code must name a translation that",
        "exists under the same names.",
        "",
        "Parameters are filled from typed values and are always a single line (no new",
        "lines, tabs or runs of spaces: lists are joined with `; `) and never empty; long",
        "free text (an officer's answer, a place) is shortened so that the filled-in body",
        f"stays within {BODY_MAX} characters.",
        "",
        "| key | default name | category | parameters | header |",
        "|---|---|---|---|---|",
    ]
    for spec in TEMPLATES.values():
        header = "document (the PDF)" if spec.document_header else "none"
        lines.append(
            f"| `{spec.key}` | `{spec.name}` | {spec.category} | {len(spec.parameters)} "
            f"| {header} |"
        )
    for spec in TEMPLATES.values():
        call = samples[spec.key]
        lines += [
            "",
            f"## `{spec.name}`",
            "",
            f"- key: `{spec.key}`",
            f"- category: {spec.category}",
            f"- language: `{language}`",
            "- header: " + ("document (the signed PDF letter)" if spec.document_header else "none"),
            "",
            "Body:",
            "",
            "```text",
            spec.body,
            "```",
            "",
            "| parameter | what it is | sample |",
            "|---|---|---|",
        ]
        for number, (meaning, sample) in enumerate(
            zip(spec.parameters, call.parameters, strict=True), start=1
        ):
            cell = sample.replace("|", "\\|")
            lines.append(f"| `{{{{{number}}}}}` | {meaning.replace('|', '/')} | {cell} |")
        lines += ["", "Example:", "", "```text", spec.render(call.parameters), "```"]
    return "\n".join(lines) + "\n"
