"""The officer console over HTTP, against a real Postgres: sessions, CSRF, scope, and the
forms officers use to decide requests."""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from adminduk.officer_app import create_app
from services.verification.adapters.api import BOOTSTRAP_OFFICER
from services.verification.domain.officers import OfficerAccount, Role
from services.verification.domain.reasons import CANNED_REASONS
from services.verification.domain.request import Request, State
from services.verification.handlers import Desk, Verification
from services.verification.main import build
from shared.bus.consumer import HandlerContext
from shared.config import Settings
from shared.contracts import (
    Attachment,
    ComplaintReceived,
    Delivery,
    DocumentIssued,
    HandedToSiak,
    IssuanceScheduled,
    RequestReceived,
    complaint_stream,
    request_stream,
)
from shared.eventstore.store import EventStore
from shared.mediastore import FileMediaStore
from tests.support import decode_all

pytestmark = pytest.mark.integration

BOOTSTRAP = "console-test-bootstrap-token"
BALARAJA, JAYANTI = "360301", "360302"
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(256)) * 4
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@dataclass
class Office:
    settings: Settings
    store: EventStore
    verification: Verification
    desk: Desk
    app: Any
    media: FileMediaStore
    serial: int = 0

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app), base_url="http://console.test"
        )

    async def officer(
        self, name: str, role: Role = Role.OPERATOR, kecamatan: tuple[str, ...] = (BALARAJA,)
    ) -> tuple[OfficerAccount, str]:
        return await self.desk.add_officer(BOOTSTRAP_OFFICER, name, role, kecamatan)

    async def request(
        self, *, kecamatan: str = BALARAJA, nama: str = "SITI AMINAH", files: bool = True
    ) -> str:
        """A KTP request as intake records it, checked and in the officers' queue."""
        self.serial += 1
        ticket = f"KTP-T{self.serial:04d}{uuid.uuid4().hex[:4].upper()}"
        attachments = []
        if files:
            data = JPEG + ticket.encode()
            digest = self.media.put(data)
            attachments.append(
                Attachment(
                    sha256=digest,
                    content_type="image/jpeg",
                    size=len(data),
                    filename="kk.jpg",
                    message_id=f"wamid.F{self.serial}",
                )
            )
        received = RequestReceived(
            ticket=ticket,
            doc_type="KTP",
            citizen="citizen-test",
            phone="6281234567890",
            kecamatan_code=kecamatan,
            # A different person each time, or the checks would close it as a duplicate.
            applicant={
                "nik": f"360301570899{self.serial:04d}",
                "no_kk": "3603012001180003",
                "nama": nama,
                "desa": "SENTUL",
                "kecamatan_code": kecamatan,
                "kecamatan_name": self.desk.kecamatan_names[kecamatan],
                "reason": "PEMULA",
            },
            attachments=tuple(attachments),
            message_id=f"wamid.R{self.serial}",
            received_at=datetime.now(UTC),
        )
        stream = request_stream(ticket)
        await self.store.append(stream, [received.to_new_event()], 0)
        assert await self.verification.check(stream)
        await self.project(stream)
        return ticket

    async def project(self, stream: str) -> None:
        """What the read-model consumer does after the stream's latest event."""
        latest = (await self.store.read_stream(stream))[-1]
        context = HandlerContext(
            consumer="verification-read-models", store=self.store, event=latest, deliveries=1
        )
        await self.verification.project(context)

    async def state(self, ticket: str) -> Request:
        return Request.fold(decode_all(await self.store.read_stream(request_stream(ticket))))


@pytest.fixture
async def office(event_store: EventStore, tmp_path: Path) -> AsyncIterator[Office]:
    settings = Settings(
        data_dir=tmp_path / "data",
        bootstrap_token=SecretStr(BOOTSTRAP),
        papers_grace=timedelta(0),
    )
    verification, desk = build(settings, event_store)
    app = create_app(settings, event_store, desk)
    yield Office(
        settings, event_store, verification, desk, app, FileMediaStore(settings.data_dir / "media")
    )


