"""The verification service's parts: the automatic checks, the officers' queue and its read
models, the sweeper, and the routers of the officer API and console. The process that runs
them also serves the officer web application, assembled by the composition root
(``adminduk/officer_app.py``)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import asyncpg
from fastapi import APIRouter

from services.verification.adapters.api import Authenticator, api_router
from services.verification.adapters.postgres import Officers
from services.verification.console import console_router
from services.verification.dashboard import Dashboard, DashboardMetrics
from services.verification.domain.checks import CheckPolicy
from services.verification.handlers import Desk, Verification
from services.verification.service import MIGRATIONS
from shared.bus.consumer import Bulk, Consumers, ConsumerSpec, Handler
from shared.bus.jetstream import subject_filter
from shared.calendar import OfficeHours, WorkingCalendar
from shared.config import Settings
from shared.eventstore.store import EventStore
from shared.figures import DeliveryFigures, IssuanceFigures
from shared.identity import OfficeArea
from shared.mediastore import FileMediaStore
from shared.runtime.rounds import report_failed_round
from shared.runtime.service import open_resources

log = logging.getLogger(__name__)


def calendar_from(settings: Settings) -> WorkingCalendar:
    return WorkingCalendar(OfficeHours.parse(settings.office_hours, settings.office_days))


def build(
    settings: Settings, store: EventStore, *, delivery: DeliveryFigures | None = None
) -> tuple[Verification, Desk]:
    area = OfficeArea(settings.office_region)
    verification = Verification(
        store=store,
        policy=CheckPolicy(area=area, papers_grace=settings.papers_grace),
        key=settings.key,
        claim_idle=settings.claim_idle,
    )
    desk = Desk(
        store=store,
        officers=Officers(store.pool),
        verification=verification,
        calendar=calendar_from(settings),
        media=FileMediaStore(settings.data_dir / "media"),
        area=area,
        delivery=delivery,
    )
    return verification, desk


def routers(
    desk: Desk, auth: Authenticator, settings: Settings, *, dashboard: Dashboard
) -> tuple[APIRouter, APIRouter]:
    """The officer JSON API and the console, for the officer web application that the
    composition root assembles around this service's authentication. ``dashboard`` is
    what their dashboard pages read: :meth:`Dashboard.for_desk` with issuance's and
    notify's figures, which the composition root makes (verification imports neither)."""
    return (
        api_router(desk, auth, dashboard=dashboard),
        console_router(desk, auth, settings, dashboard=dashboard),
    )


async def _sweep_forever(verification: Verification, interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        try:
            await verification.sweep()
        except Exception as error:  # noqa: BLE001 - reported; the loop goes on
            report_failed_round(log, "verification sweep", error)


def consumers_of(verification: Verification) -> list[tuple[ConsumerSpec, Handler]]:
    """Verification's durable consumers and their handlers (the replay tools use them too)."""
    return [
        (
            ConsumerSpec(
                name="verification-checks",
                subjects=[
                    subject_filter("request", "RequestReceived"),
                    subject_filter("request", "AttachmentAdded"),
                    subject_filter("request", "RequestAmended"),
                ],
            ),
            verification.on_request_event,
        ),
        (
            ConsumerSpec(
                name="verification-corrections",
                subjects=[subject_filter("citizen", "CorrectionSubmitted")],
            ),
            verification.on_correction,
        ),
        (
            ConsumerSpec(
                name="verification-cancellations",
                subjects=[subject_filter("citizen", "CancellationRequested")],
            ),
            verification.on_cancellation,
        ),
        (
            ConsumerSpec(
                name="verification-read-models",
                subjects=[subject_filter("request", "*"), subject_filter("complaint", "*")],
                batch_size=64,
                # One transaction per batch: the batch's streams are read with one
                # statement on its own connection (never a second one from the pool).
                batch_transaction=True,
            ),
            Bulk(verification.project, verification.project_many),
        ),
    ]


def register_consumers(consumers: Consumers, verification: Verification) -> None:
    for spec, handler in consumers_of(verification):
        consumers.register(spec, handler)


@dataclass(frozen=True)
class Running:
    """The verification service at work in this process: its consumers, sweeper and the
    dashboard's gauges run until the context exits."""

    store: EventStore
    verification: Verification
    desk: Desk


@contextlib.asynccontextmanager
async def running(
    settings: Settings,
    *,
    issuance: Callable[[asyncpg.Pool], IssuanceFigures],
    delivery: Callable[[asyncpg.Pool], DeliveryFigures],
) -> AsyncIterator[Running]:
    """Start the service's consumers, sweeper and gauges; stop them on exit. The process
    serves the officer web application meanwhile (``adminduk/officer_app.py``).

    ``issuance`` and ``delivery`` make, on the service's database pool, the other services'
    answers the dashboard's gauges need (the composition root passes
    ``services.issuance.figures.PostgresIssuanceFigures`` and
    ``services.notify.figures.PostgresDeliveryFigures``: verification imports neither)."""
    async with open_resources("verification", settings, migrations=[MIGRATIONS]) as resources:
        pool = resources.store.pool
        deliveries = delivery(pool)
        verification, desk = build(settings, resources.store, delivery=deliveries)
        register_consumers(resources.consumers, verification)
        await resources.consumers.start(resources.jetstream)
        sweeper = asyncio.create_task(
            _sweep_forever(verification, settings.verification_sweep_interval)
        )
        tasks = [sweeper]
        if settings.first_replica:
            # The dashboard's figures as gauges: computed here, in the loop, and only read
            # by the exporter's thread; by one replica, so that they are exported once.
            dashboard = Dashboard.for_desk(desk, issuance=issuance(pool), delivery=deliveries)
            metrics = DashboardMetrics(dashboard)
            tasks.append(asyncio.create_task(metrics.run(settings.dashboard_metrics_interval)))
        try:
            yield Running(resources.store, verification, desk)
        finally:
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
