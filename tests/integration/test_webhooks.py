"""Signed webhooks against real Postgres and a real HTTP subscriber on a free port.

Events are appended through the real event store; the dispatcher reads them through the
real public log and POSTs them to :class:`Subscriber`, a small ASGI app that records every
request and answers as it is told (200, a 5xx, or too late). Time that the dispatcher
decides by (backoff, dead letter) is a :class:`FakeClock` the tests move.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from ipaddress import ip_network
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from pydantic import SecretStr
from standardwebhooks import Webhook, WebhookVerificationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from adminduk.cli import main as cli
from adminduk.officer_app import create_app
from services.integrations import subscriptions as subs
from services.integrations.destinations import Destinations
from services.integrations.log import PublicLog
from services.integrations.subscriptions import State, Subscription
from services.integrations.webhooks import (
    Dispatcher,
    Outcome,
    RetryPolicy,
    http_client,
    utc_now,
)
from services.verification.main import build
from shared import contracts as c
from shared.config import Settings
from shared.eventstore.envelope import Event, NewEvent
from shared.eventstore.store import EventStore, create_pool
from shared.public import PUBLIC_TYPES, PublicEvent
from shared.runtime.processes import free_port
from shared.runtime.service import serve_http
from tests.builders import SITI

pytestmark = pytest.mark.integration

KEY = b"test-office-key"
HOST = "127.0.0.1"
PHONE = "6281234567890"
NIK = SITI.nik
LOCAL = Destinations((ip_network("127.0.0.0/8"), ip_network("::1/128")))
"""These tests' subscribers listen on loopback, which webhooks reach only when allowed."""
FAST = RetryPolicy(
    base=timedelta(milliseconds=20),
    max=timedelta(milliseconds=100),
    dead_letter_after=timedelta(hours=24),
)
TOO_LATE = "too late"
"""A scripted answer: wait longer than the dispatcher's time-out, then answer 200."""


# -- the integrator's endpoint -------------------------------------------------------------


@dataclass(frozen=True)
class Received:
    headers: dict[str, str]
    body: bytes
    status: int | None
    """What the subscriber answered; None when it answered after the time-out."""
    connection: tuple[str, int] | None = None
    """The dispatcher's end of the TCP connection the request came on."""

    @property
    def webhook_id(self) -> str:
        return self.headers["webhook-id"]


@dataclass
class Subscriber:
    """An integrator's webhook endpoint: records every request and answers per script
    (then ``otherwise``); ``hold`` keeps each request open a while, to overlap them."""

    script: deque[int | str] = field(default_factory=deque)
    otherwise: int = 200
    hold: float = 0.0
    late_by: float = 1.0
    received: list[Received] = field(default_factory=list)
    in_flight: int = 0
    most_in_flight: int = 0

    def answer(self, *answers: int | str) -> None:
        self.script.extend(answers)

    @property
    def delivered(self) -> list[Received]:
        return [r for r in self.received if r.status is not None and 200 <= r.status < 300]

    def delivered_ids(self) -> list[str]:
        return [r.webhook_id for r in self.delivered]

    async def _hook(self, request: Request) -> Response:
        body = await request.body()
        peer = (request.client.host, request.client.port) if request.client else None
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            planned = self.script.popleft() if self.script else self.otherwise
            if self.hold:
                await asyncio.sleep(self.hold)
            if planned == TOO_LATE:
                self.received.append(Received(dict(request.headers), body, None, peer))
                await asyncio.sleep(self.late_by)
                return PlainTextResponse("ok")
            assert isinstance(planned, int)
            self.received.append(Received(dict(request.headers), body, planned, peer))
            return PlainTextResponse("ok" if planned < 300 else "kaput, try later", planned)
        finally:
            self.in_flight -= 1

    def app(self) -> Starlette:
        async def alive(_: Request) -> Response:
            return PlainTextResponse("up")

        return Starlette(routes=[Route("/hook", self._hook, methods=["POST"]), Route("/", alive)])


@contextlib.asynccontextmanager
async def serving(subscriber: Subscriber, port: int | None = None) -> AsyncIterator[str]:
    """The subscriber on a real port; yields its webhook URL."""
    port = port or free_port()
    stop = asyncio.Event()
    task = asyncio.create_task(serve_http(subscriber.app(), HOST, port, stop))
    async with httpx.AsyncClient(trust_env=False) as probe:
        for _ in range(250):
            with contextlib.suppress(httpx.TransportError):
                if (await probe.get(f"http://{HOST}:{port}/")).status_code == 200:
                    break
            await asyncio.sleep(0.02)
        else:
            raise AssertionError(f"port {port} did not come up")
    try:
        yield f"http://{HOST}:{port}/hook"
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


