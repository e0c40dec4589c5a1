"""Verification against a real Postgres: automatic checks, corrections, the read models,
the sweeper, and the officer API with its roles, scope and races.

The consumers' handlers are driven directly here (the bus is tested on its own and in the
end-to-end tests): :meth:`Office.pump` hands every new event to the handler whose consumer
subscribes to it, as JetStream would, until nothing new is written.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import HistogramDataPoint, InMemoryMetricReader
from pydantic import SecretStr

from adminduk.officer_app import create_app
from services.verification.main import build
from shared.bus.consumer import HandlerContext
from shared.config import Settings
from shared.contracts import (
    Attachment,
    ComplaintReceived,
    CorrectionSubmitted,
    RequestReceived,
    complaint_stream,
    request_stream,
)
from shared.eventstore.store import EventStore

pytestmark = pytest.mark.integration

BOOTSTRAP = "bootstrap-token-for-tests"
BALARAJA, CIKUPA = "360301", "360318"
PHONE = "6281234567890"
KTP_APPLICANT: dict[str, Any] = {
    "nik": "3603015708990001",
    "no_kk": "3603012001180003",
    "nama": "SITI AMINAH",
    "desa": "SENTUL",
    "kecamatan_code": BALARAJA,
    "kecamatan_name": "Balaraja",
    "reason": "PEMULA",
}


def photo(n: int) -> Attachment:
    return Attachment(
        sha256=f"{n:064x}", content_type="image/jpeg", size=1000, message_id=f"wamid.P{n}"
    )


class Office:
    def __init__(self, store: EventStore, settings: Settings) -> None:
        self.store = store
        self.settings = settings
        self.verification, self.desk = build(settings, store)
        self.app = create_app(settings, store, self.desk)
        self.http = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app), base_url="http://console"
        )
        self.position = 0
        self.count = 0

    async def receive(
        self,
        *,
        applicant: dict[str, Any] | None = None,
        files: int = 1,
        kecamatan: str = BALARAJA,
        doc_type: str = "KTP",
    ) -> str:
        self.count += 1
        ticket = f"KTP-TEST{self.count:04d}"
        received = RequestReceived(
            ticket=ticket,
            doc_type=doc_type,
            citizen="citizen-wa_test",
            phone=PHONE,
            kecamatan_code=kecamatan,
            applicant={**KTP_APPLICANT, "kecamatan_code": kecamatan, **(applicant or {})},
            attachments=tuple(photo(self.count * 100 + i) for i in range(files)),
            message_id=f"wamid.R{self.count}",
            received_at=datetime.now(UTC),
        )
        await self.store.append(request_stream(ticket), [received.to_new_event()])
        await self.pump()
        return ticket

    async def pump(self) -> None:
        while events := await self.store.read_all(after_position=self.position):
            for event in events:
                self.position = event.position
                for consumer, handler in self._handlers(event.category, event.event_type):
                    await handler(
                        HandlerContext(
                            consumer=consumer, store=self.store, event=event, deliveries=1
                        )
                    )

    def _handlers(self, category: str, event_type: str) -> list[tuple[str, Any]]:
        handlers: list[tuple[str, Any]] = []
        if category == "request" and event_type in {
            "RequestReceived",
            "AttachmentAdded",
            "RequestAmended",
        }:
            handlers.append(("verification-checks", self.verification.on_request_event))
        if category == "citizen" and event_type == "CorrectionSubmitted":
            handlers.append(("verification-corrections", self.verification.on_correction))
        if category in {"request", "complaint"}:
            handlers.append(("verification-read-models", self.verification.project))
        return handlers

    async def officer(self, role: str, kecamatan: list[str] | None = None) -> str:
        answer = await self.http.post(
            "/api/officers",
            json={"name": f"Petugas {role}", "role": role, "kecamatan": kecamatan or []},
            headers=auth(BOOTSTRAP),
        )
        assert answer.status_code == 201, answer.text
        return str(answer.json()["token"])

    async def events(self, ticket: str) -> list[str]:
        return [e.event_type for e in await self.store.read_stream(request_stream(ticket))]

    async def correct(self, ticket: str, files: int = 1) -> None:
        self.count += 1
        submitted = CorrectionSubmitted(
            phone=PHONE,
            ticket=ticket,
            message_id=f"wamid.C{self.count}",
            attachments=tuple(photo(self.count * 100 + i) for i in range(files)),
        )
        await self.store.append("citizen-wa_test", [submitted.to_new_event()])
        await self.pump()


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
async def office(event_store: EventStore, tmp_path: Path) -> AsyncIterator[Office]:
    settings = Settings(
        data_dir=tmp_path,
        bootstrap_token=SecretStr(BOOTSTRAP),
        papers_grace=timedelta(minutes=15),
    )
    office = Office(event_store, settings)
    yield office
    await office.http.aclose()


# -- automatic checks ------------------------------------------------------------------------


async def test_a_complete_request_passes_the_checks_into_the_queue(office: Office) -> None:
    ticket = await office.receive()
    assert await office.events(ticket) == ["RequestReceived", "RequestChecked"]
    token = await office.officer("supervisor")
    [item] = (await office.http.get("/api/requests", headers=auth(token))).json()
    assert item["ticket"] == ticket
    assert item["state"] == "in_queue"
    assert item["flags"] == []
    assert item["sla"]["level"] in {"ok", "at_risk", "late"}


async def test_a_request_without_files_waits_then_asks_the_citizen_for_them(
    office: Office,
) -> None:
    ticket = await office.receive(files=0)
    assert await office.events(ticket) == ["RequestReceived"]  # the files may still come
    assert await office.verification.sweep() == 0  # still inside the grace period
    office.verification.now = lambda: datetime.now(UTC) + timedelta(minutes=16)
    assert await office.verification.sweep() == 1
    await office.pump()
    assert await office.events(ticket) == ["RequestReceived", "RequestChecked", "ChangesRequested"]
    [*_, changes] = await office.store.read_stream(request_stream(ticket))
    assert changes.data["officer_id"] is None
    assert "Kartu Keluarga" in changes.data["reasons"][0]
    # The sweeper does not decide twice.
    assert await office.verification.sweep() == 0


async def test_problems_an_officer_must_judge_are_flags_not_corrections(office: Office) -> None:
    # A NIK issued in Jakarta, for a KIA although the applicant is an adult.
    ticket = await office.receive(applicant={"nik": "3171015708990001"}, doc_type="KIA", files=4)
    events = await office.store.read_stream(request_stream(ticket))
    checked = events[1].data
    assert checked["outcome"] == "flagged"
    failed = {r["check"] for r in checked["results"] if not r["passed"]}
    assert failed == {"nik_region", "kk_region", "age"}


async def test_a_second_open_request_for_the_same_person_is_closed_as_a_duplicate(
    office: Office,
) -> None:
    first = await office.receive()
    second = await office.receive()
    assert await office.events(second) == ["RequestReceived", "RequestChecked", "RequestCancelled"]
    [*_, cancelled] = await office.store.read_stream(request_stream(second))
    assert cancelled.data["duplicate_of"] == first
    # Another document for the same person is no duplicate.
    other = await office.receive(doc_type="SKPWNI", files=2)
    assert "RequestCancelled" not in await office.events(other)


# -- the officer API -------------------------------------------------------------------------


async def test_claim_changes_correction_approve_and_a_second_approve_is_409(
    office: Office,
) -> None:
    ticket = await office.receive()
    operator = await office.officer("operator", [BALARAJA])
    claimed = await office.http.post(f"/api/requests/{ticket}/claim", headers=auth(operator))
    assert claimed.status_code == 200, claimed.text
    assert claimed.json()["state"] == "claimed"

    changes = await office.http.post(
        f"/api/requests/{ticket}/request-changes",
        json={"reasons": ["Foto KK tidak terbaca, kirim ulang foto yang jelas"]},
        headers=auth(operator),
    )
    assert changes.status_code == 200, changes.text
    assert changes.json()["state"] == "changes_requested"

    await office.correct(ticket)
    detail = (await office.http.get(f"/api/requests/{ticket}", headers=auth(operator))).json()
    assert detail["state"] == "in_queue"
    assert detail["returned_to_me"] is True
    assert len(detail["attachment_list"]) == 2
    assert [h["type"] for h in detail["history"]][-3:] == [
        "ChangesRequested",
        "RequestAmended",
        "RequestChecked",
    ]
    assert all("phone" not in h["data"] for h in detail["history"])

    approved = await office.http.post(f"/api/requests/{ticket}/approve", headers=auth(operator))
    assert approved.status_code == 200, approved.text
    assert approved.json()["state"] == "verified"
    again = await office.http.post(f"/api/requests/{ticket}/approve", headers=auth(operator))
    assert again.status_code == 409


async def test_two_concurrent_approvals_exactly_one_succeeds(office: Office) -> None:
    ticket = await office.receive()
    first = await office.officer("supervisor")
    second = await office.officer("supervisor")
    answers = await asyncio.gather(
        *(
            office.http.post(f"/api/requests/{ticket}/approve", headers=auth(token))
            for token in (first, second) * 3
        )
    )
    assert sorted(a.status_code for a in answers) == [200, 409, 409, 409, 409, 409]
    assert (await office.events(ticket)).count("RequestVerified") == 1


async def test_a_claimed_request_is_not_decided_by_another_officer(office: Office) -> None:
    ticket = await office.receive()
    holder = await office.officer("operator", [BALARAJA])
    other = await office.officer("operator", [BALARAJA])
    supervisor = await office.officer("supervisor")
    await office.http.post(f"/api/requests/{ticket}/claim", headers=auth(holder))
    for action in ("claim", "approve"):
        answer = await office.http.post(f"/api/requests/{ticket}/{action}", headers=auth(other))
        assert answer.status_code == 409
    rejected = await office.http.post(
        f"/api/requests/{ticket}/reject", json={"reason": "x"}, headers=auth(supervisor)
    )
    assert rejected.status_code == 409  # a supervisor reassigns first
    officers = (await office.http.get("/api/officers", headers=auth(supervisor))).json()
    other_id = next(o["id"] for o in officers if o["id"] != officers[0]["id"])
    assigned = await office.http.post(
        f"/api/requests/{ticket}/assign", json={"officer_id": other_id}, headers=auth(supervisor)
    )
    assert assigned.status_code == 200
    assert assigned.json()["claimed_by"] == other_id


async def test_auth_roles_and_kecamatan_scope(office: Office) -> None:
    ticket = await office.receive(kecamatan=BALARAJA)
    cikupa = await office.officer("operator", [CIKUPA])
    assert (await office.http.get("/api/requests")).status_code == 401
    assert (await office.http.get("/api/requests", headers=auth("wrong"))).status_code == 401
    assert (await office.http.get("/api/requests", headers=auth(cikupa))).json() == []
    for method, path in [
        ("GET", f"/api/requests/{ticket}"),
        ("POST", f"/api/requests/{ticket}/claim"),
        ("POST", f"/api/requests/{ticket}/approve"),
    ]:
        answer = await office.http.request(method, path, headers=auth(cikupa))
        assert answer.status_code == 403, (path, answer.text)
    listed = await office.http.get(
        "/api/requests", params={"kecamatan": BALARAJA}, headers=auth(cikupa)
    )
    assert listed.status_code == 403
    # Only admins manage officers.
    created = await office.http.post(
        "/api/officers", json={"name": "X", "role": "admin"}, headers=auth(cikupa)
    )
    assert created.status_code == 403
    assert (
        await office.http.get("/api/requests/NOPE-123456", headers=auth(BOOTSTRAP))
    ).status_code == 404
    assert (
        await office.http.post("/api/requests/NOPE-123456/approve", headers=auth(BOOTSTRAP))
    ).status_code == 404
    # A disabled officer's token stops working at once.
    officers = (await office.http.get("/api/officers", headers=auth(BOOTSTRAP))).json()
    await office.http.post(f"/api/officers/{officers[0]['id']}/disable", headers=auth(BOOTSTRAP))
    assert (await office.http.get("/api/requests", headers=auth(cikupa))).status_code == 401


async def test_bad_decisions_are_refused_with_a_clear_error(office: Office) -> None:
    ticket = await office.receive()
    token = await office.officer("supervisor")
    body: object
    for body in ({}, {"reasons": []}, {"reasons": [""]}, {"reasons": ["x" * 501]}, "garbage"):
        answer = await office.http.post(
            f"/api/requests/{ticket}/request-changes", json=body, headers=auth(token)
        )
        assert answer.status_code == 422, body
    blank = await office.http.post(
        f"/api/requests/{ticket}/reject", json={"reason": "   "}, headers=auth(token)
    )
    assert blank.status_code == 422
    assert "RequestRejected" not in await office.events(ticket)
    collected = await office.http.post(f"/api/requests/{ticket}/collected", headers=auth(token))
    assert collected.status_code == 409


async def test_an_idle_claim_expires_and_the_request_returns_to_the_queue(office: Office) -> None:
    ticket = await office.receive()
    token = await office.officer("operator", [BALARAJA])
    await office.http.post(f"/api/requests/{ticket}/claim", headers=auth(token))
    office.verification.now = lambda: datetime.now(UTC) + office.settings.claim_idle * 2
    assert await office.verification.sweep() == 1
    [item] = (await office.http.get("/api/requests", headers=auth(token))).json()
    assert item["state"] == "in_queue"
    assert item["claimed_by"] is None


async def test_a_complaint_is_answered_once(office: Office) -> None:
    ticket = await office.receive()
    complaint = ComplaintReceived(
        ticket="ADUAN-TEST0001",
        citizen="citizen-wa_test",
        phone=PHONE,
        text="Sudah seminggu belum ada kabar <b>tolong</b>",
        related_ticket=ticket,
        message_id="wamid.A1",
        received_at=datetime.now(UTC),
    )
    await office.store.append(complaint_stream(complaint.ticket), [complaint.to_new_event()])
    await office.pump()
    cikupa = await office.officer("operator", [CIKUPA])
    balaraja = await office.officer("operator", [BALARAJA])
    assert (await office.http.get("/api/complaints", headers=auth(cikupa))).json() == []
    [listed] = (await office.http.get("/api/complaints", headers=auth(balaraja))).json()
    assert listed["related_ticket"] == ticket
    path = f"/api/complaints/{complaint.ticket}/answer"
    body = {"answer": "Mohon maaf, berkas Anda sedang kami periksa hari ini."}
    assert (await office.http.post(path, json=body, headers=auth(cikupa))).status_code == 403
    assert (await office.http.post(path, json=body, headers=auth(balaraja))).status_code == 200
    assert (await office.http.post(path, json=body, headers=auth(balaraja))).status_code == 409
    events = await office.store.read_stream(complaint_stream(complaint.ticket))
    assert [e.event_type for e in events] == ["ComplaintReceived", "ComplaintAnswered"]


async def test_the_read_model_is_rebuilt_from_the_log(office: Office) -> None:
    ticket = await office.receive()
    token = await office.officer("supervisor")
    await office.http.post(f"/api/requests/{ticket}/claim", headers=auth(token))
    before = await office.store.pool.fetchrow(
        "SELECT state, claimed_by, version FROM verification_requests WHERE ticket = $1", ticket
    )
    await office.store.pool.execute("DELETE FROM verification_requests")
    for event in await office.store.read_category("request"):
        await office.verification.project(
            HandlerContext(
                consumer=f"rebuild-{uuid.uuid4()}", store=office.store, event=event, deliveries=1
            )
        )
    after = await office.store.pool.fetchrow(
        "SELECT state, claimed_by, version FROM verification_requests WHERE ticket = $1", ticket
    )
    assert dict(after or {}) == dict(before or {}) and before is not None
    assert before["state"] == "claimed"


async def test_admin_response_time_is_measured_when_officers_act_and_never_on_replay(
    office: Office,
) -> None:
    reader = InMemoryMetricReader()
    office.desk.response_time = (
        MeterProvider(metric_readers=[reader])
        .get_meter("test")
        .create_histogram("adminduk.admin.response_time", unit="s")
    )
    ticket = await office.receive()
    token = await office.officer("operator", [BALARAJA])
    await office.http.post(f"/api/requests/{ticket}/claim", headers=auth(token))
    await office.http.post(f"/api/requests/{ticket}/approve", headers=auth(token))
    # Rebuilding the read model replays every event: it must not measure anything again.
    await office.store.pool.execute("DELETE FROM verification_requests")
    for event in await office.store.read_category("request"):
        await office.verification.project(
            HandlerContext(consumer="rebuild", store=office.store, event=event, deliveries=1)
        )

    data = reader.get_metrics_data()
    assert data is not None
    [metric] = [
        m
        for rm in data.resource_metrics
        for sm in rm.scope_metrics
        for m in sm.metrics
        if m.name == "adminduk.admin.response_time"
    ]
    points: dict[tuple[Any, Any], HistogramDataPoint] = {}
    for point in metric.data.data_points:
        assert isinstance(point, HistogramDataPoint)
        assert point.attributes is not None
        points[point.attributes["step"], point.attributes["clock"]] = point
    assert set(points) == {
        ("first_action", "wall"),
        ("first_action", "working"),
        ("decision", "wall"),
        ("decision", "working"),
    }
    for point in points.values():
        assert point.count == 1
        assert dict(point.attributes or {})["adminduk.doc_type"] == "KTP"
        assert dict(point.attributes or {})["adminduk.kecamatan"] == BALARAJA
    # The request was received moments ago: at most a few seconds of wall time.
    assert 0 <= points[("decision", "wall")].sum < 60
    assert points[("decision", "working")].sum <= points[("decision", "wall")].sum


async def test_openapi_describes_every_call_of_the_contract(office: Office) -> None:
    paths = (await office.http.get("/openapi.json")).json()["paths"]
    for path, method in [
        ("/api/requests", "get"),
        ("/api/requests/{ticket}", "get"),
        ("/api/requests/{ticket}/claim", "post"),
        ("/api/requests/{ticket}/approve", "post"),
        ("/api/requests/{ticket}/request-changes", "post"),
        ("/api/requests/{ticket}/reject", "post"),
        ("/api/requests/{ticket}/collected", "post"),
        ("/api/officers", "post"),
    ]:
        assert method in paths[path], path
    assert "bearer" in str(paths["/api/requests"]["get"]["security"]).lower()
