"""The Postgres event store.

How positions stay safe for readers
-----------------------------------
Every append transaction takes one transaction-scoped advisory lock (``APPEND_LOCK``) just
before it assigns positions, and keeps it until it commits. Postgres makes a committed
transaction visible before it releases its locks, so the next appender can only take
positions after the previous one is visible. Positions are therefore gapless and commit in
position order, and a reader that asks for ``position > N`` can never miss an event that
commits later. No high-water marks, no time-based gap skipping.

How that stays fast
-------------------
Serialising appends would cap throughput at one commit (one WAL flush) at a time, so
appends are grouped: :meth:`EventStore.append` queues its request, and one writer task per
process writes everything queued so far in a single transaction (group commit). Each
request in a batch is still checked on its own (expected version, idempotency, inbox) while
the lock is held, so one request's conflict does not fail the others.

A batch costs one round trip: the server-side function ``append_events`` (platform
migration 0005), called as a single autocommit statement, takes the lock, reads what the
decision needs, and when every request is a plain new append (no stored event id or inbox
record, every expected version met) writes them all and notifies, committing as it returns.
A batch with a conflict, a repetition or a repeated inbox record is left unwritten by the
function and decided request by request here, under the lock, in a transaction of its own
(``_decide_and_write``). A :class:`UnitOfWork` calls the same function inside the caller's
transaction, which keeps the lock until it ends.

Personal data
-------------
Given a sealer (``shared.keyring.Sealer``), the store seals each event's personal fields
with its citizen's key before the append is serialised, and opens them on every read. The
table, and JetStream after the relay, hold them only encrypted.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import AsyncIterator, Collection, Mapping, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, Protocol

import asyncpg
import orjson
from asyncpg.pool import PoolConnectionProxy

from shared.eventstore.envelope import ANY, Metadata, NewEvent, RecordedEvent, stream_category
from shared.eventstore.errors import (
    ConcurrencyConflictError,
    DuplicateMessageError,
    EventStoreError,
    EventStoreUnavailableError,
    IdempotencyConflictError,
)
from shared.eventstore.locks import APPEND_LOCK

log = logging.getLogger(__name__)

NOTIFY_CHANNEL: Final = "adminduk_events"
"""Appenders NOTIFY this channel with the last position on commit; tailing readers LISTEN."""

MAX_BATCH: Final = 1000
MAX_EVENT_BYTES: Final = 512 * 1024
"""An event is a fact, not a file: the relay must be able to publish it as one NATS
message (the embedded server allows 8 MB), with room to spare."""

Connection = asyncpg.Connection | PoolConnectionProxy

COLUMNS: Final = (
    "position, event_id, stream_id, stream_version, event_type, schema_version, "
    "data, metadata, occurred_at, recorded_at"
)


class Sealer(Protocol):
    """Seals personal data on append and opens it on read (``shared.keyring.Sealer``).
    Keys are read (and created) through ``executor``: the pool, or the connection of a
    unit of work (which must not wait for a second connection while it holds one)."""

    async def seal(
        self, executor: asyncpg.Pool | Connection, events: Sequence[tuple[str, NewEvent]]
    ) -> dict[uuid.UUID, dict[str, Any]]: ...

    async def open(
        self, executor: asyncpg.Pool | Connection, events: Sequence[RecordedEvent]
    ) -> list[RecordedEvent]: ...

    async def prefetch(
        self, executor: asyncpg.Pool | Connection, events: Sequence[RecordedEvent]
    ) -> None: ...


@dataclass(frozen=True)
class InboxRecord:
    """A consumer's receipt of one message, stored with the consumer's effects."""

    consumer: str
    message_id: str


@dataclass(frozen=True)
class AppendResult:
    """What an append left in the store.

    ``deduplicated`` is true when the append was a repetition: its events were already
    stored (they are reported as stored the first time) or its inbox record existed.
    """

    events: tuple[RecordedEvent, ...]
    deduplicated: bool = False

    @property
    def last_position(self) -> int | None:
        return self.events[-1].position if self.events else None

    @property
    def stream_version(self) -> int | None:
        return self.events[-1].stream_version if self.events else None


@dataclass(frozen=True)
class StreamAppend:
    """Events for one stream, with the version the caller decided on (see ``append``)."""

    stream_id: str
    events: Sequence[NewEvent]
    expected_version: int = ANY


@dataclass(frozen=True)
class _Part:
    stream_id: str
    category: str
    events: tuple[NewEvent, ...]
    expected_version: int
    payloads: tuple[tuple[str, str], ...]
    """Each event's data and metadata as JSON, made before the request is queued."""


