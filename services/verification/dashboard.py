"""The office dashboard: how much comes in, what waits, and how fast officers answer.

One query path serves three screens. :meth:`Dashboard.figures` reads the read models in one
read-only, repeatable-read transaction (so every figure describes the same moment) and
returns typed figures; the console page (``/console/dashboard``), the JSON API
(``/api/dashboard``) and the OpenTelemetry gauges (:class:`DashboardMetrics`) only present
them. Officers see their own kecamatan, supervisors and admins the whole office.

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
  citizen. The issuance read model keeps only the current promise, which the sweeper renews
  when SIAK is late, so the first promise is read from the request's ``IssuanceScheduled``
  event; a renewed promise counts as broken, and how many were renewed is shown too.
* **Notification failures**: messages to citizens that failed for good, or that WhatsApp
  reported undelivered, in the last 7 days, by reason.
* **SIAK backlog**: requests scheduled and not yet issued by SIAK; the oldest, how many are
  past their promised day, how many have failed attempts behind them.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from fractions import Fraction
from typing import TYPE_CHECKING, Final, Literal

import asyncpg
from asyncpg.pool import PoolConnectionProxy
from markupsafe import Markup
from opentelemetry import metrics
from opentelemetry.metrics import CallbackOptions, Observation
from pydantic import BaseModel, Field

from services.verification.charts import SHADES, Bar, bar_chart, column_chart
from services.verification.domain.officers import OfficerAccount
from services.verification.domain.request import State
from shared.calendar import WorkingCalendar, format_tanggal
from shared.documents import DocType, document
from shared.runtime.rounds import report_failed_round

if TYPE_CHECKING:
    from services.verification.handlers import Desk

log = logging.getLogger(__name__)

METER: Final = "adminduk.verification"
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
REQUEST_PREFIX: Final = "request-"
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


# -- the queries ----------------------------------------------------------------------------

_REQUESTS_PER_DAY: Final = """
    SELECT width_bucket(received_at, $1::timestamptz[]) AS bucket, doc_type, kecamatan_code,
           count(*)::int AS n
    FROM verification_requests
    WHERE received_at >= ($1::timestamptz[])[1]
      AND received_at < ($1::timestamptz[])[array_length($1::timestamptz[], 1)]
      AND ($2::text[] IS NULL OR kecamatan_code = ANY($2::text[]))
    GROUP BY 1, 2, 3
"""
_BACKLOG: Final = """
    SELECT state, count(*)::int AS n FROM verification_requests
    WHERE state <> ALL($1::text[])
      AND ($2::text[] IS NULL OR kecamatan_code = ANY($2::text[]))
    GROUP BY state
"""
_OLDEST_WAITING: Final = """
    SELECT ticket, received_at FROM verification_requests
    WHERE state = ANY($1::text[])
      AND ($2::text[] IS NULL OR kecamatan_code = ANY($2::text[]))
    ORDER BY received_at, ticket LIMIT 1
"""
_LATENCIES: Final = """
    SELECT doc_type, received_at, first_action_at, decided_at FROM verification_requests
    WHERE ((first_action_at >= $1 AND first_action_at <= $2)
           OR (decided_at >= $1 AND decided_at <= $2))
      AND ($3::text[] IS NULL OR kecamatan_code = ANY($3::text[]))
"""
# The first promise lives in the log only (the work list keeps the renewed one).
_PROMISES: Final = """
    WITH issued AS (
        SELECT stream_id FROM events
        WHERE event_type = 'DocumentIssued' AND recorded_at >= $1 AND recorded_at <= $2
        GROUP BY stream_id
    )
    SELECT i.ready_on, i.promised_on,
           (SELECT (s.data ->> 'promised_on')::date FROM events s
            WHERE s.stream_id = issued.stream_id AND s.event_type = 'IssuanceScheduled'
            ORDER BY s.stream_version LIMIT 1) AS first_promise
    FROM issued
    JOIN issuance i ON i.ticket = substr(issued.stream_id, length($4) + 1)
    LEFT JOIN verification_requests v ON v.ticket = i.ticket
    WHERE i.ready_on IS NOT NULL
      AND ($3::text[] IS NULL OR v.kecamatan_code = ANY($3::text[]))
