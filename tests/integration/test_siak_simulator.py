"""The SIAK adapter against the SIAK simulator over real HTTP: numbers, idempotency, outages,
lost answers, time-outs and a restart of SIAK."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from services.issuance.adapters.siak import (
    Breaker,
    BreakingSiak,
    HttpSiak,
    SiakCircuitOpenError,
    SiakRejectedError,
    SiakSubmission,
    SiakUnavailableError,
)
from services.simulator.siak import SiakSimulator, siak_router
from shared.config import load_settings
from shared.documents import DocType
from shared.runtime.processes import free_port
from shared.runtime.service import serve_http

pytestmark = pytest.mark.integration

HOST = "127.0.0.1"
TOKEN = "test-siak-token"
# 01:00 UTC is 08:00 in Jakarta, on 7 December 2026.
NOW = datetime(2026, 12, 7, 1, 0, tzinfo=UTC)


def submission(key: str = "key-1", ticket: str = "T-0001", doc_type: str = "KTP") -> SiakSubmission:
    return SiakSubmission(
        idempotency_key=key,
        ticket=ticket,
        doc_type=DocType(doc_type),
        region_code="3603",
        kecamatan_code="360301",
        applicant={"nik": "3603015708990001", "no_kk": "3603012001180003", "nama": "SITI"},
    )


def simulator(**options: Any) -> SiakSimulator:
    options.setdefault("now", lambda: NOW)
    return SiakSimulator(TOKEN, **options)


def app_of(sim: SiakSimulator) -> FastAPI:
    app = FastAPI()
    app.include_router(siak_router(sim))
    return app


@contextlib.asynccontextmanager
async def serving(sim: SiakSimulator, port: int | None = None) -> AsyncIterator[str]:
    """The simulator on a real port; yields the base URL of its SIAK API."""
    port = port or free_port()
    stop = asyncio.Event()
    task = asyncio.create_task(serve_http(app_of(sim), HOST, port, stop))
    base = f"http://{HOST}:{port}"
    async with httpx.AsyncClient(trust_env=False) as probe:
        for _ in range(250):
            with contextlib.suppress(httpx.TransportError):
                if (await probe.get(f"{base}/siak/_sim/stats")).status_code == 200:
                    break
            await asyncio.sleep(0.02)
        else:
            raise AssertionError(f"{base} did not come up")
    try:
        yield f"{base}/siak/v1"
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


@contextlib.asynccontextmanager
async def siak_at(
    base_url: str, *, token: str = TOKEN, timeout: float = 5.0
) -> AsyncIterator[HttpSiak]:
    siak = HttpSiak(base_url, token, timeout)
    try:
        yield siak
    finally:
        await siak.aclose()


@contextlib.asynccontextmanager
async def running(sim: SiakSimulator, **client: Any) -> AsyncIterator[HttpSiak]:
    async with serving(sim) as base_url, siak_at(base_url, **client) as siak:
        yield siak


async def test_issues_numbered_documents() -> None:
    sim = simulator()
    async with running(sim) as siak:
        first = await siak.submit(submission("key-1", "T-1"))
        second = await siak.submit(submission("key-2", "T-2"))
        other = await siak.submit(submission("key-3", "T-3", doc_type="SKPWNI"))
    assert first.document_number == "KTP/3603/07122026/0001"
    assert second.document_number == "KTP/3603/07122026/0002"
    assert other.document_number == "SKPWNI/3603/07122026/0001"
    assert first.issued_at == NOW
    assert sim.stats["accepted"] == 3


async def test_same_key_twice_gives_the_same_document() -> None:
    sim = simulator()
    async with running(sim) as siak:
        first = await siak.submit(submission())
        again = await siak.submit(submission())
        with pytest.raises(SiakRejectedError) as raised:
            await siak.submit(submission(ticket="T-9999"))
    assert again == first
    assert raised.value.status == 409
    assert len(sim.documents) == 1
    assert sim.documents["key-1"].submissions == 2
    assert (sim.stats["accepted"], sim.stats["replayed"], sim.stats["conflicts"]) == (1, 1, 1)


async def test_forced_outage_then_recovery() -> None:
    sim = simulator()
    async with serving(sim) as base_url, siak_at(base_url) as siak:
        control = base_url.removesuffix("/v1") + "/_sim"
        async with httpx.AsyncClient(trust_env=False) as http:
            answer = await http.post(f"{control}/outage", json={"down": True})
            assert answer.json() == {"down": True, "forced": True}
            with pytest.raises(SiakUnavailableError) as raised:
                await siak.submit(submission())
            assert raised.value.status == 503
            assert "pemeliharaan" in str(raised.value)

            await http.post(f"{control}/outage", json={"down": False})
            receipt = await siak.submit(submission())
            documents = (await http.get(f"{control}/documents")).json()
            stats = (await http.get(f"{control}/stats")).json()
    assert [document["document_number"] for document in documents] == [receipt.document_number]
    assert documents[0]["submissions"] == 1
    assert stats["failed_outage"] == 1
    assert stats["accepted"] == 1


async def test_outage_window_answers_503_with_retry_after() -> None:
    clock = [NOW]
    sim = simulator(outages="2026-12-07T07:00+07:00/PT2H", now=lambda: clock[0])
    async with running(sim) as siak:
        with pytest.raises(SiakUnavailableError) as raised:
            await siak.submit(submission())
        assert raised.value.retry_after == timedelta(hours=1)
        clock[0] = NOW + timedelta(hours=3)
        assert (await siak.submit(submission())).issued_at == NOW + timedelta(hours=3)


async def test_lost_reply_then_retry_with_the_same_key() -> None:
    sim = simulator(lost_reply_rate=1.0)
    async with running(sim) as siak:
        with pytest.raises(SiakUnavailableError) as raised:
            await siak.submit(submission())
        assert raised.value.status == 504
        assert len(sim.documents) == 1  # the work was done, only the answer was lost

        sim.lost_reply_rate = 0.0
        receipt = await siak.submit(submission())
    assert receipt.document_number == sim.documents["key-1"].document_number
    assert len(sim.documents) == 1
    assert (sim.stats["lost_replies"], sim.stats["replayed"]) == (1, 1)


async def test_random_failures_do_no_work() -> None:
    sim = simulator(error_rate=1.0)
    async with running(sim) as siak:
        for _ in range(4):
            with pytest.raises(SiakUnavailableError) as raised:
                await siak.submit(submission())
            assert raised.value.status in {500, 503}
    assert sim.documents == {}
    assert sim.stats["failed_random"] == 4


async def test_wrong_token_is_rejected() -> None:
    sim = simulator()
    async with running(sim, token="not-the-token") as siak:
        with pytest.raises(SiakRejectedError) as raised:
            await siak.submit(submission())
    assert raised.value.status == 401
    assert sim.documents == {}


async def test_real_timeout_is_unavailable_and_the_retry_finds_the_document() -> None:
    sim = simulator(latency=timedelta(milliseconds=400))
    async with running(sim, timeout=0.1) as siak:
        with pytest.raises(SiakUnavailableError, match="time-out"):
            await siak.submit(submission())
        # SIAK finishes the work after the client gave up.
        for _ in range(100):
            if sim.documents:
                break
            await asyncio.sleep(0.02)
        sim.latency = timedelta(0)
        receipt = await siak.submit(submission())
    assert receipt.document_number == "KTP/3603/07122026/0001"
    assert len(sim.documents) == 1


async def test_journal_keeps_keys_across_a_restart(tmp_path: Path) -> None:
    journal = tmp_path / "siak" / "journal.jsonl"
    port = free_port()
    async with serving(simulator(journal=journal), port) as base_url, siak_at(base_url) as siak:
        first = await siak.submit(submission("key-1", "T-1"))
    assert "3603015708990001" not in journal.read_text()  # no personal data kept

    restarted = simulator(journal=journal)
    async with serving(restarted, port) as base_url, siak_at(base_url) as siak:
        again = await siak.submit(submission("key-1", "T-1"))
        second = await siak.submit(submission("key-2", "T-2"))
    assert again == first
    assert second.document_number == "KTP/3603/07122026/0002"
    assert list(restarted.documents) == ["key-1", "key-2"]
    assert len(journal.read_text().splitlines()) == 2


def test_journal_drops_a_torn_last_line_and_refuses_corruption(tmp_path: Path) -> None:
    journal = tmp_path / "journal.jsonl"
    line = (
        '{"idempotency_key":"key-1","ticket":"T-1","doc_type":"KIA","region_code":"3603",'
        '"document_number":"KIA/3603/07122026/0007","created_at":"2026-12-07T01:00:00+00:00"}\n'
    )
    journal.write_text(line + '{"idempotency_key":"key-2","tic')
    sim = simulator(journal=journal)
    assert list(sim.documents) == ["key-1"]
    assert journal.read_text() == line

    journal.write_text("not json\n" + line)
    with pytest.raises(ValueError, match="line 1"):
        simulator(journal=journal)


async def test_breaker_stops_calling_a_down_siak_and_probes_it_back() -> None:
    sim = simulator()
    sim.forced_down = True
    clock = [0.0]
    async with running(sim) as http:
        siak = BreakingSiak(http, Breaker(2, timedelta(seconds=30), now=lambda: clock[0]))
        for _ in range(2):
            with pytest.raises(SiakUnavailableError):
                await siak.submit(submission())
        with pytest.raises(SiakCircuitOpenError):
            await siak.submit(submission())
        assert sim.stats["failed_outage"] == 2

        sim.forced_down = False
        clock[0] = 30.0
        receipt = await siak.submit(submission())
    assert siak.breaker.state == "closed"
    assert receipt.document_number == "KTP/3603/07122026/0001"


async def test_unreachable_siak_is_unavailable() -> None:
    async with siak_at(f"http://{HOST}:{free_port()}/siak/v1") as siak:
        with pytest.raises(SiakUnavailableError, match="transport"):
            await siak.submit(submission())


async def test_settings_point_the_adapter_at_the_simulator(tmp_path: Path) -> None:
    port = free_port()
    settings = load_settings(
        data_dir=tmp_path,
        host=HOST,
        simulator_port=port,
        siak_token=TOKEN,
        siak_sim_latency=timedelta(milliseconds=1),
        siak_sim_outages="2027-01-01T00:00+07:00/PT1H",
    )
    sim = SiakSimulator.from_settings(settings, now=lambda: NOW)
    assert sim.latency == timedelta(milliseconds=1)
    assert len(sim.outages) == 1
    siak = HttpSiak.from_settings(settings)
    async with serving(sim, port):
        try:
            receipt = await siak.submit(submission())
        finally:
            await siak.aclose()
    assert re.fullmatch(r"KTP/3603/07122026/0001", receipt.document_number)


# --- the wire, checked without a socket -----------------------------------------------------


@pytest.fixture
async def wire() -> AsyncIterator[tuple[httpx.AsyncClient, SiakSimulator]]:
    sim = simulator()
    transport = httpx.ASGITransport(app=app_of(sim))
    async with httpx.AsyncClient(transport=transport, base_url="http://siak") as client:
        yield client, sim


GOOD_BODY = {"ticket": "T-1", "doc_type": "KK", "region_code": "3603"}
HEADERS = {"Authorization": f"Bearer {TOKEN}", "Idempotency-Key": "key-1"}


@pytest.mark.parametrize(
    ("headers", "content", "status", "words"),
    [
        ({"Authorization": "Bearer nope"}, GOOD_BODY, 401, "token"),
        ({"Idempotency-Key": ""}, GOOD_BODY, 400, "Idempotency-Key"),
        ({}, {"doc_type": "KK", "region_code": "3603"}, 400, "ticket"),
        ({}, {"ticket": "T-1", "region_code": "3603"}, 400, "doc_type"),
        ({}, "{not json", 422, "JSON"),
        ({}, ["a list"], 422, "objek"),
        ({}, GOOD_BODY | {"doc_type": "SIM"}, 422, "doc_type"),
        ({}, GOOD_BODY | {"region_code": "36"}, 422, "region_code"),
    ],
)
async def test_bad_requests_are_refused_in_words(
    wire: tuple[httpx.AsyncClient, SiakSimulator],
    headers: dict[str, str],
    content: Any,
    status: int,
    words: str,
) -> None:
    client, sim = wire
    raw = content if isinstance(content, str) else None
    answer = await client.post(
        "/siak/v1/dokumen",
        headers=HEADERS | headers,
        content=raw,
        json=None if raw is not None else content,
    )
    assert answer.status_code == status
    assert words in answer.json()["error"]
    assert sim.documents == {}


async def test_adapter_over_an_injected_client(
    wire: tuple[httpx.AsyncClient, SiakSimulator],
) -> None:
    client, _ = wire
    siak = HttpSiak("http://siak/siak/v1/", TOKEN, 1.0, client=client)
    receipt = await siak.submit(submission(doc_type="AKTAMATI"))
    await siak.aclose()  # the client stays open: it belongs to the caller
    answer = await client.get("/siak/_sim/documents")
    assert answer.json()[0]["document_number"] == receipt.document_number
    assert receipt.document_number.startswith("AKTAMATI/3603/07122026/")
