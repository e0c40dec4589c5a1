"""Issuance against a real Postgres and the SIAK simulator over HTTP: scheduling, the SIAK
hand-off through outages and lost replies, renewed promises, ready days, cancellation,
collection, and the signed letter.

Handlers are called as their consumers would call them; the worker's rounds and the
sweeper are driven directly, with the issuance clock under the test's control where the
calendar matters.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr

from services.issuance.adapters.letters import LetterSigner, verify_letter
from services.issuance.adapters.siak import Breaker, BreakingSiak, HttpSiak
from services.issuance.handlers import IssuanceService, Office, SiakPolicy
from services.simulator.siak import SiakSimulator, siak_router
from services.verification.main import build as build_verification
from shared.bus.consumer import HandlerContext
from shared.calendar import OfficeHours, WorkingCalendar
from shared.config import Settings
from shared.contracts import (
    CancellationRefused,
    CancellationRequested,
    RequestReceived,
    RequestVerified,
    request_stream,
)
from shared.eventstore.envelope import RecordedEvent
from shared.eventstore.store import EventStore
from shared.mediastore import FileMediaStore

pytestmark = pytest.mark.integration

JAKARTA = ZoneInfo("Asia/Jakarta")
TOKEN = "siak-test-token"
PHONE = "6281234567890"
APPLICANT: dict[str, Any] = {
    "nik": "3603015708990001",
    "no_kk": "3603012001180003",
    "nama": "SITI AMINAH",
    "desa": "SENTUL",
    "kecamatan_code": "360301",
    "kecamatan_name": "Balaraja",
    "reason": "PEMULA",
}
MOVING: dict[str, Any] = {
    "nik": "3603281011850004",
    "no_kk": "3603282306100002",
    "nama": "BUDI SANTOSO",
    "alamat_pindah": "JL. MAWAR NO. 5 RT 002/RW 004, KEL. SUKASARI, KOTA TANGERANG",
}


def wib(year: int, month: int, day: int, hour: int, minute: int) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=JAKARTA)


@dataclass
class Clock:
    at: datetime

    def __call__(self) -> datetime:
        return self.at


class Issuing:
    """Issuance wired to a store and a SIAK simulator, with a clock the test moves."""

    def __init__(self, store: EventStore, data_dir: Path, clock: Clock) -> None:
        self.store = store
        self.sim = SiakSimulator(TOKEN, journal=data_dir / "siak.jsonl")
        app = FastAPI()
        app.include_router(siak_router(self.sim))
        self.http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app))
        self.breaker = Breaker(3, timedelta(milliseconds=200))
        self.calendar = WorkingCalendar(OfficeHours.parse())
        self.signer = LetterSigner.development(data_dir / "signing", "Disdukcapil Uji")
        self.media = FileMediaStore(data_dir / "media")
        self.clock = clock
        self.issuance = IssuanceService(
            store=store,
            siak=BreakingSiak(
                HttpSiak("http://siak/siak/v1", TOKEN, 5.0, client=self.http), self.breaker
            ),
            breaker=self.breaker,
            calendar=self.calendar,
            office=Office(region_code="3603", name="Disdukcapil Uji", pickup_place="Loket 3"),
            signer=self.signer,
            media=self.media,
            policy=SiakPolicy(
                concurrency=8,
                retry_base=timedelta(milliseconds=20),
                retry_max=timedelta(milliseconds=200),
                lease=timedelta(seconds=30),
            ),
            now=clock,
        )
        self.count = 0

    async def verified(
        self,
        *,
        doc_type: str = "KTP",
        applicant: dict[str, Any] | None = None,
        at: datetime | None = None,
    ) -> str:
        """A request that an officer has just approved (at ``at``), scheduled by issuance."""
        self.count += 1
        ticket = f"{doc_type}-T{self.count:04d}"
        received = RequestReceived(
            ticket=ticket,
            doc_type=doc_type,
            citizen="citizen-wa_test",
            phone=PHONE,
            kecamatan_code="360301",
            applicant=dict(applicant or APPLICANT),
            message_id=f"wamid.{ticket}",
            received_at=datetime.now(UTC),
        )
        approved = RequestVerified(
            ticket=ticket, officer_id="officer-ani", phone=PHONE, doc_type=doc_type
        )
        result = await self.store.append(
            request_stream(ticket),
            [
                received.to_new_event(),
                approved.to_new_event(occurred_at=at or self.clock()),
            ],
        )
        await self.issuance.on_verified(self.context("issuance-schedule", result.events[-1]))
        return ticket

    def context(self, consumer: str, event: RecordedEvent) -> HandlerContext:
        return HandlerContext(consumer=consumer, store=self.store, event=event, deliveries=1)

    async def types(self, ticket: str) -> list[str]:
        return [e.event_type for e in await self.store.read_stream(request_stream(ticket))]

    async def event(self, ticket: str, event_type: str) -> RecordedEvent:
        events = await self.store.read_stream(request_stream(ticket))
        (found,) = [e for e in events if e.event_type == event_type]
        return found

    async def drain(self, *, rounds: int = 400) -> None:
        """Worker rounds until nothing is queued (SIAK must be up for that)."""
        for _ in range(rounds):
            self.clock.at = datetime.now(UTC)
            await self.issuance.drain_once()
            queued = await self.store.pool.fetchval(
                "SELECT count(*) FROM issuance WHERE state = 'queued'"
            )
            if queued == 0:
                return
            await asyncio.sleep(0.02)
        raise AssertionError(f"{queued} requests still queued for SIAK")


@pytest.fixture
async def office(event_store: EventStore, data_dir: Path) -> AsyncIterator[Issuing]:
    office = Issuing(event_store, data_dir, Clock(datetime.now(UTC)))
    yield office
    await office.http.aclose()


# -- scheduling ------------------------------------------------------------------------------


async def test_a_kia_approved_on_the_friday_before_a_holiday_is_promised_14_working_days_later(
    office: Issuing,
) -> None:
    # Friday 28 May 2027, 10:00; Tuesday 1 June is Hari Lahir Pancasila.
    ticket = await office.verified(doc_type="KIA", at=wib(2027, 5, 28, 10, 0))
    scheduled = await office.event(ticket, "IssuanceScheduled")
    assert scheduled.data["promised_on"] == "2027-06-18"
    assert scheduled.data["working_days"] == 14
    assert scheduled.data["delivery"]["channel"] == "office"
    assert scheduled.data["delivery"]["place"] == "Loket 3"
    assert any("Akta kelahiran" in item for item in scheduled.data["delivery"]["bring"])
    row = await office.store.pool.fetchrow("SELECT * FROM issuance WHERE ticket = $1", ticket)
    assert row is not None
    assert (row["state"], row["promised_on"]) == ("queued", date(2027, 6, 18))


async def test_scheduling_twice_schedules_once(office: Issuing) -> None:
    ticket = await office.verified()
    verified = await office.event(ticket, "RequestVerified")
    await office.issuance.on_verified(office.context("issuance-schedule", verified))
    assert (await office.types(ticket)).count("IssuanceScheduled") == 1


# -- the SIAK hand-off -----------------------------------------------------------------------


async def test_approvals_during_a_siak_outage_are_all_issued_exactly_once_after_it(
    office: Issuing,
) -> None:
    office.sim.forced_down = True
    tickets = [await office.verified() for _ in range(200)]

    # SIAK is down: the worker tries, the breaker opens, nothing is issued or lost.
    for _ in range(5):
        office.clock.at = datetime.now(UTC)
        await office.issuance.drain_once()
    assert office.breaker.state in {"open", "half_open"}
    assert office.sim.documents == {}
    states = await office.store.pool.fetch("SELECT state, count(*) FROM issuance GROUP BY 1")
    assert {row["state"]: row["count"] for row in states} == {"queued": 200}
    handed_during_outage = 0
    for ticket in tickets:
        handed_during_outage += (await office.types(ticket)).count("HandedToSiak")
    assert handed_during_outage < 20, "the breaker must stop the hand-offs, not each row"

    # SIAK comes back, flaky: some calls fail, some do the work and lose the answer.
    office.sim.forced_down = False
    office.sim.error_rate = 0.1
    office.sim.lost_reply_rate = 0.2
    await office.drain()

    numbers = []
    for ticket in tickets:
        types = Counter(await office.types(ticket))
        assert types["HandedToSiak"] == 1
        assert types["DocumentIssued"] == 1
        numbers.append((await office.event(ticket, "DocumentIssued")).data["document_number"])
    assert len(set(numbers)) == 200, "no document number twice"
    assert len(office.sim.documents) == 200, "SIAK made one document per request"
    assert {d.ticket for d in office.sim.documents.values()} == set(tickets)
    assert office.sim.stats["lost_replies"] > 0, "the test must exercise lost replies"
    assert office.sim.stats["replayed"] > 0
    states = await office.store.pool.fetch("SELECT state, count(*) FROM issuance GROUP BY 1")
    assert {row["state"]: row["count"] for row in states} == {"issued": 200}


async def test_a_refusal_by_siak_is_recorded_once_and_not_retried(office: Issuing) -> None:
    ticket = await office.verified(applicant={**APPLICANT, "nik": "1"})
    office.sim.token = "rotated"  # every call now answers 401: a permanent refusal
    await office.issuance.drain_once()
    types = await office.types(ticket)
    assert types.count("IssuanceFailed") == 1
    assert "DocumentIssued" not in types
    state = await office.store.pool.fetchval("SELECT state FROM issuance WHERE ticket = $1", ticket)
    assert state == "failed"
    office.sim.token = TOKEN
    await office.issuance.drain_once()
    assert (await office.types(ticket)).count("IssuanceFailed") == 1


# -- promises and ready days -----------------------------------------------------------------


async def test_a_promise_siak_cannot_keep_is_renewed_once_per_date(office: Issuing) -> None:
    office.sim.forced_down = True
    # A KTP-el approved Monday 7 December 2026, 10:00: promised for Tuesday the 8th.
    office.clock.at = wib(2026, 12, 7, 10, 0)
    ticket = await office.verified()
    assert (await office.event(ticket, "IssuanceScheduled")).data["promised_on"] == "2026-12-08"

    office.clock.at = wib(2026, 12, 7, 15, 0)  # still reachable today
    assert await office.issuance.sweep() == 0
    office.clock.at = wib(2026, 12, 7, 16, 30)  # closed, not issued: Tuesday is lost
    assert await office.issuance.sweep() == 1
    assert await office.issuance.sweep() == 0, "the same delay is told once"
    delayed = await office.event(ticket, "IssuanceDelayed")
    assert delayed.data["previous_date"] == "2026-12-08"
    assert delayed.data["promised_on"] == "2026-12-09"
    assert delayed.data["reason"] == "siak_unavailable"


async def test_an_issued_document_is_announced_ready_on_its_day(office: Issuing) -> None:
    office.clock.at = wib(2026, 12, 7, 10, 0)
    ticket = await office.verified()
    await office.issuance.drain_once()
    issued = await office.event(ticket, "DocumentIssued")
    assert issued.data["ready_on"] >= "2026-12-08"
    ready_on = date.fromisoformat(issued.data["ready_on"])

    office.clock.at = datetime.combine(ready_on, datetime.min.time(), JAKARTA) - timedelta(days=2)
    assert await office.issuance.sweep() == 0
    office.clock.at = datetime.combine(ready_on, datetime.min.time(), JAKARTA).replace(hour=9)
    assert await office.issuance.sweep() == 1
    assert await office.issuance.sweep() == 0
    ready = await office.event(ticket, "DocumentReady")
    assert ready.data["document_number"] == issued.data["document_number"]


# -- cancellation races the hand-off ---------------------------------------------------------


async def test_cancellation_before_the_hand_off_wins_and_siak_never_hears_of_it(
    office: Issuing, database_url: str, data_dir: Path
) -> None:
    verification, _ = build_verification(
        Settings(database_url=SecretStr(database_url), data_dir=data_dir), office.store
    )
    office.sim.forced_down = True
    office.clock.at = datetime.now(UTC)
    ticket = await office.verified()
    asked = CancellationRequested(phone=PHONE, ticket=ticket, message_id="wamid.batal")
    result = await office.store.append("citizen-wa_test", [asked.to_new_event()])
    await verification.on_cancellation(
        office.context("verification-cancellations", result.events[0])
    )
    cancelled = await office.event(ticket, "RequestCancelled")
    await office.issuance.on_closed(office.context("issuance-closed", cancelled))

    office.sim.forced_down = False
    await office.issuance.drain_once()
    assert "HandedToSiak" not in await office.types(ticket)
    assert office.sim.documents == {}


async def test_cancellation_after_the_hand_off_is_refused_with_the_status(
    office: Issuing, database_url: str, data_dir: Path
) -> None:
    verification, _ = build_verification(
        Settings(database_url=SecretStr(database_url), data_dir=data_dir), office.store
    )
    ticket = await office.verified()
    await office.issuance.drain_once()
    asked = CancellationRequested(phone=PHONE, ticket=ticket, message_id="wamid.batal2")
    result = await office.store.append("citizen-wa_test", [asked.to_new_event()])
    await verification.on_cancellation(
        office.context("verification-cancellations", result.events[0])
    )
    assert "RequestCancelled" not in await office.types(ticket)
    (refused,) = [
        e
        for e in await office.store.read_stream("citizen-wa_test")
        if e.event_type == CancellationRefused.event_type
    ]
    assert refused.data["reason"] == "not_cancellable"
    assert refused.data["status"] == "DIPROSES"


# -- letters sent in the chat ----------------------------------------------------------------


async def test_a_moving_letter_is_issued_as_a_signed_pdf(office: Issuing) -> None:
    ticket = await office.verified(doc_type="SKPWNI", applicant=MOVING)
    scheduled = await office.event(ticket, "IssuanceScheduled")
    assert scheduled.data["delivery"] == {"channel": "whatsapp", "place": None, "bring": []}
    await office.issuance.drain_once()
    issued = await office.event(ticket, "DocumentIssued")
    letter = issued.data["letter"]
    assert letter["content_type"] == "application/pdf"
    pdf = office.media.get(letter["sha256"])
    assert pdf.startswith(b"%PDF")
    check = await verify_letter(pdf, office.signer.certificate_pem)
    assert check.valid and check.intact and check.covers_whole_document
    state = await office.store.pool.fetchval("SELECT state FROM issuance WHERE ticket = $1", ticket)
    assert state == "closed", "a letter sent in the chat leaves nothing to collect"
