"""Who may do what in the officer web application: the contract between the service that
knows officers (verification) and every other service that mounts routes behind the same
authentication (integrations' ``/api/webhooks``).

The composition root builds one authenticator and hands it to every router; a router only
sees a :class:`Principal` and the two errors, which the application maps to 401 and 403.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any, Final, Protocol


class Role(StrEnum):
    OPERATOR = "operator"
    SUPERVISOR = "supervisor"
    ADMIN = "admin"


class Unauthorized(Exception):
    """No credentials, or credentials that name no active officer (401)."""


class NotAllowedError(Exception):
    """The officer's role or scope does not cover the action (403)."""


class Principal(Protocol):
    """An authenticated officer, as another service's routes need to know them."""

    @property
    def id(self) -> str: ...

    @property
    def role(self) -> Role: ...

    def require_office_wide(self, action: str) -> None:
        """Raise :class:`NotAllowedError` unless a supervisor or an admin."""

    def require_admin(self, action: str) -> None:
        """Raise :class:`NotAllowedError` unless an admin."""


class Authenticate(Protocol):
    """Turns a bearer token into the officer it belongs to, or raises :class:`Unauthorized`."""

    async def officer(self, token: str | None) -> Principal: ...


ERROR_DESCRIPTIONS: Final[Mapping[int, str]] = {
    400: "A body that cannot be read as JSON",
    401: "No bearer token, or one that names no active officer",
    403: "The officer's role or kecamatan does not cover this",
    404: "No such ticket, officer or subscription",
    409: "The state does not allow this now (or it changed meanwhile)",
    413: "The request body is larger than the officer application accepts",
    422: "An unusable parameter or body",
    429: "Too many failed sign-ins from this client address; see Retry-After",
}
"""Every refusal of the officer API, in the words of its OpenAPI document."""

GUARDED: Final = (401, 413, 429)
"""What the officer application answers on every ``/api`` route before the route runs."""


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for these refusals, each a JSON ``{"detail": "..."}``."""
    return {
        code: {
            "description": ERROR_DESCRIPTIONS[code],
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "properties": {"detail": {}},
                        "required": ["detail"],
                    }
                }
            },
        }
        for code in codes
    }
