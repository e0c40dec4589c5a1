"""The officer console: server-rendered pages over the same desk as the API.

Officers are not technical, so every page is plain HTML (no script at all) in Bahasa
Indonesia, and every error the desk raises is shown on the page in words, with the HTTP
status the API would give, never as JSON.

Sessions. An officer signs in with their access token (the API's bearer token). The
session cookie carries that token *sealed*: encrypted with a key derived from
``ADMINDUK_SECRET_KEY`` and signed (itsdangerous, expiring after 12 hours), so the cookie is
opaque, cannot be forged, and needs no server-side store (any replica can read it). On every
request the token is unsealed and checked again by the :class:`Authenticator`, so a
disabled officer is locked out at their next click. The cookie is ``HttpOnly``,
``SameSite=Lax``, limited to ``/console`` and ``Secure`` in production.

CSRF. Each session, signed in or not, holds a random CSRF token; every form carries it in a
hidden field and every POST compares it in constant time before anything else happens. A
POST without it or with another one is answered 403 and changes nothing.
"""

from __future__ import annotations

import hmac
import re
import secrets
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Annotated, Any, Final
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from itsdangerous import BadData, URLSafeTimedSerializer
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from starlette.datastructures import FormData

from services.verification.adapters.api import BOOTSTRAP_OFFICER, Authenticator, Unauthorized
from services.verification.adapters.postgres import hash_token
from services.verification.dashboard import Dashboard, Scope, page_view
from services.verification.domain.complaint import MAX_ANSWER_LENGTH, ComplaintClosedError
from services.verification.domain.officers import NotAllowedError, OfficerAccount, Role
from services.verification.domain.reasons import CANNED_REASONS
from services.verification.domain.request import (
    DECIDABLE,
    FINAL_STATES,
    MAX_REASON_LENGTH,
    MAX_REASONS,
    OPEN_STATES,
    ClaimedByAnotherError,
    InvalidDecisionError,
    InvalidTransitionError,
    State,
)
from services.verification.handlers import (
    ConflictError,
    Desk,
    HistoryEntry,
    RequestDetail,
    UnknownTicketError,
)
from shared.calendar import format_tanggal
from shared.config import Environment as Deployment
from shared.config import Settings
from shared.documents import DocType, document

HERE: Final = Path(__file__).resolve().parent.parent
TEMPLATES: Final = HERE / "templates"
STATIC: Final = HERE / "static"

SESSION_COOKIE: Final = "adminduk_console"
FLASH_COOKIE: Final = "adminduk_console_flash"
COOKIE_PATH: Final = "/console"
SESSION_LIFETIME: Final = timedelta(hours=12)
FLASH_LIFETIME: Final = timedelta(minutes=2)

TICKET: Final = re.compile(r"[A-Z0-9-]{6,24}")
SHA256: Final = re.compile(r"[0-9a-f]{64}")
OFFICER_ID: Final = re.compile(r"[A-Za-z0-9_-]{1,64}")
# Where a login may send the officer afterwards: console paths only, never another site.
SAFE_NEXT: Final = re.compile(r"/console(?:/[A-Za-z0-9_\-/]*)?(?:\?[A-Za-z0-9_\-=&%.+]*)?")
MAX_NAME_LENGTH: Final = 100
MAX_FORM_FIELDS: Final = 100

PAGE_HEADERS: Final = {
    # No script anywhere; attachments are framed from this origin only.
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self'; frame-src 'self'; "
        "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    # Pages show citizens' personal data on shared office laptops: keep them out of caches.
    "Cache-Control": "no-store",
}
ERROR_HEADINGS: Final[Mapping[int, str]] = {
    403: "Tidak diizinkan",
    404: "Tidak ditemukan",
    409: "Tidak bisa dilakukan sekarang",
    422: "Isian belum benar",
}
INLINE_TYPES: Final = frozenset({"image/jpeg", "image/png", "application/pdf"})

# -- words officers read ------------------------------------------------------------------

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


