"""What the office says to citizens, in plain Bahasa Indonesia: one catalogue, one function
per event.

Each message names the ticket where there is one and says what to do next, in short
sentences, for citizens who may be elderly or have had little schooling. Rendering is pure:
typed event in, :class:`~services.notify.domain.outbound.OutboundMessage` out, with

* ``text``: the whole message, which always says how to answer by typing (the fallback
  when buttons and lists are off or the phone cannot show them);
* ``choices``: reply buttons or a list where a tap saves typing (ids from
  :mod:`shared.reply_ids`, which intake understands), and none when the interactive body
  would pass the Cloud API's 1,024 characters;
* ``template``: the approved template that says the same outside the 24-hour window, for
  every message the office sends on its own (see
  :mod:`services.notify.domain.templates`); None for direct answers to what the citizen
  just sent, which go inside the window or not at all.

Acknowledgements of what a citizen sent while the office was closed (a weekend, a
holiday, the night) say when officers will look at it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Final

from services.notify.domain import templates
from services.notify.domain.outbound import (
    CAPTION_MAX,
    INTERACTIVE_BODY_MAX,
    TEXT_MAX,
    Attached,
    Choice,
    Choices,
    OutboundMessage,
    TemplateCall,
)
from services.notify.domain.templates import SURVEY_QUESTION, SURVEY_SCALE
from shared import reply_ids
from shared.calendar import OfficeHours, WorkingCalendar, format_jam, format_tanggal
from shared.contracts import (
    GUIDED_CHOOSE_DOCUMENT,
    GUIDED_CONFIRM,
    AttachmentHeld,
    AttachmentLinked,
    AttachmentRejected,
    CancellationRefused,
    ChangesRequested,
    ComplaintAnswered,
    ComplaintReceived,
    CorrectionRefused,
    Delivery,
    DocumentCollected,
    DocumentIssued,
    DocumentReady,
    DuplicateRequestReceived,
    GuidedEnded,
    GuidedStepAsked,
    HandedToSiak,
    InfoRequested,
    InvalidRequestReceived,
    IssuanceDelayed,
    IssuanceFailed,
    IssuanceScheduled,
    MenuRequested,
    RequestAmended,
    RequestCancelled,
    RequestReceived,
    RequestRejected,
    RequestVerified,
    StatusReported,
    SurveyAnswered,
    UnsupportedCommandReceived,
)
from shared.documents import CATALOGUE, DocType, DocumentSpec, FormField, KtpReason, document
from shared.eventstore.envelope import Event

__all__ = [
    "CAPTION_MAX",
    "STATUS_EXPLANATIONS",
    "SURVEY_QUESTION",
    "SURVEY_SCALE",
    "closed_notice",
    "letter_caption",
    "letter_filename",
    "menu_text",
    "render",
]

STATUS_EXPLANATIONS = {
    "DITERIMA": "Permohonan sudah kami terima dan menunggu pemeriksaan petugas.",
    "PERLU PERBAIKAN": "Ada yang perlu Anda perbaiki. Lihat pesan petugas sebelumnya.",
    "DIVERIFIKASI": "Berkas sudah diperiksa dan diterima petugas. Dokumen Anda sedang disiapkan.",
    "DITOLAK": "Permohonan tidak dapat kami proses. Lihat alasan dari petugas.",
    "DIPROSES": "Dokumen sedang dibuat.",
    "SIAP DIAMBIL": "Dokumen sudah siap diambil.",
    "SELESAI": "Dokumen sudah diterima. Terima kasih.",
    "DIBATALKAN": "Permohonan sudah dibatalkan.",
}

# -- the words of menus and lists ---------------------------------------------------------

SHORT_NAMES: Final[Mapping[DocType, str]] = {
    DocType.KK: "Kartu Keluarga (KK)",
    DocType.KTP: "KTP elektronik",
    DocType.KIA: "Kartu Identitas Anak",
    DocType.SKPWNI: "Surat pindah keluar",
    DocType.SKDWNI: "Surat pindah datang",
    DocType.AKTA_KELAHIRAN: "Akta kelahiran",
    DocType.AKTA_KEMATIAN: "Akta kematian",
    DocType.VALIDASI_NIK: "Validasi NIK",
}
"""A document's name in at most 24 characters: the title of its row in a list."""

_SERVICE_HINTS: Final[Mapping[DocType, str]] = {
    DocType.KK: "KK baru atau perubahan data",
    DocType.KTP: "Baru (pemula), hilang atau rusak",
    DocType.KIA: "Kartu identitas anak di bawah 17 tahun",
    DocType.SKPWNI: "Pindah keluar dari daerah ini",
    DocType.SKDWNI: "Datang pindah ke daerah ini",
    DocType.AKTA_KELAHIRAN: "Untuk bayi atau anak",
    DocType.AKTA_KEMATIAN: "Untuk anggota keluarga yang meninggal",
    DocType.VALIDASI_NIK: "Untuk BPJS, sekolah, bank dan lainnya",
}


def _service_row(spec: DocumentSpec) -> Choice:
    hint = _SERVICE_HINTS.get(spec.doc_type)
    description = f"{hint}. Selesai {spec.turnaround_text}" if hint else spec.turnaround_text
    return Choice(
        id=reply_ids.choose_service(spec.doc_type.value),
        title=SHORT_NAMES.get(spec.doc_type, spec.keyword),
        description=description,
    )


_CHOOSE: Final = "Pilih layanan"
_MENU_BUTTON: Final = (reply_ids.MENU, "Lihat layanan")
_LEAVE_BUTTON: Final = (reply_ids.GUIDED_LEAVE, "Keluar")
_RESTART_BUTTON: Final = (reply_ids.GUIDED_RESTART, "Mulai ulang")
_HELP_TO_FILL: Final = (
    "Sulit menulis formatnya? Ketik HALO, kami bantu mengisi langkah demi langkah."
)


