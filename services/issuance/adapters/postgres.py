"""Issuance's work list in Postgres (table ``issuance``, migration 0007).

A row per scheduled request says what is due: the SIAK hand-off (``queued`` rows by
``next_attempt_at``), the ready announcement (``issued`` rows), nothing (``ready``,
``closed``, ``failed``). Rows are written in the same transaction as the event that
changes them, so the list never disagrees with the log after a crash.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

import asyncpg
from asyncpg.pool import PoolConnectionProxy

Connection = asyncpg.Connection | PoolConnectionProxy


@dataclass(frozen=True)
class Row:
    ticket: str
    doc_type: str
    channel: str
    promised_on: date
    state: str
    attempts: int
    ready_on: date | None


async def add(
    connection: Connection,
    *,
    ticket: str,
    idempotency_key: str,
    doc_type: str,
    channel: str,
    promised_on: date,
    due_at: datetime,
) -> None:
    await connection.execute(
        """
        INSERT INTO issuance (ticket, idempotency_key, doc_type, channel, promised_on,
                              next_attempt_at)
        VALUES ($1, $2, $3, $4, $5, $6)
        ON CONFLICT (ticket) DO NOTHING
        """,
        ticket,
        idempotency_key,
        doc_type,
        channel,
        promised_on,
        due_at,
    )


async def take_due(
    pool: asyncpg.Pool, now: datetime, limit: int, lease: timedelta
) -> list[tuple[str, int]]:
    """Queued rows due now, leased for ``lease`` so another worker leaves them alone
    meanwhile: (ticket, attempts so far)."""
    rows = await pool.fetch(
        """
        UPDATE issuance SET next_attempt_at = $1 + $3::interval, updated_at = $1
        WHERE ticket IN (
            SELECT ticket FROM issuance
            WHERE state = 'queued' AND next_attempt_at <= $1
            ORDER BY next_attempt_at
            LIMIT $2
            FOR UPDATE SKIP LOCKED
        )
        RETURNING ticket, attempts
        """,
        now,
        limit,
        lease,
    )
    return [(str(row["ticket"]), int(row["attempts"])) for row in rows]


async def retry_later(
    connection: Connection | asyncpg.Pool,
    ticket: str,
    at: datetime,
    error: str,
    *,
    count_attempt: bool = True,
) -> None:
    await connection.execute(
        """
        UPDATE issuance SET next_attempt_at = $2, last_error = $3, updated_at = now(),
                            attempts = attempts + $4
        WHERE ticket = $1 AND state = 'queued'
        """,
        ticket,
        at,
        error[:500],
        1 if count_attempt else 0,
    )


async def set_state(
    connection: Connection | asyncpg.Pool,
    ticket: str,
    state: str,
    *,
    document_number: str | None = None,
    ready_on: date | None = None,
    promised_on: date | None = None,
    error: str | None = None,
) -> None:
    await connection.execute(
        """
        UPDATE issuance SET state = $2,
                            document_number = COALESCE($3, document_number),
                            ready_on = COALESCE($4, ready_on),
                            promised_on = COALESCE($5, promised_on),
                            last_error = COALESCE($6, last_error),
                            updated_at = now()
        WHERE ticket = $1
        """,
        ticket,
        state,
        document_number,
        ready_on,
        promised_on,
        error,
    )


async def close(connection: Connection, ticket: str) -> None:
    """Cancelled or collected: nothing more is due."""
    await connection.execute(
        "UPDATE issuance SET state = 'closed', updated_at = now() WHERE ticket = $1", ticket
    )


async def open_rows(pool: asyncpg.Pool, ready_by: date, limit: int = 5000) -> list[Row]:
    """Rows the sweeper looks at: every request waiting for SIAK (is its promise still
    reachable?) and the issued ones due ready by ``ready_by``; earliest promise first."""
    rows = await pool.fetch(
        """
        SELECT ticket, doc_type, channel, promised_on, state, attempts, ready_on
        FROM issuance
        WHERE state = 'queued' OR (state = 'issued' AND ready_on <= $1)
        ORDER BY promised_on, ticket
        LIMIT $2
        """,
        ready_by,
        limit,
    )
    return [
        Row(
            ticket=str(r["ticket"]),
            doc_type=str(r["doc_type"]),
            channel=str(r["channel"]),
            promised_on=r["promised_on"],
            state=str(r["state"]),
            attempts=int(r["attempts"]),
            ready_on=r["ready_on"],
        )
        for r in rows
    ]


async def backlog(pool: asyncpg.Pool) -> dict[str, int]:
    """How many rows are in each state (for the operator and the metrics)."""
    rows = await pool.fetch("SELECT state, count(*) AS n FROM issuance GROUP BY state")
    return {str(row["state"]): int(row["n"]) for row in rows}
