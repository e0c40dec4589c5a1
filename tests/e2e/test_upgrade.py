"""A data folder made by the previous release (one global sequence of migrations) is
upgraded in place by ``adminduk run``: nothing re-applied, nothing lost, and the office's
officers, webhook subscriptions, citizens' keys and request statuses are still there."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest

from shared.runtime.database import DATABASE_NAME
from shared.runtime.embedded import EmbeddedPostgres, ensure_database
from tests.e2e.harness import Runtime, embedded_dsn, serving
from tests.integration.test_migrations import (
    NEWER_THAN_THE_OLD_RUNNER,
    SERVICES_NEWER_THAN_THE_OLD_RUNNER,
)
from tests.legacy import old_migrate

pytestmark = pytest.mark.e2e

OFFICE_ROWS = """
INSERT INTO officers (id, name, role, kecamatan, token_hash, created_by)
VALUES ('op-lama', 'Petugas Lama', 'operator', '{360301}', 'f00d', 'admin');
INSERT INTO webhook_subscriptions (id, url, secret, event_types, created_by, position)
VALUES ('wh_lama', 'https://example.org/hook', 'whsec_abc', '{RequestReceived}', 'admin', 0);
INSERT INTO citizen_keys (key_id, citizen, wrapped_key)
VALUES ('0b9f4a8e-52a4-4bb6-9a36-6d3f1f3c0c11', 'citizen-lama', '\\x0102');
INSERT INTO request_status (ticket, citizen, doc_type, kecamatan_code, status, received_at,
                            updated_at, position, subject_key, promised_on, survey_pending)
VALUES ('KTP-LAMA0001', 'citizen-lama', 'KTP', '360301', 'selesai', '2026-05-01T08:00:00+07',
        '2026-05-02T09:00:00+07', 0, 'subj-123', '2026-05-10', false);
"""


async def _seed_as_the_previous_release(dsn: str) -> None:
    connection = await asyncpg.connect(dsn)
    try:
        await old_migrate(connection)
        await connection.execute(OFFICE_ROWS)
    finally:
        await connection.close()


def test_a_data_folder_of_the_previous_release_is_upgraded_in_place(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    postgres = EmbeddedPostgres(data_dir / "postgres")
    postgres.start()
    try:
        asyncio.run(ensure_database(postgres.dsn("postgres"), DATABASE_NAME))
        asyncio.run(_seed_as_the_previous_release(postgres.dsn(DATABASE_NAME)))
    finally:
        postgres.stop()

    with serving(Runtime(data_dir)) as runtime:
        officers = runtime.cli("officers", "list")
        assert officers.returncode == 0, officers.stderr
        assert "op-lama" in officers.stdout
        webhooks = runtime.cli("webhooks", "list")
        assert webhooks.returncode == 0, webhooks.stderr
        assert "wh_lama" in webhooks.stdout
        rows = asyncio.run(_upgraded(embedded_dsn(data_dir)))

    # Only what was written after the previous release runs; nothing it had is re-applied.
    applied = [line for line in runtime.output().splitlines() if "applied migrations" in line]
    newer = [*NEWER_THAN_THE_OLD_RUNNER, *SERVICES_NEWER_THAN_THE_OLD_RUNNER]
    assert len(applied) <= 1 and all(
        line.endswith(f"applied migrations {newer}") for line in applied
    ), applied
    assert rows.legacy == list(range(1, 12)), "the old bookkeeping is kept as it was"
    assert rows.components == {
        "platform",
        "intake",
        "verification",
        "issuance",
        "notify",
        "integrations",
    }
    assert rows.status == [("KTP-LAMA0001", "selesai", "subj-123")]
    assert rows.keys == 1


@dataclass(frozen=True)
class Upgraded:
    legacy: list[int]
    components: set[str]
    status: list[tuple[str, str, str]]
    keys: int


async def _upgraded(dsn: str) -> Upgraded:
    connection = await asyncpg.connect(dsn)
    try:
        legacy = await connection.fetch(
            "SELECT version FROM schema_migrations_legacy ORDER BY version"
        )
        components = await connection.fetch("SELECT DISTINCT component FROM schema_migrations")
        status = await connection.fetch(
            "SELECT ticket, status, subject_key FROM request_status ORDER BY ticket"
        )
        keys = await connection.fetchval(
            "SELECT count(*) FROM citizen_keys WHERE citizen = 'citizen-lama'"
        )
    finally:
        await connection.close()
    return Upgraded(
        legacy=[row["version"] for row in legacy],
        components={row["component"] for row in components},
        status=[(row["ticket"], row["status"], row["subject_key"]) for row in status],
        keys=int(keys),
    )
