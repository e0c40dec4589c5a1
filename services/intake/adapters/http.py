"""The WhatsApp Cloud API webhook (HTTP side of the intake service).

Every answer is precise: 401 for a missing or wrong signature (nothing stored), 400 for a
body that is not JSON or not a WhatsApp Business Account change, 413 for a body over the
limit or carrying more than :data:`~services.intake.inbound.MAX_WEBHOOK_ITEMS` messages and
statuses, 503 when what the body carries could not be stored (Meta then retries for days),
and 200 only after everything it carries is durably appended. Changes for another business
number than ``WHATSAPP_PHONE_NUMBER_ID`` are ignored (and logged by that number's id).
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Final

from fastapi import FastAPI, Query, Request, Response, status
from fastapi.responses import JSONResponse, PlainTextResponse
from opentelemetry import trace
from pydantic import ValidationError
from pydantic_core import from_json
from starlette.requests import ClientDisconnect
from starlette.types import Receive, Scope, Send

from services.intake.inbound import MAX_WEBHOOK_ITEMS, record_webhook
from shared.config import Settings
from shared.eventstore.store import EventStore
from shared.runtime.service import add_health_check
from shared.whatsapp.webhook import SIGNATURE_HEADER, WebhookPayload, signature_is_valid

log = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)

# Meta sends at most 3 MB; a little headroom, then refuse without reading further.
MAX_BODY_BYTES: Final = 3 * 1024 * 1024 + 64 * 1024


class BodyTooLargeError(Exception):
    pass


async def _read_body(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise BodyTooLargeError
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise BodyTooLargeError
        chunks.append(chunk)
    return b"".join(chunks)


def _problem(status_code: int, detail: str) -> JSONResponse:
    return JSONResponse({"error": detail}, status_code=status_code)


def _without_nul(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, list):
        return [_without_nul(item) for item in value]
    if isinstance(value, dict):
        return {_without_nul(key): _without_nul(item) for key, item in value.items()}
    return value


def _parse(body: bytes) -> WebhookPayload | tuple[int, str]:
    """The webhook, or the status and reason of its refusal (400: not a WhatsApp Business
    Account change, 413: more messages and statuses than Meta ever sends in one).

    NUL characters are dropped (Postgres stores none, and they mean nothing in a message);
    only a body that has one is parsed twice."""
    try:
        if b"\\u0000" in body:
            payload = WebhookPayload.model_validate(_without_nul(from_json(body)))
        else:
            payload = WebhookPayload.model_validate_json(body)
    except ValueError as error:
        if not isinstance(error, ValidationError):
            return 400, "not a WhatsApp Business Account webhook: not JSON"
        # Only the locations of the problems: the body may hold personal data.
        where = sorted({".".join(map(str, e["loc"])) for e in error.errors()})[:5]
        return 400, f"not a WhatsApp Business Account webhook: {where}"
    items = payload.item_count()
    if items > MAX_WEBHOOK_ITEMS:
        return 413, f"{items} messages and statuses; at most {MAX_WEBHOOK_ITEMS} per webhook"
    return payload


WEBHOOK_PATH: Final = "/webhook/whatsapp"
_ERROR: Final = {
    "content": {
        "application/json": {
            "schema": {"type": "object", "properties": {"error": {"type": "string"}}}
        }
    }
}
WEBHOOK_RESPONSES: Final[dict[int | str, dict[str, Any]]] = {
    200: {"description": "Everything the webhook carries is stored (or was already)"},
    400: {"description": "Not JSON, or not a WhatsApp Business Account change", **_ERROR},
    401: {"description": "Missing or wrong X-Hub-Signature-256; nothing stored", **_ERROR},
    413: {
        "description": f"Body over {MAX_BODY_BYTES} bytes, or more than "
        f"{MAX_WEBHOOK_ITEMS} messages and statuses; nothing stored",
        **_ERROR,
    },
    503: {"description": "Could not be stored now; Meta retries", **_ERROR},
}

Endpoint = Callable[[Request], Awaitable[Response]]


class IntakeApp(FastAPI):
    """FastAPI, with the hot path taken straight: a ``POST`` to the webhook goes to its
    endpoint without the framework's middleware and routing layers (about a fifth of the
    process's CPU per webhook under load). Everything else, including the webhook's
    documentation and the verification handshake, is ordinary FastAPI."""

    webhook: Endpoint | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            self.webhook is not None
            and scope["type"] == "http"
            and scope["method"] == "POST"
            and scope["path"] == WEBHOOK_PATH
        ):
            response = await self.webhook(Request(scope, receive))
            await response(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def create_app(settings: Settings, store: EventStore) -> FastAPI:
    app = IntakeApp(
        title="adminduk intake",
        description="WhatsApp Cloud API webhook of the civil-registry office",
        version="0.1.0",
    )
    verify_token = settings.whatsapp_verify_token.get_secret_value().encode()
    app_secret = settings.whatsapp_app_secret.get_secret_value()
    phone_number_id = settings.whatsapp_phone_number_id

    @app.get(WEBHOOK_PATH, response_class=PlainTextResponse)
    async def verify_webhook(
        mode: Annotated[str | None, Query(alias="hub.mode")] = None,
        token: Annotated[str | None, Query(alias="hub.verify_token")] = None,
        challenge: Annotated[str | None, Query(alias="hub.challenge", max_length=256)] = None,
    ) -> Response:
        """Meta's verification handshake: echo the challenge when the token matches."""
        if (
            mode == "subscribe"
            and token is not None
            and challenge is not None
            and hmac.compare_digest(token.encode(), verify_token)
        ):
            return PlainTextResponse(challenge)
        return PlainTextResponse("verification failed", status_code=status.HTTP_403_FORBIDDEN)

    @app.post(WEBHOOK_PATH, responses=WEBHOOK_RESPONSES)
    async def receive_webhook(request: Request) -> Response:
        """Messages and delivery statuses from the Cloud API."""
        with tracer.start_as_current_span("whatsapp webhook", record_exception=False) as span:
            try:
                body = await _read_body(request)
            except BodyTooLargeError:
                span.set_attribute("http.response.status_code", 413)
                return _problem(413, "body larger than the webhook limit")
            except ClientDisconnect:
                # The sender gave up mid-body (a time-out); nothing was stored, it will retry.
                span.set_attribute("http.response.status_code", 400)
                return _problem(400, "body incomplete")
            if not signature_is_valid(body, request.headers.get(SIGNATURE_HEADER), app_secret):
                span.set_attribute("http.response.status_code", 401)
                return _problem(401, f"missing or wrong {SIGNATURE_HEADER}")
            payload = _parse(body)
            if isinstance(payload, tuple):
                status_code, detail = payload
                span.set_attribute("http.response.status_code", status_code)
                return _problem(status_code, detail)
            foreign = payload.foreign_items(phone_number_id)
            if foreign:
                # A number of another office on the same Meta app, or a misconfiguration.
                log.warning(
                    "webhook items for phone number id(s) %s ignored (%d); this office's is %s",
                    sorted(foreign),
                    sum(foreign.values()),
                    phone_number_id,
                )
            try:
                appended = await record_webhook(store, payload, settings.key, phone_number_id)
            except Exception as e:  # noqa: BLE001 - whatever kept it from the store: Meta retries
                log.warning("webhook not stored (%s); answering 503", type(e).__name__)
                span.set_attribute("http.response.status_code", 503)
                return _problem(503, "could not store the webhook now; retry later")
            span.set_attribute("adminduk.webhook.appends", appended)
            span.set_attribute("http.response.status_code", 200)
            return JSONResponse({"status": "received"})

    app.webhook = receive_webhook
    add_health_check(app, store)
    return app
