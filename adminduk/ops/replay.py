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

**Chunks.** On a :class:`ChunkStore` (the handlers built on it), events are handled up to
:data:`CHUNK` in one transaction: the handlers' writes and the chunk's inbox receipts
commit together, the handlers' reads go through the same transaction (each event sees what
the ones before it wrote), and a chunk that fails in any way is rolled back and done again
one event at a time, with the retries and dead letters above. That is what makes a replay
or a rebuild of a long log take seconds rather than minutes: a round trip and a commit per
event were most of the time (``benchmarks/replay.py`` measures it).

To a **webhook subscriber**: its cursor moves back (``services.integrations.subscriptions
.rewind``) and the integrations process delivers again from there.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Callable,
    Collection,
    Generator,
    Sequence,
)
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, cast

import asyncpg
from opentelemetry import trace

from adminduk.ops.catalogue import PROJECTIONS
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
from shared.eventstore.store import (
    COLUMNS,
    AppendResult,
    Connection,
    EventStore,
    Sealer,
    StreamAppend,
    UnitOfWork,
    create_pool,
    recorded_from_row,
)
from shared.privacy import describe_error
from shared.telemetry import attach_trace_context, detach

log = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)

RETRY_DELAYS: Final = (0.2, 1.0)
"""Waits between a replayed event's attempts; after the last one it is dead-lettered."""
CHUNK: Final = 1000
"""Events handled in one transaction (see :class:`ChunkStore`)."""
PROJECTION_CONSUMERS: Final = frozenset(p.consumer for p in PROJECTIONS.values())


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
    position: int = 0
    """The position of the last event selected so far."""

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


Progress = Callable[[ReplayCounts], None]


# -- many events in one transaction ---------------------------------------------------------


class _ChunkConnection:
    """The one connection of a chunk's transaction, as the handlers see it.

    For a projection, statements with arguments whose result nobody reads (``execute``) are
    queued and sent at the next read, commit or savepoint, consecutive runs of the same
    statement as one ``executemany`` (one round trip): a projection's handler writes one row
    per event with one of a few statements, and waiting for each answer would cost more than
    the statement. The order of statements is kept, so the result is the same; an error
    surfaces later, and fails the whole chunk, which is then redone one event at a time.

    Notes when an append took the append lock, so the chunk commits right away (live
    appenders wait for that lock)."""

    def __init__(self, connection: Connection, *, defer: bool) -> None:
        self._connection = connection
        self._defer = defer
        self._queued: list[tuple[str, tuple[Any, ...]]] = []
        self.append_lock = False

    async def flush(self) -> None:
        queued, self._queued = self._queued, []
        start = 0
        while start < len(queued):
            query = queued[start][0]
            end = start + 1
            while end < len(queued) and queued[end][0] == query:
                end += 1
            if end - start == 1:
                await self._connection.execute(query, *queued[start][1])
            else:
                await self._connection.executemany(query, [args for _, args in queued[start:end]])
            start = end

    def discard(self) -> None:
        self._queued.clear()

    async def execute(self, query: str, *args: Any, timeout: float | None = None) -> str:  # noqa: ASYNC109 - asyncpg's signature
        if "pg_advisory_xact_lock" in query:
            self.append_lock = True
        if self._defer and args:
            self._queued.append((query, args))
            return ""
        await self.flush()
        return await self._connection.execute(query, *args, timeout=timeout)

    async def executemany(self, query: str, args: Any, *, timeout: float | None = None) -> None:  # noqa: ASYNC109
        await self.flush()
        await self._connection.executemany(query, args, timeout=timeout)

    async def fetch(self, query: str, *args: Any, **kwargs: Any) -> list[asyncpg.Record]:
        await self.flush()
        return await self._connection.fetch(query, *args, **kwargs)

    async def fetchrow(self, query: str, *args: Any, **kwargs: Any) -> asyncpg.Record | None:
        await self.flush()
        return cast(asyncpg.Record | None, await self._connection.fetchrow(query, *args, **kwargs))

    async def fetchval(self, query: str, *args: Any, **kwargs: Any) -> Any:
        await self.flush()
        return await self._connection.fetchval(query, *args, **kwargs)

    @contextlib.asynccontextmanager
    async def transaction(self, **kwargs: Any) -> AsyncIterator[None]:
        """A savepoint in the chunk's transaction (``store.unit_of_work()`` in a handler)."""
        await self.flush()
        try:
            async with self._connection.transaction(**kwargs):
                yield
                await self.flush()
        except BaseException:
            self.discard()
            raise

    def __getattr__(self, name: str) -> Any:
        return getattr(self._connection, name)


