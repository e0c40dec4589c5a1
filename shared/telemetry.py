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

``OTEL_SERVICE_NAME``, ``OTEL_RESOURCE_ATTRIBUTES`` and ``OTEL_TRACES_SAMPLER`` work as the
SDK documents them. Span attributes never carry personal data: callers pass masked values
(see :mod:`shared.privacy`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

from opentelemetry import context, metrics, propagate, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    ConsoleMetricExporter,
    MetricExporter,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SpanExporter,
)


def _span_line(span: ReadableSpan) -> str:
    return str(span.to_json(indent=None)) + "\n"


class Telemetry:
    """Handle of the process's providers; ``shutdown`` flushes pending spans and metrics."""

    def __init__(
        self, provider: TracerProvider, meters: MeterProvider, sinks: list[IO[str]]
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


def _metric_exporter(service: str, data_dir: Path) -> tuple[MetricExporter | None, IO[str] | None]:
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
    folder = data_dir / "metrics"
    folder.mkdir(parents=True, exist_ok=True)
    sink = (folder / f"{service}.jsonl").open("a", encoding="utf-8", buffering=1)
    return ConsoleMetricExporter(
        out=sink, formatter=lambda data: data.to_json(indent=None) + "\n"
    ), sink


def _exporter(service: str, data_dir: Path) -> tuple[SpanExporter | None, IO[str] | None]:
    choice = os.environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if not choice and os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        choice = "otlp"
    if choice == "none":
        return None, None
    if choice == "otlp":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # noqa: PLC0415
            OTLPSpanExporter,
        )

        return OTLPSpanExporter(), None
    if choice == "console":
        return ConsoleSpanExporter(formatter=_span_line), None
    folder = data_dir / "traces"
    folder.mkdir(parents=True, exist_ok=True)
    sink = (folder / f"{service}.jsonl").open("a", encoding="utf-8", buffering=1)
    return ConsoleSpanExporter(out=sink, formatter=_span_line), sink


def setup_telemetry(service: str, data_dir: Path) -> Telemetry:
    resource = Resource.create(
        {
            "service.name": os.environ.get("OTEL_SERVICE_NAME", f"adminduk-{service}"),
            "service.namespace": "adminduk",
        }
    )
    provider = TracerProvider(resource=resource)
    exporter, sink = _exporter(service, data_dir)
    if exporter is not None:
        provider.add_span_processor(BatchSpanProcessor(exporter))
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
