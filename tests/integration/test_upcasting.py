"""An event stored at an old schema version reads as the current one everywhere.

A ``RequestReceived`` is written raw at schema version 1, in an older shape (the kecamatan
under ``kecamatan``); version 2 (today's shape, ``kecamatan_code``) is registered with an
upcaster for the length of a test. Every reader must then see version 2: the aggregate a
repository loads, a consumer's handler (real relay, NATS and consumer framework), a
projection, a replay, and the public derivation. Without the upcaster each of them fails.
Personal fields are sealed in the store and opened before the event is decoded.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any, Literal

import nats
import pytest

from adminduk.ops import catalogue
from adminduk.ops.replay import replay_to_projection
from services.verification.domain.request import Request, State
from shared import contracts
from shared.bus import jetstream as js
from shared.bus.consumer import Consumers, ConsumerSpec, HandlerContext
from shared.bus.relay import Relay
from shared.config import Settings
from shared.contracts import RequestReceived, request_stream
from shared.eventstore.envelope import NO_STREAM, Metadata, NewEvent, RecordedEvent
from shared.eventstore.repository import Repository
from shared.eventstore.store import EventStore
from shared.public.derive import facts_of, public_event
from tests.builders import eventually

pytestmark = pytest.mark.integration

TICKET = "KTP7Q2M9X"
STREAM = request_stream(TICKET)
KECAMATAN = "360301"
PHONE = "6281234567890"


class RequestReceivedV2(RequestReceived):
    """Version 2 of ``RequestReceived`` as a test registers it: today's fields."""

    schema_version: Literal[2] = 2  # type: ignore[assignment]


RequestReceivedV2.event_type = RequestReceived.event_type


def old_shape() -> dict[str, Any]:
    """``RequestReceived`` data as version 1 stored it: ``kecamatan``, no ``kecamatan_code``."""
    return {
        "ticket": TICKET,
        "doc_type": "KTP",
        "citizen": "citizen-3f9a",
        "phone": PHONE,
        "kecamatan": KECAMATAN,
        "applicant": {"nik": "3603031203190002", "nama": "Siti Aminah"},
        "attachments": [],
        "message_id": "wamid.old",
        "received_at": datetime(2026, 11, 23, 3, tzinfo=UTC).isoformat(),
    }


def to_version_2(data: dict[str, Any]) -> dict[str, Any]:
    data["kecamatan_code"] = data.pop("kecamatan", None)
    return data


@pytest.fixture(
    params=[
        "upcast",
        pytest.param(
            "no upcaster",
            marks=pytest.mark.xfail(
                strict=True, reason="a reader that sees version 2 needs the upcaster"
            ),
        ),
    ]
)
def version_2(request: pytest.FixtureRequest) -> Iterator[None]:
    """Version 2 on the process-wide registry, with its upcaster (or, to prove every
    reader goes through it, without), undone afterwards."""
    with contracts.registry.scope() as registry:
        registry.register(RequestReceivedV2)
        if request.param == "upcast":
            registry.upcaster(RequestReceived.event_type, 1)(to_version_2)
        yield


@pytest.fixture
async def stored(event_store: EventStore, version_2: None) -> RecordedEvent:
    result = await event_store.append(
        STREAM,
        [
            NewEvent(
                event_type=RequestReceived.event_type,
                schema_version=1,
                data=old_shape(),
                metadata=Metadata(actor="citizen"),
            )
        ],
        NO_STREAM,
    )
    (stored,) = await event_store.read_stream(STREAM)
    assert stored.event_id == result.events[0].event_id
    assert stored.schema_version == 1 and "kecamatan_code" not in stored.data
    return stored


async def test_the_repository_folds_the_upcast_event(
    event_store: EventStore, stored: RecordedEvent
) -> None:
    raw = await event_store.pool.fetchval("SELECT data FROM events WHERE stream_id = $1", STREAM)
    assert "phone" not in raw  # sealed in the table, opened before decoding

    loaded = await Repository(event_store, contracts.registry, Request).load(STREAM)

    request = loaded.aggregate
    assert (request.state, request.kecamatan_code, request.phone) == (
        State.RECEIVED,
        KECAMATAN,
        PHONE,
    )
    assert loaded.version == request.version == 1


async def test_a_consumer_handler_gets_the_upcast_event(
    event_store: EventStore, nats_url: str, running_relay: Relay, stored: RecordedEvent
) -> None:
    seen: list[RequestReceived] = []

    async def handler(context: HandlerContext) -> None:
        seen.append(context.decode(RequestReceived))

    consumers = Consumers(event_store, redrive_interval=0.1)
    consumers.register(
        ConsumerSpec(
            name="upcast-reader",
            subjects=[js.subject_filter("request", "RequestReceived")],
            backoff=(0.05,),
        ),
        handler,
    )
    admin = await nats.connect(nats_url)
    try:
        await consumers.start(admin.jetstream())

        async def handled() -> bool:
            return bool(seen)

        await eventually(handled, timeout=10.0, what="the handler to get the event")
    finally:
        await consumers.stop()
        await admin.close()
    (event,) = seen
    assert isinstance(event, RequestReceivedV2)
    assert (event.schema_version, event.kecamatan_code, event.phone) == (2, KECAMATAN, PHONE)


async def test_a_projection_writes_the_upcast_fields(
    event_store: EventStore, stored: RecordedEvent
) -> None:
    async with catalogue.consumer("verification-read-models", Settings(), event_store) as (
        _,
        project,
    ):
        await project(
            HandlerContext(
                consumer="verification-read-models", store=event_store, event=stored, deliveries=1
            )
        )
    row = await event_store.pool.fetchrow(
        "SELECT state, kecamatan_code FROM verification_requests WHERE ticket = $1", TICKET
    )
    assert row is not None
    assert (row["state"], row["kecamatan_code"]) == ("received", KECAMATAN)


async def test_a_replay_projects_the_upcast_fields(
    event_store: EventStore, stored: RecordedEvent
) -> None:
    async def events() -> AsyncIterator[RecordedEvent]:
        yield stored

    async with catalogue.consumer("intake-request-status", Settings(), event_store) as (
        spec,
        handler,
    ):
        counts = await replay_to_projection(event_store, spec, handler, events(), delays=())
    assert (counts.delivered, counts.failed) == (1, 0)
    row = await event_store.pool.fetchrow(
        "SELECT status, doc_type, kecamatan_code FROM request_status WHERE ticket = $1", TICKET
    )
    assert row is not None
    assert dict(row) == {"status": "DITERIMA", "doc_type": "KTP", "kecamatan_code": KECAMATAN}


async def test_public_derivation_sees_the_upcast_fields(stored: RecordedEvent) -> None:
    facts = facts_of(stored)
    assert facts is not None and facts.kecamatan == KECAMATAN
    public = public_event(stored, None, b"k" * 32)
    assert public is not None
    assert (public.type, public.kecamatan, public.doc_type) == (
        "RequestReceived",
        KECAMATAN,
        "KTP",
    )
