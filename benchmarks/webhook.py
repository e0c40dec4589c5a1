"""The headline benchmark: WhatsApp messages per second, and how soon each citizen has a ticket.

Run with::

    .venv/bin/python -m benchmarks.webhook                  # the default plan, telemetry on and off
    .venv/bin/python -m benchmarks.webhook --rate 20 --seconds 10 --sustain-seconds 0
    .venv/bin/python -m benchmarks.webhook --telemetry on --replicas 2

It starts, in a temporary folder, the lean fake Cloud API (``benchmarks.fake_cloud``: it
answers the sends, sends the sent/delivered/read status webhooks 1 s apart and receives
the integrator webhooks) and the whole runtime (``adminduk run``: embedded Postgres and
NATS, relay, intake, verification, issuance, notify, integrations) pointed at it, with the
shipped telemetry (span files) or with ``OTEL_TRACES_EXPORTER=none``; with ``--telemetry
both`` (the default) one runtime after the other. From this process it then POSTs signed
webhooks to intake, open loop at a fixed offered rate per step, each a distinct valid KTP
request from a distinct phone number with its own WhatsApp message id, through a bounded
pool of connections. Per message it records the scheduled send, the webhook's status and
latency, when the acknowledgement ("Nomor tiket: ...") reached the fake Cloud API, and from
the event store when each stage was recorded. As an integrator it subscribes to
``adminduk.public.>`` and registers a webhook subscription, and measures commit -> arrival.

The plan per runtime: a ladder of rates (the capacity search: steps added below the first
cut step and between the best kept-up and the first cut step), then the sustained step at
the target rate for the target's duration, then, with py-spy, a short profiled step. A step
is cut short (after at least :data:`MIN_STEP_SECONDS`) once more than a second's worth of
its messages is over :data:`LATE_AFTER` seconds without a ticket; messages still waiting for
a connection then are withdrawn. Finally it stops the runtime (SIGTERM) and the fake Cloud
API, prints the tables and rewrites ``docs/BENCHMARKS-WEBHOOK.md``.

Not a pytest test (nothing here is collected). The helpers live beside it:
``fake_cloud`` (the fake Cloud API process), ``webhook_system`` (the processes, CPU),
``webhook_traffic`` (messages, sender, watchers), ``webhook_figures`` (the figures of a
step), ``webhook_profile`` (py-spy), ``webhook_report`` (tables, words, the document).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Final

import httpx

from benchmarks import webhook_profile
from benchmarks.webhook_figures import (
    ACK_WINDOW,
    DRAIN_LIMIT,
    IDLE_SECONDS,
    LATE_AFTER,
    MIN_STEP_SECONDS,
    PEAK_WINDOW,
    TARGET_RATE,
    TARGET_SECONDS,
    StepRun,
    cpu_per_message,
    peak_rate,
    summarise,
)
from benchmarks.webhook_profile import Profile
from benchmarks.webhook_report import RunInfo, collect_run_info, render, render_tables
from benchmarks.webhook_system import (
    APP_SECRET,
    BOOTSTRAP_TOKEN,
    FAKE_CLOUD,
    INTEGRATOR_SECRET,
    CpuMeter,
    CpuUse,
    FakeCloudApi,
    Runtime,
)
from benchmarks.webhook_traffic import (
    Arrival,
    Clock,
    CloudWatcher,
    IntegratorWatcher,
    Message,
    QueueWatcher,
    StoreWatcher,
    make_messages,
    new_run_tag,
    register_integrator_webhook,
    send_open_loop,
)
from shared.public.models import PUBLIC_TYPES
from shared.runtime.processes import free_port

log = logging.getLogger("bench.webhook")

DEFAULT_RATES: Final = (50.0, 100.0, 200.0, 400.0)
DEFAULT_SECONDS: Final = 10.0
DEFAULT_CONNECTIONS: Final = 32
"""httpcore walks its whole pool (a socket check per connection) for every request, so a
larger pool costs the load generator CPU the system under test would otherwise get."""
ADDED_SHARES: Final = (0.5, 0.8, 1.1)
"""Steps added below a cut step, as shares of the capacity it showed."""
REFINE_RATIO: Final = 1.3
"""A step is added between the best kept-up and the lowest cut rate while they differ by
more than this factor (the capacity search)."""
REFINE_STEPS: Final = 2
STATUS_SETTLE: Final = 3.2
"""The fake Cloud API sends sent/delivered/read 1 s apart after each reply: wait them out."""
STATUS_SETTLE_MAX: Final = 20.0
STATUS_STALL: Final = 4.0
STATUSES_PER_REPLY: Final = 3
LOAD_BUDGET: Final = 150.0
"""Seconds of ladder steps (sending and draining) after which no further one is started."""
WARM_UP: Final = (10.0, 2.0)
"""(messages/s, seconds) sent before the first step and left out of the figures."""
PROFILE_SECONDS: Final = 8.0
FINAL_GRACE: Final = 10.0
PROFILED: Final = ("intake", "notify", "relay", "integrations", FAKE_CLOUD)
DEFAULT_OUTPUT: Final = Path(__file__).resolve().parents[1] / "docs" / "BENCHMARKS-WEBHOOK.md"
TELEMETRY: Final = {"on": (True,), "off": (False,), "both": (True, False)}
REPLICA_CHECK_RATE: Final = 40.0
"""Messages/s of the last phase, with replicas of intake and notify (``--replica-check``)."""


@dataclass(frozen=True)
class Options:
    rates: tuple[float, ...]
    seconds: float
    connections: int
    output: Path
    keep: bool
    adapt: bool
    profile: bool
    telemetry: str = "both"
    replicas: int = 1
    sustain_rate: float = TARGET_RATE
    sustain_seconds: float = TARGET_SECONDS
    status_delay: float = 1.0
    replica_check: int = 2


@dataclass
class Bench:
    """What the steps share."""

    runtime: Runtime
    cloud: CloudWatcher
    store: StoreWatcher
    queues: QueueWatcher
    integrator: IntegratorWatcher | None
    meter: CpuMeter
    clock: Clock
    client: httpx.AsyncClient
    run_tag: str
    connections: int
    folder: Path
    by_phone: dict[str, Message]
    by_message_id: dict[str, Message] = field(default_factory=dict)
    next_index: int = 0

    def has_ticket(self, message: Message) -> bool:
        return message.arrived is not None

    def backlog(self, messages: Sequence[Message]) -> int:
        return sum(1 for m in messages if m.sent and not self.has_ticket(m))


async def watch_overload(
    bench: Bench, messages: list[Message], rate: float, cut: asyncio.Event, reason: list[str]
) -> None:
    """Set ``cut`` when the system clearly cannot keep up with ``rate``."""
    start = bench.clock.now()
    while not cut.is_set():
        await asyncio.sleep(0.5)
        now = bench.clock.now()
        if now - start < MIN_STEP_SECONDS:
            continue
        late = sum(
            1
            for m in messages
            if m.scheduled is not None
            and m.scheduled < now - LATE_AFTER
            and not bench.has_ticket(m)
        )
        if late > rate:
            reason.append(
                f"cut after {now - start:.1f} s: {late:,} messages were over "
                f"{LATE_AFTER:.0f} s without a ticket"
            )
            cut.set()


async def wait_for_tickets(bench: Bench, messages: Sequence[Message], until: float) -> None:
    """Until every sent message in ``messages`` has its acknowledgement, or ``until``."""
    while bench.clock.now() < until and bench.backlog(messages):
        await asyncio.sleep(0.1)


async def wait_for_statuses(bench: Bench, after: int, replies: int) -> None:
    """Until the sent/delivered/read webhooks of ``replies`` replies are stored: at least
    :data:`STATUS_SETTLE` seconds, then until all are in, none came for
    :data:`STATUS_STALL` seconds, or :data:`STATUS_SETTLE_MAX` seconds."""
    started = bench.clock.now()
    await asyncio.sleep(STATUS_SETTLE)
    last_count, last_change = -1, bench.clock.now()
    while bench.clock.now() - started < STATUS_SETTLE_MAX:
        counts = await bench.store.event_counts(after, await bench.store.head())
        count = counts.get("DeliveryStatusReceived", 0)
        if count >= STATUSES_PER_REPLY * replies:
            return
        if count != last_count:
            last_count, last_change = count, bench.clock.now()
        elif bench.clock.now() - last_change > STATUS_STALL:
            return
        await asyncio.sleep(0.5)


def _lags(
    arrivals: Sequence[Arrival], committed: dict[int, float], low: int, high: int
) -> list[float]:
    """Commit -> arrival in seconds of the first arrival of each event in (low, high]."""
    first: dict[int, float] = {}
    for arrival in arrivals:
        if low < arrival.position <= high and arrival.position not in first:
            first[arrival.position] = arrival.at
    return [at - committed[position] for position, at in first.items() if position in committed]


async def integrator_figures(bench: Bench, run: StepRun, low: int, high: int) -> None:
    """The step's public events and when each reached the integrator, both ways."""
    watcher = bench.integrator
    counts = await bench.store.event_counts(low, high)
    run.public_events = sum(count for kind, count in counts.items() if kind in PUBLIC_TYPES)
    if watcher is None:
        return
    await watcher.poll()
    positions = sorted(
        {a.position for a in (*watcher.nats, *watcher.webhooks) if low < a.position <= high}
    )
    committed = await bench.store.commit_times(positions)
    run.nats_lag = _lags(watcher.nats, committed, low, high)
    run.webhook_lag = _lags([a for a in watcher.webhooks if a.verified], committed, low, high)
    run.webhook_unverified = sum(
        1 for a in watcher.webhooks if low < a.position <= high and not a.verified
    )


