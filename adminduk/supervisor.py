"""`adminduk run`: the embedded runtime and its supervisor.

Starts embedded Postgres and NATS under ``ADMINDUK_DATA_DIR`` unless URLs are configured,
prepares the schema and the JetStream stream, then runs every service as its own OS
process, restarting any that crashes (with backoff, and logged). SIGINT or SIGTERM stops
the services, then NATS, then Postgres, well within 30 seconds; every child is also tied
to the supervisor with a parent-death signal, so even a SIGKILLed supervisor leaves no
orphan behind.

``ADMINDUK_REPLICAS`` (or ``--replicas``) runs several processes of a service: they pull
from the same durable consumers and so share the work; each gets its index in
``ADMINDUK_REPLICA`` (0 to N-1), is named ``notify``, ``notify-2``, ... in the logs, shares
its service's HTTP port (``SO_REUSEPORT``) and is restarted on its own when it crashes.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import IO, Any, Final

import asyncpg
import httpx
import nats

from adminduk.services import BY_NAME, CONSUMING, MIGRATIONS, PROCESSES, REPLICABLE
from shared.bus import jetstream as js
from shared.bus.permissions import INTEGRATOR_JS_DOMAIN, INTEGRATOR_USER, without_credentials
from shared.config import Replicas, Settings, process_name
from shared.eventstore.migrations import migrate
from shared.runtime.database import DATABASE_NAME, SUPERUSER_PASSWORD_FILE
from shared.runtime.definition import DevelopmentOnlyError, refuse_in_production
from shared.runtime.embedded import (
    EmbeddedNats,
    EmbeddedPostgres,
    EmbeddedServersMissing,
    ensure_database,
    require_embedded,
)
from shared.runtime.processes import spawn, stop

log = logging.getLogger("adminduk.supervisor")

SERVICES: Final = tuple(process.name for process in PROCESSES)
"""The processes ``adminduk run`` starts, in order (each as ``adminduk serve NAME``)."""
SHUTDOWN_BUDGET: Final = 25.0
STOP_POLL: Final = 0.05
"""Seconds between looks at the stop flag while the supervisor waits."""
"""Seconds from a stop request to the last child gone (a stop must end within 30)."""
MAX_BACKOFF: Final = 30.0
STABLE_AFTER: Final = 60.0
READY_TIMEOUT: Final = 90.0


def replica_counts(replicas: Replicas, processes: Iterable[str]) -> dict[str, int]:
    """How many of each process to run: the named count, else the default for a consuming
    service, else one. Raises ``ValueError`` for a name that cannot have replicas."""
    processes = list(processes)
    unknown = sorted(set(replicas.named) - REPLICABLE)
    if unknown:
        raise ValueError(
            f"ADMINDUK_REPLICAS names {', '.join(unknown)}; "
            f"only these run as replicas: {', '.join(sorted(REPLICABLE))}"
        )
    return {
        name: replicas.named.get(name, replicas.default if name in CONSUMING else 1)
        for name in processes
    }


def replica_env(settings: Settings, service: str, index: int, count: int) -> dict[str, str]:
    """What one replica's environment adds to the supervisor's: its index, and its share
    of a budget that is the office's as a whole (the business number's send rate)."""
    if count == 1:
        return {}
    extra = {"ADMINDUK_REPLICA": str(index)}
    if service == "notify":
        extra["ADMINDUK_NOTIFY_RATE"] = repr(settings.notify_rate / count)
    return extra


@dataclass
class Child:
    name: str
    argv: list[str]
    service: str = ""
    env: Mapping[str, str] = field(default_factory=dict)
    """Added to the supervisor's environment for this child (its replica index)."""
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    crashes: int = 0
    restart_at: float | None = None
    restarts: int = 0

    def start(self, env: dict[str, str]) -> None:
        self.process = spawn(self.argv, env={**env, **self.env}, death_signal=signal.SIGTERM)
        self.started_at = time.monotonic()
        self.restart_at = None
        log.info("started %s (pid %d)", self.name, self.process.pid)


