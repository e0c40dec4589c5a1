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
from typing import Final

import asyncpg

from benchmarks.machine import cpu_model, filesystem_of, memory_gib, nats_version
from benchmarks.webhook_figures import (
    ACK_WINDOW,
    DRAIN_LIMIT,
    IDLE_SECONDS,
    LATE_AFTER,
    MIN_STEP_SECONDS,
    PEAK_WINDOW,
    TARGET_P99_MS,
    TARGET_RATE,
    Quantiles,
    StepResult,
)
from benchmarks.webhook_profile import KINDS, Profile
from benchmarks.webhook_system import ROLES, CpuUse, Runtime
from benchmarks.webhook_traffic import CLOUD_POLL_PAUSE, CONSUMERS

LOG_RECORD: Final = re.compile(r"^.*\b(WARNING|ERROR|CRITICAL)\b.*$", re.MULTILINE)
NUMBERS: Final = re.compile(r"\d+")
PROFILE_NOTE: Final = "a few seconds, sampled 100 times a second"
HARNESS: Final = ("bench", "simulator")
"""Processes that play the citizens and Meta: on the machine, but not adminduk."""


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
        "Target met",
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
            "yes" if r.meets_target else "no",
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
        ("webhook POST -> first poll of the fake Cloud API that shows it", "seen_ms"),
        ("webhook POST -> ticket at the fake Cloud API: the earlier of the two", "ticket_ms"),
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
        "Cloud poll cycle p50 / p99 ms",
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


def render_tables(results: Sequence[StepResult], info: RunInfo | None) -> str:
    idle = info.idle if info is not None else None
    sections = [
        "## Rate steps\n\n" + steps_table(results),
        "## Where the time goes\n\n" + stages_table(results),
        "## CPU: cores busy\n\n" + cpu_table(results, idle),
        "## CPU: milliseconds per message above idle\n\n" + cost_table(results),
        "## Queues and load\n\n" + queues_table(results),
    ]
    if info is not None and info.profiles:
        rate = info.profile_rate or float("nan")
        sections.append(
            f"## Where each process spends its CPU (py-spy, {_n(rate)} messages/s for "
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
    """The highest-rate step that met the target's terms, else the highest that kept up."""
    for good in ([r for r in results if r.meets_target], [r for r in results if r.kept_up]):
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
                if best.meets_target
                else f", beyond the target's {TARGET_P99_MS / 1000:.0f} s p99. "
            )
        )
    else:
        words += "adminduk kept up with none of the rates tried. "
    slower = [
        r
        for r in results
        if best is not None
        and r.kept_up
        and not r.meets_target
        and r.offered_rate > best.offered_rate
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
        f"{use.cores.get('simulator', 0.0):.2f} in the fake Cloud API, "
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
        "A ticket's arrival is taken as the earlier of two upper bounds: the first poll of "
        f"the fake Cloud API that lists it (polled every {CLOUD_POLL_PAUSE * 1000:.0f} ms "
        f"plus the poll itself: cycle p50 {_ms(r.poll_cycle_ms.p50)} ms, p99 "
        f"{_ms(r.poll_cycle_ms.p99)} ms, longer while the simulator is busy) and notify's "
        "`NotificationSent`, recorded right after the Cloud API answered."
    )


def _statuses_share(profiles: Sequence[Profile]) -> float | None:
    """Share of the simulator's busy samples spent sending status webhooks."""
    for profile in profiles:
        if profile.role == "simulator":
            shares = [share for name, share in profile.top if "_deliver_statuses" in name]
            return shares[0] if shares else None
    return None


def _statuses_paragraph(results: Sequence[StepResult], profiles: Sequence[Profile]) -> str | None:
    statuses = sum(r.status_webhooks for r in results)
    acks = sum(r.acknowledged + r.late for r in results)
    if not acks:
        return None
    per = statuses / acks
    return (
        "**Status webhooks add load.** The simulator, like Meta, reports sent, delivered and "
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
        f"stopped); {_n(doubled)} got two acknowledgements, {_n(matched)} an acknowledgement "
        f"with exactly the ticket of the stored `RequestReceived` and {_n(wrong)} one with "
        "another, "
        f"{_n(other)} a reply other than an acknowledgement, {_n(unverified)} a "
        "`NotificationSent` without the text in the fake Cloud API's outbox; "
        f"{_n(strangers)} texts went to phone numbers the benchmark never used; dead "
        f"letters: {_n(dead)}. "
    )
    if not_stored == 0 and doubled == 0 and wrong == 0 and info.unanswered_at_end == 0:
        words += "Overload turned into waiting, not into loss or duplicates."
    return words


