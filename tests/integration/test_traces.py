"""`adminduk traces TICKET` on span files written by the real exporter of real processes.

Three processes stand in for services: each sets up telemetry as a service does
(``shared.telemetry.setup_telemetry``, span files under the data folder) and, for intake and
verification, consumes through the real consumer framework (``open_resources``: the broker
with its telemetry middleware, durable consumers) behind the real outbox relay, so the trace
context travels as it does in production: event metadata, then NATS headers.

Run as ``python -m tests.integration.test_traces ROLE`` it plays one of those processes.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import Link

from adminduk.cli import main
from adminduk.ops.traces import SEARCH_GRANULE, Window, _entry_offset, collect_spans, span_files
from shared.bus import jetstream as js
from shared.bus.consumer import ConsumerSpec, HandlerContext
from shared.bus.relay import Relay
from shared.config import PROJECT_ROOT, load_settings
from shared.contracts import request_stream
from shared.eventstore.envelope import Metadata, NewEvent
from shared.eventstore.store import EventStore
from shared.runtime.service import open_resources
from shared.telemetry import _exporter, current_trace_context, setup_telemetry

TICKET = "KTP-TRACE001"
OTHER_TICKET = "KTP-TRACE002"
PHONE = "6281234567890"
"""A citizen's number: it travels in event data and (by mistake) in one span attribute,
and must never be printed."""

pytestmark = pytest.mark.integration


# -- the processes ---------------------------------------------------------------------------


async def _intake() -> None:
    """Webhook spans append the citizens' messages; the consumer gives each a ticket."""
    settings = load_settings()
    async with open_resources("intake", settings) as resources:
        handled: set[str] = set()

        async def give_ticket(context: HandlerContext) -> None:
            ticket = str(context.event.data["ticket"])
            await context.append(
                request_stream(ticket),
                [
                    NewEvent(
                        event_id=context.event_id("received"),
                        event_type="RequestReceived",
                        data={"ticket": ticket, "phone": PHONE},
                        metadata=context.metadata("system:intake"),
                    )
                ],
            )
            trace.get_current_span().set_attribute("adminduk.ticket", ticket)
            handled.add(ticket)

        resources.consumers.register(
            ConsumerSpec("trace-intake", [js.subject_filter("citizen", "WhatsAppMessageReceived")]),
            give_ticket,
        )
        await resources.consumers.start(resources.jetstream)
        tracer = trace.get_tracer("adminduk.test")
        for ticket in (TICKET, OTHER_TICKET):
            with tracer.start_as_current_span(
                "whatsapp webhook",
                attributes={"http.response.status_code": 200, "adminduk.phone": PHONE},
            ):
                await resources.store.append(
                    f"citizen-{ticket.lower()}",
                    [
                        NewEvent(
                            event_type="WhatsAppMessageReceived",
                            data={"ticket": ticket, "phone": PHONE},
                            metadata=Metadata(trace=current_trace_context(), actor="citizen"),
                        )
                    ],
                )
        await _until(lambda: len(handled) == 2)


async def _verification() -> None:
    """The automatic checks as a consumer; then an officer acts on one request, in a trace of
    their own linked to the one the request arrived in."""
    settings = load_settings()
    async with open_resources("verification", settings) as resources:
        checked: set[str] = set()

        async def check(context: HandlerContext) -> None:
            await context.append(
                context.event.stream_id,
                [
                    NewEvent(
                        event_id=context.event_id("checked"),
                        event_type="RequestChecked",
                        data={"passed": True},
                        metadata=context.metadata("system:verification"),
                    )
                ],
            )
            checked.add(context.event.stream_id)

        resources.consumers.register(
            ConsumerSpec("trace-checks", [js.subject_filter("request", "RequestReceived")]), check
        )
        await resources.consumers.start(resources.jetstream)
        await _until(lambda: len(checked) == 2)

        store = resources.store
        events = await store.read_stream(request_stream(TICKET))
        arrival = trace.get_current_span(propagate.extract(events[0].metadata.trace))
        link = [Link(arrival.get_span_context())]
        tracer = trace.get_tracer("adminduk.test")
        # Looking at a request writes nothing: found through its link alone.
        with tracer.start_as_current_span("officer look", links=link):
            pass
        with tracer.start_as_current_span(
            "officer approve", links=link, attributes={"adminduk.ticket": TICKET}
        ):
            await store.append(
                request_stream(TICKET),
                [
                    NewEvent(
                        event_type="RequestVerified",
                        data={"officer": "officer-1"},
                        metadata=Metadata(trace=current_trace_context(), actor="officer:1"),
                    )
                ],
            )


