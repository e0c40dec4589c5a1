"""``adminduk traces TICKET``: one request's path across the services, from the span files.

The embedded default writes each process's spans to ``$ADMINDUK_DATA_DIR/traces/<service>.jsonl``
(one JSON span per line, :mod:`shared.telemetry`). The traces of a request are known from the
event store: every event carries the trace context of the span that wrote it
(``metadata.trace``), messages the office sent about the request live on
``notification-<cause event id>`` streams, spans of request events carry the ticket
(``adminduk.ticket``), and an officer who acts hours later starts a trace of their own that
links to the trace the request arrived in. This command gathers those traces from the span
files of all services and prints each one as a tree, the traces in time order.

Span files grow until they are rotated, so they are streamed, never loaded whole: a file is
entered near the request's first event by a binary search (a process writes its spans in the
order they end) and left once spans end well after the request's last event (``--margin``).
Only an allow-list of attributes is shown: spans carry no personal data, and should one ever
do, this command would still not print it.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import io
import json
import os
import re
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any, Final

import asyncpg

from shared.config import Settings, load_settings
from shared.contracts import complaint_stream, request_stream
from shared.eventstore.envelope import RecordedEvent
from shared.eventstore.store import EventStore
from shared.privacy import redact
from shared.runtime.database import database_url

COMMAND: Final = "traces"
TICKET_PATTERN: Final = re.compile(r"[A-Z0-9-]{6,24}")
DEFAULT_MARGIN: Final = timedelta(minutes=30)
"""Spans are looked for this long before a request's first event and after its last one:
consumer retries, back-offs and clocks of other machines stay well inside it."""
MAX_ROUNDS: Final = 4
"""Passes over the files: each may discover traces (linked, or carrying the ticket) whose
earlier spans were already passed; a chain longer than this is not followed."""
SEARCH_GRANULE: Final = 64 * 1024
"""The binary search stops when the part left is this small, and reads it line by line."""

SAFE_ATTRIBUTES: Final = frozenset(
    {
        "adminduk.ticket",
        "adminduk.doc_type",
        "adminduk.kecamatan",
        "adminduk.consumer",
        "adminduk.event.type",
        "adminduk.event.position",
        "adminduk.stream.category",
        "adminduk.deliveries",
        "adminduk.officer.id",
        "adminduk.position.first",
        "adminduk.position.last",
        "adminduk.webhook.appends",
        "adminduk.webhook.attempt",
        "adminduk.webhook.subscription",
        "http.request.method",
        "http.response.status_code",
        "http.route",
        "messaging.system",
        "messaging.destination.name",
        "messaging.batch.message_count",
        "messaging.operation",
    }
)
SAFE_ATTRIBUTE_PATTERN: Final = re.compile(r"adminduk\.(first_action|decision)\.\w+_seconds")

# The SDK writes times in one fixed format (``ns_to_iso_str``), so they compare as strings.
_TIME_FORMAT: Final = "%Y-%m-%dT%H:%M:%S.%fZ"
_END_TIME: Final = re.compile(rb'"end_time":\s*"([^"]*)"')
_TRACEPARENT: Final = re.compile(r"[0-9a-f]{2}-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}")

Attribute = str | int | float | bool | list[Any]


class TracesError(Exception):
    """Why no tree can be shown; the message is for the person at the terminal."""


# -- what the event store says ---------------------------------------------------------------


@dataclass(frozen=True)
class WrittenEvent:
    """An event of the request and the span that wrote it (if it was written in one)."""

    event_type: str
    stream: str
    stream_version: int
    recorded_at: datetime
    trace_id: str | None
    span_id: str | None

    @property
    def label(self) -> str:
        return f"{self.event_type} ({self.stream} v{self.stream_version})"

    @classmethod
    def of(cls, event: RecordedEvent) -> WrittenEvent:
        match = _TRACEPARENT.fullmatch(event.metadata.trace.get("traceparent", ""))
        # The category only: a notification stream's id is an event id, not worth a column.
        return cls(
            event_type=event.event_type,
            stream=event.category,
            stream_version=event.stream_version,
            recorded_at=event.recorded_at,
            trace_id=match[1] if match else None,
            span_id=match[2] if match else None,
        )


async def request_events(store: EventStore, ticket: str) -> list[WrittenEvent]:
    """The request's (or complaint's) events and those of the messages sent because of them."""
    own = [
        *await store.read_stream(request_stream(ticket)),
        *await store.read_stream(complaint_stream(ticket)),
    ]
    sent: list[RecordedEvent] = []
    for event in own:
        sent.extend(await store.read_stream(f"notification-{event.event_id}"))
    return sorted(map(WrittenEvent.of, [*own, *sent]), key=lambda e: e.recorded_at)


# -- what the span files say -----------------------------------------------------------------


@dataclass(frozen=True)
class Span:
    """One finished span as the file exporter wrote it, with safe attributes only."""

    trace_id: str
    span_id: str
    parent_id: str | None
    name: str
    kind: str
    service: str
    start: datetime
    end: datetime
    status: str
    status_description: str | None
    attributes: dict[str, Attribute]
    linked_traces: tuple[str, ...]
    messaging: bool
    """A messaging span of the bus (per pulled batch, shared by many requests)."""

    @property
    def duration(self) -> timedelta:
        return self.end - self.start


def _hex(value: object) -> str | None:
    return value.removeprefix("0x") if isinstance(value, str) and value else None


def _time(value: object) -> datetime:
    if not isinstance(value, str):
        raise ValueError("a span without a time")
    return datetime.fromisoformat(value)


def _service(resource: object, fallback: str) -> str:
    attributes = resource.get("attributes") if isinstance(resource, dict) else None
    name = attributes.get("service.name") if isinstance(attributes, dict) else None
    return str(name).removeprefix("adminduk-") if name else fallback


def safe_attributes(attributes: object) -> dict[str, Attribute]:
    """The attributes this command may print: an allow-list, whatever a span carries."""
    if not isinstance(attributes, dict):
        return {}
    return {
        key: value
        for key, value in sorted(attributes.items())
        if key in SAFE_ATTRIBUTES or SAFE_ATTRIBUTE_PATTERN.fullmatch(key)
    }


def parse_span(line: bytes, fallback_service: str) -> Span | None:
    """A span from one line of a span file; ``None`` for a line that is not one (a line torn
    by two replicas writing the same file, say)."""
    try:
        raw = json.loads(line)
        context = raw["context"]
        status = raw.get("status") or {}
        trace_id, span_id = _hex(context["trace_id"]), _hex(context["span_id"])
        if trace_id is None or span_id is None:
            return None
        description = status.get("description")
        attributes = raw.get("attributes") or {}
        return Span(
            trace_id=trace_id,
            span_id=span_id,
            parent_id=_hex(raw.get("parent_id")),
            name=str(raw["name"]),
            kind=str(raw.get("kind", "")).removeprefix("SpanKind."),
            service=_service(raw.get("resource"), fallback_service),
            start=_time(raw["start_time"]),
            end=_time(raw["end_time"]),
            status=str(status.get("status_code", "UNSET")),
            # Our spans record redacted errors; a library's might not.
            status_description=redact(str(description)) if description else None,
            attributes=safe_attributes(attributes),
            linked_traces=tuple(
                trace
                for link in raw.get("links") or ()
                if (trace := _hex((link.get("context") or {}).get("trace_id")))
            ),
            messaging="messaging.system" in attributes,
        )
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def span_files(folder: Path) -> list[Path]:
    """Every service's span file, rotated ones (``.jsonl.1``, ``.jsonl.gz``) included."""
    if not folder.is_dir():
        return []
    return sorted(path for path in folder.glob("*.jsonl*") if path.is_file())


