"""Intake as the composition root sees it: the webhook process, its consumers, the
citizen-facing status read model, its tables and what erasure scrubs in them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Final

import asyncpg

from shared.config import Settings
from shared.eventstore.migrations import MigrationSet
from shared.eventstore.store import EventStore
from shared.runtime.definition import (
    Consumer,
    ErasureScope,
    Projection,
    ServiceDefinition,
    rows_touched,
)

MIGRATIONS: Final = MigrationSet("intake", "services.intake.migrations")


async def _run(settings: Settings, stop: asyncio.Event) -> None:
    from services.intake.main import run  # noqa: PLC0415 - the process's stack, when it starts

    await run(settings, stop)


@asynccontextmanager
async def _consumers(settings: Settings, store: EventStore) -> AsyncIterator[list[Consumer]]:
    from services.intake.main import build, consumers_of  # noqa: PLC0415
    from shared.whatsapp.client import CloudApiClient  # noqa: PLC0415

    async with CloudApiClient.from_settings(settings) as cloud:
        yield consumers_of(build(settings, store, cloud))


async def _erase(connection: asyncpg.Connection, scope: ErasureScope) -> Mapping[str, int]:
    """Who each request is for (a keyed pseudonym) and a pending survey go with the key."""
    statuses = await connection.execute(
        "UPDATE request_status SET subject_key = NULL, survey_pending = false "
        "WHERE citizen = $1 AND (subject_key IS NOT NULL OR survey_pending)",
        scope.citizen,
    )
    return {"status row(s)": rows_touched(statuses)}


DEFINITION: Final = ServiceDefinition(
    name="intake",
    summary="the WhatsApp webhook; citizens' messages become requests, answers and #STATUS#",
    run=_run,
    consumers=_consumers,
    projections=(
        Projection(
            name="request_status",
            consumer="intake-request-status",
            tables=("request_status",),
            summary="each request's status as the citizen sees it (#STATUS#, duplicates)",
        ),
    ),
    reprocess_safe=frozenset({"intake-request-status"}),
    ready_url=lambda settings: f"http://{settings.local_host}:{settings.intake_port}/healthz",
    migrations=MIGRATIONS,
    erase=_erase,
)