def csrf_of(html: str) -> str:
    match = CSRF.search(html)
    assert match, "no CSRF field on the page"
    return match.group(1)


async def login(client: httpx.AsyncClient, token: str) -> httpx.Response:
    page = await client.get("/console/login")
    assert page.status_code == 200
    return await client.post(
        "/console/login", data={"csrf": csrf_of(page.text), "token": token, "next": "/console"}
    )


@asynccontextmanager
async def signed_in(office: Office, token: str) -> AsyncIterator[httpx.AsyncClient]:
    async with office.client() as client:
        answer = await login(client, token)
        assert answer.status_code == 303, answer.text
        yield client


async def form_post(
    client: httpx.AsyncClient, page_url: str, action: str, data: dict[str, Any] | None = None
) -> httpx.Response:
    """Submit a form of ``page_url`` as the browser would, with the page's CSRF token."""
    page = await client.get(page_url)
    assert page.status_code == 200, page.text
    return await client.post(action, data={"csrf": csrf_of(page.text), **(data or {})})


# -- sessions ----------------------------------------------------------------------------


async def test_a_bad_token_is_refused_and_a_good_one_opens_a_session(office: Office) -> None:
    _, token = await office.officer("Budi Santoso")
    async with office.client() as client:
        refused = await login(client, "adk_not-a-token")
        assert refused.status_code == 401
        assert "Kode akses tidak dikenal" in refused.text
        assert (await client.get("/console")).status_code == 303

        accepted = await login(client, token)
        assert accepted.status_code == 303
        assert accepted.headers["location"] == "/console"
        cookie = accepted.headers["set-cookie"]
        assert "adminduk_console=" in cookie
        assert "httponly" in cookie.lower()
        assert "samesite=lax" in cookie.lower()
        assert "path=/console" in cookie.lower()
        assert "secure" not in cookie.lower()  # development: plain http on the laptop
        assert token not in cookie and token.removeprefix("adk_") not in cookie

        queue = await client.get("/console")
        assert queue.status_code == 200
        assert "Budi Santoso" in queue.text
        assert "text/html" in queue.headers["content-type"]
        assert queue.headers["cache-control"] == "no-store"
        assert "script-src" not in queue.headers["content-security-policy"]


async def test_a_forged_or_tampered_session_cookie_is_no_session(office: Office) -> None:
    _, token = await office.officer("Budi")
    async with signed_in(office, token) as client:
        genuine = client.cookies["adminduk_console"]
        payload, _, signature = genuine.rpartition(".")
        for forged in (token, f"{payload}.{signature[::-1]}", "eyJjIjoieCJ9.AAAA.BBBB"):
            client.cookies.set("adminduk_console", forged, domain="console.test", path="/console")
            # Replaced, not added beside the genuine one.
            assert [c.value for c in client.cookies.jar if c.name == "adminduk_console"] == [forged]
            answer = await client.get("/console")
            assert answer.status_code == 303, forged
            assert answer.headers["location"].startswith("/console/login")


async def test_in_production_the_session_cookie_is_secure(
    event_store: EventStore, database_url: str, tmp_path: Path
) -> None:
    settings = Settings(
        environment="production",  # type: ignore[arg-type]
        data_dir=tmp_path / "data",
        bootstrap_token=SecretStr(BOOTSTRAP),
        database_url=SecretStr(database_url),
        nats_url=["nats://127.0.0.1:4222"],
        secret_key=SecretStr("production-secret-key-Zq8Lw3Rk6Tx1Vb9"),
        integrator_password=SecretStr("production-integrator"),
        whatsapp_api_base_url="https://graph.facebook.com/v21.0",
        whatsapp_phone_number_id="106540352242922",
        whatsapp_access_token=SecretStr("production-access-token"),
        whatsapp_app_secret=SecretStr("production-app-secret"),
        whatsapp_verify_token=SecretStr("production-verify-token"),
        siak_url="https://siak.example.go.id/api",
        siak_token=SecretStr("production-siak-token"),
        signing_key_file=tmp_path / "office.p12",
    )
    _, desk = build(settings, event_store)
    app = create_app(settings, event_store, desk)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="https://console.test"
    ) as client:
        answer = await login(client, BOOTSTRAP)
        assert answer.status_code == 303
        assert "secure" in answer.headers["set-cookie"].lower()


