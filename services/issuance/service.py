"""Issuance as the composition root sees it: the SIAK hand-off process, its consumers, its
work list's tables and what erasure scrubs in them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Final

import asyncpg

from shared.config import Settings
from shared.eventstore.migrations import MigrationSet
from shared.eventstore.store import EventStore
from shared.runtime.definition import Consumer, ErasureScope, ServiceDefinition, rows_touched

MIGRATIONS: Final = MigrationSet("issuance", "services.issuance.migrations")


async def _run(settings: Settings, stop: asyncio.Event) -> None:
    from services.issuance.main import run  # noqa: PLC0415 - the process's stack, when it starts

    await run(settings, stop)


@asynccontextmanager
async def _consumers(settings: Settings, store: EventStore) -> AsyncIterator[list[Consumer]]:
    from services.issuance.adapters.siak import HttpSiak  # noqa: PLC0415
    from services.issuance.main import build, consumers_of  # noqa: PLC0415

    siak = HttpSiak.from_settings(settings)
    try:
        yield consumers_of(build(settings, store, siak))
    finally:
        await siak.aclose()


async def _erase(connection: asyncpg.Connection, scope: ErasureScope) -> Mapping[str, int]:
    """SIAK's number of a KTP-el is the NIK: issuance's copy goes with the key."""
    documents = await connection.execute(
        "UPDATE issuance SET document_number = NULL "
        "WHERE ticket = ANY($1::text[]) AND document_number IS NOT NULL",
        list(scope.tickets),
    )
    return {"document number(s)": rows_touched(documents)}


DEFINITION: Final = ServiceDefinition(
    name="issuance",
    summary="schedules verified requests, hands them to SIAK, keeps the promised dates",
    run=_run,
    consumers=_consumers,
    reprocess_safe=frozenset({"issuance-schedule", "issuance-closed"}),
    migrations=MIGRATIONS,
    erase=_erase,
)
