"""The system under test of the webhook benchmark, started from outside as an operator would.

Two process groups: the lean fake Cloud API (``python -m benchmarks.fake_cloud``, which also
sends the delivery-status webhooks and receives the integrator webhooks) and the embedded
runtime (``adminduk run``) with ``WHATSAPP_API_BASE_URL`` pointed at it. Both are started
with a parent-death signal, so a benchmark killed hard leaves nothing running; :meth:`stop`
ends them in order.

:class:`CpuMeter` reads the CPU time of every process of both groups (by role: relay,
intake, notify, postgres with all its backends, ...), of this process, and of the machine.
"""

from __future__ import annotations

import base64
import contextlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Final

import psutil

from benchmarks.measure import machine_cpu_seconds
from shared.bus.permissions import INTEGRATOR_USER, SERVICE_USER, with_credentials
from shared.runtime.database import running_dsn
from shared.runtime.embedded import service_password
from shared.runtime.processes import free_port, spawn, stop, wait_for_port

PROJECT: Final = Path(__file__).resolve().parents[1]
APP_SECRET: Final = "webhook-bench-app-secret"  # a throw-away test secret
ACCESS_TOKEN: Final = "webhook-bench-access-token"
PHONE_NUMBER_ID: Final = "109876543210"
BOOTSTRAP_TOKEN: Final = "webhook-bench-bootstrap-token"
INTEGRATOR_PASSWORD: Final = "webhook-bench-integrator"
INTEGRATOR_SECRET: Final = "whsec_" + base64.b64encode(b"webhook-bench-integrator-secret!").decode()
BANNER: Final = "adminduk is running"
READY_TIMEOUT: Final = 120.0
STOP_TIMEOUT: Final = 45.0
REPLICAS_ENV: Final = "ADMINDUK_REPLICAS"
NOTIFY_RATE: Final = 1000
"""Sends per second the runtime allows itself (``ADMINDUK_NOTIFY_RATE``)."""
"""How ``adminduk run`` is told to start N processes of a service (``intake=2,notify=2``);
set only when ``--replicas`` is above 1."""
REPLICATED: Final = ("intake", "notify")

FAKE_CLOUD: Final = "fake-cloud"
ROLES: Final = (
    "bench",
    FAKE_CLOUD,
    "supervisor",
    "relay",
    "intake",
    "notify",
    "verification",
    "issuance",
    "integrations",
    "postgres",
    "nats",
)
"""Processes in the order the report lists them; ``bench`` is this process."""
HARNESS: Final = ("bench", FAKE_CLOUD)
"""Processes that play the citizens and Meta: on the machine, but not adminduk."""


def _clean_env(*, telemetry: bool) -> dict[str, str]:
    """This environment without anything that would point the runtime elsewhere; without
    any ``OTEL_*`` setting (the shipped default: span files) unless telemetry is off."""
    drop = {"ADMINDUK_DATABASE_URL", "ADMINDUK_NATS_URL", "WHATSAPP_API_BASE_URL", REPLICAS_ENV}
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in drop and not key.startswith("OTEL_")
    }
    if not telemetry:
        env["OTEL_TRACES_EXPORTER"] = "none"
        env["OTEL_METRICS_EXPORTER"] = "none"
    return env


class FakeCloudApi:
    """``benchmarks.fake_cloud`` as a separate process: the Cloud API the runtime sends
    replies to, the sender of the delivery-status webhooks, the integrators' receiver."""

    def __init__(self, root: Path, intake_port: int, status_delay: float) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = root / "fake-cloud.log"
        self.argv = [
            sys.executable,
            "-m",
            "benchmarks.fake_cloud",
            "--port",
            str(self.port),
            "--webhook-url",
            f"http://127.0.0.1:{intake_port}/webhook/whatsapp",
            "--app-secret",
            APP_SECRET,
            "--access-token",
            ACCESS_TOKEN,
            "--phone-number-id",
            PHONE_NUMBER_ID,
            "--status-delay",
            str(status_delay),
            "--integrator-secret",
            INTEGRATOR_SECRET,
        ]
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[Any] | None = None

    @property
    def cloud_api_url(self) -> str:
        return f"{self.base}/v21.0"

    @property
    def integrator_url(self) -> str:
        return f"{self.base}/integrator/webhook"

    def start(self) -> None:
        self._log = self.log_path.open("ab")
        self.process = spawn(
            self.argv, log_file=self._log, env=_clean_env(telemetry=False), cwd=PROJECT
        )
        wait_for_port("127.0.0.1", self.port, 30, self.process)

    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.process is not None:
            stop(self.process, signal.SIGTERM, 15)
        if self._log is not None:
            self._log.close()
            self._log = None