# -- time, the dispatcher, the office's events ------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, by: timedelta) -> None:
        self.now += by


@contextlib.asynccontextmanager
async def dispatching(
    database_url: str,
    store: EventStore,
    *,
    policy: RetryPolicy = FAST,
    clock: Callable[[], datetime] = utc_now,
    timeout: float = 5.0,
    poll_interval: float = 0.2,
    destinations: Destinations = LOCAL,
) -> AsyncIterator[Dispatcher]:
    pool = await create_pool(database_url, min_size=1, max_size=4)
    stop = asyncio.Event()
    try:
        async with http_client(timeout, destinations=destinations, trust_env=False) as http:
            dispatcher = Dispatcher(
                database_url,
                pool,
                PublicLog(store, KEY),
                http,
                policy,
                timeout=timeout,
                poll_interval=poll_interval,
                concurrency=3,
                read_ahead=4,
                clock=clock,
            )
            task = asyncio.create_task(dispatcher.run(stop))
            try:
                yield dispatcher
            finally:
                stop.set()
                await asyncio.wait_for(task, 10)
    finally:
        await pool.close()


def received_event(ticket: str) -> c.RequestReceived:
    return c.RequestReceived(
        ticket=ticket,
        doc_type="KTP",
        citizen="citizen-abc",
        phone=PHONE,
        kecamatan_code="360301",
        applicant={"nik": NIK, "nama": "SITI AMINAH"},
        message_id=f"wamid.{ticket}",
        received_at=datetime(2026, 12, 7, 3, 0, tzinfo=UTC),
    )


def verified(ticket: str) -> c.RequestVerified:
    return c.RequestVerified(ticket=ticket, officer_id="off_7", phone=PHONE, doc_type="KTP")


def collected(ticket: str) -> c.DocumentCollected:
    return c.DocumentCollected(ticket=ticket, doc_type="KTP", phone=PHONE, officer_id="off_7")


async def append(store: EventStore, ticket: str, *events: Event) -> None:
    await store.append(f"request-{ticket}", [event.to_new_event() for event in events])


async def internal_only(store: EventStore) -> None:
    """An event with no public form (another stream category)."""
    await store.append("note-1", [NewEvent(event_type="NoteTaken", data={"n": 1})])


async def public_events(store: EventStore, types: Iterable[str] | None = None) -> list[PublicEvent]:
    events, _ = await PublicLog(store, KEY).read(0, 10_000, frozenset(types) if types else None)
    return events


