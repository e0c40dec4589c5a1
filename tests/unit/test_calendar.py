"""Working days and office time of a Disdukcapil office, and dates the way citizens read them."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.calendar import OfficeHours, WorkingCalendar, format_jam, format_tanggal

WIB = ZoneInfo("Asia/Jakarta")
WITA = ZoneInfo("Asia/Makassar")
BERLIN = ZoneInfo("Europe/Berlin")
CALENDAR = WorkingCalendar()
# An office whose hours straddle the European DST changes (02:00 -> 03:00 in March,
# 03:00 -> 02:00 in October), to check the arithmetic is done on instants, not wall clocks.
NIGHT_SHIFT = WorkingCalendar(
    OfficeHours(opens=time(1, 0), closes=time(4, 0), weekdays=frozenset(range(7))),
    timezone=BERLIN,
)
# An office open on Saturdays that closed for the regency's anniversary.
SATURDAYS = WorkingCalendar(
    OfficeHours.parse("07:30-15:30", "1-6"), extra_closed_days=[date(2026, 10, 27)]
)

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


def wib(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=WIB)


# -- holidays and working days ----------------------------------------------------------------


def test_independence_day_is_no_working_day() -> None:
    assert CALENDAR.holiday_name(date(2026, 8, 17)) == "Hari Kemerdekaan Republik Indonesia"
    assert not CALENDAR.is_working_day(date(2026, 8, 17))  # a Monday
    assert CALENDAR.is_working_day(date(2026, 8, 18))


def test_joint_leave_days_close_the_office() -> None:
    christmas_eve = date(2026, 12, 24)  # a Thursday
    assert CALENDAR.holiday_name(christmas_eve) == "Cuti Bersama Hari Raya Natal"
    assert not CALENDAR.is_working_day(christmas_eve)
    # Lebaran 2026: Idul Fitri on the weekend, joint leave around it.
    assert [CALENDAR.is_working_day(date(2026, 3, d)) for d in range(16, 26)] == [
        True,  # Mon 16
        True,  # Tue 17
        False,  # Wed 18 cuti bersama Nyepi
        False,  # Thu 19 Nyepi
        False,  # Fri 20 cuti bersama Idul Fitri
        False,  # Sat 21 Idul Fitri
        False,  # Sun 22
        False,  # Mon 23 cuti bersama
        False,  # Tue 24 cuti bersama
        True,  # Wed 25
    ]


def test_weekends_and_ordinary_days() -> None:
    assert CALENDAR.holiday_name(date(2026, 12, 7)) is None
    assert CALENDAR.is_working_day(date(2026, 12, 7))
    assert not CALENDAR.is_working_day(date(2026, 12, 5))  # Saturday
    assert not CALENDAR.is_working_day(date(2026, 12, 6))  # Sunday
    assert SATURDAYS.is_working_day(date(2026, 12, 5))
    assert not SATURDAYS.is_working_day(date(2026, 10, 27))  # extra closed day
    assert SATURDAYS.holiday_name(date(2026, 10, 27)) is None


def test_a_datetime_is_refused_where_a_date_is_expected() -> None:
    with pytest.raises(TypeError):
        CALENDAR.is_working_day(wib(2026, 8, 17))
    with pytest.raises(TypeError):
        WorkingCalendar(extra_closed_days=[wib(2026, 8, 18)])


def test_next_and_added_working_days() -> None:
    assert CALENDAR.next_working_day(date(2026, 12, 4)) == date(2026, 12, 7)  # Fri -> Mon
    # Thursday + 2 crosses the weekend and Independence Day (Monday).
    assert CALENDAR.add_working_days(date(2026, 8, 13), 2) == date(2026, 8, 18)
    # Wednesday before Christmas: joint leave Thursday, Christmas Friday, then the weekend.
    assert CALENDAR.add_working_days(date(2026, 12, 23), 1) == date(2026, 12, 28)
    assert CALENDAR.add_working_days(date(2026, 12, 7), 0) == date(2026, 12, 7)
    assert CALENDAR.add_working_days(date(2026, 12, 5), 0) == date(2026, 12, 7)
    with pytest.raises(ValueError, match="negative"):
        CALENDAR.add_working_days(date(2026, 12, 7), -1)


def test_kia_is_promised_in_14_working_days() -> None:
    # Handed in on Monday 16 March 2026: Nyepi and Lebaran take six working days, Good
    # Friday one more.
    assert CALENDAR.add_working_days(date(2026, 3, 16), 14) == date(2026, 4, 13)
    # An ordinary fortnight: 14 working days are 2 weeks and 4 days.
    assert CALENDAR.add_working_days(date(2026, 10, 5), 14) == date(2026, 10, 23)


# -- instants ---------------------------------------------------------------------------------


def test_open_from_opening_inclusive_to_closing_exclusive() -> None:
    assert not CALENDAR.is_open(wib(2026, 12, 7, 7, 59))
    assert CALENDAR.is_open(wib(2026, 12, 7, 8, 0))
    assert CALENDAR.is_open(wib(2026, 12, 7, 15, 59))
    assert not CALENDAR.is_open(wib(2026, 12, 7, 16, 0))
    assert not CALENDAR.is_open(wib(2026, 8, 17, 10, 0))
    # 00:30 UTC is 07:30 in Jakarta (WIB) but 08:30 in Makassar (WITA).
    assert not CALENDAR.is_open(datetime(2026, 12, 7, 0, 30, tzinfo=UTC))
    assert WorkingCalendar(timezone=WITA).is_open(datetime(2026, 12, 7, 0, 30, tzinfo=UTC))


def test_naive_instants_are_refused() -> None:
    naive = datetime(2026, 12, 7, 9, 0)
    with pytest.raises(ValueError, match="timezone-aware"):
        CALENDAR.is_open(naive)
    with pytest.raises(ValueError, match="timezone-aware"):
        CALENDAR.next_opening(naive)
    with pytest.raises(ValueError, match="timezone-aware"):
        CALENDAR.working_time_between(wib(2026, 12, 7), naive)


def test_next_opening() -> None:
    at = wib(2026, 12, 7, 9, 30)
    assert CALENDAR.next_opening(at) == at
    assert CALENDAR.next_opening(wib(2026, 12, 7, 6, 0)) == wib(2026, 12, 7, 8, 0)
    assert CALENDAR.next_opening(wib(2026, 12, 4, 16, 0)) == wib(2026, 12, 7, 8, 0)
    assert CALENDAR.next_opening(wib(2026, 8, 14, 17, 0)) == wib(2026, 8, 18, 8, 0)
    # Given in UTC, answered in the office's zone.
    opening = CALENDAR.next_opening(datetime(2026, 12, 6, 12, 0, tzinfo=UTC))
    assert opening.tzinfo is WIB
    assert opening == wib(2026, 12, 7, 8, 0)


def test_working_time_between() -> None:
    # Friday 15:00 to Monday 09:00: one hour on Friday, one on Monday.
    assert CALENDAR.working_time_between(wib(2026, 12, 4, 15), wib(2026, 12, 7, 9)) == 2 * HOUR
    # Across Independence Day (Monday).
    assert CALENDAR.working_time_between(wib(2026, 8, 14, 15), wib(2026, 8, 18, 9)) == 2 * HOUR
    assert CALENDAR.working_time_between(wib(2026, 12, 7, 9), wib(2026, 12, 7, 9)) == timedelta()
    assert CALENDAR.working_time_between(wib(2026, 12, 7, 10), wib(2026, 12, 7, 9)) == timedelta()
    assert CALENDAR.working_time_between(wib(2026, 12, 5), wib(2026, 12, 6, 23)) == timedelta()
    assert SATURDAYS.working_time_between(wib(2026, 12, 5), wib(2026, 12, 6)) == 8 * HOUR


def test_working_time_of_a_year_is_eight_hours_per_working_day() -> None:
    days = [date(2026, 1, 1) + timedelta(days=n) for n in range(365)]
    working_days = sum(CALENDAR.is_working_day(day) for day in days)
    assert working_days == 261 - 21  # weekdays of 2026 minus those that are holidays or leave
    span = CALENDAR.working_time_between(wib(2026, 1, 1), wib(2027, 1, 1))
    assert span == working_days * 8 * HOUR
    # Ten years day by day stay cheap (a minute-by-minute walk would take far too long).
    assert CALENDAR.working_time_between(wib(2020, 1, 1), wib(2030, 1, 1)) > 2000 * 8 * HOUR


def test_working_time_across_daylight_saving_changes() -> None:
    # 01:00 CET to 04:00 CEST is two hours; 01:00 CEST to 04:00 CET is four.
    spring = datetime(2026, 3, 29, tzinfo=BERLIN)
    autumn = datetime(2026, 10, 25, tzinfo=BERLIN)
    assert NIGHT_SHIFT.working_time_between(spring, spring + 2 * DAY) == 2 * HOUR + 3 * HOUR
    assert NIGHT_SHIFT.working_time_between(autumn, autumn + 2 * DAY) == 4 * HOUR + 3 * HOUR
    # 03:30 UTC on the autumn night is 04:30 CET: closed although it is within 3 hours of
    # opening, and wall-clock arithmetic would get it wrong.
    assert not NIGHT_SHIFT.is_open(datetime(2026, 10, 25, 3, 30, tzinfo=UTC))
    assert NIGHT_SHIFT.is_open(datetime(2026, 10, 25, 2, 30, tzinfo=UTC))


# -- OfficeHours.parse ------------------------------------------------------------------------


def test_parse_office_hours() -> None:
    assert OfficeHours.parse() == OfficeHours()
    assert OfficeHours.parse("07:30-15:00", "1-6") == OfficeHours(
        time(7, 30), time(15, 0), frozenset(range(6))
    )
    assert OfficeHours.parse(" 8:00 - 16:00 ", "1,2,3,4,5,6").weekdays == frozenset(range(6))
    assert OfficeHours.parse(days="1-4,6").weekdays == frozenset({0, 1, 2, 3, 5})
    assert OfficeHours.parse(days="7").weekdays == frozenset({6})
    assert OfficeHours.parse(days="5,1-3,2").weekdays == frozenset({0, 1, 2, 4})


@pytest.mark.parametrize(
    ("hours", "message"),
    [
        ("16:00-08:00", "open before it closes"),
        ("08:00-08:00", "open before it closes"),
        ("25:00-26:00", "between 00:00 and 23:59"),
        ("08:60-16:00", "between 00:00 and 23:59"),
        ("08:00-24:00", "between 00:00 and 23:59"),
        ("8-16", "look like 08:00-16:00"),
        ("08.00-16.00", "look like 08:00-16:00"),
        ("", "look like 08:00-16:00"),
        ("08:00", "look like 08:00-16:00"),
    ],
)
def test_parse_rejects_bad_hours(hours: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        OfficeHours.parse(hours=hours)


@pytest.mark.parametrize("days", ["0-5", "8", "", "5-1", "1-", "1,,2", "Senin-Jumat", "1-8", "1 2"])
def test_parse_rejects_bad_days(days: str) -> None:
    with pytest.raises(ValueError, match="ISO weekdays"):
        OfficeHours.parse(days=days)


def test_office_hours_are_checked_when_built_directly() -> None:
    with pytest.raises(ValueError):
        OfficeHours(opens=time(16), closes=time(8))
    with pytest.raises(ValueError):
        OfficeHours(weekdays=frozenset())
    with pytest.raises(ValueError):
        OfficeHours(weekdays=frozenset({7}))


# -- formatting -------------------------------------------------------------------------------


def test_format_tanggal() -> None:
    assert format_tanggal(date(2026, 12, 7)) == "Senin, 7 Desember 2026"
    assert format_tanggal(date(2026, 8, 17)) == "Senin, 17 Agustus 2026"
    assert format_tanggal(date(2026, 1, 1)) == "Kamis, 1 Januari 2026"
    assert format_tanggal(date(2026, 3, 20)) == "Jumat, 20 Maret 2026"
    assert format_tanggal(date(2026, 2, 28)) == "Sabtu, 28 Februari 2026"
    assert format_tanggal(date(2026, 5, 31)) == "Minggu, 31 Mei 2026"


def test_format_jam() -> None:
    assert format_jam(time(8, 0)) == "08.00"
    assert format_jam(time(15, 30)) == "15.30"
    assert format_jam(time(0, 5)) == "00.05"


# -- properties -------------------------------------------------------------------------------

CALENDARS = st.sampled_from([CALENDAR, SATURDAYS, NIGHT_SHIFT])
DAYS = st.dates(min_value=date(2020, 1, 1), max_value=date(2030, 12, 31))
# Instants in any zone: the calendar must read them in its own.
INSTANTS = st.datetimes(
    min_value=datetime(2020, 1, 1),
    max_value=datetime(2030, 12, 31),
    timezones=st.sampled_from([WIB, WITA, UTC, BERLIN]),
    allow_imaginary=False,
)
# Whole UTC minutes: office hours start on whole minutes in every zone used here.
MINUTES = st.integers(0, 11 * 366 * 24 * 60).map(
    lambda n: datetime(2020, 1, 1, tzinfo=UTC) + timedelta(minutes=n)
)
# Spans up to three weeks, so that most of them cross a weekend or a holiday.
SPANS = st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=21))


def _closed_instant(calendar: WorkingCalendar, at: datetime) -> datetime:
    """``at`` itself if the office is closed then, else its next closing time (in UTC)."""
    if not calendar.is_open(at):
        return at.astimezone(UTC)
    local = at.astimezone(calendar.timezone)
    closing = datetime.combine(local.date(), calendar.hours.closes, tzinfo=calendar.timezone)
    return closing.astimezone(UTC)


@settings(max_examples=200)
@given(CALENDARS, INSTANTS, SPANS, SPANS)
def test_working_time_is_additive(
    calendar: WorkingCalendar, start: datetime, first: timedelta, second: timedelta
) -> None:
    # Added in UTC: wall-clock addition in a DST zone can step back in time.
    middle = start.astimezone(UTC) + first
    end = middle + second
    assert calendar.working_time_between(start, end) == calendar.working_time_between(
        start, middle
    ) + calendar.working_time_between(middle, end)


@settings(max_examples=200)
@given(CALENDARS, INSTANTS, SPANS)
def test_working_time_never_exceeds_wall_time(
    calendar: WorkingCalendar, start: datetime, span: timedelta
) -> None:
    end = start.astimezone(UTC) + span
    assert timedelta(0) <= calendar.working_time_between(start, end) <= span
    assert calendar.working_time_between(end, start) == timedelta(0)


@settings(max_examples=200)
@given(CALENDARS, INSTANTS, st.floats(0, 1))
def test_no_working_time_while_closed(
    calendar: WorkingCalendar, at: datetime, fraction: float
) -> None:
    start = _closed_instant(calendar, at)
    opening = calendar.next_opening(start)
    end = start + (opening - start) * fraction
    assert calendar.working_time_between(start, end) == timedelta(0)


@settings(max_examples=200)
@given(CALENDARS, INSTANTS, SPANS, st.floats(0, 1), st.floats(0, 1))
def test_moving_ends_within_a_closed_period_changes_nothing(
    calendar: WorkingCalendar, at: datetime, span: timedelta, early: float, late: float
) -> None:
    start = _closed_instant(calendar, at)
    end = _closed_instant(calendar, start + span)  # start is in UTC: real-time addition
    moved_start = start + (calendar.next_opening(start) - start) * early
    moved_end = end + (calendar.next_opening(end) - end) * late
    assert calendar.working_time_between(moved_start, moved_end) == (
        calendar.working_time_between(start, end)
    )


@settings(max_examples=200)
@given(CALENDARS, DAYS, st.integers(0, 40))
def test_added_working_days_are_working_days_in_order(
    calendar: WorkingCalendar, day: date, count: int
) -> None:
    due = calendar.add_working_days(day, count)
    later = calendar.add_working_days(day, count + 1)
    assert calendar.is_working_day(due)
    assert day <= due < later or (count == 0 and due == later)
    if count > 0 or calendar.is_working_day(day):
        assert later == calendar.next_working_day(due)
    else:
        # Counted from the next working day: a Saturday's 0 and 1 are both Monday.
        assert due == later == calendar.next_working_day(day)
    # Exactly `count` working days lie after `day` up to and including `due`.
    if count > 0:
        between = [day + timedelta(days=n) for n in range(1, (due - day).days + 1)]
        assert sum(calendar.is_working_day(d) for d in between) == count


@settings(max_examples=200)
@given(CALENDARS, INSTANTS)
def test_next_opening_is_the_first_open_instant(calendar: WorkingCalendar, at: datetime) -> None:
    opening = calendar.next_opening(at)
    assert opening.tzinfo is calendar.timezone
    assert opening >= at
    assert calendar.is_open(opening)
    assert calendar.working_time_between(at, opening) == timedelta(0)
    assert (opening == at) == calendar.is_open(at)


@settings(max_examples=300)
@given(CALENDARS, MINUTES)
def test_is_open_agrees_with_working_time_over_a_minute(
    calendar: WorkingCalendar, at: datetime
) -> None:
    minute = timedelta(minutes=1)
    expected = minute if calendar.is_open(at) else timedelta(0)
    assert calendar.working_time_between(at, at + minute) == expected
