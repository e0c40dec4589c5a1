"""Notify as the composition root sees it: the sending process, its consumers, the outbox's
tables and what erasure scrubs in them."""

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

MIGRATIONS: Final = MigrationSet("notify", "services.notify.migrations")

ERASED_TEXT: Final = "data telah dihapus"
"""What an erased citizen's outbox messages say instead of their text."""


async def _run(settings: Settings, stop: asyncio.Event) -> None:
    from services.notify.main import run  # noqa: PLC0415 - the process's stack, when it starts

    await run(settings, stop)


@asynccontextmanager
async def _consumers(settings: Settings, store: EventStore) -> AsyncIterator[list[Consumer]]:
    from services.notify.main import build, consumers_of  # noqa: PLC0415
    from shared.whatsapp.client import CloudApiClient  # noqa: PLC0415

    async with CloudApiClient.from_settings(settings) as cloud:
        yield consumers_of(build(settings, store, cloud))


async def _erase(connection: asyncpg.Connection, scope: ErasureScope) -> Mapping[str, int]:
    """The outbox keeps each message's text and number in clear; the 24-hour window's
    contact row names the citizen's number. Messages not yet sent are given up."""
    outbox = await connection.execute(
        """
        UPDATE notification_outbox
        SET message = jsonb_build_object('to', '', 'kind', kind, 'text', $2::text,
                                         'ticket', ticket),
            state = CASE WHEN state IN ('queued', 'sending') THEN 'failed' ELSE state END,
            reason = CASE WHEN state IN ('queued', 'sending') THEN 'data dihapus'
                          ELSE reason END,
            leased_until = NULL, updated_at = now()
        WHERE recipient = $1 AND message->>'text' IS DISTINCT FROM $2::text
        """,
        scope.citizen,
        ERASED_TEXT,
    )
    contacts = await connection.execute(
        "DELETE FROM whatsapp_contact WHERE recipient = $1", scope.citizen
    )
    return {"outbox message(s)": rows_touched(outbox), "contact row(s)": rows_touched(contacts)}


DEFINITION: Final = ServiceDefinition(
    name="notify",
    summary="every message to a citizen: templates, pacing, retries, delivery statuses",
    run=_run,
    consumers=_consumers,
    reprocess_safe=frozenset({"notify-replies", "notify-statuses"}),
    migrations=MIGRATIONS,
    erase=_erase,
)