"""
_NOTIFICATION_FAILURES: Final = """
    SELECT n.reason, count(*)::int AS n FROM notification_outbox n
    LEFT JOIN verification_requests v ON v.ticket = n.ticket
    WHERE (n.state = 'failed' OR n.delivery = 'failed') AND n.updated_at >= $1
      AND ($2::text[] IS NULL OR v.kecamatan_code = ANY($2::text[]))
    GROUP BY n.reason
"""
_SIAK_BACKLOG: Final = """
    SELECT count(*)::int AS waiting,
           count(*) FILTER (WHERE i.promised_on <= $1)::int AS past_promise,
           count(*) FILTER (WHERE i.attempts > 0)::int AS retrying,
           (array_agg(i.ticket ORDER BY i.created_at, i.ticket))[1] AS oldest_ticket,
           min(i.created_at) AS oldest_since
    FROM issuance i LEFT JOIN verification_requests v ON v.ticket = i.ticket
    WHERE i.state = 'queued' AND ($2::text[] IS NULL OR v.kecamatan_code = ANY($2::text[]))
"""

Connection = asyncpg.Connection | PoolConnectionProxy


class Dashboard:
    """Computes the figures; see the module's docstring for what each one means."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        calendar: WorkingCalendar,
        kecamatan_names: Mapping[str, str],
        *,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.pool = pool
        self.calendar = calendar
        self.kecamatan_names = kecamatan_names
        self.now = now

    @classmethod
    def for_desk(cls, desk: Desk) -> Dashboard:
        """The desk's database, calendar and kecamatan; the verification service's clock
        (the one its sweeper and tests move)."""
        verification = desk.verification
        # Read at each call, not bound now: a test (or the sweeper's clock) may replace it.
        clock = lambda: verification.now()  # noqa: E731, PLW0108
        return cls(desk.store.pool, desk.calendar, desk.kecamatan_names, now=clock)

    async def figures(self, scope: Scope = OFFICE) -> DashboardFigures:
        now = self.now()
        today = now.astimezone(self.calendar.timezone).date()
        async with (
            self.pool.acquire() as connection,
            connection.transaction(isolation="repeatable_read", readonly=True),
        ):
            return DashboardFigures(
                generated_at=now,
                today=today,
                scope=scope,
                requests=await self._requests(connection, scope, today),
                backlog=await self._backlog(connection, scope, now),
                latency=await self._latency(connection, scope, today, now),
                promises=await self._promises(connection, scope, today, now),
                notifications=await self._notifications(connection, scope, today),
                siak=await self._siak(connection, scope, today, now),
            )

    def _since(self, today: date, days: int) -> datetime:
        """Midnight, office time, at the start of the window of ``days`` days."""
        return day_starts(local_days(today, days), self.calendar.timezone)[0]

    async def _requests(self, connection: Connection, scope: Scope, today: date) -> RequestsPerDay:
        days = local_days(today, REQUEST_DAYS)
        rows = await connection.fetch(
            _REQUESTS_PER_DAY, day_starts(days, self.calendar.timezone), scope.sql
        )
        total = [0] * len(days)
        by_document: dict[str, list[int]] = defaultdict(lambda: [0] * len(days))
        by_kecamatan: dict[str | None, list[int]] = defaultdict(lambda: [0] * len(days))
        for row in rows:
            index, count = int(row["bucket"]) - 1, int(row["n"])
            total[index] += count
            by_document[str(row["doc_type"])][index] += count
            by_kecamatan[row["kecamatan_code"]][index] += count
        return RequestsPerDay(
            days=tuple(days),
            total=tuple(total),
            by_document=_ranked(
                Series(doc, _doc_label(doc), tuple(counts)) for doc, counts in by_document.items()
            ),
            by_kecamatan=_ranked(
                Series(code, self._kecamatan_label(code), tuple(counts))
                for code, counts in by_kecamatan.items()
            ),
        )

    async def _backlog(self, connection: Connection, scope: Scope, now: datetime) -> Backlog:
        rows = await connection.fetch(_BACKLOG, sorted(CLOSED_STATES), scope.sql)
        counts = {str(row["state"]): int(row["n"]) for row in rows}
        oldest = await connection.fetchrow(_OLDEST_WAITING, list(WAITING_STATES), scope.sql)
        return Backlog(
            by_state=tuple(
                (state.value, counts[state.value])
                for state in OPEN_STATES_IN_ORDER
                if counts.get(state.value)
            ),
            waiting=sum(counts.get(state.value, 0) for state in WAITING_STATES),
            oldest_waiting=None
            if oldest is None
            else self._oldest(str(oldest["ticket"]), oldest["received_at"], now),
        )

    async def _latency(
        self, connection: Connection, scope: Scope, today: date, now: datetime
    ) -> ResponseLatency:
        since = self._since(today, LATENCY_DAYS)
        rows = await connection.fetch(_LATENCIES, since, now, scope.sql)
        samples: dict[tuple[str, Step], list[float]] = defaultdict(list)
        for row in rows:
            received, doc_type = row["received_at"], str(row["doc_type"])
            moments: tuple[tuple[Step, datetime | None], ...] = (
                ("first_action", row["first_action_at"]),
                ("decision", row["decided_at"]),
            )
            for step, at in moments:
                if at is not None and since <= at <= now:
                    seconds = self.calendar.working_time_between(received, at).total_seconds()
                    samples[(doc_type, step)].append(seconds)

        def overall(step: Step) -> Percentiles | None:
            return percentiles(
                [v for (_, s), values in samples.items() if s == step for v in values]
            )

        documents = sorted({doc for doc, _ in samples}, key=_doc_order)
        return ResponseLatency(
            first_action=overall("first_action"),
            decision=overall("decision"),
            by_document=tuple(
                DocumentLatency(
                    doc_type=doc,
                    first_action=percentiles(samples.get((doc, "first_action"), [])),
                    decision=percentiles(samples.get((doc, "decision"), [])),
                )
                for doc in documents
            ),
        )

    async def _promises(
        self, connection: Connection, scope: Scope, today: date, now: datetime
    ) -> Promises:
        since = self._since(today, PROMISE_DAYS)
        rows = await connection.fetch(_PROMISES, since, now, scope.sql, REQUEST_PREFIX)
        return promises_kept(
            (row["ready_on"], row["first_promise"] or row["promised_on"], row["promised_on"])
            for row in rows
        )

    async def _notifications(
        self, connection: Connection, scope: Scope, today: date
    ) -> NotificationFailures:
        since = self._since(today, NOTIFICATION_DAYS)
        rows = await connection.fetch(_NOTIFICATION_FAILURES, since, scope.sql)
        reasons: Counter[str] = Counter()
        for row in rows:
            reasons[row["reason"] or DELIVERY_FAILED] += int(row["n"])
        return NotificationFailures(
            by_reason=tuple(sorted(reasons.items(), key=lambda pair: (-pair[1], pair[0])))
        )

    async def _siak(
        self, connection: Connection, scope: Scope, today: date, now: datetime
    ) -> SiakBacklog:
        row = await connection.fetchrow(_SIAK_BACKLOG, today, scope.sql)
        assert row is not None  # an aggregate always answers one row
        oldest = None
        if row["oldest_ticket"] is not None:
            oldest = self._oldest(str(row["oldest_ticket"]), row["oldest_since"], now)
        return SiakBacklog(
            waiting=int(row["waiting"]),
            past_promise=int(row["past_promise"]),
            retrying=int(row["retrying"]),
            oldest=oldest,
        )

    def _oldest(self, ticket: str, since: datetime, now: datetime) -> Oldest:
        return Oldest(ticket, since, self.calendar.working_time_between(since, now))

    def _kecamatan_label(self, code: str | None) -> str:
        if code is None:
            return "Tanpa kecamatan"
        return self.kecamatan_names.get(code, code)


