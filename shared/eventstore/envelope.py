"""Event envelopes: what is appended, what is read back, and the base of typed events.

Events are frozen, past-tense facts. A domain event is a pydantic model deriving from
:class:`Event`; the store keeps it as JSON in an envelope (:class:`RecordedEvent`) that adds
identity, position and metadata. Readers turn the JSON back into the typed event with an
:class:`EventRegistry`, which is also where an old ``schema_version`` is upcast.
"""

from __future__ import annotations

import contextlib
import re
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar, Final, Self, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

# Namespace of deterministic event ids (uuid5). Fixed forever: changing it would make a
# redelivered cause produce a new id, that is, a duplicate event.
EVENT_ID_NAMESPACE: Final = uuid.UUID("6f1d8a52-3f0c-4d6e-9a51-0b7c2f6c1e01")

STREAM_ID_PATTERN: Final = re.compile(r"(?P<category>[a-z][a-z0-9_]{0,39})-(?P<id>[^\s]{1,160})")
# Trace context travels as NATS headers: keys must be header tokens, values printable ASCII.
_TRACE_KEY: Final = re.compile(r"[a-z][a-z0-9-]{0,63}")
_TRACE_VALUE: Final = re.compile(r"[\x20-\x7e]{0,512}")

ANY: Final = -1
"""Expected version: append whatever the stream's current version is."""
NO_STREAM: Final = 0
"""Expected version: the stream must not exist yet."""


def deterministic_event_id(*cause: str) -> uuid.UUID:
    """An event id derived from its cause, e.g. ``("whatsapp", message_id)`` or
    ``(consumer_name, causing_event_id, "RequestChecked")``.

    The same cause always gives the same id, so a redelivered message cannot produce a
    second event: the store treats the repeated append as a no-op.
    """
    if not cause:
        raise ValueError("a deterministic event id needs at least one cause part")
    return uuid.uuid5(EVENT_ID_NAMESPACE, "\x1f".join(cause))


def stream_category(stream_id: str) -> str:
    """``request-AB12CD`` -> ``request``. Raises ``ValueError`` for a malformed stream id."""
    match = STREAM_ID_PATTERN.fullmatch(stream_id)
    if match is None:
        raise ValueError(
            f"stream id {stream_id!r} must look like '<category>-<id>' "
            "(category: lower-case letters, digits, underscore)"
        )
    return match["category"]


class Metadata(BaseModel):
    """Why and by whom an event was written; travels with the event forever."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    correlation_id: uuid.UUID | None = None
    """The first cause of a chain of events (e.g. the WhatsApp message's event)."""
    causation_id: uuid.UUID | None = None
    """The event or message that directly caused this one."""
    trace: dict[str, str] = Field(default_factory=dict)
    """W3C trace context (``traceparent``, ``tracestate``) of the span that wrote it."""
    actor: str | None = None
    """Who acted: ``system:<service>``, ``officer:<id>``, ``citizen`` (never a phone number)."""

    @field_validator("trace")
    @classmethod
    def _header_safe(cls, value: dict[str, str]) -> dict[str, str]:
        for key, item in value.items():
            if not _TRACE_KEY.fullmatch(key) or not _TRACE_VALUE.fullmatch(item):
                raise ValueError(f"trace entry {key!r} cannot travel as a message header")
        return value


class NewEvent(BaseModel):
    """An event to be appended: its identity, type, JSON data and metadata."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    event_id: uuid.UUID = Field(default_factory=uuid.uuid4)
    event_type: str = Field(pattern=r"^[A-Z][A-Za-z0-9]{0,99}$")
    data: dict[str, Any]
    metadata: Metadata = Field(default_factory=Metadata)
    schema_version: int = Field(default=1, ge=1)
    occurred_at: datetime = Field(default_factory=lambda: datetime.now(UTC))

    @field_validator("occurred_at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("occurred_at must carry a time zone")
        return value


class RecordedEvent(BaseModel):
    """An event as stored: the envelope every reader, relay and consumer sees."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    event_id: uuid.UUID
    event_type: str
    stream_id: str
    stream_version: int
    position: int
    schema_version: int
    data: dict[str, Any]
    metadata: Metadata
    occurred_at: datetime
    recorded_at: datetime
    erased: bool = False
    """The citizen's data key was erased (crypto-shredding, see ``shared/keyring.py``):
    ``data`` holds placeholders where the personal fields were."""

    @property
    def category(self) -> str:
        return stream_category(self.stream_id)


class Event(BaseModel):
    """Base of typed domain events.

    Subclasses are named in the past tense and declare ``schema_version`` as a ``Literal``;
    a change of meaning is a new schema version with an upcaster, never an edit.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    event_type: ClassVar[str]
    schema_version: int = 1
    personal: ClassVar[frozenset[str]] = frozenset()
    """Fields holding personal data, sealed with the citizen's key in the store (see
    ``shared/keyring.py``). ``a.b`` reaches into a nested value, ``a[].b`` into each item of
    a list; a nested leaf must be optional (it reads as None once erased)."""
    citizen_field: ClassVar[str | None] = None
    """The field holding the WhatsApp number whose citizen the personal data belongs to;
    None: the event is on that citizen's own stream."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.event_type = cls.__name__

    def to_new_event(
        self,
        *,
        event_id: uuid.UUID | None = None,
        metadata: Metadata | None = None,
        occurred_at: datetime | None = None,
    ) -> NewEvent:
        return NewEvent(
            event_id=event_id or uuid.uuid4(),
            event_type=self.event_type,
            data=self.model_dump(mode="json", exclude={"schema_version"}),
            metadata=metadata or Metadata(),
            schema_version=self.schema_version,
            occurred_at=occurred_at or datetime.now(UTC),
        )


