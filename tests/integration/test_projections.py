"""``adminduk projections`` against a real Postgres and NATS: a rebuild from position 0
gives the very tables the live consumers built, swaps them in under the live names while
the consumers run, and a rebuild during appends ends equal to a projection from scratch.

The history is made the way the system makes it: requests appended as intake appends
them, then the services' own consumers (built by their ``main.py``) on the real bus
behind the relay, officers acting through verification's desk, issuance handing requests
to the SIAK simulator, citizens correcting, cancelling, complaining and answering the
survey.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import nats
import pytest
from fastapi import FastAPI

from adminduk.cli import main
from adminduk.ops.catalogue import PROJECTIONS
from adminduk.ops.rebuild import ShadowProjection, ident
from services.intake import main as intake_main
from services.issuance import main as issuance_main
from services.issuance.adapters.letters import LetterSigner
from services.issuance.adapters.siak import Breaker, BreakingSiak, HttpSiak
from services.issuance.handlers import IssuanceService, SiakPolicy
from services.issuance.handlers import Office as IssuingOffice
from services.simulator.siak import SiakSimulator, siak_router
from services.verification import main as verification_main
from services.verification.domain.officers import OfficerAccount, Role
from shared.bus import jetstream as js
from shared.bus.consumer import Consumers
from shared.bus.relay import Relay
from shared.calendar import OfficeHours, WorkingCalendar
from shared.config import Settings
from shared.contracts import (
    Attachment,
    CancellationRequested,
    ComplaintReceived,
    CorrectionSubmitted,
    RequestReceived,
    SurveyAnswered,
    citizen_stream,
    complaint_stream,
    request_stream,
)
from shared.eventstore.envelope import NewEvent
from shared.eventstore.store import EventStore
from shared.mediastore import FileMediaStore
from shared.whatsapp.client import CloudApiClient
from tests.builders import eventually

pytestmark = pytest.mark.integration

TABLES = ("request_status", "verification_requests", "complaints")
KEYS = {"request_status": "ticket", "verification_requests": "ticket", "complaints": "ticket"}
SIAK_TOKEN = "siak-test-token"


def phone(n: int) -> str:
    return f"62812{n:08d}"


def photo(n: int) -> Attachment:
    return Attachment(sha256=f"{n:064x}", content_type="image/jpeg", size=1000, message_id=f"p{n}")


class Office:
    """The services' consumers on the real bus, officers at the desk, SIAK simulated."""

    def __init__(self, store: EventStore, settings: Settings, nats_url: str) -> None:
        self.store, self.settings, self.nats_url = store, settings, nats_url
        self.verification, self.desk = verification_main.build(settings, store)
        self.cloud = CloudApiClient.from_settings(settings)  # never called by these consumers
        self.intake = intake_main.build(settings, store, self.cloud)
        siak_app = FastAPI()
        siak_app.include_router(
            siak_router(SiakSimulator(SIAK_TOKEN, journal=settings.data_dir / "siak.jsonl"))
        )
        self.siak_http = httpx.AsyncClient(transport=httpx.ASGITransport(app=siak_app))
        breaker = Breaker(3, settings.siak_breaker_cooldown)
        self.issuance = IssuanceService(
            store=store,
            siak=BreakingSiak(
                HttpSiak("http://siak/siak/v1", SIAK_TOKEN, 5.0, client=self.siak_http), breaker
            ),
            breaker=breaker,
            calendar=WorkingCalendar(OfficeHours.parse()),
            office=IssuingOffice(
                region_code="3603", name="Disdukcapil Uji", pickup_place="Loket 3"
            ),
            signer=LetterSigner.development(settings.data_dir / "signing", "Disdukcapil Uji"),
            media=FileMediaStore(settings.data_dir / "media"),
            policy=SiakPolicy(concurrency=4),
        )
        self.consumers = Consumers(store, redrive_interval=0.2)
        self.names: list[str] = []
        for spec, handler in [
            *intake_main.consumers_of(self.intake),
            *verification_main.consumers_of(self.verification),
            *issuance_main.consumers_of(self.issuance),
        ]:
            if spec.name != "intake-messages":  # requests are appended as intake appends them
                self.consumers.register(spec, handler)
                self.names.append(spec.name)
        self.count = 0
        self.officer: OfficerAccount | None = None

    async def start(self) -> None:
        # The consumers pull on this connection: it stays open until they stop.
        self.connection = await nats.connect(self.nats_url)
        await self.consumers.start(self.connection.jetstream())
        self.officer, _ = await self.desk.officers.add(
            "Kepala Seksi", Role.SUPERVISOR, [], created_by="test"
        )

    async def stop(self) -> None:
        await self.consumers.stop()
        await self.connection.close()
        await self.siak_http.aclose()
        await self.cloud.close()

    @property
    def me(self) -> OfficerAccount:
        assert self.officer is not None
        return self.officer

    # -- citizens ------------------------------------------------------------------------

    async def request(self, *, same_person_as: int | None = None, files: int = 1) -> str:
        """A KTP request as intake appends it."""
        self.count += 1
        n = self.count
        person = same_person_as or n
        ticket = f"KTP-P{n:07d}"
        received = RequestReceived(
            ticket=ticket,
            doc_type="KTP",
            citizen=citizen_stream(phone(person), self.settings.key),
            phone=phone(person),
            kecamatan_code="360301",
            applicant={
                "nik": f"360301570899{person:04d}",
                "no_kk": "3603012001180003",
                "nama": "SITI AMINAH",
                "desa": "SENTUL",
                "kecamatan_code": "360301",
                "kecamatan_name": "Balaraja",
                "reason": "PEMULA",
            },
            attachments=tuple(photo(n * 10 + i) for i in range(files)),
            message_id=f"wamid.R{n}",
            received_at=datetime.now(UTC),
        )
        await self.store.append(request_stream(ticket), [received.to_new_event()])
        return ticket

    async def person(self, ticket: str) -> str:
        return str((await self.store.read_stream(request_stream(ticket)))[0].data["phone"])

    async def correct(self, ticket: str) -> None:
        self.count += 1
        who = await self.person(ticket)
        submitted = CorrectionSubmitted(
            phone=who,
            ticket=ticket,
            message_id=f"wamid.C{self.count}",
            attachments=(photo(9000 + self.count),),
        )
        await self.store.append(citizen_stream(who, self.settings.key), [submitted.to_new_event()])

    async def cancel(self, ticket: str) -> None:
        self.count += 1
        who = await self.person(ticket)
        asked = CancellationRequested(phone=who, ticket=ticket, message_id=f"wamid.B{self.count}")
        await self.store.append(citizen_stream(who, self.settings.key), [asked.to_new_event()])

    async def complain(self, about: str) -> str:
        self.count += 1
        who = await self.person(about)
        ticket = f"ADUAN-P{self.count:07d}"
        complaint = ComplaintReceived(
            ticket=ticket,
            citizen=citizen_stream(who, self.settings.key),
            phone=who,
            text="Kapan KTP saya jadi?",
            related_ticket=about,
            message_id=f"wamid.A{self.count}",
            received_at=datetime.now(UTC),
        )
        await self.store.append(complaint_stream(ticket), [complaint.to_new_event()])
        return ticket

    async def survey(self, ticket: str) -> None:
        answer = SurveyAnswered(
            ticket=ticket, phone=await self.person(ticket), message_id=f"wamid.S{ticket}", score=4
        )
        await self.store.append(request_stream(ticket), [answer.to_new_event()])

    # -- waiting -------------------------------------------------------------------------

    async def types(self, ticket: str) -> list[str]:
        return [e.event_type for e in await self.store.read_stream(request_stream(ticket))]

    async def has(self, ticket: str, event_type: str, times: int = 1) -> None:
        async def there() -> bool:
            return (await self.types(ticket)).count(event_type) >= times

        await eventually(there, 30)

    async def projected(self, ticket: str) -> None:
        """Until the queue's read model has the request's last version."""

        async def there() -> bool:
            version = len(await self.store.read_stream(request_stream(ticket)))
            row = await self.store.pool.fetchval(
                "SELECT version FROM verification_requests WHERE ticket = $1", ticket
            )
            return bool(row == version)

        await eventually(there, 30)

    async def settled(self) -> None:
        """Until the relay published every event and each consumer acknowledged all."""
        client = await nats.connect(self.nats_url)
        try:
            jetstream = client.jetstream()

            async def idle() -> bool:
                stream = await jetstream.stream_info(js.STREAM_NAME)
                if stream.state.last_seq != await self.store.last_position():
                    return False
                for name in self.names:
                    info = await jetstream.consumer_info(js.STREAM_NAME, name)
                    if info.num_pending or info.num_ack_pending:
                        return False
                return True

            await eventually(idle, 30)
        finally:
            await client.close()

    # -- a day at the office -------------------------------------------------------------

    async def day(self, requests: int) -> list[str]:
        """Requests through every path: queued, decided, corrected, cancelled, issued,
        collected with the survey, complaints answered or open, duplicates, waiting."""
        tickets = [await self.request() for _ in range(requests)]
        duplicate = await self.request(same_person_as=self.count)
        waiting = await self.request(files=0)  # its papers may still come
        for ticket in [*tickets, duplicate]:
            await self.has(ticket, "RequestChecked")
        for index, ticket in enumerate(tickets):
            if "RequestCancelled" in await self.types(ticket):
                continue
            await self.projected(ticket)
            path = index % 6
            if path == 3:
                continue  # waits in the queue
            if path == 4:
                await self.cancel(ticket)
                await self.has(ticket, "RequestCancelled")
                continue
            await self.desk.claim(self.me, ticket)
            if path == 5:
                continue  # an officer has it
            if path == 1:
                await self.desk.reject(self.me, ticket, "Dokumen tidak sesuai")
                continue
            if path == 2:
                await self.desk.request_changes(self.me, ticket, ["Foto KK tidak terbaca"])
                await self.correct(ticket)
                await self.has(ticket, "RequestChecked", times=2)
                await self.projected(ticket)
                await self.desk.claim(self.me, ticket)
            await self.desk.approve(self.me, ticket)
            await self.has(ticket, "IssuanceScheduled")
        await self.issuance.drain_once()
        for index, ticket in enumerate(tickets):
            if "DocumentIssued" in await self.types(ticket) and index % 4 == 0:
                await self.projected(ticket)
                await self.desk.collected(self.me, ticket)
                await self.survey(ticket)
        answered = await self.complain(tickets[0])
        await self.complain(tickets[1])
        await self.desk.answer_complaint(self.me, answered, "KTP Anda sudah dapat diambil.")
        await self.settled()
        assert waiting
        return tickets