@dataclass
class _AppendRequest:
    """One caller's atomic append: all its parts are written, or none."""

    parts: tuple[_Part, ...]
    inbox: InboxRecord | None
    future: asyncio.Future[AppendResult] | None = None
    outcome: AppendResult | EventStoreError | None = field(default=None, repr=False)

    @property
    def events(self) -> list[NewEvent]:
        return [event for part in self.parts for event in part.events]


def _prepare(
    parts: Sequence[StreamAppend],
    inbox: InboxRecord | None = None,
    sealed: Mapping[uuid.UUID, dict[str, Any]] | None = None,
) -> _AppendRequest:
    """Validate and serialise an append before it joins a batch, so that one caller's bad
    input fails that caller alone and never the transaction shared with others.
    ``sealed``: the data to store instead of an event's own (its personal fields sealed)."""
    streams = [part.stream_id for part in parts]
    if len(set(streams)) != len(streams):
        raise ValueError("an append must name each stream once")
    ids = [event.event_id for part in parts for event in part.events]
    if len(set(ids)) != len(ids):
        raise ValueError("an append must not carry the same event id twice")
    prepared = []
    for part in parts:
        category = stream_category(part.stream_id)
        if part.expected_version < ANY:
            raise ValueError(f"expected_version must be >= {ANY}, got {part.expected_version}")
        payloads = []
        for event in part.events:
            stored = sealed.get(event.event_id, event.data) if sealed else event.data
            data, metadata = _dumps(stored), event.metadata.model_dump_json()
            if len(data) + len(metadata) > MAX_EVENT_BYTES:
                raise ValueError(
                    f"event {event.event_type} is {len(data) + len(metadata)} bytes of JSON; "
                    f"the limit is {MAX_EVENT_BYTES} (store large files outside the event "
                    "store)"
                )
            payloads.append((data, metadata))
        prepared.append(
            _Part(
                part.stream_id,
                category,
                tuple(part.events),
                part.expected_version,
                tuple(payloads),
            )
        )
    return _AppendRequest(tuple(prepared), inbox)


def _json_default(value: object) -> str:
    if isinstance(value, uuid.UUID | datetime):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


_ORJSON_OPTIONS: Final = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
"""Dates, times and dataclasses go to ``_json_default`` as with ``json``: a datetime is
written as ``str()`` writes it, and anything else of those is refused, not guessed."""


def _dumps(value: object) -> str:
    """Compact JSON, non-ASCII text as it is. orjson for speed; what it refuses (integers
    beyond 64 bits, keys that are not strings, unserialisable values) goes to ``json``, so
    the accepted values and the errors stay those of ``json``."""
    try:
        return orjson.dumps(value, default=_json_default, option=_ORJSON_OPTIONS).decode()
    except TypeError:  # orjson.JSONEncodeError
        return json.dumps(value, default=_json_default, separators=(",", ":"), ensure_ascii=False)


def _loads(text: str) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:  # numbers beyond 64 bits, which jsonb may hold
        return json.loads(text)


async def init_connection(connection: asyncpg.Connection) -> None:
    """Per-connection setup: jsonb as Python objects."""
    await connection.set_type_codec("jsonb", encoder=_dumps, decoder=_loads, schema="pg_catalog")


def recorded_from_row(row: asyncpg.Record) -> RecordedEvent:
    return RecordedEvent(
        position=row["position"],
        event_id=row["event_id"],
        stream_id=row["stream_id"],
        stream_version=row["stream_version"],
        event_type=row["event_type"],
        schema_version=row["schema_version"],
        data=row["data"],
        metadata=Metadata.model_validate(row["metadata"]),
        occurred_at=row["occurred_at"],
        recorded_at=row["recorded_at"],
    )


