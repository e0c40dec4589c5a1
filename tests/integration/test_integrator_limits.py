"""Integrators cannot exhaust the office's NATS (issue 15, finding 10): the public stream
holds a bounded number of consumers, each with bounded unacknowledged messages and removed
once idle past the stream's retention; the integrators' account a bounded number of
connections and subscriptions. Against the session's real server, which runs the accounts
the embedded runtime writes (tests/conftest.py)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta

import nats
import pytest
from nats.aio.client import Client as NatsClient
from nats.js.api import ConsumerConfig, StreamConfig
from nats.js.errors import BadRequestError

from services.integrations.publisher import (
    PUBLIC_MAX_ACK_PENDING,
    PUBLIC_MAX_CONSUMERS,
    ensure_public_stream,
)
from shared.bus import jetstream as js
from shared.bus.permissions import (
    INTEGRATOR_MAX_CONNECTIONS,
    INTEGRATOR_MAX_SUBSCRIPTIONS,
    INTEGRATOR_USER,
)
from tests.integration.test_nats_permissions import Integrator

pytestmark = pytest.mark.integration

MAX_AGE = timedelta(days=30)


@pytest.fixture
async def service(nats_url: str) -> AsyncIterator[NatsClient]:
    client = await js.connect([nats_url], name="adminduk-test")
    await ensure_public_stream(client.jetstream(), timedelta(minutes=2), MAX_AGE)
    yield client
    await client.drain()


@pytest.fixture
async def integrator(
    service: NatsClient, nats_public_url: str, integrator_password: str
) -> AsyncIterator[Integrator]:
    connection = Integrator()
    await connection.connect(nats_public_url, integrator_password)
    yield connection
    await connection.client.close()


async def test_the_public_stream_holds_a_bounded_number_of_consumers(
    integrator: Integrator,
) -> None:
    jetstream = integrator.jetstream()
    for number in range(PUBLIC_MAX_CONSUMERS):
        await jetstream.add_consumer(
            js.PUBLIC_STREAM_NAME, ConsumerConfig(durable_name=f"agency-{number}")
        )
    with pytest.raises(BadRequestError, match="maximum consumers"):
        await jetstream.add_consumer(
            js.PUBLIC_STREAM_NAME, ConsumerConfig(durable_name="one-too-many")
        )


async def test_a_consumer_is_bounded_and_forgotten_once_idle(integrator: Integrator) -> None:
    jetstream = integrator.jetstream()
    with pytest.raises(BadRequestError):
        await jetstream.add_consumer(
            js.PUBLIC_STREAM_NAME,
            ConsumerConfig(durable_name="greedy", max_ack_pending=PUBLIC_MAX_ACK_PENDING + 1),
        )
    created = await jetstream.add_consumer(
        js.PUBLIC_STREAM_NAME, ConsumerConfig(durable_name="agency")
    )
    assert created.config.max_ack_pending == PUBLIC_MAX_ACK_PENDING
    assert created.config.inactive_threshold == MAX_AGE.total_seconds()


async def test_an_existing_public_stream_gets_the_limits(nats_url: str) -> None:
    """A stream the previous release created has none: the next start sets them."""
    client = await js.connect([nats_url], name="adminduk-test")
    try:
        jetstream = client.jetstream()
        await jetstream.add_stream(
            StreamConfig(name=js.PUBLIC_STREAM_NAME, subjects=[js.ALL_PUBLIC], allow_direct=True)
        )
        await ensure_public_stream(jetstream, timedelta(minutes=2), MAX_AGE)
        config = (await jetstream.stream_info(js.PUBLIC_STREAM_NAME)).config
        assert config.max_consumers == PUBLIC_MAX_CONSUMERS
        assert config.consumer_limits is not None
        assert config.consumer_limits.max_ack_pending == PUBLIC_MAX_ACK_PENDING
    finally:
        await client.drain()


async def test_integrators_have_a_bounded_number_of_connections(
    nats_public_url: str, integrator_password: str
) -> None:
    connections: list[NatsClient] = []
    try:
        for _ in range(INTEGRATOR_MAX_CONNECTIONS):
            connections.append(
                await nats.connect(
                    nats_public_url,
                    user=INTEGRATOR_USER,
                    password=integrator_password,
                    allow_reconnect=False,
                )
            )
        with pytest.raises(nats.errors.Error, match="maximum account active connections"):
            await nats.connect(
                nats_public_url,
                user=INTEGRATOR_USER,
                password=integrator_password,
                allow_reconnect=False,
            )
    finally:
        for connection in connections:
            with contextlib.suppress(Exception):
                await connection.close()


async def test_integrators_have_a_bounded_number_of_subscriptions(
    integrator: Integrator,
) -> None:
    client = integrator.client

    def refused() -> bool:
        reported = [*integrator.errors, str(client.last_error).lower()]
        return any("maximum subscriptions exceeded" in error for error in reported)

    # The server refuses the subscription past the limit (and may then close the
    # connection, which the client reports on a later call).
    with contextlib.suppress(nats.errors.Error):
        for number in range(INTEGRATOR_MAX_SUBSCRIPTIONS + 1):
            await client.subscribe(f"adminduk.public.Type{number}")
        await client.flush()
    deadline = asyncio.get_running_loop().time() + 10
    while not refused():
        assert asyncio.get_running_loop().time() < deadline, "no subscription was refused"
        await asyncio.sleep(0.05)