def _status_button(ticket: str) -> tuple[str, str]:
    return (reply_ids.status_of(ticket), "Cek status")


def _buttons(body: str, *buttons: tuple[str, str]) -> Choices | None:
    """Reply buttons under ``body``; none when the body is too long for an interactive
    message (the text alone then says it all)."""
    if len(body) > INTERACTIVE_BODY_MAX:
        return None
    return Choices(
        style="buttons",
        body=body,
        options=tuple(Choice(id=id_, title=title) for id_, title in buttons),
    )


def _list(body: str, button: str, rows: Sequence[Choice]) -> Choices | None:
    if len(body) > INTERACTIVE_BODY_MAX:
        return None
    return Choices(style="list", body=body, button=button, options=tuple(rows))


def _format_block(doc_type: DocType) -> str:
    spec = document(doc_type)
    return f"Format {spec.keyword}:\n{spec.format}\nContoh:\n{spec.example}"


def menu_text(understood: bool = True) -> str:
    """The list of services as text, each with how to ask for its requirements."""
    lines = []
    if not understood:
        lines += ["Maaf, pesan Anda belum kami pahami.", ""]
    lines += ["Layanan Disdukcapil melalui WhatsApp:"]
    for index, spec in enumerate(CATALOGUE.values(), start=1):
        lines.append(f"{index}. {spec.name}: ketik #INFO#{spec.keyword}")
    lines += [
        "",
        "Ingin dibantu mengisi permohonan langkah demi langkah? Ketik HALO.",
        "Cek status permohonan: #STATUS#NOMOR_TIKET",
        "Pengaduan: #ADUAN#isi pengaduan Anda",
    ]
    return "\n".join(lines)


def _menu_body(understood: bool) -> str:
    """The menu as a list message shows it: the services in words above the list."""
    lines = []
    if not understood:
        lines += ["Maaf, pesan Anda belum kami pahami.", ""]
    lines += ["Layanan Disdukcapil melalui WhatsApp:"]
    lines += [f"{i}. {spec.name}" for i, spec in enumerate(CATALOGUE.values(), start=1)]
    lines += [
        "",
        f'Tekan "{_CHOOSE}" lalu pilih layanan. Kami bantu mengisi permohonannya langkah '
        "demi langkah.",
        "Persyaratan: ketik #INFO# dan nama layanan, misalnya #INFO#KTP.",
        "Cek status permohonan: #STATUS#NOMOR_TIKET",
        "Pengaduan: #ADUAN#isi pengaduan Anda",
    ]
    return "\n".join(lines)


def _menu_choices(body: str) -> Choices | None:
    return _list(body, _CHOOSE, [_service_row(spec) for spec in CATALOGUE.values()])


# -- when the office is closed ------------------------------------------------------------


@dataclass(frozen=True)
class Closed:
    """The office was closed at a moment: ``why`` in the citizen's words, and when it next
    ``opens`` (in the office's zone)."""

    why: str
    opens: datetime


def closed_notice(calendar: WorkingCalendar | None, at: datetime | None) -> Closed | None:
    """Why and until when the office was closed at ``at``; None when it was open (or when
    the calendar or the moment is unknown)."""
    if calendar is None or at is None or calendar.is_open(at):
        return None
    day = at.astimezone(calendar.timezone).date()
    holiday = calendar.holiday_name(day)
    if holiday:
        why = f"hari libur: {holiday}"
    elif day in calendar.extra_closed_days:
        why = "kantor libur"
    elif day.weekday() not in calendar.hours.weekdays:
        why = "akhir pekan" if day.weekday() >= 5 else "bukan hari kerja"
    else:
        why = "di luar jam kerja"
    return Closed(why=why, opens=calendar.next_opening(at))


def _closed_sentence(closed: Closed, what: str) -> str:
    opens = closed.opens
    return (
        f"Kantor sedang tutup ({closed.why}). Petugas akan memeriksa {what} mulai "
        f"{format_tanggal(opens.date())} pukul {format_jam(opens.time())}."
    )


def _opening(closed: Closed | None) -> datetime | None:
    return None if closed is None else closed.opens


# -- requests -----------------------------------------------------------------------------


def _doc(doc_type: str) -> DocType:
    return DocType(doc_type)


def _doc_name(doc_type: str) -> str:
    return document(DocType(doc_type)).name


def _reason(applicant: Mapping[str, object]) -> KtpReason | None:
    reason = applicant.get("reason")
    return KtpReason(reason) if isinstance(reason, str) and reason in set(KtpReason) else None


def request_received(event: RequestReceived, closed: Closed | None = None) -> str:
    spec = document(DocType(event.doc_type))
    papers = spec.requirements_for(_reason(event.applicant))
    requirements = "\n".join(f"- {item}" for item in papers)
    files = len(event.attachments)
    received_files = (
        f"Berkas yang sudah kami terima: {files}."
        if files
        else "Belum ada berkas yang kami terima."
    )
    lines = [
        f"Permohonan {spec.name} sudah kami terima.",
        f"Nomor tiket: {event.ticket}",
        "",
        f"Persyaratan yang perlu dilampirkan:\n{requirements}",
        received_files,
        "Kirim foto atau PDF persyaratan yang belum ada di percakapan ini.",
        "",
    ]
    if closed is not None:
        lines.append(_closed_sentence(closed, "permohonan Anda"))
    lines += [
        f"Perkiraan selesai: {spec.turnaround_text} setelah berkas lengkap diperiksa.",
        f"Cek status: ketik #STATUS#{event.ticket}",
    ]
    return "\n".join(lines)


def invalid_request(event: InvalidRequestReceived) -> str:
    lines = ["Maaf, permohonan Anda belum dapat kami proses:"]
    lines += [f"- {problem.field}: {problem.message}" for problem in event.problems]
    if event.doc_type is not None:
        lines += ["", _format_block(DocType(event.doc_type)), "", _HELP_TO_FILL]
    else:
        lines += ["", "Ketik #MENU untuk melihat daftar layanan dan formatnya.", _HELP_TO_FILL]
    return "\n".join(lines)


