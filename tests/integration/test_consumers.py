"""The consumer framework against a real NATS server (redelivery, acks, dead letters).

FastStream's in-memory test broker ignores acknowledgements, so everything here runs on
the real server, with the real relay feeding it from the event store.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import nats
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from pydantic import BaseModel

from shared.bus import jetstream as js
from shared.bus.consumer import Consumers, ConsumerSpec, HandlerContext, PermanentError
from shared.bus.relay import Relay
from shared.eventstore.envelope import NO_STREAM, Metadata, NewEvent
from shared.eventstore.store import EventStore
from shared.telemetry import current_trace_context
from tests.builders import eventually

pytestmark = pytest.mark.integration

StartConsumers = Callable[[list[tuple[ConsumerSpec, Any]]], Awaitable[Consumers]]


@pytest.fixture
async def start_consumers(
    event_store: EventStore, nats_url: str, running_relay: Relay
) -> AsyncIterator[StartConsumers]:
    started: list[Consumers] = []
    admin = await nats.connect(nats_url)

    async def start(registrations: list[tuple[ConsumerSpec, Any]]) -> Consumers:
        consumers = Consumers(event_store, redrive_interval=0.1)
        for spec, handler in registrations:
            consumers.register(spec, handler)
        await consumers.start(admin.jetstream())
        started.append(consumers)
        return consumers

    yield start
    for consumers in started:
        await consumers.stop()
    await admin.close()


def spec(name: str, **overrides: Any) -> ConsumerSpec:
    options: dict[str, Any] = {
        "subjects": [js.subject_filter("request", "RequestReceived")],
        "max_deliver": 4,
        "ack_wait": 5.0,
        "batch_size": 16,
        "backoff": (0.05, 0.1),
    }
    options.update(overrides)
    return ConsumerSpec(name=name, **options)


async def receive(store: EventStore, count: int) -> None:
    for i in range(count):
        await store.append(
            f"request-{i}", [NewEvent(event_type="RequestReceived", data={"i": i})], NO_STREAM
        )


async def consumer_state(nats_url: str, name: str) -> tuple[int, int]:
    """(messages not yet delivered, delivered but not acknowledged)."""
    client = await nats.connect(nats_url)
    try:
        info = await client.jetstream().consumer_info(js.STREAM_NAME, name)
        return int(info.num_pending or 0), int(info.num_ack_pending or 0)
    finally:
        await client.close()


async def test_transient_failures_are_retried_and_the_effect_happens_once(
    event_store: EventStore, nats_url: str, start_consumers: StartConsumers
) -> None:
    calls: dict[str, int] = {}

    async def flaky(context: HandlerContext) -> None:
        key = context.event.stream_id
        calls[key] = calls.get(key, 0) + 1
        if calls[key] < 3:
            raise ConnectionError("SIAK timed out")
        await context.append(
            f"check-{context.event.stream_id}",
            [NewEvent(event_id=context.event_id("checked"), event_type="Checked", data={})],
        )

    await start_consumers([(spec("checker"), flaky)])
    await receive(event_store, 10)

    async def all_checked() -> bool:
        return len(await event_store.read_category("check")) == 10

    await eventually(all_checked)
    assert all(count == 3 for count in calls.values())
    await eventually(lambda: _settled(nats_url, "checker"))
    assert await event_store.pool.fetchval("SELECT count(*) FROM dead_letters") == 0


async def _settled(nats_url: str, name: str) -> bool:
    return await consumer_state(nats_url, name) == (0, 0)


async def test_redelivery_after_commit_without_ack_is_harmless(
    event_store: EventStore, nats_url: str, start_consumers: StartConsumers
) -> None:
    """The handler commits its effect, then the process 'dies' before the ack: JetStream
    redelivers, the inbox record turns the second run into a no-op."""
    runs: list[int] = []

    async def commits_then_crashes(context: HandlerContext) -> None:
        runs.append(context.deliveries)
        result = await context.append(
            "tally-1", [NewEvent(event_type="Counted", data={"of": str(context.event.event_id)})]
        )
        if context.deliveries == 1:
            assert not result.deduplicated
            raise RuntimeError("killed between commit and ack")
        assert result.deduplicated

    await start_consumers([(spec("tally"), commits_then_crashes)])
    await receive(event_store, 5)

    async def all_ran_twice() -> bool:
        return len(runs) >= 10

    await eventually(all_ran_twice)
    await eventually(lambda: _settled(nats_url, "tally"))
    assert sorted(runs) == [1, 1, 1, 1, 1, 2, 2, 2, 2, 2]
    assert len(await event_store.read_stream("tally-1")) == 5
    inbox = await event_store.pool.fetchval("SELECT count(*) FROM inbox WHERE consumer = 'tally'")
    assert inbox == 5


async def test_a_message_that_keeps_failing_is_dead_lettered_and_can_be_redriven(
    event_store: EventStore, nats_url: str, start_consumers: StartConsumers
) -> None:
    broken = True
    deliveries: list[int] = []

    async def handler(context: HandlerContext) -> None:
        deliveries.append(context.deliveries)
        if broken:
            raise ValueError("bug in handler for NIK 3603015708990001")
        await context.append(
            "done-1", [NewEvent(event_id=context.event_id(), event_type="Done", data={})]
        )

    await start_consumers([(spec("fragile", max_deliver=3), handler)])
    await receive(event_store, 1)

    async def dead() -> bool:
        return bool(await event_store.pool.fetchval("SELECT count(*) FROM dead_letters"))

    await eventually(dead)
    await eventually(lambda: _settled(nats_url, "fragile"))
    row = await event_store.pool.fetchrow("SELECT * FROM dead_letters")
    assert row is not None
    assert (row["consumer"], row["status"], row["deliveries"]) == ("fragile", "dead", 3)
    assert row["event_type"] == "RequestReceived"
    assert row["position"] == 1
    assert "ValueError" in row["error"]
    assert "3603015708990001" not in row["error"], "personal data leaked into the dead letter"
    assert deliveries == [1, 2, 3], "terminated messages must not come back"

    broken = False
    await event_store.pool.execute("UPDATE dead_letters SET status = 'redrive'")

    async def redriven() -> bool:
        status = await event_store.pool.fetchval("SELECT status FROM dead_letters")
        return bool(status == "redriven")

    await eventually(redriven)
    assert len(await event_store.read_stream("done-1")) == 1


async def test_a_validation_error_quoting_a_name_leaves_only_types_and_locations(
    event_store: EventStore,
    nats_url: str,
    start_consumers: StartConsumers,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Masking catches numbers, not names: what pydantic quotes of its input must not reach
    the dead letter, the log or the span's status."""
    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        trace.set_tracer_provider(TracerProvider())
    provider = trace.get_tracer_provider()
    assert isinstance(provider, TracerProvider)
    spans = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(spans))

    class Applicant(BaseModel):
        name: int

    async def handler(context: HandlerContext) -> None:
        Applicant.model_validate({"name": "SITI AMINAH"})

    await start_consumers([(spec("named", max_deliver=1), handler)])
    await receive(event_store, 1)

    async def dead() -> bool:
        return bool(await event_store.pool.fetchval("SELECT count(*) FROM dead_letters"))

    try:
        await eventually(dead)
    finally:
        spans.shutdown()
    error = await event_store.pool.fetchval("SELECT error FROM dead_letters")
    assert "ValidationError" in error
    assert "int_parsing at name" in error
    [span] = [s for s in spans.get_finished_spans() if s.name == "named RequestReceived"]
    assert span.status.description is not None
    assert "int_parsing at name" in span.status.description
    logged = " ".join(r.getMessage() for r in caplog.records)
    for text in (error, span.status.description, logged):
        assert "SITI" not in text
        assert "AMINAH" not in text


