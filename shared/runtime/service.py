"""What every service process does at start and stop, in one place.

``adminduk serve NAME`` calls :func:`run_service` with the body of a service's process (its
definition's ``run``: an async function of the settings and a stop event); the body opens
what it shares among its parts with :func:`open_resources` or :func:`open_store`.

Every process runs on uvloop and its HTTP servers parse with httptools, when both are
importable (``ADMINDUK_UVLOOP=false`` turns uvloop off, for a bug hunt). A process that is
one of several replicas of its service (``ADMINDUK_REPLICA`` set) shares its HTTP port with
the others through ``SO_REUSEPORT``.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import gc
import importlib.util
import logging
import os
import signal
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Final

import uvicorn
from fastapi import FastAPI
from fastapi.responses import PlainTextResponse
from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext

from shared.bus import jetstream as js
from shared.bus.consumer import Consumers
from shared.config import Settings, load_settings
from shared.eventstore.migrations import MigrationSet, migrate
from shared.eventstore.store import EventStore
from shared.keyring import Sealer
from shared.logging import setup_logging
from shared.runtime.processes import listening_socket
from shared.telemetry import setup_telemetry

log = logging.getLogger(__name__)

GC_THRESHOLDS: Final = (10_000, 20, 20)
"""Allocations before a young collection (Python's default is 700), and the rounds before
an older one: a service allocates in bursts of short-lived objects per message."""

KEEP_ALIVE: Final = 75
"""Seconds an idle client connection is kept open. Longer than clients and proxies keep
theirs (httpx 5 s, nginx 75 s, load balancers about 60 s), so the client closes first: a
server closing at the moment a client reuses the connection resets a request in flight
(uvicorn's default of 5 s equals httpx's: the likely cause of a benchmark webhook that
ended in a connection reset)."""
HTTP_PARSER: Final = "httptools" if importlib.util.find_spec("httptools") else "h11"
"""uvicorn's HTTP implementation: the C parser, else the pure-Python one."""

LoopFactory = Callable[[], asyncio.AbstractEventLoop]

_shares_ports: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "adminduk_shares_ports", default=False
)
"""Whether this process's HTTP servers share their ports with its replicas (set by
:func:`run_service`, read by :func:`serve_http`)."""


def loop_factory(use_uvloop: bool = True) -> LoopFactory | None:
    """uvloop's event loop when wanted and installed; None means asyncio's own."""
    if not use_uvloop:
        return None
    try:
        import uvloop  # noqa: PLC0415 - optional at run time: asyncio's loop is the fallback
    except ImportError:
        log.warning("uvloop is not installed; running on asyncio's event loop")
        return None
    return uvloop.new_event_loop


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
            consumers = Consumers(store)
            try:
                yield Resources(settings, store, nc, jetstream, consumers)
            finally:
                await consumers.stop()
        finally:
            await nc.drain()


def _loop_name(loop: asyncio.AbstractEventLoop) -> str:
    return "uvloop" if type(loop).__module__.startswith("uvloop") else "asyncio"


async def serve_http(
    app: object, host: str, port: int, stop: asyncio.Event, *, reuse_port: bool | None = None
) -> None:
    """Serve an ASGI app until ``stop`` is set, then finish open requests.

    ``reuse_port`` (default: whether this process is one of its service's replicas) binds
    the port with ``SO_REUSEPORT``, so the replicas listen on it together."""
    config = uvicorn.Config(
        app,  # type: ignore[arg-type]
        host=host,
        port=port,
        http=HTTP_PARSER,
        # The loop is already running (run_service chose it); uvicorn only records this.
        loop=_loop_name(asyncio.get_running_loop()),
        # Nothing per request: no access log, no uvicorn logging set-up.
        log_config=None,
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=10,
        timeout_keep_alive=KEEP_ALIVE,
    )
    server = uvicorn.Server(config)
    # The service owns signal handling; uvicorn must not install its own handlers.
    server.install_signal_handlers = lambda: None  # type: ignore[attr-defined]
    shared = _shares_ports.get() if reuse_port is None else reuse_port
    try:
        sock = listening_socket(host, port, reuse_port=shared)
    except OSError as error:
        log.error("cannot listen on %s:%d: %s", host, port, error)
        raise
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    stopping = asyncio.create_task(stop.wait())
    await asyncio.wait({serving, stopping}, return_when=asyncio.FIRST_COMPLETED)
    server.should_exit = True
    stopping.cancel()
    try:
        await serving
    finally:
        sock.close()


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


def _report_as_replica(service: str, process: str) -> None:
    """Telemetry of one replica: its own span and metric files (``notify-2.jsonl``; a file
    has one writer, the one that rotates it), under its service's name, told apart by
    ``service.instance.id``. Through the standard variables, which the SDK reads."""
    os.environ.setdefault("OTEL_SERVICE_NAME", f"adminduk-{service}")
    attributes = os.environ.get("OTEL_RESOURCE_ATTRIBUTES", "").strip().strip(",")
    instance = f"service.instance.id={process}"
    os.environ["OTEL_RESOURCE_ATTRIBUTES"] = f"{attributes},{instance}" if attributes else instance


def _settle_garbage_collector() -> None:
    """What start-up made (modules, settings, templates, the registry) lives as long as the
    process: frozen out of the collector's scans, and young objects collected less often.
    py-spy put 5-7 % of a busy service's CPU in the collector before."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def run_service(name: str, main: ServiceMain) -> None:
    """Run ``main`` until SIGTERM or SIGINT, on uvloop; set up logging and tracing around
    it. The process is named after its replica (``notify-2``) in its log lines."""
    settings = load_settings()
    process = settings.process_name(name)
    setup_logging(process)
    if settings.replica is not None:
        _report_as_replica(name, process)
    telemetry = setup_telemetry(process, settings.data_dir)
    factory = loop_factory(settings.uvloop)

    async def runner() -> None:
        _shares_ports.set(settings.replica is not None)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()

        def request_stop() -> None:
            if not stop.is_set():
                stop.set()
                # A graceful stop can hang when NATS or Postgres vanished at the same time
                # (the supervisor was killed, say); never outlive the deadline.
                loop.call_later(STOP_DEADLINE, _exit_now, process)

        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, request_stop)
        await main(settings, stop)

    log.info("%s starting on %s", process, "asyncio's loop" if factory is None else "uvloop")
    _settle_garbage_collector()
    try:
        with asyncio.Runner(loop_factory=factory) as loop_runner:
            loop_runner.run(runner())
        log.info("%s stopped", process)
    finally:
        telemetry.shutdown()
