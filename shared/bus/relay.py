"""The outbox relay: every committed event reaches JetStream, none twice.

The relay tails the event store in position order (woken by LISTEN/NOTIFY, with a polling
fallback), publishes each event with ``Nats-Msg-Id`` = event id, waits for every PubAck of
the batch, and only then moves its checkpoint. A crash anywhere in between makes the next
relay republish at most that batch, which JetStream drops as duplicates inside the stream's
duplicate window.

Several relays may run for availability; one session advisory lock decides which one
publishes. The checkpoint is written on the very connection that holds the lock, so a relay
that lost its connection (and with it the lock) cannot move the checkpoint any more, and
the update only ever moves it forward.

The same loop (:class:`TailingPublisher`) also publishes the public events for integrators
(``services.integrations.publisher``), with its own lock, checkpoint and stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import ClassVar, Final

import asyncpg
import nats.errors
from nats.js import JetStreamContext
from nats.js.api import PubAck
from opentelemetry import trace

from shared.bus import jetstream as js
from shared.config import Settings
from shared.eventstore.errors import EventStoreError
from shared.eventstore.locks import RELAY_LOCK
from shared.eventstore.migrations import migrate
from shared.eventstore.store import NOTIFY_CHANNEL, init_connection

log = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)

CHECKPOINT: Final = "outbox-relay"
PUBACK_TIMEOUT: Final = 10.0
RELAY_SETTLE: Final = 0.005
"""Seconds the relay lets events gather after a wake-up or a batch. Every append commit
wakes it: without a pause a busy store is read (and the checkpoint written) about once per
append; 5 ms turn that into one round per several appends, for 5 ms on a ticket's way."""


CHECKPOINT_EVERY: Final = 0.25
"""Seconds between checkpoint writes while batches follow each other (and at once when
caught up): a leader that dies republishes at most this much, which JetStream drops as
duplicates (its window is hours), instead of one write per batch."""


class PublishFailedError(Exception):
    pass


@dataclass(frozen=True)
class Outgoing:
    """One message for JetStream; ``headers`` carry its ``Nats-Msg-Id``."""

    subject: str
    payload: bytes
    headers: dict[str, str]


TRANSIENT: Final = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, EventStoreError)
"""Failures of Postgres that a tailing publisher waits out."""


