"""Webhooks go to public addresses only (issue 15, finding 10): an admin cannot make the
office POST to its own loopback, private or link-local networks (the metadata service, the
database, the simulator), neither when registering a URL nor later, when its name resolves
elsewhere; and a refusing subscriber's answer is never echoed back in ``last_error``.

Networks named in ``ADMINDUK_WEBHOOK_ALLOWED_NETWORKS`` are allowed (these tests' own
subscribers listen on 127.0.0.1 that way).
"""

from __future__ import annotations

from ipaddress import ip_network
from pathlib import Path

import asyncpg
import httpx
import pytest
from pydantic import SecretStr

from adminduk.officer_app import create_app
from services.integrations import subscriptions as subs
from services.integrations.destinations import Destinations
from services.integrations.subscriptions import InvalidSubscriptionError
from services.verification.main import build
from shared.config import Settings
from shared.eventstore.store import EventStore
from shared.public import PUBLIC_TYPES
from tests.integration.test_webhooks import (
    LOCAL,
    Subscriber,
    append,
    dispatching,
    received_event,
    serving,
    until_row,
)

pytestmark = pytest.mark.integration

INTERNAL = [
    "http://127.0.0.1:8002/simulator/api/conversations",
    "http://localhost:5432/",
    "http://10.0.0.5/hook",
    "http://192.168.1.10/hook",
    "http://172.16.0.1/hook",
    "http://100.64.0.1/hook",
    "http://169.254.169.254/latest/meta-data/",
    "http://[::1]:8001/api/requests",
    "http://[fe80::1]/hook",
    "http://[::ffff:127.0.0.1]/hook",
    "http://0.0.0.0:8001/",
]


@pytest.mark.parametrize("url", INTERNAL)
async def test_internal_addresses_are_refused_at_registration(database_url: str, url: str) -> None:
    connection = await asyncpg.connect(database_url)
    try:
        with pytest.raises(InvalidSubscriptionError, match="ADMINDUK_WEBHOOK_ALLOWED_NETWORKS"):
            await subs.add(
                connection,
                url=url,
                known_types=PUBLIC_TYPES,
                created_by="test",
                destinations=Destinations(),
            )
        assert await subs.list_subscriptions(connection) == []
    finally:
        await connection.close()


async def test_an_allowed_network_may_be_registered(database_url: str) -> None:
    connection = await asyncpg.connect(database_url)
    try:
        added, _ = await subs.add(
            connection,
            url="http://10.1.2.3/hook",
            known_types=PUBLIC_TYPES,
            created_by="test",
            destinations=Destinations((ip_network("10.1.0.0/16"),)),
        )
        assert added.url == "http://10.1.2.3/hook"
        with pytest.raises(InvalidSubscriptionError):
            await subs.add(
                connection,
                url="http://10.2.0.1/hook",
                known_types=PUBLIC_TYPES,
                created_by="test",
                destinations=Destinations((ip_network("10.1.0.0/16"),)),
            )
    finally:
        await connection.close()


async def test_delivery_to_an_internal_address_is_refused_at_connection_time(
    event_store: EventStore, database_url: str
) -> None:
    """A URL that passed registration (its name resolved elsewhere then, or the allow-list
    was wider) is checked again at every connection: nothing reaches the address."""
    subscriber = Subscriber()
    async with serving(subscriber) as url:
        connection = await asyncpg.connect(database_url)
        try:
            subscription, _ = await subs.add(
                connection,
                url=url.replace("127.0.0.1", "localhost"),
                known_types=PUBLIC_TYPES,
                created_by="test",
                destinations=LOCAL,
            )
        finally:
            await connection.close()
        async with dispatching(database_url, event_store, destinations=Destinations()):
            await append(event_store, "KTP-SSRF0001", received_event("KTP-SSRF0001"))
            refused = await until_row(database_url, subscription.id, lambda s: s.attempts >= 2)
    assert subscriber.received == []
    assert refused.last_status is None
    assert refused.last_error is not None
    assert "loopback" in refused.last_error


async def test_last_error_keeps_the_status_not_the_answer(
    event_store: EventStore, database_url: str
) -> None:
    subscriber = Subscriber(otherwise=500)
    async with serving(subscriber) as url, dispatching(database_url, event_store):
        connection = await asyncpg.connect(database_url)
        try:
            subscription, _ = await subs.add(
                connection,
                url=url,
                known_types=PUBLIC_TYPES,
                created_by="test",
                destinations=LOCAL,
            )
        finally:
            await connection.close()
        await append(event_store, "KTP-SSRF0002", received_event("KTP-SSRF0002"))
        failed = await until_row(database_url, subscription.id, lambda s: s.attempts >= 1)
    assert subscriber.received
    assert failed.last_status == 500
    assert failed.last_error == "HTTP 500"


async def test_the_api_refuses_internal_addresses_unless_allowed(
    event_store: EventStore, tmp_path: Path
) -> None:
    token = "destinations-test-bootstrap-token"
    for allowed, expected in (([], 422), (["127.0.0.0/8"], 201)):
        settings = Settings(
            data_dir=tmp_path,
            bootstrap_token=SecretStr(token),
            webhook_allowed_networks=[ip_network(network) for network in allowed],
        )
        _, desk = build(settings, event_store)
        app = create_app(settings, event_store, desk)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://console"
        ) as console:
            answer = await console.post(
                "/api/webhooks",
                json={"url": "http://127.0.0.1:8001/api/officers"},
                headers={"Authorization": f"Bearer {token}"},
            )
        assert answer.status_code == expected, answer.text
        if expected == 422:
            assert "ADMINDUK_WEBHOOK_ALLOWED_NETWORKS" in answer.json()["detail"]


def test_the_allow_list_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ADMINDUK_WEBHOOK_ALLOWED_NETWORKS", "10.1.0.0/16, fd00::/8")
    destinations = Destinations.from_settings(Settings())
    assert destinations.refusal("10.1.2.3") is None
    assert destinations.refusal("fd00::1") is None
    assert destinations.refusal("10.2.0.1") is not None
    monkeypatch.setenv("ADMINDUK_WEBHOOK_ALLOWED_NETWORKS", "not-a-network")
    with pytest.raises(ValueError, match="webhook_allowed_networks"):
        Settings()