def _doc_label(doc_type: str) -> str:
    try:
        return document(DocType(doc_type)).name
    except ValueError:
        return doc_type


def _doc_order(doc_type: str) -> tuple[int, str]:
    order = [doc.value for doc in DocType]
    return (order.index(doc_type) if doc_type in order else len(order), doc_type)


def _ranked(series: Iterable[Series]) -> tuple[Series, ...]:
    """Busiest first; ties by name, so the order is stable."""
    return tuple(sorted(series, key=lambda s: (-s.total, s.label)))


# -- the JSON API's view ----------------------------------------------------------------------


class PercentilesPublic(BaseModel):
    count: int = Field(description="How many requests the percentiles are over")
    p50_working_seconds: float
    p90_working_seconds: float
    p99_working_seconds: float


class SeriesPublic(BaseModel):
    key: str | None = Field(description="Document keyword or kecamatan code (null: unknown)")
    label: str
    counts: list[int] = Field(description="One count per day of `days`")
    total: int


class RequestsPublic(BaseModel):
    days: list[date] = Field(description=f"The last {REQUEST_DAYS} days, oldest first")
    total: list[int]
    by_document: list[SeriesPublic]
    by_kecamatan: list[SeriesPublic]


class OldestPublic(BaseModel):
    ticket: str
    since: datetime
    waited_working_seconds: float


