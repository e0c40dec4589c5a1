"""Traffic of the webhook benchmark: citizens' messages, the open-loop sender, and the
watchers that find what became of each message.

Times are wall-clock seconds (``time.time()`` scale, read through a monotonic clock) so
that they compare with Postgres' ``recorded_at`` on the same machine.

- :class:`CloudWatcher` reads the fake Cloud API's outbox incrementally (``GET
  /bench/outbox?after=N``): every message the office sent, with the instant the fake Cloud
  API received it (``time.time()`` there, the same clock as here and as Postgres').
- :class:`StoreWatcher` tails the ``events`` table by position: when the webhook stored the
  message (``WhatsAppMessageReceived``), when intake made the ticket (``RequestReceived``),
  when notify recorded the send after the Cloud API answered (``NotificationSent``).
- :class:`QueueWatcher` samples the backlog in front of each stage: events not yet relayed,
  and messages pending at each JetStream consumer.
- :class:`IntegratorWatcher` is an integrator: subscribed to ``adminduk.public.>`` as user
  ``integrator``, and reading what the integrator webhook receiver (in the fake Cloud API
  process) got; commit (``recorded_at``) -> arrival for both.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Final

import asyncpg
import httpx
import nats
import orjson

from benchmarks.webhook_system import PHONE_NUMBER_ID
from shared.bus.jetstream import ALL_PUBLIC, STREAM_NAME
from shared.bus.relay import CHECKPOINT
from shared.whatsapp.webhook import SIGNATURE_HEADER, signature
from tests.support import text_webhook

log = logging.getLogger("bench.webhook")

NIK_REGION: Final = "360301"
"""Region of the README example's NIK (born 17-08-1999, a woman: 570899, serial 0001)."""
KK_PREFIX: Final = "360301200118"
"""No. KK of the README example without its 4-digit serial (0003 there)."""
REQUEST: Final = "#KTP#{nik}#{kk}#SITI AMINAH#SENTUL#BALARAJA#PEMULA#"
SERIALS: Final = 9999
ACK_MARKER: Final = "Nomor tiket:"
CLOUD_POLL_PAUSE: Final = 0.05
STORE_POLL_PAUSE: Final = 0.2
QUEUE_POLL_PAUSE: Final = 1.0
CONSUMERS: Final = ("intake-messages", "notify-replies", "intake-request-status")


class Clock:
    """Wall-clock seconds that never jump: ``time.time()`` at start plus monotonic time."""

    def __init__(self) -> None:
        self._wall = time.time()
        self._base = time.perf_counter()

    def now(self) -> float:
        return self._wall + time.perf_counter() - self._base


@dataclass
class Message:
    """One citizen's KTP request and everything observed about it."""

    index: int
    step: int
    phone: str
    message_id: str
    body: bytes = field(repr=False)
    signature: str = field(repr=False)
    scheduled: float | None = None
    """When the open-loop schedule wanted it sent; None if the step was cut before it."""
    withdrawn: bool = False
    """Still waiting for a connection when its step was cut, so never sent."""
    started: float | None = None
    """When the POST actually began (the sender's own lag is ``started - scheduled``)."""
    answered: float | None = None
    status: int | None = None
    error: str | None = None
    stored: float | None = None
    """``recorded_at`` of its ``WhatsAppMessageReceived``."""
    request_event: str | None = None
    ticket: str | None = None
    requested: float | None = None
    """``recorded_at`` of its ``RequestReceived``."""
    notified: float | None = None
    """``recorded_at`` of the ``NotificationSent`` for that ``RequestReceived``."""
    seen: float | None = None
    """When the fake Cloud API received the first acknowledgement for this phone."""
    acknowledgements: int = 0
    """Messages carrying "Nomor tiket:" the fake Cloud API accepted for this phone (each
    with its own wamid: every one of them reaches the citizen)."""
    other_replies: int = 0
    acknowledged_ticket: str | None = None
    replies: list[str] = field(default_factory=list, repr=False)
    """Every text sent to this phone, in order (for the report's example of a double)."""

    @property
    def sent(self) -> bool:
        return self.scheduled is not None and not self.withdrawn

    @property
    def arrived(self) -> float | None:
        """When the acknowledgement reached the fake Cloud API (its own receipt time); if
        the outbox has not been read yet, ``NotificationSent`` (recorded after the answer)."""
        return self.seen if self.seen is not None else self.notified

    def since_scheduled(self, instant: float | None) -> float | None:
        """Milliseconds from the scheduled send to ``instant``."""
        if self.scheduled is None or instant is None:
            return None
        return (instant - self.scheduled) * 1000


