"""Envelopes and typed events, without a database."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

import pytest
from pydantic import ValidationError

from shared.eventstore.envelope import (
    Event,
    EventRegistry,
    Metadata,
    NewEvent,
    UnknownEventTypeError,
    deterministic_event_id,
    stream_category,
)
from tests.builders import recorded


class TicketIssued(Event):
    schema_version: Literal[2] = 2
    ticket: str
    channel: str


def test_deterministic_ids_depend_only_on_the_cause() -> None:
    first = deterministic_event_id("whatsapp", "wamid.1")
    assert first == deterministic_event_id("whatsapp", "wamid.1")
    assert first != deterministic_event_id("whatsapp", "wamid.2")
    # Parts are separated, so ("ab", "c") and ("a", "bc") are different causes.
    assert deterministic_event_id("ab", "c") != deterministic_event_id("a", "bc")
    with pytest.raises(ValueError):
        deterministic_event_id()


@pytest.mark.parametrize(
    ("stream_id", "category"),
    [("request-ABC123", "request"), ("notification-wamid.X-1", "notification"), ("a_b-1", "a_b")],
)
def test_stream_category(stream_id: str, category: str) -> None:
    assert stream_category(stream_id) == category


@pytest.mark.parametrize("bad", ["request", "-x", "Request-1", "request- x", "1abc-x", ""])
def test_malformed_stream_ids_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        stream_category(bad)


def test_new_events_are_frozen_and_validated() -> None:
    event = NewEvent(event_type="RequestReceived", data={"a": 1})
    with pytest.raises(ValidationError):
        event.event_type = "Other"  # type: ignore[misc]
    with pytest.raises(ValidationError):
        NewEvent(event_type="not-pascal case", data={})
    with pytest.raises(ValidationError):
        NewEvent(event_type="X", data={}, occurred_at=datetime(2026, 1, 1))
    with pytest.raises(ValidationError):
        Metadata(actor="x", surprise=1)  # type: ignore[call-arg]


def test_typed_events_round_trip_through_the_registry() -> None:
    registry = EventRegistry()
    registry.register(TicketIssued)
    typed = TicketIssued(ticket="KTP-7Q2M9X", channel="whatsapp")
    new = typed.to_new_event(event_id=uuid.uuid4())

    assert new.event_type == "TicketIssued"
    assert new.schema_version == 2
    assert "schema_version" not in new.data
    assert registry.decode(recorded(new)) == typed


def test_old_schema_versions_are_upcast() -> None:
    registry = EventRegistry()
    registry.register(TicketIssued)

    @registry.upcaster("TicketIssued", from_version=1)
    def add_channel(data: dict[str, Any]) -> dict[str, Any]:
        return {**data, "channel": "whatsapp"}

    version_one = NewEvent(event_type="TicketIssued", data={"ticket": "KK-1"}, schema_version=1)
    assert registry.decode(recorded(version_one)) == TicketIssued(ticket="KK-1", channel="whatsapp")


def test_unknown_types_are_a_typed_error() -> None:
    with pytest.raises(UnknownEventTypeError):
        EventRegistry().decode(recorded(NewEvent(event_type="Nope", data={})))


@pytest.mark.parametrize(
    "trace",
    [{"Nats-Msg-Id": "x"}, {"traceparent": "line\r\nbreak"}, {"bad key": "v"}, {"k": "é"}],
)
def test_trace_entries_must_be_safe_message_headers(trace: dict[str, str]) -> None:
    with pytest.raises(ValidationError):
        Metadata(trace=trace)


def test_a_trailing_newline_is_not_a_valid_stream_id() -> None:
    with pytest.raises(ValueError):
        stream_category("request-A\n")
