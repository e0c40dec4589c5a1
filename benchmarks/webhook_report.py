"""Tables and the document of the webhook benchmark (``docs/BENCHMARKS-WEBHOOK.md``)."""

from __future__ import annotations

import math
import os
import platform
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final, Protocol

import asyncpg

from benchmarks.machine import cpu_model, filesystem_of, memory_gib, nats_version
from benchmarks.webhook_figures import (
    ACK_WINDOW,
    DRAIN_LIMIT,
    IDLE_SECONDS,
    LATE_AFTER,
    MIN_STEP_SECONDS,
    PEAK_WINDOW,
    TARGET_CPU_MS,
    TARGET_LAG_P99_MS,
    TARGET_P99_MS,
    TARGET_RATE,
    TARGET_SECONDS,
    TARGET_WEBHOOK_P99_MS,
    Quantiles,
    StepResult,
)
from benchmarks.webhook_profile import KINDS, Profile
from benchmarks.webhook_system import FAKE_CLOUD, HARNESS, ROLES, CpuUse, Runtime
from benchmarks.webhook_traffic import CLOUD_POLL_PAUSE, CONSUMERS

LOG_RECORD: Final = re.compile(r"^.*\b(WARNING|ERROR|CRITICAL)\b.*$", re.MULTILINE)
NUMBERS: Final = re.compile(r"\d+")
PROFILE_NOTE: Final = "a few seconds, sampled 100 times a second"


@dataclass
class RunInfo:
    date: str
    cpus: int
    cpu_model: str
    memory_gib: float
    kernel: str
    python: str
    postgres: str
    postgres_settings: dict[str, str]
    nats: str
    filesystem: str
    connections: int
    ready_seconds: float
    idle: CpuUse | None = None
    dead_letters: dict[str, int] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    unanswered_at_end: int = 0
    profiles: list[Profile] = field(default_factory=list)
    profile_rate: float | None = None
    profiling: str = "off"
    stop_seconds: float = float("nan")
    runtime_log: str = field(default="", repr=False)
    simulator_log: str = field(default="", repr=False)
    """The fake Cloud API's log."""
    telemetry: bool = True
    replicas: int = 1
    results: list[StepResult] = field(default_factory=list)
    cloud_stats: dict[str, int] = field(default_factory=dict)
    integrator_note: str | None = None
    """Why the integrator figures are missing, if they are."""


async def collect_run_info(runtime: Runtime, connections: int, ready_seconds: float) -> RunInfo:
    connection = await asyncpg.connect(runtime.dsn)
    try:
        version = str(await connection.fetchval("SHOW server_version"))
        settings = {
            name: str(await connection.fetchval(f"SHOW {name}"))
            for name in ("fsync", "synchronous_commit", "shared_buffers")
        }
    finally:
        await connection.close()
    return RunInfo(
        date=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        cpus=len(os.sched_getaffinity(0)),
        cpu_model=cpu_model(),
        memory_gib=memory_gib(),
        kernel=platform.release(),
        python=platform.python_version(),
        postgres=version,
        postgres_settings=settings,
        nats=nats_version(),
        filesystem=filesystem_of(runtime.data_dir),
        connections=connections,
        ready_seconds=ready_seconds,
    )


# -- formatting --------------------------------------------------------------------------


def _n(value: float, digits: int = 0) -> str:
    if math.isnan(value):
        return "-"
    return f"{value:,.{digits}f}"


def _ms(value: float) -> str:
    if math.isnan(value):
        return "-"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.1f}"


def _q(quantiles: Quantiles, *, with_max: bool = False) -> str:
    parts = [quantiles.p50, quantiles.p90, quantiles.p99]
    if with_max:
        parts.append(quantiles.max)
    return " / ".join(_ms(part) for part in parts)


def _rate(result: StepResult) -> str:
    label = f"{_n(result.offered_rate)}"
    return label if result.kind == "ladder" else f"{label} ({result.kind})"


def _statuses(result: StepResult) -> str:
    items = sorted(result.statuses.items())
    return ", ".join(f"{status}: {count:,}" for status, count in items) or "-"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def steps_table(results: Sequence[StepResult]) -> str:
    header = [
        "Offered/s",
        "Sent",
        "Sending s",
        "Webhooks 200/s",
        "HTTP statuses",
        "Webhook p50 / p90 / p99 ms",
        f"Ticket within {ACK_WINDOW:.0f} s",
        "No ticket in time",
        "of which late",
        "Doubled",
        "Ticket p50 / p90 / p99 / max ms",
        f"Tickets/s: step / best {PEAK_WINDOW:.0f} s",
        "p99 terms met",
    ]
    rows = [
        [
            _rate(r),
            _n(r.sent) + (f" ({_n(r.withdrawn)} withdrawn)" if r.withdrawn else ""),
            _n(r.send_seconds, 1) + (" (cut)" if r.cut_reason else ""),
            _n(r.webhook_rate),
            _statuses(r),
            _q(r.webhook_ms),
            _n(r.acknowledged),
            _n(r.missing),
            _n(r.late),
            _n(r.duplicates),
            _q(r.ticket_ms, with_max=True),
            f"{_n(r.ticket_rate)} / {_n(r.peak_ticket_rate)}",
            "yes" if r.meets_p99 else "no",
        ]
        for r in results
    ]
    return _table(header, rows)


def stages_table(results: Sequence[StepResult]) -> str:
    header = ["Stage: p50 / p99 ms", *(f"{_rate(r)}/s" for r in results)]
    names = list(results[0].stages) if results else []
    rows = [
        [name, *(f"{_ms(r.stages[name].p50)} / {_ms(r.stages[name].p99)}" for r in results)]
        for name in names
    ]
    for label, attribute in (
        ("webhook POST -> NotificationSent recorded", "notified_ms"),
        ("webhook POST -> acknowledgement at the fake Cloud API (the ticket latency)", "seen_ms"),
    ):
        quantiles = [getattr(r, attribute) for r in results]
        rows.append([label, *(f"{_ms(q.p50)} / {_ms(q.p99)}" for q in quantiles)])
    return _table(header, rows)


def _cpu_row(label: str, use: CpuUse) -> list[str]:
    return [
        label,
        *(f"{use.cores.get(role, 0.0):.2f}" for role in ROLES),
        f"{use.ours:.2f}",
        f"{use.rest:.2f}",
        f"{use.steal:.2f}",
    ]


