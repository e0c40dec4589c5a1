"""Notify's outbox table (``notification_outbox``) and the 24-hour window's
``whatsapp_contact``: what is owed, what is due, and what became of each message."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from services.notify.domain.outbound import OutboundMessage
from shared.contracts import DeliveryState

Connection = asyncpg.Connection | PoolConnectionProxy


@dataclass(frozen=True)
class OutboxRow:
    notification_id: str
    recipient: str
    message: OutboundMessage
    attempts: int
    created_at: datetime
    last_inbound: datetime | None
    force_template: bool
    trace: dict[str, str] = field(default_factory=dict)
    """W3C trace context of the event that asked for the message."""


@dataclass(frozen=True)
class Owed:
    """A message owed: its outbox row, due at once (see :func:`enqueue_many`)."""

    notification_id: str
    recipient: str
    message: OutboundMessage
    inbound_at: datetime | None
    trace: Mapping[str, str]


async def enqueue_many(connection: Connection, owed: Sequence[Owed], now: datetime) -> None:
    """Queue messages (due ``now``) with one statement; one queued before stays as it is."""
    if not owed:
        return
    await connection.execute(
        """
        INSERT INTO notification_outbox (notification_id, recipient, ticket, kind, message,
                                         inbound_at, next_at, created_at, updated_at, trace)
        SELECT o.id, o.recipient, o.ticket, o.kind, o.message, o.inbound_at, $7, $7, $7,
               o.trace
          FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::jsonb[],
                      $6::timestamptz[], $8::jsonb[])
               AS o(id, recipient, ticket, kind, message, inbound_at, trace)
        ON CONFLICT (notification_id) DO NOTHING
        """,
        [item.notification_id for item in owed],
        [item.recipient for item in owed],
        [item.message.ticket for item in owed],
        [item.message.kind for item in owed],
        [item.message.model_dump(mode="json") for item in owed],
        [item.inbound_at for item in owed],
        now,
        [dict(item.trace) for item in owed],
    )


async def touch_contacts(connection: Connection, inbound: Mapping[str, datetime]) -> None:
    """:func:`touch_contact` for several citizens (recipient -> latest time), one statement."""
    if not inbound:
        return
    await connection.execute(
        """
        INSERT INTO whatsapp_contact (recipient, last_inbound_at)
        SELECT * FROM unnest($1::text[], $2::timestamptz[])
        ON CONFLICT (recipient) DO UPDATE
        SET last_inbound_at = GREATEST(whatsapp_contact.last_inbound_at, EXCLUDED.last_inbound_at)
        """,
        list(inbound),
        list(inbound.values()),
    )


async def touch_contact(connection: Connection, recipient: str, at: datetime) -> None:
    """The citizen wrote at ``at``: the 24-hour window runs from the latest such time."""
    await connection.execute(
        """
        INSERT INTO whatsapp_contact (recipient, last_inbound_at) VALUES ($1, $2)
        ON CONFLICT (recipient) DO UPDATE
        SET last_inbound_at = GREATEST(whatsapp_contact.last_inbound_at, EXCLUDED.last_inbound_at)
        """,
        recipient,
        at,
    )


def row_from_record(record: asyncpg.Record) -> OutboxRow:
    message = record["message"]
    return OutboxRow(
        notification_id=record["notification_id"],
        recipient=record["recipient"],
        message=OutboundMessage.model_validate(
            json.loads(message) if isinstance(message, str) else message
        ),
        attempts=record["attempts"],
        created_at=record["created_at"],
        last_inbound=record["last_inbound"],
        force_template=record["force_template"],
        trace=_json(record["trace"]),
    )


def _json(value: object) -> dict[str, str]:
    """A jsonb column as read with or without the store's codec."""
    decoded = json.loads(value) if isinstance(value, str) else value
    return dict(decoded) if isinstance(decoded, dict) else {}


async def one(connection: Connection, notification_id: str) -> OutboxRow | None:
    record = await connection.fetchrow(
        """
        SELECT notification_id, recipient, message, attempts, created_at, force_template,
               inbound_at AS last_inbound, trace
        FROM notification_outbox WHERE notification_id = $1
        """,
        notification_id,
    )
    return None if record is None else row_from_record(record)


