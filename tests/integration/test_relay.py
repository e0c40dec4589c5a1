"""The outbox relay against real Postgres and NATS."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest

from shared.bus import jetstream as js
from shared.bus.relay import CHECKPOINT, Relay
from shared.eventstore.envelope import Metadata, NewEvent
from shared.eventstore.store import EventStore
from tests.integration.bus import all_messages, checkpoint, stream_count, wait_for_count

pytestmark = pytest.mark.integration

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


async def append_many(store: EventStore, count: int, *, per_append: int = 7) -> None:
    appends = []
    for start in range(0, count, per_append):
        size = min(per_append, count - start)
        kind = "notification" if start % 2 else "request"
        appends.append(
            store.append(
                f"{kind}-{start}",
                [
                    NewEvent(
                        event_type="RequestReceived" if kind == "request" else "MessageQueued",
                        data={"n": start + i},
                        metadata=Metadata(trace={"traceparent": TRACEPARENT}),
                    )
                    for i in range(size)
                ],
            )
        )
    await asyncio.gather(*appends)


async def test_relay_publishes_every_event_once_in_position_order(
    event_store: EventStore, database_url: str, nats_url: str, running_relay: Relay
) -> None:
    await append_many(event_store, 1000)

    assert await wait_for_count(nats_url, 1000) == 1000
    messages = await all_messages(nats_url)
    stored = {event.position: event for event in await event_store.read_all(limit=2000)}

    positions = [int(message.headers[js.HEADER_POSITION]) for message in messages]  # type: ignore[index]
    assert positions == list(range(1, 1001))
    for message in messages:
        event = stored[int(message.headers[js.HEADER_POSITION])]  # type: ignore[index]
        assert message.subject == f"adminduk.events.{event.category}.{event.event_type}"
        assert message.headers[js.HEADER_MSG_ID] == str(event.event_id)  # type: ignore[index]
        assert message.headers["traceparent"] == TRACEPARENT  # type: ignore[index]
        assert js.decode(message.data) == event
    await asyncio.sleep(0.3)
    assert await checkpoint(database_url, CHECKPOINT) == 1000


async def test_notify_wakes_the_relay_long_before_its_poll_interval(
    event_store: EventStore, database_url: str, nats_url: str
) -> None:
    relay = Relay(database_url, [nats_url], poll_interval=60)
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))
    try:
        await asyncio.wait_for(relay.active.wait(), 10)
        await asyncio.sleep(0.3)  # the relay has found nothing and sleeps for a minute
        await event_store.append("request-A", [NewEvent(event_type="RequestReceived", data={})])
        assert await wait_for_count(nats_url, 1, timeout=10) == 1
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


async def test_only_one_relay_is_active_and_a_standby_takes_over(
    event_store: EventStore, database_url: str, nats_url: str
) -> None:
    first, second = (Relay(database_url, [nats_url], poll_interval=0.1) for _ in range(2))
    stop_first, stop_second = asyncio.Event(), asyncio.Event()
    first_task = asyncio.create_task(first.run(stop_first))
    await asyncio.wait_for(first.active.wait(), 10)
    second_task = asyncio.create_task(second.run(stop_second))
    try:
        await append_many(event_store, 300)
        assert await wait_for_count(nats_url, 300) == 300
        while await checkpoint(database_url, CHECKPOINT) < 300:
            await asyncio.sleep(0.05)
        assert first.active.is_set()
        assert not second.active.is_set()
        assert second.published == 0

        stop_first.set()
        await asyncio.wait_for(first_task, 10)
        await asyncio.wait_for(second.active.wait(), 10)
        await append_many(event_store, 100)
        assert await wait_for_count(nats_url, 400) == 400
        while await checkpoint(database_url, CHECKPOINT) < 400:
            await asyncio.sleep(0.05)
        assert second.published == 100
    finally:
        stop_first.set()
        stop_second.set()
        await asyncio.wait_for(asyncio.gather(first_task, second_task), 10)


async def test_republishing_after_a_lost_checkpoint_creates_no_duplicate(
    event_store: EventStore, database_url: str, nats_url: str
) -> None:
    await append_many(event_store, 500)
    for _ in range(2):
        relay = Relay(database_url, [nats_url], poll_interval=0.1)
        stop = asyncio.Event()
        task = asyncio.create_task(relay.run(stop))
        await asyncio.wait_for(relay.active.wait(), 10)
        await wait_for_count(nats_url, 500)
        while await checkpoint(database_url, CHECKPOINT) < 500:
            await asyncio.sleep(0.05)
        stop.set()
        await asyncio.wait_for(task, 10)
        assert relay.published == 500
        # As if the checkpoint update had been lost in a crash: everything goes out again.
        connection = await asyncpg.connect(database_url)
        await connection.execute("UPDATE checkpoints SET position = 0")
        await connection.close()

    assert await stream_count(nats_url) == 500


def start_relay_process(
    database_url: str, nats_url: str, data_dir: Path
) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "ADMINDUK_DATABASE_URL": database_url,
        "ADMINDUK_NATS_URL": nats_url,
        "ADMINDUK_DATA_DIR": str(data_dir),
        "ADMINDUK_RELAY_BATCH_SIZE": "2000",
        "OTEL_TRACES_EXPORTER": "none",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "shared.bus.relay"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def test_relay_killed_mid_batch_leaves_every_event_in_jetstream_exactly_once(
    event_store: EventStore, database_url: str, nats_url: str, data_dir: Path
) -> None:
    total = 30_000
    await append_many(event_store, total, per_append=50)

    killed_mid_batch = 0
    for _ in range(6):
        process = start_relay_process(database_url, nats_url, data_dir)
        try:
            # Kill as soon as JetStream holds events the checkpoint does not yet cover.
            for _ in range(2000):
                published = await stream_count(nats_url)
                done = await checkpoint(database_url, CHECKPOINT)
                if published > done or published == total:
                    break
                await asyncio.sleep(0.005)
        finally:
            process.send_signal(signal.SIGKILL)
            process.wait(10)
        published, done = await stream_count(nats_url), await checkpoint(database_url, CHECKPOINT)
        if published > done:
            killed_mid_batch += 1
        if published == total:
            break

    assert killed_mid_batch >= 1, "the relay was never killed between publish and checkpoint"
    process = start_relay_process(database_url, nats_url, data_dir)
    try:
        for _ in range(600):
            if await checkpoint(database_url, CHECKPOINT) == total:
                break
            await asyncio.sleep(0.1)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(20)

    assert await checkpoint(database_url, CHECKPOINT) == total
    messages = await all_messages(nats_url)
    positions = sorted(int(m.headers[js.HEADER_POSITION]) for m in messages)  # type: ignore[index]
    assert positions == list(range(1, total + 1)), "an event is missing or doubled"
    assert len({m.headers[js.HEADER_MSG_ID] for m in messages}) == total  # type: ignore[index]