class _Held:
    """``pool.acquire()`` of the chunk's own task: its connection (released with it)."""

    def __init__(self, connection: _ChunkConnection) -> None:
        self.connection = connection

    async def __aenter__(self) -> _ChunkConnection:
        return self.connection

    async def __aexit__(self, *_: object) -> None:
        return None

    def __await__(self) -> Generator[Any, None, _ChunkConnection]:
        async def held() -> _ChunkConnection:
            return self.connection

        return held().__await__()


class _PinnedPool:
    """A pool that, in the task running a chunk, is the chunk's connection: what a handler
    reads through the store's pool (``read_stream``, its own queries) then sees what the
    earlier events of the chunk wrote, as it would had each been committed on its own.
    Other tasks (the store's append writer) get the real pool."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        self.pinned: _ChunkConnection | None = None
        self.task: asyncio.Task[Any] | None = None

    def _target(self) -> Any:
        if self.pinned is not None and asyncio.current_task() is self.task:
            return self.pinned
        return self.pool

    async def execute(self, query: str, *args: Any, **kwargs: Any) -> str:
        return cast(str, await self._target().execute(query, *args, **kwargs))

    async def executemany(self, query: str, args: Any, **kwargs: Any) -> None:
        await self._target().executemany(query, args, **kwargs)

    async def fetch(self, query: str, *args: Any, **kwargs: Any) -> list[asyncpg.Record]:
        return cast(list[asyncpg.Record], await self._target().fetch(query, *args, **kwargs))

    async def fetchrow(self, query: str, *args: Any, **kwargs: Any) -> asyncpg.Record | None:
        return cast(asyncpg.Record | None, await self._target().fetchrow(query, *args, **kwargs))

    async def fetchval(self, query: str, *args: Any, **kwargs: Any) -> Any:
        return await self._target().fetchval(query, *args, **kwargs)

    def acquire(self, *, timeout: float | None = None) -> Any:
        target = self._target()
        if target is self.pool:
            return self.pool.acquire(timeout=timeout)
        return _Held(target)

    async def release(self, connection: Any, *, timeout: float | None = None) -> None:  # noqa: ASYNC109
        if connection is not self.pinned:
            await self.pool.release(connection, timeout=timeout)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.pool, name)


class ChunkStore(EventStore):
    """An event store on which a replay or a rebuild runs many events in one transaction.

    Build the handlers on it (``catalogue.consumer(name, settings, store)``). While a chunk
    runs (:meth:`chunk`), the store's pool is, in the chunk's task, the chunk's connection
    (see :class:`_PinnedPool`); for a projection, ``read_stream`` of a stream of the chunk's
    events is served from one read of all those streams (a projection that folds its
    stream reads it once per chunk, not once per event). The streams of the last chunk are
    kept, and only their newer events read for the next one: a stream's events are spread
    over neighbouring chunks."""

    def __init__(self, pool: asyncpg.Pool, *, sealer: Sealer | None = None) -> None:
        self._pinned = _PinnedPool(pool)
        super().__init__(cast(asyncpg.Pool, self._pinned), sealer=sealer)
        self._streams: dict[str, list[RecordedEvent]] | None = None
        self._chunk_streams: set[str] = set()
        self._kept: dict[str, list[RecordedEvent]] = {}

    def forget_streams(self) -> None:
        """Drop the streams kept from the last chunk (read them afresh next time)."""
        self._kept = {}

    @classmethod
    async def open_at(cls, dsn: str, sealer: Sealer | None, *, max_size: int = 4) -> ChunkStore:
        return cls(await create_pool(dsn, min_size=1, max_size=max_size), sealer=sealer)

    @contextlib.asynccontextmanager
    async def chunk(
        self, events: Sequence[RecordedEvent], *, projection: bool
    ) -> AsyncIterator[_ChunkConnection]:
        """One transaction for ``events``: committed when the block exits, rolled back (and
        every queued statement dropped) when it raises."""
        async with self._pinned.pool.acquire() as raw:
            connection = _ChunkConnection(raw, defer=projection)
            self._pinned.pinned, self._pinned.task = connection, asyncio.current_task()
            self._streams = None
            self._chunk_streams = {event.stream_id for event in events} if projection else set()
            try:
                async with raw.transaction(isolation="read_committed"):
                    yield connection
                    await connection.flush()
                self._kept = self._streams or {}
            except BaseException:
                connection.discard()
                self._kept = {}
                raise
            finally:
                self._pinned.pinned = self._pinned.task = None
                self._streams, self._chunk_streams = None, set()

    async def read_stream(self, stream_id: str, *, from_version: int = 1) -> list[RecordedEvent]:
        if stream_id not in self._chunk_streams or asyncio.current_task() is not self._pinned.task:
            return await super().read_stream(stream_id, from_version=from_version)
        if self._streams is None:
            wanted = sorted(self._chunk_streams)
            known = [self._kept[s][-1].stream_version if s in self._kept else 0 for s in wanted]
            rows = await self.pool.fetch(
                f"SELECT {COLUMNS} FROM events JOIN unnest($1::text[], $2::int[]) AS w(s, v) "
                "ON stream_id = w.s AND stream_version > w.v ORDER BY stream_id, stream_version",
                wanted,
                known,
            )
            streams = {s: list(self._kept[s]) for s in wanted if s in self._kept}
            for event in await self.open([recorded_from_row(row) for row in rows]):
                streams.setdefault(event.stream_id, []).append(event)
            self._streams = streams
        return [e for e in self._streams.get(stream_id, []) if e.stream_version >= from_version]

    async def read_streams(
        self, stream_ids: Collection[str], *, connection: Connection | None = None
    ) -> dict[str, list[RecordedEvent]]:
        """The chunk's streams as :meth:`read_stream` serves them (one read per chunk, the
        last chunk's kept); any other stream as the store reads it."""
        if any(s not in self._chunk_streams for s in stream_ids) or (
            asyncio.current_task() is not self._pinned.task
        ):
            return await super().read_streams(stream_ids, connection=connection)
        return {stream_id: await self.read_stream(stream_id) for stream_id in stream_ids}


