"""The office dashboard against a real Postgres: the console page, the JSON API and the
OpenTelemetry gauges, for supervisors and for an operator's kecamatan.

Two kinds of data. Where the figures depend on *when* things happened (latency percentiles
in working time over a weekend and a holiday), requests are folded from events with chosen
times and written by verification's own projection (``project_request``), exactly as the
read-model consumer writes them; the event store would stamp them with today's clock.
Everything else runs the real path: requests through the automatic checks, officers'
decisions through the API, issuance with the SIAK simulator over HTTP, and notify with the
WhatsApp simulator refusing messages.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from fastapi import FastAPI
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, NumberDataPoint
from pydantic import SecretStr

from adminduk.officer_app import create_app
from services.issuance.adapters.letters import LetterSigner
from services.issuance.adapters.siak import Breaker, BreakingSiak, HttpSiak
from services.issuance.figures import PostgresIssuanceFigures
from services.issuance.handlers import IssuanceService, SiakPolicy
from services.issuance.handlers import Office as IssuingOffice
from services.notify.figures import PostgresDeliveryFigures
from services.simulator.siak import SiakSimulator, siak_router
from services.verification.adapters import postgres as db
from services.verification.dashboard import Dashboard, DashboardMetrics, format_working
from services.verification.domain.request import Request
from services.verification.main import build
from shared.bus.consumer import HandlerContext
from shared.config import Settings
from shared.contracts import (
    Attachment,
    CheckResult,
    RequestChecked,
    RequestClaimed,
    RequestReceived,
    RequestRejected,
    RequestVerified,
    request_stream,
)
from shared.eventstore.envelope import Event, Metadata, RecordedEvent
from shared.eventstore.store import EventStore
from shared.figures import FailedMessages, SiakWait
from tests.support import decode_all

from .notifying import notifying

pytestmark = pytest.mark.integration

JAKARTA = ZoneInfo("Asia/Jakarta")
BOOTSTRAP = "dashboard-test-bootstrap-token"
SIAK_TOKEN = "dashboard-siak-token"
BALARAJA, CIKUPA = "360301", "360318"
PHONE = "6281234567890"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def wib(month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=JAKARTA)


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def applicant(kecamatan: str, serial: int) -> dict[str, Any]:
    return {
        "nik": f"360301570899{serial:04d}",  # a different person each time: no duplicates
        "no_kk": "3603012001180003",
        "nama": "SITI AMINAH",
        "desa": "SENTUL",
        "kecamatan_code": kecamatan,
        "kecamatan_name": "Balaraja" if kecamatan == BALARAJA else "Cikupa",
        "reason": "PEMULA",
    }


@dataclass
class Clock:
    at: datetime

    def __call__(self) -> datetime:
        return self.at


class Office:
    """Verification's console and API on a real store, the consumers' handlers driven as
    JetStream would drive them, and issuance with the SIAK simulator."""

    def __init__(self, store: EventStore, data_dir: Path) -> None:
        self.store = store
        self.data_dir = data_dir
        self.settings = Settings(
            data_dir=data_dir, bootstrap_token=SecretStr(BOOTSTRAP), papers_grace=timedelta(0)
        )
        self.verification, self.desk = build(self.settings, store)
        self.app = create_app(self.settings, store, self.desk)
        self.http = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app), base_url="http://console.test"
        )
        self.position = 0
        self.serial = 0
        self.clock = Clock(datetime.now(UTC))
        siak_app = FastAPI()
        siak_app.include_router(siak_router(SiakSimulator(SIAK_TOKEN, journal=data_dir / "siak")))
        self.siak_http = httpx.AsyncClient(transport=httpx.ASGITransport(app=siak_app))
        breaker = Breaker(3, timedelta(milliseconds=200))
        self.issuance = IssuanceService(
            store=store,
            siak=BreakingSiak(
                HttpSiak("http://siak/siak/v1", SIAK_TOKEN, 5.0, client=self.siak_http), breaker
            ),
            breaker=breaker,
            calendar=self.desk.calendar,
            office=IssuingOffice(
                region_code="3603", name="Disdukcapil Uji", pickup_place="Loket 1"
            ),
            signer=LetterSigner.development(data_dir / "signing", "Disdukcapil Uji"),
            media=self.desk.media,
            policy=SiakPolicy(
                concurrency=4,
                retry_base=timedelta(milliseconds=20),
                retry_max=timedelta(milliseconds=100),
            ),
            now=self.clock,
        )

    async def close(self) -> None:
        await self.http.aclose()
        await self.siak_http.aclose()

    # -- the real path ------------------------------------------------------------------

    async def receive(self, kecamatan: str) -> str:
        """A KTP request as intake records it, through the automatic checks into the queue."""
        self.serial += 1
        ticket = f"KTP-D{self.serial:04d}{uuid.uuid4().hex[:4].upper()}"
        photo = Attachment(
            sha256=f"{self.serial:064x}",
            content_type="image/jpeg",
            size=1000,
            filename="kk.jpg",
            message_id=f"wamid.F{ticket}",
        )
        received = RequestReceived(
            ticket=ticket,
            doc_type="KTP",
            citizen="citizen-wa_dashboard",
            phone=PHONE,
            kecamatan_code=kecamatan,
            applicant=applicant(kecamatan, self.serial),
            attachments=(photo,),
            message_id=f"wamid.R{ticket}",
            received_at=datetime.now(UTC),
        )
        await self.store.append(request_stream(ticket), [received.to_new_event()])
        await self.pump()
        return ticket

    async def pump(self) -> None:
        """Every new event to verification's checks and read models, until quiet."""
        while events := await self.store.read_all(after_position=self.position):
            for event in events:
                self.position = event.position
                if event.category != "request":
                    continue
                if event.event_type in {"RequestReceived", "AttachmentAdded", "RequestAmended"}:
                    await self.verification.on_request_event(self.context("checks", event))
                await self.verification.project(self.context("verification-read-models", event))

    def context(self, consumer: str, event: RecordedEvent) -> HandlerContext:
        return HandlerContext(consumer=consumer, store=self.store, event=event, deliveries=1)

    async def event(self, ticket: str, event_type: str) -> RecordedEvent:
        events = await self.store.read_stream(request_stream(ticket))
        return next(e for e in events if e.event_type == event_type)

    async def schedule(self, ticket: str) -> None:
        """Issuance's consumer of RequestVerified."""
        verified = await self.event(ticket, "RequestVerified")
        await self.issuance.on_verified(self.context("issuance-schedule", verified))
        await self.pump()

    async def drain_siak(self) -> None:
        for _ in range(200):
            await self.issuance.drain_once()
            queued = await self.store.pool.fetchval(
                "SELECT count(*) FROM issuance WHERE state = 'queued'"
            )
            if queued == 0:
                await self.pump()
                return
            await asyncio.sleep(0.02)
        raise AssertionError("SIAK never issued the queued requests")

    async def officer(self, role: str, kecamatan: Sequence[str] = ()) -> str:
        answer = await self.http.post(
            "/api/officers",
            json={"name": f"Petugas {role}", "role": role, "kecamatan": list(kecamatan)},
            headers=auth(BOOTSTRAP),
        )
        assert answer.status_code == 201, answer.text
        return str(answer.json()["token"])

    async def dashboard(self, token: str) -> dict[str, Any]:
        answer = await self.http.get("/api/dashboard", headers=auth(token))
        assert answer.status_code == 200, answer.text
        return dict(answer.json())

    async def page(self, token: str) -> str:
        """The dashboard page, signed in with ``token`` as a browser would."""
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app), base_url="http://console.test"
        ) as browser:
            login = await browser.get("/console/login")
            match = CSRF.search(login.text)
            assert match
            signed = await browser.post(
                "/console/login", data={"csrf": match.group(1), "token": token, "next": "/"}
            )
            assert signed.status_code == 303, signed.text
            page = await browser.get("/console/dashboard")
            assert page.status_code == 200, page.text
            return page.text

    def freeze(self, at: datetime) -> None:
        """The verification service's clock, which the dashboard reads."""
        self.verification.now = lambda: at

    # -- requests at chosen times, written by the projection itself -----------------------

    async def seeded(
        self,
        ticket: str,
        *,
        doc_type: str,
        kecamatan: str,
        received: datetime,
        first_action: datetime | None = None,
        decided: datetime | None = None,
        rejected: bool = False,
    ) -> None:
        """A request whose events happened at the given times: folded from those events
        and written by verification's projection, as its read-model consumer does."""
        stream = request_stream(ticket)
        events: list[tuple[Event, datetime, str]] = [
            (
                RequestReceived(
                    ticket=ticket,
                    doc_type=doc_type,
                    citizen="citizen-wa_seeded",
                    phone=PHONE,
                    kecamatan_code=kecamatan,
                    applicant=applicant(kecamatan, 0),
                    message_id=f"wamid.{ticket}",
                    received_at=received,
                ),
                received,
                "system:intake",
            ),
            (
                RequestChecked(
                    ticket=ticket,
                    round=1,
                    results=(CheckResult(check="papers", passed=True),),
                    outcome="passed",
                ),
                received + timedelta(seconds=1),
                "system:verification",
            ),
        ]
        officer = "officer:ani"
        if first_action is not None:
            claimed = RequestClaimed(ticket=ticket, officer_id="ani", officer_name="Ani", by="ani")
            events.append((claimed, first_action, officer))
        if decided is not None:
            decision: Event = (
                RequestRejected(
                    ticket=ticket,
                    officer_id="ani",
                    reason="Foto buram",
                    phone=PHONE,
                    doc_type=doc_type,
                )
                if rejected
                else RequestVerified(
                    ticket=ticket, officer_id="ani", phone=PHONE, doc_type=doc_type
                )
            )
            events.append((decision, decided, officer))
        recorded = [
            _recorded(stream, version, event, at, actor)
            for version, (event, at, actor) in enumerate(events, start=1)
        ]
        request = Request.fold(decode_all(recorded))
        async with self.store.pool.acquire() as connection:
            await db.project_request(connection, request, len(recorded), None)