def _ticket_not_found(ticket: str) -> str:
    return (
        f"Tiket {ticket} tidak ditemukan untuk nomor WhatsApp ini. "
        "Periksa kembali nomor tiket Anda."
    )


_PROMISED_DATE_LABELS: Final = {
    "DIPROSES": "Perkiraan selesai",
    "SIAP DIAMBIL": "Dapat diambil mulai",
}


def status_reported(event: StatusReported) -> str:
    if event.status is None:
        return _ticket_not_found(event.ticket)
    explanation = STATUS_EXPLANATIONS.get(event.status, "")
    lines = [f"Status tiket {event.ticket}: {event.status}", explanation]
    label = _PROMISED_DATE_LABELS.get(event.status)
    if label is not None and event.promised_on is not None:
        lines.append(f"{label}: {format_tanggal(event.promised_on)}.")
    return "\n".join(line for line in lines if line)


def info_requested(event: InfoRequested) -> str:
    if event.doc_type is None:
        return "Layanan itu tidak kami kenal.\n\n" + menu_text()
    spec = document(DocType(event.doc_type))
    requirements = "\n".join(f"- {item}" for item in spec.requirements)
    return "\n".join(
        [
            spec.name,
            f"Persyaratan:\n{requirements}",
            f"Waktu penyelesaian: {spec.turnaround_text}.",
            "",
            _format_block(DocType(event.doc_type)),
            "",
            _HELP_TO_FILL,
        ]
    )


def changes_requested(event: ChangesRequested) -> str:
    reasons = "\n".join(f"- {reason}" for reason in event.reasons)
    return "\n".join(
        [
            f"Permohonan {_doc_name(event.doc_type)} dengan nomor tiket {event.ticket}: "
            "PERLU PERBAIKAN.",
            "",
            "Yang perlu diperbaiki:",
            reasons,
            "",
            "Kirim foto atau PDF perbaikannya di percakapan ini dengan keterangan:",
            f"#LENGKAPI#{event.ticket}",
            "Berkas yang Anda kirim tanpa keterangan juga kami terima sebagai perbaikan.",
        ]
    )


def request_verified(event: RequestVerified) -> str:
    spec = document(DocType(event.doc_type))
    then = (
        "Suratnya akan kami kirim melalui WhatsApp ini."
        if spec.electronic
        else "Tanggal pengambilan akan kami kirim melalui WhatsApp ini."
    )
    return "\n".join(
        [
            f"Permohonan {spec.name} dengan nomor tiket {event.ticket} sudah DIVERIFIKASI.",
            "Berkas Anda lengkap dan sudah diterima petugas. Dokumen Anda sekarang dibuat.",
            f"Anda tidak perlu melakukan apa pun. {then}",
            f"Cek status: ketik #STATUS#{event.ticket}",
        ]
    )


def request_rejected(event: RequestRejected) -> str:
    return "\n".join(
        [
            f"Mohon maaf, permohonan {_doc_name(event.doc_type)} dengan nomor tiket "
            f"{event.ticket} DITOLAK.",
            f"Alasan: {event.reason}",
            "",
            "Anda dapat mengajukan permohonan baru bila persyaratannya sudah terpenuhi.",
            "Bila keberatan, ketik #ADUAN# lalu tulis keberatan Anda.",
        ]
    )


def request_amended(event: RequestAmended, closed: Closed | None = None) -> str:
    files = len(event.attachments)
    lines = [f"Perbaikan untuk tiket {event.ticket} sudah kami terima ({files} berkas)."]
    if closed is not None:
        lines.append(_closed_sentence(closed, "perbaikan Anda"))
    else:
        lines.append("Petugas akan memeriksanya kembali.")
    lines.append("Hasilnya akan kami kabarkan melalui WhatsApp ini.")
    return "\n".join(lines)


def request_cancelled(event: RequestCancelled) -> str:
    if event.reason == "duplicate" and event.duplicate_of:
        return "\n".join(
            [
                f"Permohonan {_doc_name(event.doc_type)} ini sama dengan permohonan Anda "
                "yang masih diproses.",
                f"Nomor tiket: {event.duplicate_of}",
                f"Tiket {event.ticket} DIBATALKAN agar tidak diproses dua kali. Gunakan tiket "
                f"{event.duplicate_of} untuk cek status dan mengirim berkas.",
            ]
        )
    if event.reason == "citizen":
        return "\n".join(
            [
                f"Permohonan {_doc_name(event.doc_type)} sudah DIBATALKAN atas permintaan Anda.",
                f"Nomor tiket: {event.ticket}",
                "Berkas Anda tidak kami proses lagi. Bila masih memerlukan dokumen ini, "
                "kirim permohonan baru kapan saja. Ketik #MENU untuk melihat layanan.",
            ]
        )
    return f"Permohonan dengan nomor tiket {event.ticket} sudah DIBATALKAN."


def duplicate_request(event: DuplicateRequestReceived) -> str:
    status = f" (status: {event.status})" if event.status else ""
    return "\n".join(
        [
            f"Permohonan {_doc_name(event.doc_type)} untuk data ini sudah kami terima "
            f"sebelumnya dan masih diproses{status}.",
            f"Tiket Anda: {event.existing_ticket}",
            "Tidak perlu mengirim permohonan yang sama lagi.",
            f"Cek status: ketik #STATUS#{event.existing_ticket}",
        ]
    )


def correction_refused(event: CorrectionRefused) -> str:
    match event.reason:
        case "unknown_ticket":
            return _ticket_not_found(event.ticket)
        case "no_files":
            return (
                f"Kirim foto atau PDF perbaikan untuk tiket {event.ticket} di percakapan ini, "
                f"dengan keterangan #LENGKAPI#{event.ticket}."
            )
        case _:
            status = f" (status: {event.status})" if event.status else ""
            return (
                f"Tiket {event.ticket} tidak sedang menunggu perbaikan{status}. "
                f"Cek status: ketik #STATUS#{event.ticket}"
            )


