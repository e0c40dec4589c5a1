"""The benchmark report: the machine it ran on, the settings, the tables, what they mean."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from benchmarks.interpret import TARGET_SHARE, interpretation, side_by_side, side_by_side_verdict
from benchmarks.measure import CaseResult, CpuCost, PacedResult, Report, percentile

APPEND_HEADER: Final = (
    "Case",
    "Writers",
    "Events",
    "Events/s",
    "p50 ms",
    "p90 ms",
    "p99 ms",
    "Commits",
    "Events/commit",
    "CPU ms/event: bench",
    "Postgres",
    "all",
    "Cores: ours",
    "rest",
    "stolen",
    "Errors",
)
SIDE_BY_SIDE_HEADER: Final = (
    "Writers",
    "INSERT, own connection: events/s",
    "EventStore: events/s",
    "eventsourcing (Postgres): events/s",
    "EventStore / INSERT",
    "EventStore / eventsourcing",
    "EventStore p50 / p99 ms",
    "Events/commit",
)
PACED_HEADER: Final = (
    "Offered/s",
    "Events",
    "Received",
    "Achieved/s",
    "Events/commit",
    "Append p50 / p99 ms",
    "Issued -> consumer p50 / p90 / p99 / max ms",
    "Returned -> consumer p50 / p99 ms",
    "CPU ms/event: bench / Postgres / NATS / all",
    "Cores: ours / rest / stolen",
)


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def quantiles(values: Sequence[float], fractions: Sequence[float]) -> str:
    return " / ".join(f"{percentile(values, fraction):.1f}" for fraction in fractions)


def cpu_split(cpu: CpuCost) -> str:
    return f"{cpu.client:.3f} / {cpu.postgres:.3f} / {cpu.nats:.3f} / {cpu.total:.3f}"


def cores_split(cpu: CpuCost) -> str:
    return f"{cpu.cores:.2f} / {cpu.rest:.2f} / {cpu.stolen:.2f}"


def append_row(case: CaseResult) -> list[str]:
    return [
        case.name,
        str(case.writers),
        f"{case.events:,}",
        f"{case.rate:,.0f}",
        f"{case.latency(0.50):.2f}",
        f"{case.latency(0.90):.2f}",
        f"{case.latency(0.99):.2f}",
        f"{case.commits:,}",
        f"{case.events_per_commit:.1f}",
        f"{case.cpu.client:.3f}",
        f"{case.cpu.postgres:.3f}",
        f"{case.cpu.total:.3f}",
        f"{case.cpu.cores:.2f}",
        f"{case.cpu.rest:.2f}",
        f"{case.cpu.stolen:.2f}",
        str(case.errors),
    ]


def paced_row(run: PacedResult) -> list[str]:
    return [
        f"{run.offered_rate:,.0f}",
        f"{run.events:,}",
        f"{run.received:,}",
        f"{run.achieved_rate:,.0f}",
        f"{run.events_per_commit:.1f}",
        quantiles(run.append_ms, (0.5, 0.99)),
        quantiles(run.visible_ms, (0.5, 0.9, 0.99)) + f" / {max(run.visible_ms, default=0):.1f}",
        quantiles(run.after_commit_ms, (0.5, 0.99)),
        cpu_split(run.cpu),
        cores_split(run.cpu),
    ]


def side_by_side_table(report: Report) -> str:
    rows = [
        [
            str(row.writers),
            f"{row.plain.rate:,.0f}",
            f"{row.store.rate:,.0f}",
            f"{row.library.rate:,.0f}",
            f"{row.of_plain:.2f}" + ("" if row.of_plain >= TARGET_SHARE else " (below target)"),
            f"{row.of_library:.2f}x" + ("" if row.of_library > 1 else " (behind)"),
            f"{row.store.latency(0.5):.2f} / {row.store.latency(0.99):.2f}",
            f"{row.store.events_per_commit:.1f}",
        ]
        for row in side_by_side(report.appends)
    ]
    return table(SIDE_BY_SIDE_HEADER, rows)


def relay_table(report: Report) -> str:
    relay = report.relay
    rows = [
        ["Backlog relayed", f"{relay.events:,} events in {relay.elapsed.wall:.2f} s"],
        ["Throughput", f"{relay.rate:,.0f} events/s"],
        ["CPU ms/event: bench (the relay) / Postgres / NATS / all", cpu_split(relay.cpu)],
        ["Cores: ours / rest / stolen", cores_split(relay.cpu)],
        [
            "Messages in ADMINDUK_EVENTS / published by the relay / appended",
            f"{report.stream_messages:,} / {report.published:,} / "
            f"{report.expected_messages:,} (backlog and paced runs)",
        ],
    ]
    return table(("Measure", "Value"), rows)


def render_tables(report: Report) -> str:
    return "\n\n".join(
        [
            "Appends side by side (events/s; the store against the fair INSERT and the library)",
            side_by_side_table(report),
            side_by_side_verdict(report),
            "Appends (single-event appends, one new stream each)",
            table(APPEND_HEADER, [append_row(case) for case in report.appends]),
            "Relay draining a backlog (event store -> JetStream)",
            relay_table(report),
            "Paced single appends with the relay running and a JetStream consumer",
            table(PACED_HEADER, [paced_row(run) for run in report.paced]),
        ]
    )


def machine_section(report: Report) -> str:
    machine, run = report.machine, report.run
    settings = ", ".join(f"`{name}={value}`" for name, value in machine.postgres_settings.items())
    return "\n".join(
        [
            f"- Date: {machine.date}",
            f"- CPUs (nproc): {machine.cpus}; CPU model: {machine.cpu_model}",
            f"- Memory: {machine.memory_gib:.1f} GiB; Linux {machine.kernel}",
            f"- Python {machine.python}, event loop {machine.event_loop} (as in the services)",
            f"- PostgreSQL {machine.postgres} (embedded, durable): {settings}",
            f"- {machine.nats} (embedded, JetStream file storage)",
            f"- Data folder on: {machine.filesystem}",
            f"- Whole run: {run.wall:.0f} s (without the servers' start-up), keeping on "
            f"average {run.ours / run.wall:.2f} cores busy in our processes and "
            f"{run.rest / run.wall:.2f} elsewhere (kernel interrupt work, other load), and "
            f"losing {run.steal / run.wall:.2f} cores' worth of time to other guests of the "
            "hypervisor (steal)",
        ]
    )


def settings_section(report: Report) -> str:
    paced = ", ".join(f"{run.events:,} at {run.offered_rate:,.0f}/s" for run in report.paced)
    return "\n".join(
        [
            f"- Append cases: {report.events_per_case:,} events per case, split evenly over "
            "the writers (asyncio tasks in the benchmark process, each appending in a loop); "
            "every append is one event (about 0.6 kB of JSON) to a new stream with expected "
            "version `NO_STREAM`. Latency is measured around each call. Each case is "
            "preceded by an unmeasured warm-up of 200 events.",
            "- `EventStore, 1 process`: all writers share one `EventStore` (one group-commit "
            "batcher, default pool). `EventStore x 4`: writer *i* uses store *i mod 4*, each "
            "with its own pool and batcher, as four processes would.",
            "- `INSERT, own connection` (the fair baseline): `INSERT INTO bench_plain (data) "
            "VALUES ($1)` into `(id bigserial PRIMARY KEY, data jsonb)`, the whole event "
            "(data and metadata) as JSON, each its own durable autocommit statement on a "
            "connection the writer holds for the whole case: one round trip per event, no "
            "pool acquire or reset in between.",
            "- `eventsourcing (Postgres)`: the `eventsourcing` library's application with "
            "`PERSISTENCE_MODULE=eventsourcing.postgres` (its `PostgresApplicationRecorder`, "
            "a psycopg 3 pool of one connection per writer, its defaults otherwise). The "
            "library is synchronous, so each writer is a thread; each call saves one new "
            "aggregate whose one event carries the same data and metadata as the store's "
            "event. The library's own table, in the same database.",
            "- The three cases run interleaved per concurrency (INSERT, store, library at 1 "
            "writer, then at 4, then at 16), so drift of a shared machine hits all three.",
            "- Commits of the store are counted as distinct `recorded_at` values (one per "
            "append transaction). CPU is per process tree: the benchmark process, the "
            "postmaster with all its backends, the NATS server. *Cores: ours* is their CPU "
            "time per wall second; *rest* the machine's remaining busy time per second "
            "(`/proc/stat`: the kernel's network and disk interrupt work, which is charged "
            "to no process, plus any other load); *stolen* the time the hypervisor ran "
            "other guests instead. High *rest* or *stolen* means noisy figures.",
            f"- Relay: `Relay(batch_size={report.relay_batch})` as a task of the benchmark "
            f"process, started on a backlog of {report.relay.events:,} events; timed from "
            "the moment it holds the relay lock until `stream_info` counts every message.",
            f"- Paced runs ({paced}), the relay still running: single appends started on a "
            "fixed schedule, each its own task (open loop), received by an ordered push "
            "consumer (deliver policy `new`) in the same process; timed from the first "
            "append until the last event was received.",
        ]
    )


def render(report: Report) -> str:
    return "\n".join(
        [
            "# Benchmarks",
            "",
            "Written by `make bench` (`benchmarks/run.py`) and regenerated on every run; "
            "change the generator, not this file.",
            "",
            "## Machine",
            "",
            machine_section(report),
            "",
            "## Settings",
            "",
            settings_section(report),
            "",
            "## Appends side by side",
            "",
            side_by_side_table(report),
            "",
            side_by_side_verdict(report),
            "",
            "## Appends",
            "",
            table(APPEND_HEADER, [append_row(case) for case in report.appends]),
            "",
            "## Relay to JetStream",
            "",
            relay_table(report),
            "",
            "## Paced single appends, relayed and consumed",
            "",
            table(PACED_HEADER, [paced_row(run) for run in report.paced]),
            "",
            "## What the numbers say",
            "",
            interpretation(report),
            "",
            *([report.replay.rstrip(), ""] if report.replay else []),
        ]
    )
