"""The relay forwards a stored event's JSON without decoding it: what it publishes must
read back as exactly the event the store holds."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from shared.bus import jetstream as js
from shared.eventstore.envelope import Metadata, RecordedEvent


def test_a_stored_row_encodes_as_the_event_the_consumers_decode() -> None:
    event = RecordedEvent(
        event_id=uuid.uuid4(),
        event_type="RequestReceived",
        stream_id="request-KTP-7Q2M9XAB",
        stream_version=3,
        position=41,
        schema_version=2,
        data={"name": 'SITI "ä" AMINAH', "files": [1, 2], "nested": {"x": None}},
        metadata=Metadata(trace={"traceparent": "00-abc-def-01"}, actor="system:intake"),
        occurred_at=datetime(2026, 12, 7, 9, 30, tzinfo=UTC),
        recorded_at=datetime(2026, 12, 7, 9, 30, 0, 123456, tzinfo=UTC),
    )
    row = {
        "event_id": event.event_id,
        "event_type": event.event_type,
        "stream_id": event.stream_id,
        "stream_version": event.stream_version,
        "position": event.position,
        "schema_version": event.schema_version,
        # As Postgres gives jsonb back as text: its own spacing, not ours.
        "data": '{"name": "SITI \\"ä\\" AMINAH", "files": [1, 2], "nested": {"x": null}}',
        "metadata": event.metadata.model_dump_json(),
        "occurred_at": event.occurred_at,
        "recorded_at": event.recorded_at,
    }

    subject, payload, headers = js.encode_stored(row)  # type: ignore[arg-type]

    assert js.decode(payload) == event
    assert subject == js.subject_for(event) == "adminduk.events.request.RequestReceived"
    assert headers == js.headers_for(event)