async def run_step(
    bench: Bench,
    step: int,
    rate: float,
    seconds: float,
    kind: str,
    deadline: float,
    profile: bool = False,
) -> tuple[StepRun, list[Profile]]:
    """One rate step: send, wait for the tickets (within the window, then for stragglers
    until :data:`DRAIN_LIMIT` or ``deadline``), let the statuses settle, take the figures."""
    count = max(1, round(rate * seconds))
    messages = make_messages(step, bench.next_index, count, bench.run_tag, APP_SECRET)
    bench.next_index += count
    for message in messages:
        bench.by_phone[message.phone] = message
        bench.by_message_id[message.message_id] = message
    run = StepRun(step=step, rate=rate, planned_seconds=seconds, messages=messages, kind=kind)
    log.info("step %d (%s): %d messages at %.0f/s", step, kind, count, rate)

    head_before = await bench.store.head()
    cycles_before = len(bench.cloud.cycles)
    strangers_before = bench.cloud.strangers
    cpu_start = bench.meter.sample()
    start = bench.clock.now()
    cut = asyncio.Event()
    reason: list[str] = []
    monitor = asyncio.create_task(watch_overload(bench, messages, rate, cut, reason))
    sampling = None
    if profile:
        pids = {role: pid for role, pid in bench.meter.pids().items() if role in PROFILED}
        pids["bench"] = os.getpid()
        sampling = asyncio.create_task(webhook_profile.record(pids, seconds - 1, bench.folder))
    try:
        await send_open_loop(
            bench.client,
            bench.runtime.webhook_url,
            messages,
            rate,
            bench.clock,
            cut,
            bench.connections,
        )
    finally:
        cut.set()
        await monitor
    run.cut_reason = reason[0] if reason else None
    run.send_end = bench.clock.now()
    run.cpu_load = CpuMeter.between(cpu_start, bench.meter.sample())
    sent = [m for m in messages if m.sent]
    last_scheduled = max((m.scheduled for m in sent if m.scheduled is not None), default=start)
    await wait_for_tickets(bench, sent, last_scheduled + ACK_WINDOW)
    await wait_for_tickets(bench, sent, min(last_scheduled + DRAIN_LIMIT, deadline))
    run.drain_end = bench.clock.now()
    run.cpu_step = CpuMeter.between(cpu_start, bench.meter.sample())
    answered = len(sent) - bench.backlog(sent)
    log.info(
        "step %d: %d sent (%d withdrawn) in %.1f s, %d acknowledged after %.1f s%s",
        step,
        len(sent),
        sum(1 for m in messages if m.withdrawn),
        run.send_end - start,
        answered,
        run.drain_end - start,
        f" ({run.cut_reason})" if run.cut_reason else "",
    )
    # The delivery statuses of the last replies (and the integrators' copies meanwhile).
    await wait_for_statuses(bench, head_before, answered)
    run.cpu_full = CpuMeter.between(cpu_start, bench.meter.sample())
    run.queues = bench.queues.peaks(start, bench.clock.now())
    run.poll_cycles = bench.cloud.cycles[cycles_before:]
    await bench.store.poll()
    await bench.cloud.poll()
    head_after = await bench.store.head()
    run.events = await bench.store.event_counts(head_before, head_after)
    run.strangers = bench.cloud.strangers - strangers_before
    await integrator_figures(bench, run, head_before, head_after)
    profiles = await sampling if sampling is not None else []
    return run, profiles


