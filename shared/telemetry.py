"""OpenTelemetry traces and metrics, set up once per process.

Exporters follow the standard ``OTEL_*`` variables (``OTEL_METRICS_EXPORTER`` likewise for
metrics, exported every ``OTEL_METRIC_EXPORT_INTERVAL`` ms, default 60 s, to
``$ADMINDUK_DATA_DIR/metrics/<service>.jsonl`` by default):

* ``OTEL_TRACES_EXPORTER=otlp`` (or ``OTEL_EXPORTER_OTLP_ENDPOINT`` set): OTLP over HTTP,
  configured by the usual ``OTEL_EXPORTER_OTLP_*`` variables;
* ``OTEL_TRACES_EXPORTER=console``: spans on standard output;
* ``OTEL_TRACES_EXPORTER=none``: no export;
* unset: the embedded default, one JSON span per line in
  ``$ADMINDUK_DATA_DIR/traces/<service>.jsonl``.

Spans go out through a batch processor (``OTEL_BSP_*``, the SDK's defaults: batches of 512,
every 5 s, at most 2048 waiting). The span and metric files are rotated at
``ADMINDUK_TELEMETRY_FILE_MAX_BYTES`` (64 MiB) into ``<service>.jsonl.1`` (the newest) to
``.jsonl.<ADMINDUK_TELEMETRY_FILE_KEEP>`` (4); older ones are deleted. One process writes a
service's files: two processes of the same service name would rotate each other's.

Sampling: ``OTEL_TRACES_SAMPLER`` and ``OTEL_TRACES_SAMPLER_ARG`` as the SDK documents them
(default ``parentbased_always_on``: every trace kept), with two exceptions to what the
sampler drops (:class:`OfficeSampler`, :class:`KeepingSpanProcessor`):

* an officer action (a span started with the attribute ``adminduk.officer.id``) is always
  sampled, and with it its trace downstream, in every service it reaches;
* a span that ends in error is kept, with the spans of its trace this process still holds
  (those that ended before it, its ancestors that end after it, a retry in the same trace).

``OTEL_SERVICE_NAME`` and ``OTEL_RESOURCE_ATTRIBUTES`` work as the SDK documents them. Span
attributes never carry personal data: callers pass masked values (see :mod:`shared.privacy`).
Whatever made a span (ours, or an instrumentation an operator adds), the values of query
parameters in its URL attributes (:data:`URL_ATTRIBUTES`) and its status are replaced with
``***`` before any exporter sees it: a query string may carry Meta's verify token.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from io import BufferedWriter
from pathlib import Path
from typing import Any, Final

from opentelemetry import context, metrics, propagate, trace
from opentelemetry.context import Context
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    ConsoleMetricExporter,
    MetricExporter,
    MetricExportResult,
    MetricsData,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    DEFAULT_OFF,
    DEFAULT_ON,
    Decision,
    ParentBasedTraceIdRatio,
    Sampler,
    SamplingResult,
    TraceIdRatioBased,
)
from opentelemetry.trace import Link, SpanKind, StatusCode, TraceFlags, TraceState
from opentelemetry.trace.status import Status
from opentelemetry.util.types import Attributes

from shared.privacy import redact_query

log = logging.getLogger(__name__)

FILE_MAX_BYTES_VARIABLE: Final = "ADMINDUK_TELEMETRY_FILE_MAX_BYTES"
FILE_KEEP_VARIABLE: Final = "ADMINDUK_TELEMETRY_FILE_KEEP"
DEFAULT_FILE_MAX_BYTES: Final = 64 * 1024 * 1024
"""A day or more of a busy office's spans; ``adminduk traces`` searches a file without
reading it whole, so the size costs disk only."""
DEFAULT_FILE_KEEP: Final = 4
OFFICER_ATTRIBUTE: Final = "adminduk.officer.id"
"""Set when an officer's action starts its span: such spans are always sampled."""
KEPT_TRACES: Final = 1024
"""Unsampled traces with an error whose later spans this process still keeps."""
URL_ATTRIBUTES: Final = ("url.full", "url.query", "url.original", "http.url", "http.target")
"""Attributes (current and older semantic conventions) that may hold a query string."""
HELD_TRACES: Final = 256
HELD_SPANS_PER_TRACE: Final = 128
"""Ended spans of unsampled traces held in case a later span of the trace fails: a bound on
the memory that costs (the oldest trace is let go first)."""


