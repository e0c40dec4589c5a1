"""``adminduk deadletters show ID...``: one dead letter in full, its event masked.

``list`` gives a line per dead letter; ``show`` adds what an operator needs to decide
between re-drive and discard: the whole error, the delivery count and times, and the event
(envelope and data, personal data masked as in ``adminduk events``).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime

import asyncpg
from asyncpg.pool import PoolConnectionProxy
from pydantic import ValidationError

from adminduk.ops.history import envelope
from shared.bus import jetstream as js

Connection = asyncpg.Connection | PoolConnectionProxy


async def show(connection: Connection, ids: Sequence[int]) -> None:
    if not ids:
        raise SystemExit("name the dead letters to show by id (adminduk deadletters list)")
    rows = await connection.fetch(
        "SELECT id, consumer, message_id, subject, event_type, stream_id, position, payload, "
        "error, deliveries, status, first_failed_at, last_failed_at, resolved_at "
        "FROM dead_letters WHERE id = ANY($1::bigint[]) ORDER BY id",
        list(ids),
    )
    found = {row["id"] for row in rows}
    for missing in sorted(set(ids) - found):
        print(f"no dead letter #{missing}", file=sys.stderr)
    for row in rows:
        print(describe(row))


def describe(row: asyncpg.Record) -> str:
    lines = [
        f"dead letter #{row['id']}  {row['status']}  consumer {row['consumer']}",
        f"  event        {row['event_type'] or '-'} {row['message_id']} at position "
        f"{row['position'] if row['position'] is not None else '-'}",
        f"  stream       {row['stream_id'] or '-'}  subject {row['subject']}",
        f"  deliveries   {row['deliveries']}, first failed {_when(row['first_failed_at'])}, "
        f"last {_when(row['last_failed_at'])}"
        + (f", resolved {_when(row['resolved_at'])}" if row["resolved_at"] else ""),
        f"  error        {row['error']}",
    ]
    payload = bytes(row["payload"])
    try:
        event = js.decode(payload)
    except (ValidationError, ValueError):
        lines.append(f"  payload      {len(payload)} bytes that are not an event envelope")
    else:
        text = json.dumps(envelope(event), ensure_ascii=False, indent=2, default=str)
        lines.append("  event envelope (personal data masked):")
        lines.extend(f"    {line}" for line in text.splitlines())
    return "\n".join(lines)


def _when(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