@dataclass
class ChunkContext(HandlerContext):
    """A consumer's handler in a chunk: its writes go to the chunk's transaction; the runner
    writes the inbox receipts of the events whose handler wrote (as a handler's own unit of
    work would), all at once before the commit."""

    connection: Any = None
    wrote: bool = field(default=False, init=False)

    def _unit(self) -> UnitOfWork:
        self.wrote = True
        return UnitOfWork(cast(Connection, self.connection), self.store)

    async def append(
        self, stream_id: str, events: Sequence[NewEvent], expected_version: int = ANY
    ) -> AppendResult:
        return await self.append_streams([StreamAppend(stream_id, events, expected_version)])

    async def append_streams(self, parts: Sequence[StreamAppend]) -> AppendResult:
        if self._appended:
            raise RuntimeError("HandlerContext.append called twice; use unit_of_work()")
        self._appended = True
        uow = self._unit()
        for part in parts:
            uow.append(part.stream_id, part.events, part.expected_version)
        await uow._flush()
        found = tuple(event for result in uow.results for event in result.events)
        return AppendResult(
            events=found, deduplicated=all(result.deduplicated for result in uow.results)
        )

    @contextlib.asynccontextmanager
    async def unit_of_work(self) -> AsyncIterator[UnitOfWork]:
        uow = self._unit()
        yield uow
        await uow._flush()


@dataclass
class ChunkProjectionContext(ProjectionContext):
    """A projection's handler in a chunk: no receipt, no append, the chunk's transaction."""

    connection: Any = None

    @contextlib.asynccontextmanager
    async def unit_of_work(self) -> AsyncIterator[UnitOfWork]:
        uow = UnitOfWork(cast(Connection, self.connection), self.store)
        yield uow
        if uow._requests:  # staged appends: a projection writes its tables only
            raise NotAProjectionError(f"{self.consumer} appended while projecting")


@dataclass
class ChunkResult:
    applied: int
    """How many of the events were handled and committed (the first ones)."""
    delivered: int
    """Of those, how many the handler got (the others the consumer had handled)."""


async def _project(
    store: ChunkStore,
    spec: ConsumerSpec,
    handler: Handler,
    events: Sequence[RecordedEvent],
    connection: _ChunkConnection,
) -> None:
    """A projection's handler on a chunk's events: all at once when it takes batches
    (``BatchHandler``: each stream folded once for the chunk), else one after another."""
    contexts = [
        ChunkProjectionContext(
            consumer=spec.name, store=store, event=event, deliveries=1, connection=connection
        )
        for event in events
    ]
    in_bulk = getattr(handler, "batch", None)
    if in_bulk is not None:
        await in_bulk(contexts)
        return
    for context in contexts:
        await handler(context)


