"""Replaying the log to a consumer, a projection or a webhook subscriber.

To a **consumer**: each selected event on the consumer's subjects goes to its handler, built
as its service builds it, through the path the live consumer takes: a
:class:`~shared.bus.consumer.HandlerContext`, whose writes carry the consumer's inbox
receipt in the same transaction. An event the consumer has handled already is skipped (its
receipt is there); ``reprocess`` removes the receipt first and puts it back afterwards, for
consumers whose handlers write nothing new when run twice
(:data:`~adminduk.ops.catalogue.REPROCESS_SAFE`). A failure is retried a few times, then
parked in ``dead_letters`` as the live consumer parks it, for ``adminduk deadletters``.

No side effect is repeated: a tool process builds handlers only, never the workers that
send (notify) or call SIAK (issuance). Notify's handler queues a message under the id of
its cause (stream ``notification-<cause event id>``, outbox row ``ON CONFLICT DO
NOTHING``) and the worker sends each outbox row once, so an event whose message was queued
before queues nothing again, whatever the inbox says.

To a **projection**: the projection's handler runs on each selected event without inbox
receipts (its own guards make a repeated event harmless) and must not append.

To a **webhook subscriber**: its cursor moves back (``services.integrations.subscriptions
.rewind``) and the integrations process delivers again from there.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Final

from opentelemetry import trace

from adminduk.ops.stores import as_stored
from shared.bus import jetstream as js
from shared.bus.consumer import (
    ConsumerSpec,
    Handler,
    HandlerContext,
    PermanentError,
    record_dead_letter,
)
from shared.eventstore.envelope import ANY, NewEvent, RecordedEvent
from shared.eventstore.errors import DuplicateMessageError
from shared.eventstore.store import AppendResult, EventStore, StreamAppend, UnitOfWork
from shared.privacy import redact
from shared.telemetry import attach_trace_context, detach

log = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)

RETRY_DELAYS: Final = (0.2, 1.0)
"""Waits between a replayed event's attempts; after the last one it is dead-lettered."""
PROGRESS_EVERY: Final = 500


class NotAProjectionError(RuntimeError):
    """A handler run as a projection tried to append events."""


@dataclass
class ReplayCounts:
    """What a replay did: events on the target's subjects, handed to the handler, skipped
    because the consumer had handled them, and failed (dead-lettered)."""

    selected: int = 0
    delivered: int = 0
    already_handled: int = 0
    failed: int = 0
    dead_letters: list[str] = field(default_factory=list)
    """Event ids parked in ``dead_letters`` by this replay."""

    def summary(self, *, dry_run: bool = False) -> str:
        if dry_run:
            return (
                f"dry run: {self.selected} events selected, {self.delivered} would be "
                f"delivered, {self.already_handled} already handled"
            )
        return (
            f"{self.selected} events selected: {self.delivered} delivered, "
            f"{self.already_handled} already handled, {self.failed} failed"
        )


Progress = Callable[[ReplayCounts], None]


@dataclass
class ProjectionContext(HandlerContext):
    """A projection's handler outside its consumer: its writes carry no inbox receipt
    (the live consumer's receipts stay as they are, and a repeated event is harmless by the
    projection's own guards), and appending is refused: a projection only writes its
    tables."""

    async def append(
        self, stream_id: str, events: Sequence[NewEvent], expected_version: int = ANY
    ) -> AppendResult:
        raise NotAProjectionError(f"{self.consumer} appended to {stream_id} while projecting")

    async def append_streams(self, parts: Sequence[StreamAppend]) -> AppendResult:
        raise NotAProjectionError(f"{self.consumer} appended while projecting")

    @contextlib.asynccontextmanager
    async def unit_of_work(self) -> AsyncIterator[UnitOfWork]:
        async with self.store.unit_of_work() as uow:
            yield uow


async def run_handler(spec: ConsumerSpec, handler: Handler, context: HandlerContext) -> None:
    """Run ``handler`` as the live consumer does: in the trace the event was written in,
    in a span of its own (marked as a replay)."""
    event = context.event
    token = attach_trace_context(event.metadata.trace)
    try:
        with tracer.start_as_current_span(
            f"replay {spec.name} {event.event_type}",
            record_exception=False,
            set_status_on_exception=False,
            attributes={
                "adminduk.consumer": spec.name,
                "adminduk.event.type": event.event_type,
                "adminduk.event.position": event.position,
                "adminduk.replay": True,
            },
        ):
            await handler(context)
    finally:
        detach(token)


async def _handled(store: EventStore, consumer: str, event: RecordedEvent) -> bool:
    value = await store.pool.fetchval(
        "SELECT EXISTS (SELECT 1 FROM inbox WHERE consumer = $1 AND message_id = $2)",
        consumer,
        str(event.event_id),
    )
    return bool(value)


