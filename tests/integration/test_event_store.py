"""The event store against a real PostgreSQL."""

from __future__ import annotations

import asyncio
import datetime
import random
import uuid

import asyncpg
import pytest

from shared import contracts as c
from shared.config import Settings
from shared.eventstore.envelope import (
    ANY,
    NO_STREAM,
    Metadata,
    NewEvent,
    RecordedEvent,
    deterministic_event_id,
)
from shared.eventstore.errors import (
    ConcurrencyConflictError,
    DuplicateMessageError,
    EventStoreError,
    IdempotencyConflictError,
)
from shared.eventstore.locks import APPEND_LOCK
from shared.eventstore.store import (
    COLUMNS,
    EventStore,
    InboxRecord,
    StreamAppend,
    recorded_from_row,
)
from shared.keyring import Sealer

pytestmark = pytest.mark.integration


def event(event_type: str = "SomethingHappened", **data: object) -> NewEvent:
    return NewEvent(event_type=event_type, data=dict(data))


async def test_append_assigns_versions_and_positions(event_store: EventStore) -> None:
    first = await event_store.append("request-A", [event(n=1), event(n=2)], NO_STREAM)
    second = await event_store.append("request-B", [event(n=3)], NO_STREAM)
    third = await event_store.append("request-A", [event(n=4)], 2)

    assert [e.stream_version for e in first.events] == [1, 2]
    assert [e.position for e in first.events + second.events + third.events] == [1, 2, 3, 4]
    assert third.events[0].stream_version == 3
    stream = await event_store.read_stream("request-A")
    assert [e.data["n"] for e in stream] == [1, 2, 4]
    assert await event_store.stream_version("request-A") == 3
    assert await event_store.stream_version("request-unknown") == 0


