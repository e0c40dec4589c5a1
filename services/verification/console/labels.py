"""The words officers read: Indonesian names of states, checks, roles and events, how
durations and moments are written, and the notes of a request's history."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date, datetime, timedelta, tzinfo
from typing import Final

from services.verification.domain.officers import Role
from services.verification.domain.request import State
from services.verification.handlers import HistoryEntry
from shared.calendar import format_tanggal

STATE_LABELS: Final[Mapping[str, str]] = {
    State.NEW: "Baru",
    State.RECEIVED: "Diterima, menunggu pemeriksaan otomatis",
    State.IN_QUEUE: "Menunggu petugas",
    State.CLAIMED: "Sedang diperiksa",
    State.CHANGES_REQUESTED: "Menunggu perbaikan dari warga",
    State.AMENDED: "Sudah diperbaiki warga, diperiksa ulang",
    State.VERIFIED: "Disetujui",
    State.REJECTED: "Ditolak",
    State.CANCELLED: "Dibatalkan",
    State.SCHEDULED: "Dijadwalkan, menunggu SIAK",
    State.WITH_SIAK: "Diproses di SIAK",
    State.ISSUANCE_FAILED: "Ditolak SIAK, perlu diperiksa",
    State.ISSUED: "Terbit, sedang dicetak",
    State.READY: "Siap diambil",
    State.COMPLETED: "Selesai",
}
SLA_LABELS: Final[Mapping[str, str]] = {
    "ok": "Aman",
    "at_risk": "Hampir terlambat",
    "late": "Terlambat",
}
CHECK_LABELS: Final[Mapping[str, str]] = {
    "nik_region": "Wilayah NIK",
    "kk_region": "Wilayah KK",
    "age": "Umur",
    "papers": "Berkas",
    "duplicate": "Permohonan ganda",
}
ROLE_LABELS: Final[Mapping[str, str]] = {
    Role.OPERATOR: "Operator",
    Role.SUPERVISOR: "Supervisor",
    Role.ADMIN: "Admin",
}
EVENT_LABELS: Final[Mapping[str, str]] = {
    "RequestReceived": "Permohonan masuk",
    "AttachmentAdded": "Berkas ditambahkan",
    "RequestChecked": "Pemeriksaan otomatis",
    "RequestClaimed": "Diambil petugas",
    "ClaimReleased": "Dilepas",
    "ChangesRequested": "Diminta perbaikan",
    "RequestAmended": "Perbaikan dari warga",
    "RequestVerified": "Disetujui",
    "RequestRejected": "Ditolak",
    "RequestCancelled": "Dibatalkan",
    "IssuanceScheduled": "Dijadwalkan",
    "HandedToSiak": "Dikirim ke SIAK",
    "IssuanceDelayed": "Jadwal diundur",
    "IssuanceFailed": "Ditolak SIAK",
    "DocumentIssued": "Dokumen terbit",
    "DocumentReady": "Siap diambil",
    "DocumentCollected": "Sudah diambil",
    "SurveyAnswered": "Survei kepuasan",
    "NotificationSent": "Pesan WhatsApp dikirim",
    "NotificationFailed": "Pesan WhatsApp GAGAL",
    "NotificationStatusChanged": "Status pesan WhatsApp",
}
DELIVERY_LABELS: Final[Mapping[str, str]] = {
    "sent": "terkirim ke WhatsApp",
    "delivered": "sampai di HP warga",
    "read": "dibaca warga",
    "failed": "GAGAL sampai",
}
CITIZEN_EVENTS: Final = frozenset({"RequestReceived", "AttachmentAdded", "RequestAmended"})
SYSTEM_ACTORS: Final = (
    ("system:intake", "Sistem (WhatsApp)"),
    ("system:verification", "Sistem (pemeriksaan otomatis)"),
    ("system:", "Sistem"),
)
CHECK_OUTCOMES: Final[Mapping[str, str]] = {
    "passed": "lolos semua pemeriksaan",
    "flagged": "ada catatan untuk petugas",
    "changes_needed": "warga diminta melengkapi",
    "duplicate": "permohonan ganda",
}
# The applicant's typed fields, in the order officers compare them with the papers.
FIELD_LABELS: Final[Mapping[str, str]] = {
    "nik": "NIK",
    "no_kk": "No. KK",
    "nama": "Nama",
    "nama_anak": "Nama anak",
    "tanggal_lahir": "Tanggal lahir",
    "tanggal_meninggal": "Tanggal meninggal",
    "desa": "Desa/Kelurahan",
    "kecamatan_name": "Kecamatan",
    "reason": "Alasan",
    "alamat_pindah": "Alamat pindah",
    "no_skpwni": "No. SKPWNI",
    "keperluan": "Keperluan",
}
KTP_REASONS: Final[Mapping[str, str]] = {
    "PEMULA": "Pemula (KTP-el pertama)",
    "HILANG": "Hilang",
    "RUSAK": "Rusak",
}
MONTHS: Final = ("Jan", "Feb", "Mar", "Apr", "Mei", "Jun", "Jul", "Agu", "Sep", "Okt", "Nov", "Des")


ERASED: Final = "data telah dihapus"
"""Shown where a citizen's personal data was, once erased (``adminduk citizens erase``)."""