class Runtime:
    """``adminduk run`` in ``root/data`` on free ports; telemetry as shipped (span files)
    or off (``OTEL_TRACES_EXPORTER=none``)."""

    def __init__(
        self,
        root: Path,
        intake_port: int,
        cloud_api_url: str,
        *,
        telemetry: bool = True,
        replicas: int = 1,
    ) -> None:
        self.data_dir = root / "data"
        self.intake_port = intake_port
        self.console_port = free_port()
        self.log_path = root / "runtime.log"
        self.telemetry = telemetry
        self.replicas = replicas
        self.env = {
            **_clean_env(telemetry=telemetry),
            "ADMINDUK_DATA_DIR": str(self.data_dir),
            "ADMINDUK_INTAKE_PORT": str(intake_port),
            "ADMINDUK_CONSOLE_PORT": str(self.console_port),
            "ADMINDUK_SIMULATOR_PORT": str(free_port()),
            "ADMINDUK_BOOTSTRAP_TOKEN": BOOTSTRAP_TOKEN,
            "ADMINDUK_INTEGRATOR_PASSWORD": INTEGRATOR_PASSWORD,
            "WHATSAPP_API_BASE_URL": cloud_api_url,
            "WHATSAPP_APP_SECRET": APP_SECRET,
            "WHATSAPP_ACCESS_TOKEN": ACCESS_TOKEN,
            "WHATSAPP_PHONE_NUMBER_ID": PHONE_NUMBER_ID,
            "ADMINDUK_LOG_LEVEL": "WARNING",
            # The business number's throughput: Meta's upgraded tier (1,000 messages/s), not
            # the 80/s of a new number, which would cap the acknowledgements by itself.
            "ADMINDUK_NOTIFY_RATE": str(NOTIFY_RATE),
            # The integrator's webhook receiver is the fake Cloud API, on this machine.
            "ADMINDUK_WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8",
        }
        if replicas > 1:
            self.env[REPLICAS_ENV] = ",".join(f"{name}={replicas}" for name in REPLICATED)
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[Any] | None = None

    @property
    def webhook_url(self) -> str:
        return f"http://127.0.0.1:{self.intake_port}/webhook/whatsapp"

    @property
    def officer_api(self) -> str:
        return f"http://127.0.0.1:{self.console_port}/api"

    def start(self) -> None:
        self._log = self.log_path.open("ab")
        self.process = spawn(
            [sys.executable, "-m", "adminduk", "run"],
            log_file=self._log,
            env=self.env,
            cwd=PROJECT,
        )

    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_until_running(self, timeout: float = READY_TIMEOUT) -> None:
        """Until the supervisor prints its banner (it does once the HTTP services answer)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                raise RuntimeError(f"the runtime exited before it was ready:\n{self.tail()}")
            if BANNER in self.output():
                return
            time.sleep(0.2)
        raise TimeoutError(f"the runtime was not ready after {timeout:.0f}s:\n{self.tail()}")

    def tail(self, characters: int = 4000) -> str:
        return self.output()[-characters:]

    @property
    def dsn(self) -> str:
        """The embedded Postgres' URL, with the password its data folder holds."""
        found = running_dsn(self.data_dir / "postgres")
        if found is None:
            raise RuntimeError(f"no embedded Postgres has run in {self.data_dir}")
        return found

    @property
    def nats_url(self) -> str:
        """The runtime's NATS as its services log in (``nats.url`` has no credentials)."""
        public_url = (self.data_dir / "nats.url").read_text().strip()
        return with_credentials(public_url, SERVICE_USER, service_password(self.data_dir / "nats"))

    @property
    def integrator_nats_url(self) -> str:
        """The runtime's NATS as an integrator logs in (``ADMINDUK_INTEGRATOR_PASSWORD``)."""
        public_url = (self.data_dir / "nats.url").read_text().strip()
        return with_credentials(public_url, INTEGRATOR_USER, INTEGRATOR_PASSWORD)

    def stop(self) -> float:
        """SIGTERM to the supervisor (it stops its children in order); the whole session
        is killed if it has not exited after :data:`STOP_TIMEOUT`. Returns the seconds."""
        started = time.monotonic()
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None
        return time.monotonic() - started


# -- CPU ---------------------------------------------------------------------------------


