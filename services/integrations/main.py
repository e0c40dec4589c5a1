"""How the integrations process is built and run: public events for agencies, on NATS
subjects (the publisher) and as signed HTTP webhooks (the dispatcher), side by side.

Either part failing ends the process (the supervisor restarts it); a stop request stops
both. Several integrations processes may run: the publisher stands by behind a lock, the
webhook dispatchers share the subscribers through row locks.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Final

from services.integrations.destinations import Destinations
from services.integrations.log import PublicLog
from services.integrations.publisher import SETTLE, run_publisher
from services.integrations.service import MIGRATIONS
from services.integrations.webhooks import Dispatcher, RetryPolicy, http_client
from shared.config import Settings
from shared.eventstore.store import create_pool
from shared.runtime.service import open_store

WEBHOOK_CONCURRENCY: Final = 8
"""Subscribers served at the same time by one process; each holds a database connection
for its attempt, so a slow subscriber takes one slot and never holds up the rest."""


async def run_webhooks(settings: Settings, stop: asyncio.Event) -> None:
    """Migrate (this may be the first process up), then dispatch webhooks until ``stop``."""
    dsn = settings.database_dsn()
    async with open_store(settings, min_size=1, max_size=3, migrations=[MIGRATIONS]) as store:
        pool = await create_pool(dsn, min_size=1, max_size=WEBHOOK_CONCURRENCY + 1)
        try:
            destinations = Destinations.from_settings(settings)
            async with http_client(settings.webhook_timeout, destinations=destinations) as http:
                dispatcher = Dispatcher(
                    dsn,
                    pool,
                    PublicLog(store, settings.key),
                    http,
                    RetryPolicy.from_settings(settings),
                    timeout=settings.webhook_timeout,
                    poll_interval=settings.relay_poll_interval,
                    concurrency=WEBHOOK_CONCURRENCY,
                    settle=SETTLE,
                )
                await dispatcher.run(stop)
        finally:
            await pool.close()


async def run(settings: Settings, stop: asyncio.Event) -> None:
    parts = [
        asyncio.create_task(run_publisher(settings, stop), name="public-publisher"),
        asyncio.create_task(run_webhooks(settings, stop), name="webhook-dispatcher"),
    ]
    try:
        done, _ = await asyncio.wait(parts, return_when=asyncio.FIRST_COMPLETED)
        for part in done:
            # A part that returned before a stop request, or raised, ends the process.
            part.result()
        if not stop.is_set():
            raise RuntimeError(f"{next(iter(done)).get_name()} ended without a stop request")
    finally:
        stop.set()
        for part in parts:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(part, 10)
