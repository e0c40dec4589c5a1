"""How the notify service is built and run: every citizen-facing WhatsApp message."""

from __future__ import annotations

import asyncio
import contextlib

from services.notify.handlers import (
    CRASH_AFTER_SEND,
    INBOUND_EVENTS,
    REPLY_EVENTS,
    STATUS_EVENTS,
    Notify,
    SendPolicy,
)
from services.notify.service import MIGRATIONS
from shared.bus.consumer import STATUS_BATCH_WAIT, Bulk, ConsumerSpec, Handler
from shared.bus.jetstream import subject_filter
from shared.calendar import OfficeHours, WorkingCalendar
from shared.config import Environment, Settings
from shared.eventstore.store import EventStore
from shared.mediastore import FileMediaStore
from shared.runtime.service import open_resources
from shared.whatsapp.client import CloudApiClient


def build(settings: Settings, store: EventStore, cloud: CloudApiClient) -> Notify:
    """Notify's handlers and worker; the operators' tools build the handlers too (the
    worker, the only part that sends, runs in the service alone)."""
    hours = OfficeHours.parse(settings.office_hours, settings.office_days)
    return Notify(
        store=store,
        cloud=cloud,
        media=FileMediaStore(settings.data_dir / "media"),
        key=settings.key,
        calendar=WorkingCalendar(hours),
        office_hours=hours,
        policy=SendPolicy.from_settings(settings),
        crash_marker=(
            None
            if settings.environment is Environment.PRODUCTION
            else settings.data_dir / "faults" / CRASH_AFTER_SEND
        ),
    )


def consumers_of(notify: Notify) -> list[tuple[ConsumerSpec, Handler]]:
    """Notify's durable consumers and their handlers (the replay tools use them too)."""
    return [
        (
            ConsumerSpec(
                name="notify-replies",
                subjects=[
                    subject_filter(category, kind)
                    for category, kind in (*INBOUND_EVENTS, *REPLY_EVENTS)
                ],
                batch_size=64,
                batch_transaction=True,
            ),
            Bulk(notify.handle, notify.handle_many),
        ),
        (
            ConsumerSpec(
                name="notify-statuses",
                subjects=[subject_filter(category, kind) for category, kind in STATUS_EVENTS],
                batch_size=128,
                batch_wait=STATUS_BATCH_WAIT,
                batch_transaction=True,
            ),
            Bulk(notify.on_status, notify.on_statuses),
        ),
    ]


async def run(settings: Settings, stop: asyncio.Event) -> None:
    cloud = CloudApiClient.from_settings(settings)
    try:
        async with open_resources("notify", settings, migrations=[MIGRATIONS]) as resources:
            notify = build(settings, resources.store, cloud)
            for spec, handler in consumers_of(notify):
                resources.consumers.register(spec, handler)
            await resources.consumers.start(resources.jetstream)
            worker = asyncio.create_task(notify.run_worker(stop), name="notify-sender")
            try:
                await stop.wait()
            finally:
                worker.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await worker
    finally:
        await cloud.close()