def duration(value: timedelta) -> str:
    """Working time as officers say it: ``45 menit``, ``3 jam 20 menit``."""
    minutes = max(0, int(value.total_seconds() // 60))
    hours, minutes = divmod(minutes, 60)
    if hours == 0:
        return f"{minutes} menit"
    return f"{hours} jam" if minutes == 0 else f"{hours} jam {minutes} menit"


def _moment(zone: tzinfo) -> Callable[[datetime | None], str]:
    def when(value: datetime | None) -> str:
        if value is None:
            return "-"
        local = value.astimezone(zone)
        name = local.tzname() or ""
        month = MONTHS[local.month - 1]
        return f"{local.day} {month} {local.year}, {local:%H.%M} {name}".rstrip()

    return when


# -- sessions -----------------------------------------------------------------------------


def _derive(key: bytes, purpose: str) -> bytes:
    """One key per purpose, so the session and the flash signatures are independent."""
    return hmac.digest(key, f"adminduk console {purpose}".encode(), "sha256")


@dataclass(frozen=True)
class Session:
    """What the (signed, not secret) session cookie holds: the CSRF token and, once signed
    in, the officer's id with the fingerprint (SHA-256) of the token they logged in with.
    The token itself never goes into the cookie; the fingerprint is checked against the
    officer's account on every request, so a disabled account or a replaced token ends
    the session at once."""

    csrf: str
    officer_id: str | None = None
    fingerprint: str | None = None

    @classmethod
    def anonymous(cls) -> Session:
        return cls(csrf=secrets.token_urlsafe(32))

    @property
    def signed_in(self) -> bool:
        return self.officer_id is not None and self.fingerprint is not None


@dataclass(frozen=True)
class Flash:
    """A one-time message shown on the page after a redirect (POST-redirect-GET)."""

    kind: str
    text: str
    secret: str | None = None
    """The token of a new officer: shown once on the page that created it, never put in a
    cookie (flashes with a secret are rendered directly, not redirected)."""


class Sessions:
    def __init__(self, key: bytes, *, secure: bool) -> None:
        self._sessions = URLSafeTimedSerializer(
            _derive(key, "session signing"), salt="adminduk.console.session"
        )
        self._flashes = URLSafeTimedSerializer(
            _derive(key, "flash signing"), salt="adminduk.console.flash"
        )
        self.secure = secure

    def read(self, request: Request) -> Session | None:
        cookie = request.cookies.get(SESSION_COOKIE)
        if not cookie:
            return None
        try:
            data = self._sessions.loads(cookie, max_age=int(SESSION_LIFETIME.total_seconds()))
        except BadData:
            return None
        if not isinstance(data, dict) or not isinstance(data.get("c"), str):
            return None
        officer_id, fingerprint = data.get("o"), data.get("f")
        if not isinstance(officer_id, str) or not isinstance(fingerprint, str):
            officer_id = fingerprint = None
        return Session(csrf=data["c"], officer_id=officer_id, fingerprint=fingerprint)

    def write(self, response: Response, session: Session) -> None:
        data: dict[str, str] = {"c": session.csrf}
        if session.officer_id is not None and session.fingerprint is not None:
            data |= {"o": session.officer_id, "f": session.fingerprint}
        self._set(response, SESSION_COOKIE, self._sessions.dumps(data), SESSION_LIFETIME)

    def clear(self, response: Response) -> None:
        response.delete_cookie(
            SESSION_COOKIE, path=COOKIE_PATH, secure=self.secure, httponly=True, samesite="lax"
        )

    def read_flash(self, request: Request) -> Flash | None:
        cookie = request.cookies.get(FLASH_COOKIE)
        if not cookie:
            return None
        try:
            data = self._flashes.loads(cookie, max_age=int(FLASH_LIFETIME.total_seconds()))
        except BadData:
            return None
        if not isinstance(data, dict):
            return None
        kind, text = data.get("k"), data.get("m")
        if not isinstance(kind, str) or not isinstance(text, str):
            return None
        return Flash(kind=kind, text=text)

    def write_flash(self, response: Response, flash: Flash) -> None:
        if flash.secret is not None:
            raise ValueError("a secret is shown on the page that made it, never in a cookie")
        data = {"k": flash.kind, "m": flash.text}
        self._set(response, FLASH_COOKIE, self._flashes.dumps(data), FLASH_LIFETIME)

    def clear_flash(self, response: Response) -> None:
        response.delete_cookie(
            FLASH_COOKIE, path=COOKIE_PATH, secure=self.secure, httponly=True, samesite="lax"
        )

    def _set(self, response: Response, name: str, value: str, lifetime: timedelta) -> None:
        response.set_cookie(
            name,
            value,
            max_age=int(lifetime.total_seconds()),
            path=COOKIE_PATH,
            secure=self.secure,
            httponly=True,
            samesite="lax",
        )


# -- errors as pages ----------------------------------------------------------------------


class LoginRequiredError(Exception):
    """No session, an expired one, or a token that no longer works."""

    def __init__(self, *, next_path: str | None, refused: bool = False) -> None:
        super().__init__("login required")
        self.next_path = next_path
        self.refused = refused


class CsrfError(Exception):
    """A form without this session's CSRF token."""


class PageError(Exception):
    """A request the console refuses before asking the desk (a malformed ticket, ...)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class FormRefusedError(InvalidDecisionError):
    """A form the console refuses itself, with the words to show (answered 422)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


DESK_ERRORS: Final = (
    NotAllowedError,
    UnknownTicketError,
    InvalidTransitionError,
    ConflictError,
    ComplaintClosedError,
    InvalidDecisionError,
)


def explain(error: Exception) -> tuple[int, str]:  # noqa: PLR0911 - one case per error
    """The HTTP status (as the API maps it) and the words an officer reads."""
    match error:
        case PageError():
            return error.status, error.message
        case FormRefusedError():
            return 422, error.message
        case CsrfError():
            return 403, (
                "Formulir ini sudah kedaluwarsa atau tidak sah, jadi tidak ada yang diubah. "
                "Muat ulang halaman, lalu ulangi."
            )
        case NotAllowedError():
            return 403, (
                "Anda tidak berwenang untuk halaman atau tindakan ini. Permohonan hanya bisa "
                "dibuka oleh petugas kecamatannya, dan halaman supervisor hanya untuk "
                "supervisor dan admin."
            )
        case UnknownTicketError():
            return 404, "Tiket tidak ditemukan. Periksa lagi nomor tiketnya."
        case ClaimedByAnotherError():
            holder = error.holder or "petugas lain"
            return 409, (
                f"Permohonan ini sedang diperiksa oleh {holder}. Hanya petugas itu yang bisa "
                "memutuskannya, atau supervisor yang mengalihkannya."
            )
        case InvalidTransitionError():
            state = STATE_LABELS.get(error.state, error.state.value)
            return 409, (
                f"Tindakan ini tidak bisa dilakukan pada permohonan dengan status "
                f"\u201c{state}\u201d. Halaman ini menunjukkan keadaannya sekarang."
            )
        case ConflictError():
            return 409, (
                "Permohonan ini baru saja diubah oleh petugas lain. Periksa keadaannya di "
                "bawah, lalu ulangi bila masih perlu."
            )
        case ComplaintClosedError():
            return 409, "Pengaduan ini sudah dijawab; jawabannya ada di bawah."
        case InvalidDecisionError():
            return 422, "Isian belum lengkap atau terlalu panjang. Periksa lagi, lalu kirim ulang."
        case _:
            raise error


def _route_class(
    on_error: Callable[[Request, Exception], Coroutine[Any, Any, Response]],
) -> type[APIRoute]:
    """Routes that turn the console's and the desk's errors into pages, not JSON."""

    class ConsoleRoute(APIRoute):
        def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            handler = super().get_route_handler()

            async def guarded(request: Request) -> Response:
                try:
                    return await handler(request)
                except (LoginRequiredError, CsrfError, PageError, *DESK_ERRORS) as error:
                    return await on_error(request, error)

            return guarded

    return ConsoleRoute


# -- helpers ------------------------------------------------------------------------------


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def _texts(form: FormData, name: str) -> list[str]:
    return [value.strip() for value in form.getlist(name) if isinstance(value, str)]


def _ticket(value: str) -> str:
    ticket = value.strip().upper()
    if not TICKET.fullmatch(ticket):
        raise PageError(404, "Nomor tiket tidak dikenal. Periksa lagi nomor tiketnya.")
    return ticket


def _request_url(ticket: str) -> str:
    return f"/console/requests/{quote(ticket, safe='')}"


def _safe_next(value: str | None) -> str:
    if value and SAFE_NEXT.fullmatch(value) and ".." not in value and "//" not in value:
        return value
    return "/console"


def _redirect(location: str) -> RedirectResponse:
    return RedirectResponse(location, status_code=303, headers={"Cache-Control": "no-store"})


def _history_actor(entry: HistoryEntry, names: Mapping[str, str]) -> str:
    if entry.type in CITIZEN_EVENTS:
        return "Warga (WhatsApp)"  # recorded by a service, but the citizen's doing
    actor = entry.actor or "-"
    if actor.startswith("officer:"):
        officer_id = actor.removeprefix("officer:")
        return names.get(officer_id, officer_id)
    return next((label for prefix, label in SYSTEM_ACTORS if actor.startswith(prefix)), actor)


def _history_note(entry: HistoryEntry) -> str:
    note = _event_note(entry)
    if entry.erased:
        return f"{note} ({ERASED})" if note else ERASED
    return note


def _event_note(entry: HistoryEntry) -> str:  # noqa: PLR0911, PLR0912 - one case per event
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
            return f"janji: {_tanggal(data.get('promised_on'))}"
        case "DocumentIssued":
            return (
                f"nomor {data.get('document_number', '?')}, siap {_tanggal(data.get('ready_on'))}"
            )
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


def _tanggal(value: object) -> str:
    try:
        return format_tanggal(date.fromisoformat(str(value)))
    except ValueError:
        return "?"


def _officer_names(officer: OfficerAccount, history: Sequence[HistoryEntry]) -> dict[str, str]:
    names = {BOOTSTRAP_OFFICER.id: BOOTSTRAP_OFFICER.name, officer.id: officer.name}
    for entry in history:
        if entry.type == "RequestClaimed":
            names[str(entry.data.get("officer_id"))] = str(entry.data.get("officer_name"))
    return names


ERASED: Final = "data telah dihapus"
"""Shown where a citizen's personal data was, once erased (``adminduk citizens erase``)."""


def _fields(detail: RequestDetail) -> list[tuple[str, str, str]]:
    """(key, label, value) of the applicant's typed fields that this document has."""
    if detail.personal_data_erased:
        return [("erased", "Data pemohon", ERASED)]
    applicant = detail.request.applicant
    doc_type = detail.request.doc_type
    labels = dict(FIELD_LABELS)
    if doc_type == DocType.KK:
        labels["nama"] = "Nama kepala keluarga"
    elif doc_type == DocType.AKTA_KEMATIAN:
        labels["nik"], labels["nama"] = "NIK almarhum", "Nama almarhum"
    rows = []
    for key, label in labels.items():
        value = applicant.get(key)
        if value is None or value == "":
            continue
        if key == "kecamatan_name":
            value = f"{value} ({applicant.get('kecamatan_code') or '-'})"
        elif key == "reason":
            value = KTP_REASONS.get(str(value), str(value))
        rows.append((key, label, str(value)))
    shown = set(labels) | {"kecamatan_code"}
    rows += [
        (key, key.replace("_", " ").capitalize(), str(value))
        for key, value in applicant.items()
        if key not in shown and value not in {None, ""}
    ]
    return rows


def _attachments(detail: RequestDetail) -> list[dict[str, Any]]:
    ticket = detail.request.ticket
    shown: list[dict[str, Any]] = []
    for attachment in detail.request.attachments:
        content_type = attachment.content_type
        kind = (
            "image"
            if content_type in {"image/jpeg", "image/png"}
            else "pdf"
            if content_type == "application/pdf"
            else "other"
        )
        shown.append(
            {
                "url": f"{_request_url(ticket)}/attachments/{attachment.sha256}",
                "kind": kind,
                "name": attachment.filename or f"Berkas {len(shown) + 1}",
                "content_type": content_type,
                "size_kb": max(1, round(attachment.size / 1024)),
            }
        )
    return shown


# -- the router ---------------------------------------------------------------------------


class Console:
    """The console's pages; one instance per app, built by :func:`console_router`."""

    def __init__(self, desk: Desk, auth: Authenticator, settings: Settings) -> None:
        self.desk = desk
        self.auth = auth
        self.sessions = Sessions(settings.key, secure=settings.environment is Deployment.PRODUCTION)
        self.templates = Environment(
            loader=FileSystemLoader(str(TEMPLATES)),
            autoescape=True,
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.templates.filters["waktu"] = _moment(desk.calendar.timezone)
        self.templates.filters["durasi"] = duration
        self.templates.globals.update(
            state_labels=STATE_LABELS,
            sla_labels=SLA_LABELS,
            check_labels=CHECK_LABELS,
            role_labels=ROLE_LABELS,
            kecamatan_names=desk.kecamatan_names,
        )
        self.css = (STATIC / "console.css").read_bytes()

    # -- sessions and forms ----------------------------------------------------------------

    async def officer(self, request: Request) -> tuple[OfficerAccount, Session]:
        """The signed-in officer, checked again now; otherwise off to the login page."""
        session = self.sessions.read(request)
        # After login, back to the page asked for (a form posted meanwhile is not resent).
        next_path = None
        if request.method == "GET":
            query = request.url.query
            next_path = request.url.path + (f"?{query}" if query else "")
        if session is None or session.officer_id is None or session.fingerprint is None:
            raise LoginRequiredError(next_path=next_path)
        try:
            officer = await self.auth.officer_by_fingerprint(
                session.officer_id, session.fingerprint
            )
        except Unauthorized as refused:
            raise LoginRequiredError(next_path=next_path, refused=True) from refused
        request.state.officer, request.state.session = officer, session
        return officer, session

    async def posted(self, request: Request) -> tuple[OfficerAccount, Session, FormData]:
        """A signed-in officer's form, once its CSRF token matched the session's."""
        officer, session = await self.officer(request)
        form = await request.form(max_files=0, max_fields=MAX_FORM_FIELDS)
        self.check_csrf(session, form)
        return officer, session, form

    @staticmethod
    def check_csrf(session: Session | None, form: FormData) -> None:
        sent = _text(form, "csrf")
        if session is None or not sent or not hmac.compare_digest(sent, session.csrf):
            raise CsrfError

    def done(self, location: str, message: str, *, secret: str | None = None) -> Response:
        response = _redirect(location)
        self.sessions.write_flash(response, Flash("ok", message, secret))
        return response

    # -- rendering --------------------------------------------------------------------------

    def render(
        self,
        request: Request,
        template: str,
        *,
        officer: OfficerAccount | None,
        session: Session | None,
        status: int = 200,
        error: str | None = None,
        active: str = "",
        flash: Flash | None = None,
        **context: Any,
    ) -> HTMLResponse:
        stored = self.sessions.read_flash(request)
        flash = flash or stored
        html = self.templates.get_template(template).render(
            officer=officer,
            csrf=session.csrf if session else "",
            flash=flash,
            error=error,
            active=active,
            status_code=status,
            **context,
        )
        response = HTMLResponse(html, status_code=status, headers=PAGE_HEADERS)
        if stored is not None:
            self.sessions.clear_flash(response)
        return response

    async def on_error(self, request: Request, error: Exception) -> Response:
        if isinstance(error, LoginRequiredError):
            query = {"next": error.next_path} if error.next_path else {}
            response = _redirect("/console/login" + (f"?{urlencode(query)}" if query else ""))
            if error.refused:
                self.sessions.clear(response)
                self.sessions.write_flash(
                    response,
                    Flash(
                        "error",
                        "Kode akses Anda tidak berlaku lagi (akun dinonaktifkan?). "
                        "Hubungi admin kantor.",
                    ),
                )
            return response
        status, message = explain(error)
        return self.render(
            request,
            "error.html",
            officer=getattr(request.state, "officer", None),
            session=getattr(request.state, "session", None),
            status=status,
            heading=ERROR_HEADINGS.get(status, "Ada masalah"),
            message=message,
        )

    # -- the request page ---------------------------------------------------------------------

    async def request_page(
        self,
        request: Request,
        officer: OfficerAccount,
        session: Session,
        ticket: str,
        *,
        status: int = 200,
        error: str | None = None,
        form: FormData | None = None,
    ) -> HTMLResponse:
        detail = await self.desk.detail(officer, ticket)
        state = detail.request.state
        mine = state == State.CLAIMED and detail.request.claimed_by == officer.id
        assignable: list[OfficerAccount] = []
        if officer.office_wide and state in DECIDABLE:
            assignable = [
                account
                for account in await self.desk.list_officers(officer)
                if not account.disabled and account.covers(detail.request.kecamatan_code)
            ]
        names = _officer_names(officer, detail.history)
        decided_by = None
        if state in {State.VERIFIED, State.REJECTED} and detail.request.decided_by:
            decided_by = names.get(detail.request.decided_by, detail.request.decided_by)
        return self.render(
            request,
            "request.html",
            active="queue",
            officer=officer,
            session=session,
            status=status,
            error=error,
            detail=detail,
            item=detail.item,
            req=detail.request,
            doc_name=detail.item.doc_name,
            fields=_fields(detail),
            attachments=_attachments(detail),
            history=[
                {
                    "type": entry.type,
                    "label": EVENT_LABELS.get(entry.type, entry.type),
                    "at": entry.at,
                    "actor": _history_actor(entry, names),
                    "note": _history_note(entry),
                }
                for entry in reversed(detail.history)
            ],
            url=_request_url(detail.request.ticket),
            decided_by=decided_by,
            can_claim=state == State.IN_QUEUE,
            can_collect=state in {State.ISSUED, State.READY},
            can_release=mine,
            can_decide=mine,
            assignable=assignable,
            canned_reasons=CANNED_REASONS,
            chosen_reasons=_texts(form, "reasons") if form else [],
            other_reason=_text(form, "other") if form else "",
            reject_reason=_text(form, "reason") if form else "",
            max_reason=MAX_REASON_LENGTH,
        )

    async def decide(
        self,
        request: Request,
        ticket: str,
        action: Callable[[OfficerAccount, str, FormData], Coroutine[Any, Any, str]],
    ) -> Response:
        """Run one officer decision from a form; back to the request page either way."""
        ticket = _ticket(ticket)
        officer, session, form = await self.posted(request)
        try:
            message = await action(officer, ticket, form)
        except (InvalidTransitionError, ConflictError, InvalidDecisionError) as error:
            status, text = explain(error)
            return await self.request_page(
                request, officer, session, ticket, status=status, error=text, form=form
            )
        return self.done(_request_url(ticket), message)


def console_router(desk: Desk, auth: Authenticator, settings: Settings) -> APIRouter:  # noqa: PLR0915 - one route each
    console = Console(desk, auth, settings)
    router = APIRouter(include_in_schema=False, route_class=_route_class(console.on_error))

    # -- entry, login, logout ---------------------------------------------------------------

    @router.get("/")
    async def root() -> Response:
        return _redirect("/console")

    @router.get("/console/static/console.css")
    async def stylesheet() -> Response:
        return Response(
            console.css,
            media_type="text/css",
            headers={"Cache-Control": "max-age=300", "X-Content-Type-Options": "nosniff"},
        )

    @router.get("/console/login")
    async def login_page(
        request: Request, next_path: Annotated[str | None, Query(alias="next")] = None
    ) -> Response:
        session = console.sessions.read(request)
        if session is not None and session.officer_id and session.fingerprint:
            try:
                await auth.officer_by_fingerprint(session.officer_id, session.fingerprint)
            except Unauthorized:
                session = None
            else:
                return _redirect(_safe_next(next_path))
        fresh = session or Session.anonymous()
        response = console.render(
            request, "login.html", officer=None, session=fresh, next=_safe_next(next_path)
        )
        console.sessions.write(response, Session(csrf=fresh.csrf))
        return response

    @router.post("/console/login")
    async def login(request: Request) -> Response:
        form = await request.form(max_files=0, max_fields=MAX_FORM_FIELDS)
        session = console.sessions.read(request)
        next_path = _safe_next(_text(form, "next"))
        try:
            console.check_csrf(session, form)
        except CsrfError:
            return _login_again(
                request, next_path, 403, "Halaman masuk sudah kedaluwarsa. Silakan coba lagi."
            )
        try:
            officer = await auth.officer(_text(form, "token"))
        except Unauthorized:
            return _login_again(
                request,
                next_path,
                401,
                "Kode akses tidak dikenal atau akunnya dinonaktifkan. Periksa lagi kode yang "
                "Anda tempel.",
            )
        response = _redirect(next_path)
        # A new CSRF token with the new identity: nothing sent before login is valid after.
        signed_in = Session(
            csrf=Session.anonymous().csrf,
            officer_id=officer.id,
            fingerprint=hash_token(_text(form, "token")),
        )
        console.sessions.write(response, signed_in)
        console.sessions.write_flash(response, Flash("ok", f"Selamat datang, {officer.name}."))
        return response

    def _login_again(request: Request, next_path: str, status: int, message: str) -> Response:
        fresh = Session.anonymous()
        response = console.render(
            request,
            "login.html",
            officer=None,
            session=fresh,
            status=status,
            error=message,
            next=next_path,
        )
        console.sessions.write(response, fresh)
        return response

    @router.post("/console/logout")
    async def logout(request: Request) -> Response:
        form = await request.form(max_files=0, max_fields=MAX_FORM_FIELDS)
        console.check_csrf(console.sessions.read(request), form)
        response = _redirect("/console/login")
        console.sessions.clear(response)
        console.sessions.write_flash(response, Flash("ok", "Anda sudah keluar."))
        return response

    # -- the queue ----------------------------------------------------------------------------

    @router.get("/console")
    async def queue(
        request: Request,
        status: str | None = None,
        kecamatan: str | None = None,
        doc_type: str | None = None,
    ) -> Response:
        officer, session = await console.officer(request)
        states = {state.value for state in State} - {State.NEW.value}
        chosen_state = status if status in states else None
        chosen_kecamatan = kecamatan if kecamatan in desk.kecamatan_names else None
        chosen_doc = doc_type.upper() if doc_type and doc_type.upper() in set(DocType) else None
        items = await desk.list_requests(
            officer,
            states=[chosen_state] if chosen_state else None,
            kecamatan=chosen_kecamatan,
            doc_type=chosen_doc,
        )
        own = (
            desk.kecamatan_names
            if officer.office_wide
            else {code: desk.kecamatan_names.get(code, code) for code in officer.kecamatan}
        )
        return console.render(
            request,
            "queue.html",
            active="queue",
            officer=officer,
            session=session,
            items=items,
            filters={
                "status": chosen_state or "",
                "kecamatan": chosen_kecamatan or "",
                "doc_type": chosen_doc or "",
            },
            state_options=[
                (state.value, STATE_LABELS[state])
                for state in State
                if state in OPEN_STATES or state in FINAL_STATES
            ],
            kecamatan_options=sorted(own.items(), key=lambda pair: pair[1]),
            doc_options=[(doc.value, document(doc).name) for doc in DocType],
        )

    # -- one request ----------------------------------------------------------------------------

    @router.get("/console/requests/{ticket}")
    async def request_detail(request: Request, ticket: str) -> Response:
        ticket = _ticket(ticket)
        officer, session = await console.officer(request)
        return await console.request_page(request, officer, session, ticket)

    @router.get("/console/requests/{ticket}/attachments/{sha256}")
    async def attachment(request: Request, ticket: str, sha256: str) -> Response:
        ticket = _ticket(ticket)
        if not SHA256.fullmatch(sha256):
            raise PageError(404, "Berkas tidak ditemukan.")
        officer, _ = await console.officer(request)
        path, content_type = await desk.attachment(officer, ticket, sha256)
        if not path.is_file():
            raise PageError(404, "Berkas ini belum ada di penyimpanan kantor. Coba lagi nanti.")
        inline = content_type in INLINE_TYPES
        headers = {
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "private, no-store",
            "Content-Disposition": "inline" if inline else "attachment",
            # Framed by the request page only; whatever else a file holds never runs here.
            "Content-Security-Policy": "frame-ancestors 'self'"
            if content_type == "application/pdf"
            else "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; "
            "frame-ancestors 'self'; sandbox",
        }
        return FileResponse(
            path, media_type=content_type if inline else "application/octet-stream", headers=headers
        )

    @router.post("/console/requests/{ticket}/claim")
    async def claim(request: Request, ticket: str) -> Response:
        async def action(officer: OfficerAccount, ticket: str, _: FormData) -> str:
            await desk.claim(officer, ticket)
            return "Permohonan ini sekarang Anda periksa. Petugas lain melihatnya sudah diambil."

        return await console.decide(request, ticket, action)

    @router.post("/console/requests/{ticket}/release")
    async def release(request: Request, ticket: str) -> Response:
        async def action(officer: OfficerAccount, ticket: str, _: FormData) -> str:
            await desk.release(officer, ticket)
            return "Permohonan dilepas dan kembali ke antrean."

        return await console.decide(request, ticket, action)

    @router.post("/console/requests/{ticket}/approve")
    async def approve(request: Request, ticket: str) -> Response:
        async def action(officer: OfficerAccount, ticket: str, _: FormData) -> str:
            await desk.approve(officer, ticket)
            return "Permohonan disetujui. Warga diberi tahu lewat WhatsApp."

        return await console.decide(request, ticket, action)

    @router.post("/console/requests/{ticket}/collected")
    async def collected(request: Request, ticket: str) -> Response:
        async def action(officer: OfficerAccount, ticket: str, _: FormData) -> str:
            await desk.collected(officer, ticket)
            return "Pengambilan dicatat. Warga diminta mengisi survei kepuasan."

        return await console.decide(request, ticket, action)

    @router.post("/console/requests/{ticket}/request-changes")
    async def request_changes(request: Request, ticket: str) -> Response:
        async def action(officer: OfficerAccount, ticket: str, form: FormData) -> str:
            reasons = [reason for reason in _texts(form, "reasons") if reason]
            if other := " ".join(_text(form, "other").split()):
                reasons.append(other)
            if not reasons:
                raise FormRefusedError(
                    "Pilih minimal satu alasan perbaikan, atau tulis alasan sendiri."
                )
            if len(reasons) > MAX_REASONS:
                raise FormRefusedError(f"Paling banyak {MAX_REASONS} alasan sekaligus.")
            if any(len(reason) > MAX_REASON_LENGTH for reason in reasons):
                raise FormRefusedError(f"Satu alasan paling panjang {MAX_REASON_LENGTH} huruf.")
            await desk.request_changes(officer, ticket, reasons)
            return "Permintaan perbaikan dikirim ke warga lewat WhatsApp."

        return await console.decide(request, ticket, action)

    @router.post("/console/requests/{ticket}/reject")
    async def reject(request: Request, ticket: str) -> Response:
        async def action(officer: OfficerAccount, ticket: str, form: FormData) -> str:
            reason = " ".join(_text(form, "reason").split())
            if not reason:
                raise FormRefusedError("Tulis alasan penolakan; warga akan membacanya.")
            if len(reason) > MAX_REASON_LENGTH:
                raise FormRefusedError(f"Alasan paling panjang {MAX_REASON_LENGTH} huruf.")
            await desk.reject(officer, ticket, reason)
            return "Permohonan ditolak. Warga diberi tahu alasannya lewat WhatsApp."

        return await console.decide(request, ticket, action)

    @router.post("/console/requests/{ticket}/assign")
    async def assign(request: Request, ticket: str) -> Response:
        async def action(officer: OfficerAccount, ticket: str, form: FormData) -> str:
            return await _assign(officer, ticket, _text(form, "officer_id"))

        return await console.decide(request, ticket, action)

    async def _assign(officer: OfficerAccount, ticket: str, target_id: str) -> str:
        officer.require_office_wide("assigning requests")
        accounts = {account.id: account for account in await desk.list_officers(officer)}
        target = accounts.get(target_id)
        if target is None or target.disabled:
            raise FormRefusedError("Pilih petugas yang masih aktif.")
        try:
            await desk.assign(officer, ticket, target.id)
        except NotAllowedError as error:
            raise FormRefusedError(
                f"{target.name} tidak menangani kecamatan permohonan ini."
            ) from error
        return f"Permohonan dialihkan ke {target.name}."

    # -- complaints ---------------------------------------------------------------------------

    @router.get("/console/complaints")
    async def complaints(request: Request, state: str | None = "open") -> Response:
        officer, session = await console.officer(request)
        chosen = state if state in {"open", "answered"} else None
        rows = await desk.list_complaints(officer, state=chosen)
        return console.render(
            request,
            "complaints.html",
            active="complaints",
            officer=officer,
            session=session,
            rows=rows,
            chosen=chosen or "all",
        )

    @router.get("/console/complaints/{ticket}")
    async def complaint(request: Request, ticket: str) -> Response:
        ticket = _ticket(ticket)
        officer, session = await console.officer(request)
        return await _complaint_page(request, officer, session, ticket)

    async def _complaint_page(
        request: Request,
        officer: OfficerAccount,
        session: Session,
        ticket: str,
        *,
        status: int = 200,
        error: str | None = None,
        answer: str = "",
    ) -> Response:
        found = await desk.complaint(officer, ticket)
        if not found.text:  # a complaint always has a text, unless it was erased
            found = replace(found, text=ERASED)
        return console.render(
            request,
            "complaint.html",
            active="complaints",
            officer=officer,
            session=session,
            status=status,
            error=error,
            complaint=found,
            answer=answer,
            max_answer=MAX_ANSWER_LENGTH,
        )

    @router.post("/console/complaints/{ticket}/answer")
    async def answer_complaint(request: Request, ticket: str) -> Response:
        ticket = _ticket(ticket)
        officer, session, form = await console.posted(request)
        answer = _text(form, "answer")
        try:
            if not answer:
                raise FormRefusedError("Tulis jawaban untuk warga.")
            if len(answer) > MAX_ANSWER_LENGTH:
                raise FormRefusedError(f"Jawaban paling panjang {MAX_ANSWER_LENGTH} huruf.")
            await desk.answer_complaint(officer, ticket, answer)
        except (ComplaintClosedError, ConflictError, InvalidDecisionError) as error:
            status, text = explain(error)
            return await _complaint_page(
                request, officer, session, ticket, status=status, error=text, answer=answer
            )
        return console.done(
            f"/console/complaints/{quote(ticket, safe='')}",
            "Jawaban dikirim ke warga lewat WhatsApp; pengaduan ditutup.",
        )

    # -- the dashboard ----------------------------------------------------------------------------

    dashboard = Dashboard.for_desk(desk)

    @router.get("/console/dashboard")
    async def dashboard_page(request: Request) -> Response:
        officer, session = await console.officer(request)
        figures = await dashboard.figures(Scope.of(officer))
        return console.render(
            request,
            "dashboard.html",
            active="dashboard",
            officer=officer,
            session=session,
            page=page_view(figures, desk.calendar),
        )

    # -- supervisors and admins ---------------------------------------------------------------

    @router.get("/console/supervisor")
    async def supervisor(request: Request) -> Response:
        officer, session = await console.officer(request)
        return await _supervisor_page(request, officer, session)

    async def _supervisor_page(
        request: Request,
        officer: OfficerAccount,
        session: Session,
        *,
        status: int = 200,
        error: str | None = None,
        flash: Flash | None = None,
    ) -> Response:
        backlog = await desk.backlog(officer)
        officers = await desk.list_officers(officer)
        return console.render(
            request,
            "supervisor.html",
            active="supervisor",
            officer=officer,
            session=session,
            status=status,
            error=error,
            flash=flash,
            backlog=backlog,
            officers=officers,
            active_officers=[account for account in officers if not account.disabled],
            is_admin=officer.role == Role.ADMIN,
            roles=[(role.value, ROLE_LABELS[role]) for role in Role],
            all_kecamatan=sorted(desk.kecamatan_names.items(), key=lambda pair: pair[1]),
        )

    async def _supervisor_action(
        request: Request, action: Callable[[OfficerAccount, FormData], Coroutine[Any, Any, Flash]]
    ) -> Response:
        officer, session, form = await console.posted(request)
        officer.require_office_wide("the supervisor page")
        try:
            flash = await action(officer, form)
        except (InvalidTransitionError, ConflictError, InvalidDecisionError) as error:
            status, text = explain(error)
            return await _supervisor_page(request, officer, session, status=status, error=text)
        if flash.secret is not None:
            # Shown here, once: a redirect would have to carry the token in a cookie.
            return await _supervisor_page(request, officer, session, status=201, flash=flash)
        response = _redirect("/console/supervisor")
        console.sessions.write_flash(response, flash)
        return response

    @router.post("/console/supervisor/assign")
    async def supervisor_assign(request: Request) -> Response:
        async def action(officer: OfficerAccount, form: FormData) -> Flash:
            try:
                ticket = _ticket(_text(form, "ticket"))
            except PageError as error:
                raise FormRefusedError("Nomor tiket tidak dikenal.") from error
            try:
                return Flash("ok", await _assign(officer, ticket, _text(form, "officer_id")))
            except UnknownTicketError as error:
                raise FormRefusedError(f"Tiket {ticket} tidak ditemukan.") from error

        return await _supervisor_action(request, action)

    @router.post("/console/officers")
    async def add_officer(request: Request) -> Response:
        async def action(officer: OfficerAccount, form: FormData) -> Flash:
            name = " ".join(_text(form, "name").split())
            role = _text(form, "role")
            kecamatan = sorted(set(_texts(form, "kecamatan")))
            if not name or len(name) > MAX_NAME_LENGTH:
                raise FormRefusedError(
                    f"Tulis nama petugas (paling panjang {MAX_NAME_LENGTH} huruf)."
                )
            if role not in set(Role):
                raise FormRefusedError("Pilih peran petugas.")
            if any(code not in desk.kecamatan_names for code in kecamatan):
                raise FormRefusedError("Pilih kecamatan dari daftar.")
            if role == Role.OPERATOR and not kecamatan:
                raise FormRefusedError("Operator harus menangani minimal satu kecamatan.")
            account, token = await desk.add_officer(officer, name, Role(role), kecamatan)
            return Flash(
                "ok",
                f"Petugas {account.name} ditambahkan. Berikan kode akses ini kepadanya; kode "
                "ini hanya ditampilkan sekali.",
                secret=token,
            )

        return await _supervisor_action(request, action)

    @router.post("/console/officers/{officer_id}/{change}")
    async def change_officer(request: Request, officer_id: str, change: str) -> Response:
        if change not in {"disable", "enable"} or not OFFICER_ID.fullmatch(officer_id):
            raise PageError(404, "Halaman tidak ditemukan.")

        async def action(officer: OfficerAccount, _: FormData) -> Flash:
            if officer_id == officer.id:
                raise FormRefusedError("Anda tidak bisa menonaktifkan akun Anda sendiri.")
            try:
                await desk.set_officer_disabled(officer, officer_id, change == "disable")
            except UnknownTicketError as error:
                raise FormRefusedError("Petugas tidak ditemukan.") from error
            done = "dinonaktifkan" if change == "disable" else "diaktifkan kembali"
            return Flash("ok", f"Akun petugas {done}.")

        return await _supervisor_action(request, action)

    return router
