"""Append batches against a real PostgreSQL: the one-round-trip path (``append_events``) and
its fall-back to the decision in Python keep every guarantee of the store."""

from __future__ import annotations

import asyncio
import datetime
import itertools
import uuid

import asyncpg
import pytest

from shared.eventstore.envelope import ANY, NO_STREAM, NewEvent
from shared.eventstore.errors import (
    ConcurrencyConflictError,
    DuplicateMessageError,
    IdempotencyConflictError,
)
from shared.eventstore.locks import APPEND_LOCK
from shared.eventstore.store import (
    NOTIFY_CHANNEL,
    AppendResult,
    EventStore,
    InboxRecord,
    StreamAppend,
    _dumps,
)

pytestmark = pytest.mark.integration


def event(event_type: str = "SomethingHappened", **data: object) -> NewEvent:
    return NewEvent(event_type=event_type, data=dict(data))


async def test_what_an_append_reports_is_what_was_stored(event_store: EventStore) -> None:
    results = await asyncio.gather(
        *(
            event_store.append(f"request-{i}", [event(n=i), event(n=-i)], NO_STREAM)
            for i in range(20)
        )
    )

    reported = sorted((e for result in results for e in result.events), key=lambda e: e.position)
    stored = await event_store.read_all()
    assert [e.model_dump() for e in reported] == [e.model_dump() for e in stored]
    assert [e.position for e in stored] == list(range(1, 41))
    assert all(result.stream_version == 2 for result in results)


async def test_a_stream_named_again_in_one_batch_gets_the_next_versions(
    event_store: EventStore,
) -> None:
    await event_store.append("request-A", [event()], NO_STREAM)

    results = await asyncio.gather(
        *(event_store.append("request-A", [event(n=i), event(n=i)], ANY) for i in range(10))
    )

    versions = sorted(v for result in results for v in (e.stream_version for e in result.events))
    assert versions == list(range(2, 22))
    stored = await event_store.read_stream("request-A")
    assert [e.stream_version for e in stored] == list(range(1, 22))
    assert [e.position for e in stored] == list(range(1, 22)), "versions follow positions"


async def test_an_expected_version_met_by_an_earlier_request_of_the_same_batch(
    event_store: EventStore,
) -> None:
    first, second = await asyncio.gather(
        event_store.append("request-A", [event()], NO_STREAM),
        event_store.append("request-A", [event()], 1),
    )

    assert (first.stream_version, second.stream_version) == (1, 2)


async def test_each_request_of_a_mixed_batch_gets_its_own_outcome(
    event_store: EventStore,
) -> None:
    """A conflict, a repetition, a partial repetition and a repeated inbox record in one
    batch with fresh appends: only the fresh ones are written, each caller hears its own."""
    stored_event = event()
    await event_store.append("request-A", [stored_event], NO_STREAM)
    receipt = InboxRecord("verification", "msg-1")
    await event_store.append("request-B", [event()], inbox=receipt)

    outcomes = await asyncio.gather(
        event_store.append("request-A", [event()], NO_STREAM),
        event_store.append("request-A", [stored_event], NO_STREAM),
        event_store.append("request-A", [stored_event, event()]),
        event_store.append("request-B", [event()], inbox=receipt),
        *(event_store.append(f"request-new{i}", [event()], NO_STREAM) for i in range(10)),
        return_exceptions=True,
    )

    conflict, repeat, partial, duplicate, *fresh = outcomes
    assert isinstance(conflict, ConcurrencyConflictError)
    assert conflict.actual_version == 1
    assert isinstance(repeat, AppendResult) and repeat.deduplicated
    assert [e.event_id for e in repeat.events] == [stored_event.event_id]
    assert isinstance(partial, IdempotencyConflictError)
    assert isinstance(duplicate, AppendResult) and duplicate.deduplicated
    assert duplicate.events == ()
    assert all(isinstance(result, AppendResult) and not result.deduplicated for result in fresh)
    assert [e.position for e in await event_store.read_all()] == list(range(1, 13))


async def test_an_append_to_several_streams_with_a_conflict_writes_none_of_them(
    event_store: EventStore,
) -> None:
    await event_store.append("request-A", [event()], NO_STREAM)

    with pytest.raises(ConcurrencyConflictError):
        await event_store.append_streams(
            [
                StreamAppend("request-B", [event()], NO_STREAM),
                StreamAppend("request-A", [event()], NO_STREAM),
            ]
        )

    assert await event_store.stream_version("request-B") == 0
    assert await event_store.last_position() == 1