async def lease(
    pool: asyncpg.Pool, now: datetime, limit: int, lease_for: timedelta
) -> list[OutboxRow]:
    """Take due messages, each the oldest unfinished one of its citizen (so a citizen's
    messages go out in order, one at a time), and mark each attempt begun: ``sending``,
    one more attempt, leased. Recorded before the call: after a crash the row says that
    the outcome of this attempt is unknown."""
    records = await pool.fetch(
        """
        WITH due AS (
            SELECT o.notification_id FROM notification_outbox o
            WHERE o.state = 'queued' AND o.next_at <= $1
              AND NOT EXISTS (
                  SELECT 1 FROM notification_outbox p
                  WHERE p.recipient = o.recipient AND p.state IN ('queued', 'sending')
                    AND p.seq < o.seq)
            ORDER BY o.next_at, o.seq
            LIMIT $2
            FOR UPDATE SKIP LOCKED
        )
        UPDATE notification_outbox o
        SET state = 'sending', attempts = o.attempts + 1, leased_until = $3, updated_at = $1
        FROM due
        WHERE o.notification_id = due.notification_id
        RETURNING o.notification_id, o.recipient, o.message, o.attempts, o.created_at,
                  o.force_template, o.trace,
                  GREATEST(o.inbound_at, (SELECT c.last_inbound_at FROM whatsapp_contact c
                                          WHERE c.recipient = o.recipient)) AS last_inbound
        """,
        now,
        limit,
        now + lease_for,
    )
    return sorted(map(row_from_record, records), key=lambda row: row.created_at)


async def postpone(
    pool: asyncpg.Pool, items: Sequence[tuple[str, datetime]], now: datetime
) -> None:
    """Not this time (the citizen's pacing): back in the queue, the attempt not counted."""
    if not items:
        return
    await pool.executemany(
        """
        UPDATE notification_outbox
        SET state = 'queued', attempts = attempts - 1, next_at = $2, leased_until = NULL,
            updated_at = $3
        WHERE notification_id = $1 AND state = 'sending'
        """,
        [(notification_id, at, now) for notification_id, at in items],
    )


async def retry_later(
    pool: asyncpg.Pool,
    notification_id: str,
    at: datetime,
    now: datetime,
    *,
    error_code: int | None,
    reason: str,
    force_template: bool = False,
) -> None:
    await pool.execute(
        """
        UPDATE notification_outbox
        SET state = 'queued', next_at = $2, leased_until = NULL, error_code = $3,
            reason = $4, force_template = force_template OR $5, updated_at = $6
        WHERE notification_id = $1 AND state IN ('sending', 'sent')
        """,
        notification_id,
        at,
        error_code,
        reason,
        force_template,
        now,
    )


async def mark_sent(
    connection: Connection, notification_id: str, wamid: str, form: str, now: datetime
) -> None:
    await connection.execute(
        """
        UPDATE notification_outbox
        SET state = 'sent', wamid = COALESCE(wamid, $2), form = $3, leased_until = NULL,
            error_code = NULL, reason = NULL, updated_at = $4
        WHERE notification_id = $1
        """,
        notification_id,
        wamid,
        form,
        now,
    )


async def mark_failed(
    connection: Connection,
    notification_id: str,
    error_code: int | None,
    reason: str,
    now: datetime,
) -> None:
    await connection.execute(
        """
        UPDATE notification_outbox
        SET state = 'failed', leased_until = NULL, error_code = $2, reason = $3, updated_at = $4
        WHERE notification_id = $1
        """,
        notification_id,
        error_code,
        reason,
        now,
    )


@dataclass(frozen=True)
class Tracked:
    """What a delivery status is applied to."""

    notification_id: str
    state: str
    delivery: DeliveryState | None
    form: str | None
    wamid: str | None
    ticket: str | None
    has_template: bool


_TRACKED: Final = """
    SELECT notification_id, state, delivery, form, wamid, ticket,
           message -> 'template' IS NOT NULL
           AND message -> 'template' <> 'null'::jsonb AS has_template
    FROM notification_outbox
"""


def _tracked(record: asyncpg.Record) -> Tracked:
    return Tracked(
        notification_id=record["notification_id"],
        state=record["state"],
        delivery=record["delivery"],
        form=record["form"],
        wamid=record["wamid"],
        ticket=record["ticket"],
        has_template=record["has_template"],
    )


