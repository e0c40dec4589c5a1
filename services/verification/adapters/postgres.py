"""Verification's tables: officers' accounts and the read models of queue and complaints.

The read models are written only from folded aggregates with a version guard, so writing
the same state twice, or an older state after a newer one, changes nothing: any handler
may project a request it has just read, and a rebuild from the log gives the same rows.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import asyncpg

from services.verification.domain.complaint import Complaint
from services.verification.domain.officers import OfficerAccount, Role
from services.verification.domain.request import OPEN_STATES, Request

Connection = asyncpg.Connection | asyncpg.pool.PoolConnectionProxy

TOKEN_PREFIX: Final = "adk_"  # noqa: S105 - a prefix that makes leaked tokens findable
OPEN_STATE_VALUES: Final = sorted(state.value for state in OPEN_STATES)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


# -- officers ------------------------------------------------------------------------------


def _account(row: asyncpg.Record) -> OfficerAccount:
    return OfficerAccount(
        id=row["id"],
        name=row["name"],
        role=Role(row["role"]),
        kecamatan=tuple(row["kecamatan"]),
        disabled=row["disabled"],
    )


class DuplicateOfficerError(Exception):
    pass


@dataclass
class Officers:
    pool: asyncpg.Pool

    async def add(
        self, name: str, role: Role, kecamatan: Sequence[str], created_by: str
    ) -> tuple[OfficerAccount, str]:
        """A new account and its bearer token (shown once: only its hash is kept)."""
        token = new_token()
        officer_id = "off_" + secrets.token_hex(6)
        row = await self.pool.fetchrow(
            """
            INSERT INTO officers (id, name, role, kecamatan, token_hash, created_by)
            VALUES ($1, $2, $3, $4, $5, $6)
            RETURNING id, name, role, kecamatan, disabled
            """,
            officer_id,
            name,
            role.value,
            list(kecamatan),
            hash_token(token),
            created_by,
        )
        assert row is not None
        return _account(row), token

    async def by_token(self, token: str) -> OfficerAccount | None:
        row = await self.pool.fetchrow(
            "SELECT id, name, role, kecamatan, disabled FROM officers WHERE token_hash = $1",
            hash_token(token),
        )
        return None if row is None else _account(row)

    async def by_id_and_token_hash(self, officer_id: str, token_hash: str) -> OfficerAccount | None:
        row = await self.pool.fetchrow(
            "SELECT id, name, role, kecamatan, disabled FROM officers "
            "WHERE id = $1 AND token_hash = $2",
            officer_id,
            token_hash,
        )
        return None if row is None else _account(row)

    async def get(self, officer_id: str) -> OfficerAccount | None:
        row = await self.pool.fetchrow(
            "SELECT id, name, role, kecamatan, disabled FROM officers WHERE id = $1", officer_id
        )
        return None if row is None else _account(row)

    async def list(self) -> list[OfficerAccount]:
        rows = await self.pool.fetch(
            "SELECT id, name, role, kecamatan, disabled FROM officers ORDER BY name, id"
        )
        return [_account(row) for row in rows]

    async def session_generation(self, officer_id: str) -> int:
        """The generation of ``officer_id``'s console sessions (see :meth:`end_sessions`)."""
        value = await self.pool.fetchval(
            "SELECT generation FROM console_sessions WHERE officer_id = $1", officer_id
        )
        return 0 if value is None else int(value)

    async def end_sessions(self, officer_id: str) -> None:
        """Sign ``officer_id`` out of the console everywhere: sessions made before now carry
        an older generation, and are refused."""
        await self.pool.execute(
            """
            INSERT INTO console_sessions AS s (officer_id, generation) VALUES ($1, 1)
            ON CONFLICT (officer_id) DO UPDATE SET generation = s.generation + 1
            """,
            officer_id,
        )

    async def set_disabled(self, officer_id: str, disabled: bool) -> bool:
        status = await self.pool.execute(
            "UPDATE officers SET disabled = $2 WHERE id = $1", officer_id, disabled
        )
        return status.endswith(" 1")


# -- read models ---------------------------------------------------------------------------


async def project_request(
    connection: Connection, request: Request, position: int, subject_key: str | None
) -> None:
    """Write ``request``'s row unless a newer version is there already."""
    assert request.received_at is not None and request.last_event_at is not None
    flags = json.dumps([flag.model_dump(mode="json") for flag in request.flags])
    await connection.execute(
        """
        INSERT INTO verification_requests AS r (
            ticket, doc_type, kecamatan_code, state, subject_key, flags, attachments,
            claimed_by, claimed_by_name, claimed_at, returned_to, received_at, amended_at,
            first_action_at, decided_at, last_event_at, version, position)
        VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16,
                $17, $18)
        ON CONFLICT (ticket) DO UPDATE SET
            state = EXCLUDED.state, flags = EXCLUDED.flags, attachments = EXCLUDED.attachments,
            claimed_by = EXCLUDED.claimed_by, claimed_by_name = EXCLUDED.claimed_by_name,
            claimed_at = EXCLUDED.claimed_at, returned_to = EXCLUDED.returned_to,
            amended_at = EXCLUDED.amended_at, first_action_at = EXCLUDED.first_action_at,
            decided_at = EXCLUDED.decided_at, last_event_at = EXCLUDED.last_event_at,
            version = EXCLUDED.version, position = GREATEST(r.position, EXCLUDED.position)
        WHERE r.version < EXCLUDED.version
        """,
        request.ticket,
        request.doc_type,
        request.kecamatan_code,
        request.state.value,
        subject_key,
        flags,
        len(request.attachments),
        request.claimed_by,
        request.claimed_by_name,
        request.claimed_at,
        request.returned_to,
        request.received_at,
        request.amended_at,
        request.first_officer_action_at,
        request.decided_at,
        request.last_event_at,
        request.version,
        position,
    )