def _caveats(info: RunInfo, results: Sequence[StepResult]) -> str:
    bench = max(r.cpu_load.cores.get("bench", 0.0) for r in results)
    simulator = max(r.cpu_load.cores.get("simulator", 0.0) for r in results)
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


def _verdict(results: Sequence[StepResult]) -> str:
    if any(r.offered_rate >= TARGET_RATE and r.meets_target for r in results):
        return "**Verdict.** The target is met on this machine."
    best = sustained(results)
    gap = (
        f", short by a factor of about {TARGET_RATE / best.offered_rate:,.0f}"
        if best is not None
        else ""
    )
    return (
        f"**Verdict.** The target ({_n(TARGET_RATE)} messages/s, ticket within "
        f"{TARGET_P99_MS / 1000:.0f} s p99, nothing lost or doubled) is not met on this "
        f"machine{gap}. What fails is throughput (CPU per message), and with it latency once "
        "the offered rate passes the capacity"
        + (
            "; below it tickets come within a second and nothing is lost or doubled."
            if any(r.meets_target for r in results)
            else "."
        )
    )


def interpret(info: RunInfo, results: Sequence[StepResult]) -> list[str]:
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
        _verdict(results),
    ):
        if paragraph:
            paragraphs.append(paragraph)
    return paragraphs


# -- the document ------------------------------------------------------------------------

METHOD: Final = """\
## How it was run

- **System under test**, started in a temporary folder: `adminduk run` (the
  supervisor with embedded PostgreSQL and NATS, and the processes relay, intake,
  verification, issuance, notify) with `WHATSAPP_API_BASE_URL` pointing at a separate
  `adminduk serve simulator`, the fake Cloud API, which also sends the delivery-status
  webhooks (sent, delivered, read, 1 s apart) as it does by default. Free ports, a known
  `WHATSAPP_APP_SECRET`, `OTEL_TRACES_EXPORTER=none`, `ADMINDUK_LOG_LEVEL=WARNING`; the
  benchmark waits for the "adminduk is running" banner, and stops the runtime with SIGTERM
  and then the simulator at the end.
- **Load**, from the benchmark process with httpx (async, one client, at most
  {connections} connections): signed webhooks (`X-Hub-Signature-256`) to
  `/webhook/whatsapp`, open loop at a fixed offered rate, each message a distinct valid KTP
  request (the README's example with the serials of the NIK and the No. KK varied) from a
  distinct phone number, with its own WhatsApp message id. A message whose turn comes while
  all connections are busy waits for one. {idle:.0f} s idle and a small warm-up (left out of
  the figures) come first.
- **Steps** last {seconds:.0f} s, or are cut after at least {min_step:.0f} s once more than one
  second's worth of messages is over {late:.0f} s without a ticket ("cut"); messages still
  waiting for a connection then are withdrawn unsent. The next step waits until every
  earlier message has its ticket (at most {drain:.0f} s after the last send) and until the
  status webhooks of the last replies are in; a step is not run while a backlog remains.
  When a ladder step is cut before any step kept up, a step at half the tickets/s it
  managed is added ("added"), for the latency at a load the machine sustains. With py-spy
  available, a last step at about the capacity samples where each process spends its CPU.
- **Webhook latency**: scheduled send -> HTTP answer (so it includes waiting for a
  connection). **Ticket latency**, the headline: scheduled send -> the acknowledgement at
  the fake Cloud API, taken as the earlier of two upper bounds of its arrival: the first
  poll of `GET /simulator/api/conversations` that lists the phone (polled every {poll_ms:.0f}
  ms; the simulator's own timestamps are whole seconds) and the `recorded_at` of notify's
  `NotificationSent` (written after the Cloud API answered). Each acknowledgement is then
  checked in `GET /simulator/api/outbox`: a text with "Nomor tiket:", its ticket the stored
  `RequestReceived`'s, one per message ("doubled" = two for one message). The simulator is
  reset between steps to keep the polls small.
- **Stages** from the event store (`recorded_at`, the append transaction's start):
  `WhatsAppMessageReceived` (the webhook's append), `RequestReceived` (intake's consumer),
  `NotificationSent` (notify). **Backlogs**: webhooks due but not answered, and, sampled
  every second, events not yet relayed (`max(position)` minus the relay's checkpoint) and
  messages not yet acknowledged by each JetStream consumer.
- **CPU** with psutil per process (PostgreSQL with all its backends); *rest* is the rest of
  the machine's busy time (kernel interrupt work, other load), *stolen* the hypervisor's.
  Per-message costs subtract the idle baseline over the step from its first send until the
  statuses of its last replies were in, divided by the messages sent.
"""


