"""Which events an operator means: a range of positions or a moment, a stream, some types.

Events are opened by the event store's own :meth:`~shared.eventstore.store.EventStore.open`
(rows made by its ``recorded_from_row``), so whatever the store does to stored data on the
way out, the tools see what services see. A consumer's subjects are filtered by the
database (their categories and event types, on indexed columns), so a replay neither reads
nor unseals the events its handler would ignore.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from shared.bus import jetstream as js
from shared.eventstore.envelope import RecordedEvent
from shared.eventstore.store import COLUMNS, EventStore, recorded_from_row

PAGE = 1000

T = TypeVar("T")


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


def categories_of(subjects: Collection[str]) -> set[str] | None:
    """The stream categories a set of subject filters can match, None when any can."""
    categories: set[str] = set()
    prefix = js.SUBJECT_PREFIX.split(".")
    for pattern in subjects:
        tokens = pattern.split(".")
        if len(tokens) != len(prefix) + 2 or tokens[: len(prefix)] != prefix:
            return None
        if tokens[len(prefix)] in ("*", ">"):
            return None
        categories.add(tokens[len(prefix)])
    return categories


async def read_page(
    store: EventStore,
    *,
    after: int,
    until: int,
    limit: int,
    types: Collection[str] | None = None,
    categories: Collection[str] | None = None,
) -> list[RecordedEvent]:
    """Up to ``limit`` events after position ``after`` up to ``until``, of ``types`` and
    ``categories`` when given, opened by the store. An empty page means there are none."""
    rows = await store.pool.fetch(
        f"SELECT {COLUMNS} FROM events WHERE position > $1 AND position <= $2 "
        "AND ($4::text[] IS NULL OR event_type = ANY($4::text[])) "
        "AND ($5::text[] IS NULL OR category = ANY($5::text[])) "
        "ORDER BY position LIMIT $3",
        after,
        until,
        limit,
        sorted(types) if types else None,
        sorted(categories) if categories else None,
    )
    return await store.open([recorded_from_row(row) for row in rows])


async def read_ahead(items: AsyncIterator[T]) -> AsyncIterator[T]:
    """``items``, the next one read (from the database: a page of events, opened) while the
    caller works on the current one (handles its events)."""
    upcoming: asyncio.Future[T] = asyncio.ensure_future(anext(items))
    try:
        while True:
            try:
                item = await upcoming
            except StopAsyncIteration:
                return
            upcoming = asyncio.ensure_future(anext(items))
            yield item
    finally:
        if not upcoming.done():
            upcoming.cancel()
        with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration, Exception):
            await upcoming
        with contextlib.suppress(RuntimeError):
            await items.aclose()  # type: ignore[attr-defined]


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
    async for page_of_events in read_ahead(
        select_pages(store, selection, until=until, subjects=subjects, page=page)
    ):
        for event in page_of_events:
            yield event


async def select_pages(
    store: EventStore,
    selection: Selection,
    *,
    until: int,
    subjects: Sequence[str] | None = None,
    page: int = PAGE,
) -> AsyncIterator[list[RecordedEvent]]:
    """:func:`select` a page at a time (lists of at most ``page`` events, none empty)."""
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
        found = [event for event in await store.read_stream(selection.stream) if wanted(event)]
        for index in range(0, len(found), page):
            yield found[index : index + page]
        return
    categories = categories_of(subjects) if subjects is not None else None
    after = start - 1
    while after < until:
        batch = await read_page(
            store, after=after, until=until, limit=page, types=types, categories=categories
        )
        if not batch:
            return
        chosen = [event for event in batch if wanted(event)]
        if chosen:
            yield chosen
        after = batch[-1].position
