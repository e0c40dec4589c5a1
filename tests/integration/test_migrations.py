"""The migration runner against a real PostgreSQL: per-component sets, and the upgrade of a
database made by the old runner (one global sequence) without re-running or losing anything.

The old runner and its eleven files are kept verbatim in tests/fixtures/legacy_migrations/ so
the upgrade is tested from exactly what earlier releases left in a data folder.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Final

import asyncpg
import pytest

from adminduk.services import MIGRATIONS
from shared.eventstore.migrations import PLATFORM, MigrationSet, available_migrations, migrate
from shared.runtime.embedded import EmbeddedPostgres
from tests.legacy import old_migrate

pytestmark = pytest.mark.integration

ALL_SETS = [PLATFORM, *MIGRATIONS]
"""The platform's and every service's, in the composition root's order."""
ALL_LABELS = [migration.label for s in ALL_SETS for migration in available_migrations(s)]


class Databases:
    """New, empty databases (not copies of the migrated template), dropped at the end."""

    def __init__(self, server: EmbeddedPostgres) -> None:
        self._server = server
        self._names: list[str] = []
        self._connections: list[asyncpg.Connection] = []

    async def create(self) -> str:
        name = f"migrations_{uuid.uuid4().hex[:16]}"
        admin = await asyncpg.connect(self._server.dsn("postgres"))
        try:
            await admin.execute(f'CREATE DATABASE "{name}"')
        finally:
            await admin.close()
        self._names.append(name)
        return name

    async def connect(self, name: str) -> asyncpg.Connection:
        connection = await asyncpg.connect(self._server.dsn(name))
        self._connections.append(connection)
        return connection

    async def new(self) -> asyncpg.Connection:
        """A connection to a new database."""
        return await self.connect(await self.create())

    async def drop_all(self) -> None:
        for connection in self._connections:
            await connection.close()
        admin = await asyncpg.connect(self._server.dsn("postgres"))
        try:
            for name in self._names:
                await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


@pytest.fixture
async def databases(postgres_server: EmbeddedPostgres) -> AsyncIterator[Databases]:
    created = Databases(postgres_server)
    yield created
    await created.drop_all()


async def schema_of(connection: asyncpg.Connection) -> dict[str, list[tuple[Any, ...]]]:
    """Columns, constraints, indexes, triggers, functions and sequences of the schema.

    The old runner's table, kept as schema_migrations_legacy after an upgrade, is left out:
    it is the only thing an upgraded database has more than a fresh one.
    """
    legacy = "schema_migrations_legacy"
    queries = {
        "columns": """
            SELECT table_name, column_name, ordinal_position, data_type, udt_name,
                   column_default, is_nullable, is_identity, identity_generation
            FROM information_schema.columns
            WHERE table_schema = current_schema() AND table_name <> $1
            ORDER BY table_name, ordinal_position
        """,
        "constraints": """
            SELECT t.relname, c.conname, c.contype, pg_get_constraintdef(c.oid)
            FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid
            WHERE t.relnamespace = current_schema()::regnamespace AND t.relname <> $1
            ORDER BY 1, 2
        """,
        "indexes": """
            SELECT tablename, indexname, indexdef FROM pg_indexes
            WHERE schemaname = current_schema() AND tablename <> $1
            ORDER BY 1, 2
        """,
        "triggers": """
            SELECT t.relname, g.tgname, pg_get_triggerdef(g.oid), g.tgenabled
            FROM pg_trigger g JOIN pg_class t ON t.oid = g.tgrelid
            WHERE t.relnamespace = current_schema()::regnamespace AND NOT g.tgisinternal
              AND t.relname <> $1
            ORDER BY 1, 2
        """,
        "functions": """
            SELECT proname, pg_get_functiondef(oid) FROM pg_proc
            WHERE pronamespace = current_schema()::regnamespace
            ORDER BY 1, 2
        """,
        "sequences": """
            SELECT sequence_name, data_type, start_value, increment
            FROM information_schema.sequences
            WHERE sequence_schema = current_schema() AND sequence_name NOT LIKE $1 || '%'
            ORDER BY 1
        """,
    }
    snapshot: dict[str, list[tuple[Any, ...]]] = {}
    for kind, query in queries.items():
        args = [legacy] if "$1" in query else []
        snapshot[kind] = [tuple(row) for row in await connection.fetch(query, *args)]
    return snapshot


async def rows_of(connection: asyncpg.Connection, table: str) -> list[dict[str, Any]]:
    return [dict(row) for row in await connection.fetch(f"SELECT * FROM {table} ORDER BY 1")]


async def recorded_labels(connection: asyncpg.Connection) -> list[str]:
    rows = await connection.fetch("SELECT component, version, name FROM schema_migrations")
    return sorted(f"{row['component']}/{row['version']:04d}_{row['name']}" for row in rows)


