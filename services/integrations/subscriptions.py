"""Webhook subscriptions in Postgres: what integrators registered, where each one's cursor
stands, and the event a parked subscriber was stuck on.

Operators (CLI, officer API) add, list, show, disable, enable, remove, re-drive and replay;
the dispatcher (``webhooks.py``) claims one due subscription at a time with a row lock and
records what became of its attempt. Every decision about *when* uses the caller's clock
(``now``), never the database's, so tests can move time without sleeping.

Cursor
------
``position`` is the global event-store position up to which the subscriber is served:
every public event at or below it has been delivered (or is not one it asked for). The
dispatcher sends the first matching public event *after* it and moves it only on a 2xx.

Replay (:func:`rewind`) takes a position ``N`` and means **"deliver again every event from
position N on, N included"**: the cursor becomes ``N - 1``. ``0`` and ``1`` both mean from
the first event.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import secrets
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Final
from urllib.parse import urlsplit

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from services.integrations.destinations import Destinations
from shared.eventstore.store import head_position

Connection = asyncpg.Connection | PoolConnectionProxy

SUBSCRIPTION_PREFIX: Final = "wh_"
SECRET_PREFIX: Final = "whsec_"  # noqa: S105 - the Standard Webhooks prefix, not a secret
SECRET_BYTES: Final = 32
"""Standard Webhooks asks for 24 to 64 random bytes; we generate 32."""
WEBHOOKS_CHANNEL: Final = "adminduk_webhooks"
"""Operators NOTIFY it after a change that makes a subscriber due (add, enable, re-drive,
replay), so a dispatcher acts within moments instead of at its next poll."""
MAX_DESCRIPTION: Final = 500
MAX_URL: Final = 2000
DNS_TIMEOUT: Final = 5.0


class State(StrEnum):
    ACTIVE = "active"
    DEAD_LETTER = "dead_letter"
    DISABLED = "disabled"


class SubscriptionError(Exception):
    """Base of the errors operators see (mapped once, in the CLI and in the API)."""


class UnknownSubscriptionError(SubscriptionError):
    """No subscription has this id (API 404)."""


class InvalidSubscriptionError(SubscriptionError, ValueError):
    """A URL, secret, event type or position that cannot be used (API 422, CLI exit 2)."""


class UnknownEventTypesError(InvalidSubscriptionError):
    def __init__(self, unknown: Iterable[str], known: Iterable[str]) -> None:
        self.unknown = tuple(unknown)
        self.known = tuple(sorted(known))
        super().__init__(
            f"unknown event types: {', '.join(self.unknown)}; "
            f"known public event types: {', '.join(self.known)}"
        )


class SubscriptionStateError(SubscriptionError):
    """The subscription's state does not allow the action (API 409)."""


@dataclass(frozen=True)
class Subscription:
    id: str
    url: str
    secret: str = field(repr=False)
    event_types: tuple[str, ...]
    description: str
    state: State
    position: int
    failing_since: datetime | None
    next_attempt_at: datetime | None
    attempts: int
    last_error: str | None
    last_status: int | None
    last_delivered_at: datetime | None
    created_at: datetime
    created_by: str
    updated_at: datetime

    @property
    def types_filter(self) -> frozenset[str] | None:
        """What to ask the public log for: ``None`` (every public type) when none named."""
        return frozenset(self.event_types) or None


@dataclass(frozen=True)
class DeadLetter:
    """The public event a subscriber was stuck on when it was parked."""

    id: int
    subscription_id: str
    event_id: str
    position: int
    event_type: str
    first_failed_at: datetime
    dead_at: datetime
    last_error: str
    last_status: int | None
    attempts: int
    resolved_at: datetime | None
    resolution: str | None


_COLUMNS: Final = (
    "id, url, secret, event_types, description, state, position, failing_since, "
    "next_attempt_at, attempts, last_error, last_status, last_delivered_at, created_at, "
    "created_by, updated_at"
)


def _subscription(row: asyncpg.Record) -> Subscription:
    return Subscription(
        id=row["id"],
        url=row["url"],
        secret=row["secret"],
        event_types=tuple(row["event_types"]),
        description=row["description"],
        state=State(row["state"]),
        position=row["position"],
        failing_since=row["failing_since"],
        next_attempt_at=row["next_attempt_at"],
        attempts=row["attempts"],
        last_error=row["last_error"],
        last_status=row["last_status"],
        last_delivered_at=row["last_delivered_at"],
        created_at=row["created_at"],
        created_by=row["created_by"],
        updated_at=row["updated_at"],
    )


def _dead_letter(row: asyncpg.Record) -> DeadLetter:
    return DeadLetter(**dict(row.items()))


# -- checks --------------------------------------------------------------------------------


def new_subscription_id() -> str:
    return SUBSCRIPTION_PREFIX + secrets.token_hex(8)


