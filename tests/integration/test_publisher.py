"""The public relay against real Postgres and NATS: the public form of each request event
reaches ``adminduk.public.<Type>`` once, in position order, without personal data."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta

import asyncpg
import nats
import pytest
from nats.aio.msg import Msg
from nats.js.api import StorageType

from services.integrations.log import PublicLog
from services.integrations.publisher import CHECKPOINT, Publisher
from shared import contracts as c
from shared.bus import jetstream as js
from shared.eventstore.envelope import Event, Metadata
from shared.eventstore.store import EventStore
from shared.public import PublicEvent, public_subject
from tests.builders import SITI
from tests.integration.bus import all_messages, checkpoint, stream_count, wait_for_count

pytestmark = pytest.mark.integration

KEY = b"test-office-key"
TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
NIK = SITI.nik
NO_KK = SITI.no_kk
PHONE = "6281234567890"
NAME = "Siti Nurhaliza"
OFFICER_NAME = "Bambang Sutrisno"
RECEIVED = datetime(2026, 12, 7, 3, 0, tzinfo=UTC)
OFFICE = c.Delivery(channel="office", place="Loket 3")


def received(ticket: str, *, applicant: dict[str, object] | None = None) -> c.RequestReceived:
    return c.RequestReceived(
        ticket=ticket,
        doc_type="KTP",
        citizen="citizen-abc",
        phone=PHONE,
        kecamatan_code="360301",
        applicant={"nik": NIK, "no_kk": NO_KK, "nama": NAME} if applicant is None else applicant,
        message_id=f"wamid.{ticket}",
        received_at=RECEIVED,
    )


def lifecycle(ticket: str) -> list[Event]:
    """A KTP request from receipt to the survey, with personal data wherever it can be."""
    return [
        received(ticket),
        c.RequestChecked(
            ticket=ticket,
            round=1,
            results=(c.CheckResult(check="nik_region", passed=True),),
            outcome="passed",
        ),
        c.RequestClaimed(
            ticket=ticket, officer_id="officer-7", officer_name=OFFICER_NAME, by="officer-7"
        ),
        c.ChangesRequested(
            ticket=ticket,
            reasons=(f"NIK {NIK} tidak sesuai KK {NO_KK}",),
            officer_id="officer-7",
            phone=PHONE,
            doc_type="KTP",
        ),
        c.RequestAmended(ticket=ticket, message_id="wamid.2", attachments=(), phone=PHONE),
        c.RequestVerified(ticket=ticket, officer_id="officer-7", phone=PHONE, doc_type="KTP"),
        c.IssuanceScheduled(
            ticket=ticket,
            doc_type="KTP",
            phone=PHONE,
            promised_on=date(2026, 12, 9),
            working_days=2,
            delivery=OFFICE,
        ),
        c.HandedToSiak(ticket=ticket, idempotency_key=f"siak-{ticket}"),
        c.DocumentIssued(
            ticket=ticket,
            doc_type="KTP",
            phone=PHONE,
            document_number=NIK,
            issued_at=RECEIVED + timedelta(days=1),
            ready_on=date(2026, 12, 9),
            delivery=OFFICE,
        ),
        c.DocumentReady(
            ticket=ticket,
            doc_type="KTP",
            phone=PHONE,
            document_number=NIK,
            ready_on=date(2026, 12, 9),
            delivery=OFFICE,
        ),
        c.DocumentCollected(ticket=ticket, doc_type="KTP", phone=PHONE, officer_id="officer-7"),
        c.SurveyAnswered(ticket=ticket, phone=PHONE, message_id="wamid.3", score=4),
    ]


async def append(store: EventStore, stream_id: str, events: list[Event]) -> None:
    """One append per event, so each has its own commit and notification."""
    for event in events:
        await store.append(
            stream_id,
            [event.to_new_event(metadata=Metadata(trace={"traceparent": TRACEPARENT}))],
        )


async def append_private(store: EventStore) -> None:
    """Events with no public form: the citizen's conversation."""
    await append(
        store,
        c.citizen_stream(PHONE, KEY),
        [
            c.MenuRequested(phone=PHONE, message_id="wamid.menu", understood=True),
            c.InfoRequested(phone=PHONE, message_id="wamid.info", doc_type="KTP"),
        ],
    )


async def public_count(nats_url: str) -> int:
    return await stream_count(nats_url, js.PUBLIC_STREAM_NAME)


async def wait_for_public(nats_url: str, expected: int, timeout: float = 20.0) -> int:
    return await wait_for_count(nats_url, expected, timeout, js.PUBLIC_STREAM_NAME)


