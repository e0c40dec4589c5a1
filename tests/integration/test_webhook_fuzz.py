"""Standing fuzz suite of intake's webhook: signed webhooks that hypothesis makes hostile
(random JSON, unicode, NUL, huge ids, many entries, deep nesting, near-miss requests) go
through the real HTTP app into the real event store, and intake's consumer handles what was
stored, with the simulator as the Cloud API. Whatever arrives: never a 5xx, only ASCII
phone numbers stored, the consumer never fails, and never a ticket (these are no valid
requests). Bounded: about 20 s on a quiet machine."""

from __future__ import annotations

import json
import string
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from services.intake.adapters.http import create_app
from services.intake.inbound import MAX_WEBHOOK_ITEMS
from shared.bus.consumer import HandlerContext
from shared.contracts import WhatsAppMessageReceived
from shared.eventstore.store import EventStore
from shared.whatsapp.webhook import signature

from .citizens import Citizen, citizen_of

pytestmark = pytest.mark.integration

OK_STATUSES = {200, 400, 413}


@dataclass
class Target:
    client: httpx.AsyncClient
    citizen: Citizen

    @property
    def store(self) -> EventStore:
        return self.citizen.intake.store


@pytest.fixture
async def target(event_store: EventStore, tmp_path: Path) -> AsyncIterator[Target]:
    async with citizen_of(event_store, tmp_path) as citizen:
        app = create_app(citizen.settings, event_store)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://intake") as client:
            yield Target(client, citizen)


# -- what hypothesis sends -------------------------------------------------------------------

hostile_text = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=40),
    st.sampled_from(
        [
            "",
            "\x00",
            "a\x00b",
            "../simulator/api/conversations",
            "%2e%2e%2f",
            "<script>alert(1)</script>",
            "'; DROP TABLE events; --",
            "\u202e\u200b\ufeff",
            "٦٢٨١٢٣٤٥٦٧٨٩٠",  # Arabic-Indic digits
            "6281234567890".translate({ord(d): 0xFF10 + int(d) for d in "0123456789"}),
            "1" * 5000,
            "wamid." + "A" * 300,
        ]
    ),
)
# Requests that are nearly valid: each has a fault that must keep it from becoming a ticket.
near_miss_requests = st.sampled_from(
    [
        "#KTP#3603015708990001#3603012001180003#SITI\x00AMINAH",
        "#KTP#٣٦٠٣٠١٥٧٠٨٩٩٠٠٠١#3603012001180003#SITI AMINAH#SENTUL#BALARAJA#PEMULA#",
        "#KTP#3603015708990001#3603012001180003##SENTUL#BALARAJA#PEMULA#",
        "#KTP#36030157089900019#3603012001180003#SITI AMINAH#SENTUL#BALARAJA#PEMULA#",
        "#KTP#0000000000000000#3603012001180003#SITI AMINAH#SENTUL#BALARAJA#PEMULA#",
        "#KIA#3603011205180002#" + "#" * 2000,
        "#STATUS#" + "K" * 5000,
        "#LENGKAPI#KTP-\x00",
        "#BATAL#../../etc/passwd",
    ]
)
json_leaf = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), hostile_text
)
random_json = st.recursive(
    json_leaf,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(hostile_text, inner, max_size=4)
    ),
    max_leaves=20,
)