async def test_the_bootstrap_token_signs_in_as_admin(office: Office) -> None:
    async with signed_in(office, BOOTSTRAP) as client:
        page = await client.get("/console/supervisor")
        assert page.status_code == 200
        assert 'data-testid="add-officer-form"' in page.text


async def test_pages_need_a_session(office: Office) -> None:
    ticket = await office.request()
    async with office.client() as client:
        root = await client.get("/")
        assert root.status_code == 303 and root.headers["location"] == "/console"
        for path in (
            "/console",
            f"/console/requests/{ticket}",
            "/console/complaints",
            "/console/supervisor",
        ):
            answer = await client.get(path)
            assert answer.status_code == 303, path
            assert answer.headers["location"].startswith("/console/login?next=%2Fconsole"), path
        claim = await client.post(f"/console/requests/{ticket}/claim", data={"csrf": "x"})
        assert claim.status_code == 303
        assert claim.headers["location"].startswith("/console/login")
    assert (await office.state(ticket)).state == State.IN_QUEUE


async def test_login_sends_the_officer_back_to_the_page_they_asked_for(office: Office) -> None:
    _, token = await office.officer("Budi")
    ticket = await office.request()
    async with office.client() as client:
        wanted = await client.get(f"/console/requests/{ticket}")
        page = await client.get(wanted.headers["location"])
        answer = await client.post(
            "/console/login",
            data={
                "csrf": csrf_of(page.text),
                "token": token,
                "next": re.search(r'name="next" value="([^"]+)"', page.text).group(1),  # type: ignore[union-attr]
            },
        )
        assert answer.headers["location"] == f"/console/requests/{ticket}"
        # Never to another site.
        signed = await client.get("/console/login?next=https://evil.example/")
        assert signed.headers["location"] == "/console"
    async with office.client() as client:
        page = await client.get("/console/login?next=//evil.example/console")
        assert 'name="next" value="/console"' in page.text


async def test_a_disabled_officer_is_locked_out_at_the_next_click(office: Office) -> None:
    account, token = await office.officer("Budi")
    async with signed_in(office, token) as client:
        assert (await client.get("/console")).status_code == 200
        await office.desk.set_officer_disabled(BOOTSTRAP_OFFICER, account.id, True)
        answer = await client.get("/console")
        assert answer.status_code == 303
        assert answer.headers["location"].startswith("/console/login")
        login_page = await client.get(answer.headers["location"])
        assert "tidak berlaku lagi" in login_page.text


async def test_logging_out_ends_the_session(office: Office) -> None:
    _, token = await office.officer("Budi")
    async with signed_in(office, token) as client:
        out = await form_post(client, "/console", "/console/logout")
        assert out.status_code == 303
        assert (await client.get("/console")).status_code == 303


async def test_a_cookie_copied_before_logout_no_longer_works(office: Office) -> None:
    _, token = await office.officer("Budi")
    async with signed_in(office, token) as client:
        copied = client.cookies["adminduk_console"]
        out = await form_post(client, "/console", "/console/logout")
        assert out.status_code == 303
    async with office.client() as thief:
        thief.cookies.set("adminduk_console", copied, domain="console.test", path="/console")
        answer = await thief.get("/console")
        assert answer.status_code == 303
        assert answer.headers["location"].startswith("/console/login")
    # Signing in again works, with a new session.
    async with signed_in(office, token) as client:
        assert (await client.get("/console")).status_code == 200


# -- CSRF --------------------------------------------------------------------------------


