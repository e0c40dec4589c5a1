"""Composition root of the notify service: every citizen-facing WhatsApp message."""

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
from shared.bus.consumer import ConsumerSpec
from shared.bus.jetstream import subject_filter
from shared.calendar import OfficeHours, WorkingCalendar
from shared.config import Environment, Settings
from shared.mediastore import FileMediaStore
from shared.runtime.service import open_resources, run_service
from shared.whatsapp.client import CloudApiClient


async def run(settings: Settings, stop: asyncio.Event) -> None:
    cloud = CloudApiClient.from_settings(settings)
    try:
        async with open_resources("notify", settings) as resources:
            hours = OfficeHours.parse(settings.office_hours, settings.office_days)
            notify = Notify(
                store=resources.store,
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
            resources.consumers.register(
                ConsumerSpec(
                    name="notify-replies",
                    subjects=[
                        subject_filter(category, kind)
                        for category, kind in (*INBOUND_EVENTS, *REPLY_EVENTS)
                    ],
                    batch_size=64,
                ),
                notify.handle,
            )
            resources.consumers.register(
                ConsumerSpec(
                    name="notify-statuses",
                    subjects=[subject_filter(category, kind) for category, kind in STATUS_EVENTS],
                    batch_size=64,
                ),
                notify.on_status,
            )
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


def main() -> None:
    run_service("notify", run)


if __name__ == "__main__":
    main()