Upcaster = Callable[[dict[str, Any]], dict[str, Any]]
E = TypeVar("E", bound=Event)
Decoded = tuple[RecordedEvent, Event]
"""A stored event with its typed, upcast form: what aggregates fold."""


class UnknownEventTypeError(LookupError):
    pass


class EventRegistry:
    """Maps stored event types to typed classes, upcasting older schema versions."""

    def __init__(self) -> None:
        self._types: dict[str, type[Event]] = {}
        self._upcasters: dict[tuple[str, int], Upcaster] = {}

    def register(self, event_class: type[Event]) -> type[Event]:
        self._types[event_class.event_type] = event_class
        return event_class

    def upcaster(self, event_type: str, from_version: int) -> Callable[[Upcaster], Upcaster]:
        """Register a function that turns version ``from_version`` data into the next one."""

        def decorate(function: Upcaster) -> Upcaster:
            self._upcasters[(event_type, from_version)] = function
            return function

        return decorate

    def __contains__(self, event_type: object) -> bool:
        return event_type in self._types

    def decode(self, recorded: RecordedEvent) -> Event:
        event_class = self._types.get(recorded.event_type)
        if event_class is None:
            raise UnknownEventTypeError(recorded.event_type)
        data: Mapping[str, Any] = recorded.data
        version = recorded.schema_version
        while (upcast := self._upcasters.get((recorded.event_type, version))) is not None:
            data = upcast(dict(data))
            version += 1
        return event_class.model_validate({**data, "schema_version": version})

    def decode_as(self, recorded: RecordedEvent, event_class: type[E]) -> E:
        """:meth:`decode`, for a reader that knows which type it expects (``TypeError``
        when the stored event is of another one)."""
        event = self.decode(recorded)
        if not isinstance(event, event_class):
            raise TypeError(
                f"event {recorded.event_id} is a {recorded.event_type}, "
                f"not a {event_class.event_type}"
            )
        return event

    def decode_all(self, events: Iterable[RecordedEvent]) -> list[Decoded]:
        """Each event with its decoded form, for folding. Events of types this registry
        does not know are left out: no aggregate folds them."""
        return [
            (recorded, self.decode(recorded)) for recorded in events if recorded.event_type in self
        ]

    @contextlib.contextmanager
    def scope(self) -> Iterator[Self]:
        """Registrations made inside the block are undone when it ends (tests register a
        new schema version and its upcaster on the process-wide registry this way)."""
        types, upcasters = dict(self._types), dict(self._upcasters)
        try:
            yield self
        finally:
            self._types, self._upcasters = types, upcasters

    def classes(self) -> list[type[Event]]:
        return list(self._types.values())

    def merged(self, other: EventRegistry) -> Self:
        self._types.update(other._types)
        self._upcasters.update(other._upcasters)
        return self
