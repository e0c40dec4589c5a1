"""Starting and stopping child processes so that none outlives its parent."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

_PR_SET_PDEATHSIG = 1
LISTEN_BACKLOG = 2048
"""Connections the kernel queues before a server accepts them (uvicorn's default)."""


def _die_with_parent(sig: signal.Signals) -> Callable[[], None]:
    """A preexec function: the child gets ``sig`` when the parent dies, even by SIGKILL.

    Runs after the child switched user (CPython applies ``user=`` before ``preexec_fn``),
    which matters because changing credentials clears the setting.
    """

    def preexec() -> None:
        # Linux only; elsewhere the supervisor's own shutdown is the only guarantee.
        if sys.platform.startswith("linux"):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0)

    return preexec


def spawn(
    argv: Sequence[str | os.PathLike[str]],
    *,
    log_file: IO[Any] | None = None,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    user: int | None = None,
    group: int | None = None,
    death_signal: signal.Signals = signal.SIGTERM,
) -> subprocess.Popen[bytes]:
    """Start ``argv`` in its own session (a terminal's Ctrl-C reaches only the supervisor,
    which then stops children in order) and tie its life to this process."""
    return subprocess.Popen(
        [os.fspath(part) for part in argv],
        stdin=subprocess.DEVNULL,
        stdout=log_file if log_file is not None else None,
        stderr=subprocess.STDOUT if log_file is not None else None,
        env=env,
        cwd=cwd,
        user=user,
        group=group,
        extra_groups=[] if user is not None else None,
        start_new_session=True,
        preexec_fn=_die_with_parent(death_signal),  # noqa: PLW1509 - needed for pdeathsig
    )


def stop(process: subprocess.Popen[bytes], sig: signal.Signals, timeout: float) -> int:
    """Send ``sig``, wait up to ``timeout`` seconds, then SIGKILL. Returns the exit code."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(sig)
        try:
            return process.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
    return process.wait()


def free_port(host: str = "127.0.0.1", preferred: int | None = None) -> int:
    """``preferred`` if nothing listens there, else a port the kernel picks."""
    if preferred is not None and port_is_free(host, preferred):
        return preferred
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def socket_family(host: str) -> socket.AddressFamily:
    """IPv6 for an address with colons (``::``, ``::1``), IPv4 otherwise."""
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def listening_socket(host: str, port: int, *, reuse_port: bool = False) -> socket.socket:
    """A TCP socket bound to ``host:port`` and listening, for an HTTP server to accept on.

    With ``reuse_port`` (Linux's ``SO_REUSEPORT``) several processes of one user bind the
    same port and the kernel spreads new connections among them: the replicas of a service
    share its port. Every one of them must ask for it; a process that does not still gets
    "address in use", as does any process while the port is taken without it.
    """
    sock = socket.socket(socket_family(host), socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            if not hasattr(socket, "SO_REUSEPORT"):
                raise OSError(f"replicas cannot share port {port}: no SO_REUSEPORT here")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        sock.listen(LISTEN_BACKLOG)
        sock.set_inheritable(False)
    except BaseException:
        sock.close()
        raise
    return sock


def port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
        return True


def wait_for_port(
    host: str, port: int, timeout: float, process: subprocess.Popen[bytes] | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before listening")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listens on {host}:{port} after {timeout}s") from None
            time.sleep(0.1)