def complaint_received(event: ComplaintReceived, closed: Closed | None = None) -> str:
    lines = ["Pengaduan Anda sudah kami terima.", f"Nomor tiket: {event.ticket}"]
    if closed is not None:
        lines.append(_closed_sentence(closed, "pengaduan Anda"))
    lines.append("Petugas pengaduan akan membalas melalui WhatsApp ini pada jam kerja.")
    return "\n".join(lines)


def complaint_answered(event: ComplaintAnswered) -> str:
    return "\n".join(
        [
            "Jawaban petugas atas pengaduan Anda.",
            f"Nomor tiket: {event.ticket}",
            "",
            event.answer,
            "",
            "Pengaduan ini kami tutup. Bila masih ada yang perlu dibantu, ketik #ADUAN# lalu "
            "tulis pesan Anda.",
        ]
    )


_ASK_THE_OFFICE: Final = (
    "Bila ada pertanyaan, hubungi kantor Disdukcapil pada jam kerja atau ketik "
    "#ADUAN#isi pertanyaan Anda."
)
_NOT_CANCELLABLE: Final = {
    "DIPROSES": (
        "Data Anda sudah dikirim ke sistem kependudukan nasional (SIAK) untuk dibuatkan "
        "dokumennya, jadi permohonan tidak dapat dibatalkan lagi. Bila tidak diperlukan "
        "lagi, dokumen itu tidak perlu diambil."
    ),
    "SIAP DIAMBIL": (
        "Dokumen Anda sudah terbit, jadi permohonan tidak dapat dibatalkan lagi. Bila tidak "
        "diperlukan lagi, dokumen itu tidak perlu diambil."
    ),
    "SELESAI": "Dokumen Anda sudah terbit dan diserahkan, jadi tidak dapat dibatalkan lagi.",
    "DITOLAK": "Permohonan ini sudah ditutup (DITOLAK). Tidak ada yang perlu dibatalkan.",
    "DIBATALKAN": "Permohonan ini sudah DIBATALKAN sebelumnya. Tidak ada yang perlu Anda lakukan.",
}


def cancellation_refused(event: CancellationRefused) -> str:
    if event.reason == "unknown_ticket":
        return _ticket_not_found(event.ticket)
    explanation = _NOT_CANCELLABLE.get(
        event.status or "", "Permohonan ini tidak dapat dibatalkan saat ini."
    )
    return "\n".join(
        [
            "Maaf, permohonan Anda tidak dapat dibatalkan.",
            f"Nomor tiket: {event.ticket}",
            "",
            explanation,
            _ASK_THE_OFFICE,
            f"Cek status: ketik #STATUS#{event.ticket}",
        ]
    )


# -- issuance -----------------------------------------------------------------------------


def _pickup(delivery: Delivery, day: date, office_hours: OfficeHours | None) -> list[str]:
    """When, where and with what to collect a document at the office."""
    hours = (
        f"pukul {format_jam(office_hours.opens)} sampai {format_jam(office_hours.closes)}"
        if office_hours is not None
        else "pada jam layanan kantor"
    )
    lines = [
        f"Dokumen dapat diambil mulai {format_tanggal(day)}, {hours}.",
        f"Tempat: {delivery.place or 'kantor Disdukcapil'}",
    ]
    if delivery.bring:
        lines += ["Bawa:", *(f"- {item}" for item in delivery.bring)]
    lines.append("Tunjukkan pesan ini atau nomor tiket Anda kepada petugas loket.")
    return lines


def issuance_scheduled(event: IssuanceScheduled, office_hours: OfficeHours | None = None) -> str:
    lines = [
        f"Permohonan {_doc_name(event.doc_type)} Anda sedang DIPROSES: dokumennya sedang dibuat.",
        f"Nomor tiket: {event.ticket}",
        "",
    ]
    if event.delivery.channel == "whatsapp":
        lines += [
            "Surat akan dikirim melalui WhatsApp ini sebagai PDF bertanda tangan elektronik "
            f"(TTE), paling lambat {format_tanggal(event.promised_on)}.",
            "Anda tidak perlu datang ke kantor dan tidak perlu membawa apa pun.",
        ]
    else:
        lines += _pickup(event.delivery, event.promised_on, office_hours)
    lines.append(f"Cek status: ketik #STATUS#{event.ticket}")
    return "\n".join(lines)


_DELAY_CAUSES: Final = {
    "siak_unavailable": "sistem kependudukan nasional (SIAK) sedang tidak dapat diakses.",
    "siak_refused": (
        "sistem kependudukan nasional (SIAK) belum menerima data permohonan Anda. Petugas "
        "kami sedang menanganinya."
    ),
}


def issuance_delayed(event: IssuanceDelayed) -> str:
    return "\n".join(
        [
            f"Mohon maaf, dokumen {_doc_name(event.doc_type)} Anda belum dapat selesai pada "
            f"{format_tanggal(event.previous_date)}.",
            f"Nomor tiket: {event.ticket}",
            "",
            f"Penyebabnya: {_DELAY_CAUSES[event.reason]}",
            f"Perkiraan selesai yang baru: {format_tanggal(event.promised_on)}.",
            "Anda tidak perlu melakukan apa pun. Kami akan mengabari Anda lagi melalui "
            "WhatsApp ini.",
        ]
    )


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _caption(event: DocumentIssued, number: str) -> str:
    return "\n".join(
        [
            f"Dokumen {_doc_name(event.doc_type)} Anda sudah terbit. Suratnya kami lampirkan "
            "(PDF).",
            f"Nomor tiket: {event.ticket}",
            f"Nomor dokumen: {number}",
            "",
            "Surat ini ditandatangani secara elektronik (TTE). Keasliannya dapat diperiksa "
            "di panel tanda tangan aplikasi pembaca PDF.",
            "Simpan berkas ini. Anda tidak perlu datang ke kantor. Status: SELESAI.",
            "",
            SURVEY_QUESTION,
        ]
    )