def request_text(index: int) -> str:
    """The README's KTP request for a different person each time: the NIK's serial and
    birth day vary (28 x 9,999 distinct NIKs), since a second open request for the same
    person is answered with the first ticket, not a new one."""
    day = 41 + index // SERIALS % 28  # women's birth days 1-28 (+40)
    nik = f"{NIK_REGION}{day:02d}0899{index % SERIALS + 1:04d}"
    kk = f"{KK_PREFIX}{index // SERIALS % SERIALS + 1:04d}"
    return REQUEST.format(nik=nik, kk=kk)


def phone_of(index: int) -> str:
    return f"62890{index:08d}"


def webhook_body(phone: str, message_id: str, text: str) -> bytes:
    """A Cloud API webhook carrying one text message, serialised as Meta does, for the
    business number the runtime is configured with (intake ignores other numbers')."""
    webhook = text_webhook(phone, message_id, text, phone_number_id=PHONE_NUMBER_ID)
    return json.dumps(webhook, separators=(",", ":")).encode()


def make_messages(step: int, first: int, count: int, run_tag: str, secret: str) -> list[Message]:
    messages = []
    for index in range(first, first + count):
        phone = phone_of(index)
        message_id = f"wamid.BENCH{run_tag}{index:08d}"
        body = webhook_body(phone, message_id, request_text(index))
        messages.append(Message(index, step, phone, message_id, body, signature(body, secret)))
    return messages


# -- sending -----------------------------------------------------------------------------


async def post(
    client: httpx.AsyncClient,
    url: str,
    message: Message,
    clock: Clock,
    connections: asyncio.Semaphore,
    withdraw: asyncio.Event,
) -> None:
    message.started = clock.now()
    try:
        # Wait for a free connection here, in a plain FIFO: httpx's own pool scans every
        # waiting request each time a connection frees up, which costs the sender a core
        # once thousands wait.
        async with connections:
            if withdraw.is_set():
                message.withdrawn = True
                return
            response = await client.post(
                url,
                content=message.body,
                headers={SIGNATURE_HEADER: message.signature, "Content-Type": "application/json"},
            )
        message.status = response.status_code
    except httpx.HTTPError as error:
        message.error = type(error).__name__
    finally:
        if not message.withdrawn:
            message.answered = clock.now()


async def send_open_loop(
    client: httpx.AsyncClient,
    url: str,
    messages: list[Message],
    rate: float,
    clock: Clock,
    cut: asyncio.Event,
    connections: int,
) -> None:
    """POST ``messages`` at ``rate`` per second on a fixed schedule, each its own task, so
    that a slow answer never delays the next message (open loop); at most ``connections``
    requests are in flight, the others wait for a connection. When ``cut`` is set, stops
    scheduling and withdraws the messages still waiting for a connection, then waits for
    the answers of the requests in flight."""
    slots = asyncio.Semaphore(connections)
    posts: list[asyncio.Task[None]] = []
    start = clock.now() + 0.01
    for number, message in enumerate(messages):
        due = start + number / rate
        delay = due - clock.now()
        if delay > 0:
            await asyncio.sleep(delay)
        if cut.is_set():
            break
        message.scheduled = due
        posts.append(asyncio.create_task(post(client, url, message, clock, slots, cut)))
    await asyncio.gather(*posts)


