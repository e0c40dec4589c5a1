"""What the office says to citizens, in plain Bahasa Indonesia: one function per event.

Each message names the ticket where there is one and says what to do next, in short
sentences. Rendering is pure: typed event in, text out.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Final

from shared.calendar import OfficeHours, format_jam, format_tanggal
from shared.contracts import (
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
from shared.documents import CATALOGUE, DocType, KtpReason, document
from shared.eventstore.envelope import Event

STATUS_EXPLANATIONS = {
    "DITERIMA": "Permohonan sudah kami terima dan menunggu pemeriksaan petugas.",
    "PERLU PERBAIKAN": "Ada yang perlu Anda perbaiki. Lihat pesan petugas sebelumnya.",
    "DIVERIFIKASI": "Berkas sudah diperiksa dan diterima petugas.",
    "DITOLAK": "Permohonan tidak dapat kami proses. Lihat alasan dari petugas.",
    "DIPROSES": "Dokumen sedang dibuat.",
    "SIAP DIAMBIL": "Dokumen sudah siap diambil.",
    "SELESAI": "Dokumen sudah diambil. Terima kasih.",
    "DIBATALKAN": "Permohonan sudah dibatalkan.",
}


CAPTION_MAX: Final = 1024
"""The Cloud API's limit on a document message's caption."""

SURVEY_SCALE: Final = {1: "tidak puas", 2: "kurang puas", 3: "puas", 4: "sangat puas"}
"""The one-question survey's answers: the scale of the public satisfaction index (IKM)."""

SURVEY_QUESTION: Final = "\n".join(
    [
        "Bagaimana pelayanan kami? Balas pesan ini dengan satu angka:",
        *(f"{score} = {words}" for score, words in SURVEY_SCALE.items()),
    ]
)


@dataclass(frozen=True)
class ReplyDocument:
    """A file sent as a WhatsApp document message; the reply's body is then its caption.

    ``sha256`` names the bytes in the media store; it is None when the event should have
    carried a file but did not, a reply that cannot be sent (notify records it as failed).
    """

    sha256: str | None
    filename: str
    content_type: str = "application/pdf"


@dataclass(frozen=True)
class Reply:
    to: str
    body: str
    kind: str
    document: ReplyDocument | None = None


def _format_block(doc_type: DocType) -> str:
    spec = document(doc_type)
    return f"Format {spec.keyword}:\n{spec.format}\nContoh:\n{spec.example}"


def menu_text(understood: bool = True) -> str:
    lines = []
    if not understood:
        lines += ["Maaf, pesan Anda belum kami pahami.", ""]
    lines += ["Layanan Disdukcapil melalui WhatsApp:"]
    for index, spec in enumerate(CATALOGUE.values(), start=1):
        lines.append(f"{index}. {spec.name}: ketik #INFO#{spec.keyword}")
    lines += [
        "",
        "Cek status permohonan: #STATUS#NOMOR_TIKET",
        "Pengaduan: #ADUAN#isi pengaduan Anda",
    ]
    return "\n".join(lines)


def request_received(event: RequestReceived) -> str:
    spec = document(DocType(event.doc_type))
    reason = event.applicant.get("reason")
    papers = spec.requirements_for(KtpReason(reason) if reason in set(KtpReason) else None)
    requirements = "\n".join(f"- {item}" for item in papers)
    files = len(event.attachments)
    received_files = (
        f"Berkas yang sudah kami terima: {files}."
        if files
        else "Belum ada berkas yang kami terima."
    )
    return "\n".join(
        [
            f"Permohonan {spec.name} sudah kami terima.",
            f"Nomor tiket: {event.ticket}",
            "",
            f"Persyaratan yang perlu dilampirkan:\n{requirements}",
            received_files,
            "Kirim foto atau PDF persyaratan yang belum ada di percakapan ini.",
            "",
            f"Perkiraan selesai: {spec.turnaround_text} setelah berkas lengkap diperiksa.",
            f"Cek status: ketik #STATUS#{event.ticket}",
        ]
    )