async def test_a_post_without_the_csrf_token_is_refused_and_changes_nothing(
    office: Office,
) -> None:
    _, token = await office.officer("Budi")
    ticket = await office.request()
    async with signed_in(office, token) as client:
        for data in ({}, {"csrf": ""}, {"csrf": "forged-token"}):
            answer = await client.post(f"/console/requests/{ticket}/claim", data=data)
            assert answer.status_code == 403
            assert "text/html" in answer.headers["content-type"]
            assert "kedaluwarsa atau tidak sah" in answer.text
        assert (await client.post("/console/logout", data={})).status_code == 403
        assert (await client.get("/console")).status_code == 200  # still signed in
    assert (await office.state(ticket)).state == State.IN_QUEUE


async def test_a_csrf_value_that_is_not_ascii_is_refused_not_a_server_error(
    office: Office,
) -> None:
    _, token = await office.officer("Budi")
    ticket = await office.request()
    async with office.client() as client:
        await client.get("/console/login")
        answer = await client.post("/console/login", data={"csrf": "é€😀", "token": token})
        assert answer.status_code == 403
        assert "kedaluwarsa" in answer.text
    async with signed_in(office, token) as client:
        for action in (f"/console/requests/{ticket}/claim", "/console/logout"):
            answer = await client.post(action, data={"csrf": "ç\u0000ß"})
            assert answer.status_code == 403, action
            assert "kedaluwarsa atau tidak sah" in answer.text
        assert (await client.get("/console")).status_code == 200  # still signed in


async def test_the_csrf_token_of_one_session_does_not_work_in_another(office: Office) -> None:
    _, first_token = await office.officer("Budi")
    _, second_token = await office.officer("Ani")
    ticket = await office.request()
    async with (
        signed_in(office, first_token) as first,
        signed_in(office, second_token) as second,
    ):
        stolen = csrf_of((await first.get(f"/console/requests/{ticket}")).text)
        answer = await second.post(f"/console/requests/{ticket}/claim", data={"csrf": stolen})
        assert answer.status_code == 403
    assert (await office.state(ticket)).state == State.IN_QUEUE


# -- deciding through the forms ---------------------------------------------------------


async def test_an_officer_claims_and_approves_through_the_forms(office: Office) -> None:
    account, token = await office.officer("Budi Santoso")
    ticket = await office.request()
    page_url = f"/console/requests/{ticket}"
    async with signed_in(office, token) as client:
        queue = await client.get("/console")
        assert f'data-ticket="{ticket}"' in queue.text
        assert 'data-testid="sla-badge" data-level="ok"' in queue.text

        page = await client.get(page_url)
        assert 'data-testid="claim-button"' in page.text
        assert 'data-testid="approve-button"' not in page.text

        claimed = await form_post(client, page_url, f"{page_url}/claim")
        assert claimed.status_code == 303
        assert claimed.headers["location"] == page_url
        page = await client.get(page_url)
        assert 'data-state="claimed"' in page.text
        assert 'data-testid="flash"' in page.text
        assert 'data-testid="approve-button"' in page.text
        assert 'data-testid="claim-button"' not in page.text
        assert (await client.get(page_url)).text.count('data-testid="flash"') == 0  # once

        approved = await form_post(client, page_url, f"{page_url}/approve")
        assert approved.status_code == 303
        page = await client.get(page_url)
        assert 'data-state="verified"' in page.text
        assert 'data-type="RequestVerified"' in page.text
        assert 'data-testid="approve-button"' not in page.text
    request = await office.state(ticket)
    assert request.state == State.VERIFIED
    assert request.decided_by == account.id


