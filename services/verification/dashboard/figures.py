"""The dashboard's figures: what each one means, their typed values, and the pure
computations that make them (no database, no clock, no presentation).

What each figure means (windows count the office's own days back from today, today
included, in the office's time zone):

* **Requests per day**: requests received on each of the last 30 days, by document and by
  kecamatan (``verification_requests.received_at``, the store's clock).
* **Backlog**: open requests (every state but rejected, cancelled and completed) by state;
  the oldest one waiting for an officer (received, in the queue or amended), with its wait
  since receipt in working time.
* **Admin response latency**: for requests whose first officer action (claim, correction
  request or decision) happened in the last 30 days, the office's working time from receipt
  to that action; likewise to the decision (approve or reject). Percentiles are
  **nearest-rank**: p90 is the smallest observed value that at least 90% of the values do
  not exceed, so it is always a real request's wait and p50 <= p90 <= p99 holds. With no
  value there is no percentile ("belum ada data"), never a 0.
* **Promises kept**: of the documents issued in the last 30 days, the share that was ready
  (office pickup) or sent (letter in the chat) on or before the day *first* promised to the
  citizen (issuance answers it, :class:`shared.figures.IssuanceFigures`); a renewed promise
  counts as broken, and how many were renewed is shown too.
* **Notification failures**: messages to citizens that failed for good, or that WhatsApp
  reported undelivered, in the last 7 days, by reason (notify answers them,
  :class:`shared.figures.DeliveryFigures`).
* **SIAK backlog**: requests scheduled and not yet issued by SIAK; the oldest, how many are
  past their promised day, how many have failed attempts behind them (issuance answers).

The other services answer per ticket; an operator's scope (their kecamatan) is
verification's knowledge, so the dashboard keeps the tickets of its scope itself
(:func:`within`).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from fractions import Fraction
from typing import Final, Literal, Protocol, TypeVar

from services.verification.domain.officers import OfficerAccount
from services.verification.domain.request import State
from shared.calendar import WorkingCalendar
from shared.documents import DocType, document
from shared.figures import FailedMessages, SiakWait

REQUEST_DAYS: Final = 30
LATENCY_DAYS: Final = 30
PROMISE_DAYS: Final = 30
NOTIFICATION_DAYS: Final = 7
PERCENTILES: Final = (50, 90, 99)
PERCENTILE_METHOD: Final = "nearest-rank"
NO_DATA: Final = "belum ada data"

CLOSED_STATES: Final = frozenset({State.REJECTED, State.CANCELLED, State.COMPLETED})
WAITING_STATES: Final = (State.RECEIVED, State.IN_QUEUE, State.AMENDED)
"""Waiting for an officer (as on the supervisor page): not claimed, not with the citizen."""
OPEN_STATES_IN_ORDER: Final = tuple(
    state for state in State if state is not State.NEW and state not in CLOSED_STATES
)
DELIVERY_FAILED: Final = "tidak sampai ke HP warga (laporan status WhatsApp)"
Step = Literal["first_action", "decision"]
STEPS: Final[tuple[Step, ...]] = ("first_action", "decision")

# -- pure functions -----------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0 < q <= 100) of ``values`` by the nearest-rank method.

    The value at rank ``ceil(q/100 * n)`` of the sorted values: always one of the values,
    never an interpolation between two requests that nobody waited. Ranks are computed
    exactly (``q`` is read as the decimal it is written as), so p90 of ten values is the
    ninth, not the tenth through a rounding error. Raises :class:`ValueError` on no values.
    """
    if not values:
        raise ValueError("no values, no percentile")
    if not 0 < q <= 100:
        raise ValueError(f"a percentile is between 0 (excluded) and 100, got {q}")
    ordered = sorted(values)
    rank = math.ceil(Fraction(str(q)) * len(ordered) / 100)
    return ordered[max(rank, 1) - 1]


@dataclass(frozen=True, slots=True)
class Percentiles:
    """p50, p90 and p99 of ``count`` values (seconds of working time)."""

    count: int
    p50: float
    p90: float
    p99: float

    def at(self, q: int) -> float:
        return {50: self.p50, 90: self.p90, 99: self.p99}[q]


def percentiles(values: Sequence[float]) -> Percentiles | None:
    """p50/p90/p99 of ``values``, or None when there are none (no data is not a zero)."""
    if not values:
        return None
    p50, p90, p99 = (percentile(values, q) for q in PERCENTILES)
    return Percentiles(count=len(values), p50=p50, p90=p90, p99=p99)


