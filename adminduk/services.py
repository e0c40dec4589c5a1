"""The list of services: each one's definition, in the order the system starts them.

This is the one place that names every service. The supervisor starts a process for each
definition that has one, ``adminduk serve NAME`` runs it, the migration runner applies
their schemas in this order, the operators' tools find consumers and projections here, and
erasure asks each one to scrub its own tables.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import replace
from typing import Final

from services.intake.service import DEFINITION as INTAKE
from services.integrations.service import DEFINITION as INTEGRATIONS
from services.issuance.service import DEFINITION as ISSUANCE
from services.notify.service import DEFINITION as NOTIFY
from services.verification.service import DEFINITION as VERIFICATION
from shared.config import Settings
from shared.eventstore.migrations import MigrationSet
from shared.runtime.definition import Projection, ServiceDefinition


async def _run_relay(settings: Settings, stop: asyncio.Event) -> None:
    from shared.bus.relay import run_relay  # noqa: PLC0415 - the process's stack

    await run_relay(settings, stop)


async def _run_verification(settings: Settings, stop: asyncio.Event) -> None:
    from adminduk.officer_app import run  # noqa: PLC0415 - the process's stack

    await run(settings, stop)


async def _run_simulator(settings: Settings, stop: asyncio.Event) -> None:
    # The fake Cloud API accepts the templates this office registers, under its names.
    from services.notify.domain.templates import by_name  # noqa: PLC0415
    from services.simulator.main import run  # noqa: PLC0415

    await run(settings, stop, templates=by_name(settings.whatsapp_templates))


RELAY: Final = ServiceDefinition(
    name="relay",
    summary="publishes the event store's new events to NATS JetStream, in order",
    run=_run_relay,
)
SIMULATOR: Final = ServiceDefinition(
    name="simulator",
    summary="a stand-in for the WhatsApp Cloud API and a chat page (development, tests)",
    ready_url=lambda settings: f"http://{settings.local_host}:{settings.simulator_port}/",
    run=_run_simulator,
    development_only=True,
)

SERVICES: Final[tuple[ServiceDefinition, ...]] = (
    INTAKE,
    replace(VERIFICATION, run=_run_verification),
    ISSUANCE,
    NOTIFY,
    INTEGRATIONS,
)
"""adminduk's services; each consumer's name starts with its service's name."""

PROCESSES: Final[tuple[ServiceDefinition, ...]] = (
    RELAY,
    *(service for service in SERVICES if service.run is not None),
)
"""What ``adminduk run`` starts (the simulator too, when it stands in for the Cloud API)."""

CONSUMING: Final[tuple[str, ...]] = tuple(
    service.name for service in SERVICES if service.run is not None
)
"""The processes that share their work as competing consumers: ``ADMINDUK_REPLICAS=N``
(or ``adminduk run --replicas N``) runs N of each."""

REPLICABLE: Final[frozenset[str]] = frozenset({RELAY.name, *CONSUMING})
"""What ``ADMINDUK_REPLICAS`` may name: the consuming services, and the relay (its extra
replicas are standbys: one session advisory lock lets a single relay publish). The
simulator keeps its conversations in memory and runs once."""

BY_NAME: Final[Mapping[str, ServiceDefinition]] = {
    definition.name: definition for definition in (*PROCESSES, SIMULATOR)
}

MIGRATIONS: Final[tuple[MigrationSet, ...]] = tuple(
    service.migrations for service in SERVICES if service.migrations is not None
)
"""Every service's schema, applied after the platform's in this order."""

PROJECTIONS: Final[Mapping[str, Projection]] = {
    projection.name: projection for service in SERVICES for projection in service.projections
}