def _issuance() -> None:
    """SIAK calls of a worker: root spans found by their ticket attribute alone."""
    tracer = trace.get_tracer("adminduk.test")
    for ticket in (TICKET, OTHER_TICKET):
        with tracer.start_as_current_span("siak.submit", attributes={"adminduk.ticket": ticket}):
            time.sleep(0.05)


async def _until(done: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise TimeoutError("the messages did not arrive")
        await asyncio.sleep(0.02)


def _play(role: str) -> None:
    telemetry = setup_telemetry(role, load_settings().data_dir)
    try:
        if role == "intake":
            asyncio.run(_intake())
        elif role == "verification":
            asyncio.run(_verification())
        else:
            _issuance()
    finally:
        telemetry.shutdown()


async def _run_process(role: str, database_url: str, nats_url: str, data_dir: Path) -> None:
    environment = {key: value for key, value in os.environ.items() if not key.startswith("OTEL_")}
    environment.update(
        ADMINDUK_DATABASE_URL=database_url,
        ADMINDUK_NATS_URL=nats_url,
        ADMINDUK_DATA_DIR=str(data_dir),
        OTEL_METRICS_EXPORTER="none",
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.integration.test_traces",
        role,
        cwd=PROJECT_ROOT,
        env=environment,
        stderr=asyncio.subprocess.PIPE,
    )
    _, errors = await asyncio.wait_for(process.communicate(), 90)
    assert process.returncode == 0, f"{role} failed:\n{errors.decode()[-3000:]}"


@pytest.fixture
async def traced_requests(
    database_url: str,
    nats_url: str,
    running_relay: Relay,
    data_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Path:
    """Two requests that went through intake, verification and issuance, with span files."""
    for role in ("intake", "verification", "issuance"):
        await _run_process(role, database_url, nats_url, data_dir)
    monkeypatch.setenv("ADMINDUK_DATABASE_URL", database_url)
    for variable in ("OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_ENDPOINT"):
        monkeypatch.delenv(variable, raising=False)
    return data_dir


async def _traces(*argv: str) -> int:
    # The command runs its own event loop, as it does from a shell.
    return await asyncio.to_thread(main, ["traces", *argv])


def _line(lines: list[str], text: str) -> int:
    found = [index for index, line in enumerate(lines) if text in line]
    assert len(found) == 1, f"{text!r} on lines {found} of:\n" + "\n".join(lines)
    return found[0]


def _indent(line: str) -> int:
    """Where the span's name starts in the tree column."""
    tree = line[len("  ") + 12 + 2 + 10 + 2 + 6 + 2 + 13 + 2 :]
    return len(tree) - len(tree.lstrip(" │├└─"))


# -- the command on a real path --------------------------------------------------------------


async def test_the_tree_shows_the_path_across_services_in_order(
    traced_requests: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await _traces(TICKET, "--data-dir", str(traced_requests)) == 0
    output = capsys.readouterr().out
    lines = output.splitlines()

    webhook = _line(lines, "whatsapp webhook")
    intake = _line(lines, "trace-intake WhatsAppMessageReceived")
    checks = _line(lines, "trace-checks RequestReceived")
    approve = _line(lines, "officer approve")
    look = _line(lines, "officer look")
    siak = _line(lines, "siak.submit")
    # The request's trace: webhook (intake) > consumer (intake) > checks (verification).
    assert webhook < intake < checks
    assert _indent(lines[webhook]) < _indent(lines[intake]) < _indent(lines[checks])
    assert " intake " in lines[webhook] and " intake " in lines[intake]
    assert " verification " in lines[checks]
    assert f"adminduk.ticket={TICKET}" in lines[checks]
    assert "wrote RequestReceived (request v1)" in lines[intake + 1]
    assert "wrote RequestChecked (request v2)" in lines[checks + 1]
    # The officer's traces come later, as traces of their own that link to the first.
    request_trace = lines[webhook - 2].split()[1]
    assert lines[approve - 2].startswith("trace ")
    assert f"links to {request_trace[:8]}" in lines[approve - 2]
    assert "wrote RequestVerified (request v3)" in lines[approve + 1]
    assert webhook < look < approve < siak
    assert " issuance " in lines[siak]
    assert sum(line.startswith("trace ") for line in lines) == 4
    # Nothing of the other request, and no personal data, whatever a span carried.
    assert OTHER_TICKET not in output
    assert PHONE not in output and "adminduk.phone" not in output


async def test_json_nests_the_spans_with_offsets_and_durations(
    traced_requests: Path, event_store: EventStore, capsys: pytest.CaptureFixture[str]
) -> None:
    # A later event whose spans never reached these files (exported elsewhere, say).
    lost = "ab" * 16
    await event_store.append(
        request_stream(TICKET),
        [
            NewEvent(
                event_type="RequestCancelled",
                data={},
                metadata=Metadata(trace={"traceparent": f"00-{lost}-{'cd' * 8}-01"}),
            )
        ],
    )
    assert await _traces(TICKET, "--json", "--data-dir", str(traced_requests)) == 0
    document = json.loads(capsys.readouterr().out)

    assert document["ticket"] == TICKET
    traces = document["traces"]
    assert [t["offset_ms"] for t in traces] == sorted(t["offset_ms"] for t in traces)
    first = traces[0]
    assert first["offset_ms"] == 0
    [webhook] = first["roots"]
    [intake] = webhook["children"]
    [checks] = intake["children"]
    assert (webhook["service"], intake["service"], checks["service"]) == (
        "intake",
        "intake",
        "verification",
    )
    assert webhook["offset_ms"] <= intake["offset_ms"] <= checks["offset_ms"]
    assert checks["parent_id"] == intake["span_id"]
    assert intake["wrote"] == [{"event_type": "RequestReceived", "stream": "request", "version": 1}]
    linked = [t for t in traces if t["links_to"] == [first["trace_id"]]]
    assert sorted(t["roots"][0]["name"] for t in linked) == ["officer approve", "officer look"]
    [siak] = [t["roots"][0] for t in traces if t["roots"][0]["name"] == "siak.submit"]
    assert siak["duration_ms"] >= 50  # it slept 50 ms
    assert "adminduk.phone" not in json.dumps(document)
    assert document["missing_traces"] == [lost]


async def test_an_unknown_ticket_is_refused_clearly(
    database_url: str,
    data_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("ADMINDUK_DATABASE_URL", database_url)
    assert await _traces("KTP-NOSUCH01", "--data-dir", str(data_dir)) == 1
    captured = capsys.readouterr()
    assert "unknown ticket KTP-NOSUCH01" in captured.err
    assert captured.out == ""
    assert await _traces("not a ticket!", "--data-dir", str(data_dir)) == 2
    assert "is not a ticket" in capsys.readouterr().err


async def test_an_unreachable_database_is_said_without_its_password(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ADMINDUK_DATABASE_URL", "postgresql://adminduk:s3cret@127.0.0.1:1/x")
    assert await _traces(TICKET, "--data-dir", str(data_dir)) == 1
    error = capsys.readouterr().err
    assert "cannot read the event store" in error
    assert "s3cret" not in error


async def _request_with_a_trace(store: EventStore) -> str:
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("whatsapp webhook") as span:
        await store.append(
            request_stream(TICKET),
            [
                NewEvent(
                    event_type="RequestReceived",
                    data={},
                    metadata=Metadata(trace=current_trace_context()),
                )
            ],
        )
    return format(span.get_span_context().trace_id, "032x")


async def test_without_span_files_it_says_where_the_spans_went(
    event_store: EventStore,
    database_url: str,
    data_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    trace_id = await _request_with_a_trace(event_store)
    monkeypatch.setenv("ADMINDUK_DATABASE_URL", database_url)
    monkeypatch.delenv("OTEL_TRACES_EXPORTER", raising=False)
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)

    assert await _traces(TICKET, "--data-dir", str(data_dir)) == 1
    error = capsys.readouterr().err
    assert f"no span files in {data_dir / 'traces'}" in error
    assert trace_id in error

    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://otel-collector:4318")
    assert await _traces(TICKET, "--data-dir", str(data_dir)) == 1
    error = capsys.readouterr().err
    assert "exported over OTLP to http://otel-collector:4318" in error
    assert f"adminduk.ticket={TICKET}" in error and trace_id in error


@contextmanager
def _span_file(data_dir: Path, service: str) -> Iterator[TracerProvider]:
    """A provider writing through the embedded default's exporter, as a service's does."""
    exporter, sink = _exporter(service, data_dir)
    assert exporter is not None and sink is not None
    provider = TracerProvider(resource=Resource.create({"service.name": f"adminduk-{service}"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider
    provider.shutdown()
    sink.close()


async def test_spans_rotated_away_are_reported(
    event_store: EventStore,
    database_url: str,
    data_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    await _request_with_a_trace(event_store)
    # The files now begin after the request: its own spans were rotated away.
    with _span_file(data_dir, "intake") as provider:
        provider.get_tracer("test").start_span("whatsapp webhook").end()
    monkeypatch.setenv("ADMINDUK_DATABASE_URL", database_url)

    assert await _traces(TICKET, "--data-dir", str(data_dir)) == 1
    error = capsys.readouterr().err
    assert "no longer in" in error and "rotated away" in error


# -- streaming a large file ------------------------------------------------------------------


def _at(moment: datetime) -> int:
    return int(moment.timestamp() * 1e9)


def test_a_large_file_is_entered_near_the_window_and_left_after_it(data_dir: Path) -> None:
    """Spans carrying the ticket before and after the window are not read: the file is
    entered by the binary search and left at the first span ending after the window."""
    noon = datetime(2026, 5, 4, 12, tzinfo=UTC)
    with _span_file(data_dir, "issuance") as provider:
        tracer = provider.get_tracer("test")
        for minute in range(-600, 601):
            start = noon + timedelta(minutes=minute)
            attributes = {"adminduk.ticket": TICKET} if minute % 60 == 0 else {}
            span = tracer.start_span("siak.submit", start_time=_at(start), attributes=attributes)
            span.end(end_time=_at(start + timedelta(seconds=1)))
    files = span_files(data_dir / "traces")
    assert [path.name for path in files] == ["issuance.jsonl"]
    window = Window(
        (noon - timedelta(minutes=90)).strftime("%Y-%m-%dT%H:%M:%S.%fZ").encode(),
        (noon + timedelta(minutes=90)).strftime("%Y-%m-%dT%H:%M:%S.%fZ").encode(),
    )

    collected = collect_spans(files, set(), TICKET, window)

    starts = sorted(span.start for span in collected.spans.values())
    assert starts == [noon + timedelta(minutes=m) for m in (-60, 0, 60)]
    assert collected.oldest_end == noon - timedelta(minutes=600) + timedelta(seconds=1)
    # The search lands shortly before the window's first line, not at the file's start.
    content = files[0].read_bytes()
    first_in_window = content.index(b'"start_time": "2026-05-04T10:30')
    first_in_window = content.rindex(b"\n", 0, first_in_window) + 1
    with files[0].open("rb") as handle:
        entry = _entry_offset(handle, len(content), window.first)
    assert first_in_window - SEARCH_GRANULE - 2048 <= entry <= first_in_window


if __name__ == "__main__":
    _play(sys.argv[1])