def working_seconds(
    calendar: WorkingCalendar, spans: Iterable[tuple[datetime, datetime]]
) -> list[float]:
    """The office's working time of each (start, end), in seconds: a request received on
    Friday at 15:00 and answered on Monday at 09:00 waited two hours, not three days."""
    return [calendar.working_time_between(start, end).total_seconds() for start, end in spans]


@dataclass(frozen=True, slots=True)
class Promises:
    """Documents issued in the window, and how many were ready by their first promise."""

    issued: int
    kept: int
    renewed: int

    @property
    def kept_ratio(self) -> float | None:
        """Kept over issued (0..1); None when nothing was issued."""
        return self.kept / self.issued if self.issued else None


def promises_kept(records: Iterable[tuple[date, date, date | None]]) -> Promises:
    """From (ready or sent on, first promised day, current promised day) of issued
    documents: kept when ready on or before the first promise; renewed when the current
    promise is no longer the first one."""
    issued = kept = renewed = 0
    for ready_on, first_promise, current_promise in records:
        issued += 1
        kept += ready_on <= first_promise
        renewed += current_promise is not None and current_promise != first_promise
    return Promises(issued=issued, kept=kept, renewed=renewed)


def office_day(calendar: WorkingCalendar) -> timedelta:
    """How long the office is open on a working day (8 hours by default)."""
    hours = calendar.hours
    return datetime.combine(date.min, hours.closes) - datetime.combine(date.min, hours.opens)


