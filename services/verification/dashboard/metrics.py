"""The office-wide dashboard figures as OpenTelemetry gauges."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Final

from opentelemetry import metrics
from opentelemetry.metrics import CallbackOptions, Observation

from services.verification.dashboard.figures import OFFICE, PERCENTILES, STEPS, DashboardFigures
from shared.runtime.rounds import report_failed_round

if TYPE_CHECKING:
    from services.verification.dashboard.queries import Dashboard

log = logging.getLogger(__name__)

METER: Final = "adminduk.verification"


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