_READ_STATE: Final = """
    SELECT 'event' AS kind, event_id::text AS key, 0::bigint AS number, NULL::timestamptz AS at
      FROM events WHERE event_id = ANY($1::uuid[])
    UNION ALL
    SELECT 'inbox', i.consumer || chr(31) || i.message_id, 0, NULL
      FROM inbox i JOIN unnest($2::text[], $3::text[]) AS w(consumer, message_id)
        ON i.consumer = w.consumer AND i.message_id = w.message_id
    UNION ALL
    SELECT 'version', s.stream_id,
           coalesce((SELECT max(e.stream_version) FROM events e
                     WHERE e.stream_id = s.stream_id), 0),
           NULL
      FROM unnest($4::text[]) AS s(stream_id)
    UNION ALL
    SELECT 'head', NULL, coalesce((SELECT max(position) FROM events), 0), clock_timestamp()
"""
"""Everything an append batch decides on, in one round trip. Runs after the lock is taken,
so (read committed: a fresh snapshot per statement) it sees every earlier append; the
clock is read after the lock too, so ``recorded_at`` never goes backwards along positions."""

_WRITE: Final = """
    WITH new_events AS (
        INSERT INTO events (position, event_id, stream_id, stream_version, category,
                            event_type, schema_version, data, metadata, occurred_at,
                            recorded_at)
        SELECT p, i, s, v, c, t, sv, d::jsonb, m::jsonb, o, r
        FROM unnest($1::bigint[], $2::uuid[], $3::text[], $4::int[], $5::text[],
                    $6::text[], $7::int[], $8::text[], $9::text[], $10::timestamptz[],
                    $11::timestamptz[]) AS x(p, i, s, v, c, t, sv, d, m, o, r)
    ), new_inbox AS (
        INSERT INTO inbox (consumer, message_id)
        SELECT * FROM unnest($12::text[], $13::text[])
    )
    SELECT pg_notify($14, $15) WHERE cardinality($1::bigint[]) > 0
"""
"""Events, inbox records and the wake-up of tailing readers, in one round trip."""


_APPEND: Final = (
    "SELECT * FROM append_events($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"
)
"""The whole append of a plain batch in one statement (migration 0005, ``append_events``)."""


@dataclass(frozen=True)
class _Plan:
    """A batch as ``append_events`` takes it, and where each event's figures come from."""

    arguments: tuple[Any, ...]
    slots: tuple[tuple[int, int], ...]
    """Per event, in batch order: its part's index and its version above that part's."""


def _plan(requests: Sequence[_AppendRequest]) -> _Plan | None:
    """The batch in the function's terms, or None when the decision needs Python: a stream
    named again with an expected version, an event id or inbox record given twice (the
    first would make the later a repetition or a conflict within the batch)."""
    event_ids: list[uuid.UUID] = []
    parts: list[int] = []
    offsets: list[int] = []
    types: list[str] = []
    schemas: list[int] = []
    data: list[str] = []
    metadata: list[str] = []
    occurred: list[datetime] = []
    streams: list[str] = []
    categories: list[str] = []
    expected: list[int] = []
    consumers: list[str] = []
    messages: list[str] = []
    written: dict[str, int] = {}
    inbox: set[InboxRecord] = set()
    for request in requests:
        if request.inbox is not None:
            if request.inbox in inbox:
                return None
            inbox.add(request.inbox)
            consumers.append(request.inbox.consumer)
            messages.append(request.inbox.message_id)
        for part in request.parts:
            before = written.get(part.stream_id)
            if before is not None and part.expected_version != ANY:
                return None
            streams.append(part.stream_id)
            categories.append(part.category)
            expected.append(part.expected_version)
            index = len(streams)
            offset = before or 0
            for event, (data_json, metadata_json) in zip(part.events, part.payloads, strict=True):
                offset += 1
                event_ids.append(event.event_id)
                parts.append(index)
                offsets.append(offset)
                types.append(event.event_type)
                schemas.append(event.schema_version)
                data.append(data_json)
                metadata.append(metadata_json)
                occurred.append(event.occurred_at)
            written[part.stream_id] = offset
    if len(set(event_ids)) != len(event_ids):
        return None
    return _Plan(
        (
            APPEND_LOCK,
            event_ids,
            parts,
            offsets,
            types,
            schemas,
            data,
            metadata,
            occurred,
            streams,
            categories,
            expected,
            consumers,
            messages,
            NOTIFY_CHANNEL,
        ),
        tuple(zip(parts, offsets, strict=True)),
    )