def mostly(valid: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """``valid`` seven times in eight, else a hostile text: a webhook keeps most of its shape
    (so that it gets past validation) with a few hostile fields."""
    return st.tuples(st.integers(0, 7), valid, hostile_text).map(
        lambda drawn: drawn[2] if drawn[0] == 0 else drawn[1]
    )


phones = mostly(st.sampled_from(["6281234567890", "6289876543210"]))
ids = mostly(st.from_regex(r"wamid\.[A-Za-z0-9]{1,20}", fullmatch=True))


@st.composite
def messages(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(mostly(st.sampled_from(["text", "image", "document", "interactive", "sticker"])))
    message: dict[str, Any] = {
        "from": draw(phones),
        "id": draw(ids),
        "timestamp": draw(mostly(st.just("1763880000"))),
        "type": kind,
    }
    body = draw(st.one_of(near_miss_requests, hostile_text))
    if kind == "text":
        message["text"] = {"body": body}
    elif kind in {"image", "document"}:
        message[kind] = {
            "id": draw(mostly(st.from_regex(r"[0-9]{1,20}", fullmatch=True))),
            "mime_type": draw(mostly(st.just("image/jpeg"))),
            "sha256": draw(mostly(st.just("0" * 64))),
            "caption": body,
            "filename": draw(mostly(st.just("ktp.jpg"))),
        }
    elif kind == "interactive":
        reply = {"id": draw(mostly(st.sampled_from(["svc:KIA", "confirm:KTP"]))), "title": body}
        message["interactive"] = {"type": "button_reply", "button_reply": reply}
    if draw(st.booleans()):
        message["context"] = {"id": draw(ids), "from": draw(phones)}
    if draw(st.integers(0, 7)) == 0:
        message[draw(hostile_text)] = draw(random_json)  # unknown fields
    return message


@st.composite
def statuses(draw: st.DrawFn) -> dict[str, Any]:
    return {
        "id": draw(ids),
        "status": draw(mostly(st.sampled_from(["sent", "delivered", "read", "failed"]))),
        "timestamp": draw(mostly(st.just("1763880005"))),
        "recipient_id": draw(phones),
        "biz_opaque_callback_data": draw(st.one_of(st.none(), hostile_text)),
        "errors": draw(
            st.lists(
                st.fixed_dictionaries(
                    {"code": mostly(st.integers(-(2**70), 2**70)), "title": hostile_text}
                ),
                max_size=2,
            )
        ),
    }


@st.composite
def webhooks(draw: st.DrawFn, phone_number_id: str) -> dict[str, Any]:
    def change() -> dict[str, Any]:
        return {
            "field": draw(mostly(st.just("messages"))),
            "value": {
                "messaging_product": "whatsapp",
                "metadata": {
                    "phone_number_id": draw(mostly(st.just(phone_number_id))),
                    "display_phone_number": draw(phones),
                },
                "contacts": [
                    {"wa_id": draw(phones), "profile": {"name": draw(mostly(st.just("Warga")))}}
                    for _ in range(draw(st.integers(0, 2)))
                ],
                "messages": draw(st.lists(messages(), max_size=3)),
                "statuses": draw(st.lists(statuses(), max_size=3)),
            },
        }

    entries = [
        {"id": draw(ids), "changes": [change() for _ in range(draw(st.integers(1, 2)))]}
        for _ in range(draw(st.integers(1, 3)))
    ]
    # Many entries: one drawn entry repeated, so size costs no generation time.
    entries *= draw(st.sampled_from([1, 1, 1, 50, MAX_WEBHOOK_ITEMS]))
    return {"object": "whatsapp_business_account", "entry": entries}


def bodies(phone_number_id: str) -> st.SearchStrategy[bytes]:
    def encoded(value: object) -> bytes:
        return json.dumps(value).encode()

    return st.one_of(
        webhooks(phone_number_id).map(encoded),
        random_json.map(encoded),
        st.binary(max_size=200),
        st.integers(1, 100_000).map(lambda depth: b"[" * depth + b"]" * depth),
        st.integers(1, 100_000).map(lambda depth: b'{"a":' * depth + b"1" + b"}" * depth),
        st.text(alphabet=string.printable, max_size=200).map(str.encode),
    )


# -- the property ----------------------------------------------------------------------------

PHONE_NUMBER_ID = "100000000000001"  # the development settings' (Settings' default)


def text_webhook(
    body: str, message_id: str, phone_number_id: str, phone: str = "6281234567890"
) -> dict[str, Any]:
    message = {"from": phone, "id": message_id, "timestamp": "1", "type": "text"}
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"phone_number_id": phone_number_id},
        "messages": [{**message, "text": {"body": body}}],
    }
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": "1", "changes": [{"field": "messages", "value": value}]}],
    }


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
@given(body=bodies(PHONE_NUMBER_ID))
@example(body=b"[" * 200_000 + b"]" * 200_000)
@example(body=b'{"a":' * 5000 + b'"\\u0000"' + b"}" * 5000)
@example(body=json.dumps(text_webhook("halo", "wamid.\x00", PHONE_NUMBER_ID)).encode())
@example(
    body=json.dumps(text_webhook("halo", "wamid.N", PHONE_NUMBER_ID, "٦٢٨١٢٣٤٥٦٧٨٩٠")).encode()
)
@example(body=json.dumps({"object": "whatsapp_business_account", "entry": [{}] * 20_000}).encode())
async def test_hostile_signed_webhooks_never_fail_the_server_and_never_make_a_ticket(
    target: Target, body: bytes
) -> None:
    assert target.citizen.settings.whatsapp_phone_number_id == PHONE_NUMBER_ID
    store = target.store
    before = await store.last_position()
    secret = target.citizen.settings.whatsapp_app_secret.get_secret_value()
    answer = await target.client.post(
        "/webhook/whatsapp",
        content=body,
        headers={"X-Hub-Signature-256": signature(body, secret)},
    )
    assert answer.status_code in OK_STATUSES, answer.text
    assert "error" in answer.json() or answer.status_code == 200

    for event in await store.read_all(after_position=before, limit=5000):
        if event.event_type != WhatsAppMessageReceived.event_type:
            continue
        message = WhatsAppMessageReceived.model_validate(event.data)
        assert message.phone.isascii()
        assert message.phone.isdigit()
        context = HandlerContext(consumer="intake-messages", store=store, event=event, deliveries=1)
        await target.citizen.intake.on_message(context)

    made = await store.read_all(after_position=before, limit=5000)
    tickets = [e.stream_id for e in made if e.category in {"request", "complaint"}]
    assert tickets == []