def format_working(seconds: float | None, day: timedelta = timedelta(hours=8)) -> str:
    """Working time as officers say it: ``2 jam 15 menit kerja``, ``1 hari 3 jam kerja``
    (a day is one office day of ``day``), ``kurang dari 1 menit kerja``; ``belum ada
    data`` for None."""
    if seconds is None:
        return NO_DATA
    minutes = int(max(0.0, seconds) // 60)
    if minutes == 0:
        return "kurang dari 1 menit kerja"
    day_minutes = max(1, int(day.total_seconds() // 60))
    days, rest = divmod(minutes, day_minutes)
    hours, minutes = divmod(rest, 60)
    parts = [
        f"{amount} {unit}"
        for amount, unit in ((days, "hari"), (hours, "jam"), (minutes, "menit"))
        if amount
    ]
    return " ".join(parts) + " kerja"


def format_ratio(ratio: float | None) -> str:
    """A share as a percentage the Indonesian way (``87,5%``); ``belum ada data`` for None."""
    if ratio is None:
        return NO_DATA
    text = f"{ratio * 100:.1f}".replace(".", ",").removesuffix(",0")
    return f"{text}%"


def local_days(today: date, count: int) -> list[date]:
    """The ``count`` days ending with ``today``, oldest first."""
    return [today - timedelta(days=count - 1 - i) for i in range(count)]


def day_starts(days: Sequence[date], zone: tzinfo) -> list[datetime]:
    """Midnight (office time) of each day and of the day after the last: the bucket
    bounds of a per-day count, exact in any time zone."""
    bounds = [*days, days[-1] + timedelta(days=1)]
    return [datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC) for day in bounds]


# -- typed figures --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Scope:
    """Whose requests count: an operator's kecamatan, or (None) the whole office."""

    kecamatan: tuple[str, ...] | None

    @classmethod
    def of(cls, officer: OfficerAccount) -> Scope:
        return cls(None if officer.office_wide else tuple(officer.kecamatan))

    @property
    def office_wide(self) -> bool:
        return self.kecamatan is None

    @property
    def sql(self) -> list[str] | None:
        """The ``$n::text[]`` parameter of the queries (NULL: no filter)."""
        return None if self.kecamatan is None else list(self.kecamatan)


OFFICE: Final = Scope(None)


@dataclass(frozen=True, slots=True)
class Series:
    """Counts per day of one document or one kecamatan (``key`` None: unknown kecamatan)."""

    key: str | None
    label: str
    counts: tuple[int, ...]

    @property
    def total(self) -> int:
        return sum(self.counts)


@dataclass(frozen=True, slots=True)
class RequestsPerDay:
    days: tuple[date, ...]
    total: tuple[int, ...]
    by_document: tuple[Series, ...]
    by_kecamatan: tuple[Series, ...]

    @property
    def grand_total(self) -> int:
        return sum(self.total)


@dataclass(frozen=True, slots=True)
class Oldest:
    """The request that has waited longest: since when, and for how long in working time."""

    ticket: str
    since: datetime
    working: timedelta


@dataclass(frozen=True, slots=True)
class Backlog:
    by_state: tuple[tuple[str, int], ...]
    """(state, open requests in it), in the order of a request's life; only non-empty ones."""
    waiting: int
    oldest_waiting: Oldest | None

    @property
    def open_total(self) -> int:
        return sum(count for _, count in self.by_state)


@dataclass(frozen=True, slots=True)
class DocumentLatency:
    doc_type: str
    first_action: Percentiles | None
    decision: Percentiles | None


@dataclass(frozen=True, slots=True)
class ResponseLatency:
    first_action: Percentiles | None
    decision: Percentiles | None
    by_document: tuple[DocumentLatency, ...]

    def step(self, step: Step) -> Percentiles | None:
        return self.first_action if step == "first_action" else self.decision


@dataclass(frozen=True, slots=True)
class NotificationFailures:
    by_reason: tuple[tuple[str, int], ...]
    """(reason, failed messages), most frequent first."""

    @property
    def total(self) -> int:
        return sum(count for _, count in self.by_reason)


@dataclass(frozen=True, slots=True)
class SiakBacklog:
    waiting: int
    past_promise: int
    """Waiting although their promised day has come or gone."""
    retrying: int
    """Waiting with at least one failed attempt to reach SIAK behind them."""
    oldest: Oldest | None


@dataclass(frozen=True, slots=True)
class DashboardFigures:
    generated_at: datetime
    today: date
    scope: Scope
    requests: RequestsPerDay
    backlog: Backlog
    latency: ResponseLatency
    promises: Promises
    notifications: NotificationFailures
    siak: SiakBacklog


# -- what the other services answer, kept to the scope and summed -----------------------------


class _Ticketed(Protocol):
    @property
    def ticket(self) -> str | None: ...


T = TypeVar("T", bound=_Ticketed)


def tickets_of(*answers: Iterable[_Ticketed]) -> list[str]:
    """The distinct tickets the other services' answers are about, sorted."""
    return sorted({a.ticket for answer in answers for a in answer if a.ticket is not None})


def within(answers: Iterable[T], tickets: Collection[str] | None) -> list[T]:
    """The answers about the scope's ``tickets``, in their order; all of them when
    ``tickets`` is None (the whole office, requests verification does not know included).
    An answer about no ticket belongs to no kecamatan."""
    if tickets is None:
        return list(answers)
    return [a for a in answers if a.ticket is not None and a.ticket in tickets]


def notification_failures(failed: Iterable[FailedMessages]) -> NotificationFailures:
    """Failed messages by reason, most frequent first (ties by reason); a message WhatsApp
    reported undelivered without a reason counts as :data:`DELIVERY_FAILED`."""
    reasons: Counter[str] = Counter()
    for messages in failed:
        reasons[messages.reason or DELIVERY_FAILED] += messages.count
    return NotificationFailures(
        by_reason=tuple(sorted(reasons.items(), key=lambda pair: (-pair[1], pair[0])))
    )


def siak_backlog(
    waits: Sequence[SiakWait], today: date, calendar: WorkingCalendar, now: datetime
) -> SiakBacklog:
    """The requests waiting for SIAK (oldest first, as issuance answers them): how many,
    how many on or after their promised day, how many with failed attempts, the oldest."""
    oldest = None
    if waits:
        first = waits[0]
        oldest = Oldest(first.ticket, first.since, calendar.working_time_between(first.since, now))
    return SiakBacklog(
        waiting=len(waits),
        past_promise=sum(wait.promised_on <= today for wait in waits),
        retrying=sum(wait.attempts > 0 for wait in waits),
        oldest=oldest,
    )


def doc_label(doc_type: str) -> str:
    try:
        return document(DocType(doc_type)).name
    except ValueError:
        return doc_type


def doc_order(doc_type: str) -> tuple[int, str]:
    order = [doc.value for doc in DocType]
    return (order.index(doc_type) if doc_type in order else len(order), doc_type)


def ranked(series: Iterable[Series]) -> tuple[Series, ...]:
    """Busiest first; ties by name, so the order is stable."""
    return tuple(sorted(series, key=lambda s: (-s.total, s.label)))