def _service_of(path: Path) -> str:
    return path.name.split(".", 1)[0]


def _end_time(line: bytes) -> bytes | None:
    match = _END_TIME.search(line)
    return match[1] if match else None


def _first_end_time(handle: Iterable[bytes]) -> bytes | None:
    """End time of the first whole line from the handle's position on."""
    for line in handle:
        if (end := _end_time(line)) is not None:
            return end
    return None


def _entry_offset(handle: IO[bytes], size: int, not_before: bytes) -> int:
    """An offset at or before the first line that ends at ``not_before`` or later.

    Lines are in the order their spans ended (per process; replicas sharing a file interleave
    by a few seconds, which the margin covers), so a binary search over byte offsets finds
    it without reading the lines before."""
    low, high = 0, size
    while high - low > SEARCH_GRANULE:
        middle = (low + high) // 2
        handle.seek(middle)
        handle.readline()  # the rest of a line cut in the middle
        end = _first_end_time(handle)
        if end is not None and end < not_before:
            low = middle
        else:
            high = middle
    return low


@dataclass(frozen=True)
class Window:
    """The span end times worth reading, as the exporter writes them."""

    first: bytes
    last: bytes

    @classmethod
    def around(cls, events: Sequence[WrittenEvent], margin: timedelta) -> Window:
        first = min(event.recorded_at for event in events) - margin
        last = max(event.recorded_at for event in events) + margin
        return cls(
            first.astimezone(UTC).strftime(_TIME_FORMAT).encode(),
            last.astimezone(UTC).strftime(_TIME_FORMAT).encode(),
        )


