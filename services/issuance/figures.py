"""Issuance's answers to the office dashboard (:class:`shared.figures.IssuanceFigures`),
read from its own work list (``issuance``) and from the platform's event log.

The work list keeps only the current promise, which the sweeper renews when SIAK is
late, so the first promise is read from the request's first ``IssuanceScheduled`` event.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

import asyncpg

from shared.contracts import request_stream
from shared.figures import IssuedDocument, SiakWait

REQUEST_PREFIX: Final = request_stream("")

_ISSUED: Final = """
    WITH issued AS (
        SELECT stream_id FROM events
        WHERE event_type = 'DocumentIssued' AND recorded_at >= $1 AND recorded_at <= $2
        GROUP BY stream_id
    )
    SELECT i.ticket, i.ready_on, i.promised_on,
           (SELECT (s.data ->> 'promised_on')::date FROM events s
            WHERE s.stream_id = issued.stream_id AND s.event_type = 'IssuanceScheduled'
            ORDER BY s.stream_version LIMIT 1) AS first_promise
    FROM issued
    JOIN issuance i ON i.ticket = substr(issued.stream_id, length($3) + 1)
    WHERE i.ready_on IS NOT NULL
"""
_WAITING_FOR_SIAK: Final = """
    SELECT ticket, promised_on, attempts, created_at FROM issuance
    WHERE state = 'queued'
    ORDER BY created_at, ticket
"""


class PostgresIssuanceFigures:
    """:class:`shared.figures.IssuanceFigures` on issuance's tables."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def issued(self, since: datetime, until: datetime) -> list[IssuedDocument]:
        rows = await self.pool.fetch(_ISSUED, since, until, REQUEST_PREFIX)
        return [
            IssuedDocument(
                ticket=str(row["ticket"]),
                ready_on=row["ready_on"],
                first_promised_on=row["first_promise"] or row["promised_on"],
                promised_on=row["promised_on"],
            )
            for row in rows
        ]

    async def waiting_for_siak(self) -> list[SiakWait]:
        rows = await self.pool.fetch(_WAITING_FOR_SIAK)
        return [
            SiakWait(
                ticket=str(row["ticket"]),
                promised_on=row["promised_on"],
                attempts=int(row["attempts"]),
                since=row["created_at"],
            )
            for row in rows
        ]