# -- the fake Cloud API ------------------------------------------------------------------


@dataclass(frozen=True)
class OutboxItem:
    seq: int
    phone: str
    wamid: str
    kind: str
    text: str
    at: float


class CloudWatcher:
    """Reads the fake Cloud API's outbox about every :data:`CLOUD_POLL_PAUSE` seconds, only
    what is new since the last read, and hands each message to its citizen's ``Message``."""

    def __init__(self, base: str, clock: Clock, by_phone: dict[str, Message]) -> None:
        self.base = base
        self.clock = clock
        self.by_phone = by_phone
        self.client = httpx.AsyncClient(base_url=base, timeout=30, trust_env=False)
        self.next = 0
        self.items = 0
        self.strangers = 0
        """Messages to phone numbers this benchmark never used."""
        self.cycles: list[float] = []
        """Seconds from one read's answer to the next's."""
        self.polls = 0
        self.failures = 0

    async def poll(self) -> int:
        response = await self.client.get("/bench/outbox", params={"after": self.next})
        response.raise_for_status()
        answer = orjson.loads(response.content)
        for seq, phone, wamid, kind, text, at, _callback in answer["items"]:
            self.note(OutboxItem(int(seq), str(phone), str(wamid), str(kind), str(text), at))
        self.next = int(answer["next"])
        return len(answer["items"])

    def note(self, item: OutboxItem) -> None:
        self.items += 1
        message = self.by_phone.get(item.phone)
        if message is None:
            self.strangers += 1
            return
        message.replies.append(item.text)
        if ACK_MARKER in item.text:
            message.acknowledgements += 1
            message.seen = item.at if message.seen is None else min(message.seen, item.at)
            rest = item.text.split(ACK_MARKER, 1)[1].split()
            message.acknowledged_ticket = message.acknowledged_ticket or (rest[0] if rest else None)
        else:
            message.other_replies += 1

    async def stats(self) -> dict[str, int]:
        response = await self.client.get("/bench/stats")
        response.raise_for_status()
        stats: dict[str, int] = orjson.loads(response.content)
        return stats

    async def run(self, stop: asyncio.Event) -> None:
        last: float | None = None
        while not stop.is_set():
            try:
                await self.poll()
            except (httpx.HTTPError, ValueError, KeyError) as error:
                self.failures += 1
                log.warning("reading the fake Cloud API's outbox failed: %r", error)
            now = self.clock.now()
            if last is not None:
                self.cycles.append(now - last)
            last = now
            self.polls += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), CLOUD_POLL_PAUSE)

    async def aclose(self) -> None:
        await self.client.aclose()


# -- integrators -------------------------------------------------------------------------


@dataclass(frozen=True)
class Arrival:
    position: int
    event_type: str
    at: float
    verified: bool = True


class IntegratorWatcher:
    """An integrator of the office: the public events on NATS (``adminduk.public.>`` as
    user ``integrator``) and the signed webhooks the fake Cloud API process received for
    the benchmark's webhook subscription; each arrival is matched to its event's commit
    (``recorded_at``, by position) when a step's figures are taken."""

    def __init__(self, nats_url: str, fake_cloud: str, clock: Clock) -> None:
        self.nats_url = nats_url
        self.clock = clock
        self.client = httpx.AsyncClient(base_url=fake_cloud, timeout=30, trust_env=False)
        self.nats: list[Arrival] = []
        self.webhooks: list[Arrival] = []
        self.next = 0
        self.connection: Any = None
        self.failures = 0

    async def connect(self) -> None:
        self.connection = await nats.connect(self.nats_url, name="webhook-bench-integrator")

        async def arrived(msg: Any) -> None:
            at = self.clock.now()
            try:
                event = orjson.loads(msg.data)
                self.nats.append(Arrival(int(event["position"]), str(event["type"]), at))
            except (ValueError, KeyError, TypeError):
                self.failures += 1

        await self.connection.subscribe(ALL_PUBLIC, cb=arrived)

    async def poll(self) -> None:
        response = await self.client.get("/bench/integrator", params={"after": self.next})
        response.raise_for_status()
        answer = orjson.loads(response.content)
        for _seq, _event_id, event_type, position, at, verified in answer["items"]:
            if position is None:
                self.failures += 1
                continue
            self.webhooks.append(Arrival(int(position), str(event_type), at, bool(verified)))
        self.next = int(answer["next"])

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.poll()
            except (httpx.HTTPError, ValueError, KeyError) as error:
                log.warning("reading the integrator webhooks failed: %r", error)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), STORE_POLL_PAUSE)

    async def aclose(self) -> None:
        await self.client.aclose()
        if self.connection is not None:
            with contextlib.suppress(Exception):
                await self.connection.close()