def cpu_table(results: Sequence[StepResult], idle: CpuUse | None) -> str:
    header = ["Period", *ROLES, "all ours", "rest", "stolen"]
    rows = [_cpu_row("idle (only the benchmark's polling)", idle)] if idle else []
    for r in results:
        rows.append(_cpu_row(f"{_rate(r)}/s, sending", r.cpu_load))
        rows.append(_cpu_row(f"{_rate(r)}/s, sending + draining", r.cpu_step))
    return _table(header, rows)


def cost_table(results: Sequence[StepResult]) -> str:
    header = ["Offered/s", *ROLES, "adminduk", "all"]
    rows = []
    for r in results:
        system = sum(v for role, v in r.cpu_ms.items() if role not in HARNESS)
        rows.append(
            [
                _rate(r),
                *(f"{r.cpu_ms.get(role, 0.0):.1f}" for role in ROLES),
                f"{system:.1f}",
                f"{sum(r.cpu_ms.values()):.1f}",
            ]
        )
    return _table(header, rows)


def queues_table(results: Sequence[StepResult]) -> str:
    header = [
        "Offered/s",
        "Peak backlog: webhooks due, not answered",
        "not yet relayed (events)",
        *(f"{name} (messages)" for name in CONSUMERS),
        "Events stored / message",
        "Status webhooks stored",
        "Sender lag p99 ms",
        "Outbox read cycle p50 / p99 ms",
    ]
    rows = []
    for r in results:
        events = sum(r.events.values())
        rows.append(
            [
                _rate(r),
                _n(r.queues.get("webhook", 0)),
                _n(r.queues.get("relay", 0)),
                *(_n(r.queues.get(name, 0)) for name in CONSUMERS),
                _n(events / r.sent, 1) if r.sent else "-",
                _n(r.status_webhooks),
                _ms(r.sender_lag_ms.p99),
                f"{_ms(r.poll_cycle_ms.p50)} / {_ms(r.poll_cycle_ms.p99)}",
            ]
        )
    return _table(header, rows)


def profile_table(profiles: Sequence[Profile]) -> str:
    header = ["Share of busy samples", *(p.role for p in profiles)]
    rows = [["busy (not waiting in `select`)", *(f"{p.busy:.0%}" for p in profiles)]]
    rows += [
        [kind.replace("  of it, ", "... of it: "), *(f"{p.kinds[kind]:.0%}" for p in profiles)]
        for kind, _ in KINDS
    ]
    return _table(header, rows)


def profile_tops(profiles: Sequence[Profile]) -> str:
    lines = []
    for profile in profiles:
        tops = "; ".join(f"`{function}` {share:.0%}" for function, share in profile.top)
        lines.append(f"- {profile.role}: {tops or '-'}")
    return "\n".join(lines)


def integrator_table(results: Sequence[StepResult]) -> str:
    header = [
        "Offered/s",
        "Public events stored",
        "on NATS",
        "commit -> NATS p50 / p90 / p99 ms",
        "signed webhooks (verified)",
        "commit -> webhook p50 / p90 / p99 ms",
        "bad signatures",
    ]
    rows = [
        [
            _rate(r),
            _n(r.public_events),
            _n(r.nats_lag_ms.count),
            _q(r.nats_lag_ms),
            _n(r.webhook_lag_ms.count),
            _q(r.webhook_lag_ms),
            _n(r.webhook_unverified),
        ]
        for r in results
    ]
    return _table(header, rows)


def phase_name(info: RunInfo) -> str:
    words = "telemetry on (shipped default)" if info.telemetry else "telemetry off"
    return words + (f", {info.replicas} replicas" if info.replicas > 1 else "")


def render_tables(info: RunInfo) -> str:
    results = info.results
    name = phase_name(info)
    sections = [
        f"### Rate steps ({name})\n\n" + steps_table(results),
        f"### Where the time goes ({name})\n\n" + stages_table(results),
        f"### Integrators: commit -> arrival ({name})\n\n"
        + integrator_table(results)
        + (f"\n\nNot measured: {info.integrator_note}" if info.integrator_note else ""),
        f"### CPU: cores busy ({name})\n\n" + cpu_table(results, info.idle),
        f"### CPU: milliseconds per message above idle ({name})\n\n" + cost_table(results),
        f"### Queues and load ({name})\n\n" + queues_table(results),
    ]
    if info.profiles:
        rate = info.profile_rate or float("nan")
        sections.append(
            f"### Where each process spends its CPU ({name}; py-spy, {_n(rate)} messages/s for "
            f"{PROFILE_NOTE})\n\n"
            + profile_table(info.profiles)
            + "\n\nThe project's functions with the most busy samples (inclusive):\n\n"
            + profile_tops(info.profiles)
        )
    return "\n\n".join(sections)


# -- the processes' own complaints -------------------------------------------------------


def log_summary(text: str, limit: int = 8) -> list[str]:
    """Distinct warning and error lines, digits folded, most frequent first."""
    counts: Counter[str] = Counter()
    for match in LOG_RECORD.finditer(text):
        counts[NUMBERS.sub("N", match[0].strip())[:240]] += 1
    return [f"{count:,} x `{line}`" for line, count in counts.most_common(limit)]


# -- words -------------------------------------------------------------------------------

QUEUE_NAMES: Final = {
    "webhook": "intake's webhook (due webhooks waiting for a connection or an answer)",
    "relay": "the relay",
    "intake-messages": "intake's consumer",
    "notify-replies": "notify's consumer",
    "intake-request-status": "the status projection",
}


def _saturated(results: Sequence[StepResult]) -> list[StepResult]:
    return [r for r in results if not r.kept_up]


def capacity(results: Sequence[StepResult]) -> float:
    """Most tickets per second in any window of a step that fell behind (so that the
    offered rate did not bound it); NaN if every step kept up."""
    rates = [r.peak_ticket_rate for r in _saturated(results)]
    return max(rates) if rates else float("nan")


def sustained(results: Sequence[StepResult]) -> StepResult | None:
    """The highest-rate step that met the p99 terms, else the highest that kept up."""
    for good in ([r for r in results if r.meets_p99], [r for r in results if r.kept_up]):
        if good:
            return max(good, key=lambda r: r.offered_rate)
    return None