async def _append_planned(connection: Connection, requests: Sequence[_AppendRequest]) -> bool:
    """Append a plain batch in one round trip (``append_events``) and set every request's
    outcome; False, with nothing written, when the batch needs :func:`_decide_and_write`.

    Outside a transaction the statement is a transaction of its own, committed (and its
    lock released) when it returns; inside the caller's, the lock is kept until it ends."""
    plan = _plan(requests)
    if plan is None:
        return False
    row = await connection.fetchrow(_APPEND, *plan.arguments)
    assert row is not None
    if not row["appended"]:
        return False
    head, recorded_at, versions = row["head"], row["recorded"], row["versions"]
    slots = iter(plan.slots)
    position = head
    for request in requests:
        recorded = []
        for part in request.parts:
            for event in part.events:
                part_index, offset = next(slots)
                position += 1
                # Built without re-validation: every field was validated in NewEvent.
                recorded.append(
                    RecordedEvent.model_construct(
                        position=position,
                        event_id=event.event_id,
                        stream_id=part.stream_id,
                        stream_version=versions[part_index - 1] + offset,
                        event_type=event.event_type,
                        schema_version=event.schema_version,
                        data=event.data,
                        metadata=event.metadata,
                        occurred_at=event.occurred_at,
                        recorded_at=recorded_at,
                    )
                )
        request.outcome = AppendResult(events=tuple(recorded))
    return True


async def _write(connection: Connection, requests: Sequence[_AppendRequest]) -> None:
    """Decide and write ``requests`` in the caller's transaction, under the append lock:
    one round trip for a plain batch, the full decision otherwise."""
    if await _append_planned(connection, requests):
        return
    await connection.execute("SELECT pg_advisory_xact_lock($1)", APPEND_LOCK)
    await _decide_and_write(connection, requests)