async def test_the_counter_records_a_pickup_once_the_document_is_issued(office: Office) -> None:
    account, token = await office.officer("Budi Santoso")
    ticket = await office.request()
    page_url = f"/console/requests/{ticket}"
    stream = request_stream(ticket)
    async with signed_in(office, token) as client:
        await form_post(client, page_url, f"{page_url}/claim")
        await form_post(client, page_url, f"{page_url}/approve")
        page = await client.get(page_url)
        assert 'data-testid="collected-button"' not in page.text, "not issued yet"
        refused = await client.post(
            f"{page_url}/collected", data={"csrf": csrf_of(page.text)}, follow_redirects=True
        )
        assert (await office.state(ticket)).state == State.VERIFIED

        office_pickup = Delivery(channel="office", place="Loket 3", bring=("KK asli",))
        issuance_events = [
            IssuanceScheduled(
                ticket=ticket,
                doc_type="KTP",
                phone="6281234567890",
                promised_on=date(2026, 12, 8),
                working_days=1,
                delivery=office_pickup,
            ),
            HandedToSiak(ticket=ticket, idempotency_key=f"adminduk-3603-{ticket}"),
            DocumentIssued(
                ticket=ticket,
                doc_type="KTP",
                phone="6281234567890",
                document_number="KTP/3603/07122026/0001",
                issued_at=datetime.now(UTC),
                ready_on=date(2026, 12, 8),
                delivery=office_pickup,
            ),
        ]
        await office.store.append(stream, [e.to_new_event() for e in issuance_events])
        await office.project(stream)
        page = await client.get(page_url)
        assert 'data-state="issued"' in page.text
        assert "KTP/3603/07122026/0001" in page.text  # in the history
        assert 'data-testid="collected-button"' in page.text
        collected = await form_post(client, page_url, f"{page_url}/collected")
        assert collected.status_code == 303
        page = await client.get(page_url)
        assert 'data-state="completed"' in page.text
        assert 'data-type="DocumentCollected"' in page.text
        assert 'data-testid="collected-button"' not in page.text
    assert refused.status_code in {200, 409}
    request = await office.state(ticket)
    assert request.state == State.COMPLETED
    collected_events = [
        e for e in await office.store.read_stream(stream) if e.event_type == "DocumentCollected"
    ]
    assert [e.data["officer_id"] for e in collected_events] == [account.id]


async def test_changes_need_a_reason_and_send_the_chosen_ones(office: Office) -> None:
    _, token = await office.officer("Budi")
    ticket = await office.request()
    page_url = f"/console/requests/{ticket}"
    async with signed_in(office, token) as client:
        await form_post(client, page_url, f"{page_url}/claim")

        empty = await form_post(client, page_url, f"{page_url}/request-changes", {"other": " "})
        assert empty.status_code == 422
        assert "minimal satu alasan" in empty.text
        assert (await office.state(ticket)).state == State.CLAIMED

        sent = await form_post(
            client,
            page_url,
            f"{page_url}/request-changes",
            {"reasons": [CANNED_REASONS[0]], "other": "Tanda tangan  belum ada"},
        )
        assert sent.status_code == 303
        page = await client.get(page_url)
        assert 'data-state="changes_requested"' in page.text
    request = await office.state(ticket)
    assert request.state == State.CHANGES_REQUESTED
    assert request.reasons == (CANNED_REASONS[0], "Tanda tangan belum ada")


async def test_a_rejection_needs_a_reason(office: Office) -> None:
    _, token = await office.officer("Budi")
    ticket = await office.request()
    page_url = f"/console/requests/{ticket}"
    async with signed_in(office, token) as client:
        await form_post(client, page_url, f"{page_url}/claim")
        refused = await form_post(client, page_url, f"{page_url}/reject", {"reason": ""})
        assert refused.status_code == 422
        rejected = await form_post(
            client, page_url, f"{page_url}/reject", {"reason": "Bukan warga Kab. Tangerang"}
        )
        assert rejected.status_code == 303
    request = await office.state(ticket)
    assert request.state == State.REJECTED
    assert request.reasons == ("Bukan warga Kab. Tangerang",)


async def test_a_request_claimed_by_another_officer_cannot_be_decided(office: Office) -> None:
    _, budi = await office.officer("Budi Santoso")
    _, ani = await office.officer("Ani")
    ticket = await office.request()
    page_url = f"/console/requests/{ticket}"
    async with signed_in(office, budi) as first, signed_in(office, ani) as second:
        page = await second.get(page_url)  # Ani opens it while it is free
        await form_post(first, page_url, f"{page_url}/claim")

        late = await second.post(f"{page_url}/claim", data={"csrf": csrf_of(page.text)})
        assert late.status_code == 409
        assert "sedang diperiksa oleh Budi Santoso" in late.text
        assert 'data-testid="claim-button"' not in late.text
        approve = await second.post(f"{page_url}/approve", data={"csrf": csrf_of(page.text)})
        assert approve.status_code == 409
        queue = await second.get("/console")
        assert "Budi Santoso" in queue.text
    assert (await office.state(ticket)).claimed_by_name == "Budi Santoso"