# -- the span file's lines -------------------------------------------------------------------


def _dumps(value: object) -> str:
    # The standard encoder's separators (", " and ": "), as ReadableSpan.to_json writes them:
    # ``adminduk traces`` looks for ``"adminduk.ticket": "..."`` in the lines as bytes.
    return json.dumps(value)


_KINDS: Final = {kind: _dumps(str(kind)) for kind in SpanKind}
_EMPTY_TRACE_STATE: Final = _dumps(repr(TraceState()))


class SpanLines:
    """Spans as JSON lines, in the layout of ``ReadableSpan.to_json(indent=None)`` (keys,
    separators, times), which ``adminduk traces`` reads, at a fraction of its cost: the
    SDK re-serialises the resource through an indented dump and a parse for every span and
    formats each time through ``datetime``; here the resource is serialised once and a
    second's time prefix once per second."""

    def __init__(self) -> None:
        self._resources: dict[int, tuple[Resource, str]] = {}
        self._second: tuple[int, str] = (-1, "")

    def line(self, span: ReadableSpan) -> str:
        try:
            return self._line(span)
        except (TypeError, ValueError, AttributeError):
            # An attribute or event value the fast path does not know: the SDK's own way.
            return str(span.to_json(indent=None)) + "\n"

    def _line(self, span: ReadableSpan) -> str:
        span_context = span.context
        context_json = "null" if span_context is None else _context_json(span_context)
        parent = span.parent
        parent_json = "null" if parent is None else f'"0x{parent.span_id:016x}"'
        status = span.status
        status_json = f'{{"status_code": "{status.status_code.name}"'
        if status.description:
            status_json += f', "description": {_dumps(status.description)}'
        attributes = span.attributes
        events = span.events
        links = span.links
        return (
            f'{{"name": {_dumps(span.name)}, "context": {context_json}, '
            f'"kind": {_KINDS[span.kind]}, "parent_id": {parent_json}, '
            f'"start_time": {self._time_json(span.start_time)}, '
            f'"end_time": {self._time_json(span.end_time)}, "status": {status_json}}}, '
            f'"attributes": {_dumps(dict(attributes)) if attributes else "{}"}, '
            f'"events": {self._events(events) if events else "[]"}, '
            f'"links": {_links(links) if links else "[]"}, '
            f'"resource": {self._resource(span.resource)}}}\n'
        )

    def _time_json(self, nanoseconds: int | None) -> str:
        text = self._time(nanoseconds)
        return "null" if text is None else f'"{text}"'

    def _time(self, nanoseconds: int | None) -> str | None:
        """``ns_to_iso_str``'s format (microseconds truncated, not rounded)."""
        if not nanoseconds:
            return None
        second, rest = divmod(nanoseconds, 1_000_000_000)
        cached, text = self._second  # one tuple: a second thread reads a consistent pair
        if second != cached:
            text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._second = (second, text)
        return f"{text}.{rest // 1000:06d}Z"

    def _resource(self, resource: Resource) -> str:
        known = self._resources.get(id(resource))
        if known is None:
            text = _dumps(
                {"attributes": dict(resource.attributes), "schema_url": resource.schema_url}
            )
            # The resource is held too, so that its id cannot be reused by another.
            known = self._resources[id(resource)] = (resource, text)
        return known[1]

    def _events(self, events: Sequence[Any]) -> str:
        return _dumps(
            [
                {
                    "name": event.name,
                    "timestamp": self._time(event.timestamp),
                    "attributes": _attributes(event.attributes),
                }
                for event in events
            ]
        )


def _context_json(span_context: trace.SpanContext) -> str:
    state = span_context.trace_state
    return (
        f'{{"trace_id": "0x{span_context.trace_id:032x}", '
        f'"span_id": "0x{span_context.span_id:016x}", '
        f'"trace_state": {_dumps(repr(state)) if state else _EMPTY_TRACE_STATE}}}'
    )


def _attributes(attributes: Attributes) -> dict[str, Any] | None:
    return None if attributes is None else dict(attributes)


def _links(links: Sequence[Link]) -> str:
    parts = [
        f'{{"context": {_context_json(link.context)}, '
        f'"attributes": {_dumps(_attributes(link.attributes))}}}'
        for link in links
    ]
    return "[" + ", ".join(parts) + "]"


