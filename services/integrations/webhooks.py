"""Signed HTTP webhooks: public events POSTed to integrators who cannot speak NATS.

Each active subscription is served on its own: the first public event after its cursor
(filtered by its event types) is POSTed with a Standard Webhooks signature; a 2xx moves the
cursor past it, anything else (another status, a time-out, a refused connection) keeps the
cursor where it is and tries again after an exponential backoff with full jitter. Nothing
is ever skipped: per subscriber, events arrive in position order. A subscriber failing
without a break for longer than ``webhook_dead_letter_after`` is parked in ``dead_letter``
with the event it was stuck on, until a person re-drives it.

Every attempt holds its subscription's row lock (``FOR UPDATE SKIP LOCKED``) from the
read of the cursor to the record of the outcome, so several dispatchers (processes) share
the subscribers without ever sending one subscriber's events at the same time; a run of
deliveries to a subscriber that keeps up (up to ``DELIVERIES_PER_CLAIM``) is one claim and
one write of its cursor. A crash between a POST and the commit makes the same events go
again: delivery is at least once, and integrators deduplicate on ``webhook-id`` (the public
event's id, the same on every retry and replay).

The dispatcher wakes on the event store's NOTIFY (and on operators' changes, see
``subscriptions.WEBHOOKS_CHANNEL``) and polls as a fallback. All decisions about time use
an injected clock, so tests move time instead of sleeping.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Final, Protocol

import asyncpg
import httpx
from opentelemetry import trace
from standardwebhooks import Webhook

from services.integrations import subscriptions as subs
from services.integrations.destinations import Destinations, GuardedBackend
from services.integrations.subscriptions import Failure, StuckEvent, Subscription
from shared.config import Settings
from shared.eventstore.store import NOTIFY_CHANNEL
from shared.public import PublicEvent
from shared.runtime.rounds import report_failed_round

log = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)

EVENT_TYPE_HEADER: Final = "Adminduk-Event-Type"
POSITION_HEADER: Final = "Adminduk-Position"
USER_AGENT: Final = "adminduk-webhooks/1"
MAX_ERROR_TEXT: Final = 300
"""How much of a connection error's description is kept as the last error."""
DELIVERIES_PER_CLAIM: Final = 64
"""Events sent to one subscriber (one after the other) under one claim of its row: the
cursor is written once for them. A crash in between sends them again (at least once)."""
MAX_KEPT_ANSWER: Final = 64 * 1024
"""An answer is read (and dropped) up to this much, so that the connection stays open for
the next event; a longer answer costs the connection, nothing more."""

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


# -- signing ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class SignedRequest:
    """The body and headers of one POST; the body is exactly the bytes signed."""

    body: bytes
    headers: dict[str, str]


def signed_request(event: PublicEvent, secret: str, timestamp: datetime) -> SignedRequest:
    """The Standard Webhooks request for ``event``: ``webhook-id`` is the event's id (the
    same on every retry and replay), ``webhook-signature`` is ``v1,<base64 HMAC-SHA256 of
    "id.timestamp.body">`` with the subscription's secret."""
    body = event.model_dump_json().encode()
    signature = Webhook(secret).sign(event.id, timestamp, body)
    return SignedRequest(
        body=body,
        headers={
            "content-type": "application/json",
            "user-agent": USER_AGENT,
            "webhook-id": event.id,
            "webhook-timestamp": str(int(timestamp.timestamp())),
            "webhook-signature": signature,
            EVENT_TYPE_HEADER: event.type,
            POSITION_HEADER: str(event.position),
        },
    )


# -- retries ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter, and when a failing subscriber is parked."""

    base: timedelta
    max: timedelta
    dead_letter_after: timedelta

    @classmethod
    def from_settings(cls, settings: Settings) -> RetryPolicy:
        return cls(
            base=settings.webhook_retry_base,
            max=settings.webhook_retry_max,
            dead_letter_after=settings.webhook_dead_letter_after,
        )

    def backoff(self, failures: int, rng: random.Random) -> timedelta:
        """A random wait in ``[0, min(max, base * 2^(failures-1))]``: full jitter spreads
        the retries of many subscribers that failed together (an outage on their side)."""
        ceiling = min(self.max, self.base * (1 << min(max(failures - 1, 0), 32)))
        return ceiling * rng.random()

    def parks(self, failing_since: datetime, now: datetime) -> bool:
        return now - failing_since >= self.dead_letter_after


