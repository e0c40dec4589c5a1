"""``adminduk events``: read the log (``tail``, ``show``), list the consumers, and replay
events to a consumer, a projection or a webhook subscriber (``replay``).

docs/OPERATIONS.md explains each with examples and says what is safe when.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Final

import asyncpg

from adminduk.ops import catalogue
from adminduk.ops.catalogue import UnknownTargetError
from adminduk.ops.history import TICKET, TailOptions, UnknownTicketError, history, print_history
from adminduk.ops.history import tail as tail_events
from adminduk.ops.progress import ProgressLine
from adminduk.ops.replay import ChunkStore, ReplayCounts, replay_to_consumer, replay_to_projection
from adminduk.ops.selection import Selection, first_position, select
from shared.config import Settings, load_settings
from shared.contracts import registry
from shared.eventstore.envelope import stream_category
from shared.eventstore.store import EventStore
from shared.keyring import Sealer
from shared.privacy import redact

COMMAND: Final = "events"
USAGE_ERROR: Final = 2


class UsageError(ValueError):
    """Arguments that parse but do not make sense together (exit code 2)."""


# -- argument types --------------------------------------------------------------------------


def position(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a position: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"a position is 0 or more, not {value}")
    return value


def moment(text: str) -> datetime:
    """An ISO 8601 time with its zone: a time without one would be read in whatever zone
    the operator's machine is in, and replay the wrong hours."""
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not an ISO 8601 time: {text!r} (e.g. 2026-11-23T10:00:00+07:00)"
        ) from None
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError(f"give the time zone: {text}+07:00 (WIB) or {text}Z (UTC)")
    return value


def event_type(text: str) -> str:
    if text not in registry:
        known = ", ".join(sorted(cls.event_type for cls in registry.classes()))
        raise argparse.ArgumentTypeError(f"unknown event type {text!r}; known: {known}")
    return text