def new_secret() -> str:
    """A Standard Webhooks secret: ``whsec_`` and base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def check_url(url: str) -> str:
    """An absolute http(s) URL with a host; anything else is refused before it is stored."""
    url = url.strip()
    if not url or len(url) > MAX_URL or any(c.isspace() for c in url):
        raise InvalidSubscriptionError(f"a webhook URL is one http(s) URL of 1..{MAX_URL} chars")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - parses the port, raising ValueError when it is not a number
    except ValueError as error:
        raise InvalidSubscriptionError(f"not a usable URL ({error})") from None
    if parts.scheme.lower() not in {"http", "https"}:
        raise InvalidSubscriptionError(
            f"a webhook URL must start with http:// or https://, not {parts.scheme or '?'}:"
        )
    if not parts.hostname:
        raise InvalidSubscriptionError("a webhook URL must name a host")
    return url


async def check_destination(url: str, destinations: Destinations) -> None:
    """Refuse a URL whose host resolves to an address webhooks may not reach (loopback,
    private, link-local, ... unless allowed). A name that does not resolve yet is accepted:
    every delivery checks the address it connects to anyway."""
    parts = urlsplit(url)
    assert parts.hostname is not None
    port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
    try:
        async with asyncio.timeout(DNS_TIMEOUT):
            addresses = await destinations.resolve(parts.hostname, port)
    except (OSError, TimeoutError):
        return
    why = destinations.first_refusal(parts.hostname, addresses)
    if why is not None:
        raise InvalidSubscriptionError(f"the webhook URL's host {why}")


def check_secret(secret: str) -> str:
    """A Standard Webhooks secret (``whsec_`` + base64 of 24 to 64 bytes), so that any
    Standard Webhooks library on the integrator's side can use it as it is."""
    if not secret.startswith(SECRET_PREFIX):
        raise InvalidSubscriptionError(
            f"a secret must look like {SECRET_PREFIX}<base64 of 24 to 64 random bytes>; "
            "leave it out and one is generated"
        )
    try:
        key = base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidSubscriptionError("the secret after whsec_ is not valid base64") from None
    if not 24 <= len(key) <= 64:
        raise InvalidSubscriptionError(
            f"the secret holds {len(key)} bytes; Standard Webhooks needs 24 to 64"
        )
    return secret


def check_event_types(types: Iterable[str], known: Collection[str]) -> tuple[str, ...]:
    """The named public event types, each once, in order; none means every public type."""
    wanted = tuple(dict.fromkeys(t.strip() for t in types if t.strip()))
    unknown = [t for t in wanted if t not in known]
    if unknown:
        raise UnknownEventTypesError(unknown, known)
    return wanted


def check_description(description: str) -> str:
    description = description.strip()
    if len(description) > MAX_DESCRIPTION:
        raise InvalidSubscriptionError(f"a description has at most {MAX_DESCRIPTION} characters")
    return description


# -- operators -----------------------------------------------------------------------------


async def _notify(connection: Connection, subscription_id: str) -> None:
    await connection.execute("SELECT pg_notify($1, $2)", WEBHOOKS_CHANNEL, subscription_id)


async def add(
    connection: Connection,
    *,
    url: str,
    known_types: Collection[str],
    event_types: Iterable[str] = (),
    description: str = "",
    created_by: str,
    destinations: Destinations,
    secret: str | None = None,
    start_position: int | None = None,
) -> tuple[Subscription, str]:
    """Register a subscriber; returns it and its secret (shown to the operator once).

    A new subscriber receives the events appended from now on (``start_position`` None:
    its cursor starts at the current head); replay (:func:`rewind`) sends older ones.
    """
    checked_url = check_url(url)
    await check_destination(checked_url, destinations)
    types = check_event_types(event_types, known_types)
    checked_secret = new_secret() if secret is None else check_secret(secret)
    text = check_description(description)
    if start_position is not None and start_position < 0:
        raise InvalidSubscriptionError("a start position is 0 or more")
    row = await connection.fetchrow(
        f"""
        INSERT INTO webhook_subscriptions (id, url, secret, event_types, description,
                                           position, created_by)
        VALUES ($1, $2, $3, $4, $5,
                coalesce($6, (SELECT coalesce(max(position), 0) FROM events)), $7)
        RETURNING {_COLUMNS}
        """,
        new_subscription_id(),
        checked_url,
        checked_secret,
        list(types),
        text,
        start_position,
        created_by,
    )
    assert row is not None
    await _notify(connection, row["id"])
    return _subscription(row), checked_secret


async def list_subscriptions(connection: Connection) -> list[Subscription]:
    rows = await connection.fetch(
        f"SELECT {_COLUMNS} FROM webhook_subscriptions ORDER BY created_at, id"
    )
    return [_subscription(row) for row in rows]


