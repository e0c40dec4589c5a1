"""What a service tells the composition root about itself, in one value.

Each service module ``services/<name>/service.py`` exposes a :class:`ServiceDefinition`;
the composition root (``adminduk/``) keeps the list of them and loops over it: to start the
processes, migrate the schema, build consumers for the operators' tools, rebuild
projections, erase a citizen, and mount routers in the officer web application. No code
anywhere says "if the service is intake, then ...".

This module belongs to the platform: it names no service.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import asyncpg

from shared.config import Environment, Settings
from shared.eventstore.migrations import MigrationSet

if TYPE_CHECKING:
    from fastapi import APIRouter

    from shared.access import Authenticate
    from shared.bus.consumer import ConsumerSpec, Handler
    from shared.eventstore.store import EventStore

# Names in quotes: a definition is read by every command of the CLI, which should not pay
# for the consumer framework's imports (FastStream) unless it builds consumers.
Consumer = tuple["ConsumerSpec", "Handler"]

ProcessMain = Callable[[Settings, asyncio.Event], Awaitable[None]]
"""A process's body: runs until the stop event is set (see ``shared.runtime.service``)."""

ConsumersOf = Callable[[Settings, "EventStore"], AbstractAsyncContextManager[list[Consumer]]]
"""The service's durable consumers with handlers built on ``store`` exactly as the service
builds them, without its workers (no sender, no SIAK worker, no sweeper): what the
operators' tools replay to. Clients the handlers hold are closed on exit."""


@dataclass(frozen=True)
class Projection:
    """A read model: its tables and the consumer whose handler writes them. The handler is a
    pure projection (it reads the log and writes its own tables, appends no event, calls
    nothing), so it can be applied again at will and rebuilt beside the live tables."""

    name: str
    consumer: str
    tables: tuple[str, ...]
    summary: str


@dataclass(frozen=True)
class ErasureScope:
    """Whose personal data to scrub: the citizen's WhatsApp id and their requests' tickets."""

    citizen: str
    tickets: tuple[str, ...]


ErasureHook = Callable[[asyncpg.Connection, ErasureScope], Awaitable[Mapping[str, int]]]
"""Scrubs what the service's own tables hold in clear about a citizen, on the connection of
the erasure's transaction; returns counts by a stable label (shown by the command). Run
again, it finds nothing left and returns zeros."""


@dataclass(frozen=True)
class WebContext:
    """What a service's routers get from the officer web application: the settings, the event
    store's pool, and the one officer authentication every router shares."""

    settings: Settings
    store: EventStore
    authenticate: Authenticate


RoutersOf = Callable[[WebContext], "Sequence[APIRouter]"]


@asynccontextmanager
async def no_consumers(_settings: Settings, _store: EventStore) -> AsyncIterator[list[Consumer]]:
    """For a service without durable consumers."""
    yield []


@dataclass(frozen=True)
class ServiceDefinition:
    """One service, as the composition root sees it."""

    name: str
    summary: str
    run: ProcessMain | None = None
    """The process's body; None for a service that runs no process of its own."""
    consumers: ConsumersOf = no_consumers
    projections: tuple[Projection, ...] = ()
    reprocess_safe: frozenset[str] = frozenset()
    """Consumers whose handler, run again on an event it handled, writes nothing new (their
    events get deterministic ids and their other writes are guarded), so an operator may
    ``--reprocess`` them. The others would answer a citizen again."""
    migrations: MigrationSet | None = None
    erase: ErasureHook | None = None
    routers: RoutersOf | None = None
    """Routers mounted in the officer web application, behind its authentication."""
    ready_url: Callable[[Settings], str] | None = None
    """For a process that serves HTTP: the local URL that answers 200 once it serves (the
    supervisor prints the system's URLs only then)."""
    development_only: bool = False
    """A stand-in for something outside (the WhatsApp and SIAK simulator): never run with
    ``ADMINDUK_ENVIRONMENT=production``, whoever asks (see :func:`refuse_in_production`)."""


class DevelopmentOnlyError(RuntimeError):
    """A development-only process was asked to run in production."""


def refuse_in_production(definition: ServiceDefinition, settings: Settings) -> None:
    """Raise :class:`DevelopmentOnlyError` for a development-only process in production: a
    simulator there would sign webhooks with the real app secret and receive the real
    access token, on endpoints without authentication."""
    if definition.development_only and settings.environment is Environment.PRODUCTION:
        raise DevelopmentOnlyError(
            f"the {definition.name} is for development only and never runs with "
            "ADMINDUK_ENVIRONMENT=production (set WHATSAPP_API_BASE_URL and ADMINDUK_SIAK_URL)"
        )


def rows_touched(status: str) -> int:
    """Rows an UPDATE or DELETE touched, from its command status (``UPDATE 3``)."""
    return int(status.rsplit(maxsplit=1)[-1])