async def test_envelope_round_trips_metadata_and_times(event_store: EventStore) -> None:
    correlation = uuid.uuid4()
    metadata = Metadata(
        correlation_id=correlation,
        causation_id=correlation,
        trace={"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
        actor="system:intake",
    )
    appended = await event_store.append(
        "request-A",
        [
            NewEvent(
                event_type="RequestReceived",
                data={"nested": {"list": [1, "dua"]}},
                metadata=metadata,
            )
        ],
    )
    [stored] = await event_store.read_all()
    assert stored == appended.events[0]
    assert stored.metadata == metadata
    assert stored.data == {"nested": {"list": [1, "dua"]}}
    assert stored.category == "request"
    assert stored.recorded_at >= stored.occurred_at.replace(microsecond=0)


async def test_wrong_expected_version_raises_typed_conflict(event_store: EventStore) -> None:
    await event_store.append("request-A", [event()], NO_STREAM)

    with pytest.raises(ConcurrencyConflictError) as caught:
        await event_store.append("request-A", [event()], NO_STREAM)
    assert (caught.value.expected_version, caught.value.actual_version) == (0, 1)

    with pytest.raises(ConcurrencyConflictError):
        await event_store.append("request-A", [event()], 5)
    assert await event_store.stream_version("request-A") == 1


async def test_two_deciders_on_one_version_exactly_one_wins(event_store: EventStore) -> None:
    await event_store.append("request-A", [event()], NO_STREAM)

    outcomes = await asyncio.gather(
        *(event_store.append("request-A", [event(officer=i)], 1) for i in range(10)),
        return_exceptions=True,
    )
    winners = [o for o in outcomes if not isinstance(o, BaseException)]
    losers = [o for o in outcomes if isinstance(o, ConcurrencyConflictError)]
    assert len(winners) == 1
    assert len(losers) == 9
    assert await event_store.stream_version("request-A") == 2


async def test_repeated_append_is_a_no_op_reporting_the_stored_events(
    event_store: EventStore,
) -> None:
    message_id = "wamid.HBgLNjI4MTIzNDU2Nzg5FQIAEhgg"
    events = [
        NewEvent(
            event_id=deterministic_event_id("whatsapp", message_id),
            event_type="MessageReceived",
            data={"text": "halo"},
        )
    ]
    first = await event_store.append("conversation-1", events, NO_STREAM)
    again = await event_store.append("conversation-1", events, NO_STREAM)
    concurrently = await asyncio.gather(
        *(event_store.append("conversation-1", events, NO_STREAM) for _ in range(5))
    )

    assert not first.deduplicated
    assert again.deduplicated
    assert again.events == first.events
    assert all(result.deduplicated for result in concurrently)
    assert len(await event_store.read_all()) == 1


async def test_partly_repeated_append_is_refused(event_store: EventStore) -> None:
    first = NewEvent(event_type="A", data={})
    await event_store.append("request-A", [first])

    with pytest.raises(IdempotencyConflictError):
        await event_store.append("request-A", [first, NewEvent(event_type="B", data={})])
    with pytest.raises(IdempotencyConflictError):
        await event_store.append("request-OTHER", [first])
    assert len(await event_store.read_all()) == 1


async def test_one_conflict_does_not_fail_the_rest_of_its_batch(event_store: EventStore) -> None:
    await event_store.append("request-A", [event()], NO_STREAM)
    results = await asyncio.gather(
        event_store.append("request-A", [event()], NO_STREAM),
        *(event_store.append(f"request-{i}", [event()], NO_STREAM) for i in range(50)),
        return_exceptions=True,
    )
    assert isinstance(results[0], ConcurrencyConflictError)
    assert all(not isinstance(result, BaseException) for result in results[1:])
    assert await event_store.last_position() == 51


async def test_inbox_record_makes_a_redelivery_harmless(event_store: EventStore) -> None:
    receipt = InboxRecord(consumer="verification", message_id="evt-1")
    first = await event_store.append("request-A", [event()], inbox=receipt)
    second = await event_store.append("request-A", [event()], inbox=receipt)

    assert not first.deduplicated
    assert second.deduplicated
    assert second.events == ()
    assert len(await event_store.read_stream("request-A")) == 1


async def test_unit_of_work_commits_own_statements_with_events(event_store: EventStore) -> None:
    async with event_store.unit_of_work() as uow:
        await uow.connection.execute(
            "INSERT INTO checkpoints (name, position) VALUES ('projection', 7)"
        )
        uow.append("request-A", [event()], NO_STREAM)
        uow.record_inbox("projection", "evt-7")

    assert await event_store.pool.fetchval("SELECT position FROM checkpoints") == 7
    assert len(await event_store.read_stream("request-A")) == 1

    with pytest.raises(DuplicateMessageError):
        async with event_store.unit_of_work() as uow:
            await uow.connection.execute("UPDATE checkpoints SET position = 8")
            uow.append("request-A", [event()])
            uow.record_inbox("projection", "evt-7")
    # Rolled back: neither the statement nor the event is there.
    assert await event_store.pool.fetchval("SELECT position FROM checkpoints") == 7
    assert len(await event_store.read_stream("request-A")) == 1

    with pytest.raises(ConcurrencyConflictError):
        async with event_store.unit_of_work() as uow:
            await uow.connection.execute("UPDATE checkpoints SET position = 9")
            uow.append("request-A", [event()], NO_STREAM)
    assert await event_store.pool.fetchval("SELECT position FROM checkpoints") == 7


async def test_read_by_category_and_type(event_store: EventStore) -> None:
    await event_store.append("request-A", [event("RequestReceived")])
    await event_store.append("notification-1", [event("NotificationSent")])
    await event_store.append("request-B", [event("RequestReceived"), event("RequestVerified")])

    requests = await event_store.read_category("request")
    assert [e.stream_id for e in requests] == ["request-A", "request-B", "request-B"]
    after = await event_store.read_category("request", after_position=requests[0].position)
    assert len(after) == 2
    verified = await event_store.read_all(event_types=["RequestVerified"])
    assert [e.event_type for e in verified] == ["RequestVerified"]
    assert [e.position for e in await event_store.read_all(after_position=2, limit=1)] == [3]


async def test_several_streams_are_read_at_once_in_version_order_personal_data_opened(
    event_store: EventStore,
) -> None:
    phone = "6281234567890"
    received = c.RequestReceived(
        ticket="KTP-AAAA0001",
        doc_type="KTP",
        citizen="citizen-abc",
        phone=phone,
        kecamatan_code="360301",
        applicant={"nik": "3603014506900001", "nama": "SITI AMINAH"},
        message_id="wamid.1",
        received_at=datetime.datetime(2026, 12, 7, 3, 0, tzinfo=datetime.UTC),
    )
    await event_store.append("request-A", [received.to_new_event()])
    await event_store.append("request-B", [event(n=1), event(n=2)])
    await event_store.append("request-A", [event(n=3)])
    await event_store.append("request-C", [event(n=4)])

    async with event_store.unit_of_work() as uow:
        streams = await event_store.read_streams(
            ["request-B", "request-A", "request-none"], connection=uow.connection
        )
    assert list(streams) == ["request-B", "request-A", "request-none"]
    assert [e.data.get("n") for e in streams["request-B"]] == [1, 2]
    assert [e.stream_version for e in streams["request-A"]] == [1, 2]
    stored = await event_store.pool.fetchval(
        "SELECT data::text FROM events WHERE stream_id = 'request-A' AND stream_version = 1"
    )
    assert phone not in stored  # sealed in the row...
    assert streams["request-A"][0].data["phone"] == phone  # ...and opened for the reader
    assert streams["request-none"] == []
    assert await event_store.read_streams(["request-C"]) == {
        "request-C": await event_store.read_stream("request-C")
    }


async def test_keys_prefetched_for_a_batch_open_its_events_without_a_statement_each(
    event_store: EventStore, database_url: str
) -> None:
    for n in range(3):
        received = c.RequestReceived(
            ticket=f"KTP-AAAA000{n}",
            doc_type="KTP",
            citizen=f"citizen-{n}",
            phone=f"628123456789{n}",
            kecamatan_code="360301",
            applicant={"nik": "3603014506900001", "nama": "SITI AMINAH"},
            message_id=f"wamid.{n}",
            received_at=datetime.datetime(2026, 12, 7, 3, 0, tzinfo=datetime.UTC),
        )
        await event_store.append(f"request-{n}", [received.to_new_event()])
    # Another process: its key cache is empty, the events come as stored (sealed).
    sealer = Sealer.from_settings(Settings())
    reader = await EventStore.connect(database_url, sealer=sealer)

    class NoStatements:
        async def fetch(self, *_: object) -> list[asyncpg.Record]:
            raise AssertionError("a key was read from the database")

    try:
        rows = await reader.pool.fetch(f"SELECT {COLUMNS} FROM events ORDER BY position")
        stored = [recorded_from_row(row) for row in rows]
        with pytest.raises(AssertionError, match="a key was read"):
            await sealer.open(NoStatements(), stored[:1])  # type: ignore[arg-type]
        await reader.prefetch_keys(stored)  # one statement for the three keys
        opened = [(await sealer.open(NoStatements(), [event]))[0] for event in stored]  # type: ignore[arg-type]
    finally:
        await reader.close()
    assert [event.data["phone"] for event in opened] == [f"628123456789{n}" for n in range(3)]


async def test_events_cannot_be_updated_or_deleted(event_store: EventStore) -> None:
    await event_store.append("request-A", [event()])
    with pytest.raises(Exception, match="immutable"):
        await event_store.pool.execute("UPDATE events SET event_type = 'Forged'")
    with pytest.raises(Exception, match="immutable"):
        await event_store.pool.execute("DELETE FROM events")


async def test_malformed_input_is_refused_before_touching_the_database(
    event_store: EventStore,
) -> None:
    with pytest.raises(ValueError, match="stream id"):
        await event_store.append("no category", [event()])
    duplicate = event()
    with pytest.raises(ValueError, match="same event id"):
        await event_store.append("request-A", [duplicate, duplicate])
    with pytest.raises(ValueError):
        await event_store.append("request-A", [event()], expected_version=-5)
    assert await event_store.last_position() == 0


async def test_concurrent_writers_never_hide_an_event_from_a_tailing_reader(
    database_url: str,
) -> None:
    """8 writers with their own connection pools append 1,000 events each, in transactions
    of random sizes, while a reader tails by position. The reader must see every event
    exactly once, in position order, with no gap: the guarantee the relay relies on."""
    writers, per_writer = 8, 1000
    stores = [
        await EventStore.connect(database_url, min_size=1, max_size=2) for _ in range(writers)
    ]
    reader_store = await EventStore.connect(database_url, min_size=1, max_size=1)
    written: list[uuid.UUID] = []
    done = asyncio.Event()

    async def write(store: EventStore, writer: int) -> None:
        rng = random.Random(writer)
        remaining = per_writer
        in_flight: list[asyncio.Task[object]] = []
        while remaining:
            size = min(remaining, rng.randint(1, 25))
            remaining -= size
            batch = [event(writer=writer) for _ in range(size)]
            written.extend(e.event_id for e in batch)
            stream = f"request-{writer}-{rng.randint(0, 20)}"
            in_flight.append(asyncio.create_task(store.append(stream, batch, ANY)))
            if len(in_flight) >= 4:
                await asyncio.gather(*in_flight)
                in_flight.clear()
            await asyncio.sleep(rng.random() / 1000)
        await asyncio.gather(*in_flight)

    seen: list[RecordedEvent] = []

    async def tail() -> None:
        position = 0
        while True:
            finished = done.is_set()
            page = await reader_store.read_all(after_position=position, limit=317)
            for recorded in page:
                assert recorded.position == position + 1, "the reader saw a gap"
                position = recorded.position
                seen.append(recorded)
            if finished and not page:
                return
            if not page:
                await asyncio.sleep(0.001)

    reader = asyncio.create_task(tail())
    try:
        await asyncio.gather(*(write(store, i) for i, store in enumerate(stores)))
        done.set()
        await asyncio.wait_for(reader, timeout=60)
    finally:
        for store in [*stores, reader_store]:
            await store.close()

    seen_ids = [recorded.event_id for recorded in seen]
    assert len(seen_ids) == writers * per_writer
    assert len(set(seen_ids)) == len(seen_ids), "the reader saw an event twice"
    assert set(seen_ids) == set(written)
    assert [recorded.position for recorded in seen] == list(range(1, writers * per_writer + 1))


async def test_one_callers_unserialisable_data_fails_only_that_caller(
    event_store: EventStore,
) -> None:
    bad = NewEvent(event_type="RequestReceived", data={"born": datetime.date(2001, 5, 17)})
    results = await asyncio.gather(
        event_store.append("request-BAD", [bad]),
        *(event_store.append(f"request-{i}", [event()]) for i in range(5)),
        return_exceptions=True,
    )
    assert isinstance(results[0], TypeError)
    assert all(not isinstance(result, BaseException) for result in results[1:])
    assert await event_store.last_position() == 5


async def test_an_event_too_large_for_the_bus_is_refused(event_store: EventStore) -> None:
    with pytest.raises(ValueError, match="limit"):
        await event_store.append("request-A", [event(photo="x" * (600 * 1024))])
    assert await event_store.last_position() == 0


async def test_closing_the_store_never_leaves_an_append_waiting(database_url: str) -> None:
    store = await EventStore.connect(database_url)
    blocker = await asyncpg.connect(database_url)
    try:
        await blocker.execute("SELECT pg_advisory_lock($1)", APPEND_LOCK)
        pending = asyncio.create_task(store.append("request-A", [event()]))
        await asyncio.sleep(0.3)  # the writer now waits for the lock inside its batch
        await asyncio.wait_for(store.close(), 10)
        with pytest.raises(EventStoreError):
            await asyncio.wait_for(pending, 5)
    finally:
        await blocker.close()


async def test_truncate_is_forbidden_too(event_store: EventStore) -> None:
    await event_store.append("request-A", [event()])
    with pytest.raises(Exception, match="immutable"):
        await event_store.pool.execute("TRUNCATE events")


async def test_appending_to_several_streams_is_all_or_nothing(event_store: EventStore) -> None:
    await event_store.append("request-TAKEN", [event()], NO_STREAM)
    parts = [
        StreamAppend("citizen-1", [event("RequestSubmitted")], NO_STREAM),
        StreamAppend("request-TAKEN", [event("RequestReceived")], NO_STREAM),
    ]
    with pytest.raises(ConcurrencyConflictError) as caught:
        await event_store.append_streams(parts)
    assert caught.value.stream_id == "request-TAKEN"
    assert await event_store.stream_version("citizen-1") == 0

    parts[1] = StreamAppend("request-NEW", [event("RequestReceived")], NO_STREAM)
    written = await event_store.append_streams(parts)
    assert [(e.stream_id, e.stream_version) for e in written.events] == [
        ("citizen-1", 1),
        ("request-NEW", 1),
    ]
    again = await event_store.append_streams(parts)
    assert again.deduplicated
    assert again.events == written.events
    with pytest.raises(ValueError, match="each stream once"):
        await event_store.append_streams([parts[0], parts[0]])