@pytest.fixture
async def office(
    event_store: EventStore,
    nats_url: str,
    running_relay: Relay,
    database_url: str,
    data_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[Office]:
    monkeypatch.setenv("ADMINDUK_DATABASE_URL", database_url)
    monkeypatch.setenv("ADMINDUK_DATA_DIR", str(data_dir))
    office = Office(event_store, Settings(data_dir=data_dir), nats_url)
    await office.start()
    yield office
    await office.stop()


# -- what a table is -------------------------------------------------------------------------


async def contents(store: EventStore, table: str, schema: str = "public") -> list[dict[str, Any]]:
    rows = await store.pool.fetch(
        f"SELECT * FROM {ident(schema)}.{ident(table)} ORDER BY {KEYS[table]}"
    )
    return [dict(row) for row in rows]


async def shape(store: EventStore, table: str) -> dict[str, Any]:
    """Everything about the live table but its rows and identity: columns, indexes,
    constraints, owner."""
    qualified = f"public.{table}"
    return {
        "columns": [
            tuple(row)
            for row in await store.pool.fetch(
                "SELECT column_name, data_type, is_nullable, column_default "
                "FROM information_schema.columns WHERE table_schema = 'public' "
                "AND table_name = $1 ORDER BY ordinal_position",
                table,
            )
        ],
        "indexes": [
            tuple(row)
            for row in await store.pool.fetch(
                "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' "
                "AND tablename = $1 ORDER BY indexname",
                table,
            )
        ],
        "constraints": [
            tuple(row)
            for row in await store.pool.fetch(
                "SELECT conname, contype, pg_get_constraintdef(oid) FROM pg_constraint "
                "WHERE conrelid = $1::regclass ORDER BY conname",
                qualified,
            )
        ],
        "owner": await store.pool.fetchval(
            "SELECT pg_get_userbyid(relowner) FROM pg_class WHERE oid = $1::regclass", qualified
        ),
    }


async def oid(store: EventStore, table: str) -> int:
    return int(await store.pool.fetchval("SELECT $1::regclass::oid", f"public.{table}"))


async def schemas(store: EventStore) -> list[str]:
    rows = await store.pool.fetch(
        "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'rebuild%' "
        "OR nspname LIKE 'retired%' OR nspname LIKE 'scratch%'"
    )
    return [row["nspname"] for row in rows]


async def adminduk(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = await asyncio.to_thread(main, list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# -- tests -----------------------------------------------------------------------------------


async def test_a_rebuild_gives_identical_tables_and_the_live_consumers_go_on(
    office: Office, capsys: pytest.CaptureFixture[str]
) -> None:
    await office.day(15)
    before = {table: await contents(office.store, table) for table in TABLES}
    shapes = {table: await shape(office.store, table) for table in TABLES}
    oids = {table: await oid(office.store, table) for table in TABLES}
    states = {row["state"] for row in before["verification_requests"]}
    assert {"received", "in_queue", "claimed", "rejected", "cancelled", "issued", "completed"} <= (
        states
    )
    assert {row["state"] for row in before["complaints"]} == {"open", "answered"}
    events = await office.store.last_position()

    code, out, err = await adminduk(
        capsys, "projections", "rebuild", "verification", "--batch", "40"
    )
    assert code == 0, err
    assert "caught up to position" in err  # progress
    assert f"verification_requests: {len(before['verification_requests'])} rows before" in out
    code, out, err = await adminduk(
        capsys, "projections", "rebuild", "request_status", "--keep-old"
    )
    assert code == 0, err
    kept = re.search(r"the replaced tables are kept in schema (retired_request_status_\d+)", out)
    assert kept is not None, out
    old_rows = await office.store.pool.fetch(
        f"SELECT * FROM {kept[1]}.request_status ORDER BY ticket"
    )
    assert [dict(row) for row in old_rows] == before["request_status"]
    await office.store.pool.execute(f"DROP SCHEMA {kept[1]} CASCADE")

    for table in TABLES:
        assert await contents(office.store, table) == before[table], table
        assert await shape(office.store, table) == shapes[table], table
        assert await oid(office.store, table) != oids[table], f"{table} was not swapped"
    assert await schemas(office.store) == []
    assert await office.store.last_position() == events  # a rebuild appends nothing

    # The live consumers write to the swapped-in tables.
    ticket = await office.request()
    await office.has(ticket, "RequestChecked")
    await office.projected(ticket)
    await office.desk.claim(office.me, ticket)
    await office.settled()
    status = await office.store.pool.fetchval(
        "SELECT status FROM request_status WHERE ticket = $1", ticket
    )
    assert status == "DITERIMA"
    state = await office.store.pool.fetchval(
        "SELECT state FROM verification_requests WHERE ticket = $1", ticket
    )
    assert state == "claimed"

    code, out, _ = await adminduk(capsys, "projections", "list")
    assert code == 0
    assert f"verification_requests ({len(before['verification_requests']) + 1} rows)" in out


async def test_a_rebuild_during_appends_ends_equal_to_a_projection_from_scratch(
    office: Office, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    await office.day(6)
    rebuilding = asyncio.Event()
    written_during: list[int] = []

    async def write_on() -> None:
        """New requests and decisions for as long as the rebuild runs."""
        while not rebuilding.is_set():
            ticket = await office.request()
            written_during.append(await office.store.last_position())
            await office.has(ticket, "RequestChecked")
            await office.projected(ticket)
            await office.desk.claim(office.me, ticket)
            if office.count % 2:
                await office.desk.approve(office.me, ticket)

    writer = asyncio.create_task(write_on())
    try:
        results = await asyncio.gather(
            adminduk(capsys, "projections", "rebuild", "verification", "--batch", "10"),
            adminduk(capsys, "projections", "rebuild", "request_status", "--batch", "10"),
        )
    finally:
        rebuilding.set()
        await writer
    assert [code for code, _, _ in results] == [0, 0], results
    assert written_during, "nothing was appended while the rebuilds ran"
    await office.settled()

    for projection in PROJECTIONS.values():
        scratch = f"scratch_{projection.name}"
        async with ShadowProjection(
            database_url, office.settings, projection, schema=scratch
        ) as shadow:
            await shadow.create()
            await shadow.catch_up()
            for table in projection.tables:
                live = await contents(office.store, table)
                assert live == await contents(office.store, table, scratch), table
                assert len(live) > 0
            await shadow.drop()
    assert await schemas(office.store) == []


async def test_what_the_live_consumer_projects_between_build_and_swap_is_kept(
    office: Office, database_url: str
) -> None:
    await office.day(3)
    async with AsyncExitStack() as stack:
        shadows = [
            await stack.enter_async_context(
                ShadowProjection(database_url, office.settings, projection)
            )
            for projection in PROJECTIONS.values()
        ]
        for shadow in shadows:
            stack.push_async_callback(shadow.drop)
            await shadow.create()
            await shadow.build()
        # After the build, before the swap: new requests, checked and projected by the
        # live consumers into the tables about to be replaced.
        late = [await office.request() for _ in range(3)]
        for ticket in late:
            await office.has(ticket, "RequestChecked")
            await office.projected(ticket)
        await office.settled()
        live = {table: await contents(office.store, table) for table in TABLES}
        for shadow in shadows:
            assert (await shadow.swap()).applied_under_lock > 0
    for table in TABLES:
        assert await contents(office.store, table) == live[table], table
    assert {row["ticket"] for row in live["request_status"]} >= set(late)


async def test_a_projection_replay_restores_what_it_lost_without_touching_receipts(
    office: Office, capsys: pytest.CaptureFixture[str]
) -> None:
    tickets = await office.day(5)
    before = await contents(office.store, "request_status")
    receipts = await office.store.pool.fetchval("SELECT count(*) FROM inbox")
    await office.store.pool.execute(
        "DELETE FROM request_status WHERE ticket = ANY($1::text[])", tickets[:3]
    )

    for _ in range(2):  # twice: a projection replay is idempotent
        code, out, err = await adminduk(
            capsys, "events", "replay", "--from-position", "1", "--to", "projection:request_status"
        )
        assert code == 0, err
        assert "0 failed" in out
        assert await contents(office.store, "request_status") == before
    assert await office.store.pool.fetchval("SELECT count(*) FROM inbox") == receipts


async def test_a_rebuild_that_fails_leaves_the_live_tables_as_they_were(
    event_store: EventStore,
    database_url: str,
    data_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("ADMINDUK_DATABASE_URL", database_url)
    monkeypatch.setenv("ADMINDUK_DATA_DIR", str(data_dir))
    await event_store.pool.execute(
        "INSERT INTO request_status (ticket, citizen, doc_type, status, received_at, updated_at,"
        " position) VALUES ('KTP-LIVE0001', 'citizen-wa_x', 'KTP', 'DITERIMA', now(), now(), 1)"
    )
    broken = await event_store.append(
        "request-KTP-BROKEN01",
        [NewEvent(event_type="RequestReceived", data={"ticket": "KTP-BROKEN01"})],
    )
    before = await contents(event_store, "request_status")
    table = await oid(event_store, "request_status")

    code, _, err = await adminduk(capsys, "projections", "rebuild", "request_status")
    assert code == 1
    position = broken.events[0].position
    assert f"RequestReceived at position {position} failed (ValidationError)" in err
    assert "the live tables are untouched" in err
    assert "Traceback" not in err
    assert await contents(event_store, "request_status") == before
    assert await oid(event_store, "request_status") == table
    assert await schemas(event_store) == []
