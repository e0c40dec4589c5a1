"""The headline benchmark: WhatsApp messages per second, and how soon each citizen has a ticket.

Run with::

    .venv/bin/python -m benchmarks.webhook                 # 100, 300, 600, 1000/s
    .venv/bin/python -m benchmarks.webhook --rate 200 --seconds 10

It starts, in a temporary folder, the WhatsApp simulator as the fake Cloud API
(``adminduk serve simulator``, delivery statuses on as by default) and the whole runtime
(``adminduk run``: embedded Postgres and NATS, relay, intake, verification,
issuance, notify) pointed at it, and waits for the banner. From this process it then POSTs
signed webhooks to intake, open loop at a fixed offered rate per step, each a distinct
valid KTP request from a distinct phone number with its own WhatsApp message id, through a
bounded pool of connections. Per message it records the scheduled send, the webhook's
status and latency, when the acknowledgement ("Nomor tiket: ...") reached the fake Cloud
API, and from the event store when each stage was recorded.

A step is cut short (after at least :data:`MIN_STEP_SECONDS`) once more than a second's
worth of its messages is over :data:`LATE_AFTER` seconds without a ticket; messages still
waiting for a connection then are withdrawn. The next step starts when the backlog is
answered. When a ladder step is cut before any step kept up, a step at half the measured
capacity is added, for the latency at a load the machine sustains. With py-spy installed,
a last short step samples where each process spends its CPU. Finally it stops the runtime
(SIGTERM) and the simulator, prints the tables and rewrites ``docs/BENCHMARKS-WEBHOOK.md``.

Not a pytest test (nothing here is collected). The helpers live beside it:
``webhook_system`` (the processes, CPU), ``webhook_traffic`` (messages, sender, watchers),
``webhook_figures`` (the figures of a step), ``webhook_profile`` (py-spy),
``webhook_report`` (tables, words, the document).
"""

from __future__ import annotations

import argparse
import asyncio
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
    StepResult,
    StepRun,
    cpu_per_message,
    peak_rate,
    summarise,
)
from benchmarks.webhook_profile import Profile
from benchmarks.webhook_report import RunInfo, collect_run_info, render, render_tables
from benchmarks.webhook_system import (
    APP_SECRET,
    CpuMeter,
    CpuUse,
    FakeCloudApi,
    Runtime,
)
from benchmarks.webhook_traffic import (
    Clock,
    CloudWatcher,
    Message,
    QueueWatcher,
    StoreWatcher,
    count_replies,
    make_messages,
    new_run_tag,
    send_open_loop,
)
from shared.runtime.processes import free_port

log = logging.getLogger("bench.webhook")

DEFAULT_RATES: Final = (100.0, 300.0, 600.0, 1000.0)
DEFAULT_SECONDS: Final = 15.0
DEFAULT_CONNECTIONS: Final = 32
"""httpcore walks its whole pool (a socket check per connection) for every request, so a
larger pool costs the load generator CPU the system under test would otherwise get."""
ADDED_SHARES: Final = (0.5, 0.8, 1.1)
"""Steps added below a cut step, as shares of the capacity it showed."""
STATUS_SETTLE: Final = 3.2
"""The simulator sends sent/delivered/read 1 s apart after each reply: wait them out."""
STATUS_SETTLE_MAX: Final = 20.0
STATUS_STALL: Final = 4.0
STATUSES_PER_REPLY: Final = 3
LOAD_BUDGET: Final = 170.0
"""Seconds of steps (sending and draining) after which no further step is started."""
WARM_UP: Final = (10.0, 2.0)
"""(messages/s, seconds) sent before the first step and left out of the figures."""
PROFILE_SECONDS: Final = 8.0
FINAL_GRACE: Final = 10.0
PROFILED: Final = ("intake", "notify", "relay", "simulator")
DEFAULT_OUTPUT: Final = Path(__file__).resolve().parents[1] / "docs" / "BENCHMARKS-WEBHOOK.md"


@dataclass(frozen=True)
class Options:
    rates: tuple[float, ...]
    seconds: float
    connections: int
    output: Path
    keep: bool
    adapt: bool
    profile: bool