def _span_line(span: ReadableSpan) -> str:
    return str(span.to_json(indent=None)) + "\n"


# -- rotated files ---------------------------------------------------------------------------


def _setting(variable: str, default: int) -> int:
    raw = os.environ.get(variable, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if value < 0:
        log.warning("%s=%r is not a whole number of 0 or more; using %d", variable, raw, default)
        return default
    return value


class RotatingFile:
    """An append-only file of JSON lines, rotated when a write would take it past
    ``max_bytes`` (0: never): ``name.1`` is the newest old file, ``name.<keep>`` the oldest,
    older ones are deleted. Each write is one ``write`` to the file, of whole lines."""

    def __init__(self, path: Path, max_bytes: int, keep: int) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.keep = keep
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)
        self._handle: BufferedWriter | None = path.open("ab")
        self._size = self._handle.seek(0, os.SEEK_END)

    @classmethod
    def from_env(cls, path: Path) -> RotatingFile:
        return cls(
            path,
            _setting(FILE_MAX_BYTES_VARIABLE, DEFAULT_FILE_MAX_BYTES),
            _setting(FILE_KEEP_VARIABLE, DEFAULT_FILE_KEEP),
        )

    def write(self, data: bytes) -> None:
        with self._lock:
            if self._handle is None:
                return
            if self.max_bytes and self._size and self._size + len(data) > self.max_bytes:
                self._rotate()
            self._handle.write(data)
            self._handle.flush()
            self._size += len(data)

    def _rotate(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None
        try:
            for older in self.path.parent.glob(f"{self.path.name}.*"):
                suffix = older.name.removeprefix(f"{self.path.name}.")
                # The oldest goes, and with it any beyond a keep smaller than a previous run's.
                if suffix.isdigit() and int(suffix) >= self.keep:
                    older.unlink(missing_ok=True)
            for rank in range(self.keep - 1, 0, -1):
                older = self.path.with_name(f"{self.path.name}.{rank}")
                if older.exists():
                    older.replace(self.path.with_name(f"{self.path.name}.{rank + 1}"))
            if self.keep:
                self.path.replace(self.path.with_name(f"{self.path.name}.1"))
            else:
                self.path.unlink(missing_ok=True)
        except OSError as error:
            # The lines matter more than the cap: keep appending, try again at the next write.
            log.warning("cannot rotate %s: %s", self.path, error)
        self._handle = self.path.open("ab")
        self._size = self._handle.seek(0, os.SEEK_END)

    def close(self) -> None:
        with self._lock:
            if self._handle is not None:
                self._handle.close()
                self._handle = None


class SpanFileExporter(SpanExporter):
    """The embedded default: a batch of spans as JSON lines, in one write."""

    def __init__(self, sink: RotatingFile) -> None:
        self.sink = sink
        self._lines = SpanLines()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        line = self._lines.line
        self.sink.write("".join([line(span) for span in spans]).encode())
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        self.sink.close()


class MetricFileExporter(MetricExporter):
    """Metrics as one JSON line per export (every minute by default) in a rotated file."""

    def __init__(self, sink: RotatingFile) -> None:
        super().__init__()
        self.sink = sink

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> MetricExportResult:
        self.sink.write((metrics_data.to_json(indent=None) + "\n").encode())
        return MetricExportResult.SUCCESS

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        self.sink.close()


# -- sampling --------------------------------------------------------------------------------


def configured_sampler() -> Sampler:
    """The sampler ``OTEL_TRACES_SAMPLER`` and ``OTEL_TRACES_SAMPLER_ARG`` name, as the SDK
    reads them (an unknown name or rate: a warning and the default)."""
    name = os.environ.get("OTEL_TRACES_SAMPLER", "").strip().lower() or "parentbased_always_on"
    fixed = {
        "always_on": ALWAYS_ON,
        "always_off": ALWAYS_OFF,
        "parentbased_always_on": DEFAULT_ON,
        "parentbased_always_off": DEFAULT_OFF,
    }
    if name in fixed:
        return fixed[name]
    if name not in {"traceidratio", "parentbased_traceidratio"}:
        log.warning("unknown OTEL_TRACES_SAMPLER %r; keeping every trace", name)
        return DEFAULT_ON
    kind = TraceIdRatioBased if name == "traceidratio" else ParentBasedTraceIdRatio
    raw = os.environ.get("OTEL_TRACES_SAMPLER_ARG", "")
    try:
        return kind(float(raw))
    except ValueError:  # not a number, or not between 0 and 1
        log.warning("OTEL_TRACES_SAMPLER_ARG=%r is not a rate from 0 to 1; using 1.0", raw)
        return kind(1.0)


class OfficeSampler(Sampler):
    """The configured sampler, except that officer actions are always sampled (their whole
    trace, downstream too: the sampled flag travels with the trace context) and what it
    drops is still recorded, unexported, so that :class:`KeepingSpanProcessor` can keep the
    spans that end in error."""

    def __init__(self, configured: Sampler) -> None:
        self.configured = configured

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: TraceState | None = None,
    ) -> SamplingResult:
        if attributes and OFFICER_ATTRIBUTE in attributes:
            parent = trace.get_current_span(parent_context).get_span_context()
            state = parent.trace_state if parent.is_valid else None
            return SamplingResult(Decision.RECORD_AND_SAMPLE, attributes, state)
        result = self.configured.should_sample(
            parent_context, trace_id, name, kind, attributes, links, trace_state
        )
        if result.decision is Decision.DROP:
            # The SDK's samplers leave the attributes out of a drop; a recorded span needs them.
            return SamplingResult(Decision.RECORD_ONLY, attributes, result.trace_state)
        return result

    def get_description(self) -> str:
        return f"OfficeSampler{{{self.configured.get_description()}}}"


