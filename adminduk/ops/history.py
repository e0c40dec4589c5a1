"""Reading the log as an operator: ``adminduk events tail`` and ``adminduk events show``.

Every line is about what happened (position, time, stream, type, ticket, actor) and never
about who: event data is shown through :mod:`adminduk.ops.redaction` only.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final, TextIO

import asyncpg

from adminduk.ops.redaction import describe, redact_data
from adminduk.ops.selection import Selection, first_position, select
from shared.contracts import citizen_status_of, complaint_stream, registry, request_stream
from shared.eventstore.envelope import RecordedEvent
from shared.eventstore.store import NOTIFY_CHANNEL, EventStore

TICKET: Final = re.compile(r"[A-Z0-9-]{6,24}")
"""A ticket as citizens see it (docs/FORMATS.md): capital letters, digits and ``-``."""
_TICKET_FIELDS: Final = ("ticket", "existing_ticket", "related_ticket", "duplicate_of")


class UnknownTicketError(LookupError):
    """No request or complaint has this ticket."""


# -- one event ----------------------------------------------------------------------------


def ticket_of(event: RecordedEvent) -> str | None:
    """The ticket an event is about, when it names one."""
    value = event.data.get("ticket")
    if isinstance(value, str):
        return value
    for prefix in ("request-", "complaint-"):
        if event.stream_id.startswith(prefix):
            return event.stream_id.removeprefix(prefix)
    return None


def timestamp(moment: datetime) -> str:
    """UTC, to the millisecond: ``2026-11-23T03:00:01.123Z``."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def line(event: RecordedEvent) -> str:
    """One event on one line, without its data."""
    return (
        f"{event.position:>9}  {timestamp(event.recorded_at)}  {event.stream_id:<46} "
        f"{event.event_type:<28} ticket={ticket_of(event) or '-'} "
        f"actor={event.metadata.actor or '-'}"
    )


def envelope(event: RecordedEvent) -> dict[str, Any]:
    """The event's envelope as JSON-ready values, its data redacted."""
    return {
        "position": event.position,
        "event_id": str(event.event_id),
        "stream_id": event.stream_id,
        "stream_version": event.stream_version,
        "event_type": event.event_type,
        "schema_version": event.schema_version,
        "occurred_at": event.occurred_at.isoformat(),
        "recorded_at": event.recorded_at.isoformat(),
        "ticket": ticket_of(event),
        "metadata": {
            "correlation_id": _text(event.metadata.correlation_id),
            "causation_id": _text(event.metadata.causation_id),
            "actor": event.metadata.actor,
            "trace": dict(event.metadata.trace),
        },
        "data": redact_data(event.data),
    }


def _text(value: object | None) -> str | None:
    return None if value is None else str(value)


def as_json(event: RecordedEvent) -> str:
    return json.dumps(envelope(event), ensure_ascii=False, default=str)


# -- tail ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class TailOptions:
    selection: Selection
    lines: int = 20
    """Without a start (position or time): the last ``lines`` matching events."""
    follow: bool = False
    json: bool = False
    poll_interval: float = 2.0
    """Longest wait for new events when no NOTIFY arrives (a missed one is caught up)."""


async def tail(
    store: EventStore, options: TailOptions, out: TextIO, stop: asyncio.Event | None = None
) -> int:
    """Print the selected events; with ``follow``, then every new one until ``stop``.
    Returns the number of events printed."""
    selection = options.selection
    head = await store.last_position()
    if selection.from_position is None and selection.since is None:
        shown = await _last(store, selection, head, options.lines)
    else:
        shown = [event async for event in select(store, selection, until=head)]
    for event in shown:
        _print(event, options, out)
    printed = len(shown)
    if not options.follow:
        return printed
    after = max(head, await first_position(store, selection) - 1)
    if selection.until_position is not None and after >= selection.until_position:
        return printed
    async with _wake_ups(store) as woken:
        while stop is None or not stop.is_set():
            newest = await store.last_position()
            if selection.until_position is not None:
                newest = min(newest, selection.until_position)
            if newest > after:
                following = Selection(
                    from_position=after + 1, stream=selection.stream, types=selection.types
                )
                async for event in select(store, following, until=newest):
                    _print(event, options, out)
                    printed += 1
                after = newest
                if selection.until_position is not None and after >= selection.until_position:
                    break
                continue
            await _wait(woken, stop, options.poll_interval)
    return printed


def _print(event: RecordedEvent, options: TailOptions, out: TextIO) -> None:
    out.write((as_json(event) if options.json else line(event)) + "\n")
    out.flush()


async def _last(
    store: EventStore, selection: Selection, head: int, count: int
) -> list[RecordedEvent]:
    """The last ``count`` selected events up to ``head``: windows back from the head,
    four times larger each time, until enough are found or the log's start is reached."""
    if count <= 0:
        return []
    window = count
    while True:
        start = max(head - window + 1, 1)
        found = [
            event
            async for event in select(
                store,
                Selection(
                    from_position=start,
                    until_position=selection.until_position,
                    stream=selection.stream,
                    types=selection.types,
                ),
                until=head,
            )
        ]
        if len(found) >= count or start == 1 or selection.stream is not None:
            return found[-count:]
        window *= 4


