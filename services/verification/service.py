"""Verification as the composition root sees it: the automatic checks, the officers' queue
and its read models, their tables and what erasure scrubs in them.

Its process also serves the officer web application, which the composition root assembles
(``adminduk/officer_app.py``: this service's API and console, and the routers of the other
services behind the same authentication); so :data:`DEFINITION` has no ``run`` of its own.
"""

from __future__ import annotations

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

MIGRATIONS: Final = MigrationSet("verification", "services.verification.migrations")


@asynccontextmanager
async def _consumers(settings: Settings, store: EventStore) -> AsyncIterator[list[Consumer]]:
    from services.verification.main import build, consumers_of  # noqa: PLC0415

    verification, _desk = build(settings, store)
    yield consumers_of(verification)


async def _erase(connection: asyncpg.Connection, scope: ErasureScope) -> Mapping[str, int]:
    """The queue keeps a keyed pseudonym of who each request is for (to find duplicates)."""
    queue = await connection.execute(
        "UPDATE verification_requests SET subject_key = NULL "
        "WHERE ticket = ANY($1::text[]) AND subject_key IS NOT NULL",
        list(scope.tickets),
    )
    return {"queue row(s)": rows_touched(queue)}


DEFINITION: Final = ServiceDefinition(
    name="verification",
    summary="automatic checks, the officers' queue, decisions, complaints, the console",
    consumers=_consumers,
    projections=(
        Projection(
            name="verification",
            consumer="verification-read-models",
            tables=("verification_requests", "complaints"),
            summary="the officers' queue and the complaints list",
        ),
    ),
    reprocess_safe=frozenset({"verification-checks", "verification-read-models"}),
    # The process serves the officer web application on the console port.
    ready_url=lambda settings: f"http://{settings.local_host}:{settings.console_port}/healthz",
    migrations=MIGRATIONS,
    erase=_erase,
)
