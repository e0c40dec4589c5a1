"""The WhatsApp webhook against a real Postgres: signatures, shapes, dedup, outages."""

from __future__ import annotations

import copy
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from adminduk.services import MIGRATIONS
from services.intake import inbound
from services.intake.adapters.http import create_app
from shared.config import Settings
from shared.contracts import citizen_stream
from shared.eventstore.migrations import migrate
from shared.eventstore.store import EventStore, StreamAppend
from shared.runtime.embedded import EmbeddedPostgres, ensure_database
from shared.whatsapp.webhook import signature

pytestmark = pytest.mark.integration

SAMPLES = json.loads((Path(__file__).parents[1] / "fixtures" / "whatsapp-samples.json").read_text())
SECRET = "test-app-secret"
PHONE = "6281234567890"
PHONE_NUMBER_ID = "109876543210"  # the samples' business number


def settings(tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path,
        whatsapp_app_secret=SECRET,  # type: ignore[arg-type]
        whatsapp_verify_token="verify-me",  # type: ignore[arg-type]
        whatsapp_phone_number_id=PHONE_NUMBER_ID,
    )


def text_webhook(body: str, message_id: str = "wamid.TEST1", phone: str = PHONE) -> dict[str, Any]:
    payload = copy.deepcopy(SAMPLES["text"])
    message = payload["entry"][0]["changes"][0]["value"]["messages"][0]
    message.update({"id": message_id, "from": phone, "text": {"body": body}})
    return dict(payload)


def signed(payload: dict[str, Any] | bytes, secret: str = SECRET) -> tuple[bytes, dict[str, str]]:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return body, {
        "X-Hub-Signature-256": signature(body, secret),
        "Content-Type": "application/json",
    }


@pytest.fixture
async def client(event_store: EventStore, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings(tmp_path), event_store)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://intake") as client:
        yield client


async def test_verification_handshake(client: httpx.AsyncClient) -> None:
    params = {"hub.mode": "subscribe", "hub.verify_token": "verify-me", "hub.challenge": "1158"}
    answer = await client.get("/webhook/whatsapp", params=params)
    assert (answer.status_code, answer.text) == (200, "1158")
    params["hub.verify_token"] = "wrong"
    assert (await client.get("/webhook/whatsapp", params=params)).status_code == 403
    assert (await client.get("/webhook/whatsapp")).status_code == 403


async def test_a_signed_message_is_stored_once_however_often_it_arrives(
    client: httpx.AsyncClient, event_store: EventStore, tmp_path: Path
) -> None:
    body, headers = signed(text_webhook("#STATUS#KTP-7Q2M9XAB"))
    for _ in range(3):
        answer = await client.post("/webhook/whatsapp", content=body, headers=headers)
        assert answer.status_code == 200

    events = await event_store.read_all()
    assert len(events) == 1
    [event] = events
    assert event.event_type == "WhatsAppMessageReceived"
    assert event.stream_id == citizen_stream(PHONE, settings(tmp_path).key)
    assert PHONE not in event.stream_id, "stream ids must not reveal the phone number"
    assert event.data["text"] == "#STATUS#KTP-7Q2M9XAB"
    assert event.data["phone"] == PHONE
    assert event.data["profile_name"] == "Warga"


@pytest.mark.parametrize(
    "header",
    [None, "sha256=" + "0" * 64, "sha256=deadbeef", "md5=abc", ""],
)
async def test_missing_or_wrong_signature_is_401_and_stores_nothing(
    client: httpx.AsyncClient, event_store: EventStore, header: str | None
) -> None:
    body = json.dumps(text_webhook("halo")).encode()
    headers = {"Content-Type": "application/json"}
    if header is not None:
        headers["X-Hub-Signature-256"] = header
    answer = await client.post("/webhook/whatsapp", content=body, headers=headers)
    assert answer.status_code == 401
    assert await event_store.last_position() == 0