def _headline(info: RunInfo, results: Sequence[StepResult]) -> str:
    behind = _saturated(results)
    best = sustained(results)
    words = f"**Headline.** On this {info.cpus}-core machine with everything on it, "
    if best is not None:
        words += (
            f"adminduk kept up with **{_n(best.offered_rate)} WhatsApp messages per second**, "
            f"{best.offered_rate / TARGET_RATE:.1%} of the {_n(TARGET_RATE)}/s target: every "
            "webhook answered 200, every message acknowledged once, the ticket "
            f"{_ms(best.ticket_ms.p50)} ms (p50), {_ms(best.ticket_ms.p90)} ms (p90) and "
            f"**{_ms(best.ticket_ms.p99)} ms (p99)** after the webhook POST, the slowest after "
            f"{_ms(best.ticket_ms.max)} ms"
            + (
                ", within the target's second. "
                if best.ticket_ms.p99 <= TARGET_P99_MS
                else f", beyond the target's {TARGET_P99_MS / 1000:.0f} s p99. "
            )
        )
    else:
        words += "adminduk kept up with none of the rates tried. "
    slower = [
        r
        for r in results
        if best is not None and r.kept_up and not r.meets_p99 and r.offered_rate > best.offered_rate
    ]
    if slower:
        words += (
            "Above it, it still answered every message but more slowly: "
            + "; ".join(f"at {_n(r.offered_rate)}/s p99 {_ms(r.ticket_ms.p99)} ms" for r in slower)
            + ". "
        )
    if behind:
        first = min(behind, key=lambda r: r.offered_rate)
        tried = (
            f"It fell behind at {_n(first.offered_rate)} messages/s and above, handing out at "
            f"most {_n(capacity(results))} tickets/s in any {PEAK_WINDOW:.0f} seconds while "
            "overloaded (a burst figure: the status webhooks and the rest of each message's "
            "work come after it)."
        )
        words += tried
    return words


def _bottleneck(info: RunInfo, r: StepResult) -> str:
    use = r.cpu_load
    machine = use.ours + use.rest
    system = {role: cores for role, cores in use.cores.items() if role not in HARNESS}
    busiest = sorted(system, key=lambda role: system[role], reverse=True)
    top = ", ".join(f"{role} {system[role]:.2f}" for role in busiest[:4])
    words = (
        f"**What saturates at {_rate(r)}/s.** While sending, the machine was "
        f"{machine:.2f} of {info.cpus} cores busy plus {use.steal:.2f} stolen by the "
        f"hypervisor: {use.system:.2f} in adminduk's processes (busiest: {top}), "
        f"{use.cores.get(FAKE_CLOUD, 0.0):.2f} in the fake Cloud API, "
        f"{use.cores.get('bench', 0.0):.2f} in the load generator and {use.rest:.2f} "
        "elsewhere (kernel, other load). "
    )
    if machine + use.steal >= 0.85 * info.cpus:
        single = [role for role in busiest if system[role] >= 0.9]
        words += "The CPU is what runs out: the cores are full" + (
            f", and {', '.join(single)} (one Python event loop each) is at a full core. "
            if single
            else ", spread over several processes, none of which alone is at a full core. "
        )
    else:
        words += (
            "The cores were not full, so something other than CPU (waits, locks, batching) "
            "limited it. "
        )
    queues = {name: value for name, value in r.queues.items() if value > 0}
    if queues:
        # The relay's backlog counts events; compare it in messages' worth.
        per_message = sum(r.events.values()) / r.sent if r.sent else 1.0
        worst = max(
            queues,
            key=lambda name: queues[name] / (per_message if name == "relay" else 1.0),
        )
        listed = ", ".join(
            f"{name} {_n(value)}" + (" events" if name == "relay" else "")
            for name, value in queues.items()
        )
        words += (
            f"Messages waited mostly in front of {QUEUE_NAMES.get(worst, worst)} (peak "
            f"backlogs: {listed}): intake answered webhooks at {_n(r.webhook_rate)}/s against "
            f"{_n(r.offered_rate)}/s offered, webhook p50 {_ms(r.webhook_ms.p50)} ms, and "
            f"tickets came at {_n(r.ticket_rate)}/s. Every process takes its share of the "
            "two cores, so the first stage, the webhook, is where the queue forms."
            if worst == "webhook"
            else f"Messages waited mostly in front of {QUEUE_NAMES.get(worst, worst)} (peak "
            f"backlogs: {listed}); intake answered webhooks at {_n(r.webhook_rate)}/s, "
            f"tickets came at {_n(r.ticket_rate)}/s."
        )
    return words


def _costs(results: Sequence[StepResult], info: RunInfo) -> str | None:
    measured = [r for r in results if r.cpu_ms]
    if not measured:
        return None
    # A step whose status webhooks all came in carries the whole cost of its messages.
    complete = [r for r in measured if r.status_webhooks >= 2.9 * (r.acknowledged + r.late) > 0]
    r = max(complete or measured, key=lambda item: item.sent)
    system = sum(v for role, v in r.cpu_ms.items() if role not in HARNESS)
    everything = sum(r.cpu_ms.values())
    if system <= 0 or everything <= 0:
        return None
    parts = sorted(
        ((role, value) for role, value in r.cpu_ms.items() if value >= 0.05),
        key=lambda item: item[1],
        reverse=True,
    )
    listed = ", ".join(f"{role} {value:.1f}" for role, value in parts)
    idle = info.idle.ours if info.idle is not None else float("nan")
    light = min(measured, key=lambda item: item.offered_rate)
    light_system = sum(v for role, v in light.cpu_ms.items() if role not in HARNESS)
    return (
        f"**What one message costs.** Above the idle baseline ({idle:.2f} cores with nothing "
        "to do: consumers' pull loops, polling loops, the benchmark's own polling), one "
        f"citizen's message cost {everything:.1f} CPU ms at {_rate(r)}/s ({listed}): "
        f"{system:.1f} ms in adminduk's own processes, the rest in the fake Cloud API and the "
        "load generator"
        + (
            f" (at {_rate(light)}/s, with less batching, adminduk's share was "
            f"{light_system:.1f} ms)"
            if light is not r
            else ""
        )
        + f". {info.cpus} cores hold about "
        f"{info.cpus * 1000 / everything:,.0f} such messages per second with everything on "
        f"the machine, and {info.cpus * 1000 / system:,.0f} if the fake Cloud API and the "
        f"load generator ran elsewhere. The {_n(TARGET_RATE)}/s target leaves "
        f"{info.cpus * 1000 / TARGET_RATE:.1f} CPU ms per message on this machine for every "
        f"stage together, {system * TARGET_RATE / (info.cpus * 1000):.0f} times less than "
        f"adminduk spends now; each message is {1 + r.status_webhooks / max(r.sent, 1):.0f} "
        f"webhooks (its own and the statuses of its reply), "
        f"{sum(r.events.values()) / max(r.sent, 1):.0f} appended events each relayed through "
        "JetStream, two consumer hops, a projection and one Cloud API call."
    )


