"""Versioned schema migrations: each component's numbered SQL files, applied once, in order.

The platform (this package: the event store and what every service needs beside it) and each
service own their tables, each in its own package of ``NNNN_name.sql`` files numbered 1..n.
The composition root says which sets a deployment has and in which order; the platform's
always come first, so a service's tables may refer to the platform's.

Every service calls :func:`migrate` at start-up. A session advisory lock makes concurrent
start-ups wait for each other instead of racing; each file runs in its own transaction
together with its row in ``schema_migrations``, so a crash leaves no half-applied file.

Databases made before the split have one global sequence (``schema_migrations`` keyed by
``version`` alone). Such a table is converted, without re-running anything, from the
``-- replaces: 0007`` header a file carries in its first comment lines: the old version(s)
it was cut from. A file counts as applied when every version it replaces was. The old rows
stay in ``schema_migrations_legacy``, both for the record and so that a set the caller did
not pass at conversion time is still recognised when it is passed later. This runner
knows no component: the mapping lives only in the SQL headers.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Final

import asyncpg

from shared.eventstore.locks import MIGRATIONS_LOCK

log = logging.getLogger(__name__)

_FILE_NAME = re.compile(r"^(?P<version>\d{4})_(?P<name>[a-z0-9_]+)\.sql$")
_COMPONENT = re.compile(r"^[a-z][a-z0-9_-]*$")
_REPLACES = re.compile(r"^--\s*replaces:\s*(?P<versions>.*?)\s*$")
_OLD_VERSION = re.compile(r"^\d+$")


@dataclass(frozen=True)
class MigrationSet:
    """One owner's migrations: a component name and the package holding its SQL files."""

    component: str
    """Recorded in ``schema_migrations``; a deployment's sets must have distinct ones."""
    package: str
    """An importable package holding ``NNNN_name.sql`` files, e.g. ``services.x.migrations``."""

    def __post_init__(self) -> None:
        if not _COMPONENT.match(self.component):
            raise ValueError(
                f"migration component must match {_COMPONENT.pattern}: {self.component!r}"
            )


PLATFORM: Final = MigrationSet("platform", __name__)
"""The event store, consumers' bookkeeping, citizens' keys: applied before any service's."""


@dataclass(frozen=True)
class Migration:
    component: str
    version: int
    name: str
    sql: str
    replaces: frozenset[int]
    """Versions of the old global sequence this file was cut from (its ``replaces`` header)."""

    @property
    def label(self) -> str:
        return f"{self.component}/{self.version:04d}_{self.name}"


def available_migrations(migration_set: MigrationSet = PLATFORM) -> list[Migration]:
    """The set's migrations in order; refuse a set whose versions are not 1..n.

    A gap or a duplicate would mean a file was lost or two branches chose the same number:
    applying "the rest" then would silently skip or reorder schema changes.
    """
    found = []
    for entry in resources.files(migration_set.package).iterdir():
        if not entry.name.endswith(".sql"):
            continue
        match = _FILE_NAME.match(entry.name)
        if not match:
            raise RuntimeError(
                f"{migration_set.component} migration {entry.name!r} in {migration_set.package}"
                " is not named NNNN_name.sql: it would never be applied"
            )
        sql = entry.read_text("utf-8")
        found.append(
            Migration(
                component=migration_set.component,
                version=int(match["version"]),
                name=match["name"],
                sql=sql,
                replaces=_replaced_versions(sql, f"{migration_set.package}/{entry.name}"),
            )
        )
    found.sort(key=lambda migration: migration.version)
    versions = [migration.version for migration in found]
    if versions != list(range(1, len(found) + 1)):
        raise RuntimeError(
            f"{migration_set.component} migration versions (in {migration_set.package}) must be"
            f" 1..n without gaps or duplicates, found {versions}"
        )
    return found


def _replaced_versions(sql: str, where: str) -> frozenset[int]:
    """Read the ``-- replaces: N, M`` header from the leading comment lines."""
    replaced: set[int] = set()
    for line in sql.splitlines():
        stripped = line.strip()
        if not stripped:
            continue
        if not stripped.startswith("--"):
            break
        match = _REPLACES.match(stripped)
        if match:
            parts = [part.strip() for part in match["versions"].split(",")]
            if not parts or not all(_OLD_VERSION.match(part) and int(part) > 0 for part in parts):
                raise RuntimeError(f"{where}: malformed header {stripped!r}")
            replaced.update(int(part) for part in parts)
    return frozenset(replaced)


def _in_order(sets: Sequence[MigrationSet]) -> list[MigrationSet]:
    """PLATFORM first, then the caller's order; a set given twice counts once."""
    ordered: list[MigrationSet] = []
    packages: dict[str, str] = {}
    for migration_set in (PLATFORM, *sets):
        known = packages.get(migration_set.component)
        if known == migration_set.package:
            continue
        if known is not None:
            raise ValueError(
                f"two migration sets named {migration_set.component!r}:"
                f" {known} and {migration_set.package}"
            )
        packages[migration_set.component] = migration_set.package
        ordered.append(migration_set)
    return ordered