def _recorded(stream: str, version: int, event: Event, at: datetime, actor: str) -> RecordedEvent:
    new = event.to_new_event(metadata=Metadata(actor=actor), occurred_at=at)
    return RecordedEvent(
        event_id=new.event_id,
        event_type=new.event_type,
        stream_id=stream,
        stream_version=version,
        position=version,
        schema_version=new.schema_version,
        data=new.data,
        metadata=new.metadata,
        occurred_at=at,
        recorded_at=at,
    )


def dashboard_of(office: Office) -> Dashboard:
    """The dashboard as the composition root makes it: issuance and notify answer."""
    pool = office.store.pool
    return Dashboard.for_desk(
        office.desk,
        issuance=PostgresIssuanceFigures(pool),
        delivery=PostgresDeliveryFigures(pool),
    )


@pytest.fixture
async def office(event_store: EventStore, data_dir: Path) -> AsyncIterator[Office]:
    office = Office(event_store, data_dir)
    yield office
    await office.close()


def shown(html: str, name: str) -> str:
    """The text of the element with ``data-testid=name`` (tags inside it removed)."""
    match = re.search(
        rf'data-testid="{re.escape(name)}"[^>]*>(.*?)</(?:td|span|strong|p)>', html, re.S
    )
    assert match, f"no {name} on the page"
    return " ".join(re.sub(r"<[^>]+>", " ", match.group(1)).split())