def _stages(results: Sequence[StepResult]) -> str:
    kept = [r for r in results if r.kept_up] or list(results)
    r = min(kept, key=lambda item: item.offered_rate)
    parts = "; ".join(f"{name.split(' (')[0]} {_ms(q.p50)} ms" for name, q in r.stages.items())
    return (
        f"**Where the time goes** (medians at {_rate(r)}/s): {parts}. Each consumer hop pulls "
        "in batches and waits up to 50 ms (`batch_wait`) to fill one, and a ticket passes two "
        "(intake's, then notify's), each behind the relay, so at light load most of a "
        "ticket's time is those waits. Under overload the time is queueing (backlog table). "
        "A ticket's arrival is the fake Cloud API's own receipt time of the send, so the "
        f"outbox reads (every {CLOUD_POLL_PAUSE * 1000:.0f} ms; cycle p50 "
        f"{_ms(r.poll_cycle_ms.p50)} ms, p99 {_ms(r.poll_cycle_ms.p99)} ms) add nothing to "
        "it; `NotificationSent` is recorded after the Cloud API's answer reached notify."
    )


def _statuses_share(profiles: Sequence[Profile]) -> float | None:
    """Share of the fake Cloud API's busy samples spent sending status webhooks."""
    for profile in profiles:
        if profile.role == FAKE_CLOUD:
            shares = [share for name, share in profile.top if "_post_status" in name]
            return shares[0] if shares else None
    return None


def _statuses_paragraph(results: Sequence[StepResult], profiles: Sequence[Profile]) -> str | None:
    statuses = sum(r.status_webhooks for r in results)
    acks = sum(r.acknowledged + r.late for r in results)
    if not acks:
        return None
    per = statuses / acks
    return (
        "**Status webhooks add load.** The fake Cloud API, like Meta, reports sent, delivered and "
        f"read for every reply, 1 s apart, as signed webhooks to intake: {_n(statuses)} were "
        f"stored for {_n(acks)} acknowledgements ({per:.1f} per ticket). So intake's webhook "
        f"served about {1 + per:.0f} requests per citizen message, each one an event appended "
        "and relayed (nothing consumes `DeliveryStatusReceived` yet): at N messages/s the "
        f"webhook takes about {1 + per:.0f}N requests/s."
        + (
            f" Sending them took {share:.0%} of the fake Cloud API's busy samples (profile)."
            if (share := _statuses_share(profiles)) is not None
            else ""
        )
    )


def _profile_paragraph(info: RunInfo) -> str | None:
    if not info.profiles:
        return None
    http = [p for p in info.profiles if p.kinds.get(KINDS[0][0], 0.0) >= 0.2]
    words = (
        f"**Profiles.** Sampled with py-spy at {_n(info.profile_rate or float('nan'))} messages/s. "
    )
    for profile in http:
        sniffio = profile.kinds[KINDS[2][0]]
        words += (
            f"{profile.role} spends {profile.kinds[KINDS[0][0]]:.0%} of its busy samples in "
            f"the HTTP client, {profile.kinds[KINDS[1][0]]:.0%} in httpcore's pool bookkeeping"
            + (f" and {sniffio:.0%} in failed `import sniffio` attempts" if sniffio >= 0.01 else "")
            + ". "
        )
    if any(p.kinds.get(KINDS[2][0], 0.0) >= 0.02 for p in info.profiles):
        words += (
            "httpcore 1.0 calls `current_async_library()`, which tries `import sniffio`, for "
            "every lock, event and semaphore it sets up; anyio 4.16 no longer installs "
            "sniffio, so each try searches `sys.path` again (a failed import is not cached, "
            "about 0.13 ms each here). "
        )
    others = [p for p in info.profiles if p not in http and p.role != "bench"]
    for profile in others:
        kinds = sorted(
            ((kind, share) for kind, share in profile.kinds.items() if share >= 0.1),
            key=lambda item: item[1],
            reverse=True,
        )
        if kinds:
            listed = ", ".join(f"{kind} {share:.0%}" for kind, share in kinds[:4])
            words += f"{profile.role}: {listed}. "
    return words


def _integrity(info: RunInfo, results: Sequence[StepResult]) -> str:
    sent = sum(r.sent for r in results)
    withdrawn = sum(r.withdrawn for r in results)
    non_200 = sum(r.non_200 for r in results)
    not_stored = sum(r.not_stored for r in results)
    missing = sum(r.missing for r in results)
    late = sum(r.late for r in results)
    doubled = sum(r.duplicates for r in results)
    wrong = sum(r.wrong_tickets for r in results)
    matched = sum(r.matched_tickets for r in results)
    other = sum(r.other_replies for r in results)
    unverified = sum(r.unverified for r in results)
    strangers = sum(r.strangers for r in results)
    dead = sum(info.dead_letters.values())
    words = (
        f"**Lost or doubled.** {_n(sent)} messages were sent ({_n(withdrawn)} more were "
        "withdrawn unsent when their step was cut). "
        f"{_n(non_200)} webhooks were not answered 200 and {_n(not_stored)} answered 200 "
        "without a stored `WhatsAppMessageReceived`; "
        f"{_n(missing)} messages had no ticket within {ACK_WINDOW:.0f} s of their step's last "
        f"send ({_n(late)} got it later, {_n(info.unanswered_at_end)} had none when the run "
        f'stopped); {_n(doubled)} got more than one acknowledgement ("doubled": two or more '
        'messages with "Nomor tiket:" accepted by the fake Cloud API for the citizen\'s '
        f"phone, each its own wamid, so each would reach the citizen), {_n(matched)} an "
        "acknowledgement with exactly the ticket of the stored `RequestReceived` and "
        f"{_n(wrong)} one with another, {_n(other)} a reply other than an acknowledgement, "
        f"{_n(unverified)} a `NotificationSent` without the message in the fake Cloud API's "
        f"outbox; {_n(strangers)} messages went to phone numbers the benchmark never used; "
        f"dead letters: {_n(dead)}. "
    )
    if not_stored == 0 and doubled == 0 and wrong == 0 and info.unanswered_at_end == 0:
        words += "Overload turned into waiting, not into loss or duplicates."
    return words