@contextlib.asynccontextmanager
async def _without_receipt(
    store: EventStore, consumer: str, event: RecordedEvent
) -> AsyncIterator[None]:
    """Remove the consumer's receipt of ``event`` for the length of the block; put it back
    afterwards if the handler did not write a new one (it may write nothing when run again,
    and the event stays handled either way)."""
    removed = await store.pool.fetchval(
        "DELETE FROM inbox WHERE consumer = $1 AND message_id = $2 RETURNING processed_at",
        consumer,
        str(event.event_id),
    )
    try:
        yield
    finally:
        if removed is not None:
            await store.pool.execute(
                "INSERT INTO inbox (consumer, message_id, processed_at) VALUES ($1, $2, $3) "
                "ON CONFLICT DO NOTHING",
                consumer,
                str(event.event_id),
                removed,
            )


def _describe(error: BaseException) -> str:
    return redact(f"{type(error).__name__}: {error}")


async def _attempt(
    store: EventStore,
    spec: ConsumerSpec,
    handler: Handler,
    event: RecordedEvent,
    make_context: Callable[[int], HandlerContext],
    counts: ReplayCounts,
    delays: Sequence[float],
) -> None:
    """Deliver one event, retrying after ``delays``; dead-letter it after the last try."""
    for attempt in range(len(delays) + 1):
        try:
            await run_handler(spec, handler, make_context(attempt + 1))
        except DuplicateMessageError:
            counts.already_handled += 1  # the live consumer got there at the same moment
            return
        except Exception as error:  # noqa: BLE001 - retried, then parked
            final = isinstance(error, PermanentError | NotAProjectionError)
            if final or attempt == len(delays):
                await _park(store, spec, event, error, attempt + 1)
                counts.failed += 1
                counts.dead_letters.append(str(event.event_id))
                return
            log.warning(
                "replay to %s failed on %s (attempt %d): %s",
                spec.name,
                event.event_type,
                attempt + 1,
                _describe(error),
            )
            await asyncio.sleep(delays[attempt])
            continue
        counts.delivered += 1
        return


async def _park(
    store: EventStore,
    spec: ConsumerSpec,
    event: RecordedEvent,
    error: BaseException,
    deliveries: int,
) -> None:
    """Into ``dead_letters`` as the live consumer would park it (the relay's message:
    the event as stored, personal data sealed), so the service can re-drive it."""
    stored = await as_stored(store, event)
    await record_dead_letter(
        store.pool,
        consumer=spec.name,
        message_id=str(event.event_id),
        subject=js.subject_for(stored),
        payload=js.encode(stored),
        headers=js.headers_for(stored),
        error=_describe(error),
        deliveries=deliveries,
    )
    log.error("replay to %s dead-lettered %s: %s", spec.name, event.event_id, _describe(error))


async def replay_to_consumer(
    store: EventStore,
    spec: ConsumerSpec,
    handler: Handler,
    events: AsyncIterator[RecordedEvent],
    *,
    reprocess: bool = False,
    dry_run: bool = False,
    delays: Sequence[float] = RETRY_DELAYS,
    progress: Progress | None = None,
) -> ReplayCounts:
    """Feed ``events`` (already filtered to the consumer's subjects) to ``handler`` one
    by one in position order, as the live consumer would (see module doc)."""
    counts = ReplayCounts()
    async for event in events:
        counts.selected += 1
        handled = await _handled(store, spec.name, event)
        if dry_run or (handled and not reprocess):
            if handled and not reprocess:
                counts.already_handled += 1
            else:
                counts.delivered += 1
        else:

            def context(deliveries: int, event: RecordedEvent = event) -> HandlerContext:
                return HandlerContext(
                    consumer=spec.name, store=store, event=event, deliveries=deliveries
                )

            if reprocess:
                async with _without_receipt(store, spec.name, event):
                    await _attempt(store, spec, handler, event, context, counts, delays)
            else:
                await _attempt(store, spec, handler, event, context, counts, delays)
        if progress is not None and counts.selected % PROGRESS_EVERY == 0:
            progress(counts)
    return counts


async def replay_to_projection(
    store: EventStore,
    spec: ConsumerSpec,
    handler: Handler,
    events: AsyncIterator[RecordedEvent],
    *,
    dry_run: bool = False,
    delays: Sequence[float] = RETRY_DELAYS,
    progress: Progress | None = None,
) -> ReplayCounts:
    """Apply ``events`` to a projection through its handler, without inbox receipts."""
    counts = ReplayCounts()
    async for event in events:
        counts.selected += 1
        if dry_run:
            counts.delivered += 1
        else:

            def context(deliveries: int, event: RecordedEvent = event) -> HandlerContext:
                return ProjectionContext(
                    consumer=spec.name, store=store, event=event, deliveries=deliveries
                )

            await _attempt(store, spec, handler, event, context, counts, delays)
        if progress is not None and counts.selected % PROGRESS_EVERY == 0:
            progress(counts)
    return counts