@dataclass
class Bench:
    """What the steps share."""

    runtime: Runtime
    cloud: CloudWatcher
    store: StoreWatcher
    queues: QueueWatcher
    meter: CpuMeter
    clock: Clock
    client: httpx.AsyncClient
    run_tag: str
    connections: int
    folder: Path
    by_phone: dict[str, Message] = field(default_factory=dict)
    by_message_id: dict[str, Message] = field(default_factory=dict)
    next_index: int = 0

    def has_ticket(self, message: Message) -> bool:
        return message.notified is not None or message.phone in self.cloud.seen

    def resolve_seen(self, messages: Sequence[Message]) -> None:
        for message in messages:
            if message.seen is None:
                message.seen = self.cloud.seen.get(message.phone)

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
    :data:`STATUS_STALL` seconds (the simulator gives up on some under load), or
    :data:`STATUS_SETTLE_MAX` seconds."""
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
    until :data:`DRAIN_LIMIT` or ``deadline``), let the statuses settle, check the outbox."""
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
    bench.resolve_seen(messages)
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
    # The delivery statuses of the last replies, then what the fake Cloud API received.
    await wait_for_statuses(bench, head_before, answered)
    run.cpu_full = CpuMeter.between(cpu_start, bench.meter.sample())
    run.queues = bench.queues.peaks(start, bench.clock.now())
    run.poll_cycles = bench.cloud.cycles[cycles_before:]
    await bench.store.poll()
    run.events = await bench.store.event_counts(head_before, await bench.store.head())
    run.strangers = count_replies(await bench.cloud.outbox(), bench.by_phone)
    await bench.cloud.reset()
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


async def measure_idle(bench: Bench) -> CpuUse:
    """CPU of every process with nothing to do but the benchmark's own polling."""
    start = bench.meter.sample()
    await asyncio.sleep(IDLE_SECONDS)
    return CpuMeter.between(start, bench.meter.sample())


async def final_drain(bench: Bench, runs: Sequence[StepRun], until: float) -> None:
    """Give late acknowledgements until ``until``, so that late and lost differ."""
    messages = [m for run in runs for m in run.messages if m.sent]
    await wait_for_tickets(bench, messages, until)
    bench.resolve_seen(messages)
    await asyncio.sleep(1.0)
    await bench.store.poll()
    count_replies(await bench.cloud.outbox(), bench.by_phone)


@dataclass
class Outcome:
    runs: list[StepRun]
    idle: CpuUse
    dead_letters: dict[str, int]
    skipped: list[str]
    unanswered_at_end: int
    profiles: list[Profile]
    profile_rate: float | None


async def ladder(bench: Bench, options: Options, idle: CpuUse) -> tuple[list[StepRun], list[str]]:
    runs: list[StepRun] = []
    skipped: list[str] = []
    deadline = bench.clock.now() + LOAD_BUDGET
    plan = [(rate, "ladder") for rate in options.rates]
    step = 0
    while plan:
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


