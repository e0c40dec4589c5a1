"""Composition root of the notify service: every citizen-facing WhatsApp message."""

from __future__ import annotations

import asyncio

from services.notify.handlers import REPLY_EVENTS, Notify
from shared.bus.consumer import ConsumerSpec
from shared.bus.jetstream import subject_filter
from shared.calendar import OfficeHours
from shared.config import Settings
from shared.mediastore import FileMediaStore
from shared.runtime.service import open_resources, run_service
from shared.whatsapp.client import CloudApiClient


async def run(settings: Settings, stop: asyncio.Event) -> None:
    cloud = CloudApiClient.from_settings(settings)
    try:
        async with open_resources("notify", settings) as resources:
            notify = Notify(
                store=resources.store,
                cloud=cloud,
                media=FileMediaStore(settings.data_dir / "media"),
                office_hours=OfficeHours.parse(settings.office_hours, settings.office_days),
            )
            resources.consumers.register(
                ConsumerSpec(
                    name="notify-replies",
                    subjects=[subject_filter(category, kind) for category, kind in REPLY_EVENTS],
                    batch_size=64,
                ),
                notify.reply,
            )
            await resources.consumers.start(resources.jetstream)
            await stop.wait()
    finally:
        await cloud.close()


def main() -> None:
    run_service("notify", run)


if __name__ == "__main__":
    main()