async def kecamatan_of(executor: Connection | asyncpg.Pool, ticket: str | None) -> str | None:
    """The kecamatan of a request, from the queue's read model (None if unknown)."""
    if ticket is None:
        return None
    value = await executor.fetchval(
        "SELECT kecamatan_code FROM verification_requests WHERE ticket = $1", ticket
    )
    return None if value is None else str(value)


async def project_complaint(
    connection: Connection, complaint: Complaint, kecamatan_code: str | None, position: int
) -> None:
    assert complaint.received_at is not None
    await connection.execute(
        """
        INSERT INTO complaints AS c (ticket, related_ticket, kecamatan_code, state, received_at,
                                     answered_at, answered_by, version, position)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
        ON CONFLICT (ticket) DO UPDATE SET
            state = EXCLUDED.state, answered_at = EXCLUDED.answered_at,
            answered_by = EXCLUDED.answered_by, version = EXCLUDED.version,
            position = GREATEST(c.position, EXCLUDED.position)
        WHERE c.version < EXCLUDED.version
        """,
        complaint.ticket,
        complaint.related_ticket,
        kecamatan_code,
        "open" if complaint.is_open else "answered",
        complaint.received_at,
        complaint.answered_at,
        complaint.answered_by,
        complaint.version,
        position,
    )


async def open_duplicate(connection: Connection, subject_key: str, ticket: str) -> str | None:
    """The oldest other open request for the same person and document, if any."""
    value = await connection.fetchval(
        """
        SELECT ticket FROM verification_requests
        WHERE subject_key = $1 AND ticket <> $2 AND state = ANY($3::text[])
        ORDER BY received_at, ticket LIMIT 1
        """,
        subject_key,
        ticket,
        OPEN_STATE_VALUES,
    )
    return None if value is None else str(value)


@dataclass(frozen=True)
class QueueRow:
    ticket: str
    doc_type: str
    kecamatan_code: str | None
    state: str
    flags: list[dict[str, Any]]
    attachments: int
    claimed_by: str | None
    claimed_by_name: str | None
    claimed_at: datetime | None
    returned_to: str | None
    received_at: datetime
    amended_at: datetime | None
    first_action_at: datetime | None
    decided_at: datetime | None


async def queue_rows(
    pool: asyncpg.Pool,
    *,
    states: Sequence[str],
    kecamatan: Sequence[str] | None,
    doc_type: str | None,
    limit: int,
) -> list[QueueRow]:
    """Requests in the given states, oldest first (``kecamatan`` None: all of them)."""
    rows = await pool.fetch(
        """
        SELECT ticket, doc_type, kecamatan_code, state, flags, attachments, claimed_by,
               claimed_by_name, claimed_at, returned_to, received_at, amended_at,
               first_action_at, decided_at
        FROM verification_requests
        WHERE state = ANY($1::text[])
          AND ($2::text[] IS NULL OR kecamatan_code = ANY($2::text[]))
          AND ($3::text IS NULL OR doc_type = $3)
        ORDER BY received_at, ticket
        LIMIT $4
        """,
        list(states),
        None if kecamatan is None else list(kecamatan),
        doc_type,
        limit,
    )
    return [QueueRow(**{**dict(row), "flags": json.loads(row["flags"])}) for row in rows]


async def stale_requests(
    pool: asyncpg.Pool, *, received_before: datetime, claimed_before: datetime
) -> list[tuple[str, str]]:
    """(ticket, state) of requests the sweeper should look at: received but not checked
    within the grace period, or claimed and left idle."""
    rows = await pool.fetch(
        """
        SELECT ticket, state FROM verification_requests
        WHERE (state = 'received' AND received_at < $1)
           OR (state = 'claimed' AND claimed_at < $2)
        ORDER BY received_at LIMIT 500
        """,
        received_before,
        claimed_before,
    )
    return [(row["ticket"], row["state"]) for row in rows]


@dataclass(frozen=True)
class ComplaintRow:
    ticket: str
    related_ticket: str | None
    kecamatan_code: str | None
    state: str
    received_at: datetime
    answered_at: datetime | None
    answered_by: str | None


async def complaint_rows(
    pool: asyncpg.Pool, *, state: str | None, kecamatan: Sequence[str] | None, limit: int
) -> list[ComplaintRow]:
    """Complaints oldest first. ``kecamatan`` None: all of them; otherwise the rule of
    :meth:`OfficerAccount.covers_complaint`: those about no request, and those about a
    request of one of these kecamatan, as the queue knows it now (the same lookup as the
    complaint's page, so the list shows exactly what the officer may open)."""
    rows = await pool.fetch(
        """
        SELECT c.ticket, c.related_ticket, COALESCE(r.kecamatan_code, c.kecamatan_code)
               AS kecamatan_code, c.state, c.received_at, c.answered_at, c.answered_by
        FROM complaints c
        LEFT JOIN verification_requests r ON r.ticket = c.related_ticket
        WHERE ($1::text IS NULL OR c.state = $1)
          AND ($2::text[] IS NULL OR c.related_ticket IS NULL
               OR r.kecamatan_code = ANY($2::text[]))
        ORDER BY c.received_at, c.ticket
        LIMIT $3
        """,
        state,
        None if kecamatan is None else list(kecamatan),
        limit,
    )
    return [ComplaintRow(**dict(row)) for row in rows]