def invalid_request(event: InvalidRequestReceived) -> str:
    lines = ["Maaf, permohonan Anda belum dapat kami proses:"]
    lines += [f"- {problem.field}: {problem.message}" for problem in event.problems]
    if event.doc_type is not None:
        lines += ["", _format_block(DocType(event.doc_type))]
    else:
        lines += ["", "Ketik #MENU untuk melihat daftar layanan dan formatnya."]
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
        ]
    )


def _doc_name(doc_type: str) -> str:
    return document(DocType(doc_type)).name


def changes_requested(event: ChangesRequested) -> str:
    reasons = "\n".join(f"- {reason}" for reason in event.reasons)
    return "\n".join(
        [
            f"Permohonan {_doc_name(event.doc_type)} dengan nomor tiket {event.ticket}: "
            "PERLU PERBAIKAN.",
            "",
            reasons,
            "",
            "Kirim foto atau PDF perbaikannya di percakapan ini dengan keterangan:",
            f"#LENGKAPI#{event.ticket}",
            "Berkas yang Anda kirim tanpa keterangan juga kami terima sebagai perbaikan.",
        ]
    )


def request_verified(event: RequestVerified) -> str:
    return "\n".join(
        [
            f"Permohonan {_doc_name(event.doc_type)} dengan nomor tiket {event.ticket} "
            "sudah DIVERIFIKASI.",
            "Berkas Anda lengkap dan sudah diterima petugas. Dokumen Anda sekarang dibuat;",
            "tanggal pengambilan akan kami kirim melalui WhatsApp ini.",
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
            "Ketik #ADUAN#isi pengaduan bila Anda keberatan.",
        ]
    )


def request_amended(event: RequestAmended) -> str:
    files = len(event.attachments)
    return (
        f"Perbaikan untuk tiket {event.ticket} sudah kami terima ({files} berkas). "
        "Petugas akan memeriksanya kembali."
    )


