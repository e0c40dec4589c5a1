"""The standing fuzz suite of the officer web application, on a real Postgres.

* The officer API, served over HTTP like in production, against its own ``/openapi.json``
  (schemathesis): valid and invalid cases of every operation, as an admin and as an
  operator. Never a 5xx, and every status code it answers is one its OpenAPI document
  lists.
* The console's forms and filters with hostile values (NUL bytes, any unicode, lone
  surrogates' neighbours, huge strings; hypothesis): never a 500.

Bounded in time: a few examples per operation and role (the suite runs on every
``make test``; a new failure is a bug to fix, with the case printed to reproduce it).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass
from ipaddress import IPv4Network
from pathlib import Path
from typing import Any, Final
from urllib.parse import quote

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from pydantic import SecretStr
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import status_code_conformance

from adminduk.officer_app import create_app
from services.verification.adapters.api import BOOTSTRAP_OFFICER
from services.verification.domain.officers import Role
from services.verification.main import build
from shared.config import Settings
from shared.eventstore.store import EventStore
from shared.mediastore import FileMediaStore
from shared.runtime.processes import free_port
from shared.runtime.service import serve_http
from tests.integration.test_console import (
    BALARAJA,
    BOOTSTRAP,
    Office,
    csrf_of,
    signed_in,
)
from tests.integration.test_officer_rules import complaint

pytestmark = pytest.mark.integration

WEBHOOK_NETWORK = "203.0.113.0/24"

API_EXAMPLES = 8
"""Examples per operation, generation mode and role: about 1,200 calls in all."""

FORM_EXAMPLES = 60


@pytest.fixture
async def office(event_store: EventStore, tmp_path: Path) -> AsyncIterator[Office]:
    settings = Settings(
        data_dir=tmp_path / "data",
        bootstrap_token=SecretStr(BOOTSTRAP),
        # The seed's webhook URL (a documentation address, never contacted: no delivery
        # runs here) is allowed, so hostile values reach the subscription's table.
        webhook_allowed_networks=[IPv4Network(WEBHOOK_NETWORK)],
    )
    verification, desk = build(settings, event_store)
    app = create_app(settings, event_store, desk)
    office = Office(
        settings, event_store, verification, desk, app, FileMediaStore(settings.data_dir / "media")
    )
    ticket = await office.request()
    await complaint(office, "ADU-FUZZ0001", ticket)
    yield office


@dataclass(frozen=True)
class Served:
    base_url: str


@contextlib.asynccontextmanager
async def serving(app: Any) -> AsyncIterator[Served]:
    """The app on a real port, as ``adminduk run`` serves it (uvicorn, this event loop)."""
    port = free_port()
    stop = asyncio.Event()
    task = asyncio.create_task(serve_http(app, "127.0.0.1", port, stop))
    base_url = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient(base_url=base_url) as client:
        for _ in range(100):
            with contextlib.suppress(httpx.TransportError):
                if (await client.get("/openapi.json")).status_code == 200:
                    break
            await asyncio.sleep(0.05)
    try:
        yield Served(base_url)
    finally:
        stop.set()
        await asyncio.wait_for(task, 15)


HOSTILE_TEXT = st.sampled_from(
    [
        "\x00",
        "a\x00b",
        "\x07\x1b[31m",
        "\u202e\ufeff\u200b",
        "é€😀",
        "\x7f",
        "%00",
        "'; DROP TABLE officers; --",
        "{{7*7}}<script>",
        "x" * 3_000,
    ]
)

MODES: Final = (
    ("positive", schemathesis.GenerationMode.POSITIVE, False),
    ("negative", schemathesis.GenerationMode.NEGATIVE, False),
    # Valid cases whose strings are, here and there, replaced or spiked with hostile text.
    ("hostile", schemathesis.GenerationMode.POSITIVE, True),
)


def hostile(value: Any, data: st.DataObject) -> Any:
    """``value`` with some of its strings made hostile (the choice is hypothesis's)."""
    if isinstance(value, str):
        return data.draw(
            st.one_of(
                st.just(value),
                HOSTILE_TEXT,
                HOSTILE_TEXT.map(lambda spike: value + spike),
            )
        )
    if isinstance(value, list):
        return [hostile(item, data) for item in value]
    if isinstance(value, dict):
        return {key: hostile(item, data) for key, item in value.items()}
    return value


@dataclass(frozen=True)
class Seeds:
    """Valid bodies and identifiers that exist, for the hostile mode to spike: random
    strings rarely get past the first check (a URL, a known ticket) to where a NUL byte
    would reach Postgres."""

    bodies: dict[str, list[Any]]
    path_parameters: dict[str, str]


def seeds_for(ticket: str, complaint: str, operator_id: str) -> Seeds:
    return Seeds(
        bodies={
            "POST /api/webhooks": [
                {"url": "https://203.0.113.10/adminduk", "description": "Dinas Sosial"}
            ],
            "POST /api/officers": [
                {"name": "Dewi Sari", "role": "supervisor", "kecamatan": []},
                {"name": "Budi", "role": "operator", "kecamatan": [BALARAJA]},
            ],
            "POST /api/requests/{ticket}/reject": [{"reason": "Foto KK tidak terbaca"}],
            "POST /api/requests/{ticket}/request-changes": [
                {"reasons": ["Foto KK tidak terbaca", "NIK tidak cocok"]}
            ],
            "POST /api/requests/{ticket}/assign": [{"officer_id": operator_id}],
            "POST /api/complaints/{ticket}/answer": [{"answer": "Sedang kami periksa."}],
        },
        path_parameters={"/api/requests/": ticket, "/api/complaints/": complaint},
    )


def seeded(case: schemathesis.Case[Any], seeds: Seeds, data: st.DataObject) -> None:
    """Maybe a seed's body and an existing ticket in ``case``; then some strings spiked."""
    label = case.operation.label
    if label in seeds.bodies and data.draw(st.booleans()):
        case.body = data.draw(st.sampled_from(seeds.bodies[label]))
    if case.path_parameters and "ticket" in case.path_parameters and data.draw(st.booleans()):
        for prefix, ticket in seeds.path_parameters.items():
            if case.operation.path.startswith(prefix):
                case.path_parameters = {**case.path_parameters, "ticket": ticket}
    if isinstance(case.body, dict | list):
        case.body = hostile(case.body, data)


def fuzz_api(base_url: str, tokens: dict[str, str], seeds: Seeds) -> list[str]:
    """Every operation of the served OpenAPI document, every generation mode, every role:
    the failures, in words (run in a thread: the app is served by the test's loop)."""
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json", timeout=10)
    failures: list[str] = []
    checks = [not_a_server_error, status_code_conformance]
    operations = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result.err()  # the document itself is valid
        operations.append(result.ok())
    assert len(operations) >= 20, [op.label for op in operations]
    for operation in operations:
        for label, mode, mutate in MODES:
            for role, token in tokens.items():

                @settings(
                    max_examples=API_EXAMPLES,
                    deadline=None,
                    database=None,
                    phases=[Phase.explicit, Phase.generate],
                    suppress_health_check=list(HealthCheck),
                )
                @given(case=operation.as_strategy(generation_mode=mode), data=st.data())
                def check(case: schemathesis.Case[Any], data: st.DataObject) -> None:
                    if mutate:  # noqa: B023 - run at once
                        seeded(case, seeds, data)
                    headers = {"Authorization": f"Bearer {token}"}  # noqa: B023 - run at once
                    response = case.call(base_url=base_url, headers=headers, timeout=10)
                    case.validate_response(response, checks=checks)

                try:
                    check()
                except Unsatisfiable:
                    # No invalid input exists (an operation without parameters or body).
                    assert mode is schemathesis.GenerationMode.NEGATIVE, operation.label
                except (Exception, BaseExceptionGroup) as error:  # noqa: BLE001 - all reported
                    failures.append(f"{role} {label} {operation.label}: {error}")
    return failures


async def test_the_officer_api_answers_hostile_calls_as_its_openapi_document_says(
    office: Office,
) -> None:
    account, operator = await office.officer("Budi", Role.OPERATOR, (BALARAJA,))
    [item] = await office.desk.list_requests(BOOTSTRAP_OFFICER)
    seeds = seeds_for(item.ticket, "ADU-FUZZ0001", account.id)
    async with serving(office.app) as served:
        failures = await asyncio.to_thread(
            fuzz_api, served.base_url, {"admin": BOOTSTRAP, "operator": operator}, seeds
        )
    assert not failures, "\n\n".join(failures)


# -- the console ---------------------------------------------------------------------------


HOSTILE = st.one_of(
    st.text(max_size=50),
    st.text(st.characters(codec="utf-8"), max_size=200),
    st.sampled_from(
        [
            "\x00",
            "a\x00b",
            "KTP-\x00ABCDEF",
            "é€😀" * 20,
            "\u202e\ufeff\u200b",
            "../../etc/passwd",
            "<script>alert(1)</script>",
            "x" * 5_000,
            "é" * 40_000,  # past the body limit once encoded
            "%00",
            "",
        ]
    ),
)


ADDRESSES = itertools.count()


def path_part(value: str) -> str:
    """``value`` in a path, cut to what a browser would send at all."""
    return quote(value[:1000], safe="") or "x"


@settings(
    max_examples=FORM_EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    value=HOSTILE,
    other=HOSTILE,
    role=st.one_of(st.sampled_from([role.value for role in Role]), HOSTILE),
    use_csrf=st.booleans(),
)
async def test_the_console_never_answers_a_hostile_form_with_a_500(
    office: Office, value: str, other: str, role: str, use_csrf: bool
) -> None:
    items = await office.desk.list_requests(BOOTSTRAP_OFFICER, limit=1)
    ticket = items[0].ticket if items else "KTP-NONE0000"
    async with signed_in(office, BOOTSTRAP) as client:
        page = await client.get("/console/supervisor")
        csrf = csrf_of(page.text) if use_csrf else value
        forms: list[tuple[str, dict[str, Any]]] = [
            (f"/console/requests/{ticket}/request-changes", {"reasons": [value], "other": other}),
            (f"/console/requests/{ticket}/reject", {"reason": value}),
            (f"/console/requests/{ticket}/assign", {"officer_id": value}),
            ("/console/supervisor/assign", {"ticket": value, "officer_id": other}),
            ("/console/officers", {"name": value, "role": role, "kecamatan": [other]}),
            ("/console/officers", {"name": other, "role": role, "kecamatan": [BALARAJA]}),
            (f"/console/officers/{path_part(value)}/disable", {}),
            ("/console/complaints/ADU-FUZZ0001/answer", {"answer": value}),
            (f"/console/complaints/{path_part(value)}/answer", {"answer": other}),
            (f"/console/requests/{path_part(value)}/claim", {}),
        ]
        for action, data in forms:
            answer = await client.post(action, data={"csrf": csrf, **data})
            assert answer.status_code < 500, (action, answer.status_code)
        for url, params in [
            ("/console", {"status": value, "kecamatan": other, "doc_type": value}),
            ("/console/complaints", {"state": value}),
            (f"/console/requests/{path_part(value)}", {}),
            (f"/console/complaints/{path_part(other)}", {}),
            (f"/console/requests/{ticket}/attachments/{path_part(value)}", {}),
            ("/console/login", {"next": value}),
        ]:
            answer = await client.get(url, params={k: v[:1000] for k, v in params.items()})
            assert answer.status_code < 500, (url, answer.status_code)
    # Each guess from its own address, or the throttle would refuse the next examples.
    address = f"10.{next(ADDRESSES) // 256 % 256}.{next(ADDRESSES) % 256}.1"
    transport = httpx.ASGITransport(app=office.app, client=(address, 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://console.test") as client:
        page = await client.get("/console/login")
        login = await client.post(
            "/console/login",
            data={"csrf": csrf_of(page.text) if use_csrf else value, "token": value, "next": other},
        )
        assert login.status_code < 500
