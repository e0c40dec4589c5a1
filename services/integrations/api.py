"""``/api/webhooks``: integrators' webhook subscriptions in the officer API.

Mounted in the officer web application (adminduk/officer_app.py) and guarded by the same
bearer tokens (the ``shared.access.Authenticate`` port): supervisors and admins may look,
only admins may change anything (secrets and where the office's events go are an admin's
decision). Answers as the rest of the API:
401 without a valid token, 403 outside the role, 404 unknown id, 409 when the
subscription's state does not allow the action, 422 for unusable input (an unknown event
type is answered with the list of known ones).
"""

# No "from __future__ import annotations": FastAPI must see the dependency aliases that
# the router factory defines locally as real objects (as in the verification API).

import functools
import unicodedata
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, Any, ParamSpec, TypeVar

import asyncpg
from fastapi import APIRouter, Depends, Path
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, field_validator

from services.integrations import subscriptions as subs
from services.integrations.destinations import Destinations
from services.integrations.subscriptions import (
    DeadLetter,
    InvalidSubscriptionError,
    Subscription,
    SubscriptionError,
    SubscriptionStateError,
    UnknownEventTypesError,
    UnknownSubscriptionError,
)
from shared.access import GUARDED, Authenticate, Principal, error_responses
from shared.public import PUBLIC_TYPES

_bearer = HTTPBearer(auto_error=False, description="An officer's token")

# A subscription id is looked up only if it has the shape of one (422 otherwise): a NUL
# byte or a megabyte of text never reaches Postgres.
WebhookId = Annotated[
    str, Path(pattern=r"^[A-Za-z0-9_-]{1,64}$", description="A subscription's id, `wh_...`")
]

P = ParamSpec("P")
R = TypeVar("R")


class _Schema(BaseModel):
    model_config = ConfigDict(extra="forbid")


class WebhookCreate(_Schema):
    url: str = Field(max_length=subs.MAX_URL, description="http(s) URL the events are POSTed to")
    event_types: list[str] = Field(
        default_factory=list,
        max_length=100,
        description="Public event types to send; empty: every public type.",
    )
    description: str = Field(default="", max_length=subs.MAX_DESCRIPTION)
    secret: str | None = Field(
        default=None, description="whsec_<base64 of 24-64 bytes>; default: a new one."
    )

    @field_validator("url", "description")
    @classmethod
    def _no_control_characters(cls, value: str) -> str:
        # A NUL byte would reach Postgres (a 500), a bidirectional override an admin's screen.
        if any(unicodedata.category(c).startswith("C") and c not in "\n\t" for c in value):
            raise ValueError("control and format characters are not allowed")
        return value


class ReplayBody(_Schema):
    from_position: int = Field(
        ge=0, description="Deliver again every event from this position on, included."
    )


class DeadLetterPublic(BaseModel):
    id: int
    event_id: str
    position: int
    event_type: str
    first_failed_at: datetime
    dead_at: datetime
    last_error: str
    last_status: int | None
    attempts: int
    resolved_at: datetime | None
    resolution: str | None


class WebhookPublic(BaseModel):
    id: str
    url: str
    event_types: list[str]
    description: str
    state: subs.State
    position: int
    failing_since: datetime | None
    next_attempt_at: datetime | None
    attempts: int
    last_error: str | None
    last_status: int | None
    last_delivered_at: datetime | None
    created_at: datetime
    created_by: str
    updated_at: datetime


class WebhookDetail(WebhookPublic):
    dead_letters: list[DeadLetterPublic]


class WebhookCreated(WebhookPublic):
    secret: str = Field(description="Shown once: give it to the integrator.")


def _public(subscription: Subscription) -> WebhookPublic:
    return WebhookPublic(**_fields(subscription))


def _fields(subscription: Subscription) -> dict[str, Any]:
    return {
        "id": subscription.id,
        "url": subscription.url,
        "event_types": list(subscription.event_types),
        "description": subscription.description,
        "state": subscription.state,
        "position": subscription.position,
        "failing_since": subscription.failing_since,
        "next_attempt_at": subscription.next_attempt_at,
        "attempts": subscription.attempts,
        "last_error": subscription.last_error,
        "last_status": subscription.last_status,
        "last_delivered_at": subscription.last_delivered_at,
        "created_at": subscription.created_at,
        "created_by": subscription.created_by,
        "updated_at": subscription.updated_at,
    }


def _dead_letter(letter: DeadLetter) -> DeadLetterPublic:
    return DeadLetterPublic(
        id=letter.id,
        event_id=letter.event_id,
        position=letter.position,
        event_type=letter.event_type,
        first_failed_at=letter.first_failed_at,
        dead_at=letter.dead_at,
        last_error=letter.last_error,
        last_status=letter.last_status,
        attempts=letter.attempts,
        resolved_at=letter.resolved_at,
        resolution=letter.resolution,
    )


