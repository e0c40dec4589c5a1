"""Which database an operator's command works on: the configured one, or the embedded
runtime's (whose port the supervisor leaves in the data folder)."""

from __future__ import annotations

from pathlib import Path

from shared.config import Settings, load_settings


def database_url(settings: Settings, data_dir: Path | None = None) -> str | None:
    """The database to operate on: the configured one, else that of the embedded runtime
    with its data in ``data_dir`` (default: the settings'), None when it is not running."""
    if settings.database_url is not None:
        return settings.database_dsn()
    port_file = (data_dir or settings.data_dir) / "postgres" / "port"
    if not port_file.exists():
        return None
    return f"postgresql://postgres@127.0.0.1:{port_file.read_text().strip()}/adminduk"


def dsn() -> str:
    """The database to operate on (see :func:`database_url`), or exit saying how to get one."""
    found = database_url(load_settings())
    if found is None:
        raise SystemExit("set ADMINDUK_DATABASE_URL, or start the embedded runtime (make run)")
    return found
