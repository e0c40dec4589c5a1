"""Which events an operator means: a range of positions or a moment, a stream, some types.

Events are read through the event store's own read methods only (never SQL on ``events``),
so whatever the store does to stored data on the way out, the tools see what services see.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime

from shared.bus import jetstream as js
from shared.eventstore.envelope import RecordedEvent
from shared.eventstore.store import EventStore

PAGE = 500


@dataclass(frozen=True)
class Selection:
    """Events from ``from_position`` (or the first recorded at or after ``since``) up to
    ``until_position``, both included; optionally of one stream and of some types."""

    from_position: int | None = None
    since: datetime | None = None
    until_position: int | None = None
    stream: str | None = None
    types: tuple[str, ...] = ()

    def describe(self) -> str:
        parts = []
        if self.since is not None:
            parts.append(f"since {self.since.isoformat()}")
        if self.from_position is not None:
            parts.append(f"from position {self.from_position}")
        if self.until_position is not None:
            parts.append(f"until position {self.until_position}")
        if self.stream:
            parts.append(f"stream {self.stream}")
        if self.types:
            parts.append("types " + ", ".join(self.types))
        return ", ".join(parts) or "every event"


async def first_position(store: EventStore, selection: Selection) -> int:
    """Where the selection starts (1 when it names no start)."""
    start = 1
    if selection.from_position is not None:
        start = max(start, selection.from_position)
    if selection.since is not None:
        start = max(start, await store.position_at(selection.since))
    return start


def subject_matches(pattern: str, subject: str) -> bool:
    """NATS subject matching: ``*`` is one token, a final ``>`` one or more."""
    wanted, parts = pattern.split("."), subject.split(".")
    for index, piece in enumerate(wanted):
        if piece == ">":
            return len(parts) > index
        if index >= len(parts) or piece not in ("*", parts[index]):
            return False
    return len(wanted) == len(parts)


def matches(event: RecordedEvent, subjects: Collection[str]) -> bool:
    subject = js.subject_for(event)
    return any(subject_matches(pattern, subject) for pattern in subjects)


def types_of(subjects: Collection[str]) -> set[str] | None:
    """The event types a set of subject filters can match, None when any type can."""
    types: set[str] = set()
    for pattern in subjects:
        tokens = pattern.split(".")
        if len(tokens) != 4 or tokens[-1] in ("*", ">"):
            return None
        types.add(tokens[-1])
    return types


async def select(
    store: EventStore,
    selection: Selection,
    *,
    until: int,
    subjects: Sequence[str] | None = None,
    page: int = PAGE,
) -> AsyncIterator[RecordedEvent]:
    """The selected events up to position ``until`` in position order, only those on
    ``subjects`` when given."""
    start = await first_position(store, selection)
    if selection.until_position is not None:
        until = min(until, selection.until_position)
    types: set[str] | None = set(selection.types) or None
    if subjects is not None and (implied := types_of(subjects)) is not None:
        types = implied if types is None else types & implied
        if not types:
            return

    def wanted(event: RecordedEvent) -> bool:
        return (
            start <= event.position <= until
            and (types is None or event.event_type in types)
            and (subjects is None or matches(event, subjects))
        )

    if selection.stream is not None:
        for event in await store.read_stream(selection.stream):
            if wanted(event):
                yield event
        return
    after = start - 1
    while after < until:
        batch = await store.read_all(
            after_position=after, limit=page, event_types=sorted(types) if types else None
        )
        if not batch:
            return
        for event in batch:
            if event.position > until:
                return
            if wanted(event):
                yield event
        after = batch[-1].position