def _refusal(error: SubscriptionError) -> JSONResponse:
    """The one mapping of subscription errors to HTTP answers."""
    if isinstance(error, UnknownEventTypesError):
        return JSONResponse(
            {"detail": str(error), "known_event_types": list(error.known)}, status_code=422
        )
    status = 500
    if isinstance(error, UnknownSubscriptionError):
        status = 404
    elif isinstance(error, SubscriptionStateError):
        status = 409
    elif isinstance(error, InvalidSubscriptionError):
        status = 422
    return JSONResponse({"detail": str(error)}, status_code=status)


def _answers(route: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R | JSONResponse]]:
    """Wrap a route so a subscription error becomes its HTTP answer (signature kept for
    FastAPI's parameter and dependency handling)."""

    @functools.wraps(route)
    async def answered(*args: P.args, **kwargs: P.kwargs) -> R | JSONResponse:
        try:
            return await route(*args, **kwargs)
        except SubscriptionError as error:
            return _refusal(error)

    return answered


def webhooks_router(
    pool: asyncpg.Pool, auth: Authenticate, destinations: Destinations
) -> APIRouter:
    """The routes, on the console's database pool and officer authentication; URLs are
    registered only to ``destinations``."""
    router = APIRouter(
        prefix="/api/webhooks", tags=["webhooks"], responses=error_responses(*GUARDED, 403)
    )

    async def current_officer(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> Principal:
        return await auth.officer(credentials.credentials if credentials else None)

    async def viewer(
        officer: Annotated[Principal, Depends(current_officer)],
    ) -> Principal:
        officer.require_office_wide("viewing webhooks")
        return officer

    async def admin(officer: Annotated[Principal, Depends(current_officer)]) -> Principal:
        officer.require_admin("managing webhooks")
        return officer

    Viewer = Annotated[Principal, Depends(viewer)]
    Admin = Annotated[Principal, Depends(admin)]

    @router.post("", response_model=WebhookCreated, status_code=201, responses=error_responses(400))
    @_answers
    async def create(officer: Admin, body: WebhookCreate) -> WebhookCreated:
        async with pool.acquire() as connection:
            subscription, secret = await subs.add(
                connection,
                url=body.url,
                known_types=PUBLIC_TYPES,
                event_types=body.event_types,
                description=body.description,
                created_by=f"officer:{officer.id}",
                destinations=destinations,
                secret=body.secret,
            )
        return WebhookCreated(**_fields(subscription), secret=secret)

    @router.get("", response_model=list[WebhookPublic])
    async def list_webhooks(officer: Viewer) -> list[WebhookPublic]:
        async with pool.acquire() as connection:
            return [_public(s) for s in await subs.list_subscriptions(connection)]

    @router.get("/{webhook_id}", response_model=WebhookDetail, responses=error_responses(404))
    @_answers
    async def show(officer: Viewer, webhook_id: WebhookId) -> WebhookDetail:
        async with pool.acquire() as connection:
            subscription = await subs.get(connection, webhook_id)
            letters = await subs.dead_letters(connection, webhook_id)
        return WebhookDetail(
            **_fields(subscription), dead_letters=[_dead_letter(letter) for letter in letters]
        )

    @router.delete(
        "/{webhook_id}",
        status_code=204,
        response_class=Response,
        responses=error_responses(404, 409),
    )
    @_answers
    async def remove(officer: Admin, webhook_id: WebhookId) -> Response:
        async with pool.acquire() as connection:
            await subs.remove(connection, webhook_id)
        return Response(status_code=204)

    @router.post(
        "/{webhook_id}/replay",
        response_model=WebhookPublic,
        responses=error_responses(400, 404, 409),
    )
    @_answers
    async def replay(officer: Admin, webhook_id: WebhookId, body: ReplayBody) -> WebhookPublic:
        async with pool.acquire() as connection:
            await subs.rewind(connection, webhook_id, body.from_position)
            return _public(await subs.get(connection, webhook_id))

    @router.post(
        "/{webhook_id}/redrive", response_model=WebhookPublic, responses=error_responses(404, 409)
    )
    @_answers
    async def redrive(officer: Admin, webhook_id: WebhookId) -> WebhookPublic:
        async with pool.acquire() as connection:
            return _public(await subs.redrive(connection, webhook_id))

    @router.post(
        "/{webhook_id}/disable", response_model=WebhookPublic, responses=error_responses(404, 409)
    )
    @_answers
    async def disable(officer: Admin, webhook_id: WebhookId) -> WebhookPublic:
        async with pool.acquire() as connection:
            return _public(await subs.set_enabled(connection, webhook_id, enabled=False))

    @router.post(
        "/{webhook_id}/enable", response_model=WebhookPublic, responses=error_responses(404, 409)
    )
    @_answers
    async def enable(officer: Admin, webhook_id: WebhookId) -> WebhookPublic:
        async with pool.acquire() as connection:
            return _public(await subs.set_enabled(connection, webhook_id, enabled=True))

    return router