async def test_permanent_errors_and_garbage_go_straight_to_dead_letters(
    event_store: EventStore, nats_url: str, start_consumers: StartConsumers
) -> None:
    seen: list[int] = []

    async def refuses(context: HandlerContext) -> None:
        seen.append(context.deliveries)
        raise PermanentError("this request can never be processed")

    await start_consumers([(spec("strict", subjects=[js.subject_filter("request", "*")]), refuses)])
    await receive(event_store, 1)
    client = await nats.connect(nats_url)
    try:
        await client.jetstream().publish(
            js.subject_filter("request", "Garbage"),
            b"{not an event",
            headers={js.HEADER_MSG_ID: "garbage-1"},
        )
    finally:
        await client.close()

    async def both_dead() -> bool:
        return bool(await event_store.pool.fetchval("SELECT count(*) FROM dead_letters") == 2)

    await eventually(both_dead)
    await eventually(lambda: _settled(nats_url, "strict"))
    assert seen == [1]
    rows = await event_store.pool.fetch("SELECT message_id, deliveries FROM dead_letters")
    assert {row["message_id"] for row in rows} >= {"garbage-1"}
    assert all(row["deliveries"] == 1 for row in rows)


async def test_events_of_one_stream_are_handled_in_order_despite_batches(
    event_store: EventStore, nats_url: str, start_consumers: StartConsumers
) -> None:
    handled: dict[str, list[int]] = {}

    async def slow_and_variable(context: HandlerContext) -> None:
        # Later events of a stream finish faster, so without ordering they would overtake.
        await asyncio.sleep(0.02 / (1 + context.event.stream_version))
        handled.setdefault(context.event.stream_id, []).append(context.event.stream_version)

    await start_consumers(
        [
            (
                spec("ordered", subjects=[js.subject_filter("request", "*")], batch_size=50),
                slow_and_variable,
            )
        ]
    )
    for stream in range(5):
        await event_store.append(
            f"request-{stream}",
            [NewEvent(event_type="RequestAmended", data={}) for _ in range(20)],
        )

    async def all_handled() -> bool:
        return sum(map(len, handled.values())) >= 100

    await eventually(all_handled)
    await eventually(lambda: _settled(nats_url, "ordered"))
    assert len(handled) == 5
    assert all(versions == list(range(1, 21)) for versions in handled.values()), handled