async def apply_chunk(
    store: ChunkStore,
    spec: ConsumerSpec,
    handler: Handler,
    events: Sequence[RecordedEvent],
    *,
    projection: bool,
    reprocess: bool = False,
) -> ChunkResult:
    """Handle ``events`` (of one chunk, in position order) in one transaction.

    A projection's events all go in. A consumer's skip the events it handled already
    (unless ``reprocess``: their receipts are removed for the run and put back after), and
    the transaction commits early after a handler that appended (it holds the append lock
    that live appenders wait for). Raises whatever a handler raised, with nothing of the
    transaction committed: the caller redoes those events one at a time."""
    if not events:
        return ChunkResult(0, 0)
    tracer_span = tracer.start_as_current_span(
        f"replay {spec.name} chunk",
        attributes={
            "adminduk.consumer": spec.name,
            "adminduk.replay": True,
            "adminduk.replay.events": len(events),
            "adminduk.event.position": events[0].position,
        },
    )
    with tracer_span:
        # A projection's consumer runs a pure projection (catalogue.Projection): its
        # writes can be batched and its streams served from the chunk's read, receipts or not.
        pure = projection or spec.name in PROJECTION_CONSUMERS
        async with store.chunk(events, projection=pure) as connection:
            if projection:
                await _project(store, spec, handler, events, connection)
                return ChunkResult(len(events), len(events))
            ids = [str(event.event_id) for event in events]
            removed: dict[str, datetime] = {}
            if reprocess:
                rows = await connection.fetch(
                    "DELETE FROM inbox WHERE consumer = $1 AND message_id = ANY($2::text[]) "
                    "RETURNING message_id, processed_at",
                    spec.name,
                    ids,
                )
                removed = {row["message_id"]: row["processed_at"] for row in rows}
                handled: set[str] = set()
            else:
                rows = await connection.fetch(
                    "SELECT message_id FROM inbox WHERE consumer = $1 "
                    "AND message_id = ANY($2::text[])",
                    spec.name,
                    ids,
                )
                handled = {row["message_id"] for row in rows}
            receipts: dict[str, datetime | None] = {}
            applied = delivered = 0
            for event in events:
                applied += 1
                if str(event.event_id) in handled:
                    continue
                delivered += 1
                context = ChunkContext(
                    consumer=spec.name,
                    store=store,
                    event=event,
                    deliveries=1,
                    connection=connection,
                )
                token = attach_trace_context(event.metadata.trace)
                try:
                    await handler(context)
                finally:
                    detach(token)
                if context.wrote:
                    receipts[str(event.event_id)] = None
                if connection.append_lock:
                    break
            for message_id, processed_at in removed.items():
                receipts.setdefault(message_id, processed_at)
            if receipts:
                # No ON CONFLICT: a receipt there already means the live consumer handled an
                # event meanwhile; the chunk fails and is redone one event at a time.
                await connection.execute(
                    "INSERT INTO inbox (consumer, message_id, processed_at) "
                    "SELECT $1, m, coalesce(t, now()) "
                    "FROM unnest($2::text[], $3::timestamptz[]) AS x(m, t)",
                    spec.name,
                    list(receipts),
                    list(receipts.values()),
                )
            return ChunkResult(applied, delivered)


async def chunks(
    events: AsyncIterable[RecordedEvent], size: int = CHUNK
) -> AsyncIterator[list[RecordedEvent]]:
    """``events`` in lists of ``size`` (the last one shorter)."""
    chunk: list[RecordedEvent] = []
    async for event in events:
        chunk.append(event)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


# -- one event at a time ----------------------------------------------------------------------


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
                describe_error(error),
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
        error=describe_error(error),
        deliveries=deliveries,
    )
    log.error("replay to %s dead-lettered %s: %s", spec.name, event.event_id, describe_error(error))


async def _handled_ids(
    store: EventStore, consumer: str, events: Sequence[RecordedEvent]
) -> set[str]:
    rows = await store.pool.fetch(
        "SELECT message_id FROM inbox WHERE consumer = $1 AND message_id = ANY($2::text[])",
        consumer,
        [str(event.event_id) for event in events],
    )
    return {row["message_id"] for row in rows}


