"""Replays and rebuilds in chunks (many events in one transaction) against a real Postgres:
the same rows and receipts as one event at a time on the same sealed history (erased
citizens included), and a failing event parked as before while the rest of its chunk
applies."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from adminduk.ops import catalogue
from adminduk.ops.rebuild import rebuild
from adminduk.ops.replay import (
    ChunkStore,
    ReplayCounts,
    replay_to_consumer,
    replay_to_projection,
)
from adminduk.ops.selection import Selection, select
from benchmarks.replay import History
from shared.bus.consumer import HandlerContext, PermanentError
from shared.config import Settings
from shared.eventstore.store import EventStore
from shared.keyring import Sealer

pytestmark = pytest.mark.integration

TABLES = {
    "request_status": ("request_status",),
    "verification": ("verification_requests", "complaints"),
}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data")


@pytest.fixture
async def history(database_url: str, settings: Settings) -> AsyncIterator[int]:
    """A sealed history of about 1,500 events; one citizen's key erased."""
    store = await EventStore.connect(database_url, sealer=Sealer.from_settings(settings))
    try:
        head = await History(store, settings, wave=20).add(1500)
        await store.pool.execute(
            "UPDATE citizen_keys SET wrapped_key = NULL, erased_at = now() "
            "WHERE citizen = (SELECT min(citizen) FROM citizen_keys)"
        )
        yield head
    finally:
        await store.close()


async def rows(store: EventStore, table: str) -> list[dict[str, Any]]:
    found = await store.pool.fetch(f"SELECT * FROM {table} ORDER BY ticket")
    return [dict(row) for row in found]


async def snapshot(store: EventStore, projection: str) -> dict[str, list[dict[str, Any]]]:
    return {table: await rows(store, table) for table in TABLES[projection]}


async def clear(store: EventStore, projection: str) -> None:
    for table in TABLES[projection]:
        await store.pool.execute(f"TRUNCATE {table}")


async def project(
    store: EventStore, settings: Settings, projection: str, head: int, chunk: int
) -> ReplayCounts:
    name = catalogue.projection(projection).consumer
    async with catalogue.consumer(name, settings, store) as (spec, handler):
        events = select(store, Selection(from_position=1), until=head, subjects=spec.subjects)
        return await replay_to_projection(store, spec, handler, events, chunk=chunk, delays=())


