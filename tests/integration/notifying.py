"""A notify service against a real Postgres, with the simulator in process as the Cloud
API (over its real HTTP interface) and a clock the test moves."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from services.notify.handlers import Notify, SendPolicy
from services.simulator.app import create_app as create_simulator
from services.simulator.app import simulator_of
from services.simulator.state import Entry, Simulator
from shared.bus.consumer import BatchHandler, Bulk, HandlerContext
from shared.calendar import OfficeHours, WorkingCalendar
from shared.config import Settings
from shared.contracts import DeliveryStatusReceived, WhatsAppMessageReceived, citizen_stream
from shared.eventstore.envelope import Event, RecordedEvent, deterministic_event_id
from shared.eventstore.errors import DuplicateMessageError
from shared.eventstore.store import EventStore
from shared.mediastore import FileMediaStore
from shared.whatsapp.client import CloudApiClient

START = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)  # a Monday, 10:00 in Jakarta
FAST = SendPolicy(
    rate=1000,
    recipient_interval=timedelta(milliseconds=1),
    recipient_burst=3,
    retry_base=timedelta(milliseconds=10),
    retry_max=timedelta(seconds=1),
    give_up_after=timedelta(hours=1),
    reconcile_after=timedelta(seconds=30),
)


@dataclass
class TestClock:
    now: datetime = START

    def __call__(self) -> datetime:
        return self.now

    def timestamp(self) -> float:
        return self.now.timestamp()


@dataclass
class Notifying:
    notify: Notify
    simulator: Simulator
    store: EventStore
    media: FileMediaStore
    clock: TestClock
    key: bytes
    _messages: int = field(default=0)

    async def record(self, stream: str, event: Event) -> RecordedEvent:
        result = await self.store.append(stream, [event.to_new_event()])
        [recorded] = result.events
        return recorded

    async def deliver(self, event: RecordedEvent, consumer: str = "notify-replies") -> None:
        """One delivery of ``event`` to notify, as the consumer framework makes it."""
        context = HandlerContext(consumer=consumer, store=self.store, event=event, deliveries=1)
        with suppress(DuplicateMessageError):  # a redelivery: the consumer acks it
            if consumer == "notify-statuses":
                await self.notify.on_status(context)
            else:
                await self.notify.handle(context)

    async def cause(self, stream: str, event: Event) -> RecordedEvent:
        """Record ``event`` and deliver it to notify (which queues its message)."""
        recorded = await self.record(stream, event)
        await self.deliver(recorded)
        return recorded

    async def citizen_wrote(self, phone: str, at: datetime) -> None:
        """A message from ``phone`` sent at ``at`` (opens the 24-hour window)."""
        self._messages += 1
        message = WhatsAppMessageReceived(
            message_id=f"wamid.in-{self._messages}",
            phone=phone,
            sent_at=at,
            message_type="text",
            text="halo",
            phone_number_id="1",
        )
        await self.cause(citizen_stream(phone, self.key), message)

    async def status(
        self, entry: Entry | str, status: str, callback: str, code: int | None = None
    ) -> None:
        """A delivery status webhook for a sent message, as intake records it."""
        for recorded in await self.record_status(entry, status, callback, code):
            await self.deliver(recorded, consumer="notify-statuses")

    async def record_status(
        self, entry: Entry | str, status: str, callback: str, code: int | None = None
    ) -> tuple[RecordedEvent, ...]:
        """The status's ``DeliveryStatusReceived`` as stored (a repeat: as stored before,
        so that delivering it again is a redelivery)."""
        wamid = entry if isinstance(entry, str) else entry.id
        event = DeliveryStatusReceived(
            wamid=wamid,
            status=status,
            at=self.clock.now,
            error_codes=(code,) if code is not None else (),
            error_titles=("error",) if code is not None else (),
            callback_data=callback,
        )
        new = event.to_new_event(event_id=deterministic_event_id("status", wamid, status, callback))
        result = await self.store.append(f"delivery-{wamid}", [new])
        return result.events

    async def statuses_in_one_batch(
        self, statuses: list[tuple[Entry | str, str, str, int | None]]
    ) -> None:
        """Delivery statuses (message, status, callback, error code) recorded, then handed
        to notify as one pulled batch: one shared transaction, the bulk handler."""
        recorded = [event for status in statuses for event in await self.record_status(*status)]
        await self._in_one_batch(
            "notify-statuses", Bulk(self.notify.on_status, self.notify.on_statuses), recorded
        )

    async def replies_in_one_batch(self, recorded: list[RecordedEvent]) -> None:
        """Stored events handed to notify's replies consumer as one pulled batch."""
        await self._in_one_batch(
            "notify-replies", Bulk(self.notify.handle, self.notify.handle_many), recorded
        )

    async def _in_one_batch(
        self, consumer: str, handler: BatchHandler, recorded: list[RecordedEvent]
    ) -> None:
        async with self.store.unit_of_work() as shared:
            contexts = [
                HandlerContext(
                    consumer=consumer, store=self.store, event=event, deliveries=1, shared=shared
                )
                for event in recorded
            ]
            await handler.batch(contexts)
        for context in contexts:
            context.committed()

    async def open_rows(self) -> int:
        value = await self.store.pool.fetchval(
            "SELECT count(*) FROM notification_outbox WHERE state IN ('queued', 'sending')"
        )
        return int(value)

    async def drain(self, rounds: int = 500) -> None:
        """Send until nothing is owed, moving the clock to each retry's time."""
        for _ in range(rounds):
            if await self.notify.drain_once() > 0:
                continue
            next_at = await self.store.pool.fetchval(
                "SELECT min(next_at) FROM notification_outbox WHERE state = 'queued'"
            )
            if next_at is None:
                return
            self.clock.now = max(self.clock.now, next_at)
        raise AssertionError(f"still owed after {rounds} rounds: {await self.open_rows()}")

    async def notifications(self, cause: RecordedEvent) -> list[RecordedEvent]:
        return await self.store.read_stream(f"notification-{cause.event_id}")

    def sent_to(self, phone: str) -> list[Entry]:
        return [entry for entry in self.simulator.outbox if entry.phone == phone]

    async def row(self, cause: RecordedEvent) -> dict[str, Any]:
        record = await self.store.pool.fetchrow(
            "SELECT * FROM notification_outbox WHERE notification_id = $1", str(cause.event_id)
        )
        assert record is not None
        return dict(record)


@asynccontextmanager
async def notifying(
    event_store: EventStore,
    data_dir: Path,
    policy: SendPolicy = FAST,
    *,
    enforce_service_window: bool = False,
) -> AsyncIterator[Notifying]:
    settings = Settings(data_dir=data_dir)
    clock = TestClock()
    app = create_simulator(
        settings,
        intake_webhook_url="http://127.0.0.1:9/unused",
        send_statuses=False,
        enforce_service_window=enforce_service_window,
        clock=clock.timestamp,
    )
    cloud = CloudApiClient(
        "http://simulator/v21.0",
        settings.whatsapp_access_token.get_secret_value(),
        settings.whatsapp_phone_number_id,
        transport=httpx.ASGITransport(app=app),
    )
    media = FileMediaStore(data_dir / "media")
    hours = OfficeHours.parse()
    notify = Notify(
        store=event_store,
        cloud=cloud,
        media=media,
        key=settings.key,
        calendar=WorkingCalendar(hours),
        office_hours=hours,
        policy=policy,
        now=clock,
    )
    try:
        yield Notifying(notify, simulator_of(app), event_store, media, clock, settings.key)
    finally:
        await cloud.close()