async def until(probe: Callable[[], object], timeout: float = 15.0) -> None:
    """Wait for ``probe`` to hold (a condition, not a time: the deadline is a failure)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not probe():
        assert asyncio.get_running_loop().time() < deadline, "timed out waiting"
        await asyncio.sleep(0.02)


async def until_row(
    database_url: str, subscription_id: str, probe: Callable[[Subscription], bool]
) -> Subscription:
    connection = await asyncpg.connect(database_url)
    try:
        deadline = asyncio.get_running_loop().time() + 15
        while True:
            row = await subs.get(connection, subscription_id)
            if probe(row):
                return row
            assert asyncio.get_running_loop().time() < deadline, f"timed out: {row}"
            await asyncio.sleep(0.02)
    finally:
        await connection.close()


@contextlib.asynccontextmanager
async def connected(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(database_url)
    try:
        yield connection
    finally:
        await connection.close()


async def register(database_url: str, url: str, **options: Any) -> tuple[Subscription, str]:
    async with connected(database_url) as connection:
        return await subs.add(
            connection,
            url=url,
            known_types=PUBLIC_TYPES,
            created_by="test",
            destinations=LOCAL,
            **options,
        )


# -- delivery ------------------------------------------------------------------------------


async def test_events_arrive_signed_in_position_order_once_each(
    event_store: EventStore, database_url: str
) -> None:
    subscriber = Subscriber()
    async with serving(subscriber) as url, dispatching(database_url, event_store):
        subscription, secret = await register(database_url, url)
        await append(event_store, "KTP-AAAA0001", received_event("KTP-AAAA0001"))
        await internal_only(event_store)
        await append(event_store, "KTP-AAAA0002", received_event("KTP-AAAA0002"))
        await append(event_store, "KTP-AAAA0001", verified("KTP-AAAA0001"))
        await append(event_store, "KTP-AAAA0002", verified("KTP-AAAA0002"))
        await internal_only(event_store)
        expected = await public_events(event_store)
        assert len(expected) == 4
        await until(lambda: len(subscriber.delivered) >= 4)
        last = await event_store.last_position()
        row = await until_row(database_url, subscription.id, lambda s: s.position == last)

    assert subscriber.delivered_ids() == [event.id for event in expected]
    assert len(subscriber.received) == 4
    for request, event in zip(subscriber.delivered, expected, strict=True):
        payload = Webhook(secret).verify(request.body, request.headers)
        assert PublicEvent.model_validate(payload) == event
        assert request.headers["adminduk-event-type"] == event.type
        assert request.headers["adminduk-position"] == str(event.position)
        with pytest.raises(WebhookVerificationError):
            Webhook(secret).verify(request.body.replace(b"KTP", b"KIA"), request.headers)
        assert PHONE.encode() not in request.body
        assert NIK.encode() not in request.body
    assert row.last_delivered_at is not None
    assert (row.attempts, row.last_status, row.last_error) == (0, 200, None)
    # One delivery after the other on one kept-alive connection, not a new one each.
    assert len({request.connection for request in subscriber.delivered}) == 1


async def test_new_events_and_new_subscribers_wake_the_dispatcher(
    event_store: EventStore, database_url: str
) -> None:
    subscriber = Subscriber()
    async with (
        serving(subscriber) as url,
        dispatching(database_url, event_store, poll_interval=3600) as dispatcher,
    ):
        await until(lambda: dispatcher.rounds == 1)
        await register(database_url, url)
        await until(lambda: dispatcher.rounds == 2)
        await append(event_store, "KTP-ABCD0001", received_event("KTP-ABCD0001"))
        await until(lambda: len(subscriber.delivered) == 1)
    assert subscriber.delivered_ids() == [e.id for e in await public_events(event_store)]


async def test_a_new_subscriber_starts_at_the_head_and_replay_sends_older_events(
    event_store: EventStore, database_url: str
) -> None:
    await append(event_store, "KTP-BBBB0001", received_event("KTP-BBBB0001"))
    subscriber = Subscriber()
    async with serving(subscriber) as url, dispatching(database_url, event_store):
        subscription, _ = await register(database_url, url)
        assert subscription.position == await event_store.last_position()
        await append(event_store, "KTP-BBBB0001", verified("KTP-BBBB0001"))
        await until(lambda: len(subscriber.delivered) == 1)
        first, second = await public_events(event_store)
        assert subscriber.delivered_ids() == [second.id]

        async with connected(database_url) as connection:
            await subs.rewind(connection, subscription.id, first.position)
        await until(lambda: len(subscriber.delivered) == 3)

    assert subscriber.delivered_ids() == [second.id, first.id, second.id]


async def test_retries_after_errors_and_time_outs_deliver_in_order_once_each(
    event_store: EventStore, database_url: str
) -> None:
    subscriber = Subscriber(late_by=1.5)
    subscriber.answer(500, 503, TOO_LATE, 200, 502, 200)
    async with (
        serving(subscriber) as url,
        dispatching(database_url, event_store, timeout=0.5),
    ):
        subscription, _ = await register(database_url, url)
        for ticket in ("KTP-CCCC0001", "KTP-CCCC0002", "KTP-CCCC0003"):
            await append(event_store, ticket, received_event(ticket))
        await until(lambda: len(subscriber.delivered) == 3)
        row = await until_row(database_url, subscription.id, lambda s: s.last_status == 200)

    first, second, third = (event.id for event in await public_events(event_store))
    assert [(r.webhook_id, r.status) for r in subscriber.received] == [
        (first, 500),
        (first, 503),
        (first, None),
        (first, 200),
        (second, 502),
        (second, 200),
        (third, 200),
    ]
    assert (row.attempts, row.failing_since, row.next_attempt_at) == (0, None, None)


async def test_retries_after_refused_connections_until_the_subscriber_listens(
    event_store: EventStore, database_url: str
) -> None:
    port = free_port()
    subscriber = Subscriber()
    async with dispatching(database_url, event_store):
        subscription, _ = await register(database_url, f"http://{HOST}:{port}/hook")
        await append(event_store, "KTP-DDDD0001", received_event("KTP-DDDD0001"))
        await append(event_store, "KTP-DDDD0001", verified("KTP-DDDD0001"))
        refused = await until_row(database_url, subscription.id, lambda s: s.attempts >= 3)
        assert refused.last_error is not None and "ConnectError" in refused.last_error
        assert refused.last_status is None
        assert refused.state is State.ACTIVE

        async with serving(subscriber, port):
            await until(lambda: len(subscriber.delivered) == 2)

    assert subscriber.delivered_ids() == [e.id for e in await public_events(event_store)]


async def test_a_subscriber_gets_only_the_types_it_asked_for(
    event_store: EventStore, database_url: str
) -> None:
    subscriber = Subscriber()
    async with serving(subscriber) as url, dispatching(database_url, event_store):
        subscription, _ = await register(
            database_url, url, event_types=["RequestVerified", "DocumentCollected"]
        )
        for ticket in ("KTP-EEEE0001", "KTP-EEEE0002"):
            await append(event_store, ticket, received_event(ticket), verified(ticket))
        await append(event_store, "KTP-EEEE0001", collected("KTP-EEEE0001"))
        await internal_only(event_store)
        last = await event_store.last_position()
        await until_row(database_url, subscription.id, lambda s: s.position == last)

    wanted = await public_events(event_store, {"RequestVerified", "DocumentCollected"})
    assert [e.type for e in wanted] == ["RequestVerified", "RequestVerified", "DocumentCollected"]
    assert subscriber.delivered_ids() == [e.id for e in wanted]
    assert len(subscriber.received) == 3


# -- dead letters, re-drive, replay -----------------------------------------------------------


async def test_a_subscriber_failing_past_the_dead_letter_time_is_parked_then_redriven(
    event_store: EventStore, database_url: str
) -> None:
    clock = FakeClock()
    policy = RetryPolicy(
        base=timedelta(seconds=30), max=timedelta(minutes=5), dead_letter_after=timedelta(hours=1)
    )
    subscriber = Subscriber(otherwise=500)
    async with (
        serving(subscriber) as url,
        dispatching(database_url, event_store, policy=policy, clock=clock) as dispatcher,
    ):
        subscription, _ = await register(database_url, url)
        await append(event_store, "KTP-FFFF0001", received_event("KTP-FFFF0001"))
        await append(event_store, "KTP-FFFF0001", verified("KTP-FFFF0001"))
        stuck, following = await public_events(event_store)
        started = clock.now

        await until_row(database_url, subscription.id, lambda s: s.attempts == 1)
        clock.advance(timedelta(minutes=5))
        dispatcher.wake()
        await until_row(database_url, subscription.id, lambda s: s.attempts == 2)
        clock.advance(timedelta(minutes=56))
        dispatcher.wake()
        parked = await until_row(
            database_url, subscription.id, lambda s: s.state is State.DEAD_LETTER
        )
        assert parked.position == stuck.position - 1
        assert parked.failing_since == started
        assert parked.last_status == 500

        # Parked: not due however far time moves, so nothing more is sent.
        clock.advance(timedelta(days=2))
        assert await dispatcher.deliver_next(subscription.id) is Outcome.NOT_DUE
        assert [r.webhook_id for r in subscriber.received] == [stuck.id] * 3

        async with connected(database_url) as connection:
            (letter,) = await subs.dead_letters(connection, subscription.id)
            assert (letter.event_id, letter.position, letter.event_type) == (
                stuck.id,
                stuck.position,
                "RequestReceived",
            )
            assert (letter.attempts, letter.first_failed_at, letter.resolved_at) == (
                3,
                started,
                None,
            )
            assert letter.last_error == "HTTP 500"  # the status, never the answer's body

            subscriber.otherwise = 200
            redriven = await subs.redrive(connection, subscription.id)
            assert redriven.state is State.ACTIVE
            await until(lambda: len(subscriber.delivered) == 2)
            (resolved,) = await subs.dead_letters(connection, subscription.id)
            assert resolved.resolution == "redriven"
            with pytest.raises(subs.SubscriptionStateError):
                await subs.redrive(connection, subscription.id)

    assert subscriber.delivered_ids() == [stuck.id, following.id]


async def test_replay_resends_from_a_position_with_the_same_webhook_ids(
    event_store: EventStore, database_url: str
) -> None:
    subscriber = Subscriber()
    async with serving(subscriber) as url, dispatching(database_url, event_store):
        subscription, _ = await register(database_url, url)
        for ticket in ("KTP-GGGG0001", "KTP-GGGG0002", "KTP-GGGG0003"):
            await append(event_store, ticket, received_event(ticket))
        await until(lambda: len(subscriber.delivered) == 3)
        first, second, third = await public_events(event_store)

        async with connected(database_url) as connection:
            await subs.rewind(connection, subscription.id, second.position)
            await until(lambda: len(subscriber.delivered) == 5)
            last = await event_store.last_position()
            with pytest.raises(subs.InvalidSubscriptionError, match="beyond the event store"):
                await subs.rewind(connection, subscription.id, last + 2)
            with pytest.raises(subs.UnknownSubscriptionError):
                await subs.rewind(connection, "wh_nobody", 1)

    ids = subscriber.delivered_ids()
    assert ids == [first.id, second.id, third.id, second.id, third.id]
    again = subscriber.delivered[3]
    assert again.body == subscriber.delivered[1].body


async def test_two_dispatchers_never_deliver_one_event_at_the_same_time(
    event_store: EventStore, database_url: str
) -> None:
    subscriber = Subscriber(hold=0.03)
    async with (
        serving(subscriber) as url,
        dispatching(database_url, event_store),
        dispatching(database_url, event_store),
    ):
        await register(database_url, url)
        for n in range(12):
            ticket = f"KTP-HHHH{n:04d}"
            await append(event_store, ticket, received_event(ticket))
        await until(lambda: len(subscriber.delivered) == 12)

    assert subscriber.most_in_flight == 1
    assert subscriber.delivered_ids() == [e.id for e in await public_events(event_store)]


# -- operators: CLI and API -------------------------------------------------------------------


def test_cli_add_list_show_replay_and_bad_input(
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("ADMINDUK_DATABASE_URL", database_url)

    assert cli(["webhooks", "add", "ftp://bpjs.example.org/in"]) == 2
    assert "must start with http:// or https://" in capsys.readouterr().err
    assert cli(["webhooks", "add", "https://bpjs.example.org/in", "--events", "Nope"]) == 2
    refused = capsys.readouterr().err
    assert "unknown event types: Nope" in refused and "RequestVerified" in refused
    assert cli(["webhooks", "add", "https://bpjs.example.org/in", "--secret", "hunter2"]) == 2
    assert "whsec_" in capsys.readouterr().err

    assert (
        cli(
            [
                "webhooks",
                "add",
                "https://bpjs.example.org/in",
                "--events",
                "RequestVerified,DocumentCollected",
                "--description",
                "BPJS Kesehatan",
            ]
        )
        == 0
    )
    added = capsys.readouterr().out
    secret = added.split("secret (shown once, give it to the integrator): ")[1].strip()
    assert secret.startswith("whsec_")
    webhook_id = added.split()[1]
    assert webhook_id.startswith("wh_")

    assert cli(["webhooks", "list"]) == 0
    listing = capsys.readouterr().out
    assert webhook_id in listing and "active" in listing and secret not in listing

    assert cli(["webhooks", "show", webhook_id]) == 0
    shown = capsys.readouterr().out
    assert "RequestVerified, DocumentCollected" in shown and "BPJS Kesehatan" in shown
    assert "dead letters none" in shown and secret not in shown

    for bad, problem in [
        (["--from-position", "-1"], "0 or more"),
        (["--since", "yesterday"], "not an ISO 8601 time"),
        (["--since", "2026-12-07T08:00"], "needs a time zone"),
        (["--from-position", "99"], "beyond the event store"),
    ]:
        assert cli(["webhooks", "replay", webhook_id, *bad]) == 2
        assert problem in capsys.readouterr().err
    with pytest.raises(SystemExit) as usage:
        cli(["webhooks", "replay", webhook_id])
    assert usage.value.code == 2
    assert "one of the arguments --from-position --since is required" in capsys.readouterr().err

    assert cli(["webhooks", "replay", webhook_id, "--since", "2026-12-07T08:00+07:00"]) == 0
    assert "replays from position 1" in capsys.readouterr().out
    assert cli(["webhooks", "replay", webhook_id, "--from-position", "1"]) == 0
    capsys.readouterr()

    assert cli(["webhooks", "redrive", webhook_id]) == 1
    assert "only a parked subscriber is re-driven" in capsys.readouterr().err
    assert cli(["webhooks", "show", "wh_nobody"]) == 1
    assert "no webhook subscription wh_nobody" in capsys.readouterr().err
    assert cli(["webhooks", "disable", webhook_id]) == 0
    assert cli(["webhooks", "enable", webhook_id]) == 0
    assert "active" in capsys.readouterr().out
    assert cli(["webhooks", "remove", webhook_id]) == 0
    assert cli(["webhooks", "remove", webhook_id]) == 1
    assert cli(["webhooks", "list"]) == 0
    assert "no webhook subscriptions" in capsys.readouterr().out


BOOTSTRAP = "webhooks-test-bootstrap-token"


@pytest.fixture
async def console(event_store: EventStore, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(data_dir=tmp_path, bootstrap_token=SecretStr(BOOTSTRAP))
    _, desk = build(settings, event_store)
    app = create_app(settings, event_store, desk)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://console"
    ) as client:
        yield client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def officer(console: httpx.AsyncClient, role: str) -> dict[str, str]:
    answer = await console.post(
        "/api/officers",
        json={"name": f"Petugas {role}", "role": role, "kecamatan": ["360301"]},
        headers=bearer(BOOTSTRAP),
    )
    assert answer.status_code == 201, answer.text
    return bearer(answer.json()["token"])


async def test_api_guards_webhooks_by_role_and_refuses_bad_input(
    console: httpx.AsyncClient, event_store: EventStore
) -> None:
    admin = bearer(BOOTSTRAP)
    operator, supervisor = await officer(console, "operator"), await officer(console, "supervisor")
    body = {"url": "https://bpjs.example.org/in", "event_types": ["RequestVerified"]}

    assert (await console.get("/api/webhooks")).status_code == 401
    assert (
        await console.post("/api/webhooks", json=body, headers=bearer("adk_x"))
    ).status_code == 401
    assert (await console.get("/api/webhooks", headers=operator)).status_code == 403
    assert (await console.post("/api/webhooks", json=body, headers=supervisor)).status_code == 403

    unknown = await console.post(
        "/api/webhooks", json={**body, "event_types": ["PhoneNumberChanged"]}, headers=admin
    )
    assert unknown.status_code == 422
    assert "PhoneNumberChanged" in unknown.json()["detail"]
    assert set(unknown.json()["known_event_types"]) == set(PUBLIC_TYPES)
    for bad in ({"url": "gopher://x.example/"}, {"url": "https://x.example", "secret": "s3"}):
        answer = await console.post("/api/webhooks", json=bad, headers=admin)
        assert answer.status_code == 422, answer.text
    assert (await console.post("/api/webhooks", json={}, headers=admin)).status_code == 422

    created = await console.post("/api/webhooks", json=body, headers=admin)
    assert created.status_code == 201, created.text
    webhook = created.json()
    assert webhook["secret"].startswith("whsec_") and webhook["state"] == "active"
    assert webhook["created_by"] == "officer:bootstrap"
    path = f"/api/webhooks/{webhook['id']}"

    listed = await console.get("/api/webhooks", headers=supervisor)
    assert [w["id"] for w in listed.json()] == [webhook["id"]]
    shown = await console.get(path, headers=supervisor)
    assert shown.status_code == 200
    assert "secret" not in shown.json() and webhook["secret"] not in shown.text
    assert shown.json()["dead_letters"] == []

    await append(event_store, "KTP-JJJJ0001", received_event("KTP-JJJJ0001"))
    assert (
        await console.post(f"{path}/replay", json={"from_position": 1}, headers=supervisor)
    ).status_code == 403
    replay = await console.post(f"{path}/replay", json={"from_position": 1}, headers=admin)
    assert replay.status_code == 200 and replay.json()["position"] == 0
    for bad_replay in ({"from_position": -1}, {}, {"from_position": "first"}):
        answer = await console.post(f"{path}/replay", json=bad_replay, headers=admin)
        assert answer.status_code == 422
    beyond = await console.post(f"{path}/replay", json={"from_position": 99}, headers=admin)
    assert beyond.status_code == 422 and "beyond" in beyond.json()["detail"]

    redrive = await console.post(f"{path}/redrive", headers=admin)
    assert redrive.status_code == 409 and "not dead_letter" in redrive.json()["detail"]
    assert (await console.get("/api/webhooks/wh_nobody", headers=admin)).status_code == 404
    assert (await console.post("/api/webhooks/wh_nobody/redrive", headers=admin)).status_code == 404
    disabled = await console.post(f"{path}/disable", headers=admin)
    assert disabled.json()["state"] == "disabled"

    assert (await console.delete(path, headers=supervisor)).status_code == 403
    assert (await console.delete(path, headers=admin)).status_code == 204
    assert (await console.delete(path, headers=admin)).status_code == 404
    assert json.loads((await console.get("/api/webhooks", headers=admin)).text) == []