# -- the dispatcher ----------------------------------------------------------------------------


class PublicEvents(Protocol):
    """What the dispatcher reads: :class:`services.integrations.log.PublicLog`."""

    async def read(
        self, after: int, limit: int = 500, types: frozenset[str] | None = None
    ) -> tuple[list[PublicEvent], int]: ...


class Outcome(StrEnum):
    DELIVERED = "delivered"
    SKIPPED = "skipped"
    """The cursor moved over events that are not for this subscriber."""
    CAUGHT_UP = "caught_up"
    RETRYING = "retrying"
    PARKED = "parked"
    NOT_DUE = "not_due"
    """Not active, not due yet, or held by another dispatcher."""


@dataclass(frozen=True)
class _Window:
    """Public events read ahead for one subscriber: those in ``(after, scanned]`` that
    match ``types``. The log never changes below its head, so a window stays true."""

    after: int
    scanned: int
    types: frozenset[str] | None
    events: tuple[PublicEvent, ...]

    def covers(self, position: int, types: frozenset[str] | None) -> bool:
        return self.types == types and self.after <= position < self.scanned


@dataclass(frozen=True)
class _Next:
    event: PublicEvent | None
    scanned: int


class Dispatcher:
    """Delivers public events to every active webhook subscriber (see module doc)."""

    def __init__(
        self,
        dsn: str,
        pool: asyncpg.Pool,
        public: PublicEvents,
        http: httpx.AsyncClient,
        policy: RetryPolicy,
        *,
        timeout: float,
        clock: Clock = utc_now,
        rng: random.Random | None = None,
        poll_interval: float = 1.0,
        concurrency: int = 8,
        read_ahead: int = 200,
        settle: float = 0.0,
    ) -> None:
        self._dsn = dsn
        self._settle = settle
        self._pool = pool
        self._public = public
        self._http = http
        self._policy = policy
        self._timeout = timeout
        self._clock = clock
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography
        self._poll_interval = poll_interval
        self._slots = asyncio.Semaphore(concurrency)
        self._read_ahead = read_ahead
        self._wake = asyncio.Event()
        self._wakes = 0
        self._windows: dict[str, _Window] = {}
        self._draining: dict[str, asyncio.Task[None]] = {}
        self._stopping = False
        self.rounds = 0
        """Rounds that looked for due subscribers (woken or polled): for tests and probes."""

    def wake(self) -> None:
        """Look for due subscribers now (new events, an operator's change, a moved clock)."""
        self._wakes += 1
        self._wake.set()

    # -- the loop ------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Serve every due subscriber until ``stop``; each one drains in its own task."""
        listener: asyncpg.Connection | None = None
        try:
            while not stop.is_set():
                if listener is None or listener.is_closed():
                    listener = await self._listen()
                self._wake.clear()
                try:
                    await self._start_due()
                except Exception as error:  # noqa: BLE001 - reported; the loop goes on
                    report_failed_round(log, "webhook dispatch", error)
                self.rounds += 1
                await self._sleep(stop)
        finally:
            self._stopping = True
            if listener is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(listener.close(), 5)
            tasks = list(self._draining.values())
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _listen(self) -> asyncpg.Connection | None:
        """A connection of its own that wakes the loop on new events and operators'
        changes; without one (the database is away) the loop polls until it can make one."""
        listener: asyncpg.Connection | None = None
        try:
            listener = await asyncpg.connect(self._dsn)
            await listener.add_listener(NOTIFY_CHANNEL, self._on_notify)
            await listener.add_listener(subs.WEBHOOKS_CHANNEL, self._on_notify)
        except Exception as error:  # noqa: BLE001 - polling goes on
            report_failed_round(log, "webhook listener", error)
            if listener is not None:
                with contextlib.suppress(Exception):
                    await listener.close(timeout=5)
            return None
        return listener

    def _on_notify(self, *_: object) -> None:
        self.wake()

    async def _sleep(self, stop: asyncio.Event) -> None:
        waits = [asyncio.ensure_future(self._wake.wait()), asyncio.ensure_future(stop.wait())]
        try:
            await asyncio.wait(waits, timeout=self._poll_interval, return_when="FIRST_COMPLETED")
        finally:
            for waiter in waits:
                waiter.cancel()
        if self._settle > 0:  # let the wake-ups of a busy log gather into one round
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self._settle)

    async def _start_due(self) -> None:
        async with self._pool.acquire() as connection:
            due = await subs.due(connection, self._clock())
        for subscription_id in due:
            if subscription_id not in self._draining:
                self._draining[subscription_id] = asyncio.create_task(
                    self._drain(subscription_id), name=f"webhook-{subscription_id}"
                )

    async def _drain(self, subscription_id: str) -> None:
        """Deliver to one subscriber until it is caught up, waiting or parked."""
        try:
            outcome, wakes = Outcome.DELIVERED, self._wakes
            while outcome in {Outcome.DELIVERED, Outcome.SKIPPED} and not self._stopping:
                wakes = self._wakes
                async with self._slots:
                    outcome = await self.deliver_next(subscription_id)
            if outcome is Outcome.CAUGHT_UP and self._wakes != wakes:
                # An event may have come while this drain ran: the round it woke skipped
                # this subscriber as busy, so look again rather than wait for the poll.
                self._wake.set()
            if outcome in {Outcome.NOT_DUE, Outcome.PARKED}:
                # Removed, parked or held elsewhere: its read-ahead may not be needed again.
                self._windows.pop(subscription_id, None)
        except Exception as error:  # noqa: BLE001 - reported; the next round tries again
            report_failed_round(log, f"webhook {subscription_id}", error)
        finally:
            self._draining.pop(subscription_id, None)

    # -- one attempt ---------------------------------------------------------------------

    async def deliver_next(self, subscription_id: str) -> Outcome:
        """Attempts for one subscriber under its row lock: send its next events one after
        the other (at most :data:`DELIVERIES_PER_CLAIM`), or move the cursor over events
        not for it, and record what happened: a run of deliveries is one write."""
        async with self._pool.acquire() as connection, connection.transaction():
            subscription = await subs.claim(connection, subscription_id, self._clock())
            if subscription is None:
                return Outcome.NOT_DUE
            delivered: int | None = None
            """The status of the last delivery of this run not yet recorded."""
            for _ in range(DELIVERIES_PER_CLAIM):
                found = await self._next(subscription)
                if found.event is None:
                    await self._record(connection, subscription, delivered)
                    if found.scanned <= subscription.position:
                        return Outcome.CAUGHT_UP
                    await subs.advance(connection, subscription.id, found.scanned)
                    return Outcome.SKIPPED
                status, failure = await self._attempt(subscription, found.event)
                if failure is not None:
                    await self._record(connection, subscription, delivered)
                    return await self._failed(
                        connection, subscription, found.event, failure, self._clock()
                    )
                assert status is not None
                delivered = status
                subscription = dataclasses.replace(
                    subscription, position=found.event.position, attempts=0, failing_since=None
                )
            await self._record(connection, subscription, delivered)
            return Outcome.DELIVERED

    async def _record(
        self, connection: subs.Connection, subscription: Subscription, status: int | None
    ) -> None:
        """The deliveries up to ``subscription.position``, the last answered ``status``."""
        if status is not None:
            await subs.record_delivered(
                connection, subscription.id, subscription.position, status, self._clock()
            )

    async def _next(self, subscription: Subscription) -> _Next:
        """The first public event for ``subscription`` after its cursor (from the window
        read ahead when it covers the cursor), or how far the log was scanned without one."""
        position, types = subscription.position, subscription.types_filter
        window = self._windows.get(subscription.id)
        if window is None or not window.covers(position, types):
            events, scanned = await self._public.read(position, self._read_ahead, types)
            window = _Window(position, scanned, types, tuple(events))
            self._windows[subscription.id] = window
        following = next((e for e in window.events if e.position > position), None)
        return _Next(following, window.scanned)

    async def _attempt(
        self, subscription: Subscription, event: PublicEvent
    ) -> tuple[int | None, Failure | None]:
        with tracer.start_as_current_span(
            "webhook deliver",
            record_exception=False,
            attributes={
                "adminduk.webhook.subscription": subscription.id,
                "adminduk.event.type": event.type,
                "adminduk.position": event.position,
                "adminduk.webhook.attempt": subscription.attempts + 1,
            },
        ) as span:
            status, failure = await self._post(subscription, event)
            if status is not None:
                span.set_attribute("http.response.status_code", status)
            if failure is not None:
                span.set_status(trace.StatusCode.ERROR, failure.error)
            return status, failure

    async def _failed(
        self,
        connection: subs.Connection,
        subscription: Subscription,
        event: PublicEvent,
        failure: Failure,
        now: datetime,
    ) -> Outcome:
        failing_since = subscription.failing_since or now
        failures = subscription.attempts + 1
        if self._policy.parks(failing_since, now):
            stuck = StuckEvent(event.id, event.position, event.type)
            await subs.park(
                connection, subscription, stuck, failure, failing_since=failing_since, now=now
            )
            log.warning(
                "webhook %s parked in dead_letter at %s (position %d) after %d failed "
                "attempts since %s: %s",
                subscription.id,
                event.type,
                event.position,
                failures,
                failing_since.isoformat(timespec="seconds"),
                failure.error,
            )
            return Outcome.PARKED
        next_attempt = now + self._policy.backoff(failures, self._rng)
        await subs.record_failure(
            connection,
            subscription,
            failure,
            failing_since=failing_since,
            next_attempt_at=next_attempt,
            now=now,
        )
        log.info(
            "webhook %s: %s (position %d) failed (attempt %d): %s; next attempt in %.1fs",
            subscription.id,
            event.type,
            event.position,
            failures,
            failure.error,
            (next_attempt - now).total_seconds(),
        )
        return Outcome.RETRYING

    async def _post(
        self, subscription: Subscription, event: PublicEvent
    ) -> tuple[int | None, Failure | None]:
        """POST the signed event; a 2xx is a delivery, anything else a failure in words.
        Redirects are not followed (the secret's signature is for the registered URL)."""
        request = signed_request(event, subscription.secret, self._clock())
        try:
            async with asyncio.timeout(self._timeout):
                async with self._http.stream(
                    "POST", subscription.url, content=request.body, headers=request.headers
                ) as response:
                    status = response.status_code
                    # Read to its end (a short answer, as subscribers give) and dropped:
                    # only an answer read whole leaves the connection open for the next
                    # event. Never kept: see below.
                    await _first_bytes(response, MAX_KEPT_ANSWER)
        except (TimeoutError, httpx.TimeoutException):
            return None, Failure(f"no answer within {self._timeout:g}s")
        except httpx.ConnectError as error:
            # Our own words (a refused destination, a name that does not resolve) or the
            # operating system's: nothing the subscriber wrote.
            return None, Failure(f"ConnectError: {error}"[:MAX_ERROR_TEXT])
        except (httpx.HTTPError, httpx.InvalidURL) as error:
            # Other errors may quote what the far end sent (a malformed header line).
            return None, Failure(type(error).__name__)
        if 200 <= status < 300:
            return status, None
        # The status only: the answer's body is the far end's, and whoever reads
        # last_error (any admin) must not read an internal service's answer through it.
        return status, Failure(f"HTTP {status}", status)