def gauges(reader: InMemoryMetricReader) -> dict[str, dict[tuple[tuple[str, Any], ...], float]]:
    """Every gauge's points by their attributes."""
    data = reader.get_metrics_data()
    found: dict[str, dict[tuple[tuple[str, Any], ...], float]] = {}
    if data is None:  # nothing observed at all
        return found
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                points = found.setdefault(metric.name, {})
                for point in metric.data.data_points:
                    assert isinstance(point, NumberDataPoint)
                    points[tuple(sorted((point.attributes or {}).items()))] = point.value
    return found


# -- percentiles in working time, for seeded times ----------------------------------------------

NOW = wib(2, 20, 10)  # Friday 20 Feb 2026, 10:00 WIB
# (ticket, doc, kecamatan, received, minutes to the first action, minutes to the decision,
# rejected). Same-day answers on Monday 9 to Thursday 12 Feb; one received on Friday 13 Feb at
# 15:00 and answered after the weekend, the Imlek joint leave day (Mon 16) and Imlek (Tue 17).
LATENCY_CASES: list[tuple[str, str, str, datetime, int, int | None, bool]] = [
    ("KTP-L01", "KTP", BALARAJA, wib(2, 9, 9), 5, 20, False),
    ("KTP-L02", "KTP", BALARAJA, wib(2, 9, 9, 30), 10, 40, True),
    ("KTP-L03", "KTP", BALARAJA, wib(2, 9, 10), 15, 60, False),
    ("KTP-L04", "KTP", BALARAJA, wib(2, 10, 9), 20, 75, False),
    ("KTP-L05", "KTP", BALARAJA, wib(2, 10, 9, 30), 30, 90, False),
    ("KK-L06", "KK", BALARAJA, wib(2, 11, 9), 45, 150, True),
    ("KK-L07", "KK", BALARAJA, wib(2, 11, 9, 30), 60, 200, False),
    ("KK-L08", "KK", CIKUPA, wib(2, 12, 9), 90, None, False),
    ("KIA-L10", "KIA", CIKUPA, wib(2, 12, 9, 30), 135, None, False),
]


