"""Which database an operator's command works on: the configured one, or the embedded
runtime's (whose port and password the supervisor leaves in the data folder)."""

from __future__ import annotations

from pathlib import Path

from shared.config import Settings, load_settings

DATABASE_NAME = "adminduk"
"""The database of the embedded Postgres (and of the compose stack)."""
SUPERUSER_PASSWORD_FILE = "superuser.password"  # noqa: S105 - a file name, not a password
"""Beside the embedded Postgres' ``pgdata``: the password of the role ``postgres``,
generated once per data folder (``shared.runtime.embedded``)."""


def running_dsn(root: Path, database: str = DATABASE_NAME) -> str | None:
    """The URL of the embedded Postgres whose folder is ``root``, with its password, as
    its last start left it (``None`` if it never ran)."""
    try:
        port = int((root / "port").read_text())
        password = (root / SUPERUSER_PASSWORD_FILE).read_text().strip()
    except (OSError, ValueError):
        return None
    return f"postgresql://postgres:{password}@127.0.0.1:{port}/{database}"


def database_url(settings: Settings, data_dir: Path | None = None) -> str | None:
    """The database to operate on: the configured one, else that of the embedded runtime
    with its data in ``data_dir`` (default: the settings'), None when it is not running."""
    if settings.database_url is not None:
        return settings.database_dsn()
    return running_dsn((data_dir or settings.data_dir) / "postgres")


def dsn() -> str:
    """The database to operate on (see :func:`database_url`), or exit saying how to get one."""
    found = database_url(load_settings())
    if found is None:
        raise SystemExit("set ADMINDUK_DATABASE_URL, or start the embedded runtime (make run)")
    return found