def _caveats(info: RunInfo, results: Sequence[StepResult]) -> str:
    bench = max(r.cpu_load.cores.get("bench", 0.0) for r in results)
    simulator = max(r.cpu_load.cores.get(FAKE_CLOUD, 0.0) for r in results)
    noisy = [r for r in results if r.cpu_load.rest + r.cpu_load.steal > 0.3]
    lag = max(r.sender_lag_ms.p99 for r in results)
    words = (
        f"**How far to trust it.** The load generator (up to {bench:.2f} cores) and the fake "
        f"Cloud API (up to {simulator:.2f}) share the {info.cpus} cores with adminduk, as the "
        "question demands, so adminduk alone would get further; the per-message costs say "
        "how much. The sender's own lag (a POST starting after its scheduled instant) "
        f"reached p99 {_ms(lag)} ms; latencies count from the scheduled instant, so a late "
        "sender or a wait for a connection does not hide queueing. "
    )
    if noisy:
        words += (
            "Other load or the hypervisor took time during "
            + ", ".join(
                f"{_rate(r)}/s ({r.cpu_load.rest + r.cpu_load.steal:.2f} cores)" for r in noisy
            )
            + ": those figures understate the machine."
        )
    return words


@dataclass(frozen=True)
class TargetRow:
    target: str
    measured: str
    met: bool


def target_step(results: Sequence[StepResult]) -> StepResult | None:
    """The step the rate-bound targets are judged on: the sustained step, else the
    highest-rate step."""
    chosen = [r for r in results if r.kind == "sustained"]
    if chosen:
        return chosen[-1]
    return max(results, key=lambda r: r.offered_rate) if results else None


def reference_step(results: Sequence[StepResult]) -> StepResult | None:
    """The step whose CPU figures stand for the configuration: the highest-rate step that
    kept up (its statuses all in), else the step that sent the most."""
    kept = [r for r in results if r.kept_up and r.cpu_ms]
    if kept:
        return max(kept, key=lambda r: (r.offered_rate, r.sent))
    measured = [r for r in results if r.cpu_ms]
    return max(measured, key=lambda r: r.sent) if measured else None


def best_p99_rate(results: Sequence[StepResult]) -> float:
    """The highest offered rate of a step that met the p99 terms (NaN: none did)."""
    rates = [r.offered_rate for r in results if r.meets_p99]
    return max(rates) if rates else float("nan")


def target_rows(info: RunInfo) -> list[TargetRow]:
    """The issue's targets, each judged from the figures of the tables."""
    results = info.results
    r = target_step(results)
    if r is None:
        return []
    at = f"{_rate(r)}/s for {r.send_seconds:,.0f} s" + (" (cut)" if r.cut_reason else "")
    full = r.kept_up and r.offered_rate >= TARGET_RATE
    full = full and r.send_seconds >= TARGET_SECONDS * 0.98
    lost = sum(x.lost for x in results)
    doubled = sum(x.duplicates for x in results)
    sent = sum(x.sent for x in results)
    best = best_p99_rate(results)
    # A latency within its limit at a step that did not sustain the target rate does not
    # meet the target; the measured cell says so.
    short = "" if full else " (not at the sustained target rate)"
    rows = [
        TargetRow(
            f">= {_n(TARGET_RATE)} messages/s sustained for {TARGET_SECONDS:.0f} s",
            f"{at}: {_n(r.sent)} sent, {_n(r.ticket_rate)} tickets/s, "
            + ("kept up" if r.kept_up else "fell behind"),
            full,
        ),
        TargetRow(
            f"acknowledgement p99 <= {TARGET_P99_MS / 1000:.0f} s",
            f"{_ms(r.ticket_ms.p99)} ms at {_rate(r)}/s" + short,
            full and r.ticket_ms.p99 <= TARGET_P99_MS,
        ),
        TargetRow(
            f"webhook p99 <= {TARGET_WEBHOOK_P99_MS:.0f} ms",
            f"{_ms(r.webhook_ms.p99)} ms at {_rate(r)}/s" + short,
            full and r.webhook_ms.p99 <= TARGET_WEBHOOK_P99_MS,
        ),
        TargetRow(
            f"0 lost (every webhook 200, every ticket within {ACK_WINDOW:.0f} s of its step's end)",
            f"{_n(lost)} of {_n(sent)} in all steps",
            lost == 0 and sent > 0,
        ),
        TargetRow("0 doubled", f"{_n(doubled)} of {_n(sent)} in all steps", doubled == 0),
        TargetRow(
            f"<= {TARGET_CPU_MS:.0f} CPU ms per message in adminduk's processes",
            f"{r.adminduk_cpu_ms:.1f} ms at {_rate(r)}/s" + short,
            full and r.adminduk_cpu_ms <= TARGET_CPU_MS,
        ),
        TargetRow(
            f"commit -> `adminduk.public.*` p99 <= {TARGET_LAG_P99_MS / 1000:.0f} s",
            f"{_ms(r.nats_lag_ms.p99)} ms ({_n(r.nats_lag_ms.count)} of "
            f"{_n(r.public_events)} public events) at {_rate(r)}/s" + short,
            full and r.nats_lag_ms.count > 0 and r.nats_lag_ms.p99 <= TARGET_LAG_P99_MS,
        ),
        TargetRow(
            f"commit -> signed integrator webhook p99 <= {TARGET_LAG_P99_MS / 1000:.0f} s",
            f"{_ms(r.webhook_lag_ms.p99)} ms ({_n(r.webhook_lag_ms.count)} of "
            f"{_n(r.public_events)}) at {_rate(r)}/s" + short,
            full and r.webhook_lag_ms.count > 0 and r.webhook_lag_ms.p99 <= TARGET_LAG_P99_MS,
        ),
        TargetRow(
            "highest rate meeting the p99 terms (ticket, webhook, none lost or doubled)",
            f"{_n(best)}/s" if not math.isnan(best) else "none of the rates tried",
            not math.isnan(best) and best >= TARGET_RATE,
        ),
    ]
    return rows