def window_lines(path: Path, window: Window) -> Iterator[bytes]:
    """The lines of a span file whose spans end inside the window, streamed."""
    if path.suffix == ".gz":
        # No seeking in a compressed file: read from its start.
        with gzip.open(path, "rb") as compressed:
            yield from _until(compressed, window)
        return
    with path.open("rb") as handle:
        offset = _entry_offset(handle, path.stat().st_size, window.first)
        handle.seek(offset)
        if offset:
            handle.readline()
        yield from _until(handle, window)


def _until(lines: Iterable[bytes], window: Window) -> Iterator[bytes]:
    for line in lines:
        end = _end_time(line)
        if end is None:
            continue
        if end > window.last:
            return
        if end >= window.first:
            yield line


@dataclass
class Collected:
    """What the span files hold of a request."""

    spans: dict[str, Span] = field(default_factory=dict)
    unreadable: int = 0
    oldest_end: datetime | None = None
    """When the oldest span in the files ended: later than the request means rotated away."""


def collect_spans(
    files: Sequence[Path], traces: set[str], ticket: str, window: Window
) -> Collected:
    """Spans of ``traces``, of traces linking to them, and of traces whose spans carry the
    ticket; each pass over the files looks for the traces the previous one discovered."""
    collected = Collected(oldest_end=_oldest_end(files))
    ticket_needle = f'"adminduk.ticket": "{ticket}"'.encode()
    searched: set[str] = set()
    pending = set(traces)
    for round_number in range(MAX_ROUNDS):
        # The first pass runs even without a known trace: spans may carry the ticket.
        if round_number and not pending:
            break
        needles = [trace.encode() for trace in pending]
        discovered: set[str] = set()
        for path in files:
            for line in window_lines(path, window):
                if ticket_needle not in line and not any(n in line for n in needles):
                    continue
                span = parse_span(line, _service_of(path))
                if span is None:
                    collected.unreadable += 1
                    continue
                known = searched | pending
                links_in = not span.messaging and any(t in known for t in span.linked_traces)
                carries_ticket = span.attributes.get("adminduk.ticket") == ticket
                if span.trace_id in known or links_in or carries_ticket:
                    collected.spans[span.span_id] = span
                    if span.trace_id not in known:
                        discovered.add(span.trace_id)
        searched |= pending
        pending = discovered - searched
    return collected


def _open(path: Path) -> io.BufferedIOBase:
    return gzip.open(path, "rb") if path.suffix == ".gz" else path.open("rb")


def _oldest_end(files: Sequence[Path]) -> datetime | None:
    ends = []
    for path in files:
        with _open(path) as handle:
            end = _first_end_time(handle)
        if end is not None:
            ends.append(datetime.fromisoformat(end.decode()))
    return min(ends, default=None)


# -- the tree --------------------------------------------------------------------------------


@dataclass
class Node:
    span: Span
    children: list[Node] = field(default_factory=list)
    wrote: list[WrittenEvent] = field(default_factory=list)
    orphan: bool = False
    """Its parent span is not in the files (not exported, or rotated away)."""


@dataclass
class Trace:
    trace_id: str
    roots: list[Node]
    spans: int
    start: datetime
    end: datetime
    links_to: list[str]