class StateCount(BaseModel):
    state: State
    count: int


class BacklogPublic(BaseModel):
    open_total: int
    by_state: list[StateCount] = Field(description="Open requests by state (non-empty only)")
    waiting: int = Field(description="Waiting for an officer: received, in_queue, amended")
    oldest_waiting: OldestPublic | None


class DocumentLatencyPublic(BaseModel):
    doc_type: str
    first_action: PercentilesPublic | None
    decision: PercentilesPublic | None


class LatencyPublic(BaseModel):
    window_days: int = LATENCY_DAYS
    percentile_method: Literal["nearest-rank"] = PERCENTILE_METHOD
    first_action: PercentilesPublic | None = Field(
        description="Receipt to the first officer action, in working time; null: no data"
    )
    decision: PercentilesPublic | None = Field(
        description="Receipt to approval or rejection, in working time; null: no data"
    )
    by_document: list[DocumentLatencyPublic]


class PromisesPublic(BaseModel):
    window_days: int = PROMISE_DAYS
    issued: int
    kept: int = Field(description="Ready or sent on or before the first promised day")
    renewed: int = Field(description="Given a later date because SIAK was late")
    kept_ratio: float | None = Field(description="kept / issued; null when none issued")


class ReasonCount(BaseModel):
    reason: str
    count: int


class NotificationFailuresPublic(BaseModel):
    window_days: int = NOTIFICATION_DAYS
    total: int
    by_reason: list[ReasonCount]


class SiakBacklogPublic(BaseModel):
    waiting: int
    past_promise: int
    retrying: int
    oldest: OldestPublic | None


class ScopePublic(BaseModel):
    office_wide: bool
    kecamatan: list[str] = Field(description="The operator's kecamatan; empty when office-wide")


class DashboardPublic(BaseModel):
    """The office dashboard's figures; durations are seconds of the office's working time."""

    generated_at: datetime
    scope: ScopePublic
    requests_per_day: RequestsPublic
    backlog: BacklogPublic
    admin_response: LatencyPublic
    promises: PromisesPublic
    notification_failures: NotificationFailuresPublic
    siak_backlog: SiakBacklogPublic


def _percentiles_public(value: Percentiles | None) -> PercentilesPublic | None:
    if value is None:
        return None
    return PercentilesPublic(
        count=value.count,
        p50_working_seconds=value.p50,
        p90_working_seconds=value.p90,
        p99_working_seconds=value.p99,
    )


