"""Officers, their roles and their scope.

* operator: works requests of the kecamatan listed on their account;
* supervisor: the whole office, and may hand a request to another officer;
* admin: everything a supervisor may, and manages officers' accounts.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.verification.domain.request import Officer
from shared.access import NotAllowedError, Role

__all__ = ["NotAllowedError", "OfficerAccount", "Role"]


@dataclass(frozen=True, slots=True)
class OfficerAccount:
    id: str
    name: str
    role: Role
    kecamatan: tuple[str, ...] = ()
    disabled: bool = False

    @property
    def officer(self) -> Officer:
        return Officer(id=self.id, name=self.name)

    @property
    def office_wide(self) -> bool:
        return self.role in {Role.SUPERVISOR, Role.ADMIN}

    def covers(self, kecamatan_code: str | None) -> bool:
        """Whether a request of ``kecamatan_code`` is in this officer's scope. A request
        whose kecamatan is unknown belongs to the office as a whole."""
        return self.office_wide or (kecamatan_code is not None and kecamatan_code in self.kecamatan)

    def covers_complaint(self, related_ticket: str | None, kecamatan_code: str | None) -> bool:
        """Whether a complaint is this officer's to read and answer: one about no request
        is any officer's; one about a request follows the request (``kecamatan_code``, its
        kecamatan as the queue knows it), so one about a ticket nobody has, or a request of
        an unknown kecamatan, is for supervisors. The list and the page use this one rule."""
        return related_ticket is None or self.covers(kecamatan_code)

    def require_scope(self, kecamatan_code: str | None) -> None:
        if not self.covers(kecamatan_code):
            raise NotAllowedError(f"officer {self.id} does not cover kecamatan {kecamatan_code}")

    def require_office_wide(self, action: str) -> None:
        if not self.office_wide:
            raise NotAllowedError(f"{action} is for supervisors")

    def require_admin(self, action: str) -> None:
        if self.role != Role.ADMIN:
            raise NotAllowedError(f"{action} is for admins")