async def test_signed_with_another_secret_is_401(
    client: httpx.AsyncClient, event_store: EventStore
) -> None:
    body, headers = signed(text_webhook("halo"), secret="someone-else")
    assert (
        await client.post("/webhook/whatsapp", content=body, headers=headers)
    ).status_code == 401
    assert await event_store.last_position() == 0


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"[]",
        b'{"object": "page", "entry": []}',
        b'{"object": "whatsapp_business_account", "entry": []}',
        b'{"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": '
        b'[{"field": "messages", "value": {"messaging_product": "whatsapp", "metadata": '
        b'{"phone_number_id": "1"}, "messages": [{"from": "<script>", "id": "x", '
        b'"timestamp": "1", "type": "text"}]}}]}]}',
        "\u0000\udcff".encode(errors="surrogateescape"),
    ],
)
async def test_malformed_payloads_are_400(
    client: httpx.AsyncClient, event_store: EventStore, body: bytes
) -> None:
    content, headers = signed(body)
    answer = await client.post("/webhook/whatsapp", content=content, headers=headers)
    assert answer.status_code == 400
    assert "error" in answer.json()
    assert await event_store.last_position() == 0


async def test_an_oversized_body_is_413(client: httpx.AsyncClient) -> None:
    content, headers = signed(b"{" + b" " * (4 * 1024 * 1024) + b"}")
    assert (
        await client.post("/webhook/whatsapp", content=content, headers=headers)
    ).status_code == 413


async def test_every_entry_change_message_and_status_is_recorded(
    client: httpx.AsyncClient, event_store: EventStore
) -> None:
    payload = text_webhook("halo", "wamid.A")
    second_entry = copy.deepcopy(payload["entry"][0])
    value = second_entry["changes"][0]["value"]
    value["messages"] = [
        {**value["messages"][0], "id": "wamid.B", "from": "6289876543210"},
        {**value["messages"][0], "id": "wamid.C", "text": {"body": "#MENU"}},
    ]
    status_change = copy.deepcopy(SAMPLES["status_failed"]["entry"][0]["changes"][0])
    second_entry["changes"].append(status_change)
    payload["entry"].append(second_entry)
    content, headers = signed(payload)

    assert (
        await client.post("/webhook/whatsapp", content=content, headers=headers)
    ).status_code == 200

    events = await event_store.read_all()
    messages = sorted(e.data["message_id"] for e in events if e.category == "citizen")
    assert messages == ["wamid.A", "wamid.B", "wamid.C"]
    [status] = [e for e in events if e.category == "delivery"]
    assert status.event_type == "DeliveryStatusReceived"
    assert status.data["status"] == "failed"
    assert status.data["error_codes"]


async def test_a_retry_that_regroups_stored_and_new_messages_stores_only_the_new(
    client: httpx.AsyncClient, event_store: EventStore
) -> None:
    """One webhook is one append; when Meta retries part of an earlier webhook together with
    something new, the repeated part is a no-op and the new part is stored (not a 503 that
    Meta would retry for days)."""
    first, headers = signed(text_webhook("halo", "wamid.R1"))
    assert (
        await client.post("/webhook/whatsapp", content=first, headers=headers)
    ).status_code == 200

    regrouped = text_webhook("halo", "wamid.R1")
    value = regrouped["entry"][0]["changes"][0]["value"]
    value["messages"].append({**value["messages"][0], "id": "wamid.R2", "text": {"body": "#MENU"}})
    sent = copy.deepcopy(SAMPLES["status_failed"]["entry"][0]["changes"][0]["value"]["statuses"][0])
    read = {**sent, "status": "read", "errors": [], "timestamp": str(int(sent["timestamp"]) + 5)}
    value["statuses"] = [sent, read]  # two statuses of one message in the same webhook
    body, headers = signed(regrouped)
    for _ in range(2):
        answer = await client.post("/webhook/whatsapp", content=body, headers=headers)
        assert answer.status_code == 200

    events = await event_store.read_all()
    messages = [e.data["message_id"] for e in events if e.category == "citizen"]
    assert messages == ["wamid.R1", "wamid.R2"]
    assert [e.data["status"] for e in events if e.category == "delivery"] == ["failed", "read"]