class Supervisor:
    def __init__(self, settings: Settings, services: tuple[str, ...] | None = None) -> None:
        self.settings = settings
        if services is None:
            # The WhatsApp simulator stands in for the Cloud API unless one is configured.
            services = (*SERVICES, "simulator") if settings.uses_simulator else SERVICES
        try:
            self.replicas = replica_counts(settings.replicas, services)
            for name in services:
                if name in BY_NAME:
                    refuse_in_production(BY_NAME[name], settings)
        except (ValueError, DevelopmentOnlyError) as error:
            raise SystemExit(f"adminduk run: {error}") from None
        self.children = [
            Child(
                process_name(name, index if count > 1 else None),
                [sys.executable, "-m", "adminduk", "serve", name],
                service=name,
                env=replica_env(settings, name, index, count),
            )
            for name, count in self.replicas.items()
            for index in range(count)
        ]
        self.postgres: EmbeddedPostgres | None = None
        self.nats: EmbeddedNats | None = None
        self._stop_requested = False
        """Set by SIGTERM or SIGINT. A plain flag, polled: a signal handler runs in the main
        thread between two of its bytecodes, maybe while it holds a lock (that of a
        ``threading.Event`` it waits on, say), so the handler must take none."""
        self._lock_file: IO[Any] | None = None

    # -- start-up ----------------------------------------------------------------------

    def _take_data_dir(self) -> None:
        data_dir = self.settings.data_dir
        data_dir.mkdir(parents=True, exist_ok=True)
        self._lock_file = (data_dir / "supervisor.lock").open("w")
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise SystemExit(
                f"another `adminduk run` uses {data_dir}; stop it first or set ADMINDUK_DATA_DIR"
            ) from None
        self._lock_file.write(str(os.getpid()))
        self._lock_file.flush()

    def _start_infrastructure(self, env: dict[str, str]) -> bool:
        """Servers, schema and stream; False if a stop was asked for on the way."""
        data_dir = self.settings.data_dir
        if self.settings.embedded_postgres:
            self.postgres = EmbeddedPostgres(data_dir / "postgres")
            self.postgres.start()
            asyncio.run(ensure_database(self.postgres.dsn("postgres"), DATABASE_NAME))
            env["ADMINDUK_DATABASE_URL"] = self.postgres.dsn()
            log.info("embedded Postgres on port %d", self.postgres.port)
        if self._stop_requested:
            return False
        if self.settings.embedded_nats:
            self.nats = EmbeddedNats(
                data_dir / "nats",
                port=4222,
                integrator_password=self.settings.integrator_password.get_secret_value(),
            )
            self.nats.start()
            # The services log in as `adminduk`; integrators and logs see no password.
            env["ADMINDUK_NATS_URL"] = self.nats.service_url
            log.info("embedded NATS at %s", self.nats.url)
        if self._stop_requested:
            return False
        nats_urls = env["ADMINDUK_NATS_URL"]
        public_url = without_credentials(nats_urls.split(",")[0])
        (data_dir / "nats.url").write_text(public_url + "\n")
        asyncio.run(self._prepare(env["ADMINDUK_DATABASE_URL"], nats_urls.split(",")))
        return not self._stop_requested

    async def _prepare(self, dsn: str, nats_urls: list[str]) -> None:
        """Schema and stream before any service starts, so none of them waits on the other."""
        connection = await asyncpg.connect(dsn)
        try:
            applied = await migrate(connection, MIGRATIONS)
            if applied:
                log.info("applied migrations %s", applied)
        finally:
            await connection.close()
        client = await nats.connect(servers=nats_urls, name="adminduk-supervisor")
        try:
            await js.ensure_stream(
                client.jetstream(),
                self.settings.nats_duplicate_window,
                self.settings.nats_stream_max_age,
            )
        finally:
            await client.close()

    def _banner(self, env: dict[str, str]) -> str:
        host = self.settings.local_host
        lines = [
            "",
            "adminduk is running. Press Ctrl-C to stop.",
            f"  WhatsApp webhook   http://{host}:{self.settings.intake_port}/webhook/whatsapp",
            f"  officer console    http://{host}:{self.settings.console_port}/console"
            "  (a first officer: .venv/bin/adminduk officers add NAME --role admin)",
            f"  officer API        http://{host}:{self.settings.console_port}/docs",
            f"  dashboard          http://{host}:{self.settings.console_port}/console/dashboard",
            f"  NATS               {self._public_nats_urls(env)}"
            f"  (also in {self.settings.data_dir / 'nats.url'};"
            f" integrators: user {INTEGRATOR_USER}, JetStream domain {INTEGRATOR_JS_DOMAIN})",
        ]
        if self.settings.simulates_whatsapp:
            lines.insert(
                2,
                f"  WhatsApp simulator http://{host}:{self.settings.simulator_port}/"
                "  (open it, type a request, get a ticket)",
            )
        else:
            lines.append(f"  WhatsApp Cloud API {self.settings.whatsapp_base_url}")
        siak = "simulator" if self.settings.siak_url is None else "configured"
        lines.append(f"  SIAK ({siak})".ljust(21) + self.settings.siak_base_url)
        if self.postgres is not None:
            lines.append(
                f"  Postgres           {self.postgres.public_dsn()}"
                f"  (password in {self.postgres.root / SUPERUSER_PASSWORD_FILE})"
            )
        lines.append(f"  data               {self.settings.data_dir}")
        several = [f"{name} x{count}" for name, count in self.replicas.items() if count > 1]
        if several:
            lines.append(f"  replicas           {', '.join(several)}")
        return "\n".join(lines) + "\n"

    @staticmethod
    def _public_nats_urls(env: dict[str, str]) -> str:
        urls = env["ADMINDUK_NATS_URL"].split(",")
        return ",".join(without_credentials(url) for url in urls)

    def _health_urls(self) -> list[str]:
        # Replicas share their service's port: one answer is enough (any of them may give it).
        definitions = (BY_NAME.get(name) for name in self.replicas)
        return [
            definition.ready_url(self.settings)
            for definition in definitions
            if definition is not None and definition.ready_url is not None
        ]

    def _wait_until_serving(self, env: dict[str, str], timeout: float = READY_TIMEOUT) -> None:
        """Print the URLs only once they answer; keep supervising meanwhile."""
        waiting = self._health_urls()
        deadline = time.monotonic() + timeout
        while waiting and not self._stop_requested and time.monotonic() < deadline:
            for url in list(waiting):
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(url, timeout=1).status_code == 200:
                        waiting.remove(url)
            self._watch(env)
            if waiting:
                self._pause(0.2)
        if waiting:
            log.warning("not answering yet: %s", ", ".join(waiting))

    # -- running -----------------------------------------------------------------------

    def request_stop(self, *_: object) -> None:
        """The SIGTERM and SIGINT handler: only a flag (see ``_stop_requested``); any
        number of signals in any order end in one orderly stop."""
        self._stop_requested = True

    def _pause(self, seconds: float) -> None:
        """Sleep ``seconds``, or less once a stop is requested."""
        deadline = time.monotonic() + seconds
        while not self._stop_requested and (left := deadline - time.monotonic()) > 0:
            time.sleep(min(left, STOP_POLL))

    def run(self) -> int:
        try:
            require_embedded(
                postgres=self.settings.embedded_postgres, nats=self.settings.embedded_nats
            )
        except EmbeddedServersMissing as error:
            raise SystemExit(f"adminduk run: {error}") from None
        self._take_data_dir()
        signal.signal(signal.SIGTERM, self.request_stop)
        signal.signal(signal.SIGINT, self.request_stop)
        env = dict(os.environ)
        env["ADMINDUK_DATA_DIR"] = str(self.settings.data_dir)
        # Only the supervisor hands out replica indexes (see replica_env).
        env.pop("ADMINDUK_REPLICA", None)
        try:
            if not self._start_infrastructure(env):
                return 0
            for child in self.children:
                child.start(env)
            self._wait_until_serving(env)
            print(self._banner(env), flush=True)
            while not self._stop_requested:
                self._pause(0.2)
                if not self._stop_requested:
                    self._watch(env)
            return 0
        finally:
            self._shutdown()

    def _watch_servers(self) -> None:
        """An embedded server that died is started again on the same port, so the
        services' URLs stay valid; they reconnect on their own."""
        for server in (self.postgres, self.nats):
            if server is None or server.process is None:
                continue
            code = server.process.poll()
            if code is None:
                continue
            name = type(server).__name__
            log.error("%s exited with code %s; restarting it", name, code)
            try:
                server.start()
            except (OSError, RuntimeError, TimeoutError) as error:
                log.error("%s did not restart (%s); retrying", name, error)

    def _watch(self, env: dict[str, str]) -> None:
        self._watch_servers()
        now = time.monotonic()
        for child in self.children:
            if child.restart_at is not None:
                if now >= child.restart_at:
                    child.restarts += 1
                    child.start(env)
                continue
            assert child.process is not None
            code = child.process.poll()
            if code is None:
                if child.crashes and now - child.started_at > STABLE_AFTER:
                    child.crashes = 0
                continue
            child.crashes += 1
            delay = min(MAX_BACKOFF, 0.5 * 2 ** (child.crashes - 1))
            log.error(
                "%s exited with code %s (crash %d); restarting in %.1fs",
                child.name,
                code,
                child.crashes,
                delay,
            )
            child.restart_at = now + delay

    def _shutdown(self) -> None:
        """Services first (they flush to NATS and Postgres), then NATS, then Postgres, all
        within one deadline; whatever overruns its share is killed."""
        deadline = time.monotonic() + SHUTDOWN_BUDGET
        log.info("stopping services")
        running = [c for c in self.children if c.process is not None and c.process.poll() is None]
        for child in running:
            assert child.process is not None
            with contextlib.suppress(ProcessLookupError):
                child.process.send_signal(signal.SIGTERM)
        for child in running:
            assert child.process is not None
            stop(child.process, signal.SIGTERM, max(0.5, deadline - 10 - time.monotonic()))
        if self.nats is not None:
            self.nats.stop(timeout=max(0.5, deadline - 5 - time.monotonic()))
        if self.postgres is not None:
            # Even a killed Postgres loses nothing committed; it recovers from its WAL.
            self.postgres.stop(timeout=max(2.0, deadline - time.monotonic()))
        if self._lock_file is not None:
            self._lock_file.close()
        log.info("stopped")


def run(settings: Settings) -> int:
    return Supervisor(settings).run()