def stream_id(text: str) -> str:
    try:
        stream_category(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return text


def ticket(text: str) -> str:
    value = text.strip().upper()
    if not TICKET.fullmatch(value):
        raise argparse.ArgumentTypeError(
            f"not a ticket: {text!r} (capital letters, digits and '-', 6 to 24 characters)"
        )
    return value


@dataclass(frozen=True)
class Target:
    """Where a replay goes: ``consumer:NAME``, ``projection:NAME`` or ``webhook:ID``."""

    kind: str
    name: str

    def __str__(self) -> str:
        return f"{self.kind} {self.name}"


def target(text: str) -> Target:
    kind, _, name = text.partition(":")
    if kind not in {"consumer", "projection", "webhook"} or not name:
        raise argparse.ArgumentTypeError(
            f"not a target: {text!r} (consumer:NAME, projection:NAME or webhook:ID)"
        )
    try:
        if kind == "consumer":
            catalogue.service_of(name)
        elif kind == "projection":
            catalogue.projection(name)
    except UnknownTargetError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return Target(kind, name)


# -- the parser ------------------------------------------------------------------------------


def _add_selection(parser: argparse.ArgumentParser, *, start_required: bool) -> None:
    start = parser.add_mutually_exclusive_group(required=start_required)
    start.add_argument(
        "--from-position", type=position, metavar="N", help="from this position on (included)"
    )
    start.add_argument(
        "--since", type=moment, metavar="TIME", help="from the first event recorded at or after"
    )
    parser.add_argument(
        "--until-position", type=position, metavar="M", help="up to this position (included)"
    )
    parser.add_argument("--stream", type=stream_id, metavar="S", help="only this stream")
    parser.add_argument(
        "--type",
        dest="types",
        type=event_type,
        action="extend",
        nargs="+",
        default=[],
        metavar="T",
        help="only events of these types",
    )


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    events = commands.add_parser(
        COMMAND, help="read, follow and replay the event log (see docs/OPERATIONS.md)"
    )
    actions = events.add_subparsers(dest="action", required=True)

    tail = actions.add_parser("tail", help="events in position order, personal data masked")
    _add_selection(tail, start_required=False)
    tail.add_argument(
        "-n",
        "--lines",
        type=int,
        default=20,
        help="without --from-position/--since: the last N events (default 20)",
    )
    tail.add_argument("-f", "--follow", action="store_true", help="keep printing new events")
    tail.add_argument("--json", action="store_true", help="one JSON envelope per line")

    show = actions.add_parser("show", help="a request's whole history, personal data masked")
    show.add_argument("ticket", type=ticket)
    show.add_argument("--json", action="store_true", help="one JSON envelope per line")

    actions.add_parser("consumers", help="the consumers a replay can go to, and their subjects")

    replay = actions.add_parser(
        "replay", help="replay events to a consumer, a projection or a webhook subscriber"
    )
    _add_selection(replay, start_required=True)
    replay.add_argument(
        "--to",
        type=target,
        required=True,
        metavar="TARGET",
        help="consumer:NAME, projection:NAME or webhook:ID",
    )
    replay.add_argument(
        "--reprocess",
        action="store_true",
        help="consumers: run the handler even on events it handled (idempotent ones only)",
    )
    replay.add_argument("--dry-run", action="store_true", help="count, change nothing")


# -- running ---------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> int:
    try:
        _check(args)
        return asyncio.run(_run(args))
    except UsageError as error:
        print(f"adminduk events {args.action}: error: {error}", file=sys.stderr)
        return USAGE_ERROR
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
        print(
            f"adminduk events {args.action}: the database failed: "
            f"{type(error).__name__}: {redact(str(error))}",
            file=sys.stderr,
        )
        return 1
    except KeyboardInterrupt:
        return 130


def _selection(args: argparse.Namespace) -> Selection:
    return Selection(
        from_position=args.from_position,
        since=args.since,
        until_position=args.until_position,
        stream=args.stream,
        types=tuple(args.types),
    )


def _check(args: argparse.Namespace) -> None:
    """What argparse cannot check alone: arguments that do not go together."""
    if args.action not in {"tail", "replay"}:
        return
    start, until = args.from_position, args.until_position
    if start is not None and until is not None and until < start:
        raise UsageError(f"--until-position {until} is before --from-position {start}")
    if args.action == "tail" and args.lines < 0:
        raise UsageError("--lines must be 0 or more")
    if args.action != "replay":
        return
    kind = args.to.kind
    if args.reprocess and kind != "consumer":
        raise UsageError("--reprocess is for consumers (projections always reapply)")
    if args.reprocess and args.to.name not in catalogue.REPROCESS_SAFE:
        raise UsageError(
            f"{args.to.name} decides from the current state: run again on an event it "
            "handled, it would write something new (answer the citizen again). Replay "
            "without --reprocess: it runs only on events the consumer never handled."
        )
    if kind == "webhook" and (until is not None or args.stream or args.types):
        raise UsageError(
            "a webhook subscriber is replayed from a position or time on, with its own event "
            "types: --until-position, --stream and --type do not apply"
        )


@asynccontextmanager
async def _store(settings: Settings) -> AsyncIterator[EventStore]:
    from shared.runtime.database import dsn  # noqa: PLC0415 - the CLI imports this module

    # A chunk store: replays run many events per transaction on it (adminduk.ops.replay).
    store = await ChunkStore.open_at(dsn(), Sealer.from_settings(settings))
    try:
        yield store
    finally:
        await store.close()


async def _run(args: argparse.Namespace) -> int:
    settings = load_settings()
    async with _store(settings) as store:
        if args.action == "tail":
            options = TailOptions(
                selection=_selection(args), lines=args.lines, follow=args.follow, json=args.json
            )
            await tail_events(store, options, sys.stdout)
            return 0
        if args.action == "show":
            try:
                found = await history(store, args.ticket)
            except UnknownTicketError:
                print(f"no request or complaint with ticket {args.ticket}", file=sys.stderr)
                return 1
            print_history(found, sys.stdout, as_json_lines=args.json)
            return 0
        if args.action == "consumers":
            for spec in await catalogue.consumer_specs(settings, store):
                marks = " (--reprocess safe)" if spec.name in catalogue.REPROCESS_SAFE else ""
                print(f"{spec.name:<28} {', '.join(spec.subjects)}{marks}")
            return 0
        return await _replay(args, settings, store)


async def _replay(args: argparse.Namespace, settings: Settings, store: EventStore) -> int:
    selection = _selection(args)
    if args.to.kind == "webhook":
        return await _rewind(store, args.to.name, selection, dry_run=args.dry_run)
    consumer_name = (
        args.to.name if args.to.kind == "consumer" else catalogue.projection(args.to.name).consumer
    )
    head = await store.last_position()
    start = await first_position(store, selection)
    until = head if selection.until_position is None else min(head, selection.until_position)
    try:
        async with catalogue.consumer(consumer_name, settings, store) as (spec, handler):
            subjects = (
                ", ".join(spec.subjects)
                if len(spec.subjects) <= 3
                else f"{len(spec.subjects)} (adminduk events consumers)"
            )
            print(
                f"replay to {args.to}: positions {start}..{until} ({selection.describe()}), "
                f"subjects {subjects}"
                + (" [dry run]" if args.dry_run else "")
                + (" [reprocess]" if args.reprocess else "")
            )
            events = select(store, selection, until=until, subjects=spec.subjects)
            with ProgressLine(f"replay to {args.to}", max(until - start + 1, 0)) as line:

                def progress(counts: ReplayCounts) -> None:
                    line.update(
                        counts.position - start + 1,
                        note=f"{counts.delivered:,} delivered, "
                        f"{counts.already_handled:,} already handled",
                    )

                if args.to.kind == "consumer":
                    counts = await replay_to_consumer(
                        store,
                        spec,
                        handler,
                        events,
                        reprocess=args.reprocess,
                        dry_run=args.dry_run,
                        progress=progress,
                    )
                else:
                    counts = await replay_to_projection(
                        store, spec, handler, events, dry_run=args.dry_run, progress=progress
                    )
                line.update(line.total)
    except UnknownTargetError as error:
        raise UsageError(str(error)) from None
    print(counts.summary(dry_run=args.dry_run))
    if counts.failed:
        print(
            "failed events are in dead letters: "
            f"adminduk deadletters list --consumer {consumer_name}"
        )
        return 1
    return 0


async def _rewind(store: EventStore, subscription: str, selection: Selection, dry_run: bool) -> int:
    """Move a webhook subscriber's cursor back; the integrations process sends again."""
    start = await first_position(store, selection)
    if dry_run:
        print(f"dry run: webhook subscriber {subscription} would be replayed from position {start}")
        return 0
    try:
        from services.integrations import subscriptions  # noqa: PLC0415
    except ImportError as error:
        print(
            "webhook replay needs services.integrations.subscriptions.rewind, which this "
            f"build does not have ({error})",
            file=sys.stderr,
        )
        return 1
    rewind = getattr(subscriptions, "rewind", None)
    if rewind is None:
        print("webhook replay needs services.integrations.subscriptions.rewind", file=sys.stderr)
        return 1
    async with store.pool.acquire() as connection:
        try:
            await rewind(connection, subscription, start)
        except subscriptions.InvalidSubscriptionError as error:
            raise UsageError(str(error)) from None
        except subscriptions.SubscriptionError as error:
            print(f"adminduk events replay: {error}", file=sys.stderr)
            return 1
    print(f"webhook subscriber {subscription} replays from position {start}")
    return 0
