"""The schema as the previous releases left it in a data folder: one global sequence of
eleven migrations (kept verbatim in tests/fixtures/legacy_migrations/) applied by the old
runner, whose logic is copied here. Used to test that an existing data folder upgrades in
place."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Final

import asyncpg

from shared.eventstore.locks import MIGRATIONS_LOCK

LEGACY_DIR: Final = Path(__file__).parent / "fixtures" / "legacy_migrations"
LEGACY_FILE: Final = re.compile(r"^(?P<version>\d{4})_(?P<name>[a-z0-9_]+)\.sql$")


async def old_migrate(connection: asyncpg.Connection, up_to: int = 11) -> None:
    """What the previous main's runner did (shared/eventstore/migrations/__init__.py)."""
    await connection.execute("SELECT pg_advisory_lock($1)", MIGRATIONS_LOCK)
    try:
        await connection.execute(
            """
            CREATE TABLE IF NOT EXISTS schema_migrations (
                version     integer     PRIMARY KEY,
                name        text        NOT NULL,
                applied_at  timestamptz NOT NULL DEFAULT now()
            )
            """
        )
        for path in sorted(LEGACY_DIR.glob("*.sql")):
            match = LEGACY_FILE.match(path.name)
            assert match is not None
            version = int(match["version"])
            if version > up_to:
                continue
            async with connection.transaction():
                await connection.execute(path.read_text("utf-8"))
                await connection.execute(
                    "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                    version,
                    match["name"],
                )
    finally:
        await connection.execute("SELECT pg_advisory_unlock($1)", MIGRATIONS_LOCK)
