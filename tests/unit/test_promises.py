"""Promised dates and issuance's decisions, from the calendar and the request's events."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.issuance.domain.issuance import Issuance
from services.issuance.domain.promises import delayed_day, is_ready, promised_day, start_day
from shared.calendar import OfficeHours, WorkingCalendar
from shared.contracts import (
    DocumentCollected,
    DocumentIssued,
    DocumentReady,
    HandedToSiak,
    IssuanceDelayed,
    IssuanceScheduled,
    RequestCancelled,
    RequestReceived,
    RequestVerified,
)
from shared.documents import CATALOGUE, DocType, document
from shared.eventstore.envelope import Event, RecordedEvent
from tests.builders import recorded as build_recorded
from tests.support import decode_all

JAKARTA = ZoneInfo("Asia/Jakarta")
CALENDAR = WorkingCalendar(OfficeHours.parse())
TICKET = "KIA-AB12CD"
PHONE = "6281234567890"


def wib(year: int, month: int, day: int, hour: int = 10, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=JAKARTA)


# -- promised dates --------------------------------------------------------------------------


def test_a_kia_verified_on_the_friday_before_a_holiday_skips_weekends_and_the_holiday() -> None:
    # Friday 28 May 2027; Tuesday 1 June 2027 is Hari Lahir Pancasila.
    verified = wib(2027, 5, 28, 10, 0)
    assert CALENDAR.holiday_name(date(2027, 6, 1)) == "Hari Lahir Pancasila"
    promised = promised_day("KIA", verified, CALENDAR)
    assert promised == date(2027, 6, 18)
    days = [
        date(2027, 5, 28) + timedelta(days=n)
        for n in range(1, (promised - verified.date()).days + 1)
    ]
    counted = [day for day in days if CALENDAR.is_working_day(day)]
    assert len(counted) == 14
    assert date(2027, 6, 1) not in counted
    assert all(day.weekday() < 5 for day in counted)


def test_a_ktp_verified_in_office_hours_is_ready_the_next_working_day() -> None:
    assert promised_day("KTP", wib(2026, 12, 7, 9, 0), CALENDAR) == date(2026, 12, 8)


def test_work_begun_after_closing_counts_from_the_next_working_day() -> None:
    # Friday evening: counted from Monday, so a one-day document is ready on Tuesday.
    assert start_day(wib(2026, 12, 4, 17, 0), CALENDAR) == date(2026, 12, 7)
    assert promised_day("KTP", wib(2026, 12, 4, 17, 0), CALENDAR) == date(2026, 12, 8)


moments = st.datetimes(
    min_value=datetime(2025, 1, 1), max_value=datetime(2027, 12, 1), timezones=st.just(UTC)
)


@settings(max_examples=300, deadline=None)
@given(moments, st.sampled_from(sorted(CATALOGUE)))
def test_a_promise_is_a_working_day_exactly_the_promised_working_days_after_the_start(
    at: datetime, doc_type: DocType
) -> None:
    promised = promised_day(doc_type.value, at, CALENDAR)
    start = start_day(at, CALENDAR)
    assert CALENDAR.is_working_day(promised)
    assert CALENDAR.is_working_day(start)
    assert start >= at.astimezone(JAKARTA).date()
    between = [
        start + timedelta(days=n)
        for n in range(1, (promised - start).days + 1)
        if CALENDAR.is_working_day(start + timedelta(days=n))
    ]
    assert len(between) == document(doc_type).turnaround_working_days


@settings(max_examples=200, deadline=None)
@given(moments, moments, st.sampled_from(sorted(CATALOGUE)))
def test_a_later_start_never_promises_an_earlier_day(
    first: datetime, second: datetime, doc_type: DocType
) -> None:
    early, late = sorted((first, second))
    assert promised_day(doc_type.value, early, CALENDAR) <= promised_day(
        doc_type.value, late, CALENDAR
    )


@settings(max_examples=200, deadline=None)
@given(moments, moments)
def test_a_delay_is_announced_only_when_the_promise_is_out_of_reach(
    verified: datetime, now: datetime
) -> None:
    promised = promised_day("KTP", verified, CALENDAR)
    new_date = delayed_day("KTP", promised, now, CALENDAR)
    if new_date is None:
        assert promised_day("KTP", now, CALENDAR) <= promised
    else:
        assert new_date > promised
        assert new_date == promised_day("KTP", now, CALENDAR)


def test_a_document_is_announced_ready_from_the_evening_before() -> None:
    ready_on = date(2026, 12, 8)  # a Tuesday
    assert not is_ready(ready_on, wib(2026, 12, 7, 15, 59), CALENDAR)
    assert is_ready(ready_on, wib(2026, 12, 7, 16, 0), CALENDAR)
    assert is_ready(ready_on, wib(2026, 12, 8, 11, 0), CALENDAR)


# -- the issuance aggregate ------------------------------------------------------------------


def recorded(events: list[Event], at: datetime) -> list[RecordedEvent]:
    return [
        build_recorded(event, version=version, stream_id=f"request-{TICKET}", at=at)
        for version, event in enumerate(events, 1)
    ]


def verified_request(doc_type: str = "KIA") -> list[Event]:
    return [
        RequestReceived(
            ticket=TICKET,
            doc_type=doc_type,
            citizen="citizen-x",
            phone=PHONE,
            kecamatan_code="360301",
            applicant={"nik": "3603031203190002", "reason": "HILANG"},
            message_id="wamid.1",
            received_at=wib(2027, 5, 28, 9, 0),
        ),
        RequestVerified(ticket=TICKET, officer_id="officer-ani", phone=PHONE, doc_type=doc_type),
    ]


VERIFIED_AT = wib(2027, 5, 28)


def fold(events: list[Event]) -> Issuance:
    return Issuance.fold(decode_all(recorded(events, VERIFIED_AT)))


def test_schedule_promises_from_the_officers_decision_and_says_what_to_bring() -> None:
    issuance = fold(verified_request("KTP"))
    (scheduled,) = issuance.schedule(CALENDAR, "Loket 3")
    assert isinstance(scheduled, IssuanceScheduled)
    assert scheduled.promised_on == date(2027, 5, 31)
    assert scheduled.delivery.channel == "office"
    assert scheduled.delivery.place == "Loket 3"
    assert any("kepolisian" in item for item in scheduled.delivery.bring)  # KTP HILANG
    assert fold([*verified_request("KTP"), scheduled]).schedule(CALENDAR, "Loket 3") == []


def test_a_letter_is_scheduled_for_the_chat_with_nothing_to_bring() -> None:
    (scheduled,) = fold(verified_request("SKPWNI")).schedule(CALENDAR, "Loket 3")
    assert isinstance(scheduled, IssuanceScheduled)
    assert scheduled.delivery.channel == "whatsapp"
    assert scheduled.delivery.bring == ()


def test_nothing_is_scheduled_before_verification_or_after_cancellation() -> None:
    received = verified_request()[:1]
    assert fold(received).schedule(CALENDAR, "x") == []
    cancelled = RequestCancelled(ticket=TICKET, reason="citizen", phone=PHONE, doc_type="KIA")
    assert fold([*verified_request(), cancelled]).schedule(CALENDAR, "x") == []


def test_the_lifecycle_issues_once_and_announces_ready_once() -> None:
    events = verified_request()
    (scheduled,) = fold(events).schedule(CALENDAR, "Loket 3")
    events.append(scheduled)
    issuance = fold(events)
    assert issuance.issue("N1", wib(2027, 5, 28), wib(2027, 5, 28), CALENDAR) == [], (
        "no issue before the hand-off"
    )
    (handed,) = issuance.hand_over("key-1")
    assert isinstance(handed, HandedToSiak)
    events.append(handed)
    assert fold(events).hand_over("key-1") == []
    (issued,) = fold(events).issue("KIA/1", wib(2027, 5, 28), wib(2027, 5, 28), CALENDAR)
    assert isinstance(issued, DocumentIssued)
    assert issued.ready_on == date(2027, 6, 18)
    events.append(issued)
    assert fold(events).issue("KIA/2", wib(2027, 5, 28), wib(2027, 5, 28), CALENDAR) == []
    assert fold(events).check_promise(wib(2027, 7, 1), CALENDAR) == [], "issued: kept"
    assert fold(events).announce_ready(wib(2027, 6, 17, 9), CALENDAR) == []
    (ready,) = fold(events).announce_ready(wib(2027, 6, 18, 9), CALENDAR)
    assert isinstance(ready, DocumentReady)
    events.append(ready)
    assert fold(events).announce_ready(wib(2027, 6, 18, 10), CALENDAR) == []


def test_a_document_collected_early_is_not_announced_ready() -> None:
    events = verified_request()
    (scheduled,) = fold(events).schedule(CALENDAR, "Loket 3")
    events.append(scheduled)
    events += fold(events).hand_over("key-1")
    events += fold(events).issue("KIA/1", wib(2027, 5, 28), wib(2027, 5, 28), CALENDAR)
    events.append(
        DocumentCollected(ticket=TICKET, doc_type="KIA", phone=PHONE, officer_id="officer-ani")
    )
    assert fold(events).announce_ready(wib(2027, 6, 18, 9), CALENDAR) == []


def test_a_renewed_promise_is_the_base_of_the_next_check() -> None:
    events = verified_request("KTP")
    (scheduled,) = fold(events).schedule(CALENDAR, "Loket 3")
    events.append(scheduled)
    (delayed,) = fold(events).check_promise(wib(2027, 5, 31, 17), CALENDAR)
    assert isinstance(delayed, IssuanceDelayed)
    # Not issued by Monday's closing: work starts Wednesday (Tuesday is a holiday), ready
    # Thursday.
    assert (delayed.previous_date, delayed.promised_on) == (date(2027, 5, 31), date(2027, 6, 3))
    events.append(delayed)
    assert fold(events).check_promise(wib(2027, 5, 31, 18), CALENDAR) == []


@pytest.mark.parametrize("doc_type", sorted(d.value for d in CATALOGUE))
def test_every_document_can_be_scheduled(doc_type: str) -> None:
    (scheduled,) = fold(verified_request(doc_type)).schedule(CALENDAR, "Loket 3")
    assert isinstance(scheduled, IssuanceScheduled)
    assert scheduled.working_days == document(DocType(doc_type)).turnaround_working_days
