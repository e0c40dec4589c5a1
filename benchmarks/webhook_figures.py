"""Figures of the webhook benchmark: what one rate step measured, computed from the
messages and the samples the run kept."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

from benchmarks.measure import percentile
from benchmarks.webhook_system import HARNESS, CpuUse
from benchmarks.webhook_traffic import Message

ACK_WINDOW: Final = 30.0
"""Seconds after a step's last send within which every acknowledgement must arrive."""
MIN_STEP_SECONDS: Final = 3.0
LATE_AFTER: Final = 2.0
"""A message without a ticket this many seconds after its scheduled send is late; a step
is cut once more than one second's worth of its messages is late."""
DRAIN_LIMIT: Final = 60.0
"""Seconds after a step's last send that the next step waits for its backlog at most."""
IDLE_SECONDS: Final = 5.0
PEAK_WINDOW: Final = 5.0

# The targets of issue 14, with the status webhooks and default telemetry on.
TARGET_RATE: Final = 200.0
"""Messages per second, sustained for :data:`TARGET_SECONDS`."""
TARGET_SECONDS: Final = 60.0
TARGET_P99_MS: Final = 1000.0
"""Acknowledgement ("Nomor tiket:") p99 after the webhook POST."""
TARGET_WEBHOOK_P99_MS: Final = 50.0
TARGET_CPU_MS: Final = 8.0
"""CPU ms per citizen message in adminduk's processes (Postgres and NATS included)."""
TARGET_LAG_P99_MS: Final = 1000.0
"""Commit -> integrator (NATS ``adminduk.public.*`` and the signed webhook), p99."""


@dataclass(frozen=True)
class Quantiles:
    count: int
    p50: float
    p90: float
    p99: float
    max: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Quantiles:
        if not values:
            nan = float("nan")
            return cls(0, nan, nan, nan, nan)
        return cls(
            len(values),
            percentile(values, 0.5),
            percentile(values, 0.9),
            percentile(values, 0.99),
            max(values),
        )


@dataclass
class StepRun:
    """What the run kept of one rate step, to be summarised at the end."""

    step: int
    rate: float
    planned_seconds: float
    messages: list[Message]
    kind: str = "ladder"
    cut_reason: str | None = None
    send_end: float = 0.0
    drain_end: float = 0.0
    cpu_load: CpuUse | None = None
    cpu_step: CpuUse | None = None
    cpu_full: CpuUse | None = None
    """From the first send until the statuses of the last replies were in."""
    queues: dict[str, int] = field(default_factory=dict)
    events: dict[str, int] = field(default_factory=dict)
    poll_cycles: list[float] = field(default_factory=list)
    strangers: int = 0
    public_events: int = 0
    """Events of a public type stored during the step: what integrators should get."""
    nats_lag: list[float] = field(default_factory=list)
    """Seconds from commit to arrival on ``adminduk.public.>``, per public event."""
    webhook_lag: list[float] = field(default_factory=list)
    """Seconds from commit to arrival of the signed integrator webhook, per event."""
    webhook_unverified: int = 0


