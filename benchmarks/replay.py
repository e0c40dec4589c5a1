"""Replay and projection rebuild throughput: ``python -m benchmarks.replay``.

A history is appended the way the services append it (the contracts' own event classes,
through an :class:`~shared.eventstore.store.EventStore` with the office's sealer, so every
personal field is sealed as in production): each request is a citizen's WhatsApp message,
``RequestReceived``, the automatic checks, an officer's claim and decision, issuance's
schedule, SIAK, the document and its collection, and the WhatsApp answers notify queued
and sent for it with their delivery statuses; some citizens complain. Requests interleave
in waves, as they do in an office's day.

Then, on that history: ``adminduk projections rebuild`` of both projections (the whole
command's work: shadow tables, build, swap) and ``adminduk events replay --to consumer:``
of ``intake-request-status`` with no receipts (every event handled), again with its receipts
there (skipped; the events it ignored left no receipt and are handed over again), and of
``notify-statuses``, which is no projection's consumer (its writes are not batched). Each row
says how many events of the log the run went through, how many its handler got, the
seconds, and both rates.

:func:`replay_section` returns the markdown section; run alone, the module starts an
embedded PostgreSQL (fsync on) in a temporary folder, as ``benchmarks.run`` does, and prints
the section.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Final

import asyncpg

from adminduk.ops import catalogue, stores
from adminduk.ops.rebuild import rebuild
from adminduk.ops.replay import ChunkStore, ReplayCounts, replay_to_consumer
from adminduk.ops.selection import Selection, select
from adminduk.services import MIGRATIONS
from shared.config import Settings
from shared.contracts import (
    Attachment,
    CheckResult,
    ComplaintReceived,
    Delivery,
    DeliveryStatusReceived,
    DocumentCollected,
    DocumentIssued,
    HandedToSiak,
    IssuanceScheduled,
    NotificationQueued,
    NotificationSent,
    RequestChecked,
    RequestClaimed,
    RequestReceived,
    RequestVerified,
    WhatsAppMessageReceived,
    citizen_stream,
    complaint_stream,
    request_stream,
)
from shared.eventstore.envelope import Event, Metadata, NewEvent
from shared.eventstore.migrations import migrate
from shared.eventstore.store import EventStore, StreamAppend
from shared.keyring import Sealer
from shared.runtime.embedded import EmbeddedPostgres, ensure_database

log = logging.getLogger(__name__)

DATABASE: Final = "adminduk_replay_bench"
TARGET: Final = 20_000
"""Events per second the issue asks of a replay and a rebuild."""
WAVE: Final = 250
"""Requests in flight at once: their events interleave in the log."""
DEFAULT_EVENTS: Final = 100_000
CONSUMER: Final = "intake-request-status"
OTHER_CONSUMER: Final = "notify-statuses"
"""A consumer that is no projection's: its writes are not batched (see adminduk.ops.replay)."""
START: Final = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)


# -- the history ---------------------------------------------------------------------------


def _phone(n: int) -> str:
    return f"62812{n:08d}"