def request_cancelled(event: RequestCancelled) -> str:
    if event.reason == "duplicate" and event.duplicate_of:
        return "\n".join(
            [
                f"Permohonan {_doc_name(event.doc_type)} ini sama dengan permohonan Anda "
                "yang masih diproses.",
                f"Nomor tiket: {event.duplicate_of}",
                f"Tiket {event.ticket} tidak kami lanjutkan. Gunakan tiket {event.duplicate_of} "
                "untuk cek status dan mengirim berkas.",
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


def complaint_answered(event: ComplaintAnswered) -> str:
    return "\n".join(
        [
            f"Jawaban petugas atas pengaduan Anda (tiket {event.ticket}):",
            "",
            event.answer,
            "",
            "Pengaduan ini kami tutup. Kirim #ADUAN# lagi bila masih ada yang perlu dibantu.",
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


def letter_caption(event: DocumentIssued) -> str:
    """The caption of the signed letter sent in the chat (at most :data:`CAPTION_MAX`)."""
    caption = "\n".join(
        [
            f"Dokumen {_doc_name(event.doc_type)} Anda sudah terbit. Suratnya kami lampirkan "
            "(PDF).",
            f"Nomor tiket: {event.ticket}",
            f"Nomor dokumen: {event.document_number}",
            "",
            "Surat ini ditandatangani secara elektronik (TTE). Keasliannya dapat diperiksa "
            "di panel tanda tangan aplikasi pembaca PDF.",
            "Simpan berkas ini. Anda tidak perlu datang ke kantor. Status: SELESAI.",
            "",
            SURVEY_QUESTION,
        ]
    )
    # A document number is short; the clip only guards the API's limit against a bad one.
    return _clip(caption, CAPTION_MAX)


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


def survey_answered(event: SurveyAnswered) -> str:
    return (
        f"Terima kasih atas penilaian Anda ({event.score} = {SURVEY_SCALE[event.score]}).\n"
        f"Nomor tiket: {event.ticket}"
    )


def _issuance_reply(  # noqa: PLR0911 - one case per event
    event: Event, office_hours: OfficeHours | None
) -> Reply | None:
    """The replies to issuance's events (on the request stream)."""
    match event:
        case IssuanceScheduled():
            body = issuance_scheduled(event, office_hours)
            return Reply(event.phone, body, "issuance-scheduled")
        case IssuanceDelayed():
            return Reply(event.phone, issuance_delayed(event), "issuance-delayed")
        case DocumentIssued() if event.delivery.channel == "whatsapp":
            letter = event.letter
            attached = ReplyDocument(
                sha256=None if letter is None else letter.sha256,
                filename=letter_filename(event),
                content_type="application/pdf" if letter is None else letter.content_type,
            )
            return Reply(event.phone, letter_caption(event), "letter-sent", attached)
        case DocumentIssued():
            # The citizen already has the date; the next word is "SIAP DIAMBIL" on the day
            # (every message outside the 24-hour window is a paid template).
            return None
        case DocumentReady():
            return Reply(event.phone, document_ready(event, office_hours), "document-ready")
        case DocumentCollected():
            return Reply(event.phone, document_collected(event), "document-collected")
        case SurveyAnswered():
            return Reply(event.phone, survey_answered(event), "survey-answered")
        case HandedToSiak() | IssuanceFailed():
            return None  # the office's own steps: the citizen hears of their outcome
        case _:
            return None


def render(  # noqa: PLR0911, PLR0912 - one case per event
    event: Event, *, office_hours: OfficeHours | None = None
) -> Reply | None:
    """The reply an event calls for, or None when it calls for none. ``office_hours`` is
    said in pickup messages; without it they say "during office hours"."""
    match event:
        case RequestReceived():
            return Reply(event.phone, request_received(event), "request-received")
        case InvalidRequestReceived():
            return Reply(event.phone, invalid_request(event), "invalid-request")
        case StatusReported():
            return Reply(event.phone, status_reported(event), "status")
        case InfoRequested():
            return Reply(event.phone, info_requested(event), "info")
        case MenuRequested():
            return Reply(event.phone, menu_text(event.understood), "menu")
        case AttachmentRejected():
            body = (
                f"Berkas yang Anda kirim tidak dapat kami terima ({event.detail}). "
                "Silakan kirim ulang sebagai foto (JPG/PNG) atau PDF."
            )
            return Reply(event.phone, body, "attachment-rejected")
        case AttachmentLinked():
            return Reply(
                event.phone,
                f"Berkas untuk tiket {event.ticket} sudah kami terima.",
                "attachment-linked",
            )
        case AttachmentHeld():
            body = (
                "Berkas sudah kami terima dan kami simpan. Kirim permohonan dengan format "
                "yang sesuai dalam 30 menit agar berkas ini ikut terlampir.\n"
                "Ketik #MENU untuk melihat daftar layanan."
            )
            return Reply(event.phone, body, "attachment-held")
        case UnsupportedCommandReceived():
            body = (
                f"Perintah #{event.command} belum dapat dilayani melalui WhatsApp. "
                "Silakan hubungi kantor Disdukcapil pada jam kerja."
            )
            return Reply(event.phone, body, "unsupported")
        case ComplaintReceived():
            body = (
                "Pengaduan Anda sudah kami terima.\n"
                f"Nomor tiket: {event.ticket}\n"
                "Petugas pengaduan akan membalas melalui WhatsApp pada jam kerja."
            )
            return Reply(event.phone, body, "complaint-received")
        case ChangesRequested():
            return Reply(event.phone, changes_requested(event), "changes-requested")
        case RequestVerified():
            return Reply(event.phone, request_verified(event), "request-verified")
        case RequestRejected():
            return Reply(event.phone, request_rejected(event), "request-rejected")
        case RequestAmended():
            return Reply(event.phone, request_amended(event), "request-amended")
        case RequestCancelled():
            return Reply(event.phone, request_cancelled(event), "request-cancelled")
        case DuplicateRequestReceived():
            return Reply(event.phone, duplicate_request(event), "duplicate-request")
        case CorrectionRefused():
            return Reply(event.phone, correction_refused(event), "correction-refused")
        case ComplaintAnswered():
            return Reply(event.phone, complaint_answered(event), "complaint-answered")
        case CancellationRefused():
            return Reply(event.phone, cancellation_refused(event), "cancellation-refused")
        case _:
            return _issuance_reply(event, office_hours)
