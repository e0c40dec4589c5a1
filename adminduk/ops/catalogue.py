"""The consumers and projections the operators' tools can replay to or rebuild.

A consumer's handler is built here exactly as its service builds it: each service's
definition (``services/<name>/service.py``) says how to build its durable consumers with
their handlers on an event store, without the service's workers: notify's sender,
issuance's SIAK worker and the sweepers run in the services alone, so a handler run by a
tool can write what the service will act on, but never sends a WhatsApp message or calls
SIAK itself.

A projection is a read model written by one consumer whose handler is a pure projection:
it reads the log and writes its own tables, and appends no event, calls nothing over HTTP
and queues no message. Those can be applied again at will and rebuilt beside the live
tables (see :mod:`adminduk.ops.rebuild`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Final

from adminduk.services import PROJECTIONS, SERVICES
from shared.bus.consumer import ConsumerSpec
from shared.config import Settings
from shared.eventstore.store import EventStore
from shared.runtime.definition import Consumer, Projection, ServiceDefinition

__all__ = [
    "PROJECTIONS",
    "REPROCESS_SAFE",
    "Consumer",
    "Projection",
    "UnknownTargetError",
    "consumer",
    "consumer_specs",
    "projection",
    "service_of",
]

_WITH_CONSUMERS: Final[Mapping[str, ServiceDefinition]] = {
    service.name: service for service in SERVICES
}

REPROCESS_SAFE: Final = frozenset(name for service in SERVICES for name in service.reprocess_safe)
"""Consumers whose handler, run again on an event it handled, writes nothing new: their
events get deterministic ids and their other writes are guarded (position, version, state
machine, ``ON CONFLICT DO NOTHING``). The others decide from the current state and would
answer the citizen again (``intake-messages`` sees the request it made as a duplicate;
``verification-corrections`` and ``-cancellations`` see a request no longer waiting), so
``--reprocess`` refuses them; a plain replay still runs them on events they never handled."""


class UnknownTargetError(LookupError):
    """No consumer or projection of that name (the CLI answers with the known ones)."""


def service_of(consumer: str) -> ServiceDefinition:
    """The service a consumer belongs to, from its name (``notify-replies`` -> notify)."""
    service = _WITH_CONSUMERS.get(consumer.split("-", 1)[0])
    if service is None or "-" not in consumer:
        raise UnknownTargetError(
            f"no service has a consumer named {consumer!r}: consumer names start with "
            + ", ".join(f"{name}-" for name in _WITH_CONSUMERS)
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
async def consumer(name: str, settings: Settings, store: EventStore) -> AsyncIterator[Consumer]:
    """One consumer's spec and handler, built on ``store``."""
    service = service_of(name)
    async with service.consumers(settings, store) as consumers:
        for spec, handler in consumers:
            if spec.name == name:
                yield spec, handler
                return
        known = ", ".join(spec.name for spec, _ in consumers)
        raise UnknownTargetError(f"no consumer named {name!r}; {service.name} has {known}")


async def consumer_specs(settings: Settings, store: EventStore) -> list[ConsumerSpec]:
    """Every service's durable consumers (names and subjects), for listing them."""
    found: list[ConsumerSpec] = []
    for service in SERVICES:
        async with service.consumers(settings, store) as consumers:
            found.extend(spec for spec, _ in consumers)
    return found
