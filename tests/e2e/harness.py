"""Driving `adminduk run` from outside, as a user or an operator would."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil

from shared.runtime.database import running_dsn
from shared.runtime.processes import free_port

PROJECT = Path(__file__).resolve().parents[2]
VERIFY_TOKEN = "e2e-verify-token"


class Runtime:
    def __init__(self, data_dir: Path, extra_env: dict[str, str] | None = None) -> None:
        self.data_dir = data_dir
        self.intake_port = free_port()
        self.console_port = free_port()
        self.log = data_dir.parent / f"{data_dir.name}-run.log"
        self.env = {
            key: value
            for key, value in os.environ.items()
            if key not in {"ADMINDUK_DATABASE_URL", "ADMINDUK_NATS_URL"}
        }
        self.env.update(
            {
                "ADMINDUK_DATA_DIR": str(data_dir),
                "ADMINDUK_INTAKE_PORT": str(self.intake_port),
                "ADMINDUK_CONSOLE_PORT": str(self.console_port),
                "ADMINDUK_SIMULATOR_PORT": str(free_port()),
                "WHATSAPP_VERIFY_TOKEN": VERIFY_TOKEN,
                "OTEL_TRACES_EXPORTER": "none",
                # A citizen's messages are paced (one per 6 s after a burst of 3 by
                # default); a test conversation moves faster than a person.
                "ADMINDUK_NOTIFY_RECIPIENT_INTERVAL": "PT0.2S",
                **(extra_env or {}),
            }
        )
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.log.write_bytes(b"")
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "adminduk", "run"],
                cwd=PROJECT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def handshake(self, token: str = VERIFY_TOKEN) -> httpx.Response:
        return httpx.get(
            f"http://127.0.0.1:{self.intake_port}/webhook/whatsapp",
            params={"hub.mode": "subscribe", "hub.verify_token": token, "hub.challenge": "42"},
            timeout=5,
        )

    def wait_until_serving(self, timeout: float = 120) -> None:
        """Until the banner with the URLs is printed: the supervisor prints it only once
        the HTTP services answer."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None and self.process.poll() is None, self.tail()
            if "adminduk is running" in self.output():
                return
            time.sleep(0.2)
        raise AssertionError(f"the runtime never became ready\n{self.tail()}")

    def descendants(self) -> list[psutil.Process]:
        assert self.process is not None
        return list(psutil.Process(self.process.pid).children(recursive=True))

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> float:
        """Signal the supervisor; return how long it took to exit."""
        assert self.process is not None
        started = time.monotonic()
        self.process.send_signal(sig)
        self.process.wait(45)
        return time.monotonic() - started

    def cli(self, *argv: str) -> subprocess.CompletedProcess[str]:
        """``adminduk <argv>`` run beside the runtime, as an operator on its machine."""
        return subprocess.run(
            [sys.executable, "-m", "adminduk", *argv],
            cwd=PROJECT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def output(self) -> str:
        """Everything the runtime printed since the last start (search this)."""
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def tail(self, characters: int = 5000) -> str:
        """The end of the output (for assertion messages)."""
        return self.output()[-characters:]


@contextlib.contextmanager
def serving(runtime: Runtime) -> Iterator[Runtime]:
    """``runtime`` started and serving; stopped afterwards, whatever the test did."""
    runtime.start()
    try:
        runtime.wait_until_serving()
        yield runtime
    finally:
        if runtime.process is not None and runtime.process.poll() is None:
            runtime.stop()


def alive(processes: list[psutil.Process]) -> list[int]:
    """Pids of ``processes`` still running (a zombie has exited; its parent reaps it)."""
    running = []
    for process in processes:
        try:
            if process.is_running() and process.status() != psutil.STATUS_ZOMBIE:
                running.append(process.pid)
        except psutil.NoSuchProcess:
            pass
    return running


def command_line(process: psutil.Process) -> str:
    try:
        return " ".join(process.cmdline())
    except psutil.Error:  # exited (or a zombie) since we listed it
        return ""


def command_lines(processes: list[psutil.Process]) -> str:
    return "\n".join(map(command_line, processes))


def embedded_dsn(data_dir: Path) -> str:
    """The runtime's Postgres as its services log in (with the generated password)."""
    found = running_dsn(data_dir / "postgres")
    assert found is not None, f"no embedded Postgres has run in {data_dir}"
    return found