def targets_table(phases: Sequence[RunInfo]) -> str:
    header = ["Target", *(f"{phase_name(p)}" for p in phases)]
    tables = [target_rows(p) for p in phases]
    if not tables or not tables[0]:
        return "No step ran."
    rows = []
    for number, row in enumerate(tables[0]):
        cells = [row.target]
        for table in tables:
            if number < len(table):
                item = table[number]
                cells.append(f"{'**met**' if item.met else 'not met'}: {item.measured}")
            else:
                cells.append("-")
        rows.append(cells)
    return _table(header, rows)


def _verdict(info: RunInfo) -> str:
    """One sentence from the same rows as the targets table."""
    rows = target_rows(info)
    if not rows:
        return "**Verdict.** No step ran."
    met = [row.target for row in rows if row.met]
    failed = [row.target for row in rows if not row.met]
    if not failed:
        return f"**Verdict ({phase_name(info)}).** Every target is met on this machine."
    return (
        f"**Verdict ({phase_name(info)}).** Not met: "
        + "; ".join(failed)
        + "."
        + (" Met: " + "; ".join(met) + "." if met else "")
    )


def interpret(info: RunInfo) -> list[str]:
    results = info.results
    if not results:
        return ["No step ran."]
    paragraphs = [_headline(info, results)]
    behind = _saturated(results)
    if behind:
        paragraphs.append(_bottleneck(info, min(behind, key=lambda r: r.offered_rate)))
    for paragraph in (
        _costs(results, info),
        _profile_paragraph(info),
        _stages(results),
        _statuses_paragraph(results, info.profiles),
        _integrity(info, results),
        _caveats(info, results),
        _verdict(info),
    ):
        if paragraph:
            paragraphs.append(paragraph)
    return paragraphs


# -- telemetry and hardware ---------------------------------------------------------------

PYTHON_ROLES: Final = (
    "supervisor",
    "relay",
    "intake",
    "notify",
    "verification",
    "issuance",
    "integrations",
)
"""One event loop each: a process of these uses one core at most."""
REPLICATED: Final = ("intake", "notify")
"""The processes ``--replicas`` multiplies."""
BACKING: Final = ("postgres", "nats", "relay", "supervisor")
"""What stays on the first machine when the services move to a second one."""


def telemetry_table(phases: Sequence[RunInfo]) -> str | None:
    steps = [(phase, reference_step(phase.results)) for phase in phases]
    chosen = [(phase, r) for phase, r in steps if r is not None]
    if len(chosen) < 2:
        return None
    header = ["CPU ms per message", *(f"{phase_name(p)}, {_rate(r)}/s" for p, r in chosen)]
    roles = [role for role in ROLES if role not in HARNESS]
    rows = [[role, *(f"{r.cpu_ms.get(role, 0.0):.1f}" for _, r in chosen)] for role in roles]
    rows.append(["**adminduk**", *(f"**{r.adminduk_cpu_ms:.1f}**" for _, r in chosen)])
    rows += [[role, *(f"{r.cpu_ms.get(role, 0.0):.1f}" for _, r in chosen)] for role in HARNESS]
    return _table(header, rows)


@dataclass(frozen=True)
class HardwareRow:
    setup: str
    rate: float
    limit: str


def ceilings(costs: dict[str, float], replicas: int) -> dict[str, float]:
    """Messages/s at which each single-event-loop process is at a full core."""
    limits = {}
    for role in PYTHON_ROLES:
        cost = costs.get(role, 0.0)
        if cost > 0.05:
            limits[role] = (replicas if role in REPLICATED else 1) * 1000 / cost
    return limits


def hardware_rows(info: RunInfo) -> tuple[StepResult, list[HardwareRow]] | None:
    """What more cores or a second machine buy, from one step's CPU ms per message by
    process: a machine's cores divided by what runs on it, and no Python process above one
    core (one event loop each; intake and notify times their replicas)."""
    r = reference_step(info.results)
    if r is None or r.adminduk_cpu_ms <= 0:
        return None
    costs = {role: value for role, value in r.cpu_ms.items() if role not in HARNESS}
    total = sum(costs.values())
    cores = info.cpus

    def limited(setup: str, by_cores: float, cores_label: str, replicas: int) -> HardwareRow:
        single = ceilings(costs, replicas)
        role = min(single, key=lambda name: single[name]) if single else None
        if role is not None and single[role] < by_cores:
            return HardwareRow(setup, single[role], f"{role} at a full core (one event loop)")
        return HardwareRow(setup, by_cores, cores_label)

    backing = sum(costs.get(role, 0.0) for role in BACKING)
    services = total - backing
    second = min(
        cores * 1000 / backing if backing > 0 else math.inf,
        cores * 1000 / services if services > 0 else math.inf,
    )
    second_label = (
        "the first machine's cores (Postgres, NATS, relay)"
        if backing >= services
        else "the second machine's cores (the services)"
    )
    rows = [
        limited(
            f"this machine ({cores} cores), the fake Cloud API and load generator elsewhere",
            cores * 1000 / total,
            "all cores busy",
            info.replicas,
        ),
        limited(
            f"one more core ({cores + 1})",
            (cores + 1) * 1000 / total,
            "all cores busy",
            info.replicas,
        ),
        limited(
            f"one more core ({cores + 1}) and 2 replicas of intake and notify",
            (cores + 1) * 1000 / total,
            "all cores busy",
            max(2, info.replicas),
        ),
        limited(
            f"a second {cores}-core machine for intake, notify, verification, issuance, "
            "integrations (2 replicas of intake and notify)",
            second,
            second_label,
            max(2, info.replicas),
        ),
    ]
    return r, rows


