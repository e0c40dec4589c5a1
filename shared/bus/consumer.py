"""The consumer framework: durable JetStream pull consumers, pulled with nats-py.

A service registers handlers with a :class:`Consumers` group. For each, the group

* creates the durable consumer explicitly at start-up (explicit ack, bounded
  ``max_deliver``, its filter subjects), and pulls from it in a task of its own;
* runs the handler with a :class:`HandlerContext` whose ``append``/``unit_of_work`` write the
  consumer's inbox record (consumer name + event id) in the same transaction as the
  handler's effects, so a redelivery is harmless;
* acknowledges only after the handler returned, that is, after its append committed;
* on an exception, ``nak``s with a growing delay; after ``max_deliver`` deliveries, or at
  once for a :class:`PermanentError` or an undecodable message, stores the message in the
  ``dead_letters`` table and terminates it. ``adminduk deadletters`` lists and re-drives.

Messages are pulled in batches: while they flow, each pull request collects for up to
``batch_wait`` (a busy consumer takes its backlog in large batches); once a request comes
back empty, the next one waits on the server (up to :data:`IDLE_PULL`) for the first
message, so a quiet consumer costs one request a second. Within a batch, the events of
one stream are handled one after another in position order and different streams side by
side. (Pulling one message per task would let tasks overtake each other.) Across replicas
of a service, order per stream is not guaranteed; handlers decide from the aggregate's own
stream.

(FastStream's pull subscriber was used before: it polled every ``batch_wait`` while idle,
two requests each time for every consumer, decoded each message twice and resolved its
handler's parameters in a worker thread on every batch; measured in docs/BENCHMARKS-WEBHOOK.md.)

A consumer whose handlers only write through :meth:`HandlerContext.unit_of_work` may ask
for **one transaction per batch** (``ConsumerSpec.batch_transaction``): the batch's
handlers then run one after another in delivery order on one connection, every inbox
record and effect commits at once, and the messages are acknowledged after that commit.
If anything in the batch fails (an exception, a conflict, a repeated inbox record), the
transaction rolls back and the batch is handled again message by message as above, with
the usual retries and dead letters: a bad message never costs the others more than a
second try.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final, Protocol, TypeVar

import asyncpg
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy as JsAckPolicy
from nats.js.api import ConsumerConfig, DeliverPolicy
from opentelemetry import trace
from opentelemetry.trace import StatusCode
from pydantic import ValidationError

from shared.bus import jetstream as js
from shared.contracts import registry as contracts_registry
from shared.eventstore.envelope import (
    ANY,
    Event,
    EventRegistry,
    Metadata,
    NewEvent,
    RecordedEvent,
    deterministic_event_id,
)
from shared.eventstore.errors import DuplicateMessageError
from shared.eventstore.store import (
    AppendResult,
    EventStore,
    InboxRecord,
    StreamAppend,
    UnitOfWork,
)
from shared.privacy import describe_error
from shared.telemetry import attach_trace_context, current_trace_context, detach

log = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)

DEFAULT_BACKOFF: Final = (1.0, 2.0, 5.0, 15.0, 30.0, 60.0)
STATUS_BATCH_WAIT: Final = 0.5
"""``batch_wait`` of a consumer that nobody reads right after it wrote (delivery statuses):
a quiet one pulls twice a second instead of twenty times, a busy one fills larger batches,
each one transaction; what it writes is at most this much later. Not for read models:
intake answers citizens from ``request_status`` (``#STATUS#``, corrections), officers'
screens list from verification's, and both must follow the log closely."""
IDLE_PULL: Final = 1.0
"""Seconds a pull request waits on the server for the first message of a batch: how often a
quiet consumer asks, and how long a lost request (a reconnect) can delay the next one."""
PULL_RETRY: Final = 1.0
"""Seconds before pulling again after a failed pull (NATS away, reconnecting)."""
GRACEFUL_STOP: Final = 10.0
"""Seconds a stop waits for batches being handled to finish before cancelling them."""
HELD_MARGIN: Final = 0.2
"""Seconds a later event of a stream is handed back beyond its held event's own retry."""


E = TypeVar("E", bound=Event)


class PermanentError(Exception):
    """Raised by a handler for a message that can never succeed: dead-letter it now."""


class NotInBatchError(Exception):
    """A handler did what a shared batch transaction cannot do (an append whose result it
    needs): the batch is handled again message by message."""


@dataclass(frozen=True)
class ConsumerSpec:
    """A durable consumer: its name (also its inbox name) and what it receives."""

    name: str
    subjects: Sequence[str]
    max_deliver: int = 8
    ack_wait: float = 30.0
    batch_size: int = 32
    batch_wait: float = 0.05
    """Longest wait of a pull request to fill a batch while messages flow: bounds the
    latency the consumer adds (a quiet consumer's first message comes at once)."""
    backoff: Sequence[float] = DEFAULT_BACKOFF
    deliver_policy: DeliverPolicy = DeliverPolicy.ALL
    batch_transaction: bool = False
    """Handle a pulled batch in one transaction (see the module's docstring). Only for
    handlers that write solely through ``unit_of_work()``, do every read on its connection
    (never through the pool: holding the batch's connection while waiting for another can
    starve the pool), and defer side effects that need the commit to ``after_commit``."""

    def delay(self, deliveries: int) -> float:
        return self.backoff[min(max(deliveries, 1), len(self.backoff)) - 1]


@dataclass
class HandlerContext:
    """What a handler gets: the event, and writes that carry the inbox record."""

    consumer: str
    store: EventStore
    event: RecordedEvent
    deliveries: int
    redrive: bool = False
    registry: EventRegistry = field(default=contracts_registry, repr=False)
    """Decodes (and upcasts) :attr:`event` for :meth:`decode`."""
    shared: UnitOfWork | None = field(default=None, repr=False)
    """The batch's transaction, when the consumer handles a batch in one (its writes then
    commit, and ``after_commit`` callbacks run, when the whole batch is done)."""
    _appended: bool = field(default=False, init=False, repr=False)
    _after_commit: list[Callable[[], object]] = field(default_factory=list, init=False, repr=False)

    def decode(self, event_class: type[E]) -> E:
        """The event being handled as the typed event the handler takes, decoded through
        the registry (an old schema version upcast). Raises ``TypeError`` for an event of
        another type, a validation error for one that does not decode (both are retried,
        then dead-lettered)."""
        return self.registry.decode_as(self.event, event_class)

    @property
    def inbox(self) -> InboxRecord:
        return InboxRecord(self.consumer, str(self.event.event_id))

    def event_id(self, *parts: str) -> uuid.UUID:
        """A deterministic id for an event this handler writes because of ``self.event``."""
        return deterministic_event_id(self.consumer, str(self.event.event_id), *parts)

    def metadata(self, actor: str | None = None) -> Metadata:
        """Metadata for events caused by the current one (same correlation, this cause)."""
        return Metadata(
            correlation_id=self.event.metadata.correlation_id or self.event.event_id,
            causation_id=self.event.event_id,
            trace=current_trace_context(),
            actor=actor or f"system:{self.consumer}",
        )

    async def append(
        self, stream_id: str, events: Sequence[NewEvent], expected_version: int = ANY
    ) -> AppendResult:
        """Append with this message's inbox record. Once per message: a second append would
        find the inbox record and be dropped, so it is refused; use :meth:`unit_of_work`
        for several writes."""
        if self._appended:
            raise RuntimeError("HandlerContext.append called twice; use unit_of_work()")
        if self.shared is not None:
            raise NotInBatchError("append() returns what was stored; not in a shared batch")
        self._appended = True
        return await self.store.append(stream_id, events, expected_version, inbox=self.inbox)

    async def append_streams(self, parts: Sequence[StreamAppend]) -> AppendResult:
        """Like :meth:`append`, for several streams at once (all or nothing)."""
        if self._appended:
            raise RuntimeError("HandlerContext.append called twice; use unit_of_work()")
        if self.shared is not None:
            raise NotInBatchError("append_streams() returns what was stored; not in a batch")
        self._appended = True
        return await self.store.append_streams(parts, inbox=self.inbox)

    @contextlib.asynccontextmanager
    async def unit_of_work(self) -> AsyncIterator[UnitOfWork]:
        """A transaction with this message's inbox record: the handler's own, or the
        batch's shared one (which commits after the last handler of the batch)."""
        if self.shared is not None:
            self.shared.record_inbox(self.consumer, str(self.event.event_id))
            yield self.shared
            return
        async with self.store.unit_of_work() as uow:
            uow.record_inbox(self.consumer, str(self.event.event_id))
            yield uow

    def after_commit(self, callback: Callable[[], object]) -> None:
        """Run ``callback`` once this message's writes are committed: at once outside a
        shared batch (call it after the ``unit_of_work`` block), after the batch's commit
        inside one (and not at all if the batch rolls back: the retry calls it again)."""
        if self.shared is None:
            callback()
        else:
            self._after_commit.append(callback)

    def committed(self) -> None:
        """Called by whoever committed the shared transaction: runs the deferred
        ``after_commit`` callbacks, once."""
        callbacks, self._after_commit = self._after_commit, []
        for callback in callbacks:
            callback()


Handler = Callable[[HandlerContext], Awaitable[None]]


class BatchHandler(Protocol):
    """A handler that can also take a whole batch at once, in the batch's shared
    transaction (``ConsumerSpec.batch_transaction``): ``batch`` must do what calling the
    handler for each context in order would, and may read and write in bulk. The handler
    itself still serves retries, re-drives and replays, one message at a time."""

    async def __call__(self, context: HandlerContext) -> None: ...

    async def batch(self, contexts: Sequence[HandlerContext]) -> None: ...


@dataclass(frozen=True)
class Bulk:
    """A :class:`BatchHandler` from two callables: ``one`` for a message at a time
    (retries, re-drives, replays), ``many`` for a pulled batch in its shared transaction."""

    one: Handler
    many: Callable[[Sequence[HandlerContext]], Awaitable[None]]

    async def __call__(self, context: HandlerContext) -> None:
        await self.one(context)

    async def batch(self, contexts: Sequence[HandlerContext]) -> None:
        await self.many(contexts)


@dataclass
class _Registration:
    spec: ConsumerSpec
    handler: Handler
    held: dict[str, tuple[int, float]] = field(default_factory=dict)
    """Streams waiting for a retried message: stream -> (its JetStream sequence, monotonic
    time it is due back). Later events of the stream are handed back until it is done,
    whichever batch they arrive in."""
    waited: dict[str, int] = field(default_factory=dict)
    """Deliveries a message spent handed back behind a held one (by message id): they do
    not count against its own ``max_deliver``."""
    busy: bool = False
    """A pulled batch is in hand: a stop lets it finish (an idle pull is cancelled)."""


async def record_dead_letter(
    pool: asyncpg.Pool,
    *,
    consumer: str,
    message_id: str,
    subject: str,
    payload: bytes,
    headers: dict[str, str],
    error: str,
    deliveries: int,
) -> None:
    event_type = headers.get(js.HEADER_EVENT_TYPE)
    stream_id = headers.get(js.HEADER_STREAM_ID)
    position = headers.get(js.HEADER_POSITION)
    await pool.execute(
        """
        INSERT INTO dead_letters (consumer, message_id, subject, event_type, stream_id,
                                  position, payload, headers, error, deliveries)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9, $10)
        ON CONFLICT (consumer, message_id) DO UPDATE
           SET error = excluded.error, deliveries = dead_letters.deliveries + excluded.deliveries,
               last_failed_at = now(), status = 'dead', resolved_at = NULL
        """,
        consumer,
        message_id,
        subject,
        event_type,
        stream_id,
        int(position) if position and position.isdigit() else None,
        payload,
        headers,
        error[:4000],
        deliveries,
    )


def _message_id(message: Msg) -> str:
    """The event id the relay put in the header (the sequence if a message lacks it)."""
    headers = message.headers or {}
    return headers.get(js.HEADER_MSG_ID) or f"seq-{message.metadata.sequence.stream}"


def _deliveries(message: Msg) -> int:
    return int(message.metadata.num_delivered or 1)


TICKETED_CATEGORIES: Final = frozenset({"request", "complaint"})


def _ticket_attribute(event: RecordedEvent) -> dict[str, str]:
    """The ticket of a request's or complaint's event, so its traces can be found by ticket
    (``adminduk traces``, a tracing backend's tag search). A ticket is not personal data;
    other stream ids (a citizen's pseudonym) stay out of spans."""
    if event.category in TICKETED_CATEGORIES:
        return {"adminduk.ticket": event.stream_id.partition("-")[2]}
    return {}


class Consumers:
    """The consumers of one service process, each pulling in a task of its own."""

    def __init__(
        self,
        store: EventStore,
        *,
        redrive_interval: float = 2.0,
        registry: EventRegistry = contracts_registry,
    ) -> None:
        self.store = store
        self.registry = registry
        self._registrations: dict[str, _Registration] = {}
        self._redrive_interval = redrive_interval
        self._redrive_task: asyncio.Task[None] | None = None
        self._pulls: dict[str, asyncio.Task[None]] = {}
        self._subscriptions: list[JetStreamContext.PullSubscription] = []
        self._stopping = False

    def register(self, spec: ConsumerSpec, handler: Handler) -> None:
        if spec.name in self._registrations:
            raise ValueError(f"consumer {spec.name!r} registered twice")
        self._registrations[spec.name] = _Registration(spec, handler)

    def consumer(self, spec: ConsumerSpec) -> Callable[[Handler], Handler]:
        """Decorator form of :meth:`register`."""

        def decorate(handler: Handler) -> Handler:
            self.register(spec, handler)
            return handler

        return decorate

    async def declare(self, jetstream: JetStreamContext) -> None:
        """Create or update every durable consumer; called before pulling starts."""
        for registration in self._registrations.values():
            spec = registration.spec
            config = ConsumerConfig(
                name=spec.name,
                durable_name=spec.name,
                deliver_policy=spec.deliver_policy,
                ack_policy=JsAckPolicy.EXPLICIT,
                ack_wait=spec.ack_wait,
                # The delivery bound is enforced here, in _process: with a server-side
                # limit, a message whose dead-lettering failed on its last delivery would
                # be dropped by the server without a trace.
                max_deliver=-1,
                filter_subjects=list(spec.subjects),
                max_ack_pending=max(1000, spec.batch_size * 4),
            )
            await jetstream.add_consumer(js.STREAM_NAME, config)

    async def start(self, jetstream: JetStreamContext) -> None:
        """Declare the durable consumers, then pull from each on ``jetstream``'s connection."""
        await self.declare(jetstream)
        for name, registration in self._registrations.items():
            subscription = await jetstream.pull_subscribe_bind(durable=name, stream=js.STREAM_NAME)
            self._subscriptions.append(subscription)
            self._pulls[name] = asyncio.create_task(
                self._pull(registration, subscription), name=f"consume-{name}"
            )
        self._redrive_task = asyncio.create_task(self._redrive_loop(), name="dead-letter-redrive")

    async def stop(self) -> None:
        """Stop pulling: idle pulls at once, batches in hand after they are handled (at most
        :data:`GRACEFUL_STOP`; a batch cut short comes back after ``ack_wait``)."""
        self._stopping = True
        if self._redrive_task is not None:
            self._redrive_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._redrive_task
        for name, task in self._pulls.items():
            if not self._registrations[name].busy:
                task.cancel()
        if self._pulls:
            _, unfinished = await asyncio.wait(self._pulls.values(), timeout=GRACEFUL_STOP)
            for task in unfinished:
                task.cancel()
            await asyncio.gather(*self._pulls.values(), return_exceptions=True)
        for subscription in self._subscriptions:
            with contextlib.suppress(Exception):
                await subscription.unsubscribe()

    async def _pull(
        self, registration: _Registration, subscription: JetStreamContext.PullSubscription
    ) -> None:
        """Pull batches and handle them until the stop. While messages flow, each request
        collects for up to ``batch_wait`` (one request per batch); once one comes back
        empty, the next waits on the server for the first message (one request a second
        while idle), which is handled at once."""
        spec = registration.spec
        idle = True
        while not self._stopping:
            registration.busy = not idle  # a windowed pull holds messages already
            try:
                if idle:
                    batch = await subscription.fetch(1, timeout=IDLE_PULL)
                    registration.busy = True
                else:
                    batch = await subscription.fetch(spec.batch_size, timeout=spec.batch_wait)
            except TimeoutError:  # nats' own derives from it: nothing came
                idle = True
                continue
            except Exception as error:  # noqa: BLE001 - NATS away: ask again shortly
                registration.busy = False
                if self._stopping:
                    return
                log.warning("consumer %s: pull failed (%s)", spec.name, describe_error(error))
                await asyncio.sleep(PULL_RETRY)
                continue
            idle = False
            try:
                await self._process_batch(registration, batch)
            except Exception as error:  # noqa: BLE001 - unacknowledged: JetStream redelivers
                log.warning(
                    "consumer %s: batch of %d left for redelivery (%s)",
                    spec.name,
                    len(batch),
                    describe_error(error),
                )
            finally:
                registration.busy = False

    # -- processing ------------------------------------------------------------------

    async def _process_batch(self, registration: _Registration, batch: list[Msg]) -> None:
        """Events of one stream in delivery (= position) order; streams side by side. In
        one transaction first when the consumer asks for it and nothing is being retried."""
        if (
            registration.spec.batch_transaction
            and len(batch) > 1
            and not registration.held
            and all(_deliveries(message) == 1 for message in batch)
            and await self._process_together(registration, batch)
        ):
            return
        decoded = await self._decoded(batch)
        by_stream: dict[str, list[Msg]] = {}
        for message in batch:
            key = (message.headers or {}).get(js.HEADER_STREAM_ID) or message.reply
            by_stream.setdefault(key, []).append(message)

        spec = registration.spec

        async def hand_back(stream: str, messages: list[Msg]) -> None:
            """Later events of a held stream wait until the held one is back and done."""
            _, due = registration.held[stream]
            delay = max(due - time.monotonic(), 0.0) + HELD_MARGIN
            for later in messages:
                later_id = _message_id(later)
                registration.waited[later_id] = registration.waited.get(later_id, 0) + 1
                await later.nak(delay=delay)

        async def in_order(stream: str, messages: list[Msg]) -> None:
            extended_at = time.monotonic()
            for index, message in enumerate(messages):
                sequence = message.metadata.sequence.stream
                held = registration.held.get(stream)
                if held is not None and time.monotonic() > held[1] + spec.ack_wait:
                    # Its retry went to another replica (or was re-driven): stop waiting.
                    del registration.held[stream]
                    held = None
                if held is not None and sequence > held[0]:
                    await hand_back(stream, messages[index:])
                    return
                if time.monotonic() - extended_at > spec.ack_wait / 2:
                    # Still queued behind slow handlers: keep JetStream from redelivering.
                    for waiting in messages[index:]:
                        await waiting.in_progress()
                    extended_at = time.monotonic()
                if await self._process(registration, message, decoded.get(id(message))):
                    registration.waited.pop(_message_id(message), None)
                    if held is not None and sequence == held[0]:
                        del registration.held[stream]
                    continue
                # Retried later: later events of this stream must not overtake it, in this
                # batch or in the next ones.
                delay = spec.delay(_deliveries(message) - self._waited(registration, message))
                registration.held[stream] = (sequence, time.monotonic() + delay)
                await hand_back(stream, messages[index + 1 :])
                return

        await asyncio.gather(*(in_order(key, messages) for key, messages in by_stream.items()))

    async def _process_together(self, registration: _Registration, batch: list[Msg]) -> bool:
        """The whole batch in one transaction, handlers in delivery order; acknowledged
        after the commit. False (nothing committed, nothing acknowledged) when anything
        failed: the caller then handles the batch message by message."""
        spec = registration.spec
        try:
            events = await self.store.open([js.decode(message.data) for message in batch])
        except Exception:  # noqa: BLE001 - one by one, each message meets its own fate
            return False  # (dead letter for what does not decode, a retry for an outage)
        contexts: list[HandlerContext] = []
        in_bulk = getattr(registration.handler, "batch", None)
        try:
            async with self.store.unit_of_work() as shared:
                contexts = [
                    HandlerContext(
                        consumer=spec.name,
                        store=self.store,
                        event=event,
                        deliveries=1,
                        registry=self.registry,
                        shared=shared,
                    )
                    for event in events
                ]
                if in_bulk is not None:
                    with tracer.start_as_current_span(
                        f"{spec.name} batch",
                        record_exception=False,
                        attributes={
                            "adminduk.consumer": spec.name,
                            "messaging.batch.message_count": len(contexts),
                        },
                    ):
                        await in_bulk(contexts)
                else:
                    for message, context in zip(batch, contexts, strict=True):
                        token = attach_trace_context(dict(message.headers or {}))
                        try:
                            await self._traced(registration, context)
                        finally:
                            detach(token)
        except Exception as error:  # noqa: BLE001 - the batch is handled again one by one
            log.debug(
                "consumer %s: batch of %d handled one by one (%s)",
                spec.name,
                len(batch),
                type(error).__name__,
            )
            return False
        for context in contexts:
            context.committed()
        # Committed: an ack that does not arrive only brings a redelivery the inbox drops.
        await asyncio.gather(*(message.ack() for message in batch), return_exceptions=True)
        return True

    @staticmethod
    def _waited(registration: _Registration, message: Msg) -> int:
        return registration.waited.get(_message_id(message), 0)

    async def _decoded(self, batch: list[Msg]) -> dict[int, RecordedEvent]:
        """The batch's events that decode (by ``id`` of their message), with the keys that
        open them fetched at once: one statement for the batch, not one per event. What
        does not decode, or a failed fetch, is left to each message's own handling."""
        decoded: dict[int, RecordedEvent] = {}
        for message in batch:
            with contextlib.suppress(ValidationError, ValueError):
                decoded[id(message)] = js.decode(message.data)
        if len(decoded) > 1:
            with contextlib.suppress(Exception):
                await self.store.prefetch_keys(list(decoded.values()))
        return decoded

    async def _process(
        self, registration: _Registration, message: Msg, event: RecordedEvent | None = None
    ) -> bool:
        """Handle one message (``event``: it decoded already); False when it was handed
        back to JetStream for a retry."""
        spec = registration.spec
        headers = dict(message.headers or {})
        # Deliveries spent waiting behind an earlier event of the stream are not failures.
        deliveries = max(_deliveries(message) - self._waited(registration, message), 1)
        message_id = _message_id(message)
        if event is None:
            try:
                event = js.decode(message.data)
            except (ValidationError, ValueError) as error:
                return await self._give_up(spec, message, message_id, headers, error, deliveries)
        try:
            await self._handle(registration, event, deliveries, trace_context=headers)
        except PermanentError as error:
            return await self._give_up(spec, message, message_id, headers, error, deliveries)
        except Exception as error:  # noqa: BLE001 - every failure is retried or parked
            if deliveries >= spec.max_deliver:
                return await self._give_up(spec, message, message_id, headers, error, deliveries)
            log.warning(
                "consumer %s failed on %s (delivery %d/%d): %s",
                spec.name,
                event.event_type,
                deliveries,
                spec.max_deliver,
                describe_error(error),
            )
            await message.nak(delay=spec.delay(deliveries))
            return False
        await message.ack()
        return True

    async def _handle(
        self,
        registration: _Registration,
        event: RecordedEvent,
        deliveries: int,
        *,
        redrive: bool = False,
        trace_context: Mapping[str, str] | None = None,
    ) -> None:
        try:
            # Published as stored: handlers get the personal data in clear (or erased).
            (event,) = await self.store.open([event])
        except ValueError as error:  # a sealed event that does not open: altered
            raise PermanentError(str(error)) from error
        token = attach_trace_context(trace_context or event.metadata.trace)
        try:
            await self._run_handler(registration, event, deliveries, redrive=redrive)
        finally:
            detach(token)

    async def _run_handler(
        self,
        registration: _Registration,
        event: RecordedEvent,
        deliveries: int,
        *,
        redrive: bool,
    ) -> None:
        context = HandlerContext(
            consumer=registration.spec.name,
            store=self.store,
            event=event,
            deliveries=deliveries,
            redrive=redrive,
            registry=self.registry,
        )
        try:
            await self._traced(registration, context)
        except DuplicateMessageError:
            log.debug("consumer %s already processed %s", registration.spec.name, event.event_id)

    async def _traced(self, registration: _Registration, context: HandlerContext) -> None:
        """The handler in its span; an error is recorded on the span (redacted) and
        re-raised."""
        event = context.event
        with tracer.start_as_current_span(
            f"{registration.spec.name} {event.event_type}",
            # Exception texts may quote a citizen's input: record its description ourselves.
            record_exception=False,
            set_status_on_exception=False,
            attributes={
                "adminduk.consumer": registration.spec.name,
                "adminduk.event.type": event.event_type,
                "adminduk.event.position": event.position,
                "adminduk.stream.category": event.category,
                "adminduk.deliveries": context.deliveries,
                **_ticket_attribute(event),
            },
        ) as span:
            try:
                await registration.handler(context)
            except (DuplicateMessageError, NotInBatchError):
                raise
            except Exception as error:
                span.set_status(StatusCode.ERROR, describe_error(error))
                raise

    async def _give_up(
        self,
        spec: ConsumerSpec,
        message: Msg,
        message_id: str,
        headers: dict[str, str],
        error: BaseException,
        deliveries: int,
    ) -> bool:
        """Park the message in dead_letters, then terminate it (True). If Postgres cannot
        take it, hand it back to JetStream for a retry (False) rather than lose it: the
        server-side delivery limit is off, so the nak is always honoured."""
        try:
            await record_dead_letter(
                self.store.pool,
                consumer=spec.name,
                message_id=message_id,
                subject=message.subject,
                payload=message.data,
                headers=headers,
                error=describe_error(error),
                deliveries=deliveries,
            )
        except Exception as store_error:  # noqa: BLE001 - keep the message instead
            log.error(
                "consumer %s cannot dead-letter %s: %s",
                spec.name,
                message_id,
                describe_error(store_error),
            )
            await message.nak(delay=spec.delay(len(spec.backoff)))
            return False
        log.error(
            "consumer %s dead-lettered %s after %d deliveries: %s",
            spec.name,
            message_id,
            deliveries,
            describe_error(error),
        )
        await message.term()
        return True

    # -- re-drive ---------------------------------------------------------------------

    async def _redrive_loop(self) -> None:
        while True:
            try:
                while await self.redrive_one():
                    pass
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
                log.warning("dead-letter re-drive paused: %s", type(error).__name__)
            await asyncio.sleep(self._redrive_interval)

    async def redrive_one(self) -> bool:
        """Run the handler once more for one dead letter marked ``redrive``; True if one was
        found. The row stays locked while the handler runs, so replicas do not collide."""
        names = list(self._registrations)
        if not names:
            return False
        async with self.store.pool.acquire() as connection, connection.transaction():
            row = await connection.fetchrow(
                """
                SELECT id, consumer, payload FROM dead_letters
                WHERE consumer = ANY($1::text[]) AND status = 'redrive'
                ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED
                """,
                names,
            )
            if row is None:
                return False
            registration = self._registrations[row["consumer"]]
            try:
                event = js.decode(bytes(row["payload"]))
                await self._handle(registration, event, deliveries=0, redrive=True)
            except Exception as error:  # noqa: BLE001 - it goes back to the dead
                await connection.execute(
                    "UPDATE dead_letters SET status = 'dead', error = $2, last_failed_at = now(),"
                    " deliveries = deliveries + 1 WHERE id = $1",
                    row["id"],
                    describe_error(error),
                )
                log.error("re-drive of dead letter %d failed: %s", row["id"], describe_error(error))
                return True
            await connection.execute(
                "UPDATE dead_letters SET status = 'redriven', resolved_at = now() WHERE id = $1",
                row["id"],
            )
            log.info("re-drove dead letter %d for %s", row["id"], row["consumer"])
            return True