class History:
    """Appends a realistic history of requests, ``wave`` at a time."""

    def __init__(self, store: EventStore, settings: Settings, *, wave: int = WAVE) -> None:
        self.store, self.key, self.wave = store, settings.key, wave
        self.appended = 0

    async def _append(self, parts: Sequence[StreamAppend]) -> None:
        await self.store.append_streams(parts)
        self.appended += sum(len(part.events) for part in parts)

    async def _step(self, batch: list[list[StreamAppend]]) -> None:
        await asyncio.gather(*(self._append(parts) for parts in batch if parts))

    @staticmethod
    def _new(event: Event, at: datetime, cause: uuid.UUID | None = None) -> NewEvent:
        metadata = Metadata(causation_id=cause, actor="system:bench")
        return event.to_new_event(metadata=metadata, occurred_at=at)

    def _notify(self, n: int, cause: NewEvent, ticket: str, at: datetime) -> list[StreamAppend]:
        """notify's answer to ``cause``: queued, sent, delivered and read."""
        phone = _phone(n)
        stream = f"notification-{cause.event_id}"
        wamid = f"wamid.out-{cause.event_id.hex[:16]}"
        queued = NotificationQueued(
            cause_event_id=str(cause.event_id),
            kind="status",
            to=phone,
            ticket=ticket,
            message={"type": "text", "text": {"body": f"Permohonan {ticket} diproses."}},
        )
        sent = NotificationSent(
            cause_event_id=str(cause.event_id), kind="status", to=phone, wamid=wamid, ticket=ticket
        )
        statuses = [
            DeliveryStatusReceived(
                wamid=wamid,
                status=state,
                at=at,
                recipient=phone,
                callback_data=f"notification:{cause.event_id}",
            )
            for state in ("delivered", "read")
        ]
        return [
            StreamAppend(stream, [self._new(queued, at, cause.event_id), self._new(sent, at)]),
            *(
                StreamAppend(f"delivery-{uuid.uuid4()}", [self._new(status, at)])
                for status in statuses
            ),
        ]

    async def add(self, count: int) -> int:
        """Requests until about ``count`` events are in the log; returns the events."""
        n = 0
        while self.appended < count:
            wave = range(n, n + self.wave)
            n += self.wave
            at = START + timedelta(minutes=n)
            await self._wave(list(wave), at)
        return self.appended

    async def _wave(self, numbers: list[int], at: datetime) -> None:
        tickets = {n: f"KTP-B{n:07d}" for n in numbers}
        received: dict[int, NewEvent] = {}
        first: list[list[StreamAppend]] = []
        for n in numbers:
            phone = _phone(n)
            message = WhatsAppMessageReceived(
                message_id=f"wamid.in-{n}",
                phone=phone,
                profile_name="SITI AMINAH",
                sent_at=at,
                message_type="text",
                text=f"#KTP#36030157089{n % 10000:05d}#3603012001180003#SITI AMINAH#SENTUL",
                phone_number_id="1234",
            )
            request = RequestReceived(
                ticket=tickets[n],
                doc_type="KTP",
                citizen=citizen_stream(phone, self.key),
                phone=phone,
                kecamatan_code="360301",
                applicant={
                    "nik": f"36030157089{n % 10000:05d}",
                    "no_kk": "3603012001180003",
                    "nama": "SITI AMINAH",
                    "desa": "SENTUL",
                    "kecamatan_code": "360301",
                    "kecamatan_name": "Balaraja",
                    "reason": "PEMULA",
                },
                attachments=(
                    Attachment(
                        sha256=f"{n:064x}", content_type="image/jpeg", size=1000, message_id="p"
                    ),
                ),
                message_id=f"wamid.in-{n}",
                received_at=at,
            )
            incoming = self._new(message, at)
            received[n] = self._new(request, at, incoming.event_id)
            first.append(
                [
                    StreamAppend(citizen_stream(phone, self.key), [incoming]),
                    StreamAppend(request_stream(tickets[n]), [received[n]]),
                ]
            )
        await self._step(first)
        await self._step([self._notify(n, received[n], tickets[n], at) for n in numbers])

        def on_request(n: int, *events: Event) -> list[StreamAppend]:
            return [StreamAppend(request_stream(tickets[n]), [self._new(e, at) for e in events])]

        checks = (CheckResult(check="nik_region", passed=True),)
        await self._step(
            [
                on_request(
                    n,
                    RequestChecked(ticket=tickets[n], round=1, results=checks, outcome="passed"),
                    RequestClaimed(
                        ticket=tickets[n], officer_id="off_ani", officer_name="Ani", by="off_ani"
                    ),
                )
                for n in numbers
            ]
        )
        office = Delivery(channel="office", place="Loket 3")
        for step in ("verified", "scheduled", "issued", "collected"):
            batch: list[list[StreamAppend]] = []
            for n in numbers:
                ticket, phone = tickets[n], _phone(n)
                events: list[Event]
                if step == "verified":
                    events = [
                        RequestVerified(
                            ticket=ticket, officer_id="off_ani", phone=phone, doc_type="KTP"
                        )
                    ]
                elif step == "scheduled":
                    events = [
                        IssuanceScheduled(
                            ticket=ticket,
                            doc_type="KTP",
                            phone=phone,
                            promised_on=date(2026, 11, 30),
                            working_days=5,
                            delivery=office,
                        ),
                        HandedToSiak(ticket=ticket, idempotency_key=f"siak-{ticket}"),
                    ]
                elif step == "issued":
                    events = [
                        DocumentIssued(
                            ticket=ticket,
                            doc_type="KTP",
                            phone=phone,
                            document_number=f"DOC{n:08d}",
                            issued_at=at,
                            ready_on=date(2026, 11, 30),
                            delivery=office,
                        )
                    ]
                else:
                    events = [
                        DocumentCollected(
                            ticket=ticket, doc_type="KTP", phone=phone, officer_id="off_ani"
                        )
                    ]
                parts = on_request(n, *events)
                if step != "scheduled" or n % 2 == 0:
                    parts += self._notify(n, parts[0].events[0], ticket, at)
                batch.append(parts)
            await self._step(batch)
        complaints = []
        for n in numbers[::10]:
            phone = _phone(n)
            complaint = ComplaintReceived(
                ticket=f"ADUAN-B{n:07d}",
                citizen=citizen_stream(phone, self.key),
                phone=phone,
                text="Kapan KTP saya jadi?",
                related_ticket=tickets[n],
                message_id=f"wamid.c-{n}",
                received_at=at,
            )
            complaints.append(
                [StreamAppend(complaint_stream(f"ADUAN-B{n:07d}"), [self._new(complaint, at)])]
            )
        await self._step(complaints)


