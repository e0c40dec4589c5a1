"""The event store as the operators' tools open it: exactly as the services do.

Personal data is sealed in the log with the citizens' keys (:mod:`shared.keyring`); a tool
that reads events to show or replay them must open them as a service would, and a handler
it runs must seal what it appends, so both go through a store with the office's sealer.
"""

from __future__ import annotations

from shared.config import Settings
from shared.eventstore.envelope import RecordedEvent
from shared.eventstore.store import EventStore
from shared.keyring import Sealer


async def connect(dsn: str, settings: Settings, *, max_size: int = 4) -> EventStore:
    return await EventStore.connect(
        dsn, min_size=1, max_size=max_size, sealer=Sealer.from_settings(settings)
    )


async def as_stored(store: EventStore, event: RecordedEvent) -> RecordedEvent:
    """``event`` as the log holds it (its personal data sealed), which is what the relay
    publishes and therefore what a consumer parks in its dead letters."""
    raw = EventStore(store.pool)  # no sealer: reads return the stored form
    found = await raw.read_all(after_position=event.position - 1, limit=1)
    return found[0] if found and found[0].event_id == event.event_id else event