def build_traces(spans: Iterable[Span], events: Sequence[WrittenEvent]) -> list[Trace]:
    """Spans grouped by trace, nested by parent, siblings and traces in time order."""
    by_trace: dict[str, dict[str, Node]] = {}
    for span in spans:
        by_trace.setdefault(span.trace_id, {})[span.span_id] = Node(span)
    for event in events:
        node = by_trace.get(event.trace_id or "", {}).get(event.span_id or "")
        if node is not None:
            node.wrote.append(event)
    traces = []
    for trace_id, nodes in by_trace.items():
        roots = []
        for node in nodes.values():
            parent = nodes.get(node.span.parent_id or "")
            if parent is None:
                node.orphan = node.span.parent_id is not None
                roots.append(node)
            else:
                parent.children.append(node)
        for node in nodes.values():
            node.children.sort(key=lambda child: child.span.start)
        roots.sort(key=lambda root: root.span.start)
        links = {t for node in roots for t in node.span.linked_traces if t != trace_id}
        traces.append(
            Trace(
                trace_id=trace_id,
                roots=roots,
                spans=len(nodes),
                start=min(node.span.start for node in nodes.values()),
                end=max(node.span.end for node in nodes.values()),
                links_to=sorted(links & by_trace.keys()),
            )
        )
    return sorted(traces, key=lambda trace: trace.start)