def _copy(
    span: ReadableSpan,
    *,
    context: trace.SpanContext | None = None,
    attributes: Attributes = None,
    status: Status | None = None,
) -> ReadableSpan:
    return ReadableSpan(
        name=span.name,
        context=context or span.context,
        parent=span.parent,
        resource=span.resource,
        attributes=span.attributes if attributes is None else attributes,
        events=span.events,
        links=span.links,
        kind=span.kind,
        status=status or span.status,
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )


def _as_sampled(span: ReadableSpan) -> ReadableSpan:
    """An unsampled span as one the export path takes (it only takes sampled ones)."""
    old = span.context
    assert old is not None
    new = trace.SpanContext(
        old.trace_id, old.span_id, old.is_remote, TraceFlags(TraceFlags.SAMPLED), old.trace_state
    )
    return _copy(span, context=new)


def without_query_values(span: ReadableSpan) -> ReadableSpan:
    """``span`` with the values of query parameters in its URL attributes and its status
    description replaced (itself when it has none: the common case costs a few lookups)."""
    attributes = span.attributes
    urls = [key for key in URL_ATTRIBUTES if key in attributes] if attributes else []
    description = span.status.description
    described = description is not None and "=" in description
    if not urls and not described:
        return span
    cleaned = dict(attributes or {})
    for key in urls:
        value = cleaned[key]
        if not isinstance(value, str):
            continue
        # ``url.query`` is the query string alone, without its ``?``.
        cleaned[key] = redact_query(f"?{value}")[1:] if key == "url.query" else redact_query(value)
    status = span.status
    if described and description is not None:
        status = Status(status.status_code, redact_query(description))
    return _copy(span, attributes=cleaned, status=status)