# -- the runs ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    """One replay or rebuild: events of the history it went through, events its handler
    got, and how long it took."""

    what: str
    read: int
    handled: int
    seconds: float

    @property
    def read_rate(self) -> float:
        return self.read / self.seconds if self.seconds > 0 else 0.0

    @property
    def handled_rate(self) -> float:
        return self.handled / self.seconds if self.seconds > 0 else 0.0


async def _rebuild(dsn: str, settings: Settings, name: str, head: int) -> Run:
    projection = catalogue.projection(name)
    started = time.perf_counter()
    result = await rebuild(dsn, settings, projection)
    seconds = time.perf_counter() - started
    return Run(f"`projections rebuild {name}`", head, result.applied, seconds)


async def _replay(
    dsn: str, settings: Settings, head: int, what: str, consumer: str = CONSUMER
) -> Run:
    store = await ChunkStore.open_at(dsn, Sealer.from_settings(settings))
    try:
        return await _replay_on(store, settings, head, what, consumer)
    finally:
        await store.close()


async def _replay_on(
    store: EventStore, settings: Settings, head: int, what: str, consumer: str
) -> Run:
    async with catalogue.consumer(consumer, settings, store) as (spec, handler):
        events = select(store, Selection(from_position=1), until=head, subjects=spec.subjects)
        started = time.perf_counter()
        counts: ReplayCounts = await replay_to_consumer(store, spec, handler, events)
        seconds = time.perf_counter() - started
    assert counts.failed == 0, counts.summary()
    return Run(what, head, counts.delivered, seconds)


async def measure(dsn: str, settings: Settings, events: int = DEFAULT_EVENTS) -> list[Run]:
    """Append a history of about ``events`` events to the migrated database at ``dsn``
    (best empty: the runs go through whatever its log holds), then time the rebuilds and
    replays on it."""
    store = await stores.connect(dsn, settings, max_size=8)
    try:
        log.info("appending a history of %d events", events)
        started = time.perf_counter()
        appended = await History(store, settings).add(events)
        log.info("appended %d events in %.1f s", appended, time.perf_counter() - started)
        head = await store.last_position()  # the runs go through the whole log
        await store.pool.execute("VACUUM ANALYZE events")
        runs = []
        for name in ("request_status", "verification"):
            log.info("rebuilding %s", name)
            runs.append(await _rebuild(dsn, settings, name, head))
        await store.pool.execute("DELETE FROM inbox WHERE consumer = $1", CONSUMER)
        log.info("replaying to %s", CONSUMER)
        runs.append(await _replay(dsn, settings, head, f"`replay --to consumer:{CONSUMER}`"))
        runs.append(
            await _replay(
                dsn, settings, head, f"the same again (all {CONSUMER} receipts there: skipped)"
            )
        )
        log.info("replaying to %s", OTHER_CONSUMER)
        runs.append(
            await _replay(
                dsn,
                settings,
                head,
                f"`replay --to consumer:{OTHER_CONSUMER}` (not a projection's)",
                OTHER_CONSUMER,
            )
        )
    finally:
        await store.close()
    return runs


# -- the section ---------------------------------------------------------------------------


def render(runs: Sequence[Run], target: int = TARGET) -> str:
    """The markdown section; its sentences are computed from the figures."""
    lines = [
        "## Replay and projection rebuild",
        "",
        "| run | events in the history | events handled | seconds | history events/s "
        "| handled events/s |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for run in runs:
        lines.append(
            f"| {run.what} | {run.read:,} | {run.handled:,} | {run.seconds:.2f} "
            f"| {run.read_rate:,.0f} | {run.handled_rate:,.0f} |"
        )
    lines.append("")
    met = [run for run in runs if run.read_rate >= target]
    handled_met = [run for run in runs if run.handled_rate >= target]
    slowest = min(runs, key=lambda run: run.read_rate)
    if len(met) == len(runs):
        verdict = (
            f"Every run went through the history at {target:,} events/s or more "
            f"(slowest: {slowest.what}, {slowest.read_rate:,.0f} events/s)"
        )
    else:
        verdict = (
            f"{len(met)} of {len(runs)} runs went through the history at {target:,} events/s "
            f"or more; the slowest, {slowest.what}, at {slowest.read_rate:,.0f} events/s"
        )
    handled = (
        f"{len(handled_met)} of {len(runs)} handled {target:,} events/s or more "
        "(a handler gets only the events on its consumer's subjects; the history rate counts "
        "every event of the log the run covered)."
    )
    lines.append(f"{verdict}; {handled}")
    return "\n".join(lines) + "\n"


async def replay_section(
    dsn: str, settings: Settings | None = None, events: int = DEFAULT_EVENTS
) -> str:
    """Measure on the empty migrated database at ``dsn``; the markdown section."""
    return render(await measure(dsn, settings or Settings(), events))


async def prepare(pg: EmbeddedPostgres, name: str = DATABASE) -> str:
    """A migrated empty database ``name`` on the running server ``pg`` (by default the
    replay history's); its URL."""
    await ensure_database(pg.dsn("postgres"), name)
    dsn = pg.dsn(name)
    connection = await asyncpg.connect(dsn)
    try:
        await migrate(connection, MIGRATIONS)
    finally:
        await connection.close()
    return dsn


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.replay", description="Replay and rebuild throughput."
    )
    parser.add_argument("--events", type=int, default=DEFAULT_EVENTS, help="history size")
    parser.add_argument(
        "--root", type=Path, help="keep PostgreSQL here instead of a temporary folder"
    )
    arguments = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    with tempfile.TemporaryDirectory(prefix="adminduk-replay-") as folder:
        root = arguments.root or Path(folder)
        pg = EmbeddedPostgres(root / "postgres", durable=True)
        pg.start()
        try:

            async def run() -> str:
                dsn = await prepare(pg)
                settings = Settings(data_dir=root / "data")
                return await replay_section(dsn, settings, arguments.events)

            print(asyncio.run(run()))
        finally:
            pg.stop()


if __name__ == "__main__":
    main()
