"""`adminduk run` (what `make run` starts), driven from outside as a user would."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Final

import asyncpg
import httpx
import nats
import pytest

from adminduk.supervisor import SHUTDOWN_BUDGET
from shared.bus import jetstream as js
from shared.bus.permissions import SERVICE_USER, with_credentials
from shared.eventstore.envelope import NewEvent
from shared.eventstore.store import EventStore
from shared.runtime.embedded import EmbeddedNats, EmbeddedPostgres, service_password
from tests.e2e.harness import Runtime, alive, command_line, command_lines, embedded_dsn

pytestmark = pytest.mark.e2e


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[Runtime]:
    started = Runtime(tmp_path / "data")
    yield started
    if started.process is not None and started.process.poll() is None:
        started.process.kill()
        started.process.wait(10)


def service_nats_url(data_dir: Path) -> str:
    """The runtime's NATS as its services log in: ``nats.url`` holds no credentials."""
    public_url = (data_dir / "nats.url").read_text().strip()
    return with_credentials(public_url, SERVICE_USER, service_password(data_dir / "nats"))


async def stream_messages(nats_url: str) -> int:
    client = await nats.connect(nats_url)
    try:
        info = await client.jetstream().stream_info(js.STREAM_NAME)
        return int(info.state.messages)
    finally:
        await client.close()


async def append_marker(dsn: str) -> None:
    store = await EventStore.connect(dsn, min_size=1, max_size=1)
    try:
        await store.append("request-E2E", [NewEvent(event_type="MarkerWritten", data={})])
    finally:
        await store.close()


async def count_markers(dsn: str) -> int:
    connection = await asyncpg.connect(dsn)
    try:
        return int(
            await connection.fetchval(
                "SELECT count(*) FROM events WHERE event_type = 'MarkerWritten'"
            )
        )
    finally:
        await connection.close()


def test_run_serves_supervises_stops_cleanly_and_keeps_data(runtime: Runtime) -> None:
    runtime.start()
    runtime.wait_until_serving()

    assert runtime.handshake().text == "42"
    assert runtime.handshake("wrong-token").status_code == 403
    health = httpx.get(f"http://127.0.0.1:{runtime.console_port}/healthz", timeout=5)
    assert health.status_code == 200
    nats_url = (runtime.data_dir / "nats.url").read_text().strip()
    assert nats_url.startswith("nats://")
    assert "@" not in nats_url, "nats.url is for integrators: no credentials"
    assert service_password(runtime.data_dir / "nats") not in runtime.output()
    assert f"http://127.0.0.1:{runtime.intake_port}/webhook/whatsapp" in runtime.output()

    children = runtime.descendants()
    commands = command_lines(children)
    for expected in (
        "postgres",
        "nats-server",
        "adminduk serve relay",
        "adminduk serve intake",
        "adminduk serve verification",
        "adminduk serve issuance",
        "adminduk serve notify",
        "adminduk serve integrations",
    ):
        assert expected in commands, f"{expected} is not running:\n{commands}"

    # A crashed service is restarted, and the crash is logged.
    [notify] = [p for p in children if "adminduk serve notify" in command_line(p)]
    notify.kill()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        restarted = [
            p
            for p in runtime.descendants()
            if "adminduk serve notify" in command_line(p) and p.pid != notify.pid
        ]
        if restarted:
            break
        time.sleep(0.2)
    assert restarted, runtime.tail()
    assert "notify exited with code -9" in runtime.output()

    dsn = embedded_dsn(runtime.data_dir)
    asyncio.run(append_marker(dsn))
    nats_url = service_nats_url(runtime.data_dir)
    deadline = time.monotonic() + 20
    while asyncio.run(stream_messages(nats_url)) < 1 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert asyncio.run(stream_messages(nats_url)) == 1, "the relay did not publish"

    everything = runtime.descendants()
    assert runtime.stop(signal.SIGTERM) < 30
    assert runtime.process is not None and runtime.process.returncode == 0
    time.sleep(0.5)
    assert alive(everything) == [], "processes outlived the supervisor"

    # A second start reuses the data: the event and the published message are still there.
    runtime.start()
    runtime.wait_until_serving()
    assert asyncio.run(count_markers(embedded_dsn(runtime.data_dir))) == 1
    nats_url = service_nats_url(runtime.data_dir)
    assert asyncio.run(stream_messages(nats_url)) == 1
    everything = runtime.descendants()
    assert runtime.stop(signal.SIGINT) < 30
    time.sleep(0.5)
    assert alive(everything) == []


