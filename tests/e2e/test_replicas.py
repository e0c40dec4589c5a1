"""`adminduk run --replicas`: two processes of intake, notify and verification share the
webhook and console ports and the work, and every citizen gets exactly one
acknowledgement."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import psutil
import pytest

from shared.runtime.processes import free_port
from tests.e2e.harness import Runtime, alive, command_line
from tests.e2e.test_whatsapp import APP_SECRET, KTP, FakeCloudApi, post, webhook

pytestmark = pytest.mark.e2e

CITIZENS = 8


def accepting(port: int, pids: Iterable[int], timeout: float = 60) -> set[int]:
    """Which of ``pids`` accept new connections to ``port``: rounds of fresh connections
    (the kernel gives each to one listener, chosen when it arrives) until every one of
    them held some, or ``timeout`` (a replica may still be starting)."""
    wanted = set(pids)
    deadline = time.monotonic() + timeout
    while True:
        clients = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(16)]
        try:
            time.sleep(0.3)
            found = {
                pid
                for pid in wanted
                for connection in psutil.Process(pid).net_connections("tcp")
                if connection.laddr and connection.laddr.port == port and connection.raddr
            }
        finally:
            for client in clients:
                client.close()
        if found == wanted or time.monotonic() > deadline:
            return found
        time.sleep(0.5)


def replicas_of(runtime: Runtime, service: str) -> dict[str, int]:
    """Pids of ``service``'s processes by their ``ADMINDUK_REPLICA``."""
    found: dict[str, int] = {}
    for process in runtime.descendants():
        if command_line(process).endswith(f"adminduk serve {service}"):
            try:
                found[process.environ().get("ADMINDUK_REPLICA", "-")] = process.pid
            except psutil.Error:
                continue
    return found


@pytest.fixture
def system(tmp_path: Path) -> Iterator[tuple[Runtime, FakeCloudApi]]:
    intake_port = free_port()
    fake = FakeCloudApi(tmp_path, intake_port)
    runtime = Runtime(
        tmp_path / "data",
        {
            "WHATSAPP_API_BASE_URL": f"{fake.base}/v21.0",
            "WHATSAPP_APP_SECRET": APP_SECRET,
            "ADMINDUK_INTAKE_PORT": str(intake_port),
            "ADMINDUK_REPLICAS": "intake=2,notify=2,verification=2",
        },
    )
    runtime.intake_port = intake_port
    runtime.start()
    try:
        runtime.wait_until_serving()
        yield runtime, fake
    finally:
        if runtime.process is not None and runtime.process.poll() is None:
            runtime.stop()
        fake.stop()


def test_replicas_share_ports_and_work_without_loss_or_double_and_restart_alone(
    system: tuple[Runtime, FakeCloudApi],
) -> None:
    runtime, fake = system
    intakes = replicas_of(runtime, "intake")
    notifies = replicas_of(runtime, "notify")
    assert set(intakes) == {"0", "1"}, runtime.tail()
    assert set(notifies) == {"0", "1"}, runtime.tail()
    verifications = replicas_of(runtime, "verification")
    assert set(verifications) == {"0", "1"}, runtime.tail()
    assert set(replicas_of(runtime, "issuance")) == {"-"}  # one, as before
    # Both intakes accept on the one webhook port, both verifications on the console's:
    # the kernel spreads new connections among them.
    assert accepting(runtime.intake_port, intakes.values()) == set(intakes.values())
    assert accepting(runtime.console_port, verifications.values()) == set(verifications.values())

    phones = [f"62812000000{n:02d}" for n in range(CITIZENS)]
    for n, phone in enumerate(phones):
        nik = f"36030157089900{n + 10:02d}"
        text = KTP.replace("3603015708990001", nik).replace("SITI AMINAH", f"SITI {'ABCDEFGH'[n]}")
        body = json.dumps(webhook(text, f"wamid.E2E-REPLICA-{n}", phone)).encode()
        # Each post is a new connection, which the kernel gives to either replica; Meta's
        # retry of the same message may land on the other one.
        assert post(runtime, body) == 200
        assert post(runtime, body) == 200

    for phone in phones:
        fake.wait_for_reply(lambda text: "Nomor tiket:" in text, timeout=60, phone=phone)
    time.sleep(2)  # a double would come within the sender's next rounds
    for phone in phones:
        acknowledgements = [text for text in fake.outbox(phone) if "Nomor tiket:" in text]
        assert len(acknowledgements) == 1, (phone, fake.outbox(phone))

    # Both replicas of each are still the processes that started: none crashed meanwhile.
    assert replicas_of(runtime, "intake") == intakes
    assert replicas_of(runtime, "notify") == notifies
    pids = [psutil.Process(pid) for pid in (*intakes.values(), *notifies.values())]
    assert len(alive(pids)) == 4
    assert "exited with code" not in runtime.output(), runtime.tail()
    assert " notify-2 " in runtime.output()

    # A crashed replica is restarted on its own, as the same replica.
    psutil.Process(notifies["1"]).kill()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        now = replicas_of(runtime, "notify")
        if now.get("1") not in {None, notifies["1"]}:
            break
        time.sleep(0.2)
    assert now["0"] == notifies["0"]
    assert now.get("1") not in {None, notifies["1"]}, runtime.tail()
    assert "notify-2 exited with code -9" in runtime.output()