async def _one_to_consumer(
    store: EventStore,
    spec: ConsumerSpec,
    handler: Handler,
    event: RecordedEvent,
    counts: ReplayCounts,
    *,
    reprocess: bool,
    delays: Sequence[float],
) -> None:
    """One event as the live consumer would handle it (see module doc)."""
    if not reprocess and await _handled(store, spec.name, event):
        counts.already_handled += 1
        return

    def context(deliveries: int) -> HandlerContext:
        return HandlerContext(consumer=spec.name, store=store, event=event, deliveries=deliveries)

    if reprocess:
        async with _without_receipt(store, spec.name, event):
            await _attempt(store, spec, handler, event, context, counts, delays)
    else:
        await _attempt(store, spec, handler, event, context, counts, delays)


async def replay_to_consumer(
    store: EventStore,
    spec: ConsumerSpec,
    handler: Handler,
    events: AsyncIterable[RecordedEvent],
    *,
    reprocess: bool = False,
    dry_run: bool = False,
    delays: Sequence[float] = RETRY_DELAYS,
    progress: Progress | None = None,
    chunk: int = CHUNK,
) -> ReplayCounts:
    """Feed ``events`` (already filtered to the consumer's subjects) to ``handler`` in
    position order, as the live consumer would (see module doc).

    With a :class:`ChunkStore` (``handler`` built on it), up to ``chunk`` events are
    handled in one transaction; a chunk that fails is rolled back and redone one event at a
    time, with the retries and dead letters of a single event. ``chunk=1``, or another
    store: one event at a time."""
    counts = ReplayCounts()
    async for batch in chunks(events, max(chunk, 1)):
        counts.selected += len(batch)
        counts.position = batch[-1].position
        if dry_run:
            handled = 0 if reprocess else len(await _handled_ids(store, spec.name, batch))
            counts.already_handled += handled
            counts.delivered += len(batch) - handled
        else:
            rest: Sequence[RecordedEvent] = batch
            while rest and isinstance(store, ChunkStore) and len(rest) > 1:
                try:
                    done = await apply_chunk(
                        store, spec, handler, rest, projection=False, reprocess=reprocess
                    )
                except Exception as error:  # noqa: BLE001 - redone one at a time below
                    log.info(
                        "replay to %s: a chunk of %d events failed (%s); one at a time",
                        spec.name,
                        len(rest),
                        describe_error(error),
                    )
                    break
                counts.delivered += done.delivered
                counts.already_handled += done.applied - done.delivered
                rest = rest[done.applied :]
            for event in rest:
                await _one_to_consumer(
                    store, spec, handler, event, counts, reprocess=reprocess, delays=delays
                )
        if progress is not None:
            progress(counts)
    return counts


async def replay_to_projection(
    store: EventStore,
    spec: ConsumerSpec,
    handler: Handler,
    events: AsyncIterable[RecordedEvent],
    *,
    dry_run: bool = False,
    delays: Sequence[float] = RETRY_DELAYS,
    progress: Progress | None = None,
    chunk: int = CHUNK,
) -> ReplayCounts:
    """Apply ``events`` to a projection through its handler, without inbox receipts; in
    chunks of one transaction each as :func:`replay_to_consumer` does."""
    counts = ReplayCounts()
    async for batch in chunks(events, max(chunk, 1)):
        counts.selected += len(batch)
        counts.position = batch[-1].position
        if dry_run or (
            isinstance(store, ChunkStore)
            and len(batch) > 1
            and await _projected(store, spec, handler, batch)
        ):
            counts.delivered += len(batch)
        else:
            for event in batch:

                def context(deliveries: int, event: RecordedEvent = event) -> HandlerContext:
                    return ProjectionContext(
                        consumer=spec.name, store=store, event=event, deliveries=deliveries
                    )

                await _attempt(store, spec, handler, event, context, counts, delays)
        if progress is not None:
            progress(counts)
    return counts


async def _projected(
    store: ChunkStore, spec: ConsumerSpec, handler: Handler, events: Sequence[RecordedEvent]
) -> bool:
    """Apply ``events`` in one transaction; False (nothing applied) when that failed."""
    try:
        await apply_chunk(store, spec, handler, events, projection=True)
    except Exception as error:  # noqa: BLE001 - the caller redoes them one at a time
        log.info(
            "projecting to %s: a chunk of %d events failed (%s); one at a time",
            spec.name,
            len(events),
            describe_error(error),
        )
        return False
    return True