async def migrate(connection: asyncpg.Connection, sets: Sequence[MigrationSet] = ()) -> list[str]:
    """Apply PLATFORM's missing migrations, then each set's, in the order given.

    Return what was applied now, as ``component/NNNN_name``. PLATFORM comes first whether
    given or not (and once), so every service's tables may refer to the platform's.
    """
    # Read and check every file before touching the database: a bad set stops everything.
    migrations = [
        migration
        for migration_set in _in_order(sets)
        for migration in available_migrations(migration_set)
    ]
    applied_now: list[str] = []
    await connection.execute("SELECT pg_advisory_lock($1)", MIGRATIONS_LOCK)
    try:
        await _convert_legacy_table(connection, migrations)
        await connection.execute(
            """
            CREATE TABLE IF NOT EXISTS schema_migrations (
                component   text        NOT NULL,
                version     integer     NOT NULL,
                name        text        NOT NULL,
                applied_at  timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (component, version)
            )
            """
        )
        done = {
            (row["component"], row["version"])
            for row in await connection.fetch("SELECT component, version FROM schema_migrations")
        }
        legacy = await _legacy_versions(connection)
        for migration in migrations:
            if (migration.component, migration.version) in done:
                continue
            async with connection.transaction():
                if _applied_by_old_runner(migration, legacy):
                    # A set not passed when the old table was converted: record, don't re-run.
                    await _record(connection, migration)
                    log.info("recorded migration %s as applied by the old runner", migration.label)
                    continue
                await connection.execute(migration.sql)
                await _record(connection, migration)
            log.info("applied migration %s", migration.label)
            applied_now.append(migration.label)
    finally:
        await connection.execute("SELECT pg_advisory_unlock($1)", MIGRATIONS_LOCK)
    return applied_now


async def _convert_legacy_table(
    connection: asyncpg.Connection, migrations: Iterable[Migration]
) -> None:
    """Turn the old runner's global ``schema_migrations`` into the per-component one.

    One transaction: the old rows move to ``schema_migrations_legacy`` and every given
    migration whose replaced versions were all applied is recorded, or nothing changes.
    """
    columns = await connection.fetchval(
        """
        SELECT coalesce(array_agg(attname::text), '{}')
        FROM pg_attribute
        WHERE attrelid = to_regclass('schema_migrations') AND attnum > 0 AND NOT attisdropped
        """
    )
    if not columns or "component" in columns:
        return  # a fresh database, or one already converted
    async with connection.transaction():
        if await connection.fetchval("SELECT to_regclass('schema_migrations_legacy') IS NOT NULL"):
            raise RuntimeError(
                "cannot convert the old schema_migrations: schema_migrations_legacy already exists"
            )
        await connection.execute("ALTER TABLE schema_migrations RENAME TO schema_migrations_legacy")
        # Its constraints (the primary key; on PostgreSQL 18 the NOT NULLs too) keep their
        # names: rename them, so the new table gets the same names as in a fresh database.
        for constraint in await connection.fetch(
            """
            SELECT conname::text AS name FROM pg_constraint
            WHERE conrelid = 'schema_migrations_legacy'::regclass
              AND conname LIKE 'schema\\_migrations\\_%'
            """
        ):
            old_name = constraint["name"]
            new_name = "schema_migrations_legacy_" + old_name.removeprefix("schema_migrations_")
            await connection.execute(
                f"ALTER TABLE schema_migrations_legacy RENAME CONSTRAINT"
                f" {_identifier(old_name)} TO {_identifier(new_name)}"
            )
        await connection.execute(
            """
            CREATE TABLE schema_migrations (
                component   text        NOT NULL,
                version     integer     NOT NULL,
                name        text        NOT NULL,
                applied_at  timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (component, version)
            );
            """
        )
        legacy = await _legacy_versions(connection)
        recorded = []
        for migration in migrations:
            if _applied_by_old_runner(migration, legacy):
                await _record(connection, migration)
                recorded.append(migration.label)
    log.info(
        "converted schema_migrations from the old global sequence %s; already applied: %s",
        sorted(legacy),
        ", ".join(recorded) or "none",
    )


def _identifier(name: str) -> str:
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", name):
        raise RuntimeError(f"unexpected identifier {name!r}")
    return f'"{name}"'


async def _legacy_versions(connection: asyncpg.Connection) -> frozenset[int]:
    if not await connection.fetchval("SELECT to_regclass('schema_migrations_legacy') IS NOT NULL"):
        return frozenset()
    rows = await connection.fetch("SELECT version FROM schema_migrations_legacy")
    return frozenset(row["version"] for row in rows)


def _applied_by_old_runner(migration: Migration, legacy: frozenset[int]) -> bool:
    return bool(migration.replaces) and migration.replaces <= legacy


async def _record(connection: asyncpg.Connection, migration: Migration) -> None:
    await connection.execute(
        "INSERT INTO schema_migrations (component, version, name) VALUES ($1, $2, $3)",
        migration.component,
        migration.version,
        migration.name,
    )
