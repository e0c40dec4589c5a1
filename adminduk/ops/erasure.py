"""``adminduk citizens erase``: a citizen's right to erasure (UU 27/2022), by crypto-shredding.

The event log cannot forget (it is append-only, and copied to JetStream and backups), so
erasure destroys the citizen's data keys instead (see ``shared/keyring.py``): every
personal field sealed with them becomes unreadable wherever it is. Besides the keys, the
command deletes the citizen's files (photos, scans, letters) from the media store and
asks each service to scrub the personal data its read models hold in clear (each
definition's ``erase`` hook: notify's outbox messages and 24-hour-window contact, intake's
and verification's pseudonyms of who a request is for, issuance's SIAK document numbers),
all in the one transaction that destroys the keys. What is not personal stays: the
requests' documents, kecamatan, dates and statuses, so the statistics are unchanged.

It records a ``CitizenErased`` event (pseudonym, tickets, key ids, who), prints what it did
without any personal data, and can be run again: a second run finds nothing left to erase.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import re
import sys
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

from adminduk.services import SERVICES
from shared.config import Settings, load_settings
from shared.contracts import (
    OPEN_CITIZEN_STATUSES,
    CitizenErased,
    citizen_status_of,
    citizen_stream,
    complaint_stream,
    request_stream,
)
from shared.eventstore.envelope import Metadata, deterministic_event_id
from shared.eventstore.store import EventStore
from shared.keyring import Sealer
from shared.mediastore import FileMediaStore
from shared.runtime.database import dsn
from shared.runtime.definition import ErasureScope

COMMAND: Final = "citizens"
_DIGEST: Final = re.compile(r"^[0-9a-f]{64}$")
_TICKET: Final = re.compile(r"^[A-Z0-9-]{6,24}$")


class ErasureInputError(ValueError):
    """The citizen to erase cannot be named from what was given (the CLI exits 2)."""


def whatsapp_number(text: str) -> str:
    """A number as WhatsApp writes it (``62812...``) from how people type it (``0812-...``,
    ``+62 812 ...``); the citizen stream is keyed on that form."""
    digits = re.sub(r"[\s.\-()+]", "", text)
    if digits.startswith("0"):
        digits = "62" + digits[1:]
    if not digits.isdigit() or not 8 <= len(digits) <= 15:
        raise ErasureInputError(
            "--phone must be a phone number, e.g. 6281234567890 or 0812-3456-7890"
        )
    return digits


def erasure_stream(citizen: str) -> str:
    return f"erasure-{citizen}"


@dataclass(frozen=True)
class Plan:
    """What an erasure of one citizen will touch (found before anything is changed)."""

    citizen: str
    tickets: tuple[str, ...]
    open_requests: tuple[tuple[str, str], ...]
    """(ticket, status) of requests the office is still working on."""
    keys: tuple[uuid.UUID, ...]
    """The citizen's live data keys (none after an erasure, until they write again)."""
    files: tuple[str, ...]


@dataclass(frozen=True)
class Report:
    citizen: str
    keys_erased: int
    files_deleted: int
    scrubbed: Mapping[str, int]
    """Rows each service scrubbed in its tables, by what they are ("queue row(s)")."""
    recorded: bool


async def citizen_of_ticket(store: EventStore, ticket: str) -> str | None:
    """The citizen stream of a request's or complaint's ticket (from the log, which has it
    even before the read models)."""
    value = await store.pool.fetchval(
        """
        SELECT data->>'citizen' FROM events
        WHERE stream_id = ANY($1::text[])
          AND event_type IN ('RequestReceived', 'ComplaintReceived')
        ORDER BY position LIMIT 1
        """,
        [request_stream(ticket), complaint_stream(ticket)],
    )
    return None if value is None else str(value)