BURSTS: Final = {
    "SIGTERM twice to the supervisor": ([signal.SIGTERM] * 2, False),
    "SIGINT and SIGTERM, 20 times, to the supervisor": (
        [signal.SIGINT, signal.SIGTERM] * 10,
        False,
    ),
    "SIGTERM and SIGINT, 10 times, to the process group": (
        [signal.SIGTERM, signal.SIGINT] * 5,
        True,
    ),
}


def test_bursts_of_sigterm_and_sigint_always_stop_everything_in_time(runtime: Runtime) -> None:
    """Signals that reach the supervisor many times at once (a process group signalled
    through make, Ctrl-C reaching make and the supervisor together) end in one orderly
    stop within the shutdown budget, every time: the handler takes no lock."""
    for what, (burst, to_group) in BURSTS.items():
        runtime.start()
        runtime.wait_until_serving()
        assert runtime.process is not None
        everything = runtime.descendants()
        started = time.monotonic()
        for sig in burst:
            if to_group:
                os.killpg(runtime.process.pid, sig)
            else:
                runtime.process.send_signal(sig)
            time.sleep(0.002)
        runtime.process.wait(SHUTDOWN_BUDGET + 5)
        took = time.monotonic() - started
        assert took < SHUTDOWN_BUDGET, f"{what}: stopped after {took:.1f} s"
        time.sleep(0.5)
        assert alive(everything) == [], f"{what}: processes outlived the supervisor"


def test_a_killed_supervisor_takes_its_children_with_it(runtime: Runtime) -> None:
    runtime.start()
    runtime.wait_until_serving()
    everything = runtime.descendants()
    assert len(everything) >= 7

    runtime.stop(signal.SIGKILL)
    deadline = time.monotonic() + 30
    while alive(everything) and time.monotonic() < deadline:
        time.sleep(0.2)
    survivors = [p for p in everything if p.pid in alive(everything)]
    assert survivors == [], f"orphans after the supervisor was killed:\n{command_lines(survivors)}"

    # The next start recovers the data folder the killed run left behind.
    runtime.start()
    runtime.wait_until_serving()
    runtime.stop(signal.SIGTERM)


def test_crashed_embedded_servers_are_restarted_and_the_services_recover(
    runtime: Runtime,
) -> None:
    runtime.start()
    runtime.wait_until_serving()
    nats_url = service_nats_url(runtime.data_dir)

    def is_nats(command: str) -> bool:
        return command.split(" ", maxsplit=1)[0].endswith("/nats-server")

    def is_postmaster(command: str) -> bool:
        return command.split(" ", maxsplit=1)[0].endswith("/postgres") and " -D " in command

    servers: dict[str, Callable[[str], bool]] = {
        "EmbeddedNats": is_nats,
        "EmbeddedPostgres": is_postmaster,
    }
    for name, matches in servers.items():
        [server] = [p for p in runtime.descendants() if matches(command_line(p))]
        server.kill()
        deadline = time.monotonic() + 60
        while f"{name} exited" not in runtime.output():
            assert time.monotonic() < deadline, runtime.tail()
            time.sleep(0.2)

    # The event written after both restarts still travels through the relay to JetStream.
    deadline = time.monotonic() + 60
    while True:
        try:
            asyncio.run(append_marker(embedded_dsn(runtime.data_dir)))
            break
        except (OSError, asyncpg.PostgresError):
            assert time.monotonic() < deadline, runtime.tail()
            time.sleep(0.5)
    while asyncio.run(stream_messages(nats_url)) < 1:
        assert time.monotonic() < deadline, runtime.tail()
        time.sleep(0.3)
    health = httpx.get(f"http://127.0.0.1:{runtime.console_port}/healthz", timeout=5)
    assert health.status_code == 200
    runtime.stop(signal.SIGTERM)


def test_configured_urls_start_nothing_embedded(
    tmp_path: Path, postgres_server: EmbeddedPostgres, nats_server: EmbeddedNats
) -> None:
    runtime = Runtime(
        tmp_path / "data",
        {
            "ADMINDUK_DATABASE_URL": postgres_server.dsn("postgres"),
            "ADMINDUK_NATS_URL": nats_server.service_url,
        },
    )
    runtime.start()
    try:
        runtime.wait_until_serving()
        commands = command_lines(runtime.descendants())
        assert "nats-server" not in commands
        assert "postgres -D" not in commands
        assert not (runtime.data_dir / "postgres").exists()
        assert (runtime.data_dir / "nats.url").read_text().strip() == nats_server.url
    finally:
        runtime.stop(signal.SIGTERM)