class KeepingSpanProcessor(SpanProcessor):
    """Exports sampled spans through ``export`` (a batch processor), and of the unsampled
    (recorded only, see :class:`OfficeSampler`) those of traces in which a span ended in
    error: the failed span, the spans of its trace this process held since they ended (up to
    :data:`HELD_SPANS_PER_TRACE`, for :data:`HELD_TRACES` traces, until the trace's local
    root ends), and the spans of the trace that end later here (its ancestors, a retry)."""

    def __init__(self, export: SpanProcessor) -> None:
        self.export = export
        self._lock = threading.Lock()
        self._held: OrderedDict[int, list[ReadableSpan]] = OrderedDict()
        self._kept: OrderedDict[int, None] = OrderedDict()

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        self.export.on_start(span, parent_context)

    def on_end(self, span: ReadableSpan) -> None:
        span_context = span.context
        if span_context is None:
            return
        span = without_query_values(span)
        if span_context.trace_flags.sampled:
            self.export.on_end(span)
            return
        kept = self._unsampled(span, span_context.trace_id)
        for each in kept:
            self.export.on_end(_as_sampled(each))

    def _unsampled(self, span: ReadableSpan, trace_id: int) -> list[ReadableSpan]:
        with self._lock:
            if trace_id in self._kept:
                self._kept.move_to_end(trace_id)
                return [span]
            if span.status.status_code is StatusCode.ERROR:
                self._kept[trace_id] = None
                if len(self._kept) > KEPT_TRACES:
                    self._kept.popitem(last=False)
                return [*self._held.pop(trace_id, ()), span]
            if span.parent is None or span.parent.is_remote:
                # The trace's part in this process is over: nothing held can fail any more.
                self._held.pop(trace_id, None)
                return []
            held = self._held.get(trace_id)
            if held is None:
                held = self._held[trace_id] = []
                if len(self._held) > HELD_TRACES:
                    self._held.popitem(last=False)
            if len(held) < HELD_SPANS_PER_TRACE:
                held.append(span)
            return []

    def shutdown(self) -> None:
        self.export.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self.export.force_flush(timeout_millis)


# -- setup -----------------------------------------------------------------------------------


class Telemetry:
    """Handle of the process's providers; ``shutdown`` flushes pending spans and metrics."""

    def __init__(
        self, provider: TracerProvider, meters: MeterProvider, sinks: list[RotatingFile]
    ) -> None:
        self.provider = provider
        self.meters = meters
        self._sinks = sinks

    def shutdown(self) -> None:
        self.provider.shutdown()
        self.meters.shutdown()
        for sink in self._sinks:
            sink.close()


def _choice(variable: str) -> str:
    choice = os.environ.get(variable, "").strip().lower()
    if not choice and os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        choice = "otlp"
    return choice


def _metric_exporter(
    service: str, data_dir: Path
) -> tuple[MetricExporter | None, RotatingFile | None]:
    choice = _choice("OTEL_METRICS_EXPORTER")
    if choice == "none":
        return None, None
    if choice == "otlp":
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import (  # noqa: PLC0415
            OTLPMetricExporter,
        )

        return OTLPMetricExporter(), None
    if choice == "console":
        return ConsoleMetricExporter(), None
    sink = RotatingFile.from_env(data_dir / "metrics" / f"{service}.jsonl")
    return MetricFileExporter(sink), sink


def _exporter(service: str, data_dir: Path) -> tuple[SpanExporter | None, RotatingFile | None]:
    choice = _choice("OTEL_TRACES_EXPORTER")
    if choice == "none":
        return None, None
    if choice == "otlp":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # noqa: PLC0415
            OTLPSpanExporter,
        )

        return OTLPSpanExporter(), None
    if choice == "console":
        return ConsoleSpanExporter(formatter=_span_line), None
    sink = RotatingFile.from_env(data_dir / "traces" / f"{service}.jsonl")
    return SpanFileExporter(sink), sink


def setup_telemetry(service: str, data_dir: Path) -> Telemetry:
    resource = Resource.create(
        {
            "service.name": os.environ.get("OTEL_SERVICE_NAME", f"adminduk-{service}"),
            "service.namespace": "adminduk",
        }
    )
    provider = TracerProvider(resource=resource, sampler=OfficeSampler(configured_sampler()))
    exporter, sink = _exporter(service, data_dir)
    if exporter is not None:
        # The batch processor reads OTEL_BSP_* itself when given no sizes.
        provider.add_span_processor(KeepingSpanProcessor(BatchSpanProcessor(exporter)))
    trace.set_tracer_provider(provider)
    metric_exporter, metric_sink = _metric_exporter(service, data_dir)
    readers = [PeriodicExportingMetricReader(metric_exporter)] if metric_exporter else []
    meters = MeterProvider(resource=resource, metric_readers=readers)
    metrics.set_meter_provider(meters)
    return Telemetry(provider, meters, [s for s in (sink, metric_sink) if s is not None])


def current_trace_context() -> dict[str, str]:
    """W3C trace context of the current span, to store in event metadata."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


def attach_trace_context(carrier: Mapping[str, Any]) -> object:
    """Make the trace context of ``carrier`` current; pass the token to ``detach``."""
    return context.attach(propagate.extract(dict(carrier)))


def detach(token: object) -> None:
    context.detach(token)  # type: ignore[arg-type]
