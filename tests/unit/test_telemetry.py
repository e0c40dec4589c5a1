"""The embedded default's telemetry files and sampling (:mod:`shared.telemetry`): span lines
as ``adminduk traces`` reads them, files rotated and capped, ordinary spans dropped by the
sampler while spans in error and officer actions are kept."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from opentelemetry import propagate, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    DEFAULT_OFF,
    DEFAULT_ON,
    Sampler,
    TraceIdRatioBased,
)
from opentelemetry.trace import Link, SpanKind, StatusCode

from adminduk.ops.traces import Window, collect_spans, parse_span, span_files
from shared.config import PROJECT_ROOT
from shared.logging import RedactingFilter
from shared.telemetry import (
    DEFAULT_FILE_KEEP,
    DEFAULT_FILE_MAX_BYTES,
    HELD_SPANS_PER_TRACE,
    OFFICER_ATTRIBUTE,
    KeepingSpanProcessor,
    MetricFileExporter,
    OfficeSampler,
    RotatingFile,
    SpanFileExporter,
    SpanLines,
    _exporter,
    _metric_exporter,
    configured_sampler,
)

TICKET = "KTP-7Q2M9XAB"
_TIMES = re.compile(r'"(start_time|end_time|timestamp)": "[^"]*"')


def _provider(sampler: Sampler = DEFAULT_ON) -> tuple[TracerProvider, InMemorySpanExporter]:
    """A provider wired as ``setup_telemetry`` wires it, exporting to memory at once."""
    exported = InMemorySpanExporter()
    provider = TracerProvider(
        resource=Resource.create({"service.name": "adminduk-verification"}),
        sampler=OfficeSampler(sampler),
    )
    provider.add_span_processor(KeepingSpanProcessor(SimpleSpanProcessor(exported)))
    return provider, exported


def _names(exported: InMemorySpanExporter) -> list[str]:
    return [span.name for span in exported.get_finished_spans()]


def _finished(count: int = 3) -> list[ReadableSpan]:
    provider, exported = _provider()
    tracer = provider.get_tracer("test")
    for number in range(count):
        with (
            tracer.start_as_current_span(
                "verification RequestSubmitted",
                attributes={"adminduk.ticket": TICKET, "adminduk.event.position": number},
            ),
            tracer.start_as_current_span("siak.submit"),
        ):
            pass
    return list(exported.get_finished_spans())


# -- the lines -------------------------------------------------------------------------------


def test_a_span_line_is_the_sdks_json_line_read_as_before() -> None:
    provider, exported = _provider()
    tracer = provider.get_tracer("test")
    other = trace.SpanContext(0xABC, 0xDEF, is_remote=True)
    with tracer.start_as_current_span(
        "officer approve \u00f1",
        kind=SpanKind.SERVER,
        links=[Link(other, {"why": "the request's trace"})],
        attributes={"adminduk.ticket": TICKET, "adminduk.deliveries": 2, "x": (1.5, 2.5)},
    ) as span:
        span.add_event("retry", {"attempt": 1})
        span.set_status(StatusCode.ERROR, 'SIAK said "no"')
        with tracer.start_as_current_span("child"):
            pass
    lines = SpanLines()

    for finished in exported.get_finished_spans():
        line = lines.line(finished)
        sdk = str(finished.to_json(indent=None)) + "\n"
        # The same bytes but for the times (truncated to the microsecond, not rounded).
        assert _TIMES.sub("T", line) == _TIMES.sub("T", sdk)
        for key in ("start_time", "end_time"):
            ours, theirs = json.loads(line)[key], json.loads(sdk)[key]
            gap = datetime.fromisoformat(ours) - datetime.fromisoformat(theirs)
            assert abs(gap) <= timedelta(microseconds=1)

    approve = lines.line(exported.get_finished_spans()[-1])
    parsed = parse_span(approve.encode(), "fallback")
    assert parsed is not None
    assert parsed.service == "verification"
    assert parsed.status == "ERROR" and parsed.status_description == 'SIAK said "no"'
    assert parsed.linked_traces == (f"{0xABC:032x}",)
    assert parsed.attributes["adminduk.ticket"] == TICKET
    assert f'"adminduk.ticket": "{TICKET}"'.encode() in approve.encode()


class CountedFile(RotatingFile):
    def __init__(self, path: Path) -> None:
        super().__init__(path, max_bytes=0, keep=2)
        self.writes = 0

    def write(self, data: bytes) -> None:
        self.writes += 1
        super().write(data)


def test_the_exporter_writes_a_batch_in_one_write(tmp_path: Path) -> None:
    spans = _finished()
    sink = CountedFile(tmp_path / "verification.jsonl")
    exporter = SpanFileExporter(sink)

    exporter.export(spans)
    exporter.shutdown()

    assert sink.writes == 1
    lines = (tmp_path / "verification.jsonl").read_bytes().splitlines()
    assert len(lines) == len(spans) == 6
    assert all(parse_span(line, "verification") is not None for line in lines)


# -- rotation --------------------------------------------------------------------------------


def _sizes(folder: Path) -> dict[str, int]:
    return {path.name: path.stat().st_size for path in sorted(folder.iterdir())}


def test_files_rotate_at_the_size_and_keep_a_bounded_number(tmp_path: Path) -> None:
    sink = RotatingFile(tmp_path / "intake.jsonl", max_bytes=1000, keep=3)
    for number in range(100):
        sink.write(f'{{"n": {number:4d}, "pad": "{"x" * 77}"}}\n'.encode())  # 100 bytes
    sink.close()

    sizes = _sizes(tmp_path)
    assert sorted(sizes) == ["intake.jsonl", "intake.jsonl.1", "intake.jsonl.2", "intake.jsonl.3"]
    assert all(size <= 1000 for size in sizes.values())
    assert sum(sizes.values()) <= 4 * 1000

    def numbers(name: str) -> list[int]:
        return [json.loads(line)["n"] for line in (tmp_path / name).read_bytes().splitlines()]

    # Whole lines only, the newest in the current file, then .1, .2, .3 going back.
    assert numbers("intake.jsonl") == list(range(90, 100))
    assert numbers("intake.jsonl.1") == list(range(80, 90))
    assert numbers("intake.jsonl.3") == list(range(60, 70))


def test_a_reopened_file_continues_and_a_smaller_keep_deletes_the_rest(tmp_path: Path) -> None:
    line = b"y" * 99 + b"\n"
    first = RotatingFile(tmp_path / "notify.jsonl", max_bytes=500, keep=4)
    for _ in range(23):
        first.write(line)
    first.close()
    assert len(_sizes(tmp_path)) == 5
    assert _sizes(tmp_path)["notify.jsonl"] == 300

    again = RotatingFile(tmp_path / "notify.jsonl", max_bytes=500, keep=1)
    again.write(line * 2)
    assert _sizes(tmp_path)["notify.jsonl"] == 500  # counted from what was there
    again.write(line)
    again.close()

    assert _sizes(tmp_path) == {"notify.jsonl": 100, "notify.jsonl.1": 500}


def test_keep_zero_keeps_no_old_file_and_max_bytes_zero_never_rotates(tmp_path: Path) -> None:
    none_kept = RotatingFile(tmp_path / "a.jsonl", max_bytes=150, keep=0)
    unbounded = RotatingFile(tmp_path / "b.jsonl", max_bytes=0, keep=3)
    for _ in range(10):
        none_kept.write(b"z" * 99 + b"\n")
        unbounded.write(b"z" * 99 + b"\n")
    none_kept.close()
    unbounded.close()
    none_kept.write(b"after close\n")  # a late batch after shutdown is dropped, not an error

    assert _sizes(tmp_path) == {"a.jsonl": 100, "b.jsonl": 1000}


def test_a_rotation_refused_loses_no_line(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "intake.jsonl.1").mkdir()  # no file can be renamed onto it
    sink = RotatingFile(tmp_path / "intake.jsonl", max_bytes=150, keep=1)
    for _ in range(3):
        sink.write(b"w" * 99 + b"\n")
    sink.close()

    assert (tmp_path / "intake.jsonl").stat().st_size == 300
    assert "cannot rotate" in caplog.text


def test_the_limits_come_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    for exporter in ("OTEL_TRACES_EXPORTER", "OTEL_METRICS_EXPORTER"):
        monkeypatch.delenv(exporter, raising=False)
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    _, sink = _exporter("intake", tmp_path)
    assert sink is not None
    assert (
        (sink.max_bytes, sink.keep)
        == (DEFAULT_FILE_MAX_BYTES, DEFAULT_FILE_KEEP)
        == (
            64 * 1024 * 1024,
            4,
        )
    )
    sink.close()

    monkeypatch.setenv("ADMINDUK_TELEMETRY_FILE_MAX_BYTES", "1048576")
    monkeypatch.setenv("ADMINDUK_TELEMETRY_FILE_KEEP", "2")
    _, spans = _exporter("intake", tmp_path)
    _, metrics_sink = _metric_exporter("intake", tmp_path)
    assert spans is not None and metrics_sink is not None
    assert (spans.max_bytes, spans.keep) == (metrics_sink.max_bytes, metrics_sink.keep)
    assert (spans.max_bytes, spans.keep) == (1048576, 2)
    assert spans.path == tmp_path / "traces" / "intake.jsonl"
    assert metrics_sink.path == tmp_path / "metrics" / "intake.jsonl"
    spans.close()
    metrics_sink.close()

    monkeypatch.setenv("ADMINDUK_TELEMETRY_FILE_KEEP", "many")
    _, fallback = _exporter("intake", tmp_path)
    assert fallback is not None and fallback.keep == DEFAULT_FILE_KEEP
    assert "ADMINDUK_TELEMETRY_FILE_KEEP" in caplog.text
    fallback.close()


def test_metric_files_rotate_too(tmp_path: Path) -> None:
    sink = RotatingFile(tmp_path / "metrics" / "notify.jsonl", max_bytes=1, keep=2)
    reader = InMemoryMetricReader()
    meters = MeterProvider(metric_readers=[reader])
    counter = meters.get_meter("test").create_counter("adminduk.messages.sent")
    exporter = MetricFileExporter(sink)
    for _ in range(4):
        counter.add(1)
        data = reader.get_metrics_data()
        assert data is not None
        exporter.export(data)
    exporter.shutdown()

    folder = tmp_path / "metrics"
    assert sorted(_sizes(folder)) == ["notify.jsonl", "notify.jsonl.1", "notify.jsonl.2"]
    last = json.loads((folder / "notify.jsonl").read_bytes())
    point = last["resource_metrics"][0]["scope_metrics"][0]["metrics"][0]["data"]["data_points"]
    assert point[0]["value"] == 4


def test_adminduk_traces_reads_the_current_and_the_rotated_files(tmp_path: Path) -> None:
    folder = tmp_path / "traces"
    exporter = SpanFileExporter(RotatingFile(folder / "issuance.jsonl", max_bytes=2000, keep=4))
    provider = TracerProvider(resource=Resource.create({"service.name": "adminduk-issuance"}))
    provider.add_span_processor(KeepingSpanProcessor(SimpleSpanProcessor(exporter)))
    tracer = provider.get_tracer("test")
    noon = datetime(2026, 5, 4, 12, tzinfo=UTC)
    for minute in range(20):
        at = int((noon + timedelta(minutes=minute)).timestamp() * 1e9)
        attributes = {"adminduk.ticket": TICKET} if minute % 5 == 0 else {}
        tracer.start_span("siak.submit", start_time=at, attributes=attributes).end(at + 10**9)
    provider.shutdown()

    files = span_files(folder)
    assert len(files) > 2  # rotated
    window = Window(b"2026-05-04T11:00:00.000000Z", b"2026-05-04T13:00:00.000000Z")
    collected = collect_spans(files, set(), TICKET, window)

    # Those of the ticket's spans still in the files (the oldest rotated away), whichever
    # file holds them.
    needle = f'"adminduk.ticket": "{TICKET}"'.encode()
    holding = [path for path in files if needle in path.read_bytes()]
    starts = sorted(span.start for span in collected.spans.values())
    assert len(holding) == len(starts) >= 2
    assert starts == [noon + timedelta(minutes=m) for m in range(0, 20, 5)][-len(starts) :]


# -- sampling --------------------------------------------------------------------------------


def test_sampling_drops_ordinary_traces_and_keeps_errors_with_their_trace() -> None:
    provider, exported = _provider(ALWAYS_OFF)
    tracer = provider.get_tracer("test")
    with (
        tracer.start_as_current_span("verification RequestSubmitted"),
        tracer.start_as_current_span("siak.lookup"),
    ):
        pass
    assert _names(exported) == []

    with tracer.start_as_current_span("issuance RequestVerified") as root:
        with tracer.start_as_current_span("siak.lookup"):
            pass
        with tracer.start_as_current_span("siak.submit") as failed:
            failed.set_status(StatusCode.ERROR, "SIAK unavailable")
        with tracer.start_as_current_span("dead letter"):
            pass
    assert not root.get_span_context().trace_flags.sampled

    # The failed span, its sibling that ended before, its parent and a later sibling.
    assert _names(exported) == [
        "siak.lookup",
        "siak.submit",
        "dead letter",
        "issuance RequestVerified",
    ]
    spans = exported.get_finished_spans()
    assert {span.context.trace_id for span in spans if span.context} == {
        root.get_span_context().trace_id
    }
    assert spans[1].status.status_code is StatusCode.ERROR
    assert dict(spans[3].attributes or {}) == {}
    parent, root_context = spans[1].parent, spans[3].context
    assert parent is not None and root_context is not None
    assert parent.span_id == root_context.span_id


def test_an_error_keeps_the_attributes_and_a_retry_in_the_same_trace() -> None:
    provider, exported = _provider(TraceIdRatioBased(0.0))
    tracer = provider.get_tracer("test")
    carrier: dict[str, str] = {}
    with tracer.start_as_current_span("relay"):
        propagate.inject(carrier)
    parent = propagate.extract(carrier)
    with tracer.start_as_current_span(
        "notify RequestVerified", context=parent, attributes={"adminduk.ticket": TICKET}
    ) as first:
        first.set_status(StatusCode.ERROR, "WhatsApp 503")
    with tracer.start_as_current_span("notify RequestVerified", context=parent):
        pass  # the redelivery succeeds: kept, for it ends the story

    spans = exported.get_finished_spans()
    assert [span.name for span in spans] == ["notify RequestVerified"] * 2
    assert dict(spans[0].attributes or {}) == {"adminduk.ticket": TICKET}


def test_officer_actions_are_sampled_with_their_trace_downstream() -> None:
    provider, exported = _provider(DEFAULT_OFF)
    tracer = provider.get_tracer("test")
    carrier: dict[str, str] = {}
    with (
        tracer.start_as_current_span(
            "officer approve", attributes={"adminduk.ticket": TICKET, OFFICER_ATTRIBUTE: "budi"}
        ),
        tracer.start_as_current_span("append"),
    ):
        propagate.inject(carrier)  # into the event's metadata
    assert int(carrier["traceparent"].rsplit("-", 1)[1], 16) & 1  # the sampled flag

    # Another service, with the same configuration, continues the trace from the event.
    downstream, downstream_exported = _provider(DEFAULT_OFF)
    with downstream.get_tracer("test").start_as_current_span(
        "notify RequestVerified", context=propagate.extract(carrier)
    ):
        pass

    assert _names(exported) == ["append", "officer approve"]
    assert _names(downstream_exported) == ["notify RequestVerified"]


def test_held_spans_are_bounded() -> None:
    provider, exported = _provider(ALWAYS_OFF)
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("batch"):
        for _ in range(HELD_SPANS_PER_TRACE + 50):
            with tracer.start_as_current_span("step"):
                pass
        with tracer.start_as_current_span("failed") as failed:
            failed.set_status(StatusCode.ERROR)
    assert len(exported.get_finished_spans()) == HELD_SPANS_PER_TRACE + 2


@pytest.fixture
def sampler_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    monkeypatch.delenv("OTEL_TRACES_SAMPLER", raising=False)
    monkeypatch.delenv("OTEL_TRACES_SAMPLER_ARG", raising=False)
    yield monkeypatch


def test_the_sampler_is_the_standard_variables_one(
    sampler_environment: pytest.MonkeyPatch,
) -> None:
    assert configured_sampler() is DEFAULT_ON
    sampler_environment.setenv("OTEL_TRACES_SAMPLER", "parentbased_traceidratio")
    sampler_environment.setenv("OTEL_TRACES_SAMPLER_ARG", "0.25")
    described = OfficeSampler(configured_sampler()).get_description()
    assert described.startswith("OfficeSampler{ParentBased{root:TraceIdRatioBased{0.25}")
    sampler_environment.setenv("OTEL_TRACES_SAMPLER", "always_off")
    assert configured_sampler() is ALWAYS_OFF
    sampler_environment.setenv("OTEL_TRACES_SAMPLER", "traceidratio")
    for wrong in ("a tenth", "2"):
        sampler_environment.setenv("OTEL_TRACES_SAMPLER_ARG", wrong)
        assert configured_sampler().get_description() == "TraceIdRatioBased{1.0}"


_PROCESS = textwrap.dedent(
    """
    from pathlib import Path
    import sys
    from opentelemetry import trace
    from opentelemetry.trace import StatusCode
    from shared.telemetry import setup_telemetry

    telemetry = setup_telemetry("verification", Path(sys.argv[1]))
    tracer = trace.get_tracer("test")
    for number in range(200):
        with tracer.start_as_current_span("verification RequestSubmitted"):
            pass
    with tracer.start_as_current_span("officer reject", attributes={"adminduk.officer.id": "o1"}):
        pass
    trace.get_tracer_provider().force_flush()  # a batch of its own: the next one rotates
    with tracer.start_as_current_span("issuance RequestVerified") as span:
        span.set_status(StatusCode.ERROR, "SIAK unavailable")
    telemetry.shutdown()
    """
)


def test_a_service_process_samples_and_rotates_as_configured(tmp_path: Path) -> None:
    """``setup_telemetry`` as a service calls it, configured by the environment only."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "ADMINDUK_"))}
    environment.update(
        OTEL_TRACES_SAMPLER="parentbased_traceidratio",
        OTEL_TRACES_SAMPLER_ARG="0",
        OTEL_METRICS_EXPORTER="none",
        ADMINDUK_TELEMETRY_FILE_MAX_BYTES="1000",  # about a line and a half
        ADMINDUK_TELEMETRY_FILE_KEEP="1",
    )
    subprocess.run(
        [sys.executable, "-c", _PROCESS, str(tmp_path)],
        cwd=PROJECT_ROOT,
        env=environment,
        check=True,
        timeout=60,
    )

    files = span_files(tmp_path / "traces")
    assert [path.name for path in files] == ["verification.jsonl", "verification.jsonl.1"]
    spans = [parse_span(line, "?") for path in files for line in path.read_bytes().splitlines()]
    assert [(s.name, s.status, s.service) for s in spans if s] == [
        ("issuance RequestVerified", "ERROR", "verification"),
        ("officer reject", "UNSET", "verification"),
    ]


