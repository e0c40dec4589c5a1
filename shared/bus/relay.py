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
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from datetime import timedelta
from typing import Final

import asyncpg
import nats.errors
from nats.js import JetStreamContext
from nats.js.api import PubAck
from opentelemetry import trace

from shared.bus import jetstream as js
from shared.config import Settings
from shared.eventstore.envelope import RecordedEvent
from shared.eventstore.locks import RELAY_LOCK
from shared.eventstore.migrations import migrate
from shared.eventstore.store import COLUMNS, NOTIFY_CHANNEL, init_connection, recorded_from_row

log = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)

CHECKPOINT: Final = "outbox-relay"
PUBACK_TIMEOUT: Final = 10.0


class PublishFailedError(Exception):
    pass


class Relay:
    """Publishes the event store to JetStream; run one or more, one is active."""

    def __init__(
        self,
        dsn: str,
        nats_servers: list[str],
        *,
        batch_size: int = 500,
        poll_interval: float = 1.0,
        duplicate_window: timedelta = timedelta(hours=2),
        max_age: timedelta = timedelta(days=30),
    ) -> None:
        self._dsn = dsn
        self._nats_servers = nats_servers
        self._batch_size = batch_size
        self._poll_interval = poll_interval
        self._duplicate_window = duplicate_window
        self._max_age = max_age
        self._wake = asyncio.Event()
        self.active = asyncio.Event()
        """Set while this relay holds the lock; for health checks and tests."""
        self.published = 0

    async def run(self, stop: asyncio.Event) -> None:
        """Stand by, publish while leader, recover from any failure, until ``stop``."""
        nc = await js.connect(self._nats_servers, name="adminduk-relay")
        try:
            jetstream = nc.jetstream()
            stream_ready = False
            while not stop.is_set():
                try:
                    if not stream_ready:
                        await js.ensure_stream(jetstream, self._duplicate_window, self._max_age)
                        stream_ready = True
                    await self._lead(jetstream, stop)
                except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
                    log.warning("relay lost Postgres (%s); retrying", type(error).__name__)
                except nats.errors.Error as error:
                    log.warning("relay lost NATS (%s); retrying", type(error).__name__)
                except PublishFailedError as error:
                    log.warning("relay could not publish (%s); retrying", error)
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
            # A checkpoint lost in a crash only makes the next relay republish a batch,
            # which JetStream deduplicates: no need to wait for a WAL flush per batch.
            await connection.execute("SET synchronous_commit TO off")
            while not await connection.fetchval("SELECT pg_try_advisory_lock($1)", RELAY_LOCK):
                log.debug("another relay is active; standing by")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self._poll_interval)
                if stop.is_set():
                    return
            log.info("relay active")
            self.active.set()
            await connection.add_listener(NOTIFY_CHANNEL, lambda *_: self._wake.set())
            await connection.execute(
                "INSERT INTO checkpoints (name, position) VALUES ($1, 0) ON CONFLICT DO NOTHING",
                CHECKPOINT,
            )
            position = int(
                await connection.fetchval(
                    "SELECT position FROM checkpoints WHERE name = $1", CHECKPOINT
                )
            )
            while not stop.is_set():
                self._wake.clear()
                rows = await connection.fetch(
                    f"SELECT {COLUMNS} FROM events WHERE position > $1 ORDER BY position LIMIT $2",
                    position,
                    self._batch_size,
                )
                if not rows:
                    await self._sleep(stop)
                    continue
                events = [recorded_from_row(row) for row in rows]
                await self._publish(jetstream, events)
                position = events[-1].position
                await connection.execute(
                    "UPDATE checkpoints SET position = $2, updated_at = now() "
                    "WHERE name = $1 AND position < $2",
                    CHECKPOINT,
                    position,
                )
                self.published += len(events)
        finally:
            self.active.clear()
            # Closing the session releases the advisory lock for a standby relay.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(connection.close(), 5)

    async def _sleep(self, stop: asyncio.Event) -> None:
        waits = [asyncio.ensure_future(self._wake.wait()), asyncio.ensure_future(stop.wait())]
        try:
            await asyncio.wait(waits, timeout=self._poll_interval, return_when="FIRST_COMPLETED")
        finally:
            for waiter in waits:
                waiter.cancel()

    async def _publish(self, jetstream: JetStreamContext, events: Sequence[RecordedEvent]) -> None:
        """Publish in position order (pipelined on one connection) and await every PubAck."""
        with tracer.start_as_current_span(
            "relay publish",
            record_exception=False,
            attributes={
                "messaging.system": "nats",
                "messaging.destination.name": js.STREAM_NAME,
                "messaging.batch.message_count": len(events),
                "adminduk.position.first": events[0].position,
                "adminduk.position.last": events[-1].position,
            },
        ):
            futures: list[asyncio.Future[PubAck]] = []
            try:
                for event in events:
                    futures.append(
                        await jetstream.publish_async(
                            js.subject_for(event),
                            js.encode(event),
                            headers=js.headers_for(event),
                            stream=js.STREAM_NAME,
                        )
                    )
                acks = await asyncio.wait_for(asyncio.gather(*futures), PUBACK_TIMEOUT)
            except Exception as error:
                for future in futures:
                    future.cancel()
                raise PublishFailedError(f"{type(error).__name__}: {error}") from error
            for event, ack in zip(events, acks, strict=True):
                if ack.stream != js.STREAM_NAME:
                    raise PublishFailedError(f"event {event.event_id} stored in {ack.stream}")


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