async def test_consumers_are_created_explicitly_with_bounded_redelivery(
    nats_url: str, start_consumers: StartConsumers
) -> None:
    async def nothing(context: HandlerContext) -> None:
        return None

    await start_consumers([(spec("declared", max_deliver=5, ack_wait=7.0), nothing)])
    client = await nats.connect(nats_url)
    try:
        info = await client.jetstream().consumer_info(js.STREAM_NAME, "declared")
    finally:
        await client.close()
    assert info.config.durable_name == "declared"
    # The bound (5) is enforced by the framework; the server's own limit is off, because
    # the server silently drops a message whose last delivery could not be dead-lettered.
    assert info.config.max_deliver == -1
    assert info.config.ack_wait == 7.0
    assert info.config.ack_policy == "explicit"
    assert info.config.filter_subjects == [js.subject_filter("request", "RequestReceived")]


async def test_the_writers_trace_continues_in_the_consumer(
    event_store: EventStore, nats_url: str, start_consumers: StartConsumers
) -> None:
    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        trace.set_tracer_provider(TracerProvider())
    tracer = trace.get_tracer("test")
    seen: list[tuple[int, bool]] = []

    async def handler(context: HandlerContext) -> None:
        span_context = trace.get_current_span().get_span_context()
        seen.append((span_context.trace_id, span_context.is_valid))

    await start_consumers([(spec("traced"), handler)])
    with tracer.start_as_current_span("webhook") as webhook:
        await event_store.append(
            "request-T",
            [
                NewEvent(
                    event_type="RequestReceived",
                    data={},
                    metadata=Metadata(trace=current_trace_context()),
                )
            ],
        )

    async def handled() -> bool:
        return bool(seen)

    await eventually(handled)
    assert seen == [(webhook.get_span_context().trace_id, True)]