@dataclass(frozen=True)
class StepResult:
    step: int
    kind: str
    offered_rate: float
    planned_seconds: float
    cut_reason: str | None
    sent: int
    withdrawn: int
    """Still waiting for a connection when the step was cut: never sent."""
    send_seconds: float
    webhook_rate: float
    """Webhooks answered 200 per second, from the first send to the last answer."""
    statuses: dict[str, int]
    webhook_ms: Quantiles
    sender_lag_ms: Quantiles
    ticket_ms: Quantiles
    """Scheduled send -> the acknowledgement received by the fake Cloud API, within the
    window."""
    seen_ms: Quantiles
    """Scheduled send -> the acknowledgement received by the fake Cloud API, all of them."""
    notified_ms: Quantiles
    """Scheduled send -> ``NotificationSent`` recorded (after the Cloud API answered)."""
    stages: dict[str, Quantiles]
    acknowledged: int
    missing: int
    late: int
    duplicates: int
    other_replies: int
    unverified: int
    """Acknowledged per notify's record but never found in the fake Cloud API's outbox."""
    wrong_tickets: int
    matched_tickets: int
    """Acknowledgements whose ticket equals the stored ``RequestReceived``'s."""
    not_stored: int
    ticket_rate: float
    peak_ticket_rate: float
    drain_seconds: float
    cpu_load: CpuUse
    cpu_step: CpuUse
    cpu_ms: dict[str, float]
    """CPU milliseconds per message sent, by process, above the idle baseline."""
    queues: dict[str, int]
    events: dict[str, int]
    poll_cycle_ms: Quantiles
    strangers: int
    public_events: int = 0
    nats_lag_ms: Quantiles = field(default_factory=lambda: Quantiles.of([]))
    webhook_lag_ms: Quantiles = field(default_factory=lambda: Quantiles.of([]))
    webhook_unverified: int = 0

    @property
    def adminduk_cpu_ms(self) -> float:
        """CPU ms per message in adminduk's processes (all but the harness)."""
        return sum(value for role, value in self.cpu_ms.items() if role not in HARNESS)

    @property
    def lost(self) -> int:
        """Messages not answered 200, or without an acknowledgement within the window."""
        return self.non_200 + self.missing

    @property
    def status_webhooks(self) -> int:
        return self.events.get("DeliveryStatusReceived", 0)

    @property
    def non_200(self) -> int:
        return sum(count for status, count in self.statuses.items() if status != "200")

    @property
    def kept_up(self) -> bool:
        """Every message answered 200 and acknowledged within the window, once, and the
        step ran its full length."""
        return (
            self.cut_reason is None
            and self.non_200 == 0
            and self.missing == 0
            and self.duplicates == 0
            and self.sent > 0
        )

    @property
    def meets_p99(self) -> bool:
        """Kept up, with the acknowledgement's and the webhook's p99 within the targets."""
        return (
            self.kept_up
            and self.ticket_ms.p99 <= TARGET_P99_MS
            and self.webhook_ms.p99 <= TARGET_WEBHOOK_P99_MS
        )

    @property
    def meets_target(self) -> bool:
        """The latency terms at the target rate (or above), for the target's duration."""
        return (
            self.meets_p99
            and self.offered_rate >= TARGET_RATE
            and self.send_seconds >= TARGET_SECONDS * 0.98
        )


def _ms(values: Sequence[float | None]) -> list[float]:
    return [value for value in values if value is not None and not math.isnan(value)]


def _between(messages: Sequence[Message], start: str, end: str) -> Quantiles:
    values = []
    for message in messages:
        first, second = getattr(message, start), getattr(message, end)
        if first is not None and second is not None:
            values.append((second - first) * 1000)
    return Quantiles.of(values)


def peak_rate(instants: Sequence[float], window: float) -> float:
    """Most events in any ``window`` seconds, per second."""
    ordered = sorted(instants)
    best, low = 0, 0
    for high, instant in enumerate(ordered):
        while instant - ordered[low] > window:
            low += 1
        best = max(best, high - low + 1)
    return best / window


def peak_unanswered(messages: Sequence[Message]) -> int:
    """Most webhooks at once that were due but not yet answered: waiting for a connection
    or in flight, i.e. the queue in front of intake's webhook."""
    changes: list[tuple[float, int]] = []
    for m in messages:
        if m.scheduled is not None and m.answered is not None:
            changes += [(m.scheduled, 1), (m.answered, -1)]
    peak = current = 0
    for _, change in sorted(changes):
        current += change
        peak = max(peak, current)
    return peak


def cpu_per_message(full: CpuUse, idle: CpuUse, messages: int) -> dict[str, float]:
    """CPU ms per message by process: what the step used above the idle baseline."""
    if not messages:
        return {}
    return {
        role: max(0.0, cores - idle.cores.get(role, 0.0)) * full.wall * 1000 / messages
        for role, cores in full.cores.items()
    }