async def drive(runtime: Runtime, fake: FakeCloudApi, options: Options, folder: Path) -> Outcome:
    assert runtime.process is not None and fake.process is not None
    clock = Clock()
    limits = httpx.Limits(
        max_connections=options.connections, max_keepalive_connections=options.connections
    )
    bench = Bench(
        runtime=runtime,
        cloud=CloudWatcher(fake.base, clock),
        store=StoreWatcher(runtime.dsn, {}),
        queues=QueueWatcher(runtime.dsn, runtime.nats_url, clock),
        meter=CpuMeter(runtime.process.pid, fake.process.pid),
        clock=clock,
        client=httpx.AsyncClient(limits=limits, timeout=30, trust_env=False),
        run_tag=new_run_tag(),
        connections=options.connections,
        folder=folder,
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
    try:
        log.info("idle for %.0f s, then a warm-up", IDLE_SECONDS)
        idle = await measure_idle(bench)
        warm_up, _ = await run_step(
            bench, 0, WARM_UP[0], WARM_UP[1], "warm-up", clock.now() + ACK_WINDOW
        )
        runs, skipped = await ladder(bench, options, idle)
        extra = [warm_up]
        profiles: list[Profile] = []
        rate = None
        if options.profile and webhook_profile.available():
            rate = profile_rate(runs, idle)
            log.info("profiling every process with py-spy at %.0f/s", rate)
            profiled, profiles = await run_step(
                bench, len(runs) + 1, rate, PROFILE_SECONDS, "profile", clock.now() + 40, True
            )
            extra.append(profiled)
        await final_drain(bench, [*extra, *runs], clock.now() + FINAL_GRACE)
        dead = await bench.store.dead_letters()
        unanswered = bench.backlog([m for run in runs for m in run.messages])
    finally:
        stop.set()
        await asyncio.gather(*watchers, return_exceptions=True)
        await bench.client.aclose()
        await bench.cloud.aclose()
        await bench.store.aclose()
        await bench.queues.aclose()
    return Outcome(runs, idle, dead, skipped, unanswered, profiles, rate)


def _raise_on_sigterm(signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def run(options: Options) -> str:
    folder = Path(tempfile.mkdtemp(prefix="adminduk-webhook-bench-"))
    intake_port = free_port()
    fake = FakeCloudApi(folder, intake_port)
    runtime = Runtime(folder, intake_port, fake.cloud_api_url)
    previous = signal.signal(signal.SIGTERM, _raise_on_sigterm)
    info: RunInfo | None = None
    results: list[StepResult] = []
    try:
        log.info("starting the fake Cloud API and the runtime under %s", folder)
        fake.start()
        started = time.monotonic()
        runtime.start()
        runtime.wait_until_running()
        ready = time.monotonic() - started
        log.info("runtime ready after %.1f s", ready)
        outcome = asyncio.run(drive(runtime, fake, options, folder))
        results = [summarise(step, outcome.idle) for step in outcome.runs]
        info = asyncio.run(collect_run_info(runtime, options.connections, ready))
        info.idle = outcome.idle
        info.dead_letters = outcome.dead_letters
        info.skipped = outcome.skipped
        info.unanswered_at_end = outcome.unanswered_at_end
        info.profiles = outcome.profiles
        info.profile_rate = outcome.profile_rate
        info.profiling = "ran" if outcome.profiles else "off" if not options.profile else "none"
    finally:
        stopped = runtime.stop()
        fake.stop()
        signal.signal(signal.SIGTERM, previous)
        log.info("runtime stopped in %.1f s", stopped)
        if info is not None:
            info.stop_seconds = stopped
            info.runtime_log = runtime.output()
            info.simulator_log = fake.output()
        if options.keep:
            log.info("kept %s", folder)
        else:
            shutil.rmtree(folder, ignore_errors=True)
    print(render_tables(results, info))
    options.output.parent.mkdir(parents=True, exist_ok=True)
    options.output.write_text(render(info, results))
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
        help="offered messages per second (repeat for a ladder; default 100, 300, 600, 1000)",
    )
    parser.add_argument("--seconds", type=float, default=DEFAULT_SECONDS, help="per step")
    parser.add_argument(
        "--connections", type=int, default=DEFAULT_CONNECTIONS, help="HTTP connection pool"
    )
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="report file")
    parser.add_argument("--keep", action="store_true", help="keep the temporary data folder")
    parser.add_argument(
        "--no-adapt",
        dest="adapt",
        action="store_false",
        help="do not add a step at half the capacity when a ladder step falls behind",
    )
    parser.add_argument(
        "--no-profile", dest="profile", action="store_false", help="skip the py-spy step"
    )
    arguments = parser.parse_args(argv)
    rates = tuple(arguments.rate) if arguments.rate else DEFAULT_RATES
    return Options(
        rates,
        arguments.seconds,
        arguments.connections,
        arguments.output,
        arguments.keep,
        arguments.adapt,
        arguments.profile,
    )


def main(argv: Sequence[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    output = run(parse_options(argv))
    print(f"\nwritten to {output}")


if __name__ == "__main__":
    main()