@pytest.mark.parametrize("projection", ["request_status", "verification"])
async def test_chunks_project_what_one_at_a_time_projects(
    database_url: str,
    settings: Settings,
    history: int,
    projection: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    plain = await EventStore.connect(database_url, sealer=Sealer.from_settings(settings))
    chunked = await ChunkStore.open_at(database_url, Sealer.from_settings(settings))
    try:
        one = await project(plain, settings, projection, history, chunk=1)
        expected = await snapshot(plain, projection)
        assert all(expected.values())
        await clear(plain, projection)

        many = await project(chunked, settings, projection, history, chunk=300)
        assert (many.selected, many.delivered, many.failed) == (one.selected, one.selected, 0)
        assert await snapshot(plain, projection) == expected
        assert "one at a time" not in caplog.text  # the chunks did not fall back

        # The rebuild (chunks in the shadow schema, then the swap) ends equal too.
        await clear(plain, projection)
        result = await rebuild(database_url, settings, catalogue.projection(projection), page=250)
        assert result.applied == one.selected
        assert await snapshot(plain, projection) == expected
    finally:
        await plain.close()
        await chunked.close()


async def receipts(store: EventStore, consumer: str) -> set[str]:
    found = await store.pool.fetch("SELECT message_id FROM inbox WHERE consumer = $1", consumer)
    return {row["message_id"] for row in found}


async def test_a_consumer_in_chunks_writes_the_same_rows_and_receipts(
    database_url: str, settings: Settings, history: int, caplog: pytest.LogCaptureFixture
) -> None:
    consumer = "intake-request-status"
    plain = await EventStore.connect(database_url, sealer=Sealer.from_settings(settings))
    chunked = await ChunkStore.open_at(database_url, Sealer.from_settings(settings))
    try:

        async def replay(store: EventStore, chunk: int, **options: Any) -> ReplayCounts:
            async with catalogue.consumer(consumer, settings, store) as (spec, handler):
                events = select(
                    store, Selection(from_position=1), until=history, subjects=spec.subjects
                )
                return await replay_to_consumer(
                    store, spec, handler, events, chunk=chunk, delays=(), **options
                )

        one = await replay(plain, 1)
        expected_rows, expected_receipts = (
            await rows(plain, "request_status"),
            await receipts(plain, consumer),
        )
        assert expected_receipts and one.failed == 0
        await clear(plain, "request_status")
        await plain.pool.execute("DELETE FROM inbox WHERE consumer = $1", consumer)

        many = await replay(chunked, 200)
        assert (many.selected, many.delivered, many.already_handled, many.failed) == (
            one.selected,
            one.delivered,
            one.already_handled,
            0,
        )
        assert await rows(plain, "request_status") == expected_rows
        assert await receipts(plain, consumer) == expected_receipts
        assert "one at a time" not in caplog.text

        again = await replay(chunked, 200)
        assert again.already_handled == len(expected_receipts)
        assert again.delivered == one.selected - len(expected_receipts)

        dry = await replay(chunked, 200, dry_run=True)
        assert (dry.delivered, dry.already_handled) == (again.delivered, again.already_handled)

        reprocessed = await replay(chunked, 200, reprocess=True)
        assert reprocessed.delivered == one.selected and reprocessed.failed == 0
        assert await rows(plain, "request_status") == expected_rows
        assert await receipts(plain, consumer) == expected_receipts
    finally:
        await plain.close()
        await chunked.close()


async def test_a_failing_event_is_parked_and_the_rest_of_its_chunk_applies(
    database_url: str, settings: Settings, history: int
) -> None:
    consumer = "intake-request-status"
    store = await ChunkStore.open_at(database_url, Sealer.from_settings(settings))
    try:
        async with catalogue.consumer(consumer, settings, store) as (spec, handler):
            events = [
                event
                async for event in select(
                    store, Selection(from_position=1), until=history, subjects=spec.subjects
                )
            ]
            bad = events[len(events) // 2]

            async def failing(context: HandlerContext) -> None:
                if context.event.event_id == bad.event_id:
                    raise PermanentError("this one never works")
                await handler(context)

            async def selected() -> AsyncIterator[Any]:
                for event in events:
                    yield event

            counts = await replay_to_consumer(
                store, spec, failing, selected(), chunk=100, delays=()
            )
        assert counts.failed == 1
        assert counts.dead_letters == [str(bad.event_id)]
        assert counts.delivered == len(events) - 1
        parked = await store.pool.fetchrow(
            "SELECT consumer, position, status FROM dead_letters WHERE message_id = $1",
            str(bad.event_id),
        )
        assert parked is not None and tuple(parked) == (consumer, bad.position, "dead")
        handled = await receipts(store, consumer)
        assert str(bad.event_id) not in handled
        neighbours = [e for e in events if abs(e.position - bad.position) < 50 and e != bad]
        assert any(str(e.event_id) in handled for e in neighbours)
        tickets = await store.pool.fetchval("SELECT count(*) FROM request_status")
        assert tickets == sum(1 for e in events if e.event_type == "RequestReceived") - (
            bad.event_type == "RequestReceived"
        )
    finally:
        await store.close()


async def test_a_projection_chunk_that_fails_is_redone_one_event_at_a_time(
    database_url: str, settings: Settings, history: int
) -> None:
    store = await ChunkStore.open_at(database_url, Sealer.from_settings(settings))
    try:
        async with catalogue.consumer("intake-request-status", settings, store) as (
            spec,
            handler,
        ):
            events = [
                event
                async for event in select(
                    store, Selection(from_position=1), until=history, subjects=spec.subjects
                )
            ]
            bad = next(e for e in events if e.event_type == "RequestReceived")

            async def failing(context: HandlerContext) -> None:
                if context.event.event_id == bad.event_id:
                    raise PermanentError("never")
                await handler(context)

            async def selected() -> AsyncIterator[Any]:
                for event in events:
                    yield event

            counts = await replay_to_projection(
                store, spec, failing, selected(), chunk=100, delays=()
            )
        assert (counts.failed, counts.delivered) == (1, len(events) - 1)
        ticket = bad.stream_id.removeprefix("request-")
        assert (
            await store.pool.fetchval(
                "SELECT count(*) FROM request_status WHERE ticket = $1", ticket
            )
            == 0
        )
        assert await store.pool.fetchval("SELECT count(*) FROM request_status") > 0
    finally:
        await store.close()
