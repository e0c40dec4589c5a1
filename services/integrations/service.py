"""Integrations as the composition root sees it: the public-event publisher and the webhook
dispatcher (one process), the subscriptions' tables, and ``/api/webhooks`` for the officer
web application."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING, Final

from shared.config import Settings
from shared.eventstore.migrations import MigrationSet
from shared.runtime.definition import ServiceDefinition, WebContext

if TYPE_CHECKING:
    from fastapi import APIRouter

MIGRATIONS: Final = MigrationSet("integrations", "services.integrations.migrations")


async def _run(settings: Settings, stop: asyncio.Event) -> None:
    from services.integrations.main import run  # noqa: PLC0415 - the process's stack

    await run(settings, stop)


def _routers(web: WebContext) -> Sequence[APIRouter]:
    from services.integrations.api import webhooks_router  # noqa: PLC0415
    from services.integrations.destinations import Destinations  # noqa: PLC0415

    destinations = Destinations.from_settings(web.settings)
    return [webhooks_router(web.store.pool, web.authenticate, destinations)]


DEFINITION: Final = ServiceDefinition(
    name="integrations",
    summary="public events for other agencies: the NATS stream and signed webhooks",
    run=_run,
    migrations=MIGRATIONS,
    routers=_routers,
)