async def fresh_schema(databases: Databases) -> dict[str, list[tuple[Any, ...]]]:
    connection = await databases.new()
    assert await migrate(connection, ALL_SETS) == ALL_LABELS
    return await schema_of(connection)


async def test_fresh_database_gets_every_table_once(databases: Databases) -> None:
    connection = await databases.new()

    applied = await migrate(connection, ALL_SETS)

    assert applied == ALL_LABELS
    assert applied[:4] == [
        "platform/0001_event_store",
        "platform/0002_consumers",
        "platform/0003_forbid_truncate",
        "platform/0004_citizen_keys",
    ]
    tables = {
        row["table_name"]
        for row in await connection.fetch(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
        )
    }
    assert tables == {
        "schema_migrations",
        "events",
        "inbox",
        "checkpoints",
        "dead_letters",
        "citizen_keys",
        "request_status",
        "officers",
        "console_sessions",
        "verification_requests",
        "complaints",
        "issuance",
        "notification_outbox",
        "whatsapp_contact",
        "webhook_subscriptions",
        "webhook_dead_letters",
    }
    assert await recorded_labels(connection) == sorted(ALL_LABELS)
    assert await migrate(connection, ALL_SETS) == []
    # PLATFORM is always first and applied once, given or not.
    assert await migrate(connection, [*ALL_SETS[1:], PLATFORM]) == []
    assert await migrate(connection) == []


async def test_platform_alone_then_the_services(databases: Databases) -> None:
    connection = await databases.new()

    platform = [m.label for m in available_migrations(PLATFORM)]
    assert await migrate(connection) == platform
    assert await migrate(connection, ALL_SETS) == ALL_LABELS[len(platform) :]


async def insert_rows_of_every_table(connection: asyncpg.Connection) -> None:
    """One real row per table, as the services write them (after old migration 0011)."""
    await connection.execute(
        """
        INSERT INTO events (position, event_id, stream_id, stream_version, category, event_type,
                            data, metadata, occurred_at)
        VALUES (1, '5d1c3c8e-8f53-4c52-9d4e-1f0f4b7f2a01', 'request-T-0001', 1, 'request',
                'RequestReceived', '{"doc_type": "kk"}', '{"correlation_id": "c1"}',
                '2024-05-01T08:00:00+07');
        INSERT INTO request_status (ticket, citizen, doc_type, kecamatan_code, status,
                                    received_at, updated_at, position, subject_key, promised_on,
                                    survey_pending)
        VALUES ('T-0001', 'citizen-abc', 'kk', '3201010', 'verified', '2024-05-01T08:00:00+07',
                '2024-05-02T09:00:00+07', 1, 'subj-123', '2024-05-10', true);
        INSERT INTO officers (id, name, role, kecamatan, token_hash, created_by)
        VALUES ('op-1', 'Siti', 'operator', '{3201010}', 'f00d', 'admin');
        INSERT INTO issuance (ticket, idempotency_key, doc_type, channel, promised_on)
        VALUES ('T-0001', 'issue-T-0001', 'kk', 'whatsapp', '2024-05-10');
        INSERT INTO notification_outbox (notification_id, recipient, ticket, kind, message,
                                         next_at, created_at, updated_at, trace)
        VALUES ('n-1', 'citizen-abc', 'T-0001', 'status', '{"text": "halo"}',
                '2024-05-02T09:00:00+07', '2024-05-02T09:00:00+07', '2024-05-02T09:00:00+07',
                '{"traceparent": "00-abc-def-01"}');
        INSERT INTO citizen_keys (key_id, citizen, wrapped_key)
        VALUES ('0b9f4a8e-52a4-4bb6-9a36-6d3f1f3c0c11', 'citizen-abc', '\\x0102');
        INSERT INTO webhook_subscriptions (id, url, secret, event_types, created_by, position)
        VALUES ('wh_1', 'https://example.org/hook', 'whsec_abc', '{RequestReceived}', 'admin', 1);
        """
    )


FULL_TABLES = [
    "events",
    "request_status",
    "officers",
    "issuance",
    "notification_outbox",
    "citizen_keys",
    "webhook_subscriptions",
]


NEWER_THAN_THE_OLD_RUNNER: Final = ["platform/0005_append_function"]
"""Migrations written after the old runner was retired: an upgrade applies them."""

SERVICES_NEWER_THAN_THE_OLD_RUNNER: Final = ["verification/0002_console_sessions"]
"""The services' migrations written since: applied once the services' sets are given."""


async def test_upgrade_from_the_old_runner_re_runs_and_loses_nothing(databases: Databases) -> None:
    connection = await databases.new()
    await old_migrate(connection)
    await insert_rows_of_every_table(connection)
    before = {table: await rows_of(connection, table) for table in FULL_TABLES}
    old_rows = await rows_of(connection, "schema_migrations")

    assert await migrate(connection, ALL_SETS) == [
        *NEWER_THAN_THE_OLD_RUNNER,
        *SERVICES_NEWER_THAN_THE_OLD_RUNNER,
    ]

    assert {table: await rows_of(connection, table) for table in FULL_TABLES} == before
    assert all(before.values())
    assert await rows_of(connection, "schema_migrations_legacy") == old_rows
    assert await recorded_labels(connection) == sorted(ALL_LABELS)
    assert await schema_of(connection) == await fresh_schema(databases)
    assert await migrate(connection, ALL_SETS) == []


