"""The WhatsApp Cloud API webhook (HTTP side of the intake service)."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import FastAPI, Query, Response, status
from fastapi.responses import PlainTextResponse

from shared.config import Settings
from shared.eventstore.store import EventStore


def create_app(settings: Settings, store: EventStore) -> FastAPI:
    app = FastAPI(
        title="adminduk intake",
        description="WhatsApp Cloud API webhook of the civil-registry office",
        version="0.1.0",
    )
    verify_token = settings.whatsapp_verify_token.get_secret_value().encode()

    @app.get("/webhook/whatsapp", response_class=PlainTextResponse)
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

    @app.get("/healthz")
    async def health() -> Response:
        """Ready when the event store answers."""
        try:
            await store.last_position()
        except Exception:  # noqa: BLE001 - health reports, it does not raise
            return PlainTextResponse("event store unavailable", status_code=503)
        return PlainTextResponse("ok")

    return app