async def _decide_and_write(  # noqa: PLR0912, PLR0915 - one decision procedure, clearer whole
    connection: Connection, requests: Sequence[_AppendRequest]
) -> None:
    """Decide and write a batch of appends; the caller holds the append lock.

    Sets ``outcome`` on every request: an :class:`AppendResult` or the typed error for that
    request alone. Only requests whose outcome is a fresh result are written.
    """
    inbox_requests = [request.inbox for request in requests if request.inbox is not None]
    rows = await connection.fetch(
        _READ_STATE,
        [event.event_id for request in requests for event in request.events],
        [record.consumer for record in inbox_requests],
        [record.message_id for record in inbox_requests],
        list({part.stream_id for request in requests for part in request.parts}),
    )
    repeated_ids: list[str] = []
    seen_inbox: set[InboxRecord] = set()
    versions: dict[str, int] = {}
    position, recorded_at = 0, datetime.now(UTC)
    for row in rows:
        kind = row["kind"]
        if kind == "event":
            repeated_ids.append(row["key"])
        elif kind == "inbox":
            consumer, message_id = row["key"].split("\x1f", 1)
            seen_inbox.add(InboxRecord(consumer, message_id))
        elif kind == "version":
            versions[row["key"]] = row["number"]
        else:
            position, recorded_at = row["number"], row["at"]
    existing: dict[uuid.UUID, RecordedEvent] = {}
    if repeated_ids:  # a redelivery: rare, so the full rows are fetched only then
        stored_rows = await connection.fetch(
            f"SELECT {COLUMNS} FROM events WHERE event_id = ANY($1::uuid[])", repeated_ids
        )
        existing = {row["event_id"]: recorded_from_row(row) for row in stored_rows}

    new_rows: list[tuple[Any, ...]] = []
    new_inbox: list[InboxRecord] = []
    for request in requests:
        if request.inbox is not None and request.inbox in seen_inbox:
            request.outcome = AppendResult(events=(), deduplicated=True)
            continue
        events = request.events
        repeated = [event.event_id for event in events if event.event_id in existing]
        if repeated:
            stored = [existing[event_id] for event_id in repeated]
            streams = [part.stream_id for part in request.parts for _ in part.events]
            if len(repeated) == len(events) and [e.stream_id for e in stored] == streams:
                request.outcome = AppendResult(events=tuple(stored), deduplicated=True)
            else:
                request.outcome = IdempotencyConflictError(streams[0], repeated)
            continue
        conflict = next(
            (
                ConcurrencyConflictError(
                    part.stream_id, part.expected_version, versions.get(part.stream_id, 0)
                )
                for part in request.parts
                if part.expected_version not in (ANY, versions.get(part.stream_id, 0))
            ),
            None,
        )
        if conflict is not None:
            request.outcome = conflict
            continue

        recorded: list[RecordedEvent] = []
        for part in request.parts:
            category = part.category if part.events else ""
            current = versions.get(part.stream_id, 0)
            for event, (data_json, metadata_json) in zip(part.events, part.payloads, strict=True):
                position += 1
                current += 1
                # Built without re-validation: every field was validated in NewEvent.
                record = RecordedEvent.model_construct(
                    position=position,
                    event_id=event.event_id,
                    stream_id=part.stream_id,
                    stream_version=current,
                    event_type=event.event_type,
                    schema_version=event.schema_version,
                    data=event.data,
                    metadata=event.metadata,
                    occurred_at=event.occurred_at,
                    recorded_at=recorded_at,
                )
                recorded.append(record)
                existing[event.event_id] = record
                new_rows.append(
                    (
                        position,
                        event.event_id,
                        part.stream_id,
                        current,
                        category,
                        event.event_type,
                        event.schema_version,
                        data_json,
                        metadata_json,
                        event.occurred_at,
                        recorded_at,
                    )
                )
            versions[part.stream_id] = current
        if request.inbox is not None:
            new_inbox.append(request.inbox)
            seen_inbox.add(request.inbox)
        request.outcome = AppendResult(events=tuple(recorded))

    if new_rows or new_inbox:
        columns = [list(column) for column in zip(*new_rows, strict=True)] or [[]] * 11
        await connection.execute(
            _WRITE,
            *columns,
            [record.consumer for record in new_inbox],
            [record.message_id for record in new_inbox],
            NOTIFY_CHANNEL,
            str(position),
        )


def _fail(requests: list[_AppendRequest], error: Exception) -> None:
    for request in requests:
        if request.future is not None and not request.future.done():
            request.future.set_exception(error)


def _resolve(requests: list[_AppendRequest]) -> None:
    for request in requests:
        assert request.future is not None and request.outcome is not None
        if request.future.done():
            continue
        if isinstance(request.outcome, EventStoreError):
            request.future.set_exception(request.outcome)
        else:
            request.future.set_result(request.outcome)


class UnitOfWork:
    """One transaction: the caller's own statements plus staged appends, all or nothing.

    Use it when an effect besides events (a projection row, a dead-letter update) must
    commit together with them. Appends are staged with :meth:`append` and written when the
    block exits; a conflict or a repeated inbox record raises and rolls everything back.
    """

    def __init__(self, connection: Connection, store: EventStore | None = None) -> None:
        self.connection = connection
        self._store = store
        self._requests: list[_AppendRequest] = []
        self.results: list[AppendResult] = []

    def append(
        self,
        stream_id: str,
        events: Sequence[NewEvent],
        expected_version: int = ANY,
    ) -> None:
        self._requests.append(_prepare([StreamAppend(stream_id, events, expected_version)]))

    def record_inbox(self, consumer: str, message_id: str) -> None:
        """Mark ``message_id`` processed by ``consumer`` in this transaction."""
        # An inbox-only request: no events, so its stream id is never written.
        self._requests.append(_AppendRequest((), InboxRecord(consumer, message_id)))

    async def _flush(self) -> None:
        if not self._requests:
            return
        if self._store is not None:
            # Sealed here, not in the synchronous append: keys may need a round trip.
            self._requests = [
                await self._store._sealed(request, self.connection) for request in self._requests
            ]
        await _write(self.connection, self._requests)
        for request in self._requests:
            outcome = request.outcome
            if isinstance(outcome, EventStoreError):
                raise outcome
            assert outcome is not None
            if request.inbox is not None and outcome.deduplicated:
                raise DuplicateMessageError(request.inbox.consumer, request.inbox.message_id)
            if self._store is not None:
                outcome = await self._store._opened(outcome, self.connection)
            self.results.append(outcome)


