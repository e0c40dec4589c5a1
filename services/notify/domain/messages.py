"""What the office says to citizens, in plain Bahasa Indonesia: one function per event.

Each message names the ticket where there is one and says what to do next, in short
sentences. Rendering is pure: typed event in, text out.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.contracts import (
    AttachmentHeld,
    AttachmentLinked,
    AttachmentRejected,
    ChangesRequested,
    ComplaintAnswered,
    ComplaintReceived,
    CorrectionRefused,
    DuplicateRequestReceived,
    InfoRequested,
    InvalidRequestReceived,
    MenuRequested,
    RequestAmended,
    RequestCancelled,
    RequestReceived,
    RequestRejected,
    RequestVerified,
    StatusReported,
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


@dataclass(frozen=True)
class Reply:
    to: str
    body: str
    kind: str


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


def status_reported(event: StatusReported) -> str:
    if event.status is None:
        return (
            f"Tiket {event.ticket} tidak ditemukan untuk nomor WhatsApp ini. "
            "Periksa kembali nomor tiket Anda."
        )
    explanation = STATUS_EXPLANATIONS.get(event.status, "")
    return f"Status tiket {event.ticket}: {event.status}\n{explanation}".rstrip()


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
            return (
                f"Tiket {event.ticket} tidak ditemukan untuk nomor WhatsApp ini. "
                "Periksa kembali nomor tiket Anda."
            )
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


def render(event: Event) -> Reply | None:  # noqa: PLR0911, PLR0912 - one case per event
    """The reply an event calls for, or None when it calls for none."""
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
        case _:
            return None