@contextlib.asynccontextmanager
async def _wake_ups(store: EventStore) -> AsyncIterator[asyncio.Event]:
    """An event set whenever an append commits (the store NOTIFYs its channel)."""
    woken = asyncio.Event()

    def on_notify(*_: object) -> None:
        woken.set()

    async with store.pool.acquire() as connection:
        await connection.add_listener(NOTIFY_CHANNEL, on_notify)
        try:
            yield woken
        finally:
            with contextlib.suppress(asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
                await connection.remove_listener(NOTIFY_CHANNEL, on_notify)


async def _wait(woken: asyncio.Event, stop: asyncio.Event | None, longest: float) -> None:
    waiters = [asyncio.ensure_future(woken.wait())]
    if stop is not None:
        waiters.append(asyncio.ensure_future(stop.wait()))
    try:
        await asyncio.wait(waiters, timeout=longest, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
    woken.clear()


# -- show ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class History:
    """Everything the log holds about one ticket, in position order."""

    ticket: str
    events: list[RecordedEvent]
    status: str | None
    doc_type: str | None
    kecamatan_code: str | None


async def history(store: EventStore, ticket: str) -> History:
    """The request (or complaint) stream, complaints about it, the citizen's messages and
    answers that mention it, and the notifications caused by any of those."""
    own = await store.read_stream(request_stream(ticket))
    own += await store.read_stream(complaint_stream(ticket))
    if not own:
        raise UnknownTicketError(ticket)
    found = {event.event_id: event for event in own}
    for complaint in await _complaints_about(store, ticket):
        found.update((event.event_id, event) for event in await store.read_stream(complaint))
    for citizen in {
        value
        for event in found.values()
        if isinstance(value := event.data.get("citizen"), str) and value.startswith("citizen-")
    }:
        found.update((e.event_id, e) for e in _about(await store.read_stream(citizen), found))
    for cause in list(found.values()):
        notifications = await store.read_stream(f"notification-{cause.event_id}")
        found.update((event.event_id, event) for event in notifications)
    events = sorted(found.values(), key=lambda event: event.position)
    # The summary reads the first event decoded (upcast); the lines show events as stored.
    first = registry.decode(own[0]) if own[0].event_type in registry else None
    return History(
        ticket=ticket,
        events=events,
        status=citizen_status_of(event for event in events if event.stream_id == own[0].stream_id),
        doc_type=_text(getattr(first, "doc_type", None)),
        kecamatan_code=_text(getattr(first, "kecamatan_code", None)),
    )


async def _complaints_about(store: EventStore, ticket: str) -> list[str]:
    """Streams of complaints that name ``ticket`` (complaints are few: read them all)."""
    streams: list[str] = []
    after = 0
    while batch := await store.read_category("complaint", after_position=after):
        streams.extend(
            event.stream_id
            for event in batch
            if event.event_type == "ComplaintReceived"
            and event.data.get("related_ticket") == ticket
        )
        after = batch[-1].position
    return streams


def _about(
    citizen_events: Sequence[RecordedEvent], found: dict[Any, RecordedEvent]
) -> Iterable[RecordedEvent]:
    """A citizen's events that name one of the found tickets or caused a found event (the
    message that made the request), and the messages behind those (``#STATUS#...``)."""
    tickets = {ticket for event in found.values() if (ticket := ticket_of(event)) is not None}
    causes = {event.metadata.causation_id for event in found.values()}
    chosen = [
        event
        for event in citizen_events
        if event.event_id in causes
        or any(event.data.get(field) in tickets for field in _TICKET_FIELDS)
    ]
    behind = {event.metadata.causation_id for event in chosen}
    return [*chosen, *(event for event in citizen_events if event.event_id in behind)]


def print_history(found: History, out: TextIO, *, as_json_lines: bool = False) -> None:
    if as_json_lines:
        for event in found.events:
            out.write(as_json(event) + "\n")
        return
    out.write(
        f"ticket {found.ticket}  document {found.doc_type or '-'}  "
        f"kecamatan {found.kecamatan_code or '-'}  status {found.status or '-'}  "
        f"({len(found.events)} events)\n"
    )
    previous: datetime | None = None
    for event in found.events:
        step = "-" if previous is None else f"+{duration(event.recorded_at - previous)}"
        previous = event.recorded_at
        out.write(
            f"{event.position:>9}  {timestamp(event.recorded_at)}  {step:>9}  "
            f"{event.event_type:<28} {event.stream_id}  actor={event.metadata.actor or '-'}\n"
        )
        if event.data:
            out.write(f"{'':>11}{describe(event.data)}\n")
    if len(found.events) > 1:
        total = found.events[-1].recorded_at - found.events[0].recorded_at
        out.write(f"first to last event: {duration(total)}\n")


def duration(span: timedelta) -> str:
    """A short human duration: ``0.25s``, ``3m05s``, ``2h01m``, ``1d04h``."""
    seconds = max(span.total_seconds(), 0.0)
    if seconds < 60:
        return f"{seconds:.2f}s" if seconds < 10 else f"{seconds:.0f}s"
    minutes, second = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{second:02d}s"
    hours, minute = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h{minute:02d}m"
    days, hour = divmod(hours, 24)
    return f"{days}d{hour:02d}h"
