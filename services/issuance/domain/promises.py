"""Promised dates, in the office's working days: pure functions of the calendar.

A document is produced in its promised number of working days (``turnaround_working_days``
of the catalogue) counted from the working day its production starts: the day it is
verified (or SIAK issues it) when that happens in office hours, else the next working
day. So a KIA verified on a Friday morning is ready 14 working days after that Friday; one
verified on Friday evening counts from Monday.

The same rule answers three questions: when to promise (from verification), when the
document is ready (from SIAK's issuance), and whether the promise is still reachable
(from now, for a document SIAK has not issued yet).
"""

from __future__ import annotations

from datetime import date, datetime

from shared.calendar import WorkingCalendar
from shared.documents import DocType, document


def start_day(at: datetime, calendar: WorkingCalendar) -> date:
    """The working day that work begun at ``at`` counts from."""
    return calendar.next_opening(at).date()


def promised_day(doc_type: str, at: datetime, calendar: WorkingCalendar) -> date:
    """The day a document whose production starts at ``at`` is ready."""
    days = document(DocType(doc_type)).turnaround_working_days
    return calendar.add_working_days(start_day(at, calendar), days)


def delayed_day(
    doc_type: str, promised_on: date, now: datetime, calendar: WorkingCalendar
) -> date | None:
    """The new date when a document not issued by ``now`` can no longer be ready on
    ``promised_on`` (None while it still can)."""
    earliest = promised_day(doc_type, now, calendar)
    return earliest if earliest > promised_on else None


def is_ready(ready_on: date, now: datetime, calendar: WorkingCalendar) -> bool:
    """A produced document is announced ready once the next opening of the office is on
    or after ``ready_on``: in office hours on the day itself, or the evening before."""
    return start_day(now, calendar) >= ready_on