async def seed_latencies(office: Office) -> None:
    for ticket, doc, kecamatan, received, first, decided, rejected in LATENCY_CASES:
        await office.seeded(
            ticket,
            doc_type=doc,
            kecamatan=kecamatan,
            received=received,
            first_action=received + timedelta(minutes=first),
            decided=None if decided is None else received + timedelta(minutes=decided),
            rejected=rejected,
        )
    # Friday 15:00 -> Wednesday 09:00 is 2 working hours; -> Thursday 09:00 is 10.
    await office.seeded(
        "KIA-L09",
        doc_type="KIA",
        kecamatan=CIKUPA,
        received=wib(2, 13, 15),
        first_action=wib(2, 18, 9),
        decided=wib(2, 19, 9),
    )
    # Outside the 30-day window: its ten-day wait must not count.
    await office.seeded(
        "KTP-L00",
        doc_type="KTP",
        kecamatan=BALARAJA,
        received=wib(1, 5, 9),
        first_action=wib(1, 19, 9),
        decided=wib(1, 19, 10),
    )
    # Waiting for an officer now: since Thursday 15:00 (3 working hours) and today 08:30.
    await office.seeded("KTP-W01", doc_type="KTP", kecamatan=BALARAJA, received=wib(2, 19, 15))
    await office.seeded("KTP-W02", doc_type="KTP", kecamatan=CIKUPA, received=wib(2, 20, 8, 30))


