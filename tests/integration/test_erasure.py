"""Crypto-shredding end to end against a real Postgres (and NATS where the bus is the
subject): personal data sealed at rest and on JetStream, read in clear, and after
``adminduk citizens erase`` unreadable everywhere while the statistics stay."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import nats
import pytest
from pydantic import SecretStr

from adminduk.cli import main
from adminduk.officer_app import create_app
from services.issuance.adapters import postgres as issuance_db
from services.notify.handlers import INBOUND_EVENTS, REPLY_EVENTS
from services.verification.handlers import Desk, Verification
from services.verification.main import build
from shared.bus import jetstream as js
from shared.bus.consumer import Consumers, ConsumerSpec, HandlerContext
from shared.bus.relay import Relay
from shared.config import Settings
from shared.contracts import RequestRejected, citizen_stream, registry, request_stream
from shared.eventstore.envelope import NewEvent, RecordedEvent
from shared.eventstore.errors import DuplicateMessageError
from shared.eventstore.store import EventStore
from shared.keyring import SEALED, Keyring, Sealer
from tests.builders import eventually

from .bus import all_messages, wait_for_count
from .citizens import Citizen, citizen_of
from .notifying import Notifying, notifying

pytestmark = pytest.mark.integration

PHONE, OTHER = "6281234567890", "6289876543210"
NIK, NO_KK, NAME = "3603015708990001", "3603012001180003", "SITI AMINAH"
KTP = f"#KTP#{NIK}#{NO_KK}#{NAME}#SENTUL#BALARAJA#PEMULA#"
KTP_OTHER = "#KTP#3603014101850002#3603012001180004#BUDI SANTOSO#SENTUL#BALARAJA#HILANG#"
PERSONAL = (NIK, NO_KK, NAME, PHONE)
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(256)) * 4
PNG = b"\x89PNG\r\n\x1a\n" + bytes(300)
BOOTSTRAP = "erasure-test-bootstrap-token"


@dataclass
class Office:
    """Intake, verification and notify on one database, fed as their consumers would be."""

    settings: Settings
    store: EventStore
    citizen: Citizen
    notifying: Notifying
    verification: Verification
    desk: Desk
    app: Any
    position: int = 0
    tickets: dict[str, str] = field(default_factory=dict)

    async def pump(self, store: EventStore | None = None) -> None:
        """Hand every new event to the consumers that subscribe to it."""
        store = store or self.store
        while events := await store.read_all(after_position=self.position):
            for event in events:
                self.position = event.position
                await self.deliver(event, store)

    async def deliver(self, event: RecordedEvent, store: EventStore, suffix: str = "") -> None:
        kind = (event.category, event.event_type)
        handlers: list[tuple[str, Callable[[HandlerContext], Awaitable[None]]]] = []
        if event.category == "request":
            handlers.append(("intake-request-status", self.citizen.intake.project_status))
            handlers.append(("verification-read-models", self.verification.project))
        if kind in {("request", "RequestReceived"), ("request", "AttachmentAdded")}:
            handlers.append(("verification-checks", self.verification.on_request_event))
        if kind in (*REPLY_EVENTS, *INBOUND_EVENTS):
            handlers.append(("notify-replies", self.notifying.notify.handle))
        for consumer, handler in handlers:
            context = HandlerContext(
                consumer=consumer + suffix, store=store, event=event, deliveries=1
            )
            with suppress(DuplicateMessageError):  # a redelivery: the consumer acks it
                await handler(context)

    async def request(self, phone: str, text: str, photo: tuple[bytes, str]) -> str:
        await self.citizen.send(media=photo, phone=phone)
        await self.citizen.send(text, phone=phone)
        await self.pump()
        [ticket] = [
            e.data["ticket"]
            for e in await self.store.read_category("request")
            if e.event_type == "RequestReceived"
            and e.data["citizen"] == citizen_stream(phone, self.settings.key)
        ]
        self.tickets[phone] = ticket
        return str(ticket)


@pytest.fixture
async def office(event_store: EventStore, tmp_path: Path) -> AsyncIterator[Office]:
    settings = Settings(
        data_dir=tmp_path, bootstrap_token=SecretStr(BOOTSTRAP), papers_grace=timedelta(0)
    )
    verification, desk = build(settings, event_store)
    async with (
        citizen_of(event_store, tmp_path) as citizen,
        notifying(event_store, tmp_path) as notify,
    ):
        office = Office(
            settings,
            event_store,
            citizen,
            notify,
            verification,
            desk,
            create_app(settings, event_store, desk),
        )
        await office.request(PHONE, KTP, (JPEG, "image/jpeg"))
        await office.request(OTHER, KTP_OTHER, (PNG, "image/png"))
        await notify.drain()
        yield office


@pytest.fixture
async def fresh_store(database_url: str) -> AsyncIterator[EventStore]:
    """Another process's store: its key cache is cold (see the TTL test for a warm one)."""
    store = await EventStore.connect(database_url, sealer=Sealer.from_settings(Settings()))
    yield store
    await store.close()