def letter_caption(event: DocumentIssued) -> str:
    """The caption of the signed letter sent in the chat (at most :data:`CAPTION_MAX`)."""
    caption = _caption(event, event.document_number)
    excess = len(caption) - CAPTION_MAX
    if excess <= 0:
        return caption
    # Only an absurd document number gets here: shorten it, keep the survey whole.
    number = _clip(event.document_number, max(1, len(event.document_number) - excess))
    return _clip(_caption(event, number), CAPTION_MAX)


def letter_filename(event: DocumentIssued) -> str:
    """``SKPWNI-7Q2M9XAB.pdf``: the ticket, prefixed by the document's keyword."""
    keyword = document(DocType(event.doc_type)).keyword
    stem = event.ticket if event.ticket.startswith(f"{keyword}-") else f"{keyword}-{event.ticket}"
    return f"{stem}.pdf"


def document_ready(event: DocumentReady, office_hours: OfficeHours | None = None) -> str:
    return "\n".join(
        [
            f"Dokumen {_doc_name(event.doc_type)} Anda SIAP DIAMBIL.",
            f"Nomor tiket: {event.ticket}",
            "",
            *_pickup(event.delivery, event.ready_on, office_hours),
        ]
    )


def document_collected(event: DocumentCollected) -> str:
    return "\n".join(
        [
            f"Terima kasih. Dokumen {_doc_name(event.doc_type)} sudah Anda terima.",
            f"Nomor tiket: {event.ticket}",
            "Status: SELESAI.",
            "",
            SURVEY_QUESTION,
        ]
    )


def _survey_choices(body: str) -> Choices | None:
    rows = [
        Choice(id=reply_ids.survey(score), title=f"{score} = {words}")
        for score, words in SURVEY_SCALE.items()
    ]
    return _list(body, "Beri nilai", rows)


def survey_answered(event: SurveyAnswered) -> str:
    return (
        f"Terima kasih atas penilaian Anda ({event.score} = {SURVEY_SCALE[event.score]}).\n"
        f"Nomor tiket: {event.ticket}"
    )


# -- guided mode --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Question:
    label: str
    """The answer's name in the step line and the summary."""
    ask: str
    """The question in plain words, with what the answer looks like."""


_QUESTIONS: Final[Mapping[FormField, _Question]] = {
    FormField.NIK: _Question(
        "NIK",
        "Ketik NIK (Nomor Induk Kependudukan): 16 angka. NIK ada di KTP-el atau Kartu Keluarga.",
    ),
    FormField.NO_KK: _Question(
        "No. KK",
        "Ketik nomor Kartu Keluarga (No. KK): 16 angka. Nomornya ada di bagian atas Kartu "
        "Keluarga.",
    ),
    FormField.NAMA: _Question("Nama", "Ketik nama lengkap sesuai Kartu Keluarga."),
    FormField.NAMA_KEPALA_KELUARGA: _Question(
        "Nama kepala keluarga", "Ketik nama kepala keluarga sesuai Kartu Keluarga."
    ),
    FormField.DESA: _Question(
        "Desa/kelurahan", "Ketik nama desa atau kelurahan sesuai alamat di Kartu Keluarga."
    ),
    FormField.KECAMATAN: _Question(
        "Kecamatan", "Ketik nama kecamatan sesuai alamat di Kartu Keluarga."
    ),
    FormField.ALASAN_KTP: _Question("Alasan", "Mengapa Anda mengajukan KTP-el?"),
    FormField.ALAMAT_PINDAH: _Question(
        "Alamat tujuan pindah",
        "Ketik alamat lengkap tujuan pindah: jalan dan nomor rumah, RT/RW, desa/kelurahan, "
        "kecamatan, kabupaten/kota.",
    ),
    FormField.NO_SKPWNI: _Question(
        "No. SKPWNI",
        "Ketik nomor Surat Keterangan Pindah (SKPWNI) dari daerah asal. Nomornya tertulis "
        "di surat pindah Anda.",
    ),
    FormField.KEPERLUAN: _Question("Keperluan", "Ketik keperluan Anda."),
    FormField.NAMA_ANAK: _Question("Nama anak", "Ketik nama lengkap anak."),
    FormField.TANGGAL_LAHIR: _Question(
        "Tanggal lahir", "Ketik tanggal lahir anak: tanggal-bulan-tahun."
    ),
    FormField.NIK_ALMARHUM: _Question(
        "NIK almarhum",
        "Ketik NIK almarhum/almarhumah: 16 angka. NIK ada di KTP-el atau Kartu Keluarga.",
    ),
    FormField.NAMA_ALMARHUM: _Question(
        "Nama almarhum", "Ketik nama lengkap almarhum/almarhumah sesuai Kartu Keluarga."
    ),
    FormField.TANGGAL_MENINGGAL: _Question(
        "Tanggal meninggal", "Ketik tanggal meninggal: tanggal-bulan-tahun."
    ),
}
_DOCUMENT_QUESTIONS: Final[Mapping[tuple[DocType, FormField], _Question]] = {
    (DocType.KIA, FormField.NIK): _Question(
        "NIK anak", "Ketik NIK anak: 16 angka. NIK anak ada di Kartu Keluarga."
    ),
    (DocType.KIA, FormField.NAMA): _Question(
        "Nama anak", "Ketik nama lengkap anak sesuai Kartu Keluarga."
    ),
    (DocType.SKDWNI, FormField.KEPERLUAN): _Question(
        "Alasan pindah", "Ketik alasan Anda pindah ke daerah ini."
    ),
    (DocType.VALIDASI_NIK, FormField.KEPERLUAN): _Question(
        "Keperluan", "Ketik untuk apa validasi NIK ini diperlukan."
    ),
}

