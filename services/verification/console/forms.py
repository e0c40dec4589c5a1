"""Reading what a browser sent: form fields, tickets in URLs, where to go after login."""

from __future__ import annotations

import re
from typing import Final

from starlette.datastructures import FormData

from services.verification.console.errors import PageError

TICKET: Final = re.compile(r"[A-Z0-9-]{6,24}")
SHA256: Final = re.compile(r"[0-9a-f]{64}")
# Where a login may send the officer afterwards: console paths only, never another site.
SAFE_NEXT: Final = re.compile(r"/console(?:/[A-Za-z0-9_\-/]*)?(?:\?[A-Za-z0-9_\-=&%.+]*)?")
MAX_FORM_FIELDS: Final = 100


def text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def texts(form: FormData, name: str) -> list[str]:
    return [value.strip() for value in form.getlist(name) if isinstance(value, str)]


def ticket_of(value: str) -> str:
    ticket = value.strip().upper()
    if not TICKET.fullmatch(ticket):
        raise PageError(404, "Nomor tiket tidak dikenal. Periksa lagi nomor tiketnya.")
    return ticket


def safe_next(value: str | None) -> str:
    if value and SAFE_NEXT.fullmatch(value) and ".." not in value and "//" not in value:
        return value
    return "/console"