def _oldest_public(value: Oldest | None) -> OldestPublic | None:
    if value is None:
        return None
    return OldestPublic(
        ticket=value.ticket, since=value.since, waited_working_seconds=value.working.total_seconds()
    )


def _series_public(series: Sequence[Series]) -> list[SeriesPublic]:
    return [
        SeriesPublic(key=s.key, label=s.label, counts=list(s.counts), total=s.total) for s in series
    ]


def public(figures: DashboardFigures) -> DashboardPublic:
    """The figures as the API answers them."""
    requests, backlog, latency = figures.requests, figures.backlog, figures.latency
    return DashboardPublic(
        generated_at=figures.generated_at,
        scope=ScopePublic(
            office_wide=figures.scope.office_wide, kecamatan=list(figures.scope.kecamatan or ())
        ),
        requests_per_day=RequestsPublic(
            days=list(requests.days),
            total=list(requests.total),
            by_document=_series_public(requests.by_document),
            by_kecamatan=_series_public(requests.by_kecamatan),
        ),
        backlog=BacklogPublic(
            open_total=backlog.open_total,
            by_state=[StateCount(state=State(s), count=n) for s, n in backlog.by_state],
            waiting=backlog.waiting,
            oldest_waiting=_oldest_public(backlog.oldest_waiting),
        ),
        admin_response=LatencyPublic(
            first_action=_percentiles_public(latency.first_action),
            decision=_percentiles_public(latency.decision),
            by_document=[
                DocumentLatencyPublic(
                    doc_type=d.doc_type,
                    first_action=_percentiles_public(d.first_action),
                    decision=_percentiles_public(d.decision),
                )
                for d in latency.by_document
            ],
        ),
        promises=PromisesPublic(
            issued=figures.promises.issued,
            kept=figures.promises.kept,
            renewed=figures.promises.renewed,
            kept_ratio=figures.promises.kept_ratio,
        ),
        notification_failures=NotificationFailuresPublic(
            total=figures.notifications.total,
            by_reason=[ReasonCount(reason=r, count=n) for r, n in figures.notifications.by_reason],
        ),
        siak_backlog=SiakBacklogPublic(
            waiting=figures.siak.waiting,
            past_promise=figures.siak.past_promise,
            retrying=figures.siak.retrying,
            oldest=_oldest_public(figures.siak.oldest),
        ),
    )


# -- the console page's view ----------------------------------------------------------------------

STEP_LABELS: Final[Mapping[str, str]] = {
    "first_action": "Sampai tindakan pertama petugas",
    "decision": "Sampai keputusan (disetujui/ditolak)",
}
MONTHS: Final = ("Jan", "Feb", "Mar", "Apr", "Mei", "Jun", "Jul", "Agu", "Sep", "Okt", "Nov", "Des")


def _short_day(day: date) -> str:
    return f"{day.day} {MONTHS[day.month - 1]}"


@dataclass(frozen=True, slots=True)
class LatencyRow:
    step: str
    label: str
    figures: Percentiles | None
    texts: tuple[str, str, str]
    """p50, p90, p99 as people read them (or "belum ada data")."""


@dataclass(frozen=True)
class DashboardPage:
    """What the template shows: the figures, their words and their charts."""

    figures: DashboardFigures
    day: timedelta
    latency_rows: tuple[LatencyRow, ...]
    document_rows: tuple[tuple[str, str, LatencyRow, LatencyRow], ...]
    charts: Mapping[str, Markup] = field(default_factory=dict)

    def working(self, seconds: float | None) -> str:
        return format_working(seconds, self.day)

    def ratio(self, ratio: float | None) -> str:
        return format_ratio(ratio)


def _latency_row(step: str, figures: Percentiles | None, day: timedelta) -> LatencyRow:
    if figures is None:
        texts = (NO_DATA, NO_DATA, NO_DATA)
    else:
        texts = (
            format_working(figures.p50, day),
            format_working(figures.p90, day),
            format_working(figures.p99, day),
        )
    return LatencyRow(step, STEP_LABELS[step], figures, texts)


