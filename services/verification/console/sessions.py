"""Sessions and CSRF.

Sessions. An officer signs in with their access token (the API's bearer token). The
session cookie never carries the token: it holds the officer's id, the SHA-256 of the
token and the generation of the officer's sessions, signed (not encrypted: its content is
readable, but cannot be forged or changed; itsdangerous, expiring after 12 hours) with a key
derived from ``ADMINDUK_SECRET_KEY``, so any replica can read it. On every request the
:class:`Authenticator` checks the fingerprint and the generation again, so a disabled
officer is locked out at their next click, and signing out (which moves the officer's
generation on, in the ``console_sessions`` table) ends every session they had, on every
device, a copied cookie included. The cookie is ``HttpOnly``, ``SameSite=Lax``, limited to
``/console`` and ``Secure`` in production.

CSRF. Each session, signed in or not, holds a random CSRF token; every form carries it in a
hidden field and every POST compares it in constant time before anything else happens. A
POST without it or with another one is answered 403 and changes nothing.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Final

from fastapi import Request
from fastapi.responses import Response
from itsdangerous import BadData, URLSafeTimedSerializer
from starlette.datastructures import FormData

from services.verification.console.errors import CsrfError
from services.verification.console.forms import text

SESSION_COOKIE: Final = "adminduk_console"
FLASH_COOKIE: Final = "adminduk_console_flash"
COOKIE_PATH: Final = "/console"
SESSION_LIFETIME: Final = timedelta(hours=12)
FLASH_LIFETIME: Final = timedelta(minutes=2)


def _derive(key: bytes, purpose: str) -> bytes:
    """One key per purpose, so the session and the flash signatures are independent."""
    return hmac.digest(key, f"adminduk console {purpose}".encode(), "sha256")


@dataclass(frozen=True)
class Session:
    """What the (signed, not secret) session cookie holds: the CSRF token and, once signed
    in, the officer's id with the fingerprint (SHA-256) of the token they logged in with
    and the generation of their sessions then (signing out moves it on).
    The token itself never goes into the cookie; the fingerprint is checked against the
    officer's account on every request, so a disabled account or a replaced token ends
    the session at once."""

    csrf: str
    officer_id: str | None = None
    fingerprint: str | None = None
    generation: int = 0

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
        officer_id, fingerprint, generation = data.get("o"), data.get("f"), data.get("g", 0)
        if not isinstance(officer_id, str) or not isinstance(fingerprint, str):
            officer_id = fingerprint = None
        if not isinstance(generation, int):
            return None
        return Session(
            csrf=data["c"], officer_id=officer_id, fingerprint=fingerprint, generation=generation
        )

    def write(self, response: Response, session: Session) -> None:
        data: dict[str, str | int] = {"c": session.csrf}
        if session.officer_id is not None and session.fingerprint is not None:
            data |= {"o": session.officer_id, "f": session.fingerprint, "g": session.generation}
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


def check_csrf(session: Session | None, form: FormData) -> None:
    """The form carries this session's CSRF token, or nothing happens (:class:`CsrfError`).
    Compared as UTF-8 bytes: ``compare_digest`` refuses ``str`` with non-ASCII characters,
    and a forged field may hold anything."""
    sent = text(form, "csrf")
    if (
        session is None
        or not sent
        or not hmac.compare_digest(sent.encode("utf-8", "replace"), session.csrf.encode())
    ):
        raise CsrfError