async def test_the_supervisor_page_shows_admin_response_percentiles_in_working_time(
    office: Office,
) -> None:
    await seed_latencies(office)
    office.freeze(NOW)
    token = await office.officer("supervisor")

    html = await office.page(token)

    # First actions (minutes): 5 10 15 20 30 45 60 90 120 135 -> ranks 5, 9, 10.
    assert shown(html, "latency-first_action-count") == "10"
    assert shown(html, "latency-first_action-p50") == "30 menit kerja"
    assert shown(html, "latency-first_action-p90") == "2 jam kerja"
    assert shown(html, "latency-first_action-p99") == "2 jam 15 menit kerja"
    # Decisions (minutes): 20 40 60 75 90 150 200 600 -> ranks 4, 8, 8.
    assert shown(html, "latency-decision-count") == "8"
    assert shown(html, "latency-decision-p50") == "1 jam 15 menit kerja"
    assert shown(html, "latency-decision-p90") == "1 hari 2 jam kerja"
    assert shown(html, "latency-decision-p99") == "1 hari 2 jam kerja"
    assert 'data-testid="chart-latency"' in html
    assert 'data-testid="latency-KIA-decision"' in html

    # Requests per day: 12 in the window (not the one of 5 January), 1 today.
    assert shown(html, "requests-total") == "12"
    assert shown(html, "requests-today") == "1"
    assert '<svg xmlns="http://www.w3.org/2000/svg" class="chart" id="chart-per-day"' in html
    assert "Jumat, 20 Februari 2026: 1 permohonan" in html
    assert "Senin, 9 Februari 2026: 3 permohonan" in html

    # Open requests: verified 7 (nobody scheduled them here), claimed 2, waiting 2.
    assert shown(html, "backlog-open") == "11"
    assert shown(html, "backlog-waiting") == "2"
    assert re.search(
        r'data-state="verified"><td>Disetujui</td><td data-testid="backlog-count">7<', html
    )
    assert shown(html, "backlog-oldest") == (
        "Menunggu petugas paling lama: KTP-W01 , 3 jam kerja sejak masuk"
    )

    # Nothing issued, failed or with SIAK here: no share to give, and nothing waiting.
    assert "Belum ada data" in shown(html, "promises-empty")
    assert "Tidak ada" in shown(html, "siak-empty")
    assert "Tidak ada" in shown(html, "notifications-empty")

    figures = await office.dashboard(token)
    first = figures["admin_response"]["first_action"]
    assert (first["p50_working_seconds"], first["p90_working_seconds"]) == (1800, 7200)
    assert figures["admin_response"]["percentile_method"] == "nearest-rank"
    by_doc = {d["doc_type"]: d for d in figures["admin_response"]["by_document"]}
    assert by_doc["KIA"]["decision"]["p50_working_seconds"] == 10 * 3600
    assert by_doc["KIA"]["first_action"]["count"] == 2


async def test_an_operator_sees_only_their_kecamatan(office: Office) -> None:
    await seed_latencies(office)
    office.freeze(NOW)
    token = await office.officer("operator", [BALARAJA])

    html = await office.page(token)

    # Balaraja only: first actions 5 10 15 20 30 45 60; decisions 20 40 60 75 90 150 200.
    assert shown(html, "latency-first_action-count") == "7"
    assert shown(html, "latency-first_action-p50") == "20 menit kerja"
    assert shown(html, "latency-first_action-p90") == "1 jam kerja"
    assert shown(html, "latency-decision-p50") == "1 jam 15 menit kerja"
    assert shown(html, "latency-decision-p99") == "3 jam 20 menit kerja"
    assert shown(html, "requests-total") == "8"
    assert shown(html, "backlog-waiting") == "1"
    assert "Kecamatan Anda: Balaraja" in html
    assert "Cikupa" not in html and "KIA" not in html
    assert 'data-testid="nav-dashboard"' in html

    figures = await office.dashboard(token)
    assert figures["scope"] == {"office_wide": False, "kecamatan": [BALARAJA]}
    assert [s["key"] for s in figures["requests_per_day"]["by_kecamatan"]] == [BALARAJA]
    assert figures["backlog"]["oldest_waiting"]["ticket"] == "KTP-W01"


# -- the real path ----------------------------------------------------------------------------