def _latency_chart(rows: Sequence[LatencyRow]) -> Markup | None:
    bars = [
        Bar(
            label=f"p{q} {'pertama' if row.step == 'first_action' else 'keputusan'}",
            value=row.figures.at(q),
            caption=text,
            title=f"{row.label}, p{q}: {text}",
        )
        for row in rows
        if row.figures is not None
        for q, text in zip(PERCENTILES, row.texts, strict=True)
    ]
    if not bars:
        return None
    return bar_chart(
        "chart-latency",
        "Waktu tanggap petugas (jam kerja)",
        "Persentil 50, 90 dan 99 waktu kerja dari permohonan masuk sampai tindakan pertama "
        "petugas dan sampai keputusan, 30 hari terakhir.",
        bars,
        label_width=130,
        shades=SHADES,
    )


def page_view(figures: DashboardFigures, calendar: WorkingCalendar) -> DashboardPage:
    """The page's words and charts, from the figures alone."""
    day = office_day(calendar)
    rows = tuple(_latency_row(step, figures.latency.step(step), day) for step in STEPS)
    requests = figures.requests
    charts: dict[str, Markup] = {}
    if requests.grand_total:
        charts["per_day"] = column_chart(
            "chart-per-day",
            f"Permohonan masuk per hari, {REQUEST_DAYS} hari terakhir",
            f"{requests.grand_total} permohonan dari {format_tanggal(requests.days[0])} "
            f"sampai {format_tanggal(requests.days[-1])}.",
            [
                Bar(_short_day(d), n, f"{n} permohonan", f"{format_tanggal(d)}: {n} permohonan")
                for d, n in zip(requests.days, requests.total, strict=True)
            ],
        )
        for key, series, what in (
            ("per_document", requests.by_document, "dokumen"),
            ("per_kecamatan", requests.by_kecamatan, "kecamatan"),
        ):
            charts[key] = bar_chart(
                f"chart-{key.replace('_', '-')}",
                f"Permohonan per {what}, {REQUEST_DAYS} hari terakhir",
                f"Jumlah permohonan per {what}, terbanyak di atas.",
                [
                    Bar(
                        (s.key or "-") if what == "dokumen" else s.label,
                        s.total,
                        f"{s.total}",
                        f"{s.label}: {s.total}",
                    )
                    for s in series
                ],
            )
    if (latency := _latency_chart(rows)) is not None:
        charts["latency"] = latency
    return DashboardPage(
        figures=figures,
        day=day,
        latency_rows=rows,
        document_rows=tuple(
            (
                d.doc_type,
                _doc_label(d.doc_type),
                _latency_row("first_action", d.first_action, day),
                _latency_row("decision", d.decision, day),
            )
            for d in figures.latency.by_document
        ),
        charts=charts,
    )


# -- OpenTelemetry -------------------------------------------------------------------------------


