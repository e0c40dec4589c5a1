"""Notify's answers to the office dashboard (:class:`shared.figures.DeliveryFigures`),
read from its own outbox (``notification_outbox``)."""

from __future__ import annotations

from datetime import datetime
from typing import Final

import asyncpg

from shared.figures import FailedMessages

_FAILED: Final = """
    SELECT ticket, reason, count(*)::int AS n FROM notification_outbox
    WHERE (state = 'failed' OR delivery = 'failed') AND updated_at >= $1
    GROUP BY ticket, reason
"""


class PostgresDeliveryFigures:
    """:class:`shared.figures.DeliveryFigures` on notify's outbox."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def failed(self, since: datetime) -> list[FailedMessages]:
        rows = await self.pool.fetch(_FAILED, since)
        return [
            FailedMessages(ticket=row["ticket"], reason=row["reason"], count=int(row["n"]))
            for row in rows
        ]

    async def notifications_about(self, ticket: str) -> list[str]:
        rows = await self.pool.fetch(
            "SELECT notification_id FROM notification_outbox WHERE ticket = $1", ticket
        )
        return [str(row["notification_id"]) for row in rows]