class TailingPublisher(ABC):
    """Tails the event store into a JetStream stream; run one or more, one is active.

    The loop every such publisher shares: stand by until it holds its session advisory
    lock, read its checkpoint, then take batches after the checkpoint (woken by the store's
    NOTIFY, polling as a fallback), publish them, await every PubAck, and only then move the
    checkpoint on the lock's own connection (every :data:`CHECKPOINT_EVERY` while busy).
    Subclasses say which stream, and what a batch of events becomes (:meth:`_batch`).
    """

    name: ClassVar[str]
    """Names the NATS connection, the log lines and the span."""
    checkpoint: ClassVar[str]
    lock: ClassVar[int]
    stream_name: ClassVar[str]

    def __init__(
        self, dsn: str, nats_servers: list[str], *, poll_interval: float, settle: float = 0.0
    ) -> None:
        self._dsn = dsn
        self._nats_servers = nats_servers
        self._poll_interval = poll_interval
        self._settle = settle
        """Seconds to let more events come after a wake-up or a batch, so that a busy log
        is read in fewer, larger batches (the relay's is short: tickets wait on it)."""
        self._wake = asyncio.Event()
        self.active = asyncio.Event()
        """Set while this publisher holds the lock; for health checks and tests."""
        self.published = 0

    @abstractmethod
    async def _ensure_stream(self, jetstream: JetStreamContext) -> None:
        """Create the stream, or bring an existing one to the configured limits."""

    @abstractmethod
    async def _batch(
        self, connection: asyncpg.Connection, after: int
    ) -> tuple[list[Outgoing], int]:
        """The messages for the events after position ``after`` (in position order), and
        the last position they cover; ``after`` itself when there is nothing new."""

    async def run(self, stop: asyncio.Event) -> None:
        """Stand by, publish while leader, recover from any failure, until ``stop``."""
        nc = await js.connect(self._nats_servers, name=f"adminduk-{self.name}")
        try:
            jetstream = nc.jetstream()
            stream_ready = False
            while not stop.is_set():
                try:
                    if not stream_ready:
                        await self._ensure_stream(jetstream)
                        stream_ready = True
                    await self._lead(jetstream, stop)
                except TRANSIENT as error:
                    log.warning("%s lost Postgres (%s); retrying", self.name, type(error).__name__)
                except nats.errors.Error as error:
                    log.warning("%s lost NATS (%s); retrying", self.name, type(error).__name__)
                except PublishFailedError as error:
                    log.warning("%s could not publish (%s); retrying", self.name, error)
                finally:
                    self.active.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self._poll_interval)
        finally:
            await nc.drain()

    async def _lead(self, jetstream: JetStreamContext, stop: asyncio.Event) -> None:
        connection = await asyncpg.connect(self._dsn)
        try:
            await init_connection(connection)
            # A checkpoint lost in a crash only makes the next leader republish a batch,
            # which JetStream deduplicates: no need to wait for a WAL flush per batch.
            await connection.execute("SET synchronous_commit TO off")
            while not await connection.fetchval("SELECT pg_try_advisory_lock($1)", self.lock):
                log.debug("another %s is active; standing by", self.name)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self._poll_interval)
                if stop.is_set():
                    return
            log.info("%s active", self.name)
            self.active.set()
            await connection.add_listener(NOTIFY_CHANNEL, lambda *_: self._wake.set())
            await connection.execute(
                "INSERT INTO checkpoints (name, position) VALUES ($1, 0) ON CONFLICT DO NOTHING",
                self.checkpoint,
            )
            position = int(
                await connection.fetchval(
                    "SELECT position FROM checkpoints WHERE name = $1", self.checkpoint
                )
            )
            loop = asyncio.get_running_loop()
            saved, saved_at = position, loop.time()
            try:
                while not stop.is_set():
                    self._wake.clear()
                    messages, last = await self._batch(connection, position)
                    if last == position:
                        if saved < position:  # caught up: the checkpoint says so at once
                            await self._save(connection, position)
                            saved, saved_at = position, loop.time()
                        await self._sleep(stop)
                        await self._settle_down(stop)
                        continue
                    if messages:
                        await self._publish(jetstream, messages, position + 1, last)
                    position = last
                    self.published += len(messages)
                    if loop.time() - saved_at >= CHECKPOINT_EVERY:
                        await self._save(connection, position)
                        saved, saved_at = position, loop.time()
                    await self._settle_down(stop)
            finally:
                if saved < position and not connection.is_closed():
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(self._save(connection, position), 5)
        finally:
            self.active.clear()
            # Closing the session releases the advisory lock for a standby.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(connection.close(), 5)

    async def _save(self, connection: asyncpg.Connection, position: int) -> None:
        await connection.execute(
            "UPDATE checkpoints SET position = $2, updated_at = now() "
            "WHERE name = $1 AND position < $2",
            self.checkpoint,
            position,
        )

    async def _settle_down(self, stop: asyncio.Event) -> None:
        if self._settle > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self._settle)

    async def _sleep(self, stop: asyncio.Event) -> None:
        waits = [asyncio.ensure_future(self._wake.wait()), asyncio.ensure_future(stop.wait())]
        try:
            await asyncio.wait(waits, timeout=self._poll_interval, return_when="FIRST_COMPLETED")
        finally:
            for waiter in waits:
                waiter.cancel()

    async def _publish(
        self, jetstream: JetStreamContext, messages: Sequence[Outgoing], first: int, last: int
    ) -> None:
        """Publish in order (pipelined on one connection) and await every PubAck."""
        with tracer.start_as_current_span(
            f"{self.name} publish",
            record_exception=False,
            attributes={
                "messaging.system": "nats",
                "messaging.destination.name": self.stream_name,
                "messaging.batch.message_count": len(messages),
                "adminduk.position.first": first,
                "adminduk.position.last": last,
            },
        ):
            futures: list[asyncio.Future[PubAck]] = []
            try:
                for message in messages:
                    futures.append(
                        await jetstream.publish_async(
                            message.subject,
                            message.payload,
                            headers=message.headers,
                            stream=self.stream_name,
                        )
                    )
                acks = await asyncio.wait_for(asyncio.gather(*futures), PUBACK_TIMEOUT)
            except Exception as error:
                for future in futures:
                    future.cancel()
                raise PublishFailedError(f"{type(error).__name__}: {error}") from error
            for message, ack in zip(messages, acks, strict=True):
                if ack.stream != self.stream_name:
                    raise PublishFailedError(
                        f"message {message.headers.get(js.HEADER_MSG_ID)} stored in {ack.stream}"
                    )


class Relay(TailingPublisher):
    """Publishes every event of the store to ``ADMINDUK_EVENTS``."""

    name = "relay"
    checkpoint = CHECKPOINT
    lock = RELAY_LOCK
    stream_name = js.STREAM_NAME

    def __init__(
        self,
        dsn: str,
        nats_servers: list[str],
        *,
        batch_size: int = 500,
        poll_interval: float = 1.0,
        duplicate_window: timedelta = timedelta(hours=2),
        max_age: timedelta = timedelta(days=30),
        settle: float = RELAY_SETTLE,
    ) -> None:
        super().__init__(dsn, nats_servers, poll_interval=poll_interval, settle=settle)
        self._batch_size = batch_size
        self._duplicate_window = duplicate_window
        self._max_age = max_age

    async def _ensure_stream(self, jetstream: JetStreamContext) -> None:
        await js.ensure_stream(jetstream, self._duplicate_window, self._max_age)

    async def _batch(
        self, connection: asyncpg.Connection, after: int
    ) -> tuple[list[Outgoing], int]:
        # The events as stored, on the leader's own connection: the relay forwards
        # internal events whole, so it passes their stored JSON through undecoded.
        rows = await connection.fetch(
            f"SELECT {js.STORED_COLUMNS} FROM events WHERE position > $1 "
            "ORDER BY position LIMIT $2",
            after,
            self._batch_size,
        )
        messages = [Outgoing(*js.encode_stored(row)) for row in rows]
        return messages, rows[-1]["position"] if rows else after


async def run_relay(settings: Settings, stop: asyncio.Event) -> None:
    """The relay process's main: migrate (the relay may start first), then relay."""
    connection = await asyncpg.connect(settings.database_dsn())
    try:
        await migrate(connection)
    finally:
        await connection.close()
    relay = Relay(
        settings.database_dsn(),
        settings.nats_url,
        batch_size=settings.relay_batch_size,
        poll_interval=settings.relay_poll_interval,
        duplicate_window=settings.nats_duplicate_window,
        max_age=settings.nats_stream_max_age,
    )
    await relay.run(stop)


def main() -> None:
    from shared.runtime.service import run_service  # noqa: PLC0415

    run_service("relay", run_relay)


if __name__ == "__main__":
    main()