def duration(value: timedelta) -> str:
    """Working time as officers say it: ``45 menit``, ``3 jam 20 menit``."""
    minutes = max(0, int(value.total_seconds() // 60))
    hours, minutes = divmod(minutes, 60)
    if hours == 0:
        return f"{minutes} menit"
    return f"{hours} jam" if minutes == 0 else f"{hours} jam {minutes} menit"


def moment(zone: tzinfo) -> Callable[[datetime | None], str]:
    def when(value: datetime | None) -> str:
        if value is None:
            return "-"
        local = value.astimezone(zone)
        name = local.tzname() or ""
        month = MONTHS[local.month - 1]
        return f"{local.day} {month} {local.year}, {local:%H.%M} {name}".rstrip()

    return when


def history_actor(entry: HistoryEntry, names: Mapping[str, str]) -> str:
    if entry.type in CITIZEN_EVENTS:
        return "Warga (WhatsApp)"  # recorded by a service, but the citizen's doing
    actor = entry.actor or "-"
    if actor.startswith("officer:"):
        officer_id = actor.removeprefix("officer:")
        return names.get(officer_id, officer_id)
    return next((label for prefix, label in SYSTEM_ACTORS if actor.startswith(prefix)), actor)


def history_note(entry: HistoryEntry) -> str:
    note = event_note(entry)
    if entry.erased:
        return f"{note} ({ERASED})" if note else ERASED
    return note


def event_note(entry: HistoryEntry) -> str:  # noqa: PLR0911, PLR0912 - one case per event
    data = entry.data
    match entry.type:
        case "RequestReceived":
            files = len(data.get("attachments") or ())
            return f"lewat WhatsApp, {files} berkas"
        case "AttachmentAdded":
            attachment = data.get("attachment") or {}
            return str(attachment.get("filename") or attachment.get("content_type") or "")
        case "RequestChecked":
            outcome = str(data.get("outcome", ""))
            return f"putaran {data.get('round', '?')}: {CHECK_OUTCOMES.get(outcome, outcome)}"
        case "RequestClaimed":
            name = str(data.get("officer_name", ""))
            assigned = data.get("by") not in {None, data.get("officer_id")}
            return f"oleh {name} (ditugaskan supervisor)" if assigned else f"oleh {name}"
        case "ClaimReleased":
            if data.get("reason") == "expired":
                return "otomatis, karena lama tidak ada tindakan"
            return "kembali ke antrean"
        case "ChangesRequested":
            reasons = "; ".join(str(reason) for reason in data.get("reasons") or ())
            return reasons if data.get("officer_id") else f"otomatis: {reasons}"
        case "RequestAmended":
            return f"{len(data.get('attachments') or ())} berkas baru"
        case "RequestRejected":
            return str(data.get("reason", ""))
        case "RequestCancelled":
            if data.get("reason") == "duplicate":
                return f"sama dengan tiket {data.get('duplicate_of') or '?'}"
            return "oleh warga"
        case "IssuanceScheduled" | "IssuanceDelayed":
            return f"janji: {tanggal(data.get('promised_on'))}"
        case "DocumentIssued":
            return f"nomor {data.get('document_number', '?')}, siap {tanggal(data.get('ready_on'))}"
        case "IssuanceFailed":
            return str(data.get("message", ""))
        case "SurveyAnswered":
            return f"nilai {data.get('score', '?')} dari 4"
        case "NotificationSent":
            template = data.get("template")
            how = f"template {template}" if template else "pesan biasa"
            return f"{data.get('kind', '?')} ({how})"
        case "NotificationFailed":
            return f"{data.get('kind', '?')}: {data.get('reason', '?')}"
        case "NotificationStatusChanged":
            status = str(data.get("status", ""))
            label = DELIVERY_LABELS.get(status, status)
            code = data.get("error_code")
            return f"{label} (kode {code})" if code else label
        case _:
            return ""


def tanggal(value: object) -> str:
    try:
        return format_tanggal(date.fromisoformat(str(value)))
    except ValueError:
        return "?"