FIXED_ANSWERS: Final[Mapping[FormField, Mapping[str, str]]] = {
    FormField.ALASAN_KTP: {
        KtpReason.PEMULA.value: "KTP-el pertama kali",
        KtpReason.HILANG.value: "KTP-el hilang",
        KtpReason.RUSAK.value: "KTP-el rusak",
    }
}
"""Questions answered by choosing one value (``guided:answer:<value>``), with what each
value means."""


def _question(doc_type: DocType, field: FormField | None, raw: str) -> _Question:
    if field is None:
        return _Question(raw, f"Ketik {raw}.")
    return _DOCUMENT_QUESTIONS.get((doc_type, field)) or _QUESTIONS.get(
        field, _Question(field.value, f"Ketik {field.value}.")
    )


def _examples(spec: DocumentSpec) -> dict[FormField, str]:
    """Each column's value in the document's published example."""
    values = spec.example.strip("#").split("#")[1:]
    if len(values) != len(spec.fields):
        return {}
    return dict(zip(spec.fields, values, strict=True))


def _field(value: str) -> FormField | None:
    try:
        return FormField(value)
    except ValueError:
        return None


def _guided_doc(event: GuidedStepAsked) -> DocType | None:
    if event.doc_type is None:
        return None
    try:
        return DocType(event.doc_type)
    except ValueError:
        return None


_TYPE_TO_LEAVE: Final = "Ketik ULANG untuk mulai dari awal, atau KELUAR untuk berhenti."


def _with_problem(problem: str | None, lines: list[str]) -> str:
    return "\n".join(([problem, ""] if problem else []) + lines)


def guided_choose_document(event: GuidedStepAsked) -> OutboundMessage:
    """The first question of guided mode: which document."""
    documents = list(CATALOGUE.values())
    sample = next((i for i, s in enumerate(documents, 1) if s.doc_type is DocType.KTP), 1)
    lines = [
        "Kami bantu mengisi permohonan langkah demi langkah.",
        "Layanan apa yang Anda perlukan? Ketik nomornya saja, misalnya "
        f"{sample} untuk {documents[sample - 1].name}:",
        *(f"{i}. {spec.name}" for i, spec in enumerate(documents, start=1)),
        "",
        "Ketik KELUAR untuk berhenti.",
    ]
    text = _with_problem(event.problem, lines)
    rows = [_service_row(spec) for spec in documents]
    rows.append(Choice(id=reply_ids.GUIDED_LEAVE, title="Keluar", description="Berhenti mengisi"))
    return OutboundMessage(
        to=event.phone, kind="guided-step", text=text, choices=_list(text, _CHOOSE, rows)
    )


def guided_question(event: GuidedStepAsked, doc_type: DocType) -> OutboundMessage:
    """One column of the document's format, asked in plain words with an example."""
    spec = document(doc_type)
    field = _field(event.field)
    question = _question(doc_type, field, event.field)
    steps = len(spec.fields) + 1
    step = spec.fields.index(field) + 1 if field in spec.fields else len(event.answers) + 1
    lines = [
        f"Permohonan {spec.name}",
        f"Langkah {step} dari {steps}: {question.label}",
        "",
        question.ask,
    ]
    fixed = FIXED_ANSWERS.get(field) if field is not None else None
    if fixed:
        lines += [
            "Ketik salah satu:",
            *(f"{value} = {meaning}" for value, meaning in fixed.items()),
        ]
    else:
        example = _examples(spec).get(field) if field is not None else None
        if example:
            lines.append(f"Contoh: {example}")
    lines += ["", _TYPE_TO_LEAVE]
    text = _with_problem(event.problem, lines)
    choices: Choices | None
    if fixed:
        rows = [
            Choice(id=reply_ids.guided_answer(value), title=value, description=meaning)
            for value, meaning in fixed.items()
        ]
        rows += [
            Choice(id=reply_ids.GUIDED_RESTART, title="Mulai ulang", description="Dari awal"),
            Choice(id=reply_ids.GUIDED_LEAVE, title="Keluar", description="Berhenti mengisi"),
        ]
        choices = _list(text, "Pilih jawaban", rows)
    else:
        choices = _buttons(text, _RESTART_BUTTON, _LEAVE_BUTTON)
    return OutboundMessage(to=event.phone, kind="guided-step", text=text, choices=choices)


def guided_summary(event: GuidedStepAsked, doc_type: DocType) -> OutboundMessage:
    """Every answer, for the citizen to check before sending (their own data, to their own
    phone)."""
    spec = document(doc_type)
    steps = len(spec.fields) + 1
    answers = [
        f"- {_question(doc_type, field, field.value).label}: {event.answers[field.value]}"
        for field in spec.fields
        if field.value in event.answers
    ]
    lines = [
        f"Permohonan {spec.name}",
        f"Langkah {steps} dari {steps}: periksa data Anda.",
        "",
        *answers,
        "",
        "Sudah benar? Ketik KIRIM untuk mengirim permohonan, UBAH untuk mengisi ulang, atau "
        "KELUAR untuk batal.",
        "Setelah dikirim, Anda menerima nomor tiket dan daftar berkas yang perlu dikirim.",
    ]
    text = _with_problem(event.problem, lines)
    choices = _buttons(
        text, (reply_ids.GUIDED_CONFIRM, "Kirim"), (reply_ids.GUIDED_EDIT, "Ubah"), _LEAVE_BUTTON
    )
    return OutboundMessage(to=event.phone, kind="guided-step", text=text, choices=choices)


def guided_step(event: GuidedStepAsked) -> OutboundMessage:
    doc_type = _guided_doc(event)
    if doc_type is None or event.field == GUIDED_CHOOSE_DOCUMENT:
        return guided_choose_document(event)
    if event.field == GUIDED_CONFIRM:
        return guided_summary(event, doc_type)
    return guided_question(event, doc_type)


GUIDED_LEFT: Final = (
    "Baik, pengisian permohonan kami hentikan. Permohonan belum dikirim.\n"
    "Untuk memulai lagi, ketik HALO atau #MENU kapan saja."
)


