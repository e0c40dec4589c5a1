"""One way to load an aggregate, let it decide, and append its decision.

An aggregate is rebuilt from its stream: every event is read as stored (personal data
opened by the store's sealer first), decoded through the :class:`EventRegistry` (which
upcasts an old ``schema_version``), and applied. Its decision is appended with the version
it was made on, so a concurrent decision fails with ``ConcurrencyConflictError`` instead of
overwriting; inside a consumer, the append goes through the handler's context and carries
its inbox record in the same transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from shared.eventstore.envelope import (
    ANY,
    Decoded,
    Event,
    EventRegistry,
    NewEvent,
    RecordedEvent,
)
from shared.eventstore.store import AppendResult, EventStore, UnitOfWork


class Aggregate(Protocol):
    def apply(self, recorded: RecordedEvent, event: Event) -> None:
        """Change state by one event: as stored, and decoded (upcast)."""


A = TypeVar("A", bound=Aggregate)


class Appender(Protocol):
    """Where a decision is appended: the store itself, or a consumer's
    ``HandlerContext`` (whose append carries the message's inbox record)."""

    async def append(
        self, stream_id: str, events: Sequence[NewEvent], expected_version: int = ANY
    ) -> AppendResult: ...


@dataclass
class Loaded(Generic[A]):
    """An aggregate as its stream stands, with the stream's events as stored."""

    stream_id: str
    aggregate: A
    events: list[RecordedEvent]

    @property
    def version(self) -> int:
        """The stream's version the aggregate was folded at: the expected version of an
        append of its decision (0: the stream does not exist)."""
        return self.events[-1].stream_version if self.events else 0

    @property
    def exists(self) -> bool:
        return bool(self.events)


class Repository(Generic[A]):
    """Loads aggregates of one kind (``new`` makes an empty one) and appends decisions."""

    def __init__(self, store: EventStore, registry: EventRegistry, new: Callable[[], A]) -> None:
        self.store = store
        self.registry = registry
        self._new = new

    def decode(self, events: Iterable[RecordedEvent]) -> list[Decoded]:
        """Events with their decoded form (see :meth:`EventRegistry.decode_all`)."""
        return self.registry.decode_all(events)

    def apply(self, aggregate: A, events: Iterable[RecordedEvent]) -> A:
        """Apply stored events (e.g. those just appended) to ``aggregate``."""
        for recorded, event in self.decode(events):
            aggregate.apply(recorded, event)
        return aggregate

    def fold(self, events: Iterable[RecordedEvent]) -> A:
        return self.apply(self._new(), events)

    async def load(self, stream_id: str, *, skip_erased: bool = False) -> Loaded[A]:
        """The aggregate of ``stream_id``. ``skip_erased``: fold only the events whose
        personal data is still there (the version stays the stream's)."""
        events = await self.store.read_stream(stream_id)
        aggregate = self.fold(event for event in events if not (skip_erased and event.erased))
        return Loaded(stream_id, aggregate, events)

    async def append(
        self, loaded: Loaded[A], events: Sequence[NewEvent], *, via: Appender | None = None
    ) -> AppendResult:
        """Append ``loaded``'s decision at the version it was made on. ``via``: a
        consumer's context, so the append carries its inbox record (the store itself by
        default)."""
        appender: Appender = via if via is not None else self.store
        return await appender.append(loaded.stream_id, events, loaded.version)

    @staticmethod
    def stage(uow: UnitOfWork, loaded: Loaded[A], events: Sequence[NewEvent]) -> None:
        """Stage ``loaded``'s decision in a unit of work, at the version it was made on."""
        uow.append(loaded.stream_id, events, loaded.version)
