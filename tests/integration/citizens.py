"""A citizen writing to intake the way the webhook records messages (text, files, button
and list replies, at chosen times), with the simulator in process as the Cloud API for
media; shared by the intake and guided-mode integration tests."""

from __future__ import annotations

import hashlib
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx

from services.intake.handlers import Intake
from services.intake.inbound import webhook_appends
from services.simulator.app import create_app as create_simulator
from shared.bus.consumer import HandlerContext
from shared.config import Settings
from shared.contracts import citizen_stream
from shared.eventstore.envelope import RecordedEvent
from shared.eventstore.store import EventStore
from shared.identity import OfficeArea
from shared.mediastore import FileMediaStore
from shared.whatsapp.client import CloudApiClient
from shared.whatsapp.webhook import WebhookPayload

PHONE = "6281234567890"
IDLE = timedelta(minutes=30)


class Citizen:
    """Sends messages the way the webhook records them (text, files, button and list
    replies, at chosen times), and lets intake handle them."""

    def __init__(self, intake: Intake, settings: Settings, cloud: httpx.AsyncClient) -> None:
        self.intake = intake
        self.settings = settings
        self.cloud = cloud
        self.count = 0
        self.projected = 0
        self.clock = int(time.time()) - 3600
        self.intake_requests: list[str] = []
        """Paths of the requests intake sent the Cloud API (the simulator)."""

    async def upload(self, data: bytes, mime: str) -> str:
        answer = await self.cloud.post(
            f"/v21.0/{self.settings.whatsapp_phone_number_id}/media",
            data={"messaging_product": "whatsapp", "type": mime},
            files={"file": ("f", data, mime)},
        )
        answer.raise_for_status()
        return str(answer.json()["id"])

    async def send(
        self,
        text: str | None = None,
        *,
        button: tuple[str, str] | None = None,
        row: tuple[str, str] | None = None,
        media: tuple[bytes, str] | None = None,
        media_id: str | None = None,
        phone: str = PHONE,
        after: timedelta = timedelta(minutes=1),
    ) -> RecordedEvent:
        """One message, ``after`` the previous one. ``button``/``row``: (id, title);
        ``media_id``: the id the webhook gives the file (default: its upload's)."""
        self.count += 1
        self.clock += int(after.total_seconds())
        message: dict[str, Any] = {
            "from": phone,
            "id": f"wamid.G{self.count}",
            "timestamp": str(self.clock),
            "type": "text",
        }
        if button is not None or row is not None:
            kind = "button_reply" if button is not None else "list_reply"
            reply_id, title = button or row or ("", "")
            message["type"] = "interactive"
            message["interactive"] = {"type": kind, kind: {"id": reply_id, "title": title}}
        elif media is not None:
            data, mime = media
            kind = "document" if mime == "application/pdf" else "image"
            message["type"] = kind
            message[kind] = {
                "id": media_id if media_id is not None else await self.upload(data, mime),
                "mime_type": mime,
                "sha256": hashlib.sha256(data).hexdigest(),
                **({"caption": text} if text else {}),
            }
        else:
            message["text"] = {"body": text or ""}
        payload = WebhookPayload.model_validate(
            {
                "object": "whatsapp_business_account",
                "entry": [
                    {
                        "id": "1",
                        "changes": [
                            {
                                "field": "messages",
                                "value": {
                                    "messaging_product": "whatsapp",
                                    "metadata": {
                                        "phone_number_id": self.settings.whatsapp_phone_number_id
                                    },
                                    "contacts": [{"wa_id": phone, "profile": {"name": "Warga"}}],
                                    "messages": [message],
                                },
                            }
                        ],
                    }
                ],
            }
        )
        [append] = webhook_appends(payload, self.settings.key)
        result = await self.intake.store.append_streams([append])
        [event] = result.events
        await self.handle(event)
        return event

    async def handle(self, event: RecordedEvent) -> None:
        context = HandlerContext(
            consumer="intake-messages", store=self.intake.store, event=event, deliveries=1
        )
        await self.intake.on_message(context)

    async def project(self) -> None:
        for event in await self.intake.store.read_category(
            "request", after_position=self.projected
        ):
            self.projected = event.position
            context = HandlerContext(
                consumer="intake-request-status",
                store=self.intake.store,
                event=event,
                deliveries=1,
            )
            await self.intake.project_status(context)

    async def events(self, phone: str = PHONE) -> list[RecordedEvent]:
        return await self.intake.store.read_stream(citizen_stream(phone, self.settings.key))

    async def answer_to(self, sent: RecordedEvent, phone: str = PHONE) -> list[RecordedEvent]:
        """The events intake appended because of message ``sent``."""
        return [
            event
            for event in await self.events(phone)
            if event.metadata.causation_id == sent.event_id
        ]

    async def step(self, sent: RecordedEvent) -> dict[str, Any]:
        """The guided question intake asked in answer to ``sent``."""
        [asked] = [e for e in await self.answer_to(sent) if e.event_type == "GuidedStepAsked"]
        return asked.data


class RecordingTransport(httpx.AsyncBaseTransport):
    """The simulator's transport, remembering the path of every request intake sends it."""

    def __init__(self, inner: httpx.AsyncBaseTransport, paths: list[str]) -> None:
        self.inner = inner
        self.paths = paths

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.paths.append(request.url.path)
        return await self.inner.handle_async_request(request)


def new_intake(store: EventStore, settings: Settings, cloud: CloudApiClient) -> Intake:
    return Intake(
        store=store,
        media=FileMediaStore(settings.data_dir / "media"),
        cloud=cloud,
        area=OfficeArea("3603"),
        key=settings.key,
        today=lambda: date(2026, 11, 23),
        guided_idle=IDLE,
    )


@asynccontextmanager
async def citizen_of(event_store: EventStore, data_dir: Path) -> AsyncIterator[Citizen]:
    settings = Settings(data_dir=data_dir)
    simulator = create_simulator(settings, intake_webhook_url="http://127.0.0.1:9/unused")
    transport = httpx.ASGITransport(app=simulator)
    cloud_requests: list[str] = []
    cloud = CloudApiClient(
        "http://simulator/v21.0",
        settings.whatsapp_access_token.get_secret_value(),
        settings.whatsapp_phone_number_id,
        transport=RecordingTransport(transport, cloud_requests),
    )
    raw = httpx.AsyncClient(
        transport=transport,
        base_url="http://simulator",
        headers={"Authorization": f"Bearer {settings.whatsapp_access_token.get_secret_value()}"},
    )
    try:
        citizen = Citizen(new_intake(event_store, settings, cloud), settings, raw)
        citizen.intake_requests = cloud_requests
        yield citizen
    finally:
        await cloud.close()
        await raw.aclose()
