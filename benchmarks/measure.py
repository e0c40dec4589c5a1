"""Measuring helpers of the benchmarks: latency percentiles, CPU use, result records.

CPU is counted per process tree (this process, the Postgres postmaster with its backends,
the NATS server) so that other load on a shared machine does not end up in the figures;
the machine-wide busy and stolen time are kept beside it to show how noisy the run was.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from benchmarks.machine import MachineInfo

PROC_STAT = Path("/proc/stat")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
# /proc/stat's first line: cpu user nice system idle iowait irq softirq steal guest guest_nice
_BUSY_FIELDS = (0, 1, 2, 5, 6)
_STEAL_FIELD = 7

Operation = Callable[[], Awaitable[None]]
"""One measured unit of work (one append, one insert)."""


def machine_cpu_seconds() -> tuple[float, float]:
    """(busy, stolen) CPU seconds of the whole machine since boot, all cores."""
    fields = [int(value) for value in PROC_STAT.read_text().splitlines()[0].split()[1:]]
    busy = sum(fields[index] for index in _BUSY_FIELDS)
    return busy / CLOCK_TICKS, fields[_STEAL_FIELD] / CLOCK_TICKS


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds of process ``pid``, its exited (reaped) children and its live children:
    for Postgres, the postmaster and every backend it ever had."""
    with contextlib.suppress(psutil.NoSuchProcess):
        parent = psutil.Process(pid)
        times = parent.cpu_times()
        total = float(times.user + times.system + times.children_user + times.children_system)
        for child in parent.children(recursive=True):
            with contextlib.suppress(psutil.NoSuchProcess):
                child_times = child.cpu_times()
                total += float(child_times.user + child_times.system)
        return total
    return 0.0


@dataclass(frozen=True)
class Sample:
    """Wall time and CPU times at one instant, to subtract from a later one."""

    wall: float
    client: float
    postgres: float
    nats: float
    machine: float
    steal: float


@dataclass(frozen=True)
class Elapsed:
    """Seconds between two samples: wall, and CPU of each party."""

    wall: float
    client: float
    postgres: float
    nats: float
    machine: float
    steal: float

    @property
    def ours(self) -> float:
        """CPU seconds of the benchmark, Postgres and NATS together."""
        return self.client + self.postgres + self.nats

    @property
    def rest(self) -> float:
        """Busy CPU seconds of the machine outside our three process trees: the kernel's
        interrupt work (network, disk), which no process is charged for, and other load."""
        return max(0.0, self.machine - self.ours)


@dataclass(frozen=True)
class Meter:
    """Samples the CPU of the benchmark process and of the two servers' process trees."""

    postgres_pid: int
    nats_pid: int

    def sample(self) -> Sample:
        machine, steal = machine_cpu_seconds()
        return Sample(
            wall=time.perf_counter(),
            client=time.process_time(),
            postgres=tree_cpu_seconds(self.postgres_pid),
            nats=tree_cpu_seconds(self.nats_pid),
            machine=machine,
            steal=steal,
        )

    def since(self, start: Sample) -> Elapsed:
        end = self.sample()
        return Elapsed(
            wall=end.wall - start.wall,
            client=end.client - start.client,
            postgres=end.postgres - start.postgres,
            nats=end.nats - start.nats,
            machine=end.machine - start.machine,
            steal=end.steal - start.steal,
        )


def percentile(values: Sequence[float], fraction: float) -> float:
    """The ``fraction`` quantile (0 < fraction < 1) of ``values``, linear interpolation."""
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    cuts = statistics.quantiles(values, n=1000, method="inclusive")
    return cuts[round(fraction * 1000) - 1]


@dataclass(frozen=True)
class CpuCost:
    """CPU milliseconds per event, by party."""

    client: float
    postgres: float
    nats: float
    cores: float
    """CPU seconds of all three per wall second: cores they kept busy."""
    rest: float
    """Cores kept busy outside them meanwhile (see :attr:`Elapsed.rest`)."""
    stolen: float
    """Cores' worth of time the hypervisor gave to other guests meanwhile."""

    @classmethod
    def of(cls, elapsed: Elapsed, events: int) -> CpuCost:
        per_event = 1000 / events if events else float("nan")
        return cls(
            client=elapsed.client * per_event,
            postgres=elapsed.postgres * per_event,
            nats=elapsed.nats * per_event,
            cores=elapsed.ours / elapsed.wall,
            rest=elapsed.rest / elapsed.wall,
            stolen=elapsed.steal / elapsed.wall,
        )

    @property
    def total(self) -> float:
        return self.client + self.postgres + self.nats


@dataclass(frozen=True)
class CaseResult:
    """The figures of one throughput case."""

    name: str
    writers: int
    events: int
    elapsed: Elapsed
    latencies_ms: Sequence[float] = field(repr=False)
    commits: int
    errors: int

    @property
    def rate(self) -> float:
        return self.events / self.elapsed.wall

    def latency(self, fraction: float) -> float:
        return percentile(self.latencies_ms, fraction)

    @property
    def events_per_commit(self) -> float:
        return self.events / self.commits if self.commits else float("nan")

    @property
    def cpu(self) -> CpuCost:
        return CpuCost.of(self.elapsed, self.events)


@dataclass(frozen=True)
class RelayResult:
    """The relay draining a backlog into JetStream."""

    events: int
    elapsed: Elapsed

    @property
    def rate(self) -> float:
        return self.events / self.elapsed.wall

    @property
    def cpu(self) -> CpuCost:
        return CpuCost.of(self.elapsed, self.events)


@dataclass(frozen=True)
class PacedResult:
    """Single appends at a fixed offered rate (open loop) while the relay runs and a
    JetStream consumer receives them."""

    offered_rate: float
    events: int
    received: int
    commits: int
    elapsed: Elapsed
    """From the first append issued until the last event was received."""
    append_ms: Sequence[float] = field(repr=False)
    """Append issued -> append returned."""
    visible_ms: Sequence[float] = field(repr=False)
    """Append issued -> event received by the consumer."""
    after_commit_ms: Sequence[float] = field(repr=False)
    """Append returned -> event received by the consumer."""

    @property
    def achieved_rate(self) -> float:
        return self.received / self.elapsed.wall

    @property
    def events_per_commit(self) -> float:
        return self.events / self.commits if self.commits else float("nan")

    @property
    def cpu(self) -> CpuCost:
        """Per event: its append, its relaying and its delivery to the consumer."""
        return CpuCost.of(self.elapsed, self.events)


@dataclass(frozen=True)
class Report:
    """Everything one run measured."""

    machine: MachineInfo
    events_per_case: int
    relay_batch: int
    appends: Sequence[CaseResult]
    relay: RelayResult
    paced: Sequence[PacedResult]
    stream_messages: int
    """Messages in the JetStream stream at the end: every event relayed exactly once."""
    published: int
    """Events the relay published."""
    run: Elapsed
    replay: str = ""
    """The replay and rebuild section (``benchmarks.replay``), markdown."""

    @property
    def expected_messages(self) -> int:
        return self.relay.events + sum(run.events for run in self.paced)
