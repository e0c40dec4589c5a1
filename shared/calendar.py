"""The office's working days and working time: when Disdukcapil serves and how long it served.

Promises to citizens ("KIA siap dalam 14 hari kerja") and service-level timers count only
the time the office is open: office hours on office weekdays, minus national holidays and
joint leave days. Everything is computed in the office's time zone (Asia/Jakarta by
default); instants must be timezone-aware, so a server running in UTC cannot shift a
deadline by seven hours.

Holidays come from the ``holidays`` package (country ``ID``, names in Indonesian), with two
of its categories:

* ``PUBLIC``: the national public holidays (hari libur nasional) of the Keppres and the
  SKB 3 Menteri, including national election days;
* ``GOVERNMENT``: the joint leave days (cuti bersama) of civil servants (ASN), which close a
  government office as surely as a public holiday does.

What the package does not cover, and an office adds through ``extra_closed_days``:

* joint leave days of years the government has not decreed yet, or that the installed
  package version does not list (0.109 lists them up to 2027; the SKB for the next year is
  usually published in September or October), and late changes to a published list;
* Islamic, Chinese and Buddhist holidays beyond the confirmed years are *estimated* (their
  name ends in "(perkiraan)") until the government fixes them after the sidang isbat;
* regional closures: the regency's anniversary, a provincial holiday, a local election day
  that is not national, an office closed for an emergency or a system outage.

The package is imported on first use and each year's holidays are built once and cached,
because the calendar is queried on hot paths and importing it reads package metadata.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Final
from zoneinfo import ZoneInfo

OFFICE_TIMEZONE: Final = "Asia/Jakarta"

_ONE_DAY: Final = timedelta(days=1)
_HOURS: Final = re.compile(r"^\s*([0-9]{1,2}):([0-9]{2})\s*-\s*([0-9]{1,2}):([0-9]{2})\s*$")
_DAYS_ITEM: Final = re.compile(r"^\s*([0-9]+)\s*(?:-\s*([0-9]+)\s*)?$")

_DAY_NAMES: Final = ("Senin", "Selasa", "Rabu", "Kamis", "Jumat", "Sabtu", "Minggu")
_MONTH_NAMES: Final = (
    "Januari",
    "Februari",
    "Maret",
    "April",
    "Mei",
    "Juni",
    "Juli",
    "Agustus",
    "September",
    "Oktober",
    "November",
    "Desember",
)


@dataclass(frozen=True, slots=True)
class OfficeHours:
    """When the office serves: opening and closing time, and the weekdays it is open.

    ``weekdays`` uses Python's numbering (Monday is 0, Sunday is 6); :meth:`parse` takes the
    ISO numbering people write in configuration (Monday is 1, Sunday is 7).
    """

    opens: time = time(8, 0)
    closes: time = time(16, 0)
    weekdays: frozenset[int] = frozenset({0, 1, 2, 3, 4})

    def __post_init__(self) -> None:
        if self.opens.tzinfo is not None or self.closes.tzinfo is not None:
            raise ValueError("office hours are wall-clock times of the office's zone, not aware")
        if not self.opens < self.closes:
            raise ValueError(
                f"the office must open before it closes, got {format_jam(self.opens)}"
                f"-{format_jam(self.closes)}"
            )
        if not self.weekdays or not self.weekdays <= frozenset(range(7)):
            # Without a single open weekday no working day would ever come.
            raise ValueError(
                f"office weekdays must be a non-empty subset of 0..6, got {self.weekdays}"
            )

    @classmethod
    def parse(cls, hours: str = "08:00-16:00", days: str = "1-5") -> OfficeHours:
        """Reads office hours as configured in the environment.

        ``hours`` is ``HH:MM-HH:MM`` with opening before closing; ``days`` lists ISO weekdays
        (1 = Monday .. 7 = Sunday) as ranges and single days separated by commas, e.g.
        ``1-5``, ``1,2,3,4,5,6`` or ``1-4,6``. Raises :class:`ValueError` on anything else.
        """
        matched = _HOURS.match(hours)
        if matched is None:
            raise ValueError(f"office hours must look like 08:00-16:00, got {hours!r}")
        open_h, open_m, close_h, close_m = (int(group) for group in matched.groups())
        try:
            opens, closes = time(open_h, open_m), time(close_h, close_m)
        except ValueError:
            raise ValueError(
                f"office hours must be times between 00:00 and 23:59, got {hours!r}"
            ) from None
        if not opens < closes:
            raise ValueError(f"the office must open before it closes, got {hours!r}")
        return cls(opens=opens, closes=closes, weekdays=_parse_iso_weekdays(days))


def _parse_iso_weekdays(days: str) -> frozenset[int]:
    problem = (
        "office days must be ISO weekdays 1 (Monday) to 7 (Sunday) as ranges or lists, "
        f"e.g. 1-5 or 1-4,6; got {days!r}"
    )
    weekdays: set[int] = set()
    for item in days.split(","):
        matched = _DAYS_ITEM.match(item)
        if matched is None:
            raise ValueError(problem)
        first = int(matched.group(1))
        last = int(matched.group(2)) if matched.group(2) is not None else first
        if not 1 <= first <= last <= 7:
            raise ValueError(problem)
        weekdays.update(day - 1 for day in range(first, last + 1))
    return frozenset(weekdays)


DEFAULT_HOURS: Final = OfficeHours()


@functools.lru_cache(maxsize=64)
def _holidays_of(year: int) -> Mapping[date, str]:
    # Imported here, not at module import: the package reads its metadata when imported.
    # Bounded, since a stray date (a typo in a year) must not grow the cache for ever.
    import holidays  # noqa: PLC0415
    from holidays.constants import GOVERNMENT, PUBLIC  # noqa: PLC0415

    # A plain dict of one year: lookups skip the package's on-the-fly year expansion.
    table = holidays.country_holidays(
        "ID", years=year, categories=(PUBLIC, GOVERNMENT), language="id"
    )
    return dict(table.items())


def _require_date(day: date) -> None:
    # A datetime is a date to the type checker, but never equal to one: it would miss every
    # holiday silently. Which day a datetime falls on depends on the zone, so refuse it.
    if isinstance(day, datetime):
        raise TypeError(f"expected a date, got a datetime ({day!r}); convert it in the office zone")


class WorkingCalendar:
    """Working days and working time of one office.

    A working day is an office weekday that is neither a public holiday, nor a joint leave
    day, nor one of ``extra_closed_days``. The office is open from ``hours.opens``
    (inclusive) to ``hours.closes`` (exclusive) on working days, in its own time zone.
    """

    __slots__ = ("_extra_closed", "_zone", "hours")

    def __init__(
        self,
        hours: OfficeHours = DEFAULT_HOURS,
        *,
        timezone: tzinfo | None = None,
        extra_closed_days: Iterable[date] = (),
    ) -> None:
        """``timezone`` defaults to Asia/Jakarta (WIB); offices in WITA or WIT pass theirs."""
        self.hours = hours
        # Resolved here rather than as a default argument, so importing reads no zone file.
        self._zone = timezone if timezone is not None else ZoneInfo(OFFICE_TIMEZONE)
        closed = frozenset(extra_closed_days)
        for day in closed:
            _require_date(day)
        self._extra_closed = closed

    @property
    def timezone(self) -> tzinfo:
        """The office's time zone; every local date and office hour is read in it."""
        return self._zone

    @property
    def extra_closed_days(self) -> frozenset[date]:
        """Closures the office added on top of the national calendar."""
        return self._extra_closed

    # -- days ------------------------------------------------------------------------------

    def holiday_name(self, day: date) -> str | None:
        """The Indonesian name of the public holiday or joint leave day on ``day``, if any.

        Several on one day are joined by ``"; "``. Extra closed days have no name.
        """
        _require_date(day)
        return _holidays_of(day.year).get(day)

    def is_working_day(self, day: date) -> bool:
        """Whether the office serves on ``day`` at all."""
        _require_date(day)
        return self._is_working(day)

    def next_working_day(self, day: date) -> date:
        """The first working day strictly after ``day``."""
        _require_date(day)
        return self._next_working(day)

    def add_working_days(self, day: date, count: int) -> date:
        """The ``count``-th working day strictly after ``day``: where a promise falls due.

        ``count == 0`` gives ``day`` itself if it is a working day, else the next working
        day, so a request handed in on a Saturday is counted from the Monday.
        """
        _require_date(day)
        if count < 0:
            raise ValueError(f"count of working days must not be negative, got {count}")
        if count == 0:
            return day if self._is_working(day) else self._next_working(day)
        for _ in range(count):
            day = self._next_working(day)
        return day

    # -- instants --------------------------------------------------------------------------

    def is_open(self, at: datetime) -> bool:
        """Whether the office is serving at the aware instant ``at``."""
        moment = _as_utc(at)
        day = moment.astimezone(self._zone).date()
        if not self._is_working(day):
            return False
        opens, closes = self._window(day)
        return opens <= moment < closes

    def next_opening(self, at: datetime) -> datetime:
        """``at`` when the office is open, else the moment it next opens (in the office zone)."""
        moment = _as_utc(at)
        day = moment.astimezone(self._zone).date()
        if self._is_working(day):
            opens, closes = self._window(day)
            if opens <= moment < closes:
                return moment.astimezone(self._zone)
            if moment < opens < closes:
                return opens.astimezone(self._zone)
        while True:
            day = self._next_working(day)
            opens, closes = self._window(day)
            # A window is empty only when a DST jump swallows it; no office opens then.
            if opens < closes:
                return opens.astimezone(self._zone)

    def working_time_between(self, start: datetime, end: datetime) -> timedelta:
        """Office time elapsed from ``start`` to ``end`` (zero when ``end <= start``).

        Only the hours the office is open on working days count, so a complaint filed on
        Friday at 15:00 and answered on Monday at 09:00 waited two hours of office time.
        """
        first, last = _as_utc(start), _as_utc(end)
        total = timedelta(0)
        if last <= first:
            return total
        day = first.astimezone(self._zone).date()
        last_day = last.astimezone(self._zone).date()
        while day <= last_day:
            if self._is_working(day):
                opens, closes = self._window(day)
                served = min(closes, last) - max(opens, first)
                if served > timedelta(0):
                    total += served
            day += _ONE_DAY
        return total

    # -- internals -------------------------------------------------------------------------

    def _is_working(self, day: date) -> bool:
        return (
            day.weekday() in self.hours.weekdays
            and day not in self._extra_closed
            and day not in _holidays_of(day.year)
        )

    def _next_working(self, day: date) -> date:
        day += _ONE_DAY
        while not self._is_working(day):
            day += _ONE_DAY
        return day

    def _window(self, day: date) -> tuple[datetime, datetime]:
        # In UTC: aware datetimes sharing a tzinfo compare and subtract by wall clock, which
        # is wrong across a DST change (none in Indonesia, but the zone is configurable).
        opens = datetime.combine(day, self.hours.opens, tzinfo=self._zone).astimezone(UTC)
        closes = datetime.combine(day, self.hours.closes, tzinfo=self._zone).astimezone(UTC)
        return opens, closes


def _as_utc(at: datetime) -> datetime:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"expected a timezone-aware datetime, got naive {at.isoformat()}")
    return at.astimezone(UTC)


def format_tanggal(day: date) -> str:
    """The long Indonesian date citizens read, e.g. ``Senin, 7 Desember 2026``."""
    return f"{_DAY_NAMES[day.weekday()]}, {day.day} {_MONTH_NAMES[day.month - 1]} {day.year}"


def format_jam(t: time) -> str:
    """A time of day the Indonesian way, with a dot: ``08.00``."""
    return f"{t.hour:02d}.{t.minute:02d}"
