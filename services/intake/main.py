"""How the intake service is built and run: the webhook, and the consumers that turn
citizens' messages into requests, answers and the status read model."""

from __future__ import annotations

import asyncio

from services.intake.adapters.http import create_app
from services.intake.handlers import Intake
from services.intake.service import MIGRATIONS
from shared.bus.consumer import ConsumerSpec, Handler
from shared.bus.jetstream import subject_filter
from shared.config import Settings
from shared.eventstore.store import EventStore
from shared.identity import OfficeArea
from shared.mediastore import FileMediaStore
from shared.runtime.service import open_resources, serve_http
from shared.whatsapp.client import CloudApiClient


def build(settings: Settings, store: EventStore, cloud: CloudApiClient) -> Intake:
    """Intake's handlers; also built by the operators' tools (``adminduk events replay``)."""
    return Intake(
        store=store,
        media=FileMediaStore(settings.data_dir / "media"),
        cloud=cloud,
        area=OfficeArea(settings.office_region),
        key=settings.key,
        guided_idle=settings.guided_idle,
    )


def consumers_of(intake: Intake) -> list[tuple[ConsumerSpec, Handler]]:
    """Intake's durable consumers and their handlers (the replay tools use them too)."""
    return [
        (
            ConsumerSpec(
                name="intake-messages",
                subjects=[subject_filter("citizen", "WhatsAppMessageReceived")],
            ),
            intake.on_message,
        ),
        (
            ConsumerSpec(
                name="intake-request-status",
                subjects=[subject_filter("request", "*")],
                batch_size=128,
                batch_transaction=True,
            ),
            intake.project_status,
        ),
    ]


async def run(settings: Settings, stop: asyncio.Event) -> None:
    cloud = CloudApiClient.from_settings(settings)
    try:
        async with open_resources("intake", settings, migrations=[MIGRATIONS]) as resources:
            intake = build(settings, resources.store, cloud)
            for spec, handler in consumers_of(intake):
                resources.consumers.register(spec, handler)
            await resources.consumers.start(resources.jetstream)
            app = create_app(settings, resources.store)
            await serve_http(app, settings.host, settings.intake_port, stop)
    finally:
        await cloud.close()