async def test_a_failed_dead_lettering_keeps_the_message_until_it_can_be_parked(
    event_store: EventStore, nats_url: str, start_consumers: StartConsumers
) -> None:
    deliveries: list[int] = []

    async def always_fails(context: HandlerContext) -> None:
        deliveries.append(context.deliveries)
        raise RuntimeError("handler bug")

    # Postgres cannot take dead letters (as during an outage) when the bound is reached.
    await event_store.pool.execute("ALTER TABLE dead_letters RENAME TO dead_letters_away")
    await start_consumers([(spec("stubborn", max_deliver=2), always_fails)])
    await receive(event_store, 1)

    async def beyond_the_bound() -> bool:
        return len(deliveries) >= 4

    await eventually(beyond_the_bound)
    await event_store.pool.execute("ALTER TABLE dead_letters_away RENAME TO dead_letters")

    async def parked() -> bool:
        return bool(await event_store.pool.fetchval("SELECT count(*) FROM dead_letters"))

    await eventually(parked)
    await eventually(lambda: _settled(nats_url, "stubborn"))
    row = await event_store.pool.fetchrow("SELECT status, deliveries FROM dead_letters")
    assert row is not None
    assert row["status"] == "dead"
    assert row["deliveries"] >= 3


async def test_a_retried_event_is_not_overtaken_by_later_events_of_its_stream(
    event_store: EventStore, nats_url: str, start_consumers: StartConsumers
) -> None:
    handled: list[int] = []
    failed_once = False

    async def fails_on_the_second(context: HandlerContext) -> None:
        nonlocal failed_once
        if context.event.stream_version == 2 and not failed_once:
            failed_once = True
            raise ConnectionError("transient")
        handled.append(context.event.stream_version)

    await start_consumers(
        [(spec("patient", subjects=[js.subject_filter("request", "*")]), fails_on_the_second)]
    )
    await event_store.append(
        "request-1", [NewEvent(event_type="RequestAmended", data={}) for _ in range(5)]
    )

    async def all_handled() -> bool:
        return len(handled) >= 5

    await eventually(all_handled)
    assert handled == [1, 2, 3, 4, 5]


async def _tallied(event_store: EventStore, count: int) -> None:
    async def all_in() -> bool:
        return bool(await event_store.pool.fetchval("SELECT count(*) FROM batch_tally") == count)

    await eventually(all_in)


@pytest.fixture
async def tally_table(event_store: EventStore) -> None:
    await event_store.pool.execute(
        "CREATE TABLE IF NOT EXISTS batch_tally (stream_id text PRIMARY KEY, runs int)"
    )


async def test_a_batch_in_one_transaction_commits_every_effect_once_and_then_wakes(
    event_store: EventStore, nats_url: str, start_consumers: StartConsumers, tally_table: None
) -> None:
    """With ``batch_transaction`` the batch's handlers share one transaction: every effect
    and inbox record lands once, and ``after_commit`` runs only after the commit."""
    shared: list[bool] = []
    woken: list[int] = []

    async def tally(context: HandlerContext) -> None:
        shared.append(context.shared is not None)
        async with context.unit_of_work() as uow:
            await uow.connection.execute(
                "INSERT INTO batch_tally VALUES ($1, 1) "
                "ON CONFLICT (stream_id) DO UPDATE SET runs = batch_tally.runs + 1",
                context.event.stream_id,
            )

        def wake(stream: str = context.event.stream_id) -> None:
            # Called after the commit: the row is visible to any other connection.
            woken.append(1)
            assert stream

        context.after_commit(wake)

    await receive(event_store, 40)  # already waiting: the consumer pulls them in batches
    await start_consumers([(spec("tally-batched", batch_transaction=True), tally)])
    await _tallied(event_store, 40)
    await eventually(lambda: _settled(nats_url, "tally-batched"))
    assert await event_store.pool.fetchval("SELECT max(runs) FROM batch_tally") == 1
    assert any(shared), "no batch was handled in one transaction"
    assert len(woken) == 40
    inbox = "SELECT count(*) FROM inbox WHERE consumer = 'tally-batched'"
    assert await event_store.pool.fetchval(inbox) == 40