def _tree_cpu(process: psutil.Process) -> float:
    """CPU seconds of ``process``, its reaped children and its live descendants (for
    Postgres: the postmaster and every backend it had)."""
    with contextlib.suppress(psutil.Error):
        times = process.cpu_times()
        total = float(times.user + times.system + times.children_user + times.children_system)
        for child in process.children(recursive=True):
            with contextlib.suppress(psutil.Error):
                child_times = child.cpu_times()
                total += float(child_times.user + child_times.system)
        return total
    return 0.0


def _own_cpu(process: psutil.Process) -> float:
    with contextlib.suppress(psutil.Error):
        times = process.cpu_times()
        return float(times.user + times.system)
    return 0.0


def role_of(process: psutil.Process) -> str:
    """``relay``, ``intake``, ``postgres``, ... for a child of the supervisor."""
    try:
        argv = [str(part) for part in process.cmdline()]
    except psutil.Error:
        return "gone"
    if "serve" in argv[:-1]:  # adminduk serve NAME
        return argv[argv.index("serve") + 1]
    program = Path(argv[0]).name if argv else ""
    if program.startswith("postgres"):
        return "postgres"
    if program.startswith("nats-server"):
        return "nats"
    return program or "other"


@dataclass(frozen=True)
class CpuSample:
    wall: float
    cpu: dict[str, float]
    """CPU seconds so far by role."""
    pids: dict[str, int]
    machine: float
    steal: float


@dataclass(frozen=True)
class CpuUse:
    """Cores busy (CPU seconds per wall second) between two samples."""

    wall: float
    cores: dict[str, float]
    machine: float
    """The whole machine's busy cores (all processes, kernel interrupt work)."""
    steal: float
    restarted: tuple[str, ...]
    """Roles whose process changed between the samples (crashed and restarted)."""

    @property
    def ours(self) -> float:
        return sum(self.cores.values())

    @property
    def system(self) -> float:
        """Cores of the system under test: everything but the load generator."""
        return self.ours - self.cores.get("bench", 0.0)

    @property
    def rest(self) -> float:
        """Busy cores outside our processes: other load and the kernel's interrupt work."""
        return max(0.0, self.machine - self.ours)

    def busiest(self) -> tuple[str, float]:
        role = max(self.cores, key=lambda name: self.cores[name])
        return role, self.cores[role]


class CpuMeter:
    """Samples the CPU of the runtime's process tree, the fake Cloud API and this process.
    Replicas of a service (several processes of one role) are summed under their role."""

    def __init__(self, runtime_pid: int, fake_cloud_pid: int) -> None:
        self.supervisor = psutil.Process(runtime_pid)
        self.fake_cloud = psutil.Process(fake_cloud_pid)
        self.me = psutil.Process()

    def pids(self) -> dict[str, int]:
        """Role -> pid of the fake Cloud API and of every child of the supervisor (the
        first replica of a role)."""
        pids = {FAKE_CLOUD: self.fake_cloud.pid}
        with contextlib.suppress(psutil.Error):
            for child in self.supervisor.children():
                pids.setdefault(role_of(child), child.pid)
        return pids

    def sample(self) -> CpuSample:
        cpu: dict[str, float] = dict.fromkeys(ROLES, 0.0)
        pids: dict[str, int] = {}
        cpu["bench"] = _own_cpu(self.me)
        cpu[FAKE_CLOUD] = _own_cpu(self.fake_cloud)
        cpu["supervisor"] = _own_cpu(self.supervisor)
        with contextlib.suppress(psutil.Error):
            for child in self.supervisor.children():
                role = role_of(child)
                cpu[role] = cpu.get(role, 0.0) + _tree_cpu(child)
                # Replicas share a role: the xor of their pids changes when any restarts.
                pids[role] = pids.get(role, 0) ^ child.pid
        machine, steal = machine_cpu_seconds()
        return CpuSample(time.perf_counter(), cpu, pids, machine, steal)

    @staticmethod
    def between(start: CpuSample, end: CpuSample) -> CpuUse:
        wall = max(end.wall - start.wall, 1e-9)
        cores = {
            role: max(0.0, end.cpu.get(role, 0.0) - start.cpu.get(role, 0.0)) / wall
            for role in end.cpu
        }
        restarted = tuple(
            role for role, pid in end.pids.items() if start.pids.get(role, pid) != pid
        )
        return CpuUse(
            wall=wall,
            cores=cores,
            machine=(end.machine - start.machine) / wall,
            steal=(end.steal - start.steal) / wall,
            restarted=restarted,
        )
