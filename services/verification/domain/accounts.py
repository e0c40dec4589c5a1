"""Rules about officers' accounts that hold whatever the screen (console or API): who may
be handed a request, who may be disabled, what an officer's name may be.

The account itself (:class:`OfficerAccount`, roles, :class:`NotAllowedError`) is in
:mod:`services.verification.domain.officers`.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from typing import Final

from services.verification.domain.officers import NotAllowedError, OfficerAccount
from services.verification.domain.request import InvalidDecisionError

OFFICER_ID: Final = re.compile(r"[A-Za-z0-9_-]{1,64}")
"""Every officer id has this form (``off_`` and hex, or ``bootstrap``)."""
MAX_NAME_LENGTH: Final = 100


class UnknownOfficerError(LookupError):
    """No officer has this id (the API answers 404): never reported as an unknown ticket."""

    def __init__(self, officer_id: str) -> None:
        super().__init__(f"unknown officer {officer_id}")
        self.officer_id = officer_id


class OfficerDisabledError(Exception):
    """The officer's account is disabled, so no request can be handed to them (the API
    answers 409: the account's state does not allow it)."""

    def __init__(self, officer_id: str) -> None:
        super().__init__(f"officer {officer_id} is disabled and cannot take requests")
        self.officer_id = officer_id


class OwnAccountError(NotAllowedError):
    """An officer may not disable (or enable) their own account: an admin who locks
    themselves out needs another admin anyway (the API answers 403)."""

    def __init__(self, officer_id: str) -> None:
        super().__init__(f"officer {officer_id} cannot disable or enable their own account")
        self.officer_id = officer_id


class AssigneeOutOfScopeError(NotAllowedError):
    """The officer a request is handed to does not cover its kecamatan (403)."""

    def __init__(self, target: OfficerAccount, kecamatan_code: str | None) -> None:
        super().__init__(f"officer {target.id} does not cover kecamatan {kecamatan_code}")
        self.target = target


def is_officer_id(value: str) -> bool:
    return OFFICER_ID.fullmatch(value) is not None


def require_other_account(officer: OfficerAccount, officer_id: str) -> None:
    """Changing whether an account is disabled is for another officer's account."""
    if officer_id == officer.id:
        raise OwnAccountError(officer_id)


def require_assignable(target: OfficerAccount | None, officer_id: str) -> OfficerAccount:
    """The officer a request may be handed to: one that exists and is active."""
    if target is None:
        raise UnknownOfficerError(officer_id)
    if target.disabled:
        raise OfficerDisabledError(officer_id)
    return target


def require_covers(target: OfficerAccount, kecamatan_code: str | None) -> None:
    if not target.covers(kecamatan_code):
        raise AssigneeOutOfScopeError(target, kecamatan_code)


def officer_name(name: str) -> str:
    """An officer's name as stored: single spaces, not empty, at most 100 characters, and
    no control or format characters (a NUL byte that Postgres refuses, a bidirectional
    override that would show the name backwards on every page)."""
    cleaned = " ".join(name.split())
    if not cleaned:
        raise InvalidDecisionError("an officer's name is required")
    if any(unicodedata.category(character).startswith("C") for character in cleaned):
        raise InvalidDecisionError("an officer's name has no control or format characters")
    if len(cleaned) > MAX_NAME_LENGTH:
        raise InvalidDecisionError(f"an officer's name has at most {MAX_NAME_LENGTH} characters")
    return cleaned


def kecamatan_codes(codes: Iterable[str]) -> list[str]:
    """An account's kecamatan, each once, in order."""
    return sorted(set(codes))
