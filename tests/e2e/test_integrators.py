"""Integrators and SREs from outside, against `adminduk run`.

An agency connects to the runtime's NATS as the ``integrator`` user: it sees a new
request's public ``RequestReceived`` with no personal data in it, and is refused the
internal subjects. Another registers a signed webhook and receives the same events over
HTTP, verifiable with any Standard Webhooks library. An SRE re-drives notify's consumer
from the first position with ``adminduk events replay`` and the citizen receives nothing
twice. The dashboard shows the officers' response-time percentiles.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import nats
import pytest
from nats.aio.msg import Msg
from standardwebhooks import Webhook

from shared.config import DEV_SECRET
from tests.e2e.harness import Runtime, serving
from tests.e2e.test_issuance import ENV, approve, request_ticket
from tests.e2e.test_verification import KTP, PHONE, Office, wait

pytestmark = pytest.mark.e2e

PERSONAL = ("3603015708990001", "3603012001180003", "SITI AMINAH", "Siti Aminah", PHONE)


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[Runtime]:
    # The test's webhook receiver listens on loopback, which webhooks reach only when allowed.
    runtime = Runtime(
        tmp_path / "data", {**ENV, "ADMINDUK_WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8"}
    )
    with serving(runtime):
        yield runtime


@pytest.fixture
def office(runtime: Runtime) -> Office:
    return Office(runtime)


class Integrator:
    """An agency's NATS client: the integrator user on the URL the runtime published."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.public: list[dict[str, object]] = []
        self.errors: list[str] = []

    async def __aenter__(self) -> Integrator:
        async def on_error(error: Exception) -> None:
            self.errors.append(str(error))

        self.client = await nats.connect(
            self.url,
            user="integrator",
            password=DEV_SECRET,
            error_cb=on_error,
            allow_reconnect=False,
        )

        async def on_public(message: Msg) -> None:
            self.public.append({"subject": message.subject, **json.loads(message.data)})

        await self.client.subscribe("adminduk.public.>", cb=on_public)
        await self.client.flush()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.client.close()


async def until(probe: object, timeout: float = 30.0) -> None:
    assert callable(probe)
    deadline = asyncio.get_running_loop().time() + timeout
    while not probe():
        assert asyncio.get_running_loop().time() < deadline, "timed out waiting"
        await asyncio.sleep(0.1)


def test_an_integrator_sees_public_events_only(runtime: Runtime, office: Office) -> None:
    url = (runtime.data_dir / "nats.url").read_text().strip()
    assert "@" not in url, "the published URL must not carry the services' credentials"

    async def scenario() -> tuple[str, list[dict[str, object]], list[str]]:
        async with Integrator(url) as integrator:
            ticket = await asyncio.to_thread(request_ticket, office, KTP)
            await until(
                lambda: any(
                    event["type"] == "RequestReceived" and event["ticket"] == ticket
                    for event in integrator.public
                )
            )
            refused = await integrator.client.subscribe("adminduk.events.>")
            await integrator.client.flush()
            await until(
                lambda: any("permissions violation" in e.lower() for e in integrator.errors)
            )
            await refused.unsubscribe()
            return ticket, integrator.public, integrator.errors

    ticket, public, errors = asyncio.run(scenario())
    received = next(e for e in public if e["type"] == "RequestReceived" and e["ticket"] == ticket)
    assert received["subject"] == "adminduk.public.RequestReceived"
    assert received["doc_type"] == "KTP"
    assert received["kecamatan"] == "360301"
    assert received["occurred_at"]
    text = json.dumps(public)
    for value in PERSONAL:
        assert value not in text, f"{value!r} reached an integrator in clear"
    assert any("adminduk.events.>" in error for error in errors), errors


def test_replaying_notify_from_the_start_sends_nothing_again(
    runtime: Runtime, office: Office
) -> None:
    ticket = request_ticket(office, KTP)
    supervisor = office.officer("supervisor", [])
    approve(office, ticket, supervisor)
    wait(lambda: office.state(ticket, supervisor)["state"] == "issued" or None)
    office.wait_for_reply(lambda t: "Nomor tiket" in t and "diambil mulai" in t)
    time.sleep(2)  # any message still on its way is out before the count
    before = office.replies()

    for extra in ([], ["--reprocess"]):
        replayed = runtime.cli(
            "events",
            "replay",
            "--from-position",
            "1",
            "--to",
            "consumer:notify-replies",
            *extra,
        )
        assert replayed.returncode == 0, replayed.stdout + replayed.stderr
        assert "delivered" in replayed.stdout, replayed.stdout

    time.sleep(3)  # a message wrongly queued again would be sent within this
    assert office.replies() == before

    # The officer's approval was timed: the dashboard reports its percentiles.
    dashboard = office.call("GET", "/api/dashboard", supervisor)
    assert dashboard.status_code == 200, dashboard.text
    decision = dashboard.json()["admin_response"]["decision"]
    assert decision is not None and decision["count"] == 1
    assert 0 <= decision["p50_working_seconds"] <= decision["p99_working_seconds"]


class Receiver:
    """An integrator's HTTPS endpoint stand-in: a real HTTP server recording each POST."""

    def __init__(self) -> None:
        received: list[tuple[dict[str, str], bytes]] = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                received.append((dict(self.headers.items()), body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *_: object) -> None:
                pass

        self.received = received
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/adminduk"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_a_webhook_subscriber_receives_signed_public_events(
    runtime: Runtime, office: Office
) -> None:
    receiver = Receiver()
    try:
        added = runtime.cli("webhooks", "add", receiver.url, "--events", "RequestReceived")
        assert added.returncode == 0, added.stdout + added.stderr
        secret = re.search(r"(whsec_\S+)", added.stdout)
        assert secret is not None, added.stdout

        ticket = request_ticket(office, KTP)
        headers, body = wait(lambda: receiver.received[0] if receiver.received else None)
    finally:
        receiver.close()

    verified = Webhook(secret[1]).verify(body, headers)  # raises on a bad signature
    assert verified["type"] == "RequestReceived" and verified["ticket"] == ticket
    assert headers["webhook-id"] == verified["id"]
    assert [h for h, _ in receiver.received if h["webhook-id"] == verified["id"]] == [headers]
    for value in PERSONAL:
        assert value not in body.decode(), f"{value!r} reached a webhook in clear"
