"""Typed errors of the event store; each is mapped once, at the edge of a service."""

from __future__ import annotations

import uuid


class EventStoreError(Exception):
    """Base of every error the event store raises on purpose."""


class ConcurrencyConflictError(EventStoreError):
    """The stream moved on since the caller read it: re-read, decide again, retry."""

    def __init__(self, stream_id: str, expected_version: int, actual_version: int) -> None:
        super().__init__(
            f"stream {stream_id!r} is at version {actual_version}, expected {expected_version}"
        )
        self.stream_id = stream_id
        self.expected_version = expected_version
        self.actual_version = actual_version


class IdempotencyConflictError(EventStoreError):
    """Some, not all, of an append's event ids exist already, or exist on another stream.

    A repeated append must repeat the whole original append; anything else is a bug in the
    caller's choice of deterministic ids, and silently accepting it could drop events.
    """

    def __init__(self, stream_id: str, event_ids: list[uuid.UUID]) -> None:
        super().__init__(
            f"append to {stream_id!r} partially repeats earlier events "
            f"{sorted(map(str, event_ids))}"
        )
        self.stream_id = stream_id
        self.event_ids = event_ids


class DuplicateMessageError(EventStoreError):
    """The consumer already processed this message: its inbox record exists.

    Raised when a unit of work commits; the transaction is rolled back, so the repeated
    delivery has no effect, and the consumer acknowledges the message.
    """

    def __init__(self, consumer: str, message_id: str) -> None:
        super().__init__(f"consumer {consumer!r} already processed message {message_id!r}")
        self.consumer = consumer
        self.message_id = message_id


class EventStoreUnavailableError(EventStoreError):
    """The database could not be reached or failed mid-append.

    The append may or may not have committed; repeating it with the same event ids is
    safe (a repetition is a no-op), which is why callers retry rather than guess.
    """