async def _first_bytes(response: httpx.Response, limit: int) -> bytes:
    """The start of an answer, without reading a large one whole."""
    taken = b""
    async for chunk in response.aiter_bytes():
        taken += chunk
        if len(taken) >= limit:
            break
    return taken[:limit]


def http_client(
    timeout: float, *, destinations: Destinations, trust_env: bool = True
) -> httpx.AsyncClient:
    """The client deliveries go through: redirects are not followed (a 3xx is a failure,
    the subscriber must register the URL that answers), and every connection goes to an
    address ``destinations`` allows (checked on the address connected to, see
    :class:`GuardedBackend`). No proxy from the environment: a proxy would resolve and
    connect on our behalf, past that check."""
    transport = httpx.AsyncHTTPTransport(
        trust_env=trust_env,
        # Kept as many as used, so that busy moments do not close and reopen connections.
        limits=httpx.Limits(max_connections=32, max_keepalive_connections=32),
    )
    # httpx offers no parameter for httpcore's network backend; the pool's is replaced,
    # wrapping it (tests/integration/test_webhook_destinations.py fails if this stops
    # taking effect).
    pool = transport._pool
    pool._network_backend = GuardedBackend(destinations, pool._network_backend)
    return httpx.AsyncClient(
        transport=transport,
        timeout=httpx.Timeout(timeout),
        follow_redirects=False,
        trust_env=trust_env,
    )