async def test_a_failure_in_a_shared_batch_costs_the_others_nothing(
    event_store: EventStore, nats_url: str, start_consumers: StartConsumers, tally_table: None
) -> None:
    """One message that fails rolls its batch back; the batch is handled again one by one,
    so the others commit once and the bad one is retried, then dead-lettered."""

    async def tally(context: HandlerContext) -> None:
        async with context.unit_of_work() as uow:
            await uow.connection.execute(
                "INSERT INTO batch_tally VALUES ($1, 1) "
                "ON CONFLICT (stream_id) DO UPDATE SET runs = batch_tally.runs + 1",
                context.event.stream_id,
            )
            if context.event.stream_id == "request-7":
                raise ConnectionError("this one always fails")

    await receive(event_store, 20)
    await start_consumers([(spec("tally-failing", batch_transaction=True), tally)])
    await _tallied(event_store, 19)

    async def parked() -> bool:
        count = "SELECT count(*) FROM dead_letters WHERE consumer = 'tally-failing'"
        return bool(await event_store.pool.fetchval(count) == 1)

    await eventually(parked)
    await eventually(lambda: _settled(nats_url, "tally-failing"))
    assert await event_store.pool.fetchval("SELECT max(runs) FROM batch_tally") == 1
    failed = "SELECT count(*) FROM batch_tally WHERE stream_id = 'request-7'"
    assert await event_store.pool.fetchval(failed) == 0


async def test_an_append_whose_result_is_needed_leaves_the_shared_batch(
    event_store: EventStore, nats_url: str, start_consumers: StartConsumers
) -> None:
    """``append`` returns what was stored, which a shared transaction cannot know before it
    commits: such a handler is run message by message, and still exactly once."""
    seen_shared: list[bool] = []

    async def appends(context: HandlerContext) -> None:
        seen_shared.append(context.shared is not None)
        result = await context.append(
            f"check-{context.event.stream_id}",
            [NewEvent(event_id=context.event_id("checked"), event_type="Checked", data={})],
        )
        assert result.events

    await receive(event_store, 12)
    await start_consumers([(spec("appender", batch_transaction=True), appends)])

    async def all_checked() -> bool:
        return len(await event_store.read_category("check")) == 12

    await eventually(all_checked)
    await eventually(lambda: _settled(nats_url, "appender"))
    assert seen_shared.count(False) == 12
    assert await event_store.pool.fetchval("SELECT count(*) FROM dead_letters") == 0


async def test_a_batch_handler_takes_the_whole_batch_in_its_transaction(
    event_store: EventStore, nats_url: str, start_consumers: StartConsumers, tally_table: None
) -> None:
    """A handler with a ``batch`` method gets a pulled batch at once (and writes it in bulk);
    one at a time it serves what the batch could not take."""
    sizes: list[int] = []

    tally = (
        "INSERT INTO batch_tally VALUES ($1, 1) "
        "ON CONFLICT (stream_id) DO UPDATE SET runs = batch_tally.runs + 1"
    )

    class Tally:
        async def __call__(self, context: HandlerContext) -> None:
            async with context.unit_of_work() as uow:
                await uow.connection.execute(tally, context.event.stream_id)

        async def batch(self, contexts: Sequence[HandlerContext]) -> None:
            sizes.append(len(contexts))
            for context in contexts:
                async with context.unit_of_work() as uow:
                    pass
            await uow.connection.executemany(
                tally, [(context.event.stream_id,) for context in contexts]
            )

    await receive(event_store, 50)
    await start_consumers([(spec("tally-bulk", batch_transaction=True), Tally())])
    await _tallied(event_store, 50)
    await eventually(lambda: _settled(nats_url, "tally-bulk"))
    assert await event_store.pool.fetchval("SELECT max(runs) FROM batch_tally") == 1
    assert max(sizes) > 1, "no batch was taken whole"
    inbox = "SELECT count(*) FROM inbox WHERE consumer = 'tally-bulk'"
    assert await event_store.pool.fetchval(inbox) == 50