def _digests(value: Any) -> Iterator[str]:
    """Every file digest in an event's data (``sha256`` fields, and the digests a
    ``RequestSubmitted`` lists)."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "sha256" and isinstance(item, str) and _DIGEST.match(item):
                yield item
            else:
                yield from _digests(item)
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, str) and _DIGEST.match(item):
                yield item
            else:
                yield from _digests(item)


async def plan(store: EventStore, citizen: str) -> Plan:
    pool = store.pool
    # From the log alone (every request and complaint starts with the citizen's stream id);
    # the services' read models are theirs, and each scrubs its own in erase().
    ticket_rows = await pool.fetch(
        """
        SELECT DISTINCT substring(stream_id from position('-' in stream_id) + 1) AS ticket
        FROM events
        WHERE event_type IN ('RequestReceived', 'ComplaintReceived') AND data->>'citizen' = $1
        """,
        citizen,
    )
    tickets = tuple(sorted(str(row["ticket"]) for row in ticket_rows))
    open_requests = []
    for ticket in tickets:
        status = citizen_status_of(await store.read_stream(request_stream(ticket)))
        if status in OPEN_CITIZEN_STATUSES:
            open_requests.append((ticket, status))
    keys = await pool.fetch(
        "SELECT key_id FROM citizen_keys WHERE citizen = $1 AND erased_at IS NULL", citizen
    )
    streams = [
        citizen,
        *(request_stream(t) for t in tickets),
        *(complaint_stream(t) for t in tickets),
    ]
    data_rows = await pool.fetch(
        "SELECT data FROM events WHERE stream_id = ANY($1::text[])", streams
    )
    files = sorted({digest for row in data_rows for digest in _digests(row["data"])})
    return Plan(
        citizen=citizen,
        tickets=tickets,
        open_requests=tuple(open_requests),
        keys=tuple(row["key_id"] for row in keys),
        files=tuple(files),
    )


async def erase(store: EventStore, media: FileMediaStore, planned: Plan, *, by: str) -> Report:
    """Carry out ``planned``: files, then (in one transaction) the read models, the keys and
    the ``CitizenErased`` record. Safe to repeat: a second run finds nothing left."""
    deleted = 0
    for digest in planned.files:
        path = media.path(digest)
        if path.exists():
            path.unlink(missing_ok=True)
            deleted += 1
    citizen = planned.citizen
    scrubbed: dict[str, int] = {}
    async with store.unit_of_work() as uow:
        connection = uow.connection
        # Each service scrubs its own tables, in the erasure's transaction.
        scope = ErasureScope(citizen=citizen, tickets=planned.tickets)
        for service in SERVICES:
            if service.erase is not None:
                scrubbed.update(await service.erase(connection, scope))  # type: ignore[arg-type]
        erased = await connection.fetch(
            "UPDATE citizen_keys SET wrapped_key = NULL, erased_at = now() "
            "WHERE citizen = $1 AND erased_at IS NULL RETURNING key_id",
            citizen,
        )
        key_ids = sorted(str(row["key_id"]) for row in erased)
        if key_ids:
            record = CitizenErased(
                citizen=citizen,
                tickets=planned.tickets,
                keys=tuple(key_ids),
                files_deleted=deleted,
                by=by,
            )
            uow.append(
                erasure_stream(citizen),
                [
                    record.to_new_event(
                        # One record per set of keys: a repeated run cannot add a second.
                        event_id=deterministic_event_id("citizens-erase", citizen, *key_ids),
                        metadata=Metadata(actor=f"cli:{by}"),
                    )
                ],
            )
    return Report(
        citizen=citizen,
        keys_erased=len(key_ids),
        files_deleted=deleted,
        scrubbed=scrubbed,
        recorded=bool(key_ids),
    )


# -- the command ---------------------------------------------------------------------------


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    citizens = commands.add_parser("citizens", help="citizens' personal data (right to erasure)")
    actions = citizens.add_subparsers(dest="action", required=True)
    erase_command = actions.add_parser(
        "erase",
        help="make a citizen's personal data unreadable everywhere; statistics stay",
    )
    who = erase_command.add_mutually_exclusive_group(required=True)
    who.add_argument("--phone", help="their WhatsApp number (6281..., 0812-..., +62 812 ...)")
    who.add_argument("--ticket", help="a ticket of one of their requests or complaints")
    erase_command.add_argument("--yes", action="store_true", help="do not ask to confirm")
    erase_command.add_argument(
        "--by", help="who erases, for the record (default: the operating-system user)"
    )


def run(args: argparse.Namespace) -> int:
    try:
        return asyncio.run(_run(args, load_settings()))
    except ErasureInputError as error:
        print(f"adminduk citizens erase: {error}", file=sys.stderr)
        return 2


async def _run(args: argparse.Namespace, settings: Settings) -> int:
    phone = whatsapp_number(args.phone) if args.phone else None
    ticket = str(args.ticket).strip().upper() if args.ticket else None
    if ticket is not None and not _TICKET.match(ticket):
        raise ErasureInputError("--ticket must look like KTP-AB12CD (letters, digits, -)")
    store = await EventStore.connect(
        dsn(), min_size=1, max_size=2, sealer=Sealer.from_settings(settings)
    )
    try:
        if phone is not None:
            citizen = citizen_stream(phone, settings.key)
        else:
            assert ticket is not None
            found = await citizen_of_ticket(store, ticket)
            if found is None:
                print(f"adminduk citizens erase: no request or complaint {ticket}", file=sys.stderr)
                return 1
            citizen = found
        planned = await plan(store, citizen)
        _describe(planned)
        if not args.yes and not _confirmed():
            print("nothing erased")
            return 1
        report = await erase(
            store, FileMediaStore(settings.data_dir / "media"), planned, by=args.by or _user()
        )
    finally:
        await store.close()
    _print(report)
    return 0


def _describe(planned: Plan) -> None:
    tickets = ", ".join(planned.tickets) or "none"
    print(f"citizen {planned.citizen}")
    print(f"  tickets: {tickets}")
    print(f"  live data keys: {len(planned.keys)}; files: {len(planned.files)}")
    for ticket, status in planned.open_requests:
        print(
            f"  warning: {ticket} is still {status}; once erased it can only be rejected or "
            "left to lapse (the office no longer has the applicant's data)"
        )


def _confirmed() -> bool:
    if not sys.stdin.isatty():
        raise ErasureInputError("not a terminal: pass --yes to erase without a prompt")
    answer = input("Erase this citizen's personal data for good? Type 'erase' to go on: ")
    return answer.strip() == "erase"


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _print(report: Report) -> None:
    if report.recorded:
        print(
            f"erased {report.keys_erased} data key(s): the citizen's personal data in the log "
            "is unreadable from now on"
        )
        print(f"recorded CitizenErased on {erasure_stream(report.citizen)}")
    else:
        print("no live data key: nothing left to shred in the log (erased before, or never sealed)")
    counts = ", ".join(f"{count} {what}" for what, count in report.scrubbed.items())
    print(f"deleted {report.files_deleted} file(s); scrubbed {counts or 'nothing'}")
