"""Builders the test suites share: stored events for unit tests (:func:`recorded`), polling
until a condition holds (:func:`eventually`), and sample citizens valid for the default
office region (3603, Kabupaten Tangerang)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from shared.contracts import request_stream
from shared.eventstore.envelope import Event, NewEvent, RecordedEvent

# --- sample citizens ---------------------------------------------------------------------


@dataclass(frozen=True)
class SampleCitizen:
    """A citizen whose NIK and No. KK pass every check for the office region 3603."""

    nik: str
    no_kk: str
    name: str
    desa: str
    kecamatan: str
    phone: str


SITI: Final = SampleCitizen(
    nik="3603015708990001",  # a woman of Kec. Balaraja (360301), born 17-08-1999
    no_kk="3603012001180003",  # Balaraja, issued 20-01-2018
    name="SITI AMINAH",
    desa="SENTUL",
    kecamatan="BALARAJA",
    phone="6281234567890",
)
RAFI: Final = SampleCitizen(
    nik="3603011205180002",  # her son, born 12-05-2018, on the same Kartu Keluarga
    no_kk=SITI.no_kk,
    name="RAFI PRATAMA",
    desa=SITI.desa,
    kecamatan=SITI.kecamatan,
    phone=SITI.phone,
)

# --- stored events -----------------------------------------------------------------------

TICKET: Final = "KTP-7Q2M9XAB"
"""The ticket of an event that names none (its stream when no other is given)."""


def recorded(
    event: Event | NewEvent,
    *,
    version: int = 1,
    position: int | None = None,
    stream_id: str | None = None,
    at: datetime | None = None,
    recorded_at: datetime | None = None,
    data: dict[str, Any] | None = None,
) -> RecordedEvent:
    """``event`` as the event store gives it back, serialised the way it is appended.

    It is event ``version`` of ``stream_id`` (default: the request stream of its ticket) at
    global ``position`` (default: ``version``); it occurred ``at`` (default: a new event's
    own time, or now) and was recorded at ``recorded_at`` (default: when it occurred).
    ``data`` replaces the stored data (a damaged or erased event).
    """
    new = event if isinstance(event, NewEvent) else event.to_new_event(occurred_at=at)
    if at is not None:
        new = new.model_copy(update={"occurred_at": at})
    if stream_id is None:
        ticket = new.data.get("ticket")
        stream_id = request_stream(ticket if isinstance(ticket, str) else TICKET)
    return RecordedEvent(
        event_id=new.event_id,
        event_type=new.event_type,
        stream_id=stream_id,
        stream_version=version,
        position=version if position is None else position,
        schema_version=new.schema_version,
        data=new.data if data is None else data,
        metadata=new.metadata,
        occurred_at=new.occurred_at,
        recorded_at=new.occurred_at if recorded_at is None else recorded_at,
    )


# --- polling -----------------------------------------------------------------------------


async def eventually(
    check: Callable[[], Awaitable[bool]],
    timeout: float = 20.0,
    *,
    interval: float = 0.05,
    what: str = "condition",
) -> None:
    """Poll ``check`` every ``interval`` seconds until it holds; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met within {timeout:g} s")
        await asyncio.sleep(interval)