async def test_figures_of_the_real_services_agree_on_the_page_the_api_and_the_metrics(
    office: Office,
) -> None:
    supervisor = await office.officer("supervisor")
    kept, late, waiting, rejected = [await office.receive(BALARAJA) for _ in range(4)]
    in_queue = await office.receive(CIKUPA)
    for ticket in (kept, late, waiting):
        answer = await office.http.post(f"/api/requests/{ticket}/approve", headers=auth(supervisor))
        assert answer.status_code == 200, answer.text
    answer = await office.http.post(
        f"/api/requests/{rejected}/reject",
        json={"reason": "Foto KK buram"},
        headers=auth(supervisor),
    )
    assert answer.status_code == 200, answer.text

    # Issued at once: ready on the promised day.
    office.clock.at = (await office.event(kept, "RequestVerified")).occurred_at
    await office.schedule(kept)
    await office.drain_siak()
    # SIAK answers 40 days late: the sweeper gives a new date, then it is issued.
    await office.schedule(late)
    office.clock.at += timedelta(days=40)
    assert await office.issuance.sweep() >= 1
    await office.drain_siak()
    # Scheduled, and SIAK has not been called yet.
    await office.schedule(waiting)
    await office.pump()

    # Two messages refused for good by WhatsApp, in two kecamatan.
    async with notifying(office.store, office.data_dir / "notify") as whatsapp:
        whatsapp.clock.now = datetime.now(UTC)
        for event, code in (
            (await office.event(rejected, "RequestRejected"), 131026),
            (await office.event(in_queue, "RequestReceived"), 368),
        ):
            whatsapp.simulator.add_failure(1, 400, code, None)
            await whatsapp.deliver(event)
            await whatsapp.drain()

    office.freeze(datetime.now(UTC))
    figures = await office.dashboard(supervisor)

    assert sum(figures["requests_per_day"]["total"]) == 5
    assert [(s["key"], s["total"]) for s in figures["requests_per_day"]["by_kecamatan"]] == [
        (BALARAJA, 4),
        (CIKUPA, 1),
    ]
    assert {s["state"]: s["count"] for s in figures["backlog"]["by_state"]} == {
        "in_queue": 1,
        "scheduled": 1,
        "issued": 1,
        "ready": 1,
    }
    assert figures["backlog"]["oldest_waiting"]["ticket"] == in_queue
    assert figures["promises"] == {
        "window_days": 30,
        "issued": 2,
        "kept": 1,
        "renewed": 1,
        "kept_ratio": 0.5,
    }
    assert figures["siak_backlog"]["waiting"] == 1
    assert figures["siak_backlog"]["oldest"]["ticket"] == waiting
    assert figures["siak_backlog"]["past_promise"] == 0
    assert {r["reason"]: r["count"] for r in figures["notification_failures"]["by_reason"]} == {
        "nomor tidak dapat menerima pesan WhatsApp": 1,
        "nomor kantor diblokir sementara karena kebijakan WhatsApp": 1,
    }
    # Each officer decision is one sample; the values are the rows' own working times.
    rows = await office.store.pool.fetch(
        "SELECT received_at, first_action_at, decided_at FROM verification_requests"
    )
    calendar = office.desk.calendar
    expected = sorted(
        calendar.working_time_between(r["received_at"], r["decided_at"]).total_seconds()
        for r in rows
        if r["decided_at"] is not None
    )
    decision = figures["admin_response"]["decision"]
    assert decision["count"] == len(expected) == 4
    assert decision["p50_working_seconds"] == expected[1]
    assert decision["p99_working_seconds"] == expected[-1]
    assert figures["admin_response"]["first_action"]["count"] == 4

    html = await office.page(supervisor)
    assert shown(html, "promises-ratio") == "50%"
    assert shown(html, "promises-kept") == "1"
    assert shown(html, "promises-issued") == "2"
    assert shown(html, "promises-renewed") == "1"
    assert shown(html, "siak-waiting") == "1"
    assert shown(html, "notifications-total") == "2"
    assert "nomor tidak dapat menerima pesan WhatsApp" in html
    assert shown(html, "backlog-waiting") == "1"
    assert shown(html, "latency-decision-p50") == format_working(expected[1])

    # The gauges come from the same figures.
    reader = InMemoryMetricReader()
    metrics = DashboardMetrics(
        dashboard_of(office), MeterProvider(metric_readers=[reader]).get_meter("test")
    )
    assert gauges(reader).get("adminduk.siak.backlog", {}) == {}, "nothing before a snapshot"
    await metrics.refresh()
    seen = gauges(reader)
    assert seen["adminduk.requests.backlog"] == {
        (("state", s["state"]),): s["count"] for s in figures["backlog"]["by_state"]
    }
    assert seen["adminduk.siak.backlog"] == {(): 1}
    assert seen["adminduk.promises.kept_ratio"] == {(): 0.5}
    assert seen["adminduk.notifications.failed"] == {
        (("reason", r["reason"]),): r["count"]
        for r in figures["notification_failures"]["by_reason"]
    }
    for q in (50, 90, 99):
        assert seen[f"adminduk.admin.response_time.p{q}"] == {
            (("step", step),): figures["admin_response"][step][f"p{q}_working_seconds"]
            for step in ("first_action", "decision")
        }
    assert seen["adminduk.requests.oldest_waiting"] == {
        (): figures["backlog"]["oldest_waiting"]["waited_working_seconds"]
    }
    assert seen["adminduk.requests.received_today_by_kecamatan"] == {
        (("kecamatan", s["key"]),): s["counts"][-1]
        for s in figures["requests_per_day"]["by_kecamatan"]
    }

    # An operator of Balaraja: not Cikupa's queue nor its failed message.
    operator = await office.officer("operator", [BALARAJA])
    own = await office.dashboard(operator)
    assert own["backlog"]["waiting"] == 0
    assert own["backlog"]["oldest_waiting"] is None
    assert [r["reason"] for r in own["notification_failures"]["by_reason"]] == [
        "nomor tidak dapat menerima pesan WhatsApp"
    ]
    assert own["siak_backlog"]["waiting"] == 1
    assert own["promises"]["issued"] == 2