async def get(connection: Connection, subscription_id: str) -> Subscription:
    row = await connection.fetchrow(
        f"SELECT {_COLUMNS} FROM webhook_subscriptions WHERE id = $1", subscription_id
    )
    if row is None:
        raise UnknownSubscriptionError(f"no webhook subscription {subscription_id}")
    return _subscription(row)


async def dead_letters(
    connection: Connection, subscription_id: str, *, include_resolved: bool = True
) -> list[DeadLetter]:
    """The events this subscriber was parked on, newest first."""
    rows = await connection.fetch(
        """
        SELECT id, subscription_id, event_id, position, event_type, first_failed_at, dead_at,
               last_error, last_status, attempts, resolved_at, resolution
        FROM webhook_dead_letters
        WHERE subscription_id = $1 AND ($2 OR resolved_at IS NULL)
        ORDER BY id DESC
        """,
        subscription_id,
        include_resolved,
    )
    return [_dead_letter(row) for row in rows]


async def _locked(connection: Connection, subscription_id: str) -> Subscription:
    """The subscription, row-locked for the caller's transaction: waits for an attempt in
    flight to finish, so an operator's change never interleaves with a delivery."""
    row = await connection.fetchrow(
        f"SELECT {_COLUMNS} FROM webhook_subscriptions WHERE id = $1 FOR UPDATE",
        subscription_id,
    )
    if row is None:
        raise UnknownSubscriptionError(f"no webhook subscription {subscription_id}")
    return _subscription(row)


_RESET_RETRIES: Final = "attempts = 0, failing_since = NULL, next_attempt_at = NULL"


async def _resolve_dead_letter(connection: Connection, subscription_id: str, how: str) -> None:
    await connection.execute(
        "UPDATE webhook_dead_letters SET resolved_at = now(), resolution = $2 "
        "WHERE subscription_id = $1 AND resolved_at IS NULL",
        subscription_id,
        how,
    )


async def redrive(connection: Connection, subscription_id: str) -> Subscription:
    """A parked subscriber becomes active again and resumes at its cursor, that is at the
    event it was stuck on (unless a replay moved the cursor meanwhile), with a fresh
    failure streak: it is parked again only after failing for the whole dead-letter time."""
    async with connection.transaction():
        current = await _locked(connection, subscription_id)
        if current.state is not State.DEAD_LETTER:
            raise SubscriptionStateError(
                f"webhook {subscription_id} is {current.state.value}, not dead_letter; "
                "only a parked subscriber is re-driven"
            )
        row = await connection.fetchrow(
            f"UPDATE webhook_subscriptions SET state = 'active', {_RESET_RETRIES}, "
            f"updated_at = now() WHERE id = $1 RETURNING {_COLUMNS}",
            subscription_id,
        )
        await _resolve_dead_letter(connection, subscription_id, "redriven")
        await _notify(connection, subscription_id)
    assert row is not None
    return _subscription(row)


async def rewind(connection: Connection, subscription_id: str, position: int) -> None:
    """Replay: deliver again every event from ``position`` on, ``position`` included (its
    cursor becomes ``position - 1``; 0 and 1 both mean from the first event).

    The same events go out again with the same ``webhook-id``s. A position past the next
    one to be written (head + 1) is refused: it would silently skip events not yet
    written. Moving the cursor forward skips events, which is how an operator passes over
    one that a subscriber can never accept. The state is kept: a parked subscriber stays
    parked until :func:`redrive`, a disabled one until enabled.
    """
    if position < 0:
        raise InvalidSubscriptionError("a replay position is 0 or more")
    async with connection.transaction():
        await _locked(connection, subscription_id)
        last = await head_position(connection)
        if position > last + 1:
            raise InvalidSubscriptionError(
                f"position {position} is beyond the event store (last position {last})"
            )
        await connection.execute(
            f"UPDATE webhook_subscriptions SET position = $2, {_RESET_RETRIES}, "
            "updated_at = now() WHERE id = $1",
            subscription_id,
            max(position - 1, 0),
        )
        await _notify(connection, subscription_id)


async def set_enabled(
    connection: Connection, subscription_id: str, *, enabled: bool
) -> Subscription:
    """Disable (from any state: nothing more is sent) or enable (a disabled subscriber
    becomes active at its cursor; a parked one must be re-driven instead)."""
    async with connection.transaction():
        current = await _locked(connection, subscription_id)
        if not enabled:
            row = await connection.fetchrow(
                "UPDATE webhook_subscriptions SET state = 'disabled', next_attempt_at = NULL, "
                f"updated_at = now() WHERE id = $1 RETURNING {_COLUMNS}",
                subscription_id,
            )
        elif current.state is State.DEAD_LETTER:
            raise SubscriptionStateError(
                f"webhook {subscription_id} is parked in dead_letter; re-drive it instead"
            )
        elif current.state is State.ACTIVE:
            return current
        else:
            row = await connection.fetchrow(
                f"UPDATE webhook_subscriptions SET state = 'active', {_RESET_RETRIES}, "
                f"updated_at = now() WHERE id = $1 RETURNING {_COLUMNS}",
                subscription_id,
            )
            # A subscriber disabled while parked had an open dead letter: enabling it is
            # the operator's decision to try that event again, like a re-drive.
            await _resolve_dead_letter(connection, subscription_id, "enabled")
            await _notify(connection, subscription_id)
    assert row is not None
    return _subscription(row)


