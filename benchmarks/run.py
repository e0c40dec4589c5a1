"""Benchmarks of the event store's appends and of the outbox relay; run with ``make bench``.

What it measures, on its own durable (fsync on) embedded PostgreSQL and embedded NATS
started in a temporary folder:

1. ``EventStore.append`` throughput and latency with 1, 4 and 16 concurrent writers, each
   append one event to a new stream (expected version ``NO_STREAM``), the shape of WhatsApp
   intake where every webhook appends its own event. The writers share one ``EventStore``
   (one process, one group-commit batcher); one more case spreads 16 writers over 4
   stores to show what several processes contending for the append lock cost.
2. For comparison, at the same concurrency and with the same event, side by side in the
   same run: a plain durable ``INSERT`` done the fair way (each writer holds its own
   connection, one autocommit statement per event, no pool in between), and the
   ``eventsourcing`` library's Postgres application (``PostgresApplicationRecorder``), each
   writer a thread saving one new aggregate with one event per call.
3. The relay: how fast it drains a backlog of events into the JetStream stream.
4. With the relay running, single appends at a fixed offered rate (open loop): a trickle of
   200 ~5 ms apart, then the 1,000 messages/s target for 10 s. A JetStream consumer times
   append -> visible end to end; CPU shows what the target costs on this machine.

It prints the tables and rewrites ``docs/BENCHMARKS.md`` with them. Run it with::

    make bench
    .venv/bin/python -m benchmarks.run --events 5000 --relay-events 20000

It is not a pytest test (nothing here is collected); it takes one to two minutes on a
2-core machine. The helpers live beside it: ``measure`` (timing, CPU, result records),
``machine`` (what it ran on), ``report`` (tables, the document), ``interpret`` (the words).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

import asyncpg
import nats
from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import DeliverPolicy

from benchmarks import replay
from benchmarks.machine import collect_machine_info
from benchmarks.measure import (
    CaseResult,
    Meter,
    Operation,
    PacedResult,
    RelayResult,
    Report,
)
from benchmarks.report import render, render_tables
from shared.bus.jetstream import ALL_EVENTS, HEADER_MSG_ID, STREAM_NAME
from shared.bus.relay import CHECKPOINT, Relay
from shared.eventstore.envelope import NO_STREAM, Metadata, NewEvent
from shared.eventstore.store import EventStore, init_connection
from shared.runtime.embedded import EmbeddedNats, EmbeddedPostgres
from shared.runtime.service import loop_factory

log = logging.getLogger("bench")

DATABASE: Final = "bench"
PLAIN_CASE: Final = "INSERT, own connection"
STORE_CASE: Final = "EventStore, 1 process"
LIBRARY_CASE: Final = "eventsourcing (Postgres)"
CONCURRENCY: Final = (1, 4, 16)
PROCESSES: Final = 4
"""Separate ``EventStore`` instances of the cross-process case."""
WARMUP_EVENTS: Final = 200
SEED_CHUNK: Final = 1000
RELAY_BATCH: Final = 500
PACED_RUNS: Final = ((200, 200), (1000, 10_000))
"""(appends per second, appends): a trickle ~5 ms apart, then the target rate for 10 s."""
WAIT_TIMEOUT: Final = 120.0
DEFAULT_OUTPUT: Final = Path(__file__).resolve().parents[1] / "docs" / "BENCHMARKS.md"

SAMPLE_TEXT: Final = (
    "Selamat pagi, saya mau mengurus akta kelahiran anak saya yang lahir minggu lalu. "
    "Apa saja syaratnya dan apakah bisa diurus lewat WhatsApp?"
)


@dataclass(frozen=True)
class Options:
    events: int
    relay_events: int
    output: Path
    replay_events: int = replay.DEFAULT_EVENTS


@dataclass(frozen=True)
class Target:
    """What the cases run against and how they are metered."""

    dsn: str
    nats_url: str
    meter: Meter


# -- workload ----------------------------------------------------------------------------


def intake_event() -> NewEvent:
    """An event shaped like the one a WhatsApp webhook appends."""
    message_id = f"wamid.{uuid.uuid4().hex}"
    return NewEvent(
        event_type="WhatsAppMessageReceived",
        data={
            "message_id": message_id,
            "sender_hash": uuid.uuid4().hex + uuid.uuid4().hex,
            "text": SAMPLE_TEXT,
            "received_at": datetime.now(UTC).isoformat(),
        },
        metadata=Metadata(correlation_id=uuid.uuid4(), actor="system:intake"),
    )


def new_stream_id() -> str:
    return f"request-{uuid.uuid4().hex}"


def append_operation(store: EventStore) -> Operation:
    async def append() -> None:
        await store.append(new_stream_id(), [intake_event()], NO_STREAM)

    return append


def insert_operation(connection: asyncpg.Connection) -> Operation:
    async def insert() -> None:
        await connection.execute(
            "INSERT INTO bench_plain (data) VALUES ($1)", intake_event().model_dump(mode="json")
        )

    return insert


# -- the case driver ---------------------------------------------------------------------


def shares(total: int, writers: int) -> list[int]:
    """``total`` split over ``writers`` as evenly as possible."""
    return [total // writers + (1 if index < total % writers else 0) for index in range(writers)]


async def run_writer(
    operation: Operation, count: int, latencies: list[float], errors: list[str]
) -> None:
    for _ in range(count):
        started = time.perf_counter()
        try:
            await operation()
        except Exception as error:  # noqa: BLE001 - counted and reported, the run goes on
            errors.append(f"{type(error).__name__}: {error}")
            continue
        latencies.append((time.perf_counter() - started) * 1000)


async def drive(
    meter: Meter,
    name: str,
    total: int,
    writers: int,
    operation_for: Callable[[int], Operation],
) -> CaseResult:
    """Run ``total`` operations on ``writers`` concurrent tasks, writer i calling
    ``operation_for(i)``. ``commits`` is left at one per operation."""
    latencies: list[float] = []
    errors: list[str] = []
    start = meter.sample()
    await asyncio.gather(
        *(
            run_writer(operation_for(index), count, latencies, errors)
            for index, count in enumerate(shares(total, writers))
        )
    )
    elapsed = meter.since(start)
    if errors:
        log.warning("%s: %d operations failed, first: %s", name, len(errors), errors[0])
    return CaseResult(
        name=name,
        writers=writers,
        events=len(latencies),
        elapsed=elapsed,
        latencies_ms=latencies,
        commits=len(latencies),
        errors=len(errors),
    )


# -- append cases ------------------------------------------------------------------------


async def count_commits(pool: asyncpg.Pool, after_position: int) -> int:
    """Append transactions since ``after_position``: a batch shares one ``recorded_at``
    (the transaction's ``now()``), so distinct values count transactions."""
    value = await pool.fetchval(
        "SELECT count(DISTINCT recorded_at) FROM events WHERE position > $1", after_position
    )
    return int(value)


async def store_case(
    target: Target, name: str, stores: Sequence[EventStore], writers: int, total: int
) -> CaseResult:
    def operation_for(index: int) -> Operation:
        return append_operation(stores[index % len(stores)])

    await drive(target.meter, "warm-up", WARMUP_EVENTS, writers, operation_for)
    before = await stores[0].last_position()
    result = await drive(target.meter, name, total, writers, operation_for)
    return replace(result, commits=await count_commits(stores[0].pool, before))


async def plain_case(target: Target, writers: int, total: int) -> CaseResult:
    """The fair baseline: every writer keeps its own connection for the whole case, so each
    insert is one autocommit statement, one round trip, with no pool acquire or reset."""
    connections = [await asyncpg.connect(target.dsn) for _ in range(writers)]
    for connection in connections:
        await init_connection(connection)

    def operation_for(index: int) -> Operation:
        return insert_operation(connections[index])

    try:
        await drive(target.meter, "warm-up", WARMUP_EVENTS, writers, operation_for)
        return await drive(target.meter, PLAIN_CASE, total, writers, operation_for)
    finally:
        for connection in connections:
            await connection.close()


class IntakeMessage(Aggregate):
    """The library's aggregate for the comparison: created by one event that carries the
    same data and metadata as the store's ``WhatsAppMessageReceived``."""

    @event("Received")
    def __init__(self, data: dict[str, Any], metadata: dict[str, Any]) -> None:
        self.data = data
        self.metadata = metadata


class LibraryApplication(Application[uuid.UUID]):
    """The ``eventsourcing`` library's Postgres application, as its documentation sets it
    up: ``PERSISTENCE_MODULE=eventsourcing.postgres``, a connection pool per application."""

    def receive(self) -> None:
        new = intake_event()
        self.save(IntakeMessage(new.data, new.metadata.model_dump(mode="json")))


def library_environment(dsn: str, writers: int) -> dict[str, str]:
    url = urlsplit(dsn)
    return {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": url.path.lstrip("/"),
        "POSTGRES_HOST": url.hostname or "127.0.0.1",
        "POSTGRES_PORT": str(url.port or 5432),
        "POSTGRES_USER": url.username or "postgres",
        "POSTGRES_PASSWORD": url.password or "",
        "POSTGRES_POOL_SIZE": str(writers),
    }


def run_thread_writer(
    operation: Callable[[], None], count: int, latencies: list[float], errors: list[str]
) -> None:
    for _ in range(count):
        started = time.perf_counter()
        try:
            operation()
        except Exception as error:  # noqa: BLE001 - counted and reported, the run goes on
            errors.append(f"{type(error).__name__}: {error}")
            continue
        latencies.append((time.perf_counter() - started) * 1000)


async def drive_threads(
    meter: Meter, name: str, total: int, writers: int, operation: Callable[[], None]
) -> CaseResult:
    """:func:`drive` for a synchronous library: ``writers`` threads, each its share."""
    latencies: list[float] = []
    errors: list[str] = []
    loop = asyncio.get_running_loop()
    with ThreadPoolExecutor(max_workers=writers, thread_name_prefix="library") as threads:
        start = meter.sample()
        await asyncio.gather(
            *(
                loop.run_in_executor(
                    threads, run_thread_writer, operation, count, latencies, errors
                )
                for count in shares(total, writers)
            )
        )
        elapsed = meter.since(start)
    if errors:
        log.warning("%s: %d operations failed, first: %s", name, len(errors), errors[0])
    return CaseResult(
        name=name,
        writers=writers,
        events=len(latencies),
        elapsed=elapsed,
        latencies_ms=latencies,
        commits=len(latencies),
        errors=len(errors),
    )


async def library_case(target: Target, writers: int, total: int) -> CaseResult:
    """The ``eventsourcing`` library's Postgres application recorder: writer threads, each
    saving one new aggregate (one event) per call."""
    app = await asyncio.to_thread(LibraryApplication, env=library_environment(target.dsn, writers))
    try:
        await drive_threads(target.meter, "warm-up", WARMUP_EVENTS, writers, app.receive)
        return await drive_threads(target.meter, LIBRARY_CASE, total, writers, app.receive)
    finally:
        await asyncio.to_thread(app.close)


async def multi_store_case(target: Target, writers: int, total: int) -> CaseResult:
    stores = [await EventStore.connect(target.dsn) for _ in range(PROCESSES)]
    try:
        name = f"EventStore x {PROCESSES} (processes)"
        return await store_case(target, name, stores, writers, total)
    finally:
        for store in stores:
            await store.close()


async def create_plain_table(dsn: str) -> None:
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute(
            "CREATE TABLE IF NOT EXISTS bench_plain (id bigserial PRIMARY KEY, data jsonb)"
        )
    finally:
        await connection.close()


async def append_cases(target: Target, events: int) -> list[CaseResult]:
    """Plain inserts, store appends and the library's, interleaved per concurrency so that
    drift of the machine hits all three alike."""
    await create_plain_table(target.dsn)
    store = await EventStore.connect(target.dsn)
    results: list[CaseResult] = []
    try:
        for writers in CONCURRENCY:
            log.info("inserts, appends and the library's with %d writer(s)", writers)
            results.append(await plain_case(target, writers, events))
            results.append(await store_case(target, STORE_CASE, [store], writers, events))
            results.append(await library_case(target, writers, events))
    finally:
        await store.close()
    log.info("appends with %d writers over %d stores", CONCURRENCY[-1], PROCESSES)
    results.append(await multi_store_case(target, CONCURRENCY[-1], events))
    return results


# -- relay -------------------------------------------------------------------------------


async def seed(store: EventStore, count: int) -> None:
    """Append ``count`` single-event streams in a few large transactions, the relay's
    checkpoint set after what is already stored so that it relays exactly these."""
    async with store.pool.acquire() as connection:
        await connection.execute(
            "INSERT INTO checkpoints (name, position) VALUES ($1, $2) "
            "ON CONFLICT (name) DO UPDATE SET position = EXCLUDED.position",
            CHECKPOINT,
            await store.last_position(),
        )
    for start in range(0, count, SEED_CHUNK):
        async with store.unit_of_work() as uow:
            for _ in range(min(SEED_CHUNK, count - start)):
                uow.append(new_stream_id(), [intake_event()], NO_STREAM)


async def stream_messages(jetstream: JetStreamContext) -> int:
    return int((await jetstream.stream_info(STREAM_NAME)).state.messages)


async def wait_for_messages(
    jetstream: JetStreamContext, count: int, relay_task: asyncio.Task[None]
) -> None:
    """Poll the stream until it holds ``count`` messages."""
    deadline = time.monotonic() + WAIT_TIMEOUT
    while (messages := await stream_messages(jetstream)) < count:
        if relay_task.done():
            relay_task.result()
            raise RuntimeError("the relay stopped before publishing everything")
        if time.monotonic() > deadline:
            raise TimeoutError(f"stream holds {messages} of {count} messages")
        await asyncio.sleep(0.01)


@dataclass
class Timestamps:
    """perf_counter() instants per event id of a paced run."""

    sent: dict[str, float] = field(default_factory=dict)
    committed: dict[str, float] = field(default_factory=dict)
    received: dict[str, float] = field(default_factory=dict)

    def between(self, start: dict[str, float], end: dict[str, float]) -> list[float]:
        return [(end[key] - start[key]) * 1000 for key in start if key in end]


async def timed_append(store: EventStore, stamps: Timestamps) -> None:
    event = intake_event()
    key = str(event.event_id)
    stamps.sent[key] = time.perf_counter()
    await store.append(new_stream_id(), [event], NO_STREAM)
    stamps.committed[key] = time.perf_counter()


async def issue_paced(store: EventStore, stamps: Timestamps, rate: float, count: int) -> None:
    """Start ``count`` appends at ``rate`` per second, each its own task (open loop: a slow
    append does not delay the next one), and wait for all of them."""
    appends: list[asyncio.Task[None]] = []
    start = time.perf_counter()
    for index in range(count):
        delay = start + index / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        appends.append(asyncio.create_task(timed_append(store, stamps)))
    for outcome in await asyncio.gather(*appends, return_exceptions=True):
        if isinstance(outcome, BaseException):
            log.warning("paced append failed: %r", outcome)


async def paced_case(
    target: Target, store: EventStore, jetstream: JetStreamContext, rate: float, count: int
) -> PacedResult:
    """Single appends at ``rate``/s while the relay runs; a JetStream consumer times their
    arrival."""
    stamps = Timestamps()
    all_in = asyncio.Event()

    async def on_message(message: Msg) -> None:
        key = (message.headers or {}).get(HEADER_MSG_ID)
        if key is not None:
            stamps.received[key] = time.perf_counter()
        if len(stamps.received) >= count:
            all_in.set()

    subscription = await jetstream.subscribe(
        ALL_EVENTS, cb=on_message, ordered_consumer=True, deliver_policy=DeliverPolicy.NEW
    )
    before = await store.last_position()
    try:
        start = target.meter.sample()
        await issue_paced(store, stamps, rate, count)
        try:
            await asyncio.wait_for(all_in.wait(), WAIT_TIMEOUT)
        except TimeoutError:
            log.warning("only %d of %d paced events arrived", len(stamps.received), count)
        elapsed = target.meter.since(start)
    finally:
        await subscription.unsubscribe()
    return PacedResult(
        offered_rate=rate,
        events=count,
        received=len(stamps.received),
        commits=await count_commits(store.pool, before),
        elapsed=elapsed,
        append_ms=stamps.between(stamps.sent, stamps.committed),
        visible_ms=stamps.between(stamps.sent, stamps.received),
        after_commit_ms=stamps.between(stamps.committed, stamps.received),
    )


@dataclass(frozen=True)
class RelayFigures:
    backlog: RelayResult
    paced: list[PacedResult]
    stream_messages: int
    published: int


async def relayed_cases(
    target: Target, store: EventStore, jetstream: JetStreamContext, backlog: int
) -> RelayFigures:
    """Start the relay on a backlog of ``backlog`` events, time the drain, then the paced
    runs while it keeps running."""
    await seed(store, backlog)
    stop = asyncio.Event()
    relay = Relay(target.dsn, [target.nats_url], batch_size=RELAY_BATCH)
    task = asyncio.create_task(relay.run(stop), name="relay")
    try:
        await asyncio.wait_for(relay.active.wait(), WAIT_TIMEOUT)
        start = target.meter.sample()
        await wait_for_messages(jetstream, backlog, task)
        drained = RelayResult(backlog, target.meter.since(start))
        paced = []
        for rate, count in PACED_RUNS:
            log.info("paced appends: %d at %d/s with the relay running", count, rate)
            paced.append(await paced_case(target, store, jetstream, rate, count))
        messages = await stream_messages(jetstream)
    finally:
        stop.set()
        await task
    return RelayFigures(drained, paced, messages, relay.published)


async def relay_cases(target: Target, backlog: int) -> RelayFigures:
    store = await EventStore.connect(target.dsn)
    nc = await nats.connect(target.nats_url)
    try:
        return await relayed_cases(target, store, nc.jetstream(), backlog)
    finally:
        await nc.close()
        await store.close()


# -- the run -----------------------------------------------------------------------------


async def benchmark(pg: EmbeddedPostgres, nats_server: EmbeddedNats, options: Options) -> Report:
    assert pg.process is not None and nats_server.process is not None
    meter = Meter(pg.process.pid, nats_server.process.pid)
    target = Target(await replay.prepare(pg, DATABASE), nats_server.service_url, meter)
    machine = await collect_machine_info(target.dsn, pg.root)
    start = meter.sample()
    appends = await append_cases(target, options.events)
    log.info("relay: a backlog of %d events", options.relay_events)
    relayed = await relay_cases(target, options.relay_events)
    run = meter.since(start)
    log.info("replay and rebuild: a history of %d events", options.replay_events)
    replayed = await replay.replay_section(await replay.prepare(pg), events=options.replay_events)
    return Report(
        machine=machine,
        events_per_case=options.events,
        relay_batch=RELAY_BATCH,
        appends=appends,
        relay=relayed.backlog,
        paced=relayed.paced,
        stream_messages=relayed.stream_messages,
        published=relayed.published,
        run=run,
        replay=replayed,
    )


def run(options: Options) -> Report:
    with tempfile.TemporaryDirectory(prefix="adminduk-bench-") as folder:
        root = Path(folder)
        pg = EmbeddedPostgres(root / "postgres", durable=True)
        nats_server = EmbeddedNats(root / "nats")
        try:
            log.info("starting PostgreSQL (fsync on) and NATS under %s", root)
            pg.start()
            nats_server.start()
            # The event loop every service process runs on (uvloop when installed).
            with asyncio.Runner(loop_factory=loop_factory()) as runner:
                return runner.run(benchmark(pg, nats_server, options))
        finally:
            nats_server.stop()
            pg.stop()


def parse_options(argv: Sequence[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.run",
        description="Event store and relay benchmarks; writes docs/BENCHMARKS.md.",
    )
    parser.add_argument("--events", type=int, default=5000, help="events per append case")
    parser.add_argument("--relay-events", type=int, default=20_000, help="relay backlog size")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="report file")
    parser.add_argument(
        "--replay-events",
        type=int,
        default=replay.DEFAULT_EVENTS,
        help="size of the history replayed and rebuilt",
    )
    arguments = parser.parse_args(argv)
    return Options(
        arguments.events, arguments.relay_events, arguments.output, arguments.replay_events
    )


def main(argv: Sequence[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    options = parse_options(argv)
    report = run(options)
    print(render_tables(report))
    options.output.parent.mkdir(parents=True, exist_ok=True)
    options.output.write_text(render(report))
    print(f"\nwritten to {options.output}")


if __name__ == "__main__":
    main()
