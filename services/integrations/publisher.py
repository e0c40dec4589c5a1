"""The public relay: every public event reaches ``adminduk.public.<Type>``, none twice.

It is the outbox relay's loop (:class:`shared.bus.relay.TailingPublisher`) with its own
advisory lock, checkpoint (``public-relay``) and stream (``ADMINDUK_PUBLIC``): it tails the
event store in position order, woken by the store's NOTIFY, turns each event into its public
form (:class:`services.integrations.log.PublicLog`, which reads through the event store so
erased citizens' data stays erased) and publishes it with ``Nats-Msg-Id`` = the event id.
The checkpoint moves only after every PubAck of a batch, so a crash republishes at most one
batch, which JetStream drops as duplicates inside the duplicate window.

Integrators subscribe to ``adminduk.public.>`` (or one type's subject), or read the stream
from a position; the ``Adminduk-Position`` header and the envelope's ``position`` say where
they are.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta
from typing import Final

import asyncpg
from nats.js import JetStreamContext
from nats.js.api import StreamConfig, StreamConsumerLimits

from services.integrations.log import PublicLog
from services.integrations.service import MIGRATIONS
from shared.bus import jetstream as js
from shared.bus.relay import Outgoing, TailingPublisher
from shared.config import Settings
from shared.eventstore.envelope import RecordedEvent
from shared.eventstore.locks import PUBLIC_RELAY_LOCK
from shared.eventstore.store import EventStore
from shared.public import PublicEvent
from shared.runtime.service import open_store

CHECKPOINT: Final = "public-relay"


SETTLE: Final = 0.1
"""Seconds the publisher lets events gather after each wake-up: every append wakes it, and
most events have no public form, so reading after each one costs far more than it brings.
Integrators still see each event well within a second."""


PUBLIC_MAX_CONSUMERS: Final = 64
"""Consumers the public stream holds, all integrators together: each one costs the server
memory and disk, and integrators create them at will."""
PUBLIC_MAX_ACK_PENDING: Final = 1000
"""The most messages one consumer may hold unacknowledged (also its default)."""


def public_stream_config(duplicate_window: timedelta, max_age: timedelta) -> StreamConfig:
    """The public stream, with limits on what integrators create on it: at most
    :data:`PUBLIC_MAX_CONSUMERS` consumers, each holding at most
    :data:`PUBLIC_MAX_ACK_PENDING` messages unacknowledged and removed once idle as long as
    the stream keeps events (nothing it could still read is left by then)."""
    config = js.stream_config(
        duplicate_window,
        max_age,
        name=js.PUBLIC_STREAM_NAME,
        subjects=js.ALL_PUBLIC,
        description="Public events for integrators (no personal data), in position order",
    )
    return replace(
        config,
        max_consumers=PUBLIC_MAX_CONSUMERS,
        consumer_limits=StreamConsumerLimits(
            inactive_threshold=max_age.total_seconds(), max_ack_pending=PUBLIC_MAX_ACK_PENDING
        ),
    )


async def ensure_public_stream(
    jetstream: JetStreamContext, duplicate_window: timedelta, max_age: timedelta
) -> None:
    """Create the public stream, or bring an existing one to the configured limits."""
    config = public_stream_config(duplicate_window, max_age)
    await js.ensure_stream(jetstream, duplicate_window, max_age, config=config)


def outgoing(public: PublicEvent, source: RecordedEvent) -> Outgoing:
    """The message of a public event: dedup id, position, type, and the trace context of
    the internal event (so an integrator's span can join the request's trace)."""
    headers = {
        **source.metadata.trace,
        js.HEADER_MSG_ID: public.id,
        js.HEADER_POSITION: str(public.position),
        js.HEADER_EVENT_TYPE: public.type,
    }
    return Outgoing(public.subject, public.model_dump_json().encode(), headers)


class Publisher(TailingPublisher):
    """Publishes the public form of the store's events to ``ADMINDUK_PUBLIC``."""

    name = "public-relay"
    checkpoint = CHECKPOINT
    lock = PUBLIC_RELAY_LOCK
    stream_name = js.PUBLIC_STREAM_NAME

    def __init__(
        self,
        store: EventStore,
        dsn: str,
        nats_servers: list[str],
        key: bytes,
        *,
        batch_size: int = 500,
        poll_interval: float = 1.0,
        duplicate_window: timedelta = timedelta(hours=2),
        max_age: timedelta = timedelta(days=30),
        settle: float = 0.0,
    ) -> None:
        super().__init__(dsn, nats_servers, poll_interval=poll_interval, settle=settle)
        self._log = PublicLog(store, key)
        self._batch_size = batch_size
        self._duplicate_window = duplicate_window
        self._max_age = max_age

    async def _ensure_stream(self, jetstream: JetStreamContext) -> None:
        await ensure_public_stream(jetstream, self._duplicate_window, self._max_age)

    async def _batch(
        self, connection: asyncpg.Connection, after: int
    ) -> tuple[list[Outgoing], int]:
        # Read through the event store, not on the lock's connection: the store is what
        # turns an erased citizen's fields into placeholders.
        sourced, last = await self._log.read_sourced(after, self._batch_size)
        return [outgoing(public, source) for public, source in sourced], last


async def run_publisher(settings: Settings, stop: asyncio.Event) -> None:
    """Migrate (this may be the first process up), then publish public events until
    ``stop``; another instance stands by while one publishes."""
    # Opened as services read them: public forms count officers' sealed reasons.
    async with open_store(settings, min_size=1, max_size=2, migrations=[MIGRATIONS]) as store:
        publisher = Publisher(
            store,
            settings.database_dsn(),
            settings.nats_url,
            settings.key,
            batch_size=settings.relay_batch_size,
            poll_interval=settings.relay_poll_interval,
            duplicate_window=settings.nats_duplicate_window,
            max_age=settings.public_stream_max_age,
            settle=SETTLE,
        )
        await publisher.run(stop)
