"""Helpers for tests that look at what reached JetStream."""

from __future__ import annotations

import asyncio
import time

import asyncpg
import nats
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError

from shared.bus import jetstream as js


async def stream_count(nats_url: str, stream: str = js.STREAM_NAME) -> int:
    client = await nats.connect(nats_url)
    try:
        info = await client.jetstream().stream_info(stream)
        return int(info.state.messages)
    except NotFoundError:
        return 0
    finally:
        await client.close()


async def wait_for_count(
    nats_url: str, expected: int, timeout: float = 30.0, stream: str = js.STREAM_NAME
) -> int:
    """Wait until the stream holds ``expected`` messages; return the count it ends with."""
    deadline = time.monotonic() + timeout
    count = await stream_count(nats_url, stream)
    while count < expected and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
        count = await stream_count(nats_url, stream)
    return count


async def all_messages(
    nats_url: str, stream: str = js.STREAM_NAME, subjects: str = js.ALL_EVENTS
) -> list[Msg]:
    """Every message of the stream, in stream order, through an ephemeral consumer."""
    client = await nats.connect(nats_url)
    try:
        jetstream = client.jetstream()
        total = (await jetstream.stream_info(stream)).state.messages
        subscription = await jetstream.pull_subscribe(
            subjects,
            stream=stream,
            config=ConsumerConfig(
                deliver_policy=DeliverPolicy.ALL, ack_policy=AckPolicy.NONE, inactive_threshold=30
            ),
        )
        messages: list[Msg] = []
        while len(messages) < total:
            messages.extend(await subscription.fetch(batch=500, timeout=5))
        return messages
    finally:
        await client.close()


async def checkpoint(database_url: str, name: str) -> int:
    """The position a relay (or another tailer) has published up to."""
    connection = await asyncpg.connect(database_url)
    try:
        value = await connection.fetchval("SELECT position FROM checkpoints WHERE name = $1", name)
        return int(value or 0)
    finally:
        await connection.close()