# -- the catalogue ------------------------------------------------------------------------


@dataclass(frozen=True)
class _Context:
    calendar: WorkingCalendar | None
    office_hours: OfficeHours | None
    at: datetime | None


def _message(
    event_phone: str,
    kind: str,
    text: str,
    *,
    ticket: str | None = None,
    choices: Choices | None = None,
    template: TemplateCall | None = None,
    attached: Attached | None = None,
) -> OutboundMessage:
    return OutboundMessage(
        to=event_phone,
        kind=kind,
        # Only officers' free text (a reason, an answer, a place) can make a message this
        # long; cut it rather than owe a message that can never be sent.
        text=_clip(text, TEXT_MAX),
        ticket=ticket,
        choices=choices,
        template=template,
        document=attached,
    )


def _acknowledgement(event: Event, context: _Context) -> OutboundMessage | None:
    """What a citizen sent was received: a request, a correction, a complaint."""
    match event:
        case RequestReceived():
            closed = closed_notice(context.calendar, event.received_at)
            return _message(
                event.phone,
                "request-received",
                request_received(event, closed),
                ticket=event.ticket,
                template=templates.request_received(
                    _doc(event.doc_type),
                    event.ticket,
                    reason=_reason(event.applicant),
                    opening=_opening(closed),
                ),
            )
        case RequestAmended():
            closed = closed_notice(context.calendar, context.at)
            return _message(
                event.phone,
                "request-amended",
                request_amended(event, closed),
                ticket=event.ticket,
                template=templates.correction_received(
                    event.ticket, len(event.attachments), opening=_opening(closed)
                ),
            )
        case ComplaintReceived():
            closed = closed_notice(context.calendar, event.received_at)
            return _message(
                event.phone,
                "complaint-received",
                complaint_received(event, closed),
                ticket=event.ticket,
                template=templates.complaint_received(event.ticket, opening=_opening(closed)),
            )
        case _:
            return None


def _answer(event: Event) -> OutboundMessage | None:  # noqa: PLR0911 - one case per event
    """Direct answers to what the citizen just sent: no template (inside the window only)."""
    match event:
        case InvalidRequestReceived():
            text = invalid_request(event)
            if event.doc_type is not None:
                choices = _buttons(
                    text, (reply_ids.guided_start(event.doc_type), "Bantu isi"), _MENU_BUTTON
                )
            else:
                choices = _buttons(text, _MENU_BUTTON)
            return _message(event.phone, "invalid-request", text, choices=choices)
        case StatusReported():
            ticket = event.ticket if event.status is not None else None
            return _message(event.phone, "status", status_reported(event), ticket=ticket)
        case InfoRequested():
            text = info_requested(event)
            if event.doc_type is None:
                return _message(event.phone, "info", text, choices=_menu_choices(text))
            start = (reply_ids.guided_start(event.doc_type), "Ajukan sekarang")
            return _message(event.phone, "info", text, choices=_buttons(text, start))
        case MenuRequested():
            body = _menu_body(event.understood)
            return _message(
                event.phone, "menu", menu_text(event.understood), choices=_menu_choices(body)
            )
        case AttachmentRejected():
            text = (
                f"Berkas yang Anda kirim tidak dapat kami terima ({event.detail}). "
                "Silakan kirim ulang sebagai foto (JPG/PNG) atau PDF."
            )
            return _message(event.phone, "attachment-rejected", text)
        case AttachmentLinked():
            text = (
                f"Berkas untuk tiket {event.ticket} sudah kami terima. "
                "Petugas akan memeriksanya bersama permohonan Anda."
            )
            return _message(event.phone, "attachment-linked", text, ticket=event.ticket)
        case AttachmentHeld():
            text = (
                "Berkas sudah kami terima dan kami simpan. Kirim permohonan dengan format "
                "yang sesuai dalam 30 menit agar berkas ini ikut terlampir.\n"
                "Ketik #MENU untuk melihat daftar layanan."
            )
            return _message(
                event.phone, "attachment-held", text, choices=_buttons(text, _MENU_BUTTON)
            )
        case UnsupportedCommandReceived():
            text = (
                f"Perintah #{event.command} belum dapat dilayani melalui WhatsApp. "
                "Silakan hubungi kantor Disdukcapil pada jam kerja.\n"
                "Ketik #MENU untuk melihat layanan yang tersedia."
            )
            # Its ticket, if any, was only typed: nothing says it is the sender's.
            return _message(event.phone, "unsupported", text)
        case _:
            return _refusal(event)


def _refusal(event: Event) -> OutboundMessage | None:  # noqa: PLR0911 - one case per event
    """Answers to a command that could not be done (also direct answers)."""
    match event:
        case DuplicateRequestReceived():
            text = duplicate_request(event)
            ticket = event.existing_ticket
            return _message(
                event.phone,
                "duplicate-request",
                text,
                ticket=ticket,
                choices=_buttons(text, _status_button(ticket)),
            )
        case CorrectionRefused():
            text = correction_refused(event)
            if event.reason == "unknown_ticket":
                return _message(event.phone, "correction-refused", text)
            # Files are missing: the next step is to send them, not to ask for the status.
            choices = (
                _buttons(text, _status_button(event.ticket))
                if event.reason == "not_pending"
                else None
            )
            return _message(
                event.phone, "correction-refused", text, ticket=event.ticket, choices=choices
            )
        case CancellationRefused():
            text = cancellation_refused(event)
            if event.reason == "unknown_ticket":
                return _message(event.phone, "cancellation-refused", text)
            choices = _buttons(text, _status_button(event.ticket))
            return _message(
                event.phone, "cancellation-refused", text, ticket=event.ticket, choices=choices
            )
        case SurveyAnswered():
            return _message(
                event.phone, "survey-answered", survey_answered(event), ticket=event.ticket
            )
        case GuidedStepAsked():
            return guided_step(event)
        case GuidedEnded() if event.reason == "left":
            return _message(
                event.phone, "guided-left", GUIDED_LEFT, choices=_buttons(GUIDED_LEFT, _MENU_BUTTON)
            )
        case _:
            # GuidedEnded otherwise: a submission is followed by its acknowledgement; a
            # lapsed or replaced session by the answer to the message that replaced it.
            return None


