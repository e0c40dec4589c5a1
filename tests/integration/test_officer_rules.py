"""Rules about officers hold in the desk, so the officer API and the console enforce the
same ones: nobody disables their own account, an unknown officer is never reported as an
unknown ticket, a disabled officer takes no requests, names are stored tidy."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from adminduk.officer_app import create_app
from services.verification.adapters.api import BOOTSTRAP_OFFICER
from services.verification.domain.officers import Role
from services.verification.main import build
from shared.config import Settings
from shared.contracts import ComplaintReceived, complaint_stream
from shared.eventstore.store import EventStore
from shared.mediastore import FileMediaStore
from tests.integration.test_console import (
    BALARAJA,
    BOOTSTRAP,
    JAYANTI,
    Office,
    form_post,
    signed_in,
)

pytestmark = pytest.mark.integration


@pytest.fixture
async def office(event_store: EventStore, tmp_path: Path) -> AsyncIterator[Office]:
    settings = Settings(data_dir=tmp_path / "data", bootstrap_token=SecretStr(BOOTSTRAP))
    verification, desk = build(settings, event_store)
    app = create_app(settings, event_store, desk)
    yield Office(
        settings, event_store, verification, desk, app, FileMediaStore(settings.data_dir / "media")
    )


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def api(office: Office, path: str, token: str, body: Any = None) -> tuple[int, str]:
    async with office.client() as client:
        answer = await client.post(path, json=body, headers=bearer(token))
    detail = answer.json().get("detail", "") if answer.content else ""
    return answer.status_code, str(detail)


# -- the API ------------------------------------------------------------------------------


async def test_an_admin_cannot_disable_their_own_account_through_the_api(office: Office) -> None:
    admin, token = await office.officer("Ani", Role.ADMIN, ())
    status, detail = await api(office, f"/api/officers/{admin.id}/disable", token)
    assert (status, "own account" in detail) == (403, True), detail
    assert not (await office.desk.officers.get(admin.id)).disabled  # type: ignore[union-attr]
    status, detail = await api(office, "/api/officers/bootstrap/disable", BOOTSTRAP)
    assert (status, "own account" in detail) == (403, True), detail


async def test_disabling_an_unknown_officer_says_so(office: Office) -> None:
    status, detail = await api(office, "/api/officers/off_000000000000/disable", BOOTSTRAP)
    assert status == 404
    assert "unknown officer" in detail and "ticket" not in detail
    # Something that cannot be an officer's id is refused by its shape.
    status, detail = await api(office, "/api/officers/no%20such/disable", BOOTSTRAP)
    assert status == 422
    assert "pattern" in detail and "ticket" not in detail


async def test_assigning_to_an_unknown_officer_is_not_an_unknown_ticket(office: Office) -> None:
    _, supervisor = await office.officer("Sari", Role.SUPERVISOR, ())
    ticket = await office.request()
    path = f"/api/requests/{ticket}/assign"
    status, detail = await api(office, path, supervisor, {"officer_id": "off_nobody"})
    assert status == 404
    assert "unknown officer off_nobody" in detail
    budi, _ = await office.officer("Budi")
    status, detail = await api(
        office, "/api/requests/KTP-NOPE0000/assign", supervisor, {"officer_id": budi.id}
    )
    assert status == 404 and "officer" not in detail


async def test_a_disabled_or_out_of_scope_officer_is_given_no_request(office: Office) -> None:
    _, supervisor = await office.officer("Sari", Role.SUPERVISOR, ())
    budi, _ = await office.officer("Budi")
    joko, _ = await office.officer("Joko", kecamatan=(JAYANTI,))
    ticket = await office.request(kecamatan=BALARAJA)
    await office.desk.set_officer_disabled(BOOTSTRAP_OFFICER, budi.id, True)
    path = f"/api/requests/{ticket}/assign"
    status, detail = await api(office, path, supervisor, {"officer_id": budi.id})
    assert (status, "disabled" in detail) == (409, True), detail
    status, detail = await api(office, path, supervisor, {"officer_id": joko.id})
    assert (status, "does not cover" in detail) == (403, True), detail
    assert (await office.state(ticket)).claimed_by is None


async def test_an_officer_name_is_stored_tidy_and_never_blank(office: Office) -> None:
    for name in ("   ", "\t\n"):
        status, _ = await api(
            office, "/api/officers", BOOTSTRAP, {"name": name, "role": "supervisor"}
        )
        assert status == 422
    async with office.client() as client:
        created = await client.post(
            "/api/officers",
            json={
                "name": "  Dewi   Sari ",
                "role": "operator",
                "kecamatan": [JAYANTI, BALARAJA, JAYANTI],
            },
            headers=bearer(BOOTSTRAP),
        )
    assert created.status_code == 201, created.text
    account = await office.desk.officers.get(created.json()["id"])
    assert account is not None
    assert (account.name, account.kecamatan) == ("Dewi Sari", (BALARAJA, JAYANTI))


async def test_an_officer_name_with_control_characters_is_refused(office: Office) -> None:
    for name in ("Dewi\x00Sari", "Dewi\x07", "\u202eiraS iweD", "Dewi\u200b"):
        status, detail = await api(
            office, "/api/officers", BOOTSTRAP, {"name": name, "role": "supervisor"}
        )
        assert (status, "control" in detail) == (422, True), (name, detail)
    async with signed_in(office, BOOTSTRAP) as client:
        refused = await form_post(
            client,
            "/console/supervisor",
            "/console/officers",
            {"name": "Dewi\x00", "role": "operator", "kecamatan": [BALARAJA]},
        )
        assert refused.status_code == 422
        assert "nama petugas dengan huruf biasa" in refused.text
    assert [a.name for a in await office.desk.list_officers(BOOTSTRAP_OFFICER)] == []


# -- the console, with the same rules ---------------------------------------------------------


async def test_the_console_refuses_an_unknown_or_disabled_officer_in_words(office: Office) -> None:
    _, supervisor = await office.officer("Sari", Role.SUPERVISOR, ())
    budi, _ = await office.officer("Budi")
    ticket = await office.request()
    await office.desk.set_officer_disabled(BOOTSTRAP_OFFICER, budi.id, True)
    async with signed_in(office, supervisor) as client:
        for officer_id in ("off_nobody", budi.id, ""):
            for page, action, data in [
                (f"/console/requests/{ticket}", f"/console/requests/{ticket}/assign", {}),
                ("/console/supervisor", "/console/supervisor/assign", {"ticket": ticket}),
            ]:
                answer = await form_post(client, page, action, {"officer_id": officer_id, **data})
                assert answer.status_code == 422, (officer_id, action)
                assert "Pilih petugas yang masih aktif." in answer.text
                assert "tidak ditemukan" not in answer.text
    assert (await office.state(ticket)).claimed_by is None


async def test_the_console_refuses_to_disable_ones_own_account(office: Office) -> None:
    admin, token = await office.officer("Ani", Role.ADMIN, ())
    async with signed_in(office, token) as client:
        answer = await form_post(
            client, "/console/supervisor", f"/console/officers/{admin.id}/disable"
        )
        assert answer.status_code == 422
        assert "Anda tidak bisa menonaktifkan akun Anda sendiri." in answer.text
        unknown = await form_post(
            client, "/console/supervisor", "/console/officers/off_nobody/disable"
        )
        assert unknown.status_code == 422
        assert "Petugas tidak ditemukan." in unknown.text
    assert not (await office.desk.officers.get(admin.id)).disabled  # type: ignore[union-attr]


# -- complaints ---------------------------------------------------------------------------


async def complaint(office: Office, ticket: str, related: str | None) -> None:
    received = ComplaintReceived(
        ticket=ticket,
        citizen="citizen-test",
        phone="6281234567890",
        text="Kapan selesai?",
        related_ticket=related,
        message_id=f"wamid.{ticket}",
        received_at=datetime.now(UTC),
    )
    stream = complaint_stream(ticket)
    await office.store.append(stream, [received.to_new_event()], 0)
    await office.project(stream)


async def test_complaints_are_listed_to_exactly_the_officers_who_may_open_them(
    office: Office,
) -> None:
    _, operator = await office.officer("Budi")  # Balaraja
    _, supervisor = await office.officer("Sari", Role.SUPERVISOR, ())
    own = await office.request()
    other = await office.request(kecamatan=JAYANTI)
    await complaint(office, "ADU-OWN00001", own)
    await complaint(office, "ADU-OTHER0001", other)
    await complaint(office, "ADU-NONE00001", None)
    await complaint(office, "ADU-GHOST0001", "KTP-NOBODY00")

    async with office.client() as client:
        for token, expected in (
            (operator, {"ADU-OWN00001", "ADU-NONE00001"}),
            (supervisor, {"ADU-OWN00001", "ADU-OTHER0001", "ADU-NONE00001", "ADU-GHOST0001"}),
        ):
            listed = await client.get("/api/complaints", headers=bearer(token))
            assert {row["ticket"] for row in listed.json()} == expected
            for ticket in ("ADU-OWN00001", "ADU-OTHER0001", "ADU-NONE00001", "ADU-GHOST0001"):
                page = await client.get(f"/api/complaints/{ticket}", headers=bearer(token))
                assert page.status_code == (200 if ticket in expected else 403), ticket
    async with signed_in(office, operator) as client:
        listing = await client.get("/console/complaints?state=open")
        assert 'data-ticket="ADU-GHOST0001"' not in listing.text
        assert 'data-ticket="ADU-NONE00001"' in listing.text
        assert (await client.get("/console/complaints/ADU-GHOST0001")).status_code == 403