def estimated_capacity(run: StepRun, idle: CpuUse) -> float:
    """What a saturated step says the machine sustains: the fewer of the tickets per second
    it managed at best and the messages per second its CPU cost per message (statuses
    included) fits into the cores."""
    arrived = [m.arrived for m in run.messages if m.arrived is not None]
    peak = peak_rate(arrived, PEAK_WINDOW)
    assert run.cpu_full is not None
    cost = sum(cpu_per_message(run.cpu_full, idle, sum(1 for m in run.messages if m.sent)).values())
    by_cpu = len(os.sched_getaffinity(0)) * 1000 / cost if cost > 0 else peak
    return min(peak, by_cpu)


def added_rates(run: StepRun, idle: CpuUse) -> list[float]:
    """Steps around the capacity a cut step showed, rounded to 5/s."""
    capacity = estimated_capacity(run, idle)
    rates = {max(5.0, round(capacity * share / 5) * 5) for share in ADDED_SHARES}
    return sorted(rate for rate in rates if rate < run.rate)


def refined_rate(runs: Sequence[StepRun]) -> float | None:
    """The next rate of the capacity search: between the best rate a step kept up with and
    the lowest at which one was cut, while they differ by more than :data:`REFINE_RATIO`."""
    kept = [run.rate for run in runs if run.cut_reason is None]
    cut = [run.rate for run in runs if run.cut_reason is not None]
    if not kept or not cut:
        return None
    low, high = max(kept), min(r for r in cut)
    if high <= low or high / low <= REFINE_RATIO:
        return None
    return float(max(5, round((low * high) ** 0.5 / 5) * 5))


