"""The public events of the event store, in position order: what the publisher and the
webhook dispatcher read.

Each internal event of a request stream that has a public form becomes its public event
(:func:`shared.public.public_event`); the request's facts (document type, kecamatan) come
from its first event, looked up once per request and kept in a small bounded cache.
"""

from __future__ import annotations

from collections import OrderedDict

from shared.eventstore.envelope import RecordedEvent
from shared.eventstore.store import EventStore
from shared.public import (
    DERIVED_FROM,
    REQUEST_CATEGORY,
    PublicEvent,
    TicketFacts,
    facts_of,
    has_public_form,
    public_event,
)


class PublicLog:
    """The public events of the event store, in position order, from any position.

    Reads through :meth:`EventStore.read_all` (which gives personal fields back as the store
    keeps them readable, or as placeholders after erasure) and looks up each request's facts
    once, keeping the recent ones in a small bounded cache.
    """

    def __init__(self, store: EventStore, key: bytes, *, cache_size: int = 10_000) -> None:
        self._store = store
        self._key = key
        self._cache_size = cache_size
        self._facts: OrderedDict[str, TicketFacts | None] = OrderedDict()

    async def read(
        self, after: int, limit: int = 500, types: frozenset[str] | None = None
    ) -> tuple[list[PublicEvent], int]:
        """Public events after position ``after``, scanning at most ``limit`` internal
        events, and the last position scanned: the next call's ``after``, which moves past
        events that have no public form. ``types`` keeps only those public types."""
        sourced, scanned = await self.read_sourced(after, limit, types)
        return [public for public, _ in sourced], scanned

    async def read_sourced(
        self, after: int, limit: int = 500, types: frozenset[str] | None = None
    ) -> tuple[list[tuple[PublicEvent, RecordedEvent]], int]:
        """As :meth:`read`, each public event with the internal event it came from (whose
        metadata carries the trace context)."""
        # Only the internal types that have a public form are read (and their personal
        # fields opened): most of the log (conversations, notifications) has none.
        wanted = [
            DERIVED_FROM[t] for t in (DERIVED_FROM if types is None else types) if t in DERIVED_FROM
        ]
        if not wanted:
            return [], after
        # Positions are gapless and commit in order (see the store): everything up to the
        # head read first is committed, so a short filtered read scanned up to it.
        head = await self._store.last_position()
        recorded = await self._store.read_all(after_position=after, limit=limit, event_types=wanted)
        last = recorded[-1].position if recorded else after
        scanned = last if len(recorded) == limit else max(head, last)
        sourced = []
        for event in recorded:
            facts = await self._facts_for(event)
            public = public_event(event, facts, self._key)
            if public is not None:
                sourced.append((public, event))
        return sourced, scanned

    async def _facts_for(self, event: RecordedEvent) -> TicketFacts | None:
        if not has_public_form(event.event_type) or event.category != REQUEST_CATEGORY:
            return None
        own = facts_of(event)
        if own is not None:
            self._remember(event.stream_id, own)
            return own
        if event.stream_id in self._facts:
            self._facts.move_to_end(event.stream_id)
            return self._facts[event.stream_id]
        first = await self._store.read_stream(event.stream_id)
        facts = facts_of(first[0]) if first else None
        self._remember(event.stream_id, facts)
        return facts

    def _remember(self, stream_id: str, facts: TicketFacts | None) -> None:
        self._facts[stream_id] = facts
        self._facts.move_to_end(stream_id)
        while len(self._facts) > self._cache_size:
            self._facts.popitem(last=False)