async def test_postgres_down_is_503_so_meta_retries(tmp_path: Path) -> None:
    server = EmbeddedPostgres(tmp_path / "pg", durable=False)
    server.start()
    try:
        await ensure_database(server.dsn("postgres"), "adminduk")
        connection = await asyncpg.connect(server.dsn())
        await migrate(connection, MIGRATIONS)
        await connection.close()
        store = await EventStore.connect(server.dsn(), min_size=1, max_size=2)
        app = create_app(settings(tmp_path), store)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://intake") as client:
            body, headers = signed(text_webhook("halo"))
            assert (
                await client.post("/webhook/whatsapp", content=body, headers=headers)
            ).status_code == 200
            server.stop()
            body, headers = signed(text_webhook("halo lagi", "wamid.TEST2"))
            answer = await client.post("/webhook/whatsapp", content=body, headers=headers)
            assert answer.status_code == 503
        await store.close()
    finally:
        server.stop()


# -- bounds: many items, another business number ---------------------------------------------


def statuses_webhook(count: int, prefix: str = "wamid.S") -> dict[str, Any]:
    payload = copy.deepcopy(SAMPLES["status_delivered"])
    value = payload["entry"][0]["changes"][0]["value"]
    [status] = value["statuses"]
    value["statuses"] = [{**status, "id": f"{prefix}{i}"} for i in range(count)]
    return dict(payload)


class AppendSpy:
    """Wraps the store's ``append_streams``: how many events each call carried, and how many
    calls were in flight at most at once."""

    def __init__(self, store: EventStore) -> None:
        self.inner = store.append_streams
        self.sizes: list[int] = []
        self.in_flight = self.most_in_flight = 0

    async def __call__(self, appends: list[StreamAppend]) -> Any:
        self.sizes.append(sum(len(append.events) for append in appends))
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            return await self.inner(appends)
        finally:
            self.in_flight -= 1


@pytest.fixture
def appends(event_store: EventStore, monkeypatch: pytest.MonkeyPatch) -> AppendSpy:
    spy = AppendSpy(event_store)
    monkeypatch.setattr(event_store, "append_streams", spy)
    return spy


async def test_ten_thousand_items_in_one_webhook_are_413_and_nothing_is_stored(
    client: httpx.AsyncClient, event_store: EventStore, appends: AppendSpy
) -> None:
    body, headers = signed(statuses_webhook(10_000))
    answer = await client.post("/webhook/whatsapp", content=body, headers=headers)
    assert answer.status_code == 413
    assert f"at most {inbound.MAX_WEBHOOK_ITEMS}" in answer.json()["error"]
    assert appends.sizes == []
    assert await event_store.last_position() == 0


async def test_an_ordinary_webhook_is_one_append(
    client: httpx.AsyncClient, appends: AppendSpy
) -> None:
    payload = text_webhook("halo", "wamid.ONE")
    payload["entry"][0]["changes"].append(SAMPLES["status_delivered"]["entry"][0]["changes"][0])
    body, headers = signed(payload)
    assert (await client.post("/webhook/whatsapp", content=body, headers=headers)).is_success
    assert appends.sizes == [2]


async def test_a_large_webhook_is_appended_in_bounded_batches_and_its_retry_too(
    client: httpx.AsyncClient, event_store: EventStore, appends: AppendSpy
) -> None:
    count = inbound.MAX_WEBHOOK_ITEMS
    body, headers = signed(statuses_webhook(count))
    assert (await client.post("/webhook/whatsapp", content=body, headers=headers)).is_success
    assert sum(appends.sizes) == count
    assert max(appends.sizes) <= inbound.APPEND_BATCH
    assert appends.most_in_flight == 1

    # Meta retries it with one status changed: the stored ones are no-ops, one at a time
    # per stream but never all streams at once.
    appends.sizes.clear()
    retry = statuses_webhook(count)
    retry["entry"][0]["changes"][0]["value"]["statuses"][-1]["status"] = "read"
    body, headers = signed(retry)
    assert (await client.post("/webhook/whatsapp", content=body, headers=headers)).is_success
    assert appends.most_in_flight <= inbound.APPEND_CONCURRENCY
    delivery = [e for e in await event_store.read_all(limit=2 * count) if e.category == "delivery"]
    assert len(delivery) == count + 1