async def register_integrator_webhook(officer_api: str, token: str, url: str, secret: str) -> str:
    """A webhook subscription for every public type, through the officer API (an admin's
    bearer token); returns its id."""
    async with httpx.AsyncClient(timeout=30, trust_env=False) as client:
        response = await client.post(
            f"{officer_api}/webhooks",
            headers={"Authorization": f"Bearer {token}"},
            json={"url": url, "secret": secret, "description": "webhook benchmark"},
        )
        response.raise_for_status()
        return str(response.json()["id"])


# -- the event store ---------------------------------------------------------------------

STAGE_EVENTS: Final = (
    "WhatsAppMessageReceived",
    "RequestReceived",
    "NotificationSent",
    "NotificationFailed",
    "InvalidRequestReceived",
)


class StoreWatcher:
    """Tails the ``events`` table for the events that mark each message's stages."""

    def __init__(self, dsn: str, by_message_id: dict[str, Message]) -> None:
        self.dsn = dsn
        self.by_message_id = by_message_id
        self.by_request_event: dict[str, Message] = {}
        self.position = 0
        self.unmatched: dict[str, int] = {}
        """Stage events of messages this benchmark did not send, by type."""
        self.problems: dict[str, int] = {}
        """``NotificationFailed`` and ``InvalidRequestReceived`` for our messages."""
        self.connection: asyncpg.Connection | None = None
        self.lock = asyncio.Lock()
        """One connection, used by the tailing loop and the steps: one query at a time."""

    async def connect(self) -> None:
        self.connection = await asyncpg.connect(self.dsn)

    async def fetch(self, query: str, *args: object) -> list[asyncpg.Record]:
        assert self.connection is not None
        async with self.lock:
            rows: list[asyncpg.Record] = await self.connection.fetch(query, *args)
            return rows

    async def poll(self) -> int:
        rows = await self.fetch(
            "SELECT position, event_id, event_type, recorded_at, data->>'message_id' AS mid, "
            "data->>'ticket' AS ticket, data->>'cause_event_id' AS cause "
            "FROM events WHERE position > $1 AND event_type = ANY($2::text[]) "
            "ORDER BY position LIMIT 20000",
            self.position,
            list(STAGE_EVENTS),
        )
        for row in rows:
            self.position = max(self.position, int(row["position"]))
            self._note(row)
        return len(rows)

    def _note(self, row: asyncpg.Record) -> None:
        kind = str(row["event_type"])
        at = float(row["recorded_at"].timestamp())
        if kind in {"NotificationSent", "NotificationFailed"}:
            message = self.by_request_event.get(str(row["cause"]))
        else:
            message = self.by_message_id.get(str(row["mid"]))
        if message is None:
            self.unmatched[kind] = self.unmatched.get(kind, 0) + 1
            return
        if kind == "WhatsAppMessageReceived":
            message.stored = at
        elif kind == "RequestReceived":
            message.requested = at
            message.ticket = row["ticket"]
            message.request_event = str(row["event_id"])
            self.by_request_event[message.request_event] = message
        elif kind == "NotificationSent":
            message.notified = message.notified or at
        else:
            self.problems[kind] = self.problems.get(kind, 0) + 1

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                if await self.poll() >= 20000:
                    continue
            except (OSError, asyncpg.PostgresError) as error:
                log.warning("polling the event store failed: %r", error)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), STORE_POLL_PAUSE)

    async def event_counts(self, after: int, until: int) -> dict[str, int]:
        """Events of every type stored at positions in (after, until]."""
        rows = await self.fetch(
            "SELECT event_type, count(*) AS n FROM events "
            "WHERE position > $1 AND position <= $2 GROUP BY event_type",
            after,
            until,
        )
        return {str(row["event_type"]): int(row["n"]) for row in rows}

    async def head(self) -> int:
        rows = await self.fetch("SELECT coalesce(max(position), 0) AS head FROM events")
        return int(rows[0]["head"])

    async def commit_times(self, positions: list[int]) -> dict[int, float]:
        """``recorded_at`` of the events at ``positions``."""
        rows = await self.fetch(
            "SELECT position, recorded_at FROM events WHERE position = ANY($1::bigint[])",
            positions,
        )
        return {int(row["position"]): float(row["recorded_at"].timestamp()) for row in rows}

    async def dead_letters(self) -> dict[str, int]:
        rows = await self.fetch(
            "SELECT consumer, count(*) AS n FROM dead_letters GROUP BY consumer"
        )
        return {str(row["consumer"]): int(row["n"]) for row in rows}

    async def aclose(self) -> None:
        if self.connection is not None:
            await self.connection.close()