# -- scope and escaping ------------------------------------------------------------------


async def test_an_operator_cannot_open_a_request_of_another_kecamatan(office: Office) -> None:
    _, token = await office.officer("Budi", kecamatan=(BALARAJA,))
    ticket = await office.request(kecamatan=JAYANTI)
    [attachment] = (await office.state(ticket)).attachments
    async with signed_in(office, token) as client:
        page = await client.get(f"/console/requests/{ticket}")
        assert page.status_code == 403
        assert "text/html" in page.headers["content-type"]
        assert 'data-testid="error-page"' in page.text
        assert "Tidak diizinkan" in page.text
        file = await client.get(f"/console/requests/{ticket}/attachments/{attachment.sha256}")
        assert file.status_code == 403
        assert ticket not in (await client.get("/console")).text
        assert (await client.get(f"/console?kecamatan={JAYANTI}")).status_code == 403
        claim = await form_post(client, "/console", f"/console/requests/{ticket}/claim")
        assert claim.status_code == 403
    assert (await office.state(ticket)).state == State.IN_QUEUE


async def test_an_unknown_ticket_is_a_404_page(office: Office) -> None:
    _, token = await office.officer("Budi")
    async with signed_in(office, token) as client:
        for path in ("/console/requests/KTP-NOSUCH1", "/console/requests/%3Cscript%3E"):
            page = await client.get(path)
            assert page.status_code == 404
            assert "text/html" in page.headers["content-type"]
            assert "<script>" not in page.text


async def test_html_in_an_applicant_name_is_shown_as_text(office: Office) -> None:
    _, token = await office.officer("Budi")
    name = "<script>alert('x')</script>'; DROP TABLE officers; --"
    ticket = await office.request(nama=name)
    async with signed_in(office, token) as client:
        page = await client.get(f"/console/requests/{ticket}")
        assert page.status_code == 200
        assert "<script>alert" not in page.text
        assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in page.text
        assert "DROP TABLE officers" in page.text


async def test_an_attachment_is_served_to_an_officer_in_scope(office: Office) -> None:
    _, token = await office.officer("Budi")
    ticket = await office.request()
    [attachment] = (await office.state(ticket)).attachments
    async with signed_in(office, token) as client:
        page = await client.get(f"/console/requests/{ticket}")
        url = f"/console/requests/{ticket}/attachments/{attachment.sha256}"
        assert f'<img src="{url}"' in page.text
        file = await client.get(url)
        assert file.status_code == 200, file.text
        assert file.headers["content-type"] == "image/jpeg"
        assert file.headers["x-content-type-options"] == "nosniff"
        assert hashlib.sha256(file.content).hexdigest() == attachment.sha256
        other = await client.get(f"/console/requests/{ticket}/attachments/{'0' * 64}")
        assert other.status_code == 404


# -- supervisors, admins and complaints --------------------------------------------------


async def test_the_supervisor_page_is_for_supervisors_and_admins_only(office: Office) -> None:
    _, operator = await office.officer("Budi")
    _, supervisor = await office.officer("Sari", Role.SUPERVISOR, ())
    await office.request()
    await office.request(kecamatan=JAYANTI)
    async with signed_in(office, operator) as client:
        page = await client.get("/console/supervisor")
        assert page.status_code == 403
        assert 'data-testid="error-page"' in page.text
        assert 'data-testid="nav-supervisor"' not in (await client.get("/console")).text
        refused = await form_post(client, "/console", "/console/officers", {"name": "X"})
        assert refused.status_code == 403
    async with signed_in(office, supervisor) as client:
        page = await client.get("/console/supervisor")
        assert page.status_code == 200
        assert page.text.count('data-testid="backlog-row"') == 2
        assert f'data-kecamatan="{JAYANTI}"' in page.text
        assert 'data-testid="add-officer-form"' not in page.text  # admins only


