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
    ComplaintReceived,
    InfoRequested,
    InvalidRequestReceived,
    MenuRequested,
    RequestReceived,
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


def render(event: Event) -> Reply | None:  # noqa: PLR0911 - one case per event
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
        case _:
            return None