def render(info: RunInfo | None, results: Sequence[StepResult]) -> str:
    assert info is not None
    lines = [
        "# Benchmark: WhatsApp messages per second, end to end",
        "",
        "Written by `.venv/bin/python -m benchmarks.webhook` "
        "(`benchmarks/webhook.py`) and regenerated on every run; change the generator, "
        "not this file.",
        "",
        "The question: on this machine with everything on it, how many WhatsApp messages per "
        "second does adminduk take, and how soon does each citizen get the acknowledgement "
        "(`Nomor tiket: ...`) after the webhook POST? The target: "
        f"{_n(TARGET_RATE)} messages/s with a ticket within {TARGET_P99_MS / 1000:.0f} s p99, "
        "nothing lost or doubled.",
        "",
        "## Machine",
        "",
        f"- Date: {info.date}",
        f"- CPUs (nproc): {info.cpus}; CPU model: {info.cpu_model}",
        f"- Memory: {info.memory_gib:.1f} GiB; Linux {info.kernel}; Python {info.python}",
        f"- PostgreSQL {info.postgres}, embedded by the runtime: "
        + ", ".join(f"`{k}={v}`" for k, v in info.postgres_settings.items()),
        f"- {info.nats} (embedded); data folder on {info.filesystem}",
        f"- The runtime was ready {info.ready_seconds:.1f} s after `adminduk.cli run` started and "
        f"stopped {info.stop_seconds:.1f} s after SIGTERM",
        (
            f"- While idle: {info.idle.ours:.2f} cores in our processes, {info.idle.rest:.2f} "
            f"busy elsewhere (other load on the machine), {info.idle.steal:.2f} stolen by the "
            "hypervisor"
            + ("; **the machine was not quiet**" if info.idle.rest + info.idle.steal > 0.3 else "")
            if info.idle is not None
            else "- While idle: not measured"
        ),
        "",
        METHOD.format(
            connections=info.connections,
            idle=IDLE_SECONDS,
            min_step=MIN_STEP_SECONDS,
            late=LATE_AFTER,
            drain=DRAIN_LIMIT,
            seconds=results[0].planned_seconds if results else float("nan"),
            poll_ms=CLOUD_POLL_PAUSE * 1000,
        ),
        render_tables(results, info),
        "",
    ]
    if not info.profiles:
        lines += [
            "No CPU profiles: "
            + (
                "`--no-profile` was given."
                if info.profiling == "off"
                else "py-spy is not installed (`.venv/bin/pip install py-spy` adds them)."
            ),
            "",
        ]
    if info.skipped:
        lines += ["Steps not run:", ""] + [f"- {line}" for line in info.skipped] + [""]
    cut = [r for r in results if r.cut_reason]
    if cut:
        lines += ["Steps cut short:", ""]
        lines += [f"- {_rate(r)}/s: {r.cut_reason}" for r in cut] + [""]
    lines += ["## What the numbers say", ""]
    for paragraph in interpret(info, results):
        lines += [paragraph, ""]
    lines += ["## Warnings and errors the processes logged", ""]
    for name, text in (("runtime", info.runtime_log), ("fake Cloud API", info.simulator_log)):
        complaints = log_summary(text)
        lines.append(f"- {name}: " + ("none" if not complaints else ""))
        lines += [f"  - {line}" for line in complaints]
    if "ClientDisconnect" in info.runtime_log:
        lines.append(
            "- The `Exception in ASGI application` records are `starlette.requests."
            "ClientDisconnect`: a status webhook still in flight when the benchmark reset the "
            "fake Cloud API (a reset cancels its pending statuses) hung up before intake had "
            "read the body. Intake's `_read_body` (`services/intake/adapters/http.py`) does not "
            "catch it, so every client that gives up mid-request (Meta times out too) becomes "
            "an ERROR with a full traceback instead of a quiet log line."
        )
    if "PoolTimeout" in info.simulator_log:
        lines.append(
            "- The fake Cloud API's `PoolTimeout` warnings are status webhooks it gave up on: "
            "its httpx client (default pool of 100 connections, `webhook_timeout` 10 s that "
            "also bounds the wait for a pooled connection) could not get a connection in "
            "time while intake was slow, and the simulator does not retry (Meta does, for "
            "days). Those statuses are simply lost, which is why fewer than three per "
            "acknowledgement were stored in the overloaded steps."
        )
    dead = ", ".join(f"{name}: {count}" for name, count in info.dead_letters.items())
    lines += [f"- dead letters at the end: {dead or 'none'}", ""]
    return "\n".join(lines)