def format_duration(value: timedelta) -> str:
    """``0.8 ms``, ``412.3 ms``, ``3.25 s``, ``4m 05s``, ``2h 13m 05s``: short, and exact
    where it matters."""
    seconds = value.total_seconds()
    sign = "-" if seconds < 0 else ""
    seconds = abs(seconds)
    if seconds < 1:
        return f"{sign}{seconds * 1000:.1f} ms"
    if seconds < 60:
        return f"{sign}{seconds:.2f} s"
    minutes, rest = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{sign}{minutes}m {rest:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{sign}{hours}h {minutes:02d}m {rest:02d}s"


def _clock(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + " UTC"


_SAID_BY_NAME: Final = frozenset({"adminduk.consumer", "adminduk.event.type"})
_LAST: Final = "└─ "
_MIDDLE: Final = "├─ "


def _status(span: Span) -> str:
    return "ERROR" if span.status == "ERROR" else "ok"


def _attributes_text(span: Span) -> str:
    """``key=value`` pairs, less those the span's name already says (a consumer's name and
    event type)."""
    return " ".join(
        f"{key}={value}"
        for key, value in span.attributes.items()
        if key not in _SAID_BY_NAME or str(value) not in span.name
    )


def render_text(ticket: str, traces: Sequence[Trace], notes: Sequence[str]) -> str:
    origin = traces[0].start
    spans = sum(trace.spans for trace in traces)
    lines = [
        f"{ticket}: {len(traces)} trace(s), {spans} span(s), first span {_clock(origin)}",
        "offset: from the first span; duration: of the span itself",
    ]
    previous: Trace | None = None
    for trace in traces:
        header = f"trace {trace.trace_id}  {_clock(trace.start)}  lasted "
        header += format_duration(trace.end - trace.start)
        if trace.links_to:
            header += "  links to " + ", ".join(t[:8] for t in trace.links_to)
        if previous is not None:
            header += f"  ({format_duration(trace.start - previous.start)} after the previous)"
        lines.extend(["", header, _row("offset", "duration", "status", "service", "span")])
        for root in trace.roots:
            lines.extend(_node_lines(root, origin))
        previous = trace
    lines.extend(["", *notes] if notes else [])
    return "\n".join(lines)


def _row(offset: str, duration: str, status: str, service: str, tree: str) -> str:
    return f"  {offset:>12}  {duration:>10}  {status:<6}  {service:<13}  {tree}"


_TREE_COLUMN: Final = len(_row("", "", "", "", ""))


def _node_lines(node: Node, origin: datetime, prefix: str = "", connector: str = "") -> list[str]:
    """The span's line, what it wrote, then its children, drawn as a tree."""
    span = node.span
    text = span.name
    if node.orphan:
        text += "  (parent span not in the files)"
    if attributes := _attributes_text(span):
        text += f"  [{attributes}]"
    if span.status_description:
        text += f"  error: {span.status_description}"
    lines = [
        _row(
            "+" + format_duration(span.start - origin),
            format_duration(span.duration),
            _status(span),
            span.service,
            prefix + connector + text,
        )
    ]
    inner = prefix + ("" if not connector else "   " if connector == _LAST else "│  ")
    mark = "│  " if node.children else "   "
    lines.extend(" " * _TREE_COLUMN + inner + mark + f"wrote {event.label}" for event in node.wrote)
    for index, child in enumerate(node.children):
        last = index == len(node.children) - 1
        lines.extend(_node_lines(child, origin, inner, _LAST if last else _MIDDLE))
    return lines


def _node_json(node: Node, origin: datetime) -> dict[str, Any]:
    span = node.span
    return {
        "span_id": span.span_id,
        "parent_id": span.parent_id,
        "parent_missing": node.orphan,
        "service": span.service,
        "name": span.name,
        "kind": span.kind,
        "start": span.start.isoformat(),
        "offset_ms": round((span.start - origin).total_seconds() * 1000, 3),
        "duration_ms": round(span.duration.total_seconds() * 1000, 3),
        "status": span.status,
        "status_description": span.status_description,
        "attributes": span.attributes,
        "linked_traces": list(span.linked_traces),
        "wrote": [
            {"event_type": e.event_type, "stream": e.stream, "version": e.stream_version}
            for e in node.wrote
        ],
        "children": [_node_json(child, origin) for child in node.children],
    }


def render_json(
    ticket: str, traces: Sequence[Trace], missing: Sequence[str], untraced: Sequence[WrittenEvent]
) -> str:
    origin = traces[0].start
    document = {
        "ticket": ticket,
        "first_span": origin.isoformat(),
        "traces": [
            {
                "trace_id": trace.trace_id,
                "start": trace.start.isoformat(),
                "offset_ms": round((trace.start - origin).total_seconds() * 1000, 3),
                "duration_ms": round((trace.end - trace.start).total_seconds() * 1000, 3),
                "spans": trace.spans,
                "links_to": trace.links_to,
                "roots": [_node_json(root, origin) for root in trace.roots],
            }
            for trace in traces
        ],
        "missing_traces": list(missing),
        "untraced_events": [
            {
                "event_type": e.event_type,
                "stream": e.stream,
                "version": e.stream_version,
                "recorded_at": e.recorded_at.isoformat(),
            }
            for e in untraced
        ],
    }
    return json.dumps(document, indent=2)


# -- the command -----------------------------------------------------------------------------


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        COMMAND,
        help="one request's path across the services, from the span files",
        description="Print the traces of one request (the embedded default's span files "
        "under $ADMINDUK_DATA_DIR/traces) as trees: service, span, offset, duration, status.",
    )
    parser.add_argument("ticket", help="the request's ticket, e.g. KTP-7Q2M9XAB")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a tree")
    parser.add_argument(
        "--data-dir", type=Path, help="the runtime's data folder (default: ADMINDUK_DATA_DIR)"
    )
    parser.add_argument(
        "--margin",
        type=float,
        default=DEFAULT_MARGIN.total_seconds() / 60,
        metavar="MINUTES",
        help="read spans ending this long before the request's first event and after its "
        "last one (default %(default)g)",
    )


def run(args: argparse.Namespace) -> int:
    ticket = str(args.ticket).strip().upper()
    if not TICKET_PATTERN.fullmatch(ticket):
        print(
            f"adminduk traces: {args.ticket!r} is not a ticket "
            "(capital letters, digits and '-', 6 to 24 characters)",
            file=sys.stderr,
        )
        return 2
    if args.margin < 0:
        print("adminduk traces: --margin cannot be negative", file=sys.stderr)
        return 2
    settings = load_settings()
    data_dir = Path(args.data_dir) if args.data_dir else settings.data_dir
    try:
        output = show(
            ticket,
            settings,
            data_dir,
            as_json=bool(args.json),
            margin=timedelta(minutes=args.margin),
        )
    except TracesError as error:
        print(f"adminduk traces: {error}", file=sys.stderr)
        return 1
    print(output)
    return 0


def show(
    ticket: str, settings: Settings, data_dir: Path, *, as_json: bool, margin: timedelta
) -> str:
    """The traces of ``ticket`` as text or JSON; :class:`TracesError` says why there are none."""
    events = asyncio.run(_load_events(database_dsn(settings, data_dir), ticket))
    if not events:
        raise TracesError(f"unknown ticket {ticket}: no request or complaint has it")
    wanted = {event.trace_id for event in events if event.trace_id}
    folder = data_dir / "traces"
    files = span_files(folder)
    if not files:
        raise TracesError(_no_span_files(folder, ticket, wanted))
    collected = collect_spans(files, wanted, ticket, Window.around(events, margin))
    if not collected.spans:
        raise TracesError(_not_in_files(folder, ticket, events, wanted, collected))
    traces = build_traces(collected.spans.values(), events)
    shown = {trace.trace_id for trace in traces}
    missing = sorted(wanted - shown)
    untraced = [event for event in events if event.trace_id is None]
    if as_json:
        return render_json(ticket, traces, missing, untraced)
    return render_text(ticket, traces, _notes(traces, missing, untraced, collected))


def database_dsn(settings: Settings, data_dir: Path) -> str:
    """The configured database, else that of the embedded runtime under ``data_dir`` (which
    ``--data-dir`` may point elsewhere than the settings do)."""
    found = database_url(settings, data_dir)
    if found is None:
        raise TracesError(
            f"no database: set ADMINDUK_DATABASE_URL, or start the embedded runtime "
            f"(make run) with its data in {data_dir}"
        )
    return found


async def _load_events(dsn: str, ticket: str) -> list[WrittenEvent]:
    try:
        store = await EventStore.connect(dsn, min_size=1, max_size=2)
        try:
            return await request_events(store, ticket)
        finally:
            await store.close()
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
        # The type only: the URL may hold a password, the message may quote it.
        raise TracesError(f"cannot read the event store ({type(error).__name__})") from error


def _no_span_files(folder: Path, ticket: str, traces: set[str]) -> str:
    exporter = os.environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    endpoint = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or os.environ.get(
        "OTEL_EXPORTER_OTLP_ENDPOINT"
    )
    ids = ", ".join(sorted(traces)) or "none recorded"
    if exporter == "otlp" or (not exporter and endpoint):
        where = endpoint or "http://localhost:4318 (the OTLP default)"
        return (
            f"no span files in {folder}: spans are exported over OTLP to {where}. "
            f"Look up {ticket} there (tag adminduk.ticket={ticket}) or its traces by id: {ids}"
        )
    if exporter == "console":
        return (
            f"no span files in {folder}: OTEL_TRACES_EXPORTER=console writes spans to the "
            f"services' standard output. Traces of {ticket}: {ids}"
        )
    if exporter == "none":
        return f"no span files in {folder}: tracing is off (OTEL_TRACES_EXPORTER=none)"
    return (
        f"no span files in {folder}: the services have not written any there (another "
        f"--data-dir? exported elsewhere?). Traces of {ticket}: {ids}"
    )


def _not_in_files(
    folder: Path,
    ticket: str,
    events: Sequence[WrittenEvent],
    traces: set[str],
    collected: Collected,
) -> str:
    if not traces:
        return f"the events of {ticket} were written outside any trace; nothing to show"
    began = events[0].recorded_at
    ids = ", ".join(sorted(traces))
    if collected.oldest_end is not None and collected.oldest_end > began:
        return (
            f"the spans of {ticket} are no longer in {folder}: its first event is from "
            f"{_clock(began)}, the oldest span there ended {_clock(collected.oldest_end)} "
            f"(rotated away). Its traces: {ids}"
        )
    return (
        f"none of the traces of {ticket} are in the span files in {folder} (written by "
        f"another data folder, exported elsewhere, or rotated away): {ids}"
    )


def _notes(
    traces: Sequence[Trace],
    missing: Sequence[str],
    untraced: Sequence[WrittenEvent],
    collected: Collected,
) -> list[str]:
    notes = []
    if missing:
        notes.append(
            f"{len(missing)} trace(s) of this request are not in the span files (rotated "
            "away or exported elsewhere): " + ", ".join(missing)
        )
    origin = traces[0].start
    for event in untraced:
        notes.append(
            f"+{format_duration(event.recorded_at - origin)}  {event.label} was written "
            "outside a traced span"
        )
    if collected.unreadable:
        notes.append(f"{collected.unreadable} unreadable line(s) in the span files skipped")
    return notes