# -- queues in front of each stage -------------------------------------------------------


@dataclass(frozen=True)
class QueueSample:
    at: float
    relay: int
    """Events stored but not yet published by the relay."""
    consumers: dict[str, int]
    """Messages each consumer has not yet acknowledged (pending + in flight)."""


class QueueWatcher:
    """Samples once a second where messages wait: before the relay, at each consumer."""

    def __init__(self, dsn: str, nats_url: str, clock: Clock) -> None:
        self.dsn = dsn
        self.nats_url = nats_url
        self.clock = clock
        self.samples: list[QueueSample] = []
        self.connection: asyncpg.Connection | None = None
        self.client: Any = None

    async def connect(self) -> None:
        self.connection = await asyncpg.connect(self.dsn)
        self.client = await nats.connect(self.nats_url, name="webhook-bench")

    async def sample(self) -> QueueSample:
        assert self.connection is not None
        relay = await self.connection.fetchval(
            "SELECT coalesce((SELECT max(position) FROM events), 0) - coalesce("
            "(SELECT position FROM checkpoints WHERE name = $1), 0)",
            CHECKPOINT,
        )
        jetstream = self.client.jetstream()
        consumers: dict[str, int] = {}
        for name in CONSUMERS:
            with contextlib.suppress(Exception):
                info = await jetstream.consumer_info(STREAM_NAME, name, timeout=2)
                consumers[name] = int(info.num_pending or 0) + int(info.num_ack_pending or 0)
        return QueueSample(self.clock.now(), int(relay), consumers)

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                self.samples.append(await self.sample())
            except (OSError, asyncpg.PostgresError) as error:
                log.warning("sampling the queues failed: %r", error)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), QUEUE_POLL_PAUSE)

    def peaks(self, start: float, end: float) -> dict[str, int]:
        """Largest backlog of each queue between ``start`` and ``end``."""
        peaks: dict[str, int] = {"relay": 0, **dict.fromkeys(CONSUMERS, 0)}
        for sample in self.samples:
            if start <= sample.at <= end:
                peaks["relay"] = max(peaks["relay"], sample.relay)
                for name, value in sample.consumers.items():
                    peaks[name] = max(peaks[name], value)
        return peaks

    async def aclose(self) -> None:
        if self.client is not None:
            with contextlib.suppress(Exception):
                await self.client.close()
        if self.connection is not None:
            await self.connection.close()


def new_run_tag() -> str:
    return uuid.uuid4().hex[:8].upper()