# -- no data, no access -------------------------------------------------------------------------


async def test_an_empty_office_says_belum_ada_data_not_zero(office: Office) -> None:
    token = await office.officer("admin")
    html = await office.page(token)

    for step in ("first_action", "decision"):
        for q in (50, 90, 99):
            assert shown(html, f"latency-{step}-p{q}") == "belum ada data"
    # No share or trend without data; an empty queue is a fact, said as one.
    for section in ("requests", "promises"):
        assert "Belum ada data" in shown(html, f"{section}-empty")
    for section in ("backlog", "siak", "notifications"):
        assert "Tidak ada" in shown(html, f"{section}-empty")
    assert "<svg" not in html

    figures = await office.dashboard(token)
    assert figures["admin_response"]["first_action"] is None
    assert figures["admin_response"]["decision"] is None
    assert figures["promises"]["kept_ratio"] is None
    assert figures["backlog"]["oldest_waiting"] is None

    reader = InMemoryMetricReader()
    metrics = DashboardMetrics(
        dashboard_of(office), MeterProvider(metric_readers=[reader]).get_meter("test")
    )
    await metrics.refresh()
    seen = gauges(reader)
    assert seen["adminduk.siak.backlog"] == {(): 0}
    assert seen.get("adminduk.promises.kept_ratio", {}) == {}  # no ratio, not a 0
    assert seen.get("adminduk.admin.response_time.p50", {}) == {}


