"""Read ports: what a service tells another about its own tables, for a dashboard.

A service never reads another service's tables. When the office dashboard (verification)
needs figures from issuance's work list or from notify's outbox, it asks the owner through
one of these ports, and the owner answers with plain values (frozen dataclasses of
strings, numbers and dates). The owners implement them on their own tables
(``services/issuance/figures.py``, ``services/notify/figures.py``); the composition root
hands the implementations to the dashboard.

The owners answer per ticket, and the asker filters by what only it knows (a kecamatan
is verification's knowledge): a request's ticket is the one key every service shares.
Periods are instants (``since`` included, ``until`` included), the bounds the dashboard
computes from the office's days.

This module is platform: it imports nothing from ``services``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Protocol


@dataclass(frozen=True, slots=True)
class IssuedDocument:
    """A document issued by SIAK and ready for pickup at the office or sent as a letter in
    the chat (it has a ready day)."""

    ticket: str
    ready_on: date
    """The day it was ready (office pickup) or sent (letter in the chat)."""
    first_promised_on: date
    """The day first promised to the citizen (the first ``IssuanceScheduled`` of the
    request's stream; the current promise when the log has none)."""
    promised_on: date
    """The current promise: later than the first when it was renewed because SIAK was late."""


@dataclass(frozen=True, slots=True)
class SiakWait:
    """A request scheduled and not yet issued by SIAK."""

    ticket: str
    promised_on: date
    attempts: int
    """Failed attempts to reach SIAK behind it."""
    since: datetime
    """When it was scheduled (put on issuance's work list)."""


class IssuanceFigures(Protocol):
    """The issuance service's answers about its work list."""

    async def issued(self, since: datetime, until: datetime) -> Sequence[IssuedDocument]:
        """Every request whose document was issued (``DocumentIssued`` recorded) between
        ``since`` and ``until`` and that has a ready day; one per ticket, in no order."""
        ...

    async def waiting_for_siak(self) -> Sequence[SiakWait]:
        """Every request waiting for SIAK, the oldest first (by ``since``, then ticket)."""
        ...


@dataclass(frozen=True, slots=True)
class FailedMessages:
    """How many messages about one ticket failed for one reason."""

    ticket: str | None
    """None: messages about no request (a guided-mode answer, say)."""
    reason: str | None
    """The reason in the citizen's language; None when WhatsApp only reported the message
    undelivered (a ``failed`` delivery status without an error the catalogue explains)."""
    count: int


class DeliveryFigures(Protocol):
    """The notify service's answers about messages to citizens."""

    async def failed(self, since: datetime) -> Sequence[FailedMessages]:
        """Messages that failed for good, or that WhatsApp reported undelivered, last
        changed at or after ``since``; counted by ticket and reason, in no order."""
        ...

    async def notifications_about(self, ticket: str) -> Sequence[str]:
        """The ids of the notifications (stream ``notification-<id>``) owed to the citizen
        about ``ticket``, in no order; a request's page shows what became of them."""
        ...