async def tracked(connection: Connection, notification_id: str) -> Tracked | None:
    record = await connection.fetchrow(
        f"{_TRACKED} WHERE notification_id = $1 FOR UPDATE", notification_id
    )
    return None if record is None else _tracked(record)


async def tracked_many(
    connection: Connection, notification_ids: Sequence[str]
) -> dict[str, Tracked]:
    """:func:`tracked` for several messages in one statement (locked in id order, as the
    one-by-one path locks them one after another)."""
    records = await connection.fetch(
        f"{_TRACKED} WHERE notification_id = ANY($1::text[]) ORDER BY notification_id FOR UPDATE",
        sorted(set(notification_ids)),
    )
    return {record["notification_id"]: _tracked(record) for record in records}


async def set_deliveries(
    connection: Connection, changes: Sequence[tuple[str, DeliveryState, str]], now: datetime
) -> None:
    """:func:`set_delivery` for several messages (id, state, wamid), in one round trip."""
    if changes:
        await connection.executemany(
            """
            UPDATE notification_outbox
            SET delivery = $2, wamid = COALESCE(wamid, $3), updated_at = $4
            WHERE notification_id = $1
            """,
            [(notification_id, state, wamid, now) for notification_id, state, wamid in changes],
        )


async def set_delivery(
    connection: Connection,
    notification_id: str,
    delivery: DeliveryState,
    wamid: str,
    now: datetime,
) -> None:
    await connection.execute(
        """
        UPDATE notification_outbox
        SET delivery = $2, wamid = COALESCE(wamid, $3), updated_at = $4
        WHERE notification_id = $1
        """,
        notification_id,
        delivery,
        wamid,
        now,
    )


async def requeue_as_template(connection: Connection, notification_id: str, now: datetime) -> None:
    """Meta refused a free-form message for the window after accepting it: say it again,
    as its template (the first was never delivered, so this is no double)."""
    await connection.execute(
        """
        UPDATE notification_outbox
        SET state = 'queued', next_at = $2, force_template = true, delivery = NULL,
            wamid = NULL, leased_until = NULL, updated_at = $2
        WHERE notification_id = $1
        """,
        notification_id,
        now,
    )


@dataclass(frozen=True)
class InDoubt:
    notification_id: str
    wamid: str | None
    leased_until: datetime
    attempts: int


async def in_doubt(pool: asyncpg.Pool, now: datetime, limit: int = 500) -> list[InDoubt]:
    """Attempts begun and never finished (the process died, or is very late)."""
    records = await pool.fetch(
        """
        SELECT notification_id, wamid, leased_until, attempts FROM notification_outbox
        WHERE state = 'sending' AND leased_until < $1
        ORDER BY leased_until LIMIT $2
        """,
        now,
        limit,
    )
    return [
        InDoubt(r["notification_id"], r["wamid"], r["leased_until"], r["attempts"]) for r in records
    ]


async def requeue_unknown(pool: asyncpg.Pool, notification_id: str, now: datetime) -> bool:
    """No delivery status came for an attempt whose outcome was unknown: it never went out;
    queue it again. False when something else settled it meanwhile."""
    result = await pool.execute(
        """
        UPDATE notification_outbox
        SET state = 'queued', next_at = $2, leased_until = NULL, updated_at = $2
        WHERE notification_id = $1 AND state = 'sending' AND wamid IS NULL
        """,
        notification_id,
        now,
    )
    return str(result).endswith(" 1")


async def for_ticket(pool: asyncpg.Pool, ticket: str) -> list[dict[str, Any]]:
    """Every message about ``ticket``, oldest first (for officers)."""
    records = await pool.fetch(
        """
        SELECT notification_id, kind, state, delivery, form, attempts, error_code, reason,
               created_at, updated_at
        FROM notification_outbox WHERE ticket = $1 ORDER BY seq
        """,
        ticket,
    )
    return [dict(record) for record in records]


async def backlog(pool: asyncpg.Pool) -> dict[str, int]:
    records = await pool.fetch(
        "SELECT state, count(*) AS n FROM notification_outbox GROUP BY state"
    )
    return {record["state"]: record["n"] for record in records}