class EventStore:
    """Append to and read from the event log. One instance per process, shared by tasks."""

    def __init__(
        self, pool: asyncpg.Pool, *, max_batch: int = MAX_BATCH, sealer: Sealer | None = None
    ) -> None:
        """``sealer``: seals personal data on append and opens it on read (without one,
        events are stored and read as they are)."""
        self._pool = pool
        self._max_batch = max_batch
        self._sealer = sealer
        self._queue: asyncio.Queue[_AppendRequest] = asyncio.Queue()
        self._writer: asyncio.Task[None] | None = None
        self._closed = False

    @classmethod
    async def connect(
        cls,
        dsn: str,
        *,
        min_size: int = 2,
        max_size: int = 10,
        max_batch: int = MAX_BATCH,
        sealer: Sealer | None = None,
    ) -> EventStore:
        pool = await create_pool(dsn, min_size=min_size, max_size=max_size)
        return cls(pool, max_batch=max_batch, sealer=sealer)

    @property
    def pool(self) -> asyncpg.Pool:
        return self._pool

    async def close(self) -> None:
        self._closed = True
        if self._writer is not None:
            self._writer.cancel()
            with suppress(asyncio.CancelledError):
                await self._writer
        while not self._queue.empty():
            request = self._queue.get_nowait()
            if request.future is not None and not request.future.done():
                request.future.set_exception(EventStoreError("event store closed"))
        await self._pool.close()

    # -- writing -----------------------------------------------------------------------

    async def append(
        self,
        stream_id: str,
        events: Sequence[NewEvent],
        expected_version: int = ANY,
        *,
        inbox: InboxRecord | None = None,
    ) -> AppendResult:
        """Append ``events`` to ``stream_id`` atomically.

        ``expected_version``: the stream's current version the caller decided on (``0``:
        the stream must not exist; ``ANY``: no check). Raises
        :class:`ConcurrencyConflictError` when the stream is elsewhere.

        Appending events whose ids are all stored already is a no-op that reports the
        stored events (``deduplicated=True``), whatever the expected version: that is how a
        redelivered cause stays harmless. With ``inbox``, the receipt is written in the same
        transaction, and an append whose receipt exists is a no-op too.
        """
        return await self.append_streams(
            [StreamAppend(stream_id, events, expected_version)], inbox=inbox
        )

    async def append_streams(
        self, parts: Sequence[StreamAppend], *, inbox: InboxRecord | None = None
    ) -> AppendResult:
        """Append to several streams atomically: every part is written, or none.

        Each part is checked against its own expected version; the result lists the events
        of all parts in order. Repetition and the inbox work as for :meth:`append`.
        """
        sealed = await self._seal(parts) if self._sealer is not None else None
        request = _prepare(parts, inbox, sealed)
        if not request.events and inbox is None:
            return AppendResult(events=())
        if self._closed:
            raise EventStoreError("event store closed")
        request.future = asyncio.get_running_loop().create_future()
        future = request.future
        self._queue.put_nowait(request)  # unbounded: callers wait on their future instead
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_batches(), name="eventstore-writer")
        result = await future
        return await self._opened(result) if result.deduplicated else result

    # -- personal data -----------------------------------------------------------------

    async def _seal(
        self,
        parts: Sequence[StreamAppend] | Sequence[_Part],
        connection: Connection | None = None,
    ) -> dict[uuid.UUID, dict[str, Any]] | None:
        """The data to store for each event with personal fields (see ``Sealer.seal``)."""
        if self._sealer is None:
            return None
        events = [(part.stream_id, event) for part in parts for event in part.events]
        if not events:
            return None
        return await self._sealer.seal(connection or self._pool, events)

    async def _sealed(self, request: _AppendRequest, connection: Connection) -> _AppendRequest:
        """A staged ``request`` serialised again with its personal data sealed (keys
        through the unit of work's own connection)."""
        sealed = await self._seal(request.parts, connection)
        if not sealed:
            return request
        parts = [StreamAppend(p.stream_id, p.events, p.expected_version) for p in request.parts]
        return _prepare(parts, request.inbox, sealed)

    async def _opened(
        self, result: AppendResult, connection: Connection | None = None
    ) -> AppendResult:
        """A repeated append reports the events as stored: open them for the caller (a
        fresh append reports the caller's own events, in clear already)."""
        if self._sealer is None or not result.deduplicated or not result.events:
            return result
        opened = await self._sealer.open(connection or self._pool, result.events)
        return AppendResult(events=tuple(opened), deduplicated=True)

    async def open(self, events: Sequence[RecordedEvent]) -> list[RecordedEvent]:
        """Stored events as readers see them: personal data in clear, or placeholders and
        ``erased`` when the citizen's key was erased. Raises ``ValueError`` for a sealed
        event that does not open (altered)."""
        if self._sealer is None:
            return list(events)
        return await self._sealer.open(self._pool, events)

    async def prefetch_keys(self, events: Sequence[RecordedEvent]) -> None:
        """Make opening ``events`` one at a time cheap: their keys fetched with one
        statement, into the cache (see :meth:`open`)."""
        if self._sealer is not None:
            await self._sealer.prefetch(self._pool, events)

    async def _write_batches(self) -> None:
        connection: PoolConnectionProxy | None = None
        pending: list[_AppendRequest] = []
        try:
            while True:
                batch = [await self._queue.get()]
                while len(batch) < self._max_batch and not self._queue.empty():
                    batch.append(self._queue.get_nowait())
                pending = [r for r in batch if r.future is not None and not r.future.cancelled()]
                if not pending:
                    continue
                try:
                    # The writer keeps its connection: releasing it to the pool would cost a
                    # reset round trip per batch.
                    if connection is None:
                        connection = await self._pool.acquire()
                    await self._write_one_batch(connection, pending)
                except Exception as error:  # noqa: BLE001 - every caller must hear of it
                    log.warning("append batch of %d failed: %s", len(pending), type(error).__name__)
                    if connection is not None:
                        with suppress(Exception):
                            await self._pool.release(connection, timeout=5)
                        connection = None
                    unavailable = EventStoreUnavailableError(
                        f"append failed: {type(error).__name__}"
                    )
                    unavailable.__cause__ = error
                    _fail(pending, unavailable)
                    continue
                _resolve(pending)
                pending = []
        except asyncio.CancelledError:
            _fail(
                pending,
                EventStoreError("event store closed during the append; it may have committed"),
            )
            raise
        finally:
            if connection is not None:
                with suppress(Exception):
                    await self._pool.release(connection, timeout=5)

    @staticmethod
    async def _write_one_batch(
        connection: PoolConnectionProxy, requests: list[_AppendRequest]
    ) -> None:
        # A plain batch: one statement, its own transaction (autocommit).
        if await _append_planned(connection, requests):
            return
        # Otherwise BEGIN and the lock travel in one message: four round trips in all.
        # READ COMMITTED whatever the server's default: the reads after the lock must take
        # a fresh snapshot that includes every earlier append.
        await connection.execute(
            f"BEGIN ISOLATION LEVEL READ COMMITTED; SELECT pg_advisory_xact_lock({APPEND_LOCK})"
        )
        try:
            await _decide_and_write(connection, requests)
            await connection.execute("COMMIT")
        except BaseException:
            if not connection.is_closed():
                with suppress(Exception):
                    await connection.execute("ROLLBACK")
            raise

    @asynccontextmanager
    async def unit_of_work(self) -> AsyncIterator[UnitOfWork]:
        """A transaction for appends plus the caller's own statements (see UnitOfWork)."""
        async with (
            self._pool.acquire() as connection,
            connection.transaction(isolation="read_committed"),
        ):
            uow = UnitOfWork(connection, self)
            yield uow
            await uow._flush()

    # -- reading -----------------------------------------------------------------------

    async def read_stream(self, stream_id: str, *, from_version: int = 1) -> list[RecordedEvent]:
        rows = await self._pool.fetch(
            f"SELECT {COLUMNS} FROM events WHERE stream_id = $1 AND stream_version >= $2 "
            "ORDER BY stream_version",
            stream_id,
            from_version,
        )
        return await self.open([recorded_from_row(row) for row in rows])

    async def read_streams(
        self, stream_ids: Collection[str], *, connection: Connection | None = None
    ) -> dict[str, list[RecordedEvent]]:
        """Several whole streams with one statement, each in version order (an unknown
        stream is an empty list). On ``connection`` (a unit of work's), keys included, so a
        batch's handler never waits for a second connection while it holds one."""
        executor = connection if connection is not None else self._pool
        rows = await executor.fetch(
            f"SELECT {COLUMNS} FROM events WHERE stream_id = ANY($1::text[]) "
            "ORDER BY stream_id, stream_version",
            list(stream_ids),
        )
        events = [recorded_from_row(row) for row in rows]
        if self._sealer is not None:
            events = await self._sealer.open(executor, events)
        streams: dict[str, list[RecordedEvent]] = {stream_id: [] for stream_id in stream_ids}
        for event in events:
            streams[event.stream_id].append(event)
        return streams

    async def read_category(
        self, category: str, *, after_position: int = 0, limit: int = 1000
    ) -> list[RecordedEvent]:
        rows = await self._pool.fetch(
            f"SELECT {COLUMNS} FROM events WHERE category = $1 AND position > $2 "
            "ORDER BY position LIMIT $3",
            category,
            after_position,
            limit,
        )
        return await self.open([recorded_from_row(row) for row in rows])

    async def read_all(
        self,
        *,
        after_position: int = 0,
        limit: int = 1000,
        event_types: Sequence[str] | None = None,
    ) -> list[RecordedEvent]:
        """Events after ``after_position`` in position order; safe to tail (see module doc)."""
        if event_types:
            rows = await self._pool.fetch(
                f"SELECT {COLUMNS} FROM events WHERE position > $1 AND event_type = ANY($3) "
                "ORDER BY position LIMIT $2",
                after_position,
                limit,
                list(event_types),
            )
        else:
            rows = await self._pool.fetch(
                f"SELECT {COLUMNS} FROM events WHERE position > $1 ORDER BY position LIMIT $2",
                after_position,
                limit,
            )
        return await self.open([recorded_from_row(row) for row in rows])

    async def stream_version(self, stream_id: str) -> int:
        version = await self._pool.fetchval(
            "SELECT coalesce(max(stream_version), 0) FROM events WHERE stream_id = $1", stream_id
        )
        return int(version)

    async def last_position(self) -> int:
        return await head_position(self._pool)

    async def position_at(self, since: datetime) -> int:
        """See :func:`position_at`."""
        return await position_at(self._pool, since)