async def measure_idle(bench: Bench) -> CpuUse:
    """CPU of every process with nothing to do but the benchmark's own polling."""
    start = bench.meter.sample()
    await asyncio.sleep(IDLE_SECONDS)
    return CpuMeter.between(start, bench.meter.sample())


async def final_drain(bench: Bench, runs: Sequence[StepRun], until: float) -> None:
    """Give late acknowledgements until ``until``, so that late and lost differ."""
    messages = [m for run in runs for m in run.messages if m.sent]
    await wait_for_tickets(bench, messages, until)
    await asyncio.sleep(1.0)
    await bench.store.poll()
    await bench.cloud.poll()


@dataclass
class Outcome:
    runs: list[StepRun]
    idle: CpuUse
    dead_letters: dict[str, int]
    skipped: list[str]
    unanswered_at_end: int
    profiles: list[Profile]
    profile_rate: float | None
    cloud_stats: dict[str, int]
    integrator_note: str | None


async def ladder(bench: Bench, options: Options, idle: CpuUse) -> tuple[list[StepRun], list[str]]:
    """The capacity search: the ladder's rates, steps added below the first cut one, and
    steps between the best kept-up rate and the lowest cut one."""
    runs: list[StepRun] = []
    skipped: list[str] = []
    deadline = bench.clock.now() + LOAD_BUDGET
    plan = [(rate, "ladder") for rate in options.rates]
    refinements = 0
    step = 0
    while True:
        if not plan and options.adapt and refinements < REFINE_STEPS:
            rate = refined_rate(runs)
            if rate is not None and rate not in {run.rate for run in runs}:
                plan.append((rate, "search"))
                refinements += 1
        if not plan:
            break
        rate, kind = plan.pop(0)
        waiting = bench.backlog([m for run in runs for m in run.messages])
        if waiting:
            skipped.append(
                f"{rate:,.0f}/s not run: {waiting:,} messages of earlier steps were still "
                f"without a ticket {DRAIN_LIMIT:.0f} s after their step's last send"
            )
            continue
        if bench.clock.now() > deadline:
            skipped.append(f"{rate:,.0f}/s not run: the run's time budget was spent")
            continue
        step += 1
        run, _ = await run_step(bench, step, rate, options.seconds, kind, deadline)
        runs.append(run)
        first_cut = run.cut_reason and not any(r.cut_reason is None for r in runs)
        if first_cut and kind == "ladder" and options.adapt:
            plan[:0] = [(added, "added") for added in added_rates(run, idle)]
            # The rest of the ladder lies above a rate that already failed.
            plan = [(r, k) for r, k in plan if k == "added" or r < run.rate]
    return runs, skipped