async def test_a_supervisor_assigns_a_request_to_an_officer(office: Office) -> None:
    budi, _ = await office.officer("Budi")
    _, supervisor = await office.officer("Sari", Role.SUPERVISOR, ())
    ticket = await office.request()
    async with signed_in(office, supervisor) as client:
        answer = await form_post(
            client,
            "/console/supervisor",
            "/console/supervisor/assign",
            {"ticket": ticket.lower(), "officer_id": budi.id},
        )
        assert answer.status_code == 303
        page = await client.get(answer.headers["location"])
        assert "dialihkan ke Budi" in page.text
    request = await office.state(ticket)
    assert (request.state, request.claimed_by) == (State.CLAIMED, budi.id)


async def test_an_admin_adds_an_officer_whose_token_is_shown_once(office: Office) -> None:
    async with signed_in(office, BOOTSTRAP) as client:
        refused = await form_post(
            client, "/console/supervisor", "/console/officers", {"name": "Dewi", "role": "operator"}
        )
        assert refused.status_code == 422
        assert "minimal satu kecamatan" in refused.text

        added = await form_post(
            client,
            "/console/supervisor",
            "/console/officers",
            {"name": "<b>Dewi</b>", "role": "operator", "kecamatan": [BALARAJA, JAYANTI]},
        )
        # The token is on the answer itself, never in a cookie, and shown once.
        assert added.status_code == 201
        token = re.search(r'data-testid="new-token">([^<]+)<', added.text).group(1)  # type: ignore[union-attr]
        assert "&lt;b&gt;Dewi&lt;/b&gt;" in added.text
        assert all(token not in value for value in client.cookies.values())
        assert 'data-testid="new-token"' not in (await client.get("/console/supervisor")).text
    [dewi] = [a for a in await office.desk.list_officers(BOOTSTRAP_OFFICER) if "Dewi" in a.name]
    assert dewi.kecamatan == (BALARAJA, JAYANTI)
    async with signed_in(office, token) as client:
        assert (await client.get("/console")).status_code == 200

    async with signed_in(office, BOOTSTRAP) as client:
        disabled = await form_post(
            client, "/console/supervisor", f"/console/officers/{dewi.id}/disable"
        )
        assert disabled.status_code == 303
    assert (await office.desk.officers.get(dewi.id)).disabled  # type: ignore[union-attr]


async def test_an_officer_answers_a_complaint(office: Office) -> None:
    _, token = await office.officer("Budi")
    related = await office.request()
    complaint = ComplaintReceived(
        ticket="ADU-T0001",
        citizen="citizen-test",
        phone="6281234567890",
        text="Sudah 3 hari <b>belum</b> ada kabar",
        related_ticket=related,
        message_id="wamid.C1",
        received_at=datetime.now(UTC),
    )
    stream = complaint_stream(complaint.ticket)
    await office.store.append(stream, [complaint.to_new_event()], 0)
    await office.project(stream)

    async with signed_in(office, token) as client:
        listing = await client.get("/console/complaints")
        assert 'data-ticket="ADU-T0001"' in listing.text
        page_url = "/console/complaints/ADU-T0001"
        page = await client.get(page_url)
        assert "Sudah 3 hari &lt;b&gt;belum&lt;/b&gt; ada kabar" in page.text
        empty = await form_post(client, page_url, f"{page_url}/answer", {"answer": "  "})
        assert empty.status_code == 422
        answered = await form_post(
            client, page_url, f"{page_url}/answer", {"answer": "Sedang kami periksa hari ini."}
        )
        assert answered.status_code == 303
        page = await client.get(page_url)
        assert 'data-testid="complaint-answer"' in page.text
        assert 'data-testid="answer-form"' not in page.text
        again = await client.post(
            f"{page_url}/answer", data={"csrf": csrf_of(page.text), "answer": "Lagi"}
        )
        assert again.status_code == 409
        assert 'data-ticket="ADU-T0001"' not in (await client.get("/console/complaints")).text