async def head_position(executor: Connection | asyncpg.Pool) -> int:
    """The last position in the event store (0 when empty)."""
    return int(await executor.fetchval("SELECT coalesce(max(position), 0) FROM events"))


async def position_at(executor: Connection | asyncpg.Pool, since: datetime) -> int:
    """The first position recorded at or after ``since`` (head + 1 when there is none): where
    to replay from to see everything since a moment. Positions are assigned in
    ``recorded_at`` order (the clock is read under the append lock), so this is a boundary."""
    found = await executor.fetchval(
        "SELECT min(position) FROM events WHERE recorded_at >= $1", since
    )
    return int(found) if found is not None else await head_position(executor) + 1


async def _keep_session(connection: asyncpg.Connection) -> None:
    """What a pool connection needs when it goes back: nothing beyond what asyncpg always
    does (roll back an open transaction, drop listener callbacks). Its default reset adds a
    round trip per release (``SELECT pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *;
    RESET ALL``) for session state this code never leaves on a pooled connection: session
    locks and LISTEN are held on dedicated connections (relay, publishers, migrations
    unlock before release), and settings are ``SET LOCAL``."""


async def create_pool(dsn: str, *, min_size: int = 2, max_size: int = 10) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(
        dsn,
        min_size=min(min_size, max_size),
        max_size=max_size,
        init=init_connection,
        reset=_keep_session,
    )
    assert pool is not None
    return pool
