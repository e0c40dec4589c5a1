"""What the console refuses itself, and every refusal in the words an officer reads, with
the HTTP status the API gives for the same error."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from services.verification.console.labels import STATE_LABELS
from services.verification.domain.accounts import (
    AssigneeOutOfScopeError,
    OfficerDisabledError,
    OwnAccountError,
    UnknownOfficerError,
)
from services.verification.domain.complaint import ComplaintClosedError
from services.verification.domain.officers import NotAllowedError
from services.verification.domain.request import (
    ClaimedByAnotherError,
    InvalidDecisionError,
    InvalidTransitionError,
)
from services.verification.handlers import ConflictError, UnknownTicketError

ERROR_HEADINGS: Final[Mapping[int, str]] = {
    403: "Tidak diizinkan",
    404: "Tidak ditemukan",
    409: "Tidak bisa dilakukan sekarang",
    422: "Isian belum benar",
}


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
    UnknownOfficerError,
    InvalidTransitionError,
    OfficerDisabledError,
    ConflictError,
    ComplaintClosedError,
    InvalidDecisionError,
)


def explain(error: Exception) -> tuple[int, str]:  # noqa: PLR0911, PLR0912 - one case per error
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
        case OwnAccountError():
            return 403, "Anda tidak bisa menonaktifkan akun Anda sendiri."
        case AssigneeOutOfScopeError():
            return 403, f"{error.target.name} tidak menangani kecamatan permohonan ini."
        case NotAllowedError():
            return 403, (
                "Anda tidak berwenang untuk halaman atau tindakan ini. Permohonan hanya bisa "
                "dibuka oleh petugas kecamatannya, dan halaman supervisor hanya untuk "
                "supervisor dan admin."
            )
        case UnknownTicketError():
            return 404, "Tiket tidak ditemukan. Periksa lagi nomor tiketnya."
        case UnknownOfficerError():
            return 404, "Petugas tidak ditemukan. Pilih petugas dari daftar."
        case OfficerDisabledError():
            return 409, "Akun petugas itu sudah dinonaktifkan. Pilih petugas yang masih aktif."
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
