"""A citizen's complaint (#ADUAN#): folded from its stream, closed by one written answer."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta

import pytest

from services.verification.domain.complaint import (
    MAX_ANSWER_LENGTH,
    Complaint,
    ComplaintClosedError,
)
from services.verification.domain.request import InvalidDecisionError, Officer
from shared.contracts import ComplaintAnswered, ComplaintReceived
from shared.eventstore.envelope import Event, Metadata, RecordedEvent
from tests.builders import recorded as build_recorded
from tests.support import decode_all, decoded

TICKET = "QK73PD"
PHONE = "6281234567890"
T0 = datetime(2025, 11, 3, 3, 0, tzinfo=UTC)
ANI = Officer(id="officer-ani", name="Ani")
BUDI = Officer(id="officer-budi", name="Budi")
TEXT = "KTP saya sudah 3 minggu belum jadi, tiket AB12CD"


def recorded(event: Event, version: int, at: datetime) -> RecordedEvent:
    return build_recorded(
        event, version=version, position=500 + version, stream_id=f"complaint-{TICKET}", at=at
    )


def complaint_received(related_ticket: str | None = "AB12CD") -> ComplaintReceived:
    return ComplaintReceived(
        ticket=TICKET,
        citizen="citizen-3f9a",
        phone=PHONE,
        text=TEXT,
        related_ticket=related_ticket,
        message_id="wamid.aduan",
        # The WhatsApp send time: the complaint's received_at is the store's.
        received_at=T0 - timedelta(minutes=5),
    )


def answered(officer: Officer, answer: str) -> ComplaintAnswered:
    return ComplaintAnswered(ticket=TICKET, officer_id=officer.id, answer=answer, phone=PHONE)


def open_complaint(related_ticket: str | None = "AB12CD") -> Complaint:
    return Complaint.fold(decode_all([recorded(complaint_received(related_ticket), 1, T0)]))


def test_a_received_complaint_is_open() -> None:
    complaint = open_complaint()
    assert complaint.ticket == TICKET
    assert complaint.version == 1
    assert (complaint.phone, complaint.text) == (PHONE, TEXT)
    assert complaint.related_ticket == "AB12CD"
    assert complaint.received_at == T0
    assert complaint.is_open
    assert (complaint.answer, complaint.answered_by, complaint.answered_at) == (None, None, None)


def test_a_complaint_need_not_name_a_request() -> None:
    assert open_complaint(related_ticket=None).related_ticket is None


def test_nothing_folded_is_an_empty_complaint() -> None:
    # The desk refuses an unknown ticket by its empty ``ticket`` before answering.
    complaint = Complaint.fold(decode_all([]))
    assert complaint == Complaint()
    assert complaint.ticket == ""
    assert complaint.version == 0


def test_an_answer_is_trimmed_and_closes_the_complaint() -> None:
    complaint = open_complaint()
    before = copy.deepcopy(complaint)
    events = complaint.answer_with(ANI, "\n  Mohon maaf, KTP Anda sudah dicetak.\nSilakan ambil.  ")
    assert events == [answered(ANI, "Mohon maaf, KTP Anda sudah dicetak.\nSilakan ambil.")]
    assert complaint == before, "a decision returns events, it does not change the complaint"

    at = T0 + timedelta(hours=4)
    complaint.apply(*decoded(recorded(events[0], 2, at)))
    assert not complaint.is_open
    assert complaint.version == 2
    assert complaint.answer == "Mohon maaf, KTP Anda sudah dicetak.\nSilakan ambil."
    assert (complaint.answered_by, complaint.answered_at) == (ANI.id, at)
    # What the citizen complained about is kept.
    assert (complaint.ticket, complaint.text, complaint.received_at) == (TICKET, TEXT, T0)


def test_an_answered_complaint_takes_no_second_answer() -> None:
    complaint = Complaint.fold(
        decode_all(
            [
                recorded(complaint_received(), 1, T0),
                recorded(answered(ANI, "Sudah kami proses."), 2, T0 + timedelta(hours=1)),
            ]
        )
    )
    with pytest.raises(ComplaintClosedError) as raised:
        complaint.answer_with(BUDI, "Jawaban kedua")
    assert TICKET in str(raised.value)
    assert complaint.answered_by == ANI.id


@pytest.mark.parametrize("answer", ["", "   ", "\n\t \n", "x" * (MAX_ANSWER_LENGTH + 1)], ids=repr)
def test_an_empty_or_too_long_answer_is_refused(answer: str) -> None:
    complaint = open_complaint()
    with pytest.raises(InvalidDecisionError):
        complaint.answer_with(ANI, answer)
    assert complaint.is_open


def test_the_length_limit_is_inclusive_and_counts_the_trimmed_answer() -> None:
    longest = "x" * MAX_ANSWER_LENGTH
    assert open_complaint().answer_with(ANI, f"  {longest}\n") == [answered(ANI, longest)]


class ComplaintEscalated(Event):
    """An event of another kind that this aggregate does not know (not registered)."""

    ticket: str


def test_events_of_other_kinds_move_only_the_version() -> None:
    complaint = open_complaint()
    at = T0 + timedelta(minutes=10)
    complaint.apply(
        RecordedEvent(
            event_id=recorded(complaint_received(), 2, at).event_id,
            event_type="ComplaintEscalated",
            stream_id=f"complaint-{TICKET}",
            stream_version=2,
            position=502,
            schema_version=1,
            data={"ticket": TICKET},
            metadata=Metadata(actor="system:verification"),
            occurred_at=at,
            recorded_at=at,
        ),
        ComplaintEscalated(ticket=TICKET),
    )
    assert complaint.version == 2
    assert complaint.is_open
    assert complaint.text == TEXT