async def test_changes_for_another_business_number_are_refused_and_logged_without_personal_data(
    client: httpx.AsyncClient, event_store: EventStore, caplog: pytest.LogCaptureFixture
) -> None:
    payload = text_webhook("halo", "wamid.OURS")
    foreign = copy.deepcopy(payload["entry"][0])
    value = foreign["changes"][0]["value"]
    value["metadata"]["phone_number_id"] = "555000111222"
    value["messages"][0].update({"id": "wamid.THEIRS", "from": "6289876543210"})
    foreign["changes"].append(copy.deepcopy(SAMPLES["status_delivered"]["entry"][0]["changes"][0]))
    foreign["changes"][1]["value"]["metadata"]["phone_number_id"] = "555000111222"
    payload["entry"].append(foreign)
    body, headers = signed(payload)

    with caplog.at_level("WARNING", logger="services.intake"):
        answer = await client.post("/webhook/whatsapp", content=body, headers=headers)

    assert answer.status_code == 200
    events = await event_store.read_all()
    assert [e.data.get("message_id") for e in events] == ["wamid.OURS"]
    [warning] = [r.getMessage() for r in caplog.records if "555000111222" in r.getMessage()]
    assert "(2)" in warning  # the items it ignored
    assert "6289876543210" not in warning
    assert "wamid.THEIRS" not in warning


async def test_the_same_message_twice_in_one_webhook_is_stored_once(
    client: httpx.AsyncClient, event_store: EventStore
) -> None:
    payload = text_webhook("halo", "wamid.TWICE")
    payload["entry"].append(copy.deepcopy(payload["entry"][0]))
    status_change = SAMPLES["status_delivered"]["entry"][0]["changes"][0]
    payload["entry"][0]["changes"] += [status_change, status_change]
    body, headers = signed(payload)
    assert (await client.post("/webhook/whatsapp", content=body, headers=headers)).is_success
    assert [e.event_type for e in await event_store.read_all()] == [
        "WhatsAppMessageReceived",
        "DeliveryStatusReceived",
    ]


@pytest.mark.parametrize(
    ("field", "value"),
    [("id", "wamid.\u0000NUL"), ("from", "62812\u00003456789")],
)
async def test_nul_characters_are_dropped_not_a_503_that_meta_would_retry_for_days(
    client: httpx.AsyncClient, event_store: EventStore, field: str, value: str
) -> None:
    payload = text_webhook("ha\u0000lo", "wamid.NUL")
    payload["entry"][0]["changes"][0]["value"]["messages"][0][field] = value
    body, headers = signed(payload)
    assert b"\\u0000" in body
    assert (await client.post("/webhook/whatsapp", content=body, headers=headers)).is_success
    [event] = await event_store.read_all()
    assert "\u0000" not in json.dumps(event.data)
    assert event.data["message_id"] == "wamid.NUL"


async def test_a_phone_number_in_another_script_is_400(
    client: httpx.AsyncClient, event_store: EventStore
) -> None:
    body, headers = signed(text_webhook("halo", phone="٦٢٨١٢٣٤٥٦٧٨٩٠"))
    assert (
        await client.post("/webhook/whatsapp", content=body, headers=headers)
    ).status_code == 400
    assert await event_store.last_position() == 0


async def test_a_message_id_seen_before_from_another_number_is_ignored_not_a_503(
    client: httpx.AsyncClient, event_store: EventStore
) -> None:
    for phone in (PHONE, "6289876543210"):
        body, headers = signed(text_webhook("halo", "wamid.SAME", phone=phone))
        assert (await client.post("/webhook/whatsapp", content=body, headers=headers)).is_success
    [event] = await event_store.read_all()
    assert event.stream_id == citizen_stream(PHONE, settings(Path()).key)


async def test_the_webhooks_answers_are_documented(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()
    answers = schema["paths"]["/webhook/whatsapp"]["post"]["responses"]
    assert set(answers) == {"200", "400", "401", "413", "503"}
    assert str(inbound.MAX_WEBHOOK_ITEMS) in answers["413"]["description"]