def hardware_section(info: RunInfo) -> str:
    found = hardware_rows(info)
    if found is None:
        return "Not computed: no step measured CPU per message."
    r, rows = found
    costs = {role: value for role, value in r.cpu_ms.items() if role not in HARNESS}
    single = ceilings(costs, info.replicas)
    first = min(single, key=lambda name: single[name]) if single else "-"
    per_core = 1000 / r.adminduk_cpu_ms
    table = _table(
        ["Setup", "Messages/s (estimate)", "Limited by"],
        [[row.setup, _n(row.rate), row.limit] for row in rows],
    )
    listed = ", ".join(
        f"{role} {value:.1f}"
        for role, value in sorted(costs.items(), key=lambda item: item[1], reverse=True)
        if value >= 0.05
    )
    return (
        f"From the CPU ms per message measured at {_rate(r)}/s ({phase_name(info)}): "
        f"{r.adminduk_cpu_ms:.1f} ms in adminduk's processes ({listed}). Each core more "
        f"buys about {per_core:,.0f} messages/s as long as no single process is the limit; "
        "each Python process runs one event loop and so uses one core at most: at these "
        f"costs **{first} saturates first**, at about {_n(single.get(first, math.nan))} "
        "messages/s"
        + (f" (with {info.replicas} replicas)" if info.replicas > 1 else "")
        + ". Postgres and NATS use several cores. Estimates, linear in the measured costs: "
        "batching makes a message cheaper at higher rates, and contention dearer.\n\n" + table
    )


# -- the document ------------------------------------------------------------------------

METHOD: Final = """\
## How it was run

- **System under test**, started in a temporary folder: `adminduk run` (the supervisor
  with embedded PostgreSQL and NATS, and the processes relay, intake, verification,
  issuance, notify, integrations){replicas} with `WHATSAPP_API_BASE_URL` pointing at a
  separate fake Cloud API, `python -m benchmarks.fake_cloud` (a raw ASGI app on uvicorn
  with uvloop and httptools, orjson). It answers each send as Meta does (`messages[0].id`
  a new wamid) and, for every accepted message, POSTs the delivery statuses sent,
  delivered and read to `/webhook/whatsapp`, {status_delay:g} s apart, each signed
  (`X-Hub-Signature-256`) and in Meta's shape (`biz_opaque_callback_data` echoed,
  `conversation` and `pricing` on sent and delivered). It does not play Meta's 24-hour
  window: the citizens wrote first, so the window is open. (The simulator it replaces
  enforced the window against its own record of who wrote, and the benchmark's messages
  never passed through it: each text acknowledgement was accepted, then failed with 131047
  in a status webhook, and notify resent it as its template, so every citizen showed two
  acknowledgements in its outbox, of which Meta would have delivered one.) Free ports, a known
  `WHATSAPP_APP_SECRET`, `ADMINDUK_LOG_LEVEL=WARNING`, `ADMINDUK_NOTIFY_RATE=1000` (the
  business number's throughput on Meta's upgraded tier; the default 80/s of a new number
  would cap the acknowledgements by itself), and telemetry **{telemetry}**; the
  benchmark waits for the "adminduk is running" banner, and stops the runtime with SIGTERM
  and then the fake Cloud API at the end of each runtime's plan.
- **Load**, from the benchmark process with httpx (async, one client, at most
  {connections} connections): signed webhooks (`X-Hub-Signature-256`) to
  `/webhook/whatsapp`, open loop at a fixed offered rate, each message a distinct valid KTP
  request (the README's example with the serials of the NIK and the No. KK varied) from a
  distinct phone number, with its own WhatsApp message id. A message whose turn comes while
  all connections are busy waits for one. {idle:.0f} s idle and a small warm-up (left out of
  the figures) come first.
- **Plan per runtime**: the capacity search, ladder steps of {seconds:g} s ({rates}/s; when
  a step is cut before any kept up, steps at shares of the tickets/s it managed are added
  ("added"), and steps between the best kept-up rate and the lowest cut one ("search"));
  then the **sustained step** ("sustained", {sustain_rate:,.0f}/s for {sustain_seconds:g} s),
  on which the targets are judged; then, with py-spy and for the first runtime only, a short
  step at about the capacity sampling where each process spends its CPU. A step is cut after
  at least {min_step:.0f} s once more than one second's worth of messages is over
  {late:.0f} s without a ticket ("cut"); messages still waiting for a connection then are
  withdrawn unsent. The next step waits until every earlier message has its ticket (at most
  {drain:.0f} s after the last send) and until the status webhooks of the last replies are
  in.
- **Webhook latency**: scheduled send -> HTTP answer (so it includes waiting for a
  connection). **Ticket latency**, the headline: scheduled send -> the acknowledgement's
  arrival at the fake Cloud API (its own `time.time()` at receipt; same machine, same
  clock), read incrementally from `GET /bench/outbox?after=N` every {poll_ms:.0f} ms. Each
  acknowledgement is checked there: a message with "Nomor tiket:", its ticket the stored
  `RequestReceived`'s, one per citizen ("doubled" = two or more such messages accepted for
  one phone, each with its own wamid).
- **Integrators**: the benchmark subscribes to `adminduk.public.>` as user `integrator`
  (`ADMINDUK_INTEGRATOR_PASSWORD`) and registers, through the officer API
  (`ADMINDUK_BOOTSTRAP_TOKEN`), a webhook subscription for every public type pointed at the
  fake Cloud API process, which verifies each signature (Standard Webhooks) and records the
  arrival. Lag: the event's `recorded_at` (its commit) -> arrival, per public event.
- **Stages** from the event store (`recorded_at`, the append transaction's start):
  `WhatsAppMessageReceived` (the webhook's append), `RequestReceived` (intake's consumer),
  `NotificationSent` (notify, after the Cloud API answered). **Backlogs**: webhooks due but
  not answered, and, sampled every second, events not yet relayed (`max(position)` minus
  the relay's checkpoint) and messages not yet acknowledged by each JetStream consumer.
- **CPU** with psutil per process (PostgreSQL with all its backends; replicas summed by
  role); *rest* is the rest of the machine's busy time (kernel interrupt work, other load),
  *stolen* the hypervisor's. Per-message costs subtract the idle baseline over the step
  from its first send until the statuses of its last replies were in, divided by the
  messages sent. *adminduk* is every process but the load generator (`bench`) and the fake
  Cloud API (`fake-cloud`).
"""


class Plan(Protocol):
    """What the report says of the plan (``benchmarks.webhook.Options`` is one)."""

    @property
    def rates(self) -> tuple[float, ...]: ...
    @property
    def seconds(self) -> float: ...
    @property
    def sustain_rate(self) -> float: ...
    @property
    def sustain_seconds(self) -> float: ...
    @property
    def status_delay(self) -> float: ...