@pytest.fixture
def erase_cli(
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> Callable[..., Awaitable[tuple[int, str, str]]]:
    monkeypatch.setenv("ADMINDUK_DATABASE_URL", database_url)
    monkeypatch.setenv("ADMINDUK_DATA_DIR", str(tmp_path))

    async def run(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = await asyncio.to_thread(main, ["citizens", "erase", *args])
        out, err = capsys.readouterr()
        return code, out, err

    return run


async def raw_data(store: EventStore) -> list[str]:
    rows = await store.pool.fetch("SELECT data::text FROM events ORDER BY position")
    return [str(row[0]) for row in rows]


# -- sealed at rest, clear to readers -------------------------------------------------------------


async def test_personal_data_is_sealed_at_rest_and_read_back_in_clear(office: Office) -> None:
    for text in await raw_data(office.store):
        for value in PERSONAL:
            assert value not in text
    row = await office.store.pool.fetchrow(
        "SELECT data FROM events WHERE event_type = 'RequestReceived' AND stream_id = $1",
        request_stream(office.tickets[PHONE]),
    )
    assert row is not None
    stored = row["data"]
    assert set(stored[SEALED]) == {"key", "box"}
    assert stored["doc_type"] == "KTP" and stored["kecamatan_code"] == "360301"
    assert stored["attachments"][0]["sha256"] == hashlib.sha256(JPEG).hexdigest()
    assert "applicant" not in stored and "phone" not in stored

    [received] = [
        e
        for e in await office.store.read_stream(request_stream(office.tickets[PHONE]))
        if e.event_type == "RequestReceived"
    ]
    assert not received.erased
    assert received.data["applicant"]["nik"] == NIK
    assert received.data["applicant"]["nama"] == NAME
    assert received.data["phone"] == PHONE
    # The message the citizen was sent went to the number read in clear.
    assert office.notifying.sent_to(PHONE)
    wrapped = await office.store.pool.fetch("SELECT wrapped_key FROM citizen_keys")
    assert len(wrapped) == 2 and all(len(bytes(r["wrapped_key"])) == 60 for r in wrapped)


# -- erasure --------------------------------------------------------------------------------------


async def test_erasure_shreds_one_citizen_everywhere_and_keeps_the_statistics(
    office: Office, fresh_store: EventStore, erase_cli: Any
) -> None:
    citizen = citizen_stream(PHONE, office.settings.key)
    ticket, other_ticket = office.tickets[PHONE], office.tickets[OTHER]
    # Issuance's work list, as issuance writes it when SIAK answers: a KTP-el's number is
    # the NIK.
    for issued, number in ((ticket, NIK), (other_ticket, "3603014101850002")):
        await issuance_db.add(
            office.store.pool,  # type: ignore[arg-type]
            ticket=issued,
            idempotency_key=f"key-{issued}",
            doc_type="KTP",
            channel="office",
            promised_on=date(2026, 12, 7),
            due_at=datetime.now(UTC),
        )
        await issuance_db.set_state(office.store.pool, issued, "issued", document_number=number)
    statistics_before = await statistics(office.store)
    raw_before = await raw_data(office.store)

    code, out, err = await erase_cli("--phone", "0812-3456-7890", "--yes", "--by", "Ani")
    assert code == 0, err
    assert citizen in out and ticket in out and "erased 1 data key" in out
    assert "deleted 1 file" in out
    assert f"warning: {ticket} is still DITERIMA" in out  # erased while in progress
    for value in PERSONAL:
        assert value not in out + err

    # The log itself is unchanged (append-only; the erasure's own record follows): only
    # the key is gone.
    assert (await raw_data(office.store))[: len(raw_before)] == raw_before
    assert await fresh_store.pool.fetchval(
        "SELECT wrapped_key IS NULL AND erased_at IS NOT NULL FROM citizen_keys WHERE citizen = $1",
        citizen,
    )

    # Every read path gives placeholders, marked erased; the other citizen is untouched.
    requests = {e.stream_id: e for e in await fresh_store.read_all(event_types=["RequestReceived"])}
    erased, kept = requests[request_stream(ticket)], requests[request_stream(other_ticket)]
    assert erased.erased and erased.data["applicant"] == {} and erased.data["phone"] == ""
    assert erased.data["ticket"] == ticket and erased.data["kecamatan_code"] == "360301"
    assert erased.data["attachments"][0]["filename"] is None
    assert not kept.erased and kept.data["applicant"]["nama"] == "BUDI SANTOSO"
    conversation = await fresh_store.read_stream(citizen)
    assert conversation and all(
        e.erased for e in conversation if e.event_type == "WhatsAppMessageReceived"
    )
    assert {e.data["text"] for e in conversation if e.event_type == "WhatsAppMessageReceived"} == {
        None
    }
    assert all(
        not e.erased
        for e in await fresh_store.read_stream(citizen_stream(OTHER, office.settings.key))
    )

    # Statistics survive: the same documents, kecamatan, dates and statuses.
    assert await statistics(fresh_store) == statistics_before
    assert (
        await fresh_store.pool.fetchval(
            "SELECT subject_key FROM request_status WHERE ticket = $1", ticket
        )
        is None
    )
    assert (
        await fresh_store.pool.fetchval(
            "SELECT subject_key FROM verification_requests WHERE ticket = $1", other_ticket
        )
        is not None
    )

    rows = await fresh_store.pool.fetch("SELECT ticket, document_number FROM issuance")
    numbers = {row["ticket"]: row["document_number"] for row in rows}
    assert numbers == {ticket: None, other_ticket: "3603014101850002"}

    # Files: the citizen's are deleted, the other's stay.
    assert not office.citizen.intake.media.exists(hashlib.sha256(JPEG).hexdigest())
    assert office.citizen.intake.media.exists(hashlib.sha256(PNG).hexdigest())

    # Read models holding messages or contacts in clear are scrubbed.
    outbox = await fresh_store.pool.fetch(
        "SELECT recipient, message::text AS message FROM notification_outbox"
    )
    mine = [r["message"] for r in outbox if r["recipient"] == citizen]
    assert mine and all(
        NAME not in m and PHONE not in m and "data telah dihapus" in m for m in mine
    )
    assert any(
        "BUDI SANTOSO" in r["message"] or OTHER in r["message"]
        for r in outbox
        if r["recipient"] != citizen
    )
    contacts = {
        r[0] for r in await fresh_store.pool.fetch("SELECT recipient FROM whatsapp_contact")
    }
    assert citizen not in contacts and citizen_stream(OTHER, office.settings.key) in contacts

    # The record of the erasure names no person.
    [record] = await fresh_store.read_stream(f"erasure-{citizen}")
    assert record.event_type == "CitizenErased"
    assert record.data["tickets"] == [ticket] and record.data["by"] == "Ani"
    assert not any(value in json.dumps(record.data) for value in PERSONAL)

    # Again: nothing left to erase, nothing recorded twice.
    code, out, _ = await erase_cli("--ticket", ticket.lower(), "--yes")
    assert code == 0 and "no live data key" in out and "deleted 0 file" in out
    assert len(await fresh_store.read_stream(f"erasure-{citizen}")) == 1


async def statistics(store: EventStore) -> list[tuple[Any, ...]]:
    rows = await store.pool.fetch(
        """
        SELECT s.ticket, s.doc_type, s.kecamatan_code, s.status, s.received_at,
               v.doc_type, v.kecamatan_code, v.state, v.received_at, v.attachments
        FROM request_status s JOIN verification_requests v USING (ticket) ORDER BY s.ticket
        """
    )
    return [tuple(row) for row in rows]


async def test_console_and_api_show_an_erased_request_with_its_marker(
    office: Office, fresh_store: EventStore, erase_cli: Any
) -> None:
    code, _, _ = await erase_cli("--phone", PHONE, "--yes")
    assert code == 0
    _, desk = build(office.settings, fresh_store)
    app = create_app(office.settings, fresh_store, desk)
    headers = {"Authorization": f"Bearer {BOOTSTRAP}"}
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://c"
    ) as http:
        erased = await http.get(f"/api/requests/{office.tickets[PHONE]}", headers=headers)
        assert erased.status_code == 200, erased.text
        body = erased.json()
        assert body["personal_data_erased"] is True and body["applicant"] == {}
        assert body["doc_type"] == "KTP" and body["kecamatan_code"] == "360301"
        assert [h["erased"] for h in body["history"] if h["type"] == "RequestReceived"] == [True]
        for value in PERSONAL:
            assert value not in erased.text
        kept = (await http.get(f"/api/requests/{office.tickets[OTHER]}", headers=headers)).json()
        assert kept["personal_data_erased"] is False and kept["applicant"]["nama"] == "BUDI SANTOSO"

        page = await signed_in_page(http, f"/console/requests/{office.tickets[PHONE]}")
        assert page.status_code == 200
        assert "data telah dihapus" in page.text
        assert NAME not in page.text and NIK not in page.text


async def signed_in_page(http: httpx.AsyncClient, url: str) -> httpx.Response:
    login = await http.get("/console/login")
    csrf = login.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
    answer = await http.post(
        "/console/login", data={"csrf": csrf, "token": BOOTSTRAP, "next": "/console"}
    )
    assert answer.status_code == 303, answer.text
    return await http.get(url)


async def test_replays_of_erased_events_neither_crash_nor_send_messages(
    office: Office, fresh_store: EventStore, erase_cli: Any, tmp_path: Path
) -> None:
    ticket = office.tickets[PHONE]
    citizen = citizen_stream(PHONE, office.settings.key)
    # An officer's rejection is recorded but not yet handled when the erasure happens.
    rejected = RequestRejected(
        ticket=ticket,
        officer_id="o1",
        reason=f"KK {NAME} tidak terbaca",
        phone=PHONE,
        doc_type="KTP",
    )
    await office.store.append(request_stream(ticket), [rejected.to_new_event()])
    sent_before = len(office.notifying.simulator.outbox)
    rows_before = await office.store.pool.fetchval("SELECT count(*) FROM notification_outbox")
    # (Read with the warm store: the fresh one must not have seen the key before the erasure.)
    conversation_before = len(await office.store.read_stream(citizen))

    code, _, _ = await erase_cli("--phone", PHONE, "--yes")
    assert code == 0
    # Its delivery after the erasure, then the whole log replayed to every service by fresh
    # consumers, with the read models rebuilt from scratch (a cold key cache throughout).
    await fresh_store.pool.execute("DELETE FROM request_status")
    await fresh_store.pool.execute("DELETE FROM verification_requests")
    verification, desk = build(office.settings, fresh_store)
    async with citizen_of(fresh_store, tmp_path) as replaying:
        replay = Office(
            office.settings,
            fresh_store,
            replaying,
            office.notifying,
            verification,
            desk,
            office.app,
        )
        for event in await fresh_store.read_all():
            await replay.deliver(event, fresh_store, suffix="-replay")
            if event.event_type == "WhatsAppMessageReceived":
                await replaying.intake.on_message(
                    HandlerContext(
                        consumer="intake-replay", store=fresh_store, event=event, deliveries=1
                    )
                )
    await office.notifying.drain()

    assert len(office.notifying.simulator.outbox) == sent_before
    assert (
        await fresh_store.pool.fetchval("SELECT count(*) FROM notification_outbox") == rows_before
    )
    assert len(await fresh_store.read_stream(citizen)) == conversation_before
    status = await fresh_store.pool.fetchrow(
        "SELECT doc_type, kecamatan_code, status FROM request_status WHERE ticket = $1", ticket
    )
    assert status is not None and tuple(status) == ("KTP", "360301", "DITOLAK")
    queue = await fresh_store.pool.fetch(
        "SELECT ticket, doc_type, kecamatan_code, subject_key FROM verification_requests"
    )
    assert {row["ticket"]: row["subject_key"] is None for row in queue} == {
        ticket: True,
        office.tickets[OTHER]: False,
    }


async def test_a_citizen_who_writes_again_after_erasure_gets_a_new_key(
    office: Office, fresh_store: EventStore, erase_cli: Any, tmp_path: Path
) -> None:
    code, _, _ = await erase_cli("--phone", PHONE, "--yes")
    assert code == 0
    async with citizen_of(fresh_store, tmp_path) as again:
        again.count = 100  # new message ids
        message = await again.send("#MENU", phone=PHONE)
    assert not message.erased and message.data["phone"] == PHONE
    [reread] = [
        e
        for e in await fresh_store.read_stream(message.stream_id)
        if e.event_id == message.event_id
    ]
    assert not reread.erased and reread.data["text"] == "#MENU"
    keys = await fresh_store.pool.fetch(
        "SELECT erased_at IS NULL AS live FROM citizen_keys WHERE citizen = $1 ORDER BY created_at",
        message.stream_id,
    )
    assert [row["live"] for row in keys] == [False, True]


async def test_bad_input_is_a_clear_cli_error(office: Office, erase_cli: Any) -> None:
    code, _, err = await erase_cli("--phone", "not-a-number", "--yes")
    assert code == 2 and "--phone must be a phone number" in err and "Traceback" not in err
    code, _, err = await erase_cli("--ticket", "KTP-NOSUCH1", "--yes")
    assert code == 1 and "no request or complaint KTP-NOSUCH1" in err
    code, _, err = await erase_cli("--ticket", "ktp?", "--yes")
    assert code == 2 and "--ticket must look like" in err
    # Without --yes and without a terminal to confirm on, nothing is erased.
    code, _, err = await erase_cli("--phone", PHONE)
    assert code == 2 and "pass --yes" in err
    assert (
        await office.store.pool.fetchval(
            "SELECT count(*) FROM citizen_keys WHERE erased_at IS NOT NULL"
        )
        == 0
    )


# -- keys ----------------------------------------------------------------------------------------


async def test_a_running_process_reads_an_erased_citizen_only_until_its_cache_expires(
    database_url: str,
) -> None:
    now = [0.0]
    settings = Settings()
    keyring = Keyring(settings.key, cache_ttl=timedelta(seconds=60), clock=lambda: now[0])
    sealer = Sealer(keyring, settings.key, registry.classes())
    store = await EventStore.connect(database_url, min_size=1, max_size=2, sealer=sealer)
    try:
        rejected = RequestRejected(
            ticket="KTP-TTL001", officer_id="o", reason="x", phone=PHONE, doc_type="KTP"
        )
        await store.append("request-KTP-TTL001", [rejected.to_new_event()])
        [before] = await store.read_stream("request-KTP-TTL001")
        assert before.data["phone"] == PHONE
        await store.pool.execute("UPDATE citizen_keys SET wrapped_key = NULL, erased_at = now()")
        now[0] = 59.0
        assert not (await store.read_stream("request-KTP-TTL001"))[0].erased
        now[0] = 61.0
        [after] = await store.read_stream("request-KTP-TTL001")
        assert after.erased and after.data["phone"] == ""
    finally:
        await store.close()


async def test_concurrent_first_messages_agree_on_one_live_key(database_url: str) -> None:
    settings = Settings()
    stores = [
        await EventStore.connect(
            database_url, min_size=1, max_size=2, sealer=Sealer.from_settings(settings)
        )
        for _ in range(4)
    ]
    try:
        rejected = [
            RequestRejected(
                ticket=f"KTP-C{i:05d}", officer_id="o", reason="x", phone=PHONE, doc_type="KTP"
            )
            for i in range(4)
        ]
        await asyncio.gather(
            *(
                store.append(f"request-KTP-C{i:05d}", [event.to_new_event()])
                for i, (store, event) in enumerate(zip(stores, rejected, strict=True))
            )
        )
        assert await stores[0].pool.fetchval("SELECT count(*) FROM citizen_keys") == 1
        for i, store in enumerate(stores):
            [read] = await store.read_stream(f"request-KTP-C{(i + 1) % 4:05d}")
            assert read.data["phone"] == PHONE
    finally:
        for store in stores:
            await store.close()


async def test_units_of_work_seal_on_their_own_connection_and_roll_back_new_keys(
    database_url: str,
) -> None:
    # Two connections only: a unit of work that waited for a second one to fetch a key
    # while holding its own would starve the pool.
    store = await EventStore.connect(
        database_url, min_size=1, max_size=2, sealer=Sealer.from_settings(Settings())
    )
    phones = [f"62812000000{i:02d}" for i in range(6)]

    async def reject(phone: str, *, fail: bool = False) -> None:
        ticket = f"KTP-U{phone[-6:]}"
        event = RequestRejected(
            ticket=ticket, officer_id="o", reason="x", phone=phone, doc_type="KTP"
        )
        async with store.unit_of_work() as uow:
            uow.append(request_stream(ticket), [event.to_new_event()])
            if fail:
                raise LookupError("the handler failed after staging its append")

    try:
        with pytest.raises(LookupError):
            await reject(phones[0], fail=True)
        assert await store.pool.fetchval("SELECT count(*) FROM citizen_keys") == 0
        await asyncio.wait_for(asyncio.gather(*(reject(phone) for phone in phones)), 60)
        assert await store.pool.fetchval("SELECT count(*) FROM citizen_keys") == len(phones)
        [read] = await store.read_stream(request_stream(f"KTP-U{phones[0][-6:]}"))
        assert read.data["phone"] == phones[0]
        assert "phone" not in await store.pool.fetchval(
            "SELECT data FROM events WHERE stream_id = $1", request_stream(f"KTP-U{phones[0][-6:]}")
        )
    finally:
        await store.close()


# -- the bus --------------------------------------------------------------------------------------


async def test_jetstream_carries_sealed_data_and_consumers_read_it_in_clear_until_erased(
    office: Office,
    nats_url: str,
    running_relay: Relay,
    fresh_store: EventStore,
    erase_cli: Any,
) -> None:
    total = await office.store.last_position()
    assert await wait_for_count(nats_url, total) == total
    for message in await all_messages(nats_url):
        for value in PERSONAL:
            assert value.encode() not in message.data

    admin = await nats.connect(nats_url)
    started: list[Consumers] = []
    seen: dict[str, asyncio.Queue[RecordedEvent]] = {}

    async def consume(name: str, store: EventStore) -> asyncio.Queue[RecordedEvent]:
        seen[name] = asyncio.Queue()

        async def handler(context: HandlerContext) -> None:
            await seen[name].put(context.event)

        consumers = Consumers(store, redrive_interval=0.1)
        consumers.register(
            ConsumerSpec(name=name, subjects=[js.subject_filter("request", "RequestReceived")]),
            handler,
        )
        await consumers.start(admin.jetstream())
        started.append(consumers)
        return seen[name]

    try:
        before = await consume("before-erasure", office.store)
        clear = [await asyncio.wait_for(before.get(), 20) for _ in range(2)]
        assert {e.data["applicant"]["nik"] for e in clear} == {NIK, "3603014101850002"}

        code, _, _ = await erase_cli("--phone", PHONE, "--yes")
        assert code == 0
        after = await consume("after-erasure", fresh_store)
        replayed = {
            e.data["ticket"]: e for e in [await asyncio.wait_for(after.get(), 20) for _ in range(2)]
        }
        assert replayed[office.tickets[PHONE]].erased
        assert replayed[office.tickets[PHONE]].data["applicant"] == {}
        assert not replayed[office.tickets[OTHER]].erased
    finally:
        for consumers in started:
            await consumers.stop()
        await admin.close()


async def test_a_tampered_sealed_event_is_dead_lettered_not_read_as_erased(
    event_store: EventStore, database_url: str, nats_url: str, running_relay: Relay
) -> None:
    plain = await EventStore.connect(database_url, min_size=1, max_size=2)  # writes as it is told
    try:
        [real] = (
            await event_store.append(
                "request-KTP-TAMPER1",
                [
                    RequestRejected(
                        ticket="KTP-TAMPER1",
                        officer_id="o",
                        reason="x",
                        phone=PHONE,
                        doc_type="KTP",
                    ).to_new_event()
                ],
            )
        ).events
        key_id = await event_store.pool.fetchval("SELECT key_id FROM citizen_keys")
        forged = NewEvent(
            event_type="RequestRejected",
            data={
                "ticket": "KTP-TAMPER2",
                "officer_id": "o",
                "doc_type": "KTP",
                SEALED: {"key": str(key_id), "box": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"},
            },
        )
        await plain.append("request-KTP-TAMPER2", [forged])
    finally:
        await plain.close()
    handled: list[str] = []

    async def handler(context: HandlerContext) -> None:
        handled.append(context.event.data["ticket"])

    admin = await nats.connect(nats_url)
    consumers = Consumers(event_store, redrive_interval=0.1)
    consumers.register(
        ConsumerSpec(name="tamper", subjects=[js.subject_filter("request", "RequestRejected")]),
        handler,
    )
    await consumers.start(admin.jetstream())

    async def settled() -> bool:
        parked = await event_store.pool.fetchval("SELECT count(*) FROM dead_letters")
        return bool(parked and handled)

    try:
        await eventually(settled)
        assert handled == [real.data["ticket"]]
        error = await event_store.pool.fetchval("SELECT error FROM dead_letters")
        assert "does not open" in error
    finally:
        await consumers.stop()
        await admin.close()