async def public_messages(nats_url: str) -> list[Msg]:
    """Every message of the public stream, in stream order."""
    return await all_messages(nats_url, js.PUBLIC_STREAM_NAME, js.ALL_PUBLIC)


async def wait_for_checkpoint(database_url: str, position: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while await checkpoint(database_url, CHECKPOINT) < position:
        assert time.monotonic() < deadline, "the checkpoint did not reach the head"
        await asyncio.sleep(0.05)


def publisher(store: EventStore, database_url: str, nats_url: str, **options: float) -> Publisher:
    return Publisher(
        store,
        database_url,
        [nats_url],
        KEY,
        poll_interval=options.pop("poll_interval", 0.1),
        batch_size=int(options.pop("batch_size", 5)),
        duplicate_window=timedelta(minutes=5),
        max_age=timedelta(days=3),
    )


@pytest.fixture
async def running(
    event_store: EventStore, database_url: str, nats_url: str
) -> AsyncIterator[Publisher]:
    active = publisher(event_store, database_url, nats_url)
    stop = asyncio.Event()
    task = asyncio.create_task(active.run(stop))
    await asyncio.wait_for(active.active.wait(), 10)
    yield active
    stop.set()
    await asyncio.wait_for(task, 10)


async def test_each_request_event_goes_out_once_in_order_without_personal_data(
    event_store: EventStore, nats_url: str, database_url: str, running: Publisher
) -> None:
    await append_private(event_store)
    await append(event_store, c.request_stream("KTP-7Q2M9XAB"), lifecycle("KTP-7Q2M9XAB"))
    await append(
        event_store,
        c.request_stream("KTP-8R3N0YBC"),
        [
            received("KTP-8R3N0YBC"),
            c.RequestRejected(
                ticket="KTP-8R3N0YBC",
                officer_id="officer-9",
                reason=f"{NAME} ({PHONE}) sudah punya KTP",
                phone=PHONE,
                doc_type="KTP",
            ),
        ],
    )
    head = await event_store.last_position()
    await wait_for_checkpoint(database_url, head)

    messages = await public_messages(nats_url)
    events = [PublicEvent.model_validate_json(message.data) for message in messages]
    assert [e.type for e in events] == [
        *(type(event).event_type for event in lifecycle("KTP-7Q2M9XAB")),
        "RequestReceived",
        "RequestRejected",
    ]
    stored = {e.position: e for e in await event_store.read_all(limit=100)}
    positions = [e.position for e in events]
    assert positions == sorted(positions) == [p for p in stored if stored[p].category == "request"]
    for message, event in zip(messages, events, strict=True):
        assert message.subject == public_subject(event.type) == f"adminduk.public.{event.type}"
        headers = message.headers or {}
        assert headers[js.HEADER_MSG_ID] == event.id == str(stored[event.position].event_id)
        assert headers[js.HEADER_POSITION] == str(event.position)
        assert headers[js.HEADER_EVENT_TYPE] == event.type
        assert headers["traceparent"] == TRACEPARENT
        assert (event.doc_type, event.kecamatan) == ("KTP", "360301")
        text = message.data.decode()
        for personal in (NIK, NO_KK, PHONE, NAME, OFFICER_NAME, "sudah punya KTP"):
            assert personal not in text
        assert json.loads(text)["ticket"] in ("KTP-7Q2M9XAB", "KTP-8R3N0YBC")
    assert running.published == len(events)


async def test_the_stream_is_created_for_the_public_subjects(
    nats_url: str, running: Publisher
) -> None:
    client = await nats.connect(nats_url)
    try:
        info = await client.jetstream().stream_info(js.PUBLIC_STREAM_NAME)
    finally:
        await client.close()
    assert info.config.subjects == ["adminduk.public.>"]
    assert info.config.storage == StorageType.FILE
    assert info.config.duplicate_window == timedelta(minutes=5).total_seconds()
    assert info.config.max_age == timedelta(days=3).total_seconds()


async def test_notify_wakes_the_publisher_long_before_its_poll_interval(
    event_store: EventStore, database_url: str, nats_url: str
) -> None:
    sleepy = publisher(event_store, database_url, nats_url, poll_interval=60)
    stop = asyncio.Event()
    task = asyncio.create_task(sleepy.run(stop))
    try:
        await asyncio.wait_for(sleepy.active.wait(), 10)
        await asyncio.sleep(0.3)  # it has found nothing and sleeps for a minute
        await append(event_store, c.request_stream("KTP-7Q2M9XAB"), [received("KTP-7Q2M9XAB")])
        assert await wait_for_public(nats_url, 1, timeout=10) == 1
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


async def test_a_standby_and_a_restart_republish_nothing_twice(
    event_store: EventStore, database_url: str, nats_url: str
) -> None:
    first, second = (publisher(event_store, database_url, nats_url) for _ in range(2))
    stop_first, stop_second = asyncio.Event(), asyncio.Event()
    first_task = asyncio.create_task(first.run(stop_first))
    await asyncio.wait_for(first.active.wait(), 10)
    second_task = asyncio.create_task(second.run(stop_second))
    try:
        await append(event_store, c.request_stream("KTP-7Q2M9XAB"), lifecycle("KTP-7Q2M9XAB"))
        await wait_for_checkpoint(database_url, await event_store.last_position())
        assert (first.published, second.published) == (12, 0)
        assert not second.active.is_set()

        # As if the checkpoint had been lost in a crash: the standby publishes it all again.
        connection = await asyncpg.connect(database_url)
        await connection.execute("UPDATE checkpoints SET position = 0 WHERE name = $1", CHECKPOINT)
        await connection.close()
        stop_first.set()
        await asyncio.wait_for(first_task, 10)
        await asyncio.wait_for(second.active.wait(), 10)
        await append(event_store, c.request_stream("KTP-8R3N0YBC"), [received("KTP-8R3N0YBC")])
        await wait_for_checkpoint(database_url, await event_store.last_position())
        assert second.published == 13
    finally:
        stop_first.set()
        stop_second.set()
        await asyncio.wait_for(asyncio.gather(first_task, second_task), 10)

    messages = await public_messages(nats_url)
    assert len(messages) == 13
    assert len({(m.headers or {})[js.HEADER_MSG_ID] for m in messages}) == 13


async def test_facts_of_a_request_published_before_a_restart_are_looked_up(
    event_store: EventStore, database_url: str, nats_url: str
) -> None:
    """The RequestReceived lies behind the checkpoint: a new publisher reads it back for a
    later event that does not carry the document type and kecamatan itself."""
    await append(event_store, c.request_stream("KTP-7Q2M9XAB"), [received("KTP-7Q2M9XAB")])
    log = PublicLog(event_store, KEY)
    first, scanned = await log.read(0)
    assert [e.type for e in first] == ["RequestReceived"]
    await append(
        event_store,
        c.request_stream("KTP-7Q2M9XAB"),
        [
            c.RequestClaimed(
                ticket="KTP-7Q2M9XAB", officer_id="officer-7", officer_name=NAME, by="officer-7"
            )
        ],
    )
    later, _ = await PublicLog(event_store, KEY).read(scanned)
    assert [(e.type, e.doc_type, e.kecamatan) for e in later] == [
        ("RequestClaimed", "KTP", "360301")
    ]
    assert later[0].data == {"officer_id": "officer-7", "assigned_by": "officer-7"}


async def test_the_log_moves_past_events_without_a_public_form_and_filters_types(
    event_store: EventStore,
) -> None:
    await append(event_store, c.request_stream("KTP-7Q2M9XAB"), lifecycle("KTP-7Q2M9XAB"))
    await append_private(event_store)
    head = await event_store.last_position()
    log = PublicLog(event_store, KEY)

    events, scanned = await log.read(0, limit=100)
    assert (len(events), scanned) == (12, head)
    nothing, after_private = await log.read(12, limit=100)
    assert (nothing, after_private) == ([], head)
    assert await log.read(head) == ([], head)

    wanted = frozenset({"RequestVerified", "DocumentCollected", "NoSuchType"})
    chosen, filtered_scan = await log.read(0, types=wanted)
    assert [e.type for e in chosen] == ["RequestVerified", "DocumentCollected"]
    assert filtered_scan == head
    one, first_scan = await log.read(0, limit=1, types=wanted)
    assert [e.type for e in one] == ["RequestVerified"]
    assert first_scan == one[0].position
    assert await log.read(0, types=frozenset({"MenuRequested"})) == ([], 0)


async def test_an_erased_citizens_request_is_published_without_a_subject(
    event_store: EventStore,
) -> None:
    erased = received("KTP-7Q2M9XAB", applicant={}).model_copy(update={"phone": ""})
    await append(event_store, c.request_stream("KTP-7Q2M9XAB"), [erased])
    events, _ = await PublicLog(event_store, KEY).read(0)
    assert [(e.type, e.data["subject"]) for e in events] == [("RequestReceived", None)]