def profile_rate(runs: Sequence[StepRun], idle: CpuUse) -> float:
    """The highest rate a step kept up with (busy, but no growing backlog); without one,
    the capacity the cut steps showed."""
    kept = [run.rate for run in runs if run.cut_reason is None]
    if kept:
        return max(kept)
    cut = [run for run in runs if run.cut_reason]
    if not cut:
        return 20.0
    return max(5.0, min(estimated_capacity(run, idle) for run in cut) // 5 * 5)


async def start_integrator(
    runtime: Runtime, fake: FakeCloudApi, clock: Clock
) -> tuple[IntegratorWatcher | None, str | None]:
    """Subscribe as an integrator and register the webhook subscription; a failure leaves
    the integrator figures out, with the reason for the report."""
    watcher = IntegratorWatcher(runtime.integrator_nats_url, fake.base, clock)
    try:
        await watcher.connect()
    except Exception as error:  # noqa: BLE001 - reported, the run goes on without it
        await watcher.aclose()
        return None, f"NATS as `integrator` refused: {error!r}"
    try:
        await register_integrator_webhook(
            runtime.officer_api, BOOTSTRAP_TOKEN, fake.integrator_url, INTEGRATOR_SECRET
        )
    except httpx.HTTPError as error:
        return watcher, f"the webhook subscription was refused: {error!r}"
    return watcher, None


async def drive(
    runtime: Runtime, fake: FakeCloudApi, options: Options, folder: Path, *, profile: bool
) -> Outcome:
    assert runtime.process is not None and fake.process is not None
    clock = Clock()
    limits = httpx.Limits(
        max_connections=options.connections, max_keepalive_connections=options.connections
    )
    by_phone: dict[str, Message] = {}
    integrator, integrator_note = await start_integrator(runtime, fake, clock)
    bench = Bench(
        runtime=runtime,
        cloud=CloudWatcher(fake.base, clock, by_phone),
        store=StoreWatcher(runtime.dsn, {}),
        queues=QueueWatcher(runtime.dsn, runtime.nats_url, clock),
        integrator=integrator,
        meter=CpuMeter(runtime.process.pid, fake.process.pid),
        clock=clock,
        client=httpx.AsyncClient(limits=limits, timeout=30, trust_env=False),
        run_tag=new_run_tag(),
        connections=options.connections,
        folder=folder,
        by_phone=by_phone,
    )
    bench.store.by_message_id = bench.by_message_id
    await bench.store.connect()
    await bench.queues.connect()
    stop = asyncio.Event()
    watchers = [
        asyncio.create_task(bench.cloud.run(stop)),
        asyncio.create_task(bench.store.run(stop)),
        asyncio.create_task(bench.queues.run(stop)),
    ]
    if integrator is not None:
        watchers.append(asyncio.create_task(integrator.run(stop)))
    try:
        log.info("idle for %.0f s, then a warm-up", IDLE_SECONDS)
        idle = await measure_idle(bench)
        warm_up, _ = await run_step(
            bench, 0, WARM_UP[0], WARM_UP[1], "warm-up", clock.now() + ACK_WINDOW
        )
        runs, skipped = await ladder(bench, options, idle)
        if options.sustain_seconds > 0:
            waiting = bench.backlog([m for run in runs for m in run.messages])
            if waiting:
                skipped.append(
                    f"the sustained step at {options.sustain_rate:,.0f}/s not run: {waiting:,} "
                    "messages of earlier steps were still without a ticket"
                )
            else:
                sustained, _ = await run_step(
                    bench,
                    len(runs) + 1,
                    options.sustain_rate,
                    options.sustain_seconds,
                    "sustained",
                    clock.now() + options.sustain_seconds + DRAIN_LIMIT,
                )
                runs.append(sustained)
        extra = [warm_up]
        profiles: list[Profile] = []
        rate = None
        if profile and webhook_profile.available():
            rate = profile_rate(runs, idle)
            log.info("profiling every process with py-spy at %.0f/s", rate)
            profiled, profiles = await run_step(
                bench, len(runs) + 1, rate, PROFILE_SECONDS, "profile", clock.now() + 40, True
            )
            extra.append(profiled)
        await final_drain(bench, [*extra, *runs], clock.now() + FINAL_GRACE)
        dead = await bench.store.dead_letters()
        unanswered = bench.backlog([m for run in runs for m in run.messages])
        cloud_stats = await bench.cloud.stats()
    finally:
        stop.set()
        await asyncio.gather(*watchers, return_exceptions=True)
        await bench.client.aclose()
        await bench.cloud.aclose()
        await bench.store.aclose()
        await bench.queues.aclose()
        if integrator is not None:
            await integrator.aclose()
    return Outcome(
        runs, idle, dead, skipped, unanswered, profiles, rate, cloud_stats, integrator_note
    )


def _raise_on_sigterm(signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def run_phase(options: Options, telemetry: bool, profile: bool) -> RunInfo:
    """One runtime (telemetry on or off) through the whole plan; its figures and logs."""
    folder = Path(tempfile.mkdtemp(prefix="adminduk-webhook-bench-"))
    intake_port = free_port()
    fake = FakeCloudApi(folder, intake_port, options.status_delay)
    runtime = Runtime(
        folder,
        intake_port,
        fake.cloud_api_url,
        telemetry=telemetry,
        replicas=options.replicas,
    )
    info: RunInfo | None = None
    try:
        log.info(
            "telemetry %s: starting the fake Cloud API and the runtime under %s",
            "on" if telemetry else "off",
            folder,
        )
        fake.start()
        started = time.monotonic()
        runtime.start()
        runtime.wait_until_running()
        ready = time.monotonic() - started
        log.info("runtime ready after %.1f s", ready)
        outcome = asyncio.run(drive(runtime, fake, options, folder, profile=profile))
        info = asyncio.run(collect_run_info(runtime, options.connections, ready))
        info.telemetry = telemetry
        info.replicas = options.replicas
        info.results = [summarise(step, outcome.idle) for step in outcome.runs]
        info.idle = outcome.idle
        info.dead_letters = outcome.dead_letters
        info.skipped = outcome.skipped
        info.unanswered_at_end = outcome.unanswered_at_end
        info.profiles = outcome.profiles
        info.profile_rate = outcome.profile_rate
        info.profiling = "ran" if outcome.profiles else "off" if not profile else "none"
        info.cloud_stats = outcome.cloud_stats
        info.integrator_note = outcome.integrator_note
    finally:
        stopped = runtime.stop()
        fake.stop()
        log.info("runtime stopped in %.1f s", stopped)
        if info is not None:
            info.stop_seconds = stopped
            info.runtime_log = runtime.output()
            info.simulator_log = fake.output()
        if options.keep:
            log.info("kept %s", folder)
        else:
            shutil.rmtree(folder, ignore_errors=True)
    assert info is not None  # an exception would have left before
    return info


def run(options: Options) -> str:
    previous = signal.signal(signal.SIGTERM, _raise_on_sigterm)
    phases: list[RunInfo] = []
    try:
        for number, telemetry in enumerate(TELEMETRY[options.telemetry]):
            # The profile shows the shipped configuration: only the first runtime's.
            phases.append(run_phase(options, telemetry, options.profile and number == 0))
        if options.replica_check > 1 and options.replicas == 1:
            # Competing consumers keep their promises: the same checks (lost, doubled,
            # tickets) with several replicas of intake and notify, at a rate they hold.
            check = dataclasses.replace(
                options,
                rates=(REPLICA_CHECK_RATE,),
                replicas=options.replica_check,
                sustain_seconds=0.0,
                adapt=False,
            )
            phases.append(run_phase(check, telemetry=True, profile=False))
    finally:
        signal.signal(signal.SIGTERM, previous)
    for phase in phases:
        print(render_tables(phase))
    options.output.parent.mkdir(parents=True, exist_ok=True)
    options.output.write_text(render(phases, options))
    return str(options.output)


def parse_options(argv: Sequence[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.webhook",
        description="WhatsApp messages/s and ticket latency of the whole system; "
        "writes docs/BENCHMARKS-WEBHOOK.md.",
    )
    parser.add_argument(
        "--rate",
        type=float,
        action="append",
        help="offered messages per second of a ladder step (repeat for a ladder; default "
        + ", ".join(f"{rate:.0f}" for rate in DEFAULT_RATES)
        + ")",
    )
    parser.add_argument("--seconds", type=float, default=DEFAULT_SECONDS, help="per ladder step")
    parser.add_argument(
        "--sustain-rate",
        type=float,
        default=TARGET_RATE,
        help="messages/s of the sustained step (default: the target's)",
    )
    parser.add_argument(
        "--sustain-seconds",
        type=float,
        default=TARGET_SECONDS,
        help="length of the sustained step; 0 leaves it out (default: the target's)",
    )
    parser.add_argument(
        "--telemetry",
        choices=sorted(TELEMETRY),
        default="both",
        help="on: the shipped default (span files); off: OTEL_TRACES_EXPORTER=none; "
        "both: one runtime after the other (default)",
    )
    parser.add_argument(
        "--replicas",
        type=int,
        default=1,
        help="replicas of intake and notify, passed to the runtime as ADMINDUK_REPLICAS",
    )
    parser.add_argument(
        "--replica-check",
        type=int,
        default=2,
        help="after the other phases, one step at "
        f"{REPLICA_CHECK_RATE:.0f}/s with this many replicas of intake and notify "
        "(0 or 1 leaves it out; not when --replicas is given)",
    )
    parser.add_argument(
        "--status-delay",
        type=float,
        default=1.0,
        help="seconds between a reply and each of its status webhooks (sent, delivered, read)",
    )
    parser.add_argument(
        "--connections", type=int, default=DEFAULT_CONNECTIONS, help="HTTP connection pool"
    )
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="report file")
    parser.add_argument("--keep", action="store_true", help="keep the temporary data folders")
    parser.add_argument(
        "--no-adapt",
        dest="adapt",
        action="store_false",
        help="no steps added below a cut step or between kept-up and cut rates",
    )
    parser.add_argument(
        "--no-profile", dest="profile", action="store_false", help="skip the py-spy step"
    )
    arguments = parser.parse_args(argv)
    if arguments.replicas < 1:
        parser.error("--replicas must be at least 1")
    rates = tuple(arguments.rate) if arguments.rate else DEFAULT_RATES
    return Options(
        rates=rates,
        seconds=arguments.seconds,
        connections=arguments.connections,
        output=arguments.output,
        keep=arguments.keep,
        adapt=arguments.adapt,
        profile=arguments.profile,
        telemetry=arguments.telemetry,
        replicas=arguments.replicas,
        replica_check=arguments.replica_check,
        sustain_rate=arguments.sustain_rate,
        sustain_seconds=arguments.sustain_seconds,
        status_delay=arguments.status_delay,
    )


def main(argv: Sequence[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    output = run(parse_options(argv))
    print(f"\nwritten to {output}")


if __name__ == "__main__":
    main()
