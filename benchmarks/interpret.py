"""What the figures say, in words written from the figures of the run itself."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from benchmarks.measure import CaseResult, CpuCost, PacedResult, Report, percentile

TARGET_RATE: Final = 1000
"""WhatsApp messages per second the system is meant to take on 2 cores."""
NOISY_CORES: Final = 0.25
"""Cores of other load (rest + stolen) above which a measurement is flagged."""


def find(cases: Sequence[CaseResult], prefix: str, writers: int) -> CaseResult:
    for case in cases:
        if case.name.startswith(prefix) and case.writers == writers:
            return case
    raise LookupError(f"no case {prefix!r} with {writers} writers")


def at_rate(runs: Sequence[PacedResult], rate: float) -> PacedResult:
    for run in runs:
        if run.offered_rate == rate:
            return run
    raise LookupError(f"no paced run at {rate}/s")


PLAIN: Final = "INSERT, own connection"
STORE: Final = "EventStore, 1 process"
LIBRARY: Final = "eventsourcing"
TARGET_SHARE: Final = 0.5
"""The store's appends must reach at least this share of the fair INSERT's rate."""


@dataclass(frozen=True)
class SideBySide:
    """One concurrency of the three cases measured side by side."""

    writers: int
    plain: CaseResult
    store: CaseResult
    library: CaseResult

    @property
    def of_plain(self) -> float:
        return self.store.rate / self.plain.rate

    @property
    def of_library(self) -> float:
        return self.store.rate / self.library.rate

    @property
    def meets_target(self) -> bool:
        return self.of_plain >= TARGET_SHARE and self.of_library > 1


def side_by_side(cases: Sequence[CaseResult]) -> list[SideBySide]:
    """The concurrencies at which all three cases ran, in order."""
    writers = sorted({case.writers for case in cases if case.name.startswith(LIBRARY)})
    return [
        SideBySide(w, find(cases, PLAIN, w), find(cases, STORE, w), find(cases, LIBRARY, w))
        for w in writers
    ]


def _listing(items: Sequence[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _writers(count: int) -> str:
    return f"{count} writer" if count == 1 else f"{count} writers"


def _library_trend(rows: Sequence[SideBySide]) -> str:
    rates = [row.library.rate for row in rows]
    listed = _listing([f"{rate:,.0f}" for rate in rates])
    if max(rates) <= 1.5 * min(rates):
        return f"its rate stays within {max(rates) / min(rates):.2f}x ({listed} events/s)"
    return f"its rate is {listed} events/s"


def side_by_side_verdict(report: Report) -> str:
    """The verdict on the side-by-side table, from its own figures."""
    rows = side_by_side(report.appends)
    shares = _listing([f"{row.of_plain:.2f}" for row in rows])
    times = _listing([f"{row.of_library:.2f}x" for row in rows])
    counts = _listing([str(row.writers) for row in rows])
    figures = (
        f"At {counts} writers the store reached {shares} of the fair INSERT's rate and "
        f"{times} the library's."
    )
    short_of_plain = [row for row in rows if row.of_plain < TARGET_SHARE]
    behind_library = [row for row in rows if row.of_library <= 1]
    if not short_of_plain and not behind_library:
        verdict = (
            f"The target (at least {TARGET_SHARE:.0%} of the fair INSERT and ahead of the "
            "library at every concurrency) is met in this run."
        )
    else:
        misses = [
            f"{row.store.rate:,.0f} events/s at {_writers(row.writers)} is "
            f"{row.of_plain:.2f} of the INSERT's {row.plain.rate:,.0f}"
            for row in short_of_plain
        ] + [
            f"at {_writers(row.writers)} the library's {row.library.rate:,.0f} events/s is "
            f"ahead of the store's {row.store.rate:,.0f}"
            for row in behind_library
        ]
        verdict = (
            f"The target (at least {TARGET_SHARE:.0%} of the fair INSERT and ahead of the "
            f"library at every concurrency) is missed in this run: {'; '.join(misses)}."
        )
    noisy_rows = [
        row
        for row in rows
        if any(
            case.cpu.rest + case.cpu.stolen > NOISY_CORES
            for case in (row.plain, row.store, row.library)
        )
    ]
    noise = ""
    if noisy_rows:
        noise = (
            " Other load shared the machine during the cases with "
            f"{_listing([_writers(row.writers) for row in noisy_rows])} (see **Noise** "
            "below): those ratios carry its error, and a rerun on a quiet machine may move "
            "them either way."
        )
    return f"{figures} {verdict}{noise} {_why(rows)}"


def _why(rows: Sequence[SideBySide]) -> str:
    """Where the store stands closest to the INSERT, and why the library falls behind."""
    gap = min(rows, key=lambda row: row.of_plain)
    cost = (
        f"{gap.store.cpu.total:.2f} CPU ms per event against {gap.plain.cpu.total:.2f} for "
        f"the INSERT at {_writers(gap.writers)}"
    )
    if gap.store.events_per_commit < 1.5:
        where = (
            f"The store is closest to the INSERT's cost at {_writers(gap.writers)}, where "
            f"its batches held {gap.store.events_per_commit:.1f} events: each append then "
            "does in one round trip and one commit what the INSERT does, plus the append "
            "lock, the reads its decision needs (repeated event ids and inbox records, "
            "stream versions, the head position), five more index entries and `pg_notify`, "
            f"and the hand-over to the group-commit writer in the client: {cost}."
        )
    else:
        where = (
            f"The store is closest to the INSERT at {_writers(gap.writers)}, with "
            f"{gap.store.events_per_commit:.1f} events per commit: {cost}, but with one "
            "append transaction in flight at a time (the append lock is held through each "
            "commit's flush), where the inserts commit on "
            f"{gap.writers} backends at once."
        )
    return (
        f"{where} The library takes an exclusive lock on its table for every append "
        f"transaction and does not batch concurrent callers: {_library_trend(rows)}, "
        f"while the store's {_store_trend(rows)}."
    )


def _store_trend(rows: Sequence[SideBySide]) -> str:
    rates = [row.store.rate for row in rows]
    listed = _listing([f"{rate:,.0f}" for rate in rates])
    batches = _listing([f"{row.store.events_per_commit:.1f}" for row in rows])
    if all(a < b for a, b in itertools.pairwise(rates)):
        return f"rises ({listed} events/s) with its batches ({batches} events per commit)"
    return f"is {listed} events/s with batches of {batches} events per commit"


def single_writer_paragraph(cases: Sequence[CaseResult]) -> str:
    plain, store = find(cases, PLAIN, 1), find(cases, STORE, 1)
    return (
        f"**One writer.** The store appends {store.rate:,.0f} events/s (p50 "
        f"{store.latency(0.50):.2f} ms) against {plain.rate:,.0f} rows/s (p50 "
        f"{plain.latency(0.50):.2f} ms) for the fair `INSERT`. With nobody to share a "
        "batch with, each append is a transaction of its own, but one statement, one round "
        "trip: `append_events` takes the advisory lock, reads everything the decision "
        "needs, writes the events and inbox records and calls `pg_notify`, and the "
        "statement commits as it returns. Only a batch with a conflict, a repetition or a "
        "repeated inbox record falls back to the decision in Python (`BEGIN` with the "
        "lock, the read, the write, `COMMIT`: four round trips). It pays the same WAL "
        f"flush per event as the insert and costs {store.cpu.total / plain.cpu.total:.1f}x "
        "its CPU per event. As the append lock lets one append transaction run at a time, "
        "this cycle would cap the store without batching."
    )


def versus_plain(store: CaseResult, plain: CaseResult) -> str:
    if store.rate >= plain.rate:
        return (
            f"{store.rate / plain.rate:.1f}x the {plain.rate:,.0f} rows/s of "
            f"{plain.writers} concurrent autocommit inserts"
        )
    return (
        f"still below the {plain.rate:,.0f} rows/s of {plain.writers} concurrent autocommit "
        "inserts, which run as that many transactions in parallel on as many backends "
        "while the store, by design, has one append transaction in flight per process "
        "(positions must commit in order), and a closed loop of 16 writers never fills a "
        "batch beyond 16"
    )


def group_commit_paragraph(cases: Sequence[CaseResult]) -> str:
    store_1, store_4 = find(cases, STORE, 1), find(cases, STORE, 4)
    plain_16, store_16 = find(cases, PLAIN, 16), find(cases, STORE, 16)
    return (
        f"**Group commit.** With 4 writers the batcher put {store_4.events_per_commit:.1f} "
        f"events into each commit, with 16 writers {store_16.events_per_commit:.1f}; "
        f"throughput rose from {store_1.rate:,.0f} to {store_4.rate:,.0f} to "
        f"{store_16.rate:,.0f} events/s ({store_16.rate / store_1.rate:.1f}x the single "
        f"writer) while the CPU per event fell from {store_1.cpu.total:.2f} to "
        f"{store_16.cpu.total:.2f} ms. That is what the group commit buys: the lock, the "
        "reads, the WAL flush and the round trips are paid once per batch, so the store "
        "gets cheaper per event the busier it is. At 16 writers it is "
        f"{versus_plain(store_16, plain_16)}. Per event it costs {store_16.cpu.total:.2f} "
        f"CPU ms against {plain_16.cpu.total:.2f} for the fair insert, at a p99 of "
        f"{store_16.latency(0.99):.1f} ms against {plain_16.latency(0.99):.1f} ms."
    )


def processes_paragraph(cases: Sequence[CaseResult]) -> str:
    single = find(cases, STORE, 16)
    multi = find(cases, "EventStore x", 16)
    return (
        "**Several processes.** The same 16 writers spread over 4 `EventStore` instances "
        f"reached {multi.rate:,.0f} events/s ({multi.rate / single.rate:.2f}x of one "
        f"instance) with {multi.events_per_commit:.1f} events per commit, a p99 of "
        f"{multi.latency(0.99):.1f} ms and {multi.cpu.total:.2f} CPU ms per event. The "
        "append lock is taken at the start of each batch transaction and held until its "
        "commit has been flushed, so the processes take turns, each batch holds only one "
        "process's requests, and every process waits out the others' flushes: more "
        "appending processes mean smaller batches and lock waits, not more parallelism. "
        "High-volume appends should go through as few processes as possible."
    )


def keeps_up(run: PacedResult) -> str:
    if run.received == run.events and run.achieved_rate >= 0.95 * run.offered_rate:
        return (
            f"it kept up: all {run.events:,} events reached the consumer, "
            f"{run.achieved_rate:,.0f}/s over the run"
        )
    return (
        f"it did not keep up: {run.received:,} of {run.events:,} events reached the "
        f"consumer, {run.achieved_rate:,.0f}/s over the run"
    )


def target_verdict(cpu: CpuCost, cores: int) -> str:
    share = cpu.cores / cores
    left = cores - cpu.cores
    if share < 0.35:
        judgement = "so the event plumbing fits the target with room to spare"
    elif share < 0.75:
        judgement = (
            "so the plumbing fits, but it takes a large share and the rest of the system "
            "has to live in what is left"
        )
    else:
        judgement = f"so the target is out of reach on {cores} cores as measured"
    return (
        f"That is {share:.0%} of the machine, leaving about {left:.1f} cores, {judgement}. "
        "Still to be paid from those cores and not measured here: the webhook's HTTP "
        "handling and signature check, the consumers' own work and the events they append "
        "(which pass through the store and the relay again) and the projections."
    )


def target_paragraph(report: Report) -> str:
    run = at_rate(report.paced, TARGET_RATE)
    store_16 = find(report.appends, STORE, 16)
    cores, cpu = report.machine.cpus, run.cpu
    return (
        f"**The {TARGET_RATE:,} WhatsApp messages/s target on {cores} cores.** Appends "
        f"alone are not the limit: 16 writers reached {store_16.rate:,.0f} events/s "
        f"({store_16.rate / TARGET_RATE:.1f}x the target), and with more load in flight "
        f"the batches grow. The paced run offered {run.events:,} single appends at "
        f"{run.offered_rate:,.0f}/s, open loop, with the relay publishing each event and "
        f"a JetStream consumer receiving it, and {keeps_up(run)}; batches held "
        f"{run.events_per_commit:.1f} events on average, appends took "
        f"{percentile(run.append_ms, 0.5):.1f} ms (p50) / "
        f"{percentile(run.append_ms, 0.99):.1f} ms (p99), and events were at the consumer "
        f"{percentile(run.visible_ms, 0.5):.1f} / {percentile(run.visible_ms, 0.99):.1f} "
        f"ms after their append was issued. Our processes kept {cpu.cores:.2f} of the "
        f"{cores} cores busy, {cpu.total:.2f} CPU ms per event ({cpu.client:.2f} in the "
        f"benchmark process, which played intake service, relay and consumer at once, "
        f"{cpu.postgres:.2f} in Postgres, {cpu.nats:.2f} in NATS); in production those "
        "roles are separate processes but share the same cores, and the benchmark "
        f"process competed with the servers for them here too. {target_verdict(cpu, cores)}"
    )


def latency_paragraph(report: Report) -> str:
    run = report.paced[0]
    return (
        f"**End to end.** At {run.offered_rate:,.0f} single appends/s events were seen by a "
        f"JetStream consumer {percentile(run.visible_ms, 0.5):.1f} ms (p50) / "
        f"{percentile(run.visible_ms, 0.99):.1f} ms (p99) after the append was issued and "
        f"{percentile(run.after_commit_ms, 0.5):.1f} / "
        f"{percentile(run.after_commit_ms, 0.99):.1f} ms after it returned. The relay is "
        "woken by `LISTEN/NOTIFY`, not by its 1 s polling fallback, so what remains is "
        "the append's own transaction and flush, then one read, the JetStream publish and "
        "its acknowledgement (a file-store write) and the push to the consumer. At this "
        f"rate batches held {run.events_per_commit:.1f} events, next to no batching, which "
        f"is why an event cost {run.cpu.total:.1f} CPU ms end to end: the relay too works "
        "event by event, with a checkpoint update per batch (committed without waiting "
        "for a flush: a lost checkpoint only means a deduplicated republish). The "
        f"backlog drain ({report.relay.rate:,.0f} events/s at "
        f"{report.relay.cpu.total:.2f} ms per event) shows how cheap relaying gets with "
        f"batches of {report.relay_batch}."
    )


def noisy(label: str, cpu: CpuCost) -> str | None:
    other = cpu.rest + cpu.stolen
    return f"{label} ({other:.1f})" if other > NOISY_CORES else None


def noise_paragraph(report: Report) -> str | None:
    candidates = [
        noisy(f"{case.name} with {_writers(case.writers)}", case.cpu) for case in report.appends
    ]
    candidates.append(noisy("the relay backlog", report.relay.cpu))
    candidates += [noisy(f"paced {run.offered_rate:,.0f}/s", run.cpu) for run in report.paced]
    flagged = [label for label in candidates if label is not None]
    if not flagged:
        return None
    return (
        "**Noise.** Other load shared the machine during: "
        + "; ".join(flagged)
        + " (cores busy outside our processes or stolen by the hypervisor, in brackets). "
        "Part of it is the kernel's interrupt work for our own traffic, but beyond "
        f"{NOISY_CORES} cores it is mostly other processes or other virtual machines: those "
        "rows understate what the machine can do and their latency tails are inflated. "
        "Compare runs before drawing fine conclusions from them."
    )


def interpretation(report: Report) -> str:
    paragraphs = [
        single_writer_paragraph(report.appends),
        group_commit_paragraph(report.appends),
        processes_paragraph(report.appends),
        target_paragraph(report),
        latency_paragraph(report),
        noise_paragraph(report),
    ]
    return "\n\n".join(paragraph for paragraph in paragraphs if paragraph)