async def test_appenders_in_several_stores_keep_positions_gapless_in_commit_order(
    database_url: str,
) -> None:
    """Four stores (as four processes) append concurrently to shared and to new streams:
    positions are 1..n, ``recorded_at`` (read under the lock) never goes back along them,
    and every stream's versions are 1..k in position order."""
    stores = [await EventStore.connect(database_url, min_size=1, max_size=2) for _ in range(4)]
    try:
        await asyncio.gather(
            *(
                store.append(f"request-{'shared' if i % 3 == 0 else f'{s}-{i}'}", [event()], ANY)
                for i in range(100)
                for s, store in enumerate(stores)
            )
        )
        stored = await stores[0].read_all()
    finally:
        for store in stores:
            await store.close()

    assert [e.position for e in stored] == list(range(1, 401))
    assert all(a.recorded_at <= b.recorded_at for a, b in itertools.pairwise(stored))
    versions: dict[str, list[int]] = {}
    for recorded in stored:
        versions.setdefault(recorded.stream_id, []).append(recorded.stream_version)
    assert all(found == list(range(1, len(found) + 1)) for found in versions.values())
    assert len(versions["request-shared"]) == 4 * 34


async def test_tailing_readers_are_woken_with_the_last_position(
    event_store: EventStore, database_url: str
) -> None:
    woken: asyncio.Queue[str] = asyncio.Queue()
    listener = await asyncpg.connect(database_url)
    try:
        await listener.add_listener(NOTIFY_CHANNEL, lambda *args: woken.put_nowait(args[3]))
        await event_store.append("request-A", [event(), event()])
        first = await asyncio.wait_for(woken.get(), timeout=5)
        await event_store.append("request-A", [event()], 2)
        second = await asyncio.wait_for(woken.get(), timeout=5)
    finally:
        await listener.close()

    assert (first, second) == ("2", "3")


async def test_a_unit_of_work_appends_in_the_callers_transaction(
    event_store: EventStore,
) -> None:
    with pytest.raises(RuntimeError):
        async with event_store.unit_of_work() as uow:
            uow.append("request-A", [event()], NO_STREAM)
            uow.append("request-B", [event()], NO_STREAM)
            uow.record_inbox("projection", "evt-1")
            await uow._flush()  # written in the caller's transaction, which is still open
            held = await uow.connection.fetchval(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
                " AND pid = pg_backend_pid()"
            )
            assert held == 1, "the append lock is kept until the caller's transaction ends"
            raise RuntimeError("the caller fails after the append")

    assert await event_store.last_position() == 0
    async with event_store.unit_of_work() as uow:
        uow.append("request-A", [event()], NO_STREAM)
        uow.record_inbox("projection", "evt-1")
    assert [result.stream_version for result in uow.results] == [1, None]  # event, receipt

    with pytest.raises(DuplicateMessageError):
        async with event_store.unit_of_work() as uow:
            uow.append("request-B", [event()], NO_STREAM)
            uow.record_inbox("projection", "evt-1")
    assert await event_store.stream_version("request-B") == 0


async def test_the_append_function_declines_outside_read_committed(
    event_store: EventStore,
) -> None:
    """Under repeatable read its reads would not see appends committed after the snapshot:
    it writes nothing, takes no lock, and the store decides in Python instead."""
    async with (
        event_store.pool.acquire() as connection,
        connection.transaction(isolation="repeatable_read"),
    ):
        row = await connection.fetchrow(
            "SELECT * FROM append_events($1, $2, '{1}', '{1}', '{SomethingHappened}', '{1}',"
            " '{\"{}\"}', '{\"{}\"}', ARRAY[now()], '{request-A}', '{request}', '{0}', '{}',"
            " '{}', $3)",
            APPEND_LOCK,
            [uuid.uuid4()],
            NOTIFY_CHANNEL,
        )
        held = await connection.fetchval(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()"
        )
    assert row is not None and not row["appended"]
    assert held == 0
    assert await event_store.last_position() == 0


def test_json_is_written_as_the_json_module_wrote_it() -> None:
    moment = datetime.datetime(2026, 5, 1, 8, 0, tzinfo=datetime.UTC)
    key = uuid.UUID("5d1c3c8e-8f53-4c52-9d4e-1f0f4b7f2a01")
    value = {
        "text": "Selamat pagi — akta kelahiran 👶",
        "at": moment,
        "id": key,
        "n": [1, 2.5, None, True],
    }
    assert _dumps(value) == (
        '{"text":"Selamat pagi — akta kelahiran 👶","at":"2026-05-01 08:00:00+00:00",'
        '"id":"5d1c3c8e-8f53-4c52-9d4e-1f0f4b7f2a01","n":[1,2.5,null,true]}'
    )
    assert _dumps({1: 2**70}) == '{"1":1180591620717411303424}'
    with pytest.raises(TypeError):
        _dumps({"born": datetime.date(2001, 5, 17)})


async def test_non_ascii_text_and_large_numbers_read_back_unchanged(
    event_store: EventStore,
) -> None:
    data: dict[str, object] = {
        "text": "Selamat pagi — akta kelahiran 👶",
        "big": 2**70,
        "small": -(2**63),
    }
    await event_store.append("request-A", [NewEvent(event_type="Noted", data=data)], NO_STREAM)

    (stored,) = await event_store.read_stream("request-A")
    assert stored.data == data
