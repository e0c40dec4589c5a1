"""The JetStream side of the bus: the stream, its subjects and message headers."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Final

import asyncpg
import nats
import orjson
from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import NotFoundError

from shared.eventstore.envelope import RecordedEvent, stream_category

log = logging.getLogger(__name__)

STREAM_NAME: Final = "ADMINDUK_EVENTS"
SUBJECT_PREFIX: Final = "adminduk.events"
ALL_EVENTS: Final = f"{SUBJECT_PREFIX}.>"

PUBLIC_STREAM_NAME: Final = "ADMINDUK_PUBLIC"
"""Public events for integrators (no personal data), one subject per event type."""
PUBLIC_SUBJECT_PREFIX: Final = "adminduk.public"
ALL_PUBLIC: Final = f"{PUBLIC_SUBJECT_PREFIX}.>"

HEADER_MSG_ID: Final = "Nats-Msg-Id"
HEADER_POSITION: Final = "Adminduk-Position"
HEADER_STREAM_ID: Final = "Adminduk-Stream-Id"
HEADER_EVENT_TYPE: Final = "Adminduk-Event-Type"


def subject_for(event: RecordedEvent) -> str:
    """``adminduk.events.<category>.<EventType>``, the subject an event is published on."""
    return f"{SUBJECT_PREFIX}.{event.category}.{event.event_type}"


def subject_filter(category: str = "*", event_type: str = "*") -> str:
    return f"{SUBJECT_PREFIX}.{category}.{event_type}"


def headers_for(event: RecordedEvent) -> dict[str, str]:
    """Headers of the published message: dedup id, position, and the writer's trace context
    (so the consumer's span continues the trace that wrote the event)."""
    # Trace entries first, so none of them can override the dedup id or the position.
    return {
        **event.metadata.trace,
        HEADER_MSG_ID: str(event.event_id),
        HEADER_POSITION: str(event.position),
        HEADER_STREAM_ID: event.stream_id,
        HEADER_EVENT_TYPE: event.event_type,
    }


def encode(event: RecordedEvent) -> bytes:
    return event.model_dump_json().encode()


STORED_COLUMNS: Final = (
    "position, event_id, stream_id, stream_version, event_type, schema_version, "
    "data::text AS data, metadata::text AS metadata, occurred_at, recorded_at"
)
"""The columns :func:`encode_stored` takes: the event's JSON as stored, not decoded."""


def encode_stored(row: asyncpg.Record) -> tuple[str, bytes, dict[str, str]]:
    """Subject, payload and headers of a stored event straight from its row (selected with
    :data:`STORED_COLUMNS`): the stored JSON of data and metadata is passed through as it
    is, so the relay neither decodes nor validates what it forwards. The payload decodes
    with :func:`decode` like :func:`encode`'s."""
    metadata = orjson.loads(row["metadata"])
    stream_id, event_type = row["stream_id"], row["event_type"]
    payload = orjson.dumps(
        {
            "event_id": str(row["event_id"]),
            "event_type": event_type,
            "stream_id": stream_id,
            "stream_version": row["stream_version"],
            "position": row["position"],
            "schema_version": row["schema_version"],
            "data": orjson.Fragment(row["data"]),
            "metadata": orjson.Fragment(row["metadata"]),
            "occurred_at": row["occurred_at"],
            "recorded_at": row["recorded_at"],
        }
    )
    headers = {
        **(metadata.get("trace") or {}),
        HEADER_MSG_ID: str(row["event_id"]),
        HEADER_POSITION: str(row["position"]),
        HEADER_STREAM_ID: stream_id,
        HEADER_EVENT_TYPE: event_type,
    }
    return f"{SUBJECT_PREFIX}.{stream_category(stream_id)}.{event_type}", payload, headers


def decode(payload: bytes) -> RecordedEvent:
    return RecordedEvent.model_validate_json(payload)


def stream_config(
    duplicate_window: timedelta,
    max_age: timedelta,
    *,
    name: str = STREAM_NAME,
    subjects: str = ALL_EVENTS,
    description: str = "Every event of the adminduk event store, in position order",
) -> StreamConfig:
    """A stream of events in position order: file storage, kept ``max_age``, deduplicated
    by ``Nats-Msg-Id`` within ``duplicate_window``."""
    return StreamConfig(
        name=name,
        description=description,
        subjects=[subjects],
        storage=StorageType.FILE,
        retention=RetentionPolicy.LIMITS,
        discard=DiscardPolicy.OLD,
        max_age=max_age.total_seconds(),
        duplicate_window=duplicate_window.total_seconds(),
        allow_direct=True,
    )


async def ensure_stream(
    jetstream: JetStreamContext,
    duplicate_window: timedelta,
    max_age: timedelta,
    *,
    config: StreamConfig | None = None,
) -> None:
    """Create the stream (by default the internal one), or bring an existing one to the
    configured limits."""
    config = config or stream_config(duplicate_window, max_age)
    assert config.name is not None
    try:
        await jetstream.stream_info(config.name)
    except NotFoundError:
        await jetstream.add_stream(config)
        log.info("created JetStream stream %s", config.name)
        return
    await jetstream.update_stream(config)


async def connect(servers: list[str], *, name: str) -> NatsClient:
    """A NATS connection that keeps reconnecting for as long as the process lives."""

    client: list[NatsClient] = []

    def closing() -> bool:
        return bool(client) and (client[0].is_draining or client[0].is_closed)

    async def on_error(error: Exception) -> None:
        log.warning("NATS: %s", error)

    async def on_disconnected() -> None:
        if closing():
            log.debug("NATS connection closed")
        else:
            log.warning("NATS disconnected; reconnecting")

    async def on_reconnected() -> None:
        log.info("NATS reconnected")

    connection = await nats.connect(
        servers=servers,
        name=name,
        max_reconnect_attempts=-1,
        reconnect_time_wait=0.5,
        drain_timeout=5,
        error_cb=on_error,
        disconnected_cb=on_disconnected,
        reconnected_cb=on_reconnected,
    )
    client.append(connection)
    return connection
