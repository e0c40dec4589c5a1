"""The dashboard's queries: verification's own read models in one read-only,
repeatable-read transaction (so its figures describe one moment), and the figures of other
services asked from their owners through :mod:`shared.figures`'s ports.

Nothing here reads another service's table: issuance answers the promises and the SIAK
backlog, notify the failed messages, both per ticket; an operator's kecamatan is kept by
looking the tickets up in ``verification_requests``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Final

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from services.verification.dashboard.figures import (
    CLOSED_STATES,
    LATENCY_DAYS,
    NOTIFICATION_DAYS,
    OFFICE,
    OPEN_STATES_IN_ORDER,
    PROMISE_DAYS,
    REQUEST_DAYS,
    WAITING_STATES,
    Backlog,
    DashboardFigures,
    DocumentLatency,
    Oldest,
    Percentiles,
    RequestsPerDay,
    ResponseLatency,
    Scope,
    Series,
    Step,
    day_starts,
    doc_label,
    doc_order,
    local_days,
    notification_failures,
    percentiles,
    promises_kept,
    ranked,
    siak_backlog,
    tickets_of,
    within,
)
from shared.calendar import WorkingCalendar
from shared.figures import DeliveryFigures, IssuanceFigures

if TYPE_CHECKING:
    from services.verification.handlers import Desk

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
_TICKETS_IN_SCOPE: Final = """
    SELECT ticket FROM verification_requests
    WHERE ticket = ANY($1::text[]) AND kecamatan_code = ANY($2::text[])
"""

Connection = asyncpg.Connection | PoolConnectionProxy


class Dashboard:
    """Computes the figures (see :mod:`.figures` for what each one means): verification's
    own from its read models, issuance's and notify's from their owners' answers."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        calendar: WorkingCalendar,
        kecamatan_names: Mapping[str, str],
        *,
        issuance: IssuanceFigures,
        delivery: DeliveryFigures,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.pool = pool
        self.calendar = calendar
        self.kecamatan_names = kecamatan_names
        self.issuance = issuance
        self.delivery = delivery
        self.now = now

    @classmethod
    def for_desk(
        cls, desk: Desk, *, issuance: IssuanceFigures, delivery: DeliveryFigures
    ) -> Dashboard:
        """The desk's database, calendar and kecamatan; the verification service's clock
        (the one its sweeper and tests move); issuance's and notify's answers."""
        verification = desk.verification
        # Read at each call, not bound now: a test (or the sweeper's clock) may replace it.
        clock = lambda: verification.now()  # noqa: E731, PLW0108
        return cls(
            desk.store.pool,
            desk.calendar,
            desk.kecamatan_names,
            issuance=issuance,
            delivery=delivery,
            now=clock,
        )

    async def figures(self, scope: Scope = OFFICE) -> DashboardFigures:
        now = self.now()
        today = now.astimezone(self.calendar.timezone).date()
        # The owners first: a request they know of is by then in verification's read model.
        issued = await self.issuance.issued(self._since(today, PROMISE_DAYS), now)
        waits = await self.issuance.waiting_for_siak()
        failed = await self.delivery.failed(self._since(today, NOTIFICATION_DAYS))
        async with (
            self.pool.acquire() as connection,
            connection.transaction(isolation="repeatable_read", readonly=True),
        ):
            requests = await self._requests(connection, scope, today)
            backlog = await self._backlog(connection, scope, now)
            latency = await self._latency(connection, scope, today, now)
            tickets = await self._tickets_in_scope(
                connection, scope, tickets_of(issued, waits, failed)
            )
        return DashboardFigures(
            generated_at=now,
            today=today,
            scope=scope,
            requests=requests,
            backlog=backlog,
            latency=latency,
            promises=promises_kept(
                (doc.ready_on, doc.first_promised_on, doc.promised_on)
                for doc in within(issued, tickets)
            ),
            notifications=notification_failures(within(failed, tickets)),
            siak=siak_backlog(within(waits, tickets), today, self.calendar, now),
        )

    def _since(self, today: date, days: int) -> datetime:
        """Midnight, office time, at the start of the window of ``days`` days."""
        return day_starts(local_days(today, days), self.calendar.timezone)[0]

    async def _tickets_in_scope(
        self, connection: Connection, scope: Scope, tickets: Sequence[str]
    ) -> frozenset[str] | None:
        """Which of ``tickets`` are the scope's; None for the whole office (no filter)."""
        if scope.sql is None:
            return None
        if not tickets:
            return frozenset()
        rows = await connection.fetch(_TICKETS_IN_SCOPE, list(tickets), scope.sql)
        return frozenset(str(row["ticket"]) for row in rows)

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
            by_document=ranked(
                Series(doc, doc_label(doc), tuple(counts)) for doc, counts in by_document.items()
            ),
            by_kecamatan=ranked(
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

        documents = sorted({doc for doc, _ in samples}, key=doc_order)
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

    def _oldest(self, ticket: str, since: datetime, now: datetime) -> Oldest:
        return Oldest(ticket, since, self.calendar.working_time_between(since, now))

    def _kecamatan_label(self, code: str | None) -> str:
        if code is None:
            return "Tanpa kecamatan"
        return self.kecamatan_names.get(code, code)
