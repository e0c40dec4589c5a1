"""The embedded Postgres lets in only who knows its generated password (issue 15, finding
10): any local user could otherwise connect as superuser over 127.0.0.1. A data folder
made before the password existed (initdb ``--auth=trust``) is converted at its next start,
keeping its data."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import asyncpg
import pytest

from shared.config import Settings
from shared.runtime.database import DATABASE_NAME, database_url
from shared.runtime.embedded import (
    EmbeddedPostgres,
    _make_traversable,
    _os_user_for_postgres,
    ensure_database,
    postgres_bin_dir,
)

pytestmark = pytest.mark.integration


async def refused_without_password(server: EmbeddedPostgres) -> None:
    with pytest.raises(asyncpg.InvalidAuthorizationSpecificationError):
        connection = await asyncpg.connect(
            f"postgresql://postgres@127.0.0.1:{server.port}/postgres"
        )
        await connection.close()
    with pytest.raises(asyncpg.InvalidAuthorizationSpecificationError):
        connection = await asyncpg.connect(
            f"postgresql://postgres:wrong@127.0.0.1:{server.port}/postgres"
        )
        await connection.close()


async def test_only_the_generated_password_lets_in(tmp_path: Path) -> None:
    server = EmbeddedPostgres(tmp_path / "postgres", durable=False)
    server.start()
    try:
        await refused_without_password(server)
        await ensure_database(server.dsn("postgres"), DATABASE_NAME)
        connection = await asyncpg.connect(server.dsn())
        try:
            assert await connection.fetchval("SELECT current_user") == "postgres"
        finally:
            await connection.close()
        password_file = tmp_path / "postgres" / "superuser.password"
        assert stat.S_IMODE(password_file.stat().st_mode) == 0o600
        assert password_file.read_text().strip() in server.dsn()
        # The operators' commands find the running server with its password.
        found = database_url(Settings(data_dir=tmp_path))
        assert found == server.dsn()
    finally:
        server.stop()

    # The same password at the next start: services' URLs stay valid.
    dsn = server.dsn()
    server.start()
    try:
        assert server.dsn() == dsn
        connection = await asyncpg.connect(dsn)
        await connection.close()
    finally:
        server.stop()

    # A password file that went missing is replaced by a new password that works.
    password_file.unlink()
    server.start()
    try:
        assert server.dsn() != dsn
        connection = await asyncpg.connect(server.dsn())
        await connection.close()
        with pytest.raises(asyncpg.InvalidAuthorizationSpecificationError):
            await asyncpg.connect(dsn)
    finally:
        server.stop()


def _old_style_cluster(root: Path) -> None:
    """A data folder as the previous release made it: initdb ``--auth=trust``, no password,
    with a row in it."""
    pgdata = root / "pgdata"
    user = _os_user_for_postgres()
    pgdata.mkdir(parents=True)
    if user is not None:
        _make_traversable(root)
        os.chown(pgdata, user.pw_uid, user.pw_gid)
    pgdata.chmod(0o700)
    subprocess.run(
        [
            postgres_bin_dir() / "initdb",
            "-D",
            pgdata,
            "-U",
            "postgres",
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
        ],
        check=True,
        capture_output=True,
        user=user.pw_uid if user else None,
        group=user.pw_gid if user else None,
        extra_groups=[] if user else None,
    )
    subprocess.run(
        [postgres_bin_dir() / "postgres", "--single", "-D", pgdata, "postgres"],
        input=b"CREATE TABLE kept (x int); INSERT INTO kept VALUES (42);\n",
        check=True,
        capture_output=True,
        user=user.pw_uid if user else None,
        group=user.pw_gid if user else None,
        extra_groups=[] if user else None,
    )


async def test_a_data_folder_without_a_password_is_converted_and_kept(tmp_path: Path) -> None:
    root = tmp_path / "postgres"
    _old_style_cluster(root)
    server = EmbeddedPostgres(root, durable=False)
    server.start()
    try:
        await refused_without_password(server)
        connection = await asyncpg.connect(server.dsn("postgres"))
        try:
            assert await connection.fetchval("SELECT x FROM kept") == 42
        finally:
            await connection.close()
    finally:
        server.stop()
    hba = (root / "pgdata" / "pg_hba.conf").read_text()
    assert "trust" not in "\n".join(
        line for line in hba.splitlines() if not line.lstrip().startswith("#")
    )
