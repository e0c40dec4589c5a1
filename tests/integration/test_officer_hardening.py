"""The officer web application under hostile input: a CSRF field that is not ASCII,
identifiers with a NUL byte, guessed tokens, oversized bodies, a cookie copied before
logout, attachments a browser could sniff. Each answer is a precise 4xx, never a 500."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from adminduk.officer_app import create_app
from services.verification.adapters.throttle import Throttle
from services.verification.main import build
from shared.config import Settings
from shared.eventstore.store import EventStore
from shared.mediastore import FileMediaStore
from tests.integration.test_console import (
    BOOTSTRAP,
    Office,
    csrf_of,
    login,
)
from tests.integration.test_officer_rules import bearer

pytestmark = pytest.mark.integration


@pytest.fixture
async def office(event_store: EventStore, tmp_path: Path) -> AsyncIterator[Office]:
    settings = Settings(data_dir=tmp_path / "data", bootstrap_token=SecretStr(BOOTSTRAP))
    verification, desk = build(settings, event_store)
    app = create_app(settings, event_store, desk)
    yield Office(
        settings, event_store, verification, desk, app, FileMediaStore(settings.data_dir / "media")
    )


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


async def test_a_nul_byte_in_a_webhook_subscription_is_a_422(office: Office) -> None:
    async with office.client() as client:
        for body in (
            {"url": "https://example.com/\u0000"},
            {"url": "https://example.com/x", "description": "a\u0000b"},
            {"url": "https://example.com/x", "description": "\u202eevil"},
        ):
            answer = await client.post("/api/webhooks", json=body, headers=bearer(BOOTSTRAP))
            assert answer.status_code == 422, (body, answer.text)
        listed = await client.get("/api/webhooks", headers=bearer(BOOTSTRAP))
        assert listed.json() == []


# -- guessed tokens, guessed logins, large bodies -----------------------------------------


async def test_wrong_bearer_tokens_are_throttled_per_client_address(office: Office) -> None:
    limit = Throttle().limit
    async with client_from(office, "203.0.113.7") as attacker:
        for _ in range(limit):
            answer = await attacker.get("/api/requests", headers=bearer("adk_guess"))
            assert answer.status_code == 401
        blocked = await attacker.get("/api/requests", headers=bearer("adk_guess"))
        assert blocked.status_code == 429
        assert 0 < int(blocked.headers["retry-after"]) <= 60
        # Even the right token waits: the address is refused, not the guess.
        assert (await attacker.get("/api/requests", headers=bearer(BOOTSTRAP))).status_code == 429
        # And the console's login counts the same failures.
        page = await attacker.get("/console/login")
        assert page.status_code == 200
        answer = await attacker.post(
            "/console/login", data={"csrf": csrf_of(page.text), "token": BOOTSTRAP}
        )
        assert answer.status_code == 429
        assert "retry-after" in answer.headers
    async with client_from(office, "198.51.100.9") as officer:
        answer = await officer.get("/api/requests", headers=bearer(BOOTSTRAP))
        assert answer.status_code == 200
    assert 429 in documented(office.app, "GET", "/api/requests")


async def test_console_logins_are_throttled_per_client_address(office: Office) -> None:
    limit = Throttle().limit
    async with client_from(office, "203.0.113.8") as attacker:
        for _ in range(limit):
            assert (await login(attacker, "adk_guess")).status_code == 401
        refused = await login(attacker, BOOTSTRAP)
        assert refused.status_code == 429
        assert int(refused.headers["retry-after"]) > 0
        assert "Terlalu banyak" in refused.text
        assert (await attacker.get("/api/requests", headers=bearer(BOOTSTRAP))).status_code == 429
    async with client_from(office, "198.51.100.10") as officer:
        assert (await login(officer, BOOTSTRAP)).status_code == 303


def test_the_throttle_keeps_a_bounded_number_of_addresses() -> None:
    now = [1000.0]
    throttle = Throttle(limit=3, window=60, max_addresses=100, clock=lambda: now[0])
    for n in range(10_000):
        throttle.failed(f"10.0.{n // 256}.{n % 256}")
    assert len(throttle) <= 100
    for _ in range(3):
        throttle.failed("192.0.2.1")
    assert throttle.retry_after("192.0.2.1") == 60
    now[0] += 59.5
    assert throttle.retry_after("192.0.2.1") == 1
    now[0] += 1
    assert throttle.retry_after("192.0.2.1") == 0
    assert throttle.retry_after("192.0.2.2") == 0


async def raw_post(app: Any, path: str, headers: list[tuple[bytes, bytes]], body: bytes) -> Any:
    """POST through the ASGI interface itself, recording how much of the body was read."""
    read = {"bytes": 0, "calls": 0}
    sent: list[dict[str, Any]] = []
    chunks = [body[i : i + 65536] for i in range(0, len(body), 65536)] or [b""]

    async def receive() -> dict[str, Any]:
        read["calls"] += 1
        if not chunks:
            return {"type": "http.disconnect"}
        chunk = chunks.pop(0)
        read["bytes"] += len(chunk)
        return {"type": "http.request", "body": chunk, "more_body": bool(chunks)}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"console.test"), *headers],
        "client": ("192.0.2.50", 40000),
        "server": ("console.test", 80),
    }
    await app(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    return start["status"], dict(start["headers"]), read


async def test_a_request_is_authenticated_before_its_body_is_read(office: Office) -> None:
    ticket = await office.request()
    big = json.dumps({"reason": "x" * 2_000_000}).encode()
    length = [(b"content-type", b"application/json")]
    status, _, read = await raw_post(office.app, f"/api/requests/{ticket}/reject", length, big)
    assert status == 401
    assert read["bytes"] == 0
    wrong = [*length, (b"authorization", b"Bearer adk_wrong")]
    status, _, read = await raw_post(office.app, f"/api/requests/{ticket}/reject", wrong, big)
    assert status == 401
    assert read["bytes"] == 0


async def test_bodies_over_the_limit_are_refused_with_413(office: Office) -> None:
    ticket = await office.request()
    auth = [
        (b"content-type", b"application/json"),
        (b"authorization", f"Bearer {BOOTSTRAP}".encode()),
    ]
    big = json.dumps({"reason": "x" * 2_000_000}).encode()
    # Without a Content-Length (chunked): counted as it arrives, never read to the end.
    status, _, read = await raw_post(office.app, f"/api/requests/{ticket}/reject", auth, big)
    assert status == 413
    assert read["bytes"] < 2 * 65536 + 65536
    async with office.client() as client:
        answer = await client.post(
            f"/api/requests/{ticket}/reject", content=big, headers={**bearer(BOOTSTRAP)}
        )
        assert answer.status_code == 413
        assert answer.json()["detail"].startswith("request body larger than")
        assert 413 in documented(office.app, "POST", "/api/requests/{ticket}/reject")
        # The console's forms have the same limit.
        page = await client.get("/console/login")
        big_form = await client.post(
            "/console/login", data={"csrf": csrf_of(page.text), "token": "x" * 2_000_000}
        )
        assert big_form.status_code == 413
    assert (await office.state(ticket)).state.value == "in_queue"


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
