"""The office dashboard: how much comes in, what waits, and how fast officers answer.

One query path serves three screens. :meth:`Dashboard.figures` reads verification's read
models in one read-only, repeatable-read transaction and asks issuance and notify for
theirs through the ports of :mod:`shared.figures`; it returns typed figures, which the
console page (``/console/dashboard``), the JSON API (``/api/dashboard``) and the
OpenTelemetry gauges (:class:`DashboardMetrics`) only present. Officers see their own
kecamatan, supervisors and admins the whole office.

* :mod:`.figures`: what each figure means, its typed value, the pure computations;
* :mod:`.queries`: :class:`Dashboard`, the SQL on verification's own tables;
* :mod:`.view`: the JSON API's answer and the console page's words and charts
  (:mod:`.charts`);
* :mod:`.metrics`: the gauges.
"""

from services.verification.dashboard.figures import (
    CLOSED_STATES,
    DELIVERY_FAILED,
    LATENCY_DAYS,
    NO_DATA,
    NOTIFICATION_DAYS,
    OFFICE,
    OPEN_STATES_IN_ORDER,
    PERCENTILE_METHOD,
    PERCENTILES,
    PROMISE_DAYS,
    REQUEST_DAYS,
    STEPS,
    WAITING_STATES,
    Backlog,
    DashboardFigures,
    DocumentLatency,
    NotificationFailures,
    Oldest,
    Percentiles,
    Promises,
    RequestsPerDay,
    ResponseLatency,
    Scope,
    Series,
    SiakBacklog,
    Step,
    day_starts,
    format_ratio,
    format_working,
    local_days,
    notification_failures,
    office_day,
    percentile,
    percentiles,
    promises_kept,
    siak_backlog,
    within,
    working_seconds,
)
from services.verification.dashboard.metrics import METER, DashboardMetrics
from services.verification.dashboard.queries import Dashboard
from services.verification.dashboard.view import (
    DashboardPage,
    DashboardPublic,
    LatencyRow,
    page_view,
    public,
)

__all__ = [
    "CLOSED_STATES",
    "DELIVERY_FAILED",
    "LATENCY_DAYS",
    "METER",
    "NOTIFICATION_DAYS",
    "NO_DATA",
    "OFFICE",
    "OPEN_STATES_IN_ORDER",
    "PERCENTILES",
    "PERCENTILE_METHOD",
    "PROMISE_DAYS",
    "REQUEST_DAYS",
    "STEPS",
    "WAITING_STATES",
    "Backlog",
    "Dashboard",
    "DashboardFigures",
    "DashboardMetrics",
    "DashboardPage",
    "DashboardPublic",
    "DocumentLatency",
    "LatencyRow",
    "NotificationFailures",
    "Oldest",
    "Percentiles",
    "Promises",
    "RequestsPerDay",
    "ResponseLatency",
    "Scope",
    "Series",
    "SiakBacklog",
    "Step",
    "day_starts",
    "format_ratio",
    "format_working",
    "local_days",
    "notification_failures",
    "office_day",
    "page_view",
    "percentile",
    "percentiles",
    "promises_kept",
    "public",
    "siak_backlog",
    "within",
    "working_seconds",
]
