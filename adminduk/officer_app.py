"""The officer web application: one FastAPI app, one authentication, every service's routes.

It runs in the verification process, the service that knows officers: its API and console
first, then the routers each other service's definition offers (integrations'
``/api/webhooks``), all behind the same bearer tokens and console sessions, and the same
mapping of errors to 401/403/404/409/422.
"""

from __future__ import annotations

import asyncio

from fastapi import FastAPI

from adminduk.services import SERVICES
from services.issuance.figures import PostgresIssuanceFigures
from services.notify.figures import PostgresDeliveryFigures
from services.verification import main as verification
from services.verification.adapters.api import Authenticator, install_error_handlers
from services.verification.adapters.guard import OfficerAppGuard
from services.verification.dashboard import Dashboard
from services.verification.handlers import Desk
from shared.config import Settings
from shared.eventstore.store import EventStore
from shared.runtime.definition import WebContext
from shared.runtime.service import add_health_check, serve_http


def create_app(settings: Settings, store: EventStore, desk: Desk) -> FastAPI:
    app = FastAPI(
        title="adminduk officer console and API",
        version="0.1.0",
        description="Verification of population-document requests by the office's officers.",
    )
    auth = Authenticator(
        desk,
        settings.bootstrap_token.get_secret_value() if settings.bootstrap_token else None,
    )
    install_error_handlers(app)
    # Throttled, authenticated and size-checked before any route reads a body.
    app.add_middleware(OfficerAppGuard, auth=auth)
    # The dashboard asks issuance and notify for what their tables know.
    dashboard = Dashboard.for_desk(
        desk,
        issuance=PostgresIssuanceFigures(store.pool),
        delivery=PostgresDeliveryFigures(store.pool),
    )
    api, console = verification.routers(desk, auth, settings, dashboard=dashboard)
    app.include_router(api)
    web = WebContext(settings=settings, store=store, authenticate=auth)
    for service in SERVICES:
        for router in service.routers(web) if service.routers is not None else ():
            app.include_router(router)
    app.include_router(console)
    add_health_check(app, store)
    return app


async def run(settings: Settings, stop: asyncio.Event) -> None:
    """The verification process: the service at work, and the officer web application."""
    async with verification.running(
        settings, issuance=PostgresIssuanceFigures, delivery=PostgresDeliveryFigures
    ) as service:
        await serve_http(
            create_app(settings, service.store, service.desk),
            settings.host,
            settings.console_port,
            stop,
        )
