"""The officer web application under hostile input: a CSRF field that is not ASCII,
identifiers with a NUL byte, guessed tokens, oversized bodies, a cookie copied before
logout, attachments a browser could sniff. Each answer is a precise 4xx, never a 500."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from adminduk.officer_app import create_app
from services.verification.main import build
from shared.config import Settings
from shared.eventstore.store import EventStore
from shared.mediastore import FileMediaStore
from tests.integration.test_console import (
    BOOTSTRAP,
    Office,
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


def client_from(office: Office, address: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=office.app, client=(address, 40000)),
        base_url="http://console.test",
    )


def documented(app: Any, method: str, template: str) -> set[int]:
    operation = app.openapi()["paths"][template][method.lower()]
    return {int(code) for code in operation["responses"]}


# -- identifiers in paths and queries -----------------------------------------------------


HOSTILE_IDS = ("%00", "KTP-%00ABCDEF", "a%00b", "%F0%9F%98%80" * 3, "x" * 300)


async def test_hostile_identifiers_in_paths_and_queries_are_a_documented_4xx(
    office: Office,
) -> None:
    _, operator = await office.officer("Budi")
    ticket = await office.request()
    routes = [
        ("GET", "/api/requests/{ticket}", "/api/requests/{}"),
        ("GET", "/api/requests/{ticket}/attachments/{sha256}", "/api/requests/{}/attachments/x"),
        (
            "GET",
            "/api/requests/{ticket}/attachments/{sha256}",
            f"/api/requests/{ticket}/attachments/{{}}",
        ),
        ("POST", "/api/requests/{ticket}/claim", "/api/requests/{}/claim"),
        ("POST", "/api/requests/{ticket}/release", "/api/requests/{}/release"),
        ("GET", "/api/complaints/{ticket}", "/api/complaints/{}"),
        ("POST", "/api/officers/{officer_id}/disable", "/api/officers/{}/disable"),
        ("GET", "/api/webhooks/{webhook_id}", "/api/webhooks/{}"),
        ("POST", "/api/webhooks/{webhook_id}/disable", "/api/webhooks/{}/disable"),
        ("DELETE", "/api/webhooks/{webhook_id}", "/api/webhooks/{}"),
        ("GET", "/api/requests", "/api/requests?doc_type={}"),
        ("GET", "/api/requests", "/api/requests?kecamatan={}"),
    ]
    async with office.client() as client:
        for token in (BOOTSTRAP, operator):
            for method, template, shape in routes:
                for hostile in HOSTILE_IDS:
                    path = shape.format(hostile)
                    answer = await client.request(method, path, headers=bearer(token))
                    assert 400 <= answer.status_code < 500, (path, answer.text)
                    codes = documented(office.app, method, template)
                    assert answer.status_code in codes, (path, answer.status_code, codes)
        # Well-formed identifiers still work.
        found = await client.get(f"/api/requests/{ticket.lower()}", headers=bearer(BOOTSTRAP))
        assert found.status_code == 200
        listed = await client.get("/api/requests?doc_type=ktp", headers=bearer(BOOTSTRAP))
        assert [r["ticket"] for r in listed.json()] == [ticket]


# -- attachments -------------------------------------------------------------------------


async def test_api_attachments_are_downloads_that_are_never_sniffed(office: Office) -> None:
    ticket = await office.request()
    async with office.client() as client:
        detail = (await client.get(f"/api/requests/{ticket}", headers=bearer(BOOTSTRAP))).json()
        [attachment] = detail["attachment_list"]
        file = await client.get(attachment["url"], headers=bearer(BOOTSTRAP))
        assert file.status_code == 200
        assert file.headers["x-content-type-options"] == "nosniff"
        disposition = file.headers["content-disposition"]
        assert disposition.startswith("attachment;")
        assert f'filename="{ticket}-{attachment["sha256"][:12]}.jpg"' in disposition
        assert file.headers["cache-control"] == "private, no-store"