# -- query strings ---------------------------------------------------------------------------

VERIFY_QUERY = "hub.mode=subscribe&hub.verify_token=guess-Xy7&hub.challenge=1158"


def test_query_parameter_values_never_reach_exported_spans() -> None:
    """Whatever made the span (an ASGI or HTTP client instrumentation sets these attributes),
    the values of a query string, a verify token among them, are not exported."""
    provider, exported = _provider()
    tracer = provider.get_tracer("test")
    url = f"http://127.0.0.1:8000/webhook/whatsapp?{VERIFY_QUERY}"
    attributes: dict[str, str | int] = {
        "url.full": url,
        "url.query": VERIFY_QUERY,
        "http.url": url,
        "http.target": f"/webhook/whatsapp?{VERIFY_QUERY}",
        "url.path": "/webhook/whatsapp",
        "http.response.status_code": 403,
    }
    with tracer.start_as_current_span("GET /webhook/whatsapp", attributes=attributes):
        pass
    with tracer.start_as_current_span("GET /webhook/whatsapp") as current:
        current.set_attributes(attributes)
        current.set_status(StatusCode.ERROR, f"403 for {url}")

    spans = exported.get_finished_spans()
    assert len(spans) == 2
    for span in spans:
        text = json.dumps(
            {"attributes": dict(span.attributes or {}), "status": span.status.description}
        )
        assert "guess-Xy7" not in text
        assert "1158" not in text
        assert span.attributes is not None
        assert span.attributes["url.path"] == "/webhook/whatsapp"
        assert span.attributes["http.response.status_code"] == 403
        assert "hub.verify_token=" in str(span.attributes["url.full"])
        assert str(span.attributes["http.target"]).startswith("/webhook/whatsapp?hub.mode=")


def test_query_parameter_values_never_reach_the_log() -> None:
    record = logging.LogRecord(
        "httpx", logging.WARNING, __file__, 1, "HTTP Request: GET %s %s", None, None
    )
    record.args = (f"https://graph.facebook.com/v21.0/x?{VERIFY_QUERY}", '"HTTP/1.1 403"')
    RedactingFilter().filter(record)
    message = record.getMessage()
    assert "guess-Xy7" not in message
    assert "1158" not in message
    assert message.startswith("HTTP Request: GET https://graph.facebook.com/v21.0/x?hub.mode=")
    assert "hub.verify_token=" in message
