"""The dashboard's two presentations of the same figures: the JSON API's answer
(:func:`public`) and the console page's words and charts (:func:`page_view`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Final, Literal

from markupsafe import Markup
from pydantic import BaseModel, Field

from services.verification.dashboard.charts import SHADES, Bar, bar_chart, column_chart
from services.verification.dashboard.figures import (
    LATENCY_DAYS,
    NO_DATA,
    NOTIFICATION_DAYS,
    PERCENTILE_METHOD,
    PERCENTILES,
    PROMISE_DAYS,
    REQUEST_DAYS,
    STEPS,
    DashboardFigures,
    Oldest,
    Percentiles,
    Series,
    doc_label,
    format_ratio,
    format_working,
    office_day,
)
from services.verification.domain.request import State
from shared.calendar import WorkingCalendar, format_tanggal

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
                doc_label(d.doc_type),
                _latency_row("first_action", d.first_action, day),
                _latency_row("decision", d.decision, day),
            )
            for d in figures.latency.by_document
        ),
        charts=charts,
    )