def render(phases: Sequence[RunInfo], plan: Plan) -> str:
    assert phases
    info = phases[0]
    lines = [
        "# Benchmark: WhatsApp messages per second, end to end",
        "",
        "Written by `.venv/bin/python -m benchmarks.webhook` "
        "(`benchmarks/webhook.py`) and regenerated on every run; change the generator, "
        "not this file.",
        "",
        "The question: on this machine with everything on it, how many WhatsApp messages per "
        "second does adminduk take, and how soon does each citizen get the acknowledgement "
        "(`Nomor tiket: ...`) after the webhook POST? The targets (issue 14), with the "
        f"status webhooks: >= {_n(TARGET_RATE)} messages/s sustained for "
        f"{TARGET_SECONDS:.0f} s, acknowledgement p99 <= {TARGET_P99_MS / 1000:.0f} s, "
        f"webhook p99 <= {TARGET_WEBHOOK_P99_MS:.0f} ms, 0 lost, 0 doubled; <= "
        f"{TARGET_CPU_MS:.0f} CPU ms per citizen message in adminduk's processes (Postgres "
        "and NATS included) at that rate with default telemetry; integrator lag (commit -> "
        "`adminduk.public.*`, commit -> signed webhook) p99 <= "
        f"{TARGET_LAG_P99_MS / 1000:.0f} s.",
        "",
        "## The targets",
        "",
        targets_table(phases),
        "",
    ]
    for phase in phases:
        lines += [_verdict(phase), ""]
    lines += [
        "## Machine",
        "",
        f"- Date: {info.date}",
        f"- CPUs (nproc): {info.cpus}; CPU model: {info.cpu_model}",
        f"- Memory: {info.memory_gib:.1f} GiB; Linux {info.kernel}; Python {info.python}",
        f"- PostgreSQL {info.postgres}, embedded by the runtime: "
        + ", ".join(f"`{k}={v}`" for k, v in info.postgres_settings.items()),
        f"- {info.nats} (embedded); data folder on {info.filesystem}",
    ]
    for phase in phases:
        lines.append(
            f"- {phase_name(phase)}: the runtime was ready {phase.ready_seconds:.1f} s after "
            f"`adminduk run` started and stopped {phase.stop_seconds:.1f} s after SIGTERM; "
            + (
                f"while idle {phase.idle.ours:.2f} cores in our processes, "
                f"{phase.idle.rest:.2f} busy elsewhere (other load on the machine), "
                f"{phase.idle.steal:.2f} stolen by the hypervisor"
                + (
                    "; **the machine was not quiet**"
                    if phase.idle.rest + phase.idle.steal > 0.3
                    else ""
                )
                if phase.idle is not None
                else "idle not measured"
            )
        )
    lines += [
        "",
        METHOD.format(
            replicas=(
                f", {info.replicas} replicas of intake and notify (`ADMINDUK_REPLICAS`)"
                if info.replicas > 1
                else ""
            ),
            status_delay=plan.status_delay,
            telemetry=" and ".join(
                "on as shipped (no `OTEL_*` set: the default span files)"
                if phase.telemetry
                else "off (`OTEL_TRACES_EXPORTER=none`, `OTEL_METRICS_EXPORTER=none`)"
                for phase in phases
            )
            + (", one runtime after the other" if len(phases) > 1 else ""),
            connections=info.connections,
            idle=IDLE_SECONDS,
            seconds=plan.seconds,
            rates=", ".join(_n(rate) for rate in plan.rates) or "-",
            sustain_rate=plan.sustain_rate,
            sustain_seconds=plan.sustain_seconds,
            min_step=MIN_STEP_SECONDS,
            late=LATE_AFTER,
            drain=DRAIN_LIMIT,
            poll_ms=CLOUD_POLL_PAUSE * 1000,
        ),
    ]
    comparison = telemetry_table(phases)
    if comparison is not None:
        lines += [
            "## Telemetry on and off: CPU ms per message above idle",
            "",
            "Each runtime's highest-rate step that kept up (else its largest step).",
            "",
            comparison,
            "",
        ]
    lines += ["## What more hardware buys", "", hardware_section(phases[0]), ""]
    for phase in phases:
        lines += [f"## Figures: {phase_name(phase)}", "", render_tables(phase), ""]
        if not phase.profiles and phase is phases[0]:
            lines += [
                "No CPU profiles: "
                + (
                    "`--no-profile` was given."
                    if phase.profiling == "off"
                    else "py-spy is not installed (`.venv/bin/pip install py-spy` adds them)."
                ),
                "",
            ]
        if phase.skipped:
            lines += ["Steps not run:", ""] + [f"- {line}" for line in phase.skipped] + [""]
        cut = [r for r in phase.results if r.cut_reason]
        if cut:
            lines += ["Steps cut short:", ""]
            lines += [f"- {_rate(r)}/s: {r.cut_reason}" for r in cut] + [""]
        stats = phase.cloud_stats
        if stats:
            lines += [
                "The fake Cloud API: "
                f"{_n(stats.get('sends', 0))} sends accepted, {_n(stats.get('refused', 0))} "
                f"refused; {_n(stats.get('statuses_posted', 0))} status webhooks answered 200, "
                f"{_n(stats.get('statuses_retried', 0))} retries, "
                f"{_n(stats.get('statuses_given_up', 0))} given up, "
                f"{_n(stats.get('pending', 0))} still due at the end; "
                f"{_n(stats.get('integrator_received', 0))} integrator webhooks received, "
                f"{_n(stats.get('integrator_bad_signature', 0))} with a bad signature.",
                "",
            ]
        lines += [f"### What the numbers say ({phase_name(phase)})", ""]
        for paragraph in interpret(phase):
            lines += [paragraph, ""]
        lines += [f"### Warnings and errors the processes logged ({phase_name(phase)})", ""]
        for name, text in (
            ("runtime", phase.runtime_log),
            ("fake Cloud API", phase.simulator_log),
        ):
            complaints = log_summary(text)
            lines.append(f"- {name}: " + ("none" if not complaints else ""))
            lines += [f"  - {line}" for line in complaints]
        dead = ", ".join(f"{name}: {count}" for name, count in phase.dead_letters.items())
        lines += [f"- dead letters at the end: {dead or 'none'}", ""]
    return "\n".join(lines)
