"""Fixtures: a real PostgreSQL and a real NATS server for the whole session.

Each test gets its own database (a copy of a migrated template, so it is fast) and a NATS
server with no streams left over from the previous test.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import nats
import pytest

from adminduk.services import MIGRATIONS
from shared.bus.relay import Relay
from shared.config import Settings
from shared.eventstore.migrations import migrate
from shared.eventstore.store import EventStore
from shared.keyring import Sealer
from shared.runtime.embedded import EmbeddedNats, EmbeddedPostgres, ensure_database

TEMPLATE_DATABASE = "adminduk_template"


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedPostgres]:
    server = EmbeddedPostgres(tmp_path_factory.mktemp("postgres"), durable=False)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
async def template_database(postgres_server: EmbeddedPostgres) -> str:
    await ensure_database(postgres_server.dsn("postgres"), TEMPLATE_DATABASE)
    connection = await asyncpg.connect(postgres_server.dsn(TEMPLATE_DATABASE))
    try:
        await migrate(connection, MIGRATIONS)
    finally:
        await connection.close()
    return TEMPLATE_DATABASE


@pytest.fixture
async def database_url(
    postgres_server: EmbeddedPostgres, template_database: str
) -> AsyncIterator[str]:
    name = f"test_{uuid.uuid4().hex[:16]}"
    admin = await asyncpg.connect(postgres_server.dsn("postgres"))
    try:
        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_database}"')
    finally:
        await admin.close()
    yield postgres_server.dsn(name)
    admin = await asyncpg.connect(postgres_server.dsn("postgres"))
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture
async def event_store(database_url: str) -> AsyncIterator[EventStore]:
    """The store as services build it: personal data sealed with the settings' key."""
    store = await EventStore.connect(database_url, sealer=Sealer.from_settings(Settings()))
    yield store
    await store.close()


INTEGRATOR_PASSWORD = 'in"te\\gr$tor #pw'
"""The session NATS's integrator password: quotes, a backslash, ``$`` and ``#`` prove the
generated server config takes it literally. Not URL-safe: log in with user=/password=."""


@pytest.fixture(scope="session")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedNats]:
    """The session's NATS, with the same accounts and users as the embedded runtime."""
    server = EmbeddedNats(tmp_path_factory.mktemp("nats"), integrator_password=INTEGRATOR_PASSWORD)
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def nats_url(nats_server: EmbeddedNats) -> str:
    """The session's NATS server as the services log in (their credentials are in the
    URL), emptied of the streams earlier tests created."""
    connection = await nats.connect(nats_server.service_url)
    try:
        jetstream = connection.jetstream()
        for stream in await jetstream.streams_info():
            assert stream.config.name is not None
            await jetstream.delete_stream(stream.config.name)
    finally:
        await connection.close()
    return nats_server.service_url


@pytest.fixture
def nats_public_url(nats_server: EmbeddedNats, nats_url: str) -> str:
    """The same (emptied) server without credentials, as ``nats.url`` gives it to
    integrators; they log in as ``integrator`` with :func:`integrator_password`."""
    return nats_server.url


@pytest.fixture(scope="session")
def integrator_password() -> str:
    return INTEGRATOR_PASSWORD


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "data"
    path.mkdir()
    return path


@pytest.fixture
async def running_relay(database_url: str, nats_url: str) -> AsyncIterator[Relay]:
    """An outbox relay publishing this test's database to this test's NATS."""
    relay = Relay(database_url, [nats_url], batch_size=200, poll_interval=0.2)
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))
    await asyncio.wait_for(relay.active.wait(), 10)
    yield relay
    stop.set()
    await asyncio.wait_for(task, 10)