def summarise(run: StepRun, idle: CpuUse) -> StepResult:
    sent = [message for message in run.messages if message.sent]
    scheduled = [m.scheduled for m in sent if m.scheduled is not None]
    first, last = (min(scheduled), max(scheduled)) if scheduled else (0.0, 0.0)
    deadline = last + ACK_WINDOW
    statuses = Counter(
        str(m.status) if m.status is not None else (m.error or "no answer") for m in sent
    )
    answered_ok = [m.answered for m in sent if m.status == 200 and m.answered is not None]
    webhook_span = (max(answered_ok) - first) if answered_ok else float("nan")
    in_time = [m for m in sent if m.arrived is not None and m.arrived <= deadline]
    late = [m for m in sent if m.arrived is not None and m.arrived > deadline]
    arrived = [m.arrived for m in in_time if m.arrived is not None]
    ticket_span = (max(arrived) - first) if arrived else float("nan")
    assert run.cpu_load is not None and run.cpu_step is not None and run.cpu_full is not None
    return StepResult(
        step=run.step,
        kind=run.kind,
        offered_rate=run.rate,
        planned_seconds=run.planned_seconds,
        cut_reason=run.cut_reason,
        sent=len(sent),
        withdrawn=sum(1 for m in run.messages if m.withdrawn),
        send_seconds=(last - first) + (1 / run.rate if sent else 0.0),
        webhook_rate=len(answered_ok) / webhook_span if webhook_span > 0 else float("nan"),
        statuses=dict(statuses),
        webhook_ms=Quantiles.of(_ms([m.since_scheduled(m.answered) for m in sent])),
        sender_lag_ms=Quantiles.of(_ms([m.since_scheduled(m.started) for m in sent])),
        ticket_ms=Quantiles.of(_ms([m.since_scheduled(m.arrived) for m in in_time])),
        seen_ms=Quantiles.of(_ms([m.since_scheduled(m.seen) for m in sent])),
        notified_ms=Quantiles.of(_ms([m.since_scheduled(m.notified) for m in sent])),
        stages={
            "webhook POST -> WhatsAppMessageReceived stored": _between(sent, "scheduled", "stored"),
            "stored -> RequestReceived (relay, intake consumer)": _between(
                sent, "stored", "requested"
            ),
            "RequestReceived -> acknowledgement at the fake Cloud API (relay, notify)": (
                _between(sent, "requested", "seen")
            ),
            "acknowledgement received -> NotificationSent recorded": _between(
                sent, "seen", "notified"
            ),
        },
        acknowledged=len(in_time),
        missing=len(sent) - len(in_time),
        late=len(late),
        duplicates=sum(1 for m in sent if m.acknowledgements > 1),
        other_replies=sum(1 for m in sent if m.other_replies > 0),
        unverified=sum(1 for m in sent if m.notified is not None and m.acknowledgements == 0),
        wrong_tickets=sum(
            1
            for m in sent
            if m.acknowledged_ticket is not None
            and m.ticket is not None
            and m.acknowledged_ticket != m.ticket
        ),
        matched_tickets=sum(
            1 for m in sent if m.ticket is not None and m.acknowledged_ticket == m.ticket
        ),
        not_stored=sum(1 for m in sent if m.status == 200 and m.stored is None),
        ticket_rate=len(in_time) / ticket_span if ticket_span > 0 else float("nan"),
        peak_ticket_rate=peak_rate(arrived, PEAK_WINDOW),
        drain_seconds=(max(arrived) - last) if arrived else float("nan"),
        cpu_load=run.cpu_load,
        cpu_step=run.cpu_step,
        cpu_ms=cpu_per_message(run.cpu_full, idle, len(sent)),
        queues={"webhook": peak_unanswered(sent), **run.queues},
        events=run.events,
        poll_cycle_ms=Quantiles.of([cycle * 1000 for cycle in run.poll_cycles]),
        strangers=run.strangers,
        public_events=run.public_events,
        nats_lag_ms=Quantiles.of([lag * 1000 for lag in run.nats_lag]),
        webhook_lag_ms=Quantiles.of([lag * 1000 for lag in run.webhook_lag]),
        webhook_unverified=run.webhook_unverified,
    )