async def test_the_dashboard_needs_a_token_or_a_session(office: Office) -> None:
    assert (await office.http.get("/api/dashboard")).status_code == 401
    refused = await office.http.get("/api/dashboard", headers=auth("adk_not-a-token"))
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"] == "Bearer"
    page = await office.http.get("/console/dashboard")
    assert page.status_code == 303
    assert page.headers["location"].startswith("/console/login")


async def test_the_dashboard_is_described_in_openapi(office: Office) -> None:
    schema = (await office.http.get("/openapi.json")).json()
    operation = schema["paths"]["/api/dashboard"]["get"]
    assert "nearest-rank" in operation["description"]
    assert operation["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/DashboardPublic"
    }
    assert "admin_response" in schema["components"]["schemas"]["DashboardPublic"]["properties"]


# -- the owners' answers ---------------------------------------------------------------------


async def test_issuance_answers_the_requests_waiting_for_siak_oldest_first(
    event_store: EventStore,
) -> None:
    scheduled = datetime(2026, 2, 19, 8, tzinfo=UTC)
    await event_store.pool.executemany(
        """
        INSERT INTO issuance (ticket, idempotency_key, doc_type, channel, promised_on, state,
                              attempts, created_at)
        VALUES ($1, 'issue-' || $1, 'KTP', 'office', $2, $3, $4, $5)
        """,
        [
            ("KTP-B", date(2026, 2, 20), "queued", 2, scheduled),
            ("KTP-A", date(2026, 2, 23), "queued", 0, scheduled),  # same time: by ticket
            ("KTP-0", date(2026, 2, 19), "queued", 0, scheduled + timedelta(hours=1)),
            ("KTP-I", date(2026, 2, 18), "issued", 1, scheduled - timedelta(days=1)),
        ],
    )

    waits = await PostgresIssuanceFigures(event_store.pool).waiting_for_siak()

    assert waits == [
        SiakWait("KTP-A", date(2026, 2, 23), 0, scheduled),
        SiakWait("KTP-B", date(2026, 2, 20), 2, scheduled),
        SiakWait("KTP-0", date(2026, 2, 19), 0, scheduled + timedelta(hours=1)),
    ]
    assert await PostgresIssuanceFigures(event_store.pool).issued(scheduled, scheduled) == []


async def test_notify_answers_failed_messages_by_reason_and_which_messages_concern_a_ticket(
    event_store: EventStore,
) -> None:
    since = datetime(2026, 2, 13, 17, tzinfo=UTC)
    rows = [
        ("n-1", "KTP-1", "failed", None, "nomor tidak valid", since),
        ("n-2", "KTP-1", "failed", None, "nomor tidak valid", since + timedelta(days=1)),
        ("n-3", "KTP-1", "sent", "failed", None, since + timedelta(days=2)),  # undelivered
        ("n-4", None, "failed", None, "batas pesan tercapai", since + timedelta(days=3)),
        ("n-5", "KTP-2", "failed", None, "nomor tidak valid", since - timedelta(seconds=1)),
        ("n-6", "KTP-2", "sent", "delivered", None, since + timedelta(days=1)),
    ]
    await event_store.pool.executemany(
        """
        INSERT INTO notification_outbox (notification_id, recipient, ticket, kind, message,
                                         state, delivery, reason, next_at, created_at,
                                         updated_at)
        VALUES ($1, 'citizen-x', $2, 'status', '{}', $3, $4, $5, $6, $6, $6)
        """,
        rows,
    )

    failed = await PostgresDeliveryFigures(event_store.pool).failed(since)

    assert sorted(failed, key=lambda f: (f.ticket or "", f.reason or "")) == [
        FailedMessages(None, "batas pesan tercapai", 1),
        FailedMessages("KTP-1", None, 1),
        FailedMessages("KTP-1", "nomor tidak valid", 2),
    ]
    figures = PostgresDeliveryFigures(event_store.pool)
    assert sorted(await figures.notifications_about("KTP-1")) == ["n-1", "n-2", "n-3"]
    assert await figures.notifications_about("KTP-9") == []
