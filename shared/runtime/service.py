"""What every service process does at start and stop, in one place.

``adminduk serve NAME`` calls :func:`run_service` with the body of a service's process (its
definition's ``run``: an async function of the settings and a stop event); the body opens
what it shares among its parts with :func:`open_resources` or :func:`open_store`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass

import uvicorn
from fastapi import FastAPI
from fastapi.responses import PlainTextResponse
from faststream.nats import NatsBroker
from faststream.nats.opentelemetry import NatsTelemetryMiddleware
from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext

from shared.bus import jetstream as js
from shared.bus.consumer import Consumers
from shared.config import Settings, load_settings
from shared.eventstore.migrations import MigrationSet, migrate
from shared.eventstore.store import EventStore
from shared.keyring import Sealer
from shared.logging import setup_logging
from shared.telemetry import setup_telemetry

log = logging.getLogger(__name__)


@dataclass
class Resources:
    """Connections a service shares among its parts; created and closed by the runtime."""

    settings: Settings
    store: EventStore
    nats: NatsClient
    jetstream: JetStreamContext
    consumers: Consumers


@contextlib.asynccontextmanager
async def open_store(
    settings: Settings,
    *,
    min_size: int = 2,
    max_size: int | None = None,
    migrations: Sequence[MigrationSet] = (),
) -> AsyncIterator[EventStore]:
    """The event store as every process opens it: the platform's schema and the process's
    own ``migrations`` applied (this may be the first process up), personal fields sealed
    and opened with the citizens' keys."""
    store = await EventStore.connect(
        settings.database_dsn(),
        min_size=min_size,
        max_size=max_size or settings.db_pool_size,
        sealer=Sealer.from_settings(settings),
    )
    try:
        async with store.pool.acquire() as connection:
            await migrate(connection, migrations)  # type: ignore[arg-type]
        yield store
    finally:
        await store.close()


@contextlib.asynccontextmanager
async def open_resources(
    name: str, settings: Settings, *, migrations: Sequence[MigrationSet] = ()
) -> AsyncIterator[Resources]:
    async with open_store(settings, migrations=migrations) as store:
        nc = await js.connect(settings.nats_url, name=f"adminduk-{name}")
        try:
            jetstream = nc.jetstream()
            await js.ensure_stream(
                jetstream, settings.nats_duplicate_window, settings.nats_stream_max_age
            )
            broker = NatsBroker(
                settings.nats_url,
                middlewares=[NatsTelemetryMiddleware()],
                # Our logger, not FastStream's own: its records then pass our handler and
                # its personal-data filter.
                logger=logging.getLogger("adminduk.broker"),
                log_level=logging.DEBUG,
                graceful_timeout=10.0,
            )
            consumers = Consumers(broker, store)
            try:
                yield Resources(settings, store, nc, jetstream, consumers)
            finally:
                await consumers.stop()
        finally:
            await nc.drain()


async def serve_http(app: object, host: str, port: int, stop: asyncio.Event) -> None:
    """Serve an ASGI app until ``stop`` is set, then finish open requests."""
    config = uvicorn.Config(
        app,  # type: ignore[arg-type]
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=10,
    )
    server = uvicorn.Server(config)
    # The service owns signal handling; uvicorn must not install its own handlers.
    server.install_signal_handlers = lambda: None  # type: ignore[attr-defined]
    serving = asyncio.create_task(server.serve())
    stopping = asyncio.create_task(stop.wait())
    await asyncio.wait({serving, stopping}, return_when=asyncio.FIRST_COMPLETED)
    server.should_exit = True
    stopping.cancel()
    await serving


def add_health_check(app: FastAPI, store: EventStore) -> None:
    """``GET /healthz``: 200 when the event store answers, 503 when it does not."""

    @app.get("/healthz")
    async def health() -> PlainTextResponse:
        try:
            await store.last_position()
        except Exception:  # noqa: BLE001 - health reports, it does not raise
            return PlainTextResponse("event store unavailable", status_code=503)
        return PlainTextResponse("ok")


ServiceMain = Callable[[Settings, asyncio.Event], Awaitable[None]]

STOP_DEADLINE = 8.0
"""Seconds a service may take to stop; the supervisor waits a little longer than this."""


def _exit_now(name: str) -> None:
    log.error("%s did not stop within %.0fs; exiting now", name, STOP_DEADLINE)
    logging.shutdown()
    os._exit(70)


def run_service(name: str, main: ServiceMain) -> None:
    """Run ``main`` until SIGTERM or SIGINT; set up logging and tracing around it."""
    settings = load_settings()
    setup_logging(name)
    telemetry = setup_telemetry(name, settings.data_dir)

    async def runner() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()

        def request_stop() -> None:
            if not stop.is_set():
                stop.set()
                # A graceful stop can hang when NATS or Postgres vanished at the same time
                # (the supervisor was killed, say); never outlive the deadline.
                loop.call_later(STOP_DEADLINE, _exit_now, name)

        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, request_stop)
        await main(settings, stop)

    try:
        asyncio.run(runner())
        log.info("%s stopped", name)
    finally:
        telemetry.shutdown()
