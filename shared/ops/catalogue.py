"""The consumers and projections the operators' tools can replay to or rebuild.

A consumer's handler is built here exactly as its service builds it: each service's
``main.py`` has ``build(...)`` (its handler object from settings and the event store) and
``consumers_of(...)`` (its durable consumers with their handlers), called by the service at
start-up and by the tools. Only the handlers are built in a tool process, never a service's
workers: notify's sender, issuance's SIAK worker and the sweepers run in the services alone,
so a handler run by a tool can write what the service will act on, but never sends a
WhatsApp message or calls SIAK itself.

A projection is a read model written by one consumer whose handler is a pure projection:
it reads the log and writes its own tables, and appends no event, calls nothing over HTTP
and queues no message. Those can be applied again at will and rebuilt beside the live
tables (see :mod:`shared.ops.rebuild`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Final

from shared.bus.consumer import ConsumerSpec, Handler
from shared.config import Settings
from shared.eventstore.store import EventStore

SERVICES: Final = ("intake", "verification", "issuance", "notify")
"""Services with durable consumers; a consumer's name starts with its service's name."""

Consumer = tuple[ConsumerSpec, Handler]


class UnknownTargetError(LookupError):
    """No consumer or projection of that name (the CLI answers with the known ones)."""


@dataclass(frozen=True)
class Projection:
    """A read model: its tables and the consumer whose handler writes them."""

    name: str
    consumer: str
    tables: tuple[str, ...]
    summary: str


PROJECTIONS: Final[Mapping[str, Projection]] = {
    "request_status": Projection(
        name="request_status",
        consumer="intake-request-status",
        tables=("request_status",),
        summary="each request's status as the citizen sees it (#STATUS#, duplicates)",
    ),
    "verification": Projection(
        name="verification",
        consumer="verification-read-models",
        tables=("verification_requests", "complaints"),
        summary="the officers' queue and the complaints list",
    ),
}

REPROCESS_SAFE: Final = frozenset(
    {
        "intake-request-status",
        "verification-checks",
        "verification-read-models",
        "issuance-schedule",
        "issuance-closed",
        "notify-replies",
        "notify-statuses",
    }
)
"""Consumers whose handler, run again on an event it handled, writes nothing new: their
events get deterministic ids and their other writes are guarded (position, version, state
machine, ``ON CONFLICT DO NOTHING``). The others decide from the current state and would
answer the citizen again (``intake-messages`` sees the request it made as a duplicate;
``verification-corrections`` and ``-cancellations`` see a request no longer waiting), so
``--reprocess`` refuses them; a plain replay still runs them on events they never handled."""


def service_of(consumer: str) -> str:
    """The service a consumer belongs to, from its name (``notify-replies`` -> ``notify``)."""
    service = consumer.split("-", 1)[0]
    if service not in SERVICES or "-" not in consumer:
        raise UnknownTargetError(
            f"no service has a consumer named {consumer!r}: consumer names start with "
            + ", ".join(f"{name}-" for name in SERVICES)
        )
    return service


def projection(name: str) -> Projection:
    try:
        return PROJECTIONS[name]
    except KeyError:
        raise UnknownTargetError(
            f"no projection named {name!r}; known: {', '.join(sorted(PROJECTIONS))}"
        ) from None


@asynccontextmanager
async def service_consumers(
    service: str, settings: Settings, store: EventStore
) -> AsyncIterator[list[Consumer]]:
    """The service's consumers with handlers built by its own ``main.py`` on ``store``;
    the clients they hold are closed on exit."""
    # Imported here: a service's composition root pulls in its whole stack, and the CLI
    # should start quickly for the commands that need none of it.
    if service == "intake":
        from services.intake import main as intake  # noqa: PLC0415
        from shared.whatsapp.client import CloudApiClient  # noqa: PLC0415

        cloud = CloudApiClient.from_settings(settings)
        try:
            yield intake.consumers_of(intake.build(settings, store, cloud))
        finally:
            await cloud.close()
    elif service == "verification":
        from services.verification import main as verification  # noqa: PLC0415

        handlers, _desk = verification.build(settings, store)
        yield verification.consumers_of(handlers)
    elif service == "issuance":
        from services.issuance import main as issuance  # noqa: PLC0415
        from services.issuance.adapters.siak import HttpSiak  # noqa: PLC0415

        siak = HttpSiak.from_settings(settings)
        try:
            yield issuance.consumers_of(issuance.build(settings, store, siak))
        finally:
            await siak.aclose()
    elif service == "notify":
        from services.notify import main as notify  # noqa: PLC0415
        from shared.whatsapp.client import CloudApiClient  # noqa: PLC0415

        cloud = CloudApiClient.from_settings(settings)
        try:
            yield notify.consumers_of(notify.build(settings, store, cloud))
        finally:
            await cloud.close()
    else:
        raise UnknownTargetError(f"no service named {service!r}")


@asynccontextmanager
async def consumer(name: str, settings: Settings, store: EventStore) -> AsyncIterator[Consumer]:
    """One consumer's spec and handler, built on ``store``."""
    async with service_consumers(service_of(name), settings, store) as consumers:
        for spec, handler in consumers:
            if spec.name == name:
                yield spec, handler
                return
        known = ", ".join(spec.name for spec, _ in consumers)
        raise UnknownTargetError(f"no consumer named {name!r}; {service_of(name)} has {known}")


async def consumer_specs(settings: Settings, store: EventStore) -> list[ConsumerSpec]:
    """Every service's durable consumers (names and subjects), for listing them."""
    found: list[ConsumerSpec] = []
    for service in SERVICES:
        async with service_consumers(service, settings, store) as consumers:
            found.extend(spec for spec, _ in consumers)
    return found