async def remove(connection: Connection, subscription_id: str) -> None:
    """Forget a subscriber and its dead letters; an attempt in flight finishes first."""
    async with connection.transaction():
        await _locked(connection, subscription_id)
        await connection.execute("DELETE FROM webhook_subscriptions WHERE id = $1", subscription_id)


# -- the dispatcher ------------------------------------------------------------------------


async def due(connection: Connection, now: datetime) -> list[str]:
    """Active subscribers with something to do: their retry time has come and the event
    store holds events after their cursor."""
    rows = await connection.fetch(
        """
        SELECT id FROM webhook_subscriptions
        WHERE state = 'active' AND (next_attempt_at IS NULL OR next_attempt_at <= $1)
          AND position < (SELECT coalesce(max(position), 0) FROM events)
        ORDER BY coalesce(next_attempt_at, '-infinity'), id
        """,
        now,
    )
    return [row["id"] for row in rows]


async def claim(connection: Connection, subscription_id: str, now: datetime) -> Subscription | None:
    """Lock the subscription for one attempt (the caller's transaction), if it is active
    and due and no other dispatcher holds it: two dispatchers never send one subscriber's
    events at the same time, and the lock goes with a crashed dispatcher's connection."""
    row = await connection.fetchrow(
        f"""
        SELECT {_COLUMNS} FROM webhook_subscriptions
        WHERE id = $1 AND state = 'active' AND (next_attempt_at IS NULL OR next_attempt_at <= $2)
        FOR UPDATE SKIP LOCKED
        """,
        subscription_id,
        now,
    )
    return None if row is None else _subscription(row)


async def advance(connection: Connection, subscription_id: str, position: int) -> None:
    """Move the cursor over events that are not for this subscriber (nothing was sent)."""
    await connection.execute(
        "UPDATE webhook_subscriptions SET position = $2 WHERE id = $1 AND position < $2",
        subscription_id,
        position,
    )


async def record_delivered(
    connection: Connection, subscription_id: str, position: int, status: int, now: datetime
) -> None:
    await connection.execute(
        f"""
        UPDATE webhook_subscriptions
        SET position = $2, {_RESET_RETRIES}, last_status = $3, last_error = NULL,
            last_delivered_at = $4, updated_at = $4
        WHERE id = $1
        """,
        subscription_id,
        position,
        status,
        now,
    )


@dataclass(frozen=True)
class Failure:
    """What went wrong with one attempt, in words an operator can act on."""

    error: str
    status: int | None = None


async def record_failure(
    connection: Connection,
    subscription: Subscription,
    failure: Failure,
    *,
    failing_since: datetime,
    next_attempt_at: datetime,
    now: datetime,
) -> None:
    await connection.execute(
        """
        UPDATE webhook_subscriptions
        SET attempts = attempts + 1, failing_since = $2, next_attempt_at = $3,
            last_error = $4, last_status = $5, updated_at = $6
        WHERE id = $1
        """,
        subscription.id,
        failing_since,
        next_attempt_at,
        failure.error,
        failure.status,
        now,
    )


@dataclass(frozen=True)
class StuckEvent:
    event_id: str
    position: int
    event_type: str


async def park(
    connection: Connection,
    subscription: Subscription,
    event: StuckEvent,
    failure: Failure,
    *,
    failing_since: datetime,
    now: datetime,
) -> None:
    """The subscriber has failed for longer than the dead-letter time: park it on
    ``event`` (its cursor stays just before it) until a person re-drives it."""
    await connection.execute(
        """
        UPDATE webhook_subscriptions
        SET state = 'dead_letter', attempts = attempts + 1, failing_since = $2,
            next_attempt_at = NULL, last_error = $3, last_status = $4, updated_at = $5
        WHERE id = $1
        """,
        subscription.id,
        failing_since,
        failure.error,
        failure.status,
        now,
    )
    await connection.execute(
        """
        INSERT INTO webhook_dead_letters (subscription_id, event_id, position, event_type,
                                          first_failed_at, dead_at, last_error, last_status,
                                          attempts)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
        """,
        subscription.id,
        event.event_id,
        event.position,
        event.event_type,
        failing_since,
        now,
        failure.error,
        failure.status,
        subscription.attempts + 1,
    )
