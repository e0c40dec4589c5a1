"""OpenTelemetry tracing, set up once per process.

Exporters follow the standard ``OTEL_*`` variables:

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

from opentelemetry import context, propagate, trace
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
    """Handle of the process's tracer provider; ``shutdown`` flushes pending spans."""

    def __init__(self, provider: TracerProvider, sink: IO[str] | None) -> None:
        self.provider = provider
        self._sink = sink

    def shutdown(self) -> None:
        self.provider.shutdown()
        if self._sink is not None:
            self._sink.close()


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
    return Telemetry(provider, sink)


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
