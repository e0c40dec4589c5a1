"""Reporting a failed round of a background loop (a sweeper, a worker).

While Postgres restarts, every round of every loop fails the same way. A one-line warning
says so; a traceback per round would bury the supervisor's own lines (which server exited,
which was restarted) under screens of identical stack traces. Anything else is a bug and
keeps its traceback.
"""

from __future__ import annotations

import logging

import asyncpg
from asyncpg.exceptions import AdminShutdownError, CannotConnectNowError, CrashShutdownError

from shared.eventstore.errors import EventStoreUnavailableError

DATABASE_OUTAGE: tuple[type[BaseException], ...] = (
    OSError,  # refused, reset, unreachable
    TimeoutError,
    asyncpg.InterfaceError,  # the connection closed under us
    asyncpg.PostgresConnectionError,
    CannotConnectNowError,  # the database system is starting up / shutting down
    AdminShutdownError,
    CrashShutdownError,
    EventStoreUnavailableError,
)


def report_failed_round(logger: logging.Logger, what: str, error: BaseException) -> None:
    """Log ``error`` that ended a round of ``what``; the loop tries again next round."""
    if isinstance(error, DATABASE_OUTAGE):
        logger.warning("%s: database unavailable (%s); trying again", what, type(error).__name__)
    else:
        logger.error("%s failed; trying again next round", what, exc_info=error)