class DashboardMetrics:
    """The office-wide figures as OpenTelemetry gauges.

    The SQL runs in the service's event loop every ``interval`` (:meth:`run`); the gauges'
    callbacks, which the SDK calls from its exporter thread, only read the last snapshot.
    Before the first snapshot, and for a figure without data (no percentile, no ratio),
    a gauge reports nothing rather than a misleading zero.
    """

    def __init__(self, dashboard: Dashboard, meter: metrics.Meter | None = None) -> None:
        self.dashboard = dashboard
        self.snapshot: DashboardFigures | None = None
        meter = meter or metrics.get_meter(METER)
        gauges: list[tuple[str, str, str, Callable[[DashboardFigures], Iterator[Observation]]]] = [
            ("adminduk.requests.backlog", "{request}", "Open requests by state", _backlog),
            (
                "adminduk.requests.oldest_waiting",
                "s",
                "Working time the oldest request waiting for an officer has waited",
                _oldest_waiting,
            ),
            (
                "adminduk.requests.received_today",
                "{request}",
                "Requests received today (office time) by document",
                _received_today_by_document,
            ),
            (
                "adminduk.requests.received_today_by_kecamatan",
                "{request}",
                "Requests received today (office time) by kecamatan",
                _received_today_by_kecamatan,
            ),
            ("adminduk.siak.backlog", "{request}", "Requests waiting for SIAK", _siak_backlog),
            (
                "adminduk.siak.past_promise",
                "{request}",
                "Requests waiting for SIAK on or after their promised day",
                _siak_past_promise,
            ),
            (
                "adminduk.promises.kept_ratio",
                "1",
                "Share of documents issued in the last 30 days ready by the first promise",
                _kept_ratio,
            ),
            (
                "adminduk.notifications.failed",
                "{message}",
                "Messages to citizens failed in the last 7 days, by reason",
                _notifications_failed,
            ),
        ]
        for q in PERCENTILES:
            gauges.append(
                (
                    f"adminduk.admin.response_time.p{q}",
                    "s",
                    f"p{q} (nearest rank) of the working time from receipt to the first officer"
                    " action (step=first_action) and to the decision (step=decision), last 30"
                    " days",
                    _response_time(q),
                )
            )
        for name, unit, description, observe in gauges:
            meter.create_observable_gauge(
                name, callbacks=[self._callback(observe)], unit=unit, description=description
            )

    def _callback(
        self, observe: Callable[[DashboardFigures], Iterator[Observation]]
    ) -> Callable[[CallbackOptions], Iterable[Observation]]:
        def callback(_: CallbackOptions) -> Iterable[Observation]:
            snapshot = self.snapshot  # one read: the loop may replace it meanwhile
            return [] if snapshot is None else list(observe(snapshot))

        return callback

    async def refresh(self) -> DashboardFigures:
        self.snapshot = await self.dashboard.figures(OFFICE)
        return self.snapshot

    async def run(self, interval: float) -> None:
        """Refresh now and every ``interval`` seconds until cancelled."""
        while True:
            try:
                await self.refresh()
            except Exception as error:  # noqa: BLE001 - reported; the loop goes on
                report_failed_round(log, "dashboard metrics", error)
            await asyncio.sleep(interval)


def _backlog(figures: DashboardFigures) -> Iterator[Observation]:
    for state, count in figures.backlog.by_state:
        yield Observation(count, {"state": state})


def _oldest_waiting(figures: DashboardFigures) -> Iterator[Observation]:
    if figures.backlog.oldest_waiting is not None:
        yield Observation(figures.backlog.oldest_waiting.working.total_seconds())


def _received_today_by_document(figures: DashboardFigures) -> Iterator[Observation]:
    """Every document seen in the window, today's count (0 included, so a quiet day is seen)."""
    for series in figures.requests.by_document:
        yield Observation(series.counts[-1], {"doc_type": series.key or ""})


def _received_today_by_kecamatan(figures: DashboardFigures) -> Iterator[Observation]:
    for series in figures.requests.by_kecamatan:
        yield Observation(series.counts[-1], {"kecamatan": series.key or "unknown"})


def _siak_backlog(figures: DashboardFigures) -> Iterator[Observation]:
    yield Observation(figures.siak.waiting)


def _siak_past_promise(figures: DashboardFigures) -> Iterator[Observation]:
    yield Observation(figures.siak.past_promise)


def _kept_ratio(figures: DashboardFigures) -> Iterator[Observation]:
    if (ratio := figures.promises.kept_ratio) is not None:
        yield Observation(ratio)


def _notifications_failed(figures: DashboardFigures) -> Iterator[Observation]:
    for reason, count in figures.notifications.by_reason:
        yield Observation(count, {"reason": reason})


def _response_time(q: int) -> Callable[[DashboardFigures], Iterator[Observation]]:
    def observe(figures: DashboardFigures) -> Iterator[Observation]:
        for step in STEPS:
            value = figures.latency.step(step)
            if value is not None:
                yield Observation(value.at(q), {"step": step})

    return observe