async def test_upgrade_with_the_platform_alone_then_the_services(databases: Databases) -> None:
    """Services started before the composition root passes their sets must not lose them:
    the old rows kept in schema_migrations_legacy still count when the sets come later."""
    connection = await databases.new()
    await old_migrate(connection)

    assert await migrate(connection) == NEWER_THAN_THE_OLD_RUNNER
    assert await migrate(connection, ALL_SETS) == SERVICES_NEWER_THAN_THE_OLD_RUNNER
    assert await connection.fetchval("SELECT count(*) FROM schema_migrations") == len(ALL_LABELS)


async def test_upgrade_of_a_partially_migrated_old_database(databases: Databases) -> None:
    connection = await databases.new()
    await old_migrate(connection, up_to=5)
    await connection.execute(
        """
        INSERT INTO events (position, event_id, stream_id, stream_version, category, event_type,
                            data, metadata, occurred_at)
        VALUES (1, '5d1c3c8e-8f53-4c52-9d4e-1f0f4b7f2a01', 'request-T-0001', 1, 'request',
                'RequestReceived', '{}', '{}', '2024-05-01T08:00:00+07');
        INSERT INTO request_status (ticket, citizen, doc_type, status, received_at, updated_at,
                                    position)
        VALUES ('T-0001', 'citizen-abc', 'kk', 'received', '2024-05-01T08:00:00+07',
                '2024-05-01T08:00:00+07', 1);
        INSERT INTO officers (id, name, role, token_hash, created_by)
        VALUES ('op-1', 'Siti', 'operator', 'f00d', 'admin');
        """
    )
    before = {t: await rows_of(connection, t) for t in ("events", "request_status", "officers")}

    applied = await migrate(connection, ALL_SETS)

    # Old 0006..0011 were missing: their successors run now, nothing of 0001..0005 again.
    assert applied == [
        "platform/0004_citizen_keys",
        *NEWER_THAN_THE_OLD_RUNNER,
        "intake/0002_request_status_subject",
        "intake/0003_request_status_promise",
        *SERVICES_NEWER_THAN_THE_OLD_RUNNER,
        "issuance/0001_issuance",
        "notify/0001_notifications",
        "notify/0002_outbox_trace",
        "integrations/0001_webhooks",
    ]
    after = {t: await rows_of(connection, t) for t in ("events", "request_status", "officers")}
    assert after["events"] == before["events"]
    assert after["officers"] == before["officers"]
    assert after["request_status"] == [
        {
            **before["request_status"][0],
            "subject_key": None,
            "promised_on": None,
            "survey_pending": False,
        }
    ]
    assert await schema_of(connection) == await fresh_schema(databases)


async def test_concurrent_migrations_apply_each_file_once(databases: Databases) -> None:
    name = await databases.create()
    first, second = await databases.connect(name), await databases.connect(name)

    applied = await asyncio.gather(migrate(first, ALL_SETS), migrate(second, ALL_SETS))

    assert sorted(applied[0] + applied[1]) == sorted(ALL_LABELS)
    assert [] in applied
    assert await first.fetchval("SELECT count(*) FROM schema_migrations") == len(ALL_LABELS)


async def test_a_gap_in_a_set_is_refused_before_anything_is_applied(
    databases: Databases, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = f"gappy_{uuid.uuid4().hex[:8]}"
    folder = tmp_path / package
    folder.mkdir()
    (folder / "__init__.py").write_text('"""A set with a missing file."""\n')
    (folder / "0001_first.sql").write_text("CREATE TABLE gappy_first (id int);\n")
    (folder / "0003_third.sql").write_text("CREATE TABLE gappy_third (id int);\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    connection = await databases.new()

    with pytest.raises(RuntimeError, match=r"gappy migration versions .* 1\.\.n without gaps"):
        await migrate(connection, [*ALL_SETS, MigrationSet("gappy", package)])

    assert await connection.fetchval("SELECT to_regclass('schema_migrations')") is None


def test_every_old_version_has_a_successor() -> None:
    """The replaces headers cover the old sequence 1..11, each file of it at least once."""
    replaced = {
        version for s in ALL_SETS for m in available_migrations(s) for version in m.replaces
    }
    assert replaced == set(range(1, 12))
    successors = {m.label: sorted(m.replaces) for s in ALL_SETS for m in available_migrations(s)}
    assert successors["intake/0003_request_status_promise"] == [7]
    assert successors["issuance/0001_issuance"] == [7]