def _decision(event: Event) -> OutboundMessage | None:
    """Officers' decisions and the complaint desk's answer: the office speaks first, maybe
    days after the citizen's last message, so each has its template."""
    match event:
        case ChangesRequested():
            text = changes_requested(event)
            return _message(
                event.phone,
                "changes-requested",
                text,
                ticket=event.ticket,
                choices=_buttons(text, _status_button(event.ticket)),
                template=templates.changes_requested(
                    _doc(event.doc_type), event.ticket, event.reasons
                ),
            )
        case RequestVerified():
            text = request_verified(event)
            return _message(
                event.phone,
                "request-verified",
                text,
                ticket=event.ticket,
                choices=_buttons(text, _status_button(event.ticket)),
                template=templates.request_verified(_doc(event.doc_type), event.ticket),
            )
        case RequestRejected():
            text = request_rejected(event)
            return _message(
                event.phone,
                "request-rejected",
                text,
                ticket=event.ticket,
                choices=_buttons(text, _MENU_BUTTON),
                template=templates.request_rejected(
                    _doc(event.doc_type), event.ticket, event.reason
                ),
            )
        case RequestCancelled():
            template: TemplateCall | None = None
            choices: Choices | None = None
            text = request_cancelled(event)
            if event.reason == "duplicate" and event.duplicate_of:
                template = templates.duplicate_cancelled(
                    _doc(event.doc_type), event.ticket, event.duplicate_of
                )
                choices = _buttons(text, _status_button(event.duplicate_of))
            elif event.reason == "citizen":
                template = templates.request_cancelled(_doc(event.doc_type), event.ticket)
                choices = _buttons(text, _MENU_BUTTON)
            return _message(
                event.phone,
                "request-cancelled",
                text,
                ticket=event.ticket,
                choices=choices,
                template=template,
            )
        case ComplaintAnswered():
            return _message(
                event.phone,
                "complaint-answered",
                complaint_answered(event),
                ticket=event.ticket,
                template=templates.complaint_answered(event.ticket, event.answer),
            )
        case _:
            return None


def _issuance(  # noqa: PLR0911 - one case per event
    event: Event, office_hours: OfficeHours | None
) -> OutboundMessage | None:
    """Issuance's events (on the request stream): a date, a delay, the document."""
    match event:
        case IssuanceScheduled():
            doc_type = _doc(event.doc_type)
            delivery = event.delivery
            template = (
                templates.letter_scheduled(doc_type, event.ticket, event.promised_on)
                if delivery.channel == "whatsapp"
                else templates.pickup_date(
                    doc_type,
                    event.ticket,
                    event.promised_on,
                    hours=office_hours,
                    place=delivery.place,
                    bring=delivery.bring,
                )
            )
            return _message(
                event.phone,
                "issuance-scheduled",
                issuance_scheduled(event, office_hours),
                ticket=event.ticket,
                template=template,
            )
        case IssuanceDelayed():
            return _message(
                event.phone,
                "issuance-delayed",
                issuance_delayed(event),
                ticket=event.ticket,
                template=templates.issuance_delayed(
                    _doc(event.doc_type),
                    event.ticket,
                    event.previous_date,
                    event.promised_on,
                    _DELAY_CAUSES[event.reason],
                ),
            )
        case DocumentIssued() if event.delivery.channel == "whatsapp":
            letter = event.letter
            attached = Attached(
                sha256=None if letter is None else letter.sha256,
                filename=letter_filename(event),
                content_type="application/pdf" if letter is None else letter.content_type,
            )
            return _message(
                event.phone,
                "letter-sent",
                letter_caption(event),
                ticket=event.ticket,
                attached=attached,
                template=templates.letter(
                    _doc(event.doc_type), event.ticket, event.document_number
                ),
            )
        case DocumentReady():
            return _message(
                event.phone,
                "document-ready",
                document_ready(event, office_hours),
                ticket=event.ticket,
                template=templates.document_ready(
                    _doc(event.doc_type),
                    event.ticket,
                    event.ready_on,
                    hours=office_hours,
                    place=event.delivery.place,
                    bring=event.delivery.bring,
                ),
            )
        case DocumentCollected():
            text = document_collected(event)
            return _message(
                event.phone,
                "document-collected",
                text,
                ticket=event.ticket,
                choices=_survey_choices(text),
                template=templates.document_collected(_doc(event.doc_type), event.ticket),
            )
        case DocumentIssued() | HandedToSiak() | IssuanceFailed():
            # The office's own steps. A document for the office: the citizen already has
            # the date, and hears "SIAP DIAMBIL" on the day (each message outside the
            # window is a paid template).
            return None
        case _:
            return None


def render(
    event: Event,
    *,
    calendar: WorkingCalendar | None = None,
    office_hours: OfficeHours | None = None,
    at: datetime | None = None,
) -> OutboundMessage | None:
    """The message an event calls for, or None when it calls for none.

    ``calendar``: acknowledgements of what arrived while the office was closed say when
    officers will look at it (without a calendar they say nothing of it). ``office_hours``
    are said in pickup messages (default: the calendar's; without either, "during office
    hours"). ``at`` is when the event happened (its envelope's ``occurred_at``), for the
    events that carry no time of their own (a correction, ``RequestAmended``).
    """
    context = _Context(
        calendar=calendar,
        office_hours=office_hours or (calendar.hours if calendar is not None else None),
        at=at,
    )
    return (
        _acknowledgement(event, context)
        or _answer(event)
        or _decision(event)
        or _issuance(event, context.office_hours)
    )
