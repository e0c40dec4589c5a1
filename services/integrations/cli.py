"""``adminduk webhooks ...``: register integrators' webhooks and operate them from a shell.

Exit codes: 0 done, 1 no such subscription or its state does not allow the action,
2 unusable input (a bad URL, secret, event type, position or time), as argparse does.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Final

import asyncpg

from services.integrations import subscriptions as subs
from services.integrations.destinations import Destinations
from services.integrations.subscriptions import (
    InvalidSubscriptionError,
    Subscription,
    SubscriptionError,
)
from shared.config import load_settings
from shared.eventstore.store import position_at
from shared.public import PUBLIC_TYPES
from shared.runtime.database import dsn

COMMAND: Final = "webhooks"
CREATED_BY: Final = "cli"

Action = Callable[[asyncpg.Connection, argparse.Namespace], Awaitable[int]]


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    webhooks = commands.add_parser(
        COMMAND, help="signed HTTP webhooks for integrators (see docs/WEBHOOKS.md)"
    )
    actions = webhooks.add_subparsers(dest="action", required=True)
    add = actions.add_parser("add", help="register a subscriber; prints its secret once")
    add.add_argument("url", help="http(s) URL the events are POSTed to")
    add.add_argument(
        "--events",
        default="",
        help="comma-separated public event types (default: all), e.g. RequestVerified,"
        "DocumentCollected",
    )
    add.add_argument("--secret", help="whsec_<base64> to use (default: a new one)")
    add.add_argument("--description", default="", help="who this is for")
    actions.add_parser("list", help="list subscribers")
    for name, text in (
        ("show", "a subscriber's state, position, last error and dead letters"),
        ("disable", "stop sending to a subscriber"),
        ("enable", "send to a disabled subscriber again, from its position"),
        ("remove", "forget a subscriber"),
        ("redrive", "resume a subscriber parked in dead_letter at the event it was stuck on"),
    ):
        actions.add_parser(name, help=text).add_argument("id")
    replay = actions.add_parser(
        "replay", help="deliver events again from a position or a moment (same webhook-ids)"
    )
    replay.add_argument("id")
    start = replay.add_mutually_exclusive_group(required=True)
    start.add_argument(
        "--from-position", type=int, metavar="N", help="from event-store position N, included"
    )
    start.add_argument(
        "--since",
        metavar="ISO-TIME",
        help="from the first event recorded at or after this time, e.g. 2026-12-07T08:00+07:00",
    )


def run(args: argparse.Namespace) -> int:
    return asyncio.run(_run(dsn(), args))


async def _run(database: str, args: argparse.Namespace) -> int:
    connection = await asyncpg.connect(database)
    try:
        return await _ACTIONS[args.action](connection, args)
    except InvalidSubscriptionError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except SubscriptionError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    finally:
        await connection.close()


async def _add(connection: asyncpg.Connection, args: argparse.Namespace) -> int:
    subscription, secret = await subs.add(
        connection,
        url=args.url,
        known_types=PUBLIC_TYPES,
        event_types=args.events.split(","),
        description=args.description,
        created_by=CREATED_BY,
        destinations=Destinations.from_settings(load_settings()),
        secret=args.secret,
    )
    print(f"webhook {subscription.id} added: {subscription.url}")
    print(f"events: {', '.join(subscription.event_types) or 'all public types'}")
    print(f"starts after position {subscription.position} (replay sends older events)")
    print(f"secret (shown once, give it to the integrator): {secret}")
    return 0


async def _list(connection: asyncpg.Connection, _: argparse.Namespace) -> int:
    found = await subs.list_subscriptions(connection)
    if not found:
        print("no webhook subscriptions")
    for subscription in found:
        types = ",".join(subscription.event_types) or "all"
        print(
            f"{subscription.id:<20} {subscription.state.value:<11} "
            f"pos={subscription.position:<8} {types:<30} {subscription.url}"
        )
    return 0


def _at(value: datetime | None) -> str:
    return "-" if value is None else value.isoformat(timespec="seconds")


def _describe(subscription: Subscription) -> list[str]:
    return [
        f"webhook      {subscription.id}",
        f"url          {subscription.url}",
        f"description  {subscription.description or '-'}",
        f"events       {', '.join(subscription.event_types) or 'all public types'}",
        f"state        {subscription.state.value}",
        f"position     {subscription.position} (delivered up to here)",
        f"delivered    {_at(subscription.last_delivered_at)}",
        f"attempts     {subscription.attempts} failed since {_at(subscription.failing_since)}",
        f"next attempt {_at(subscription.next_attempt_at)}",
        f"last status  {subscription.last_status or '-'}",
        f"last error   {subscription.last_error or '-'}",
        f"created      {_at(subscription.created_at)} by {subscription.created_by}",
    ]


async def _show(connection: asyncpg.Connection, args: argparse.Namespace) -> int:
    subscription = await subs.get(connection, args.id)
    print("\n".join(_describe(subscription)))
    letters = await subs.dead_letters(connection, subscription.id)
    print(f"dead letters {len(letters) or 'none'}")
    for letter in letters:
        resolved = (
            "OPEN"
            if letter.resolved_at is None
            else f"{letter.resolution} {_at(letter.resolved_at)}"
        )
        print(
            f"  #{letter.id} {letter.event_type} pos={letter.position} id={letter.event_id} "
            f"attempts={letter.attempts} failing since {_at(letter.first_failed_at)}, "
            f"parked {_at(letter.dead_at)} [{resolved}]\n    {letter.last_error}"
        )
    return 0


async def _disable(connection: asyncpg.Connection, args: argparse.Namespace) -> int:
    subscription = await subs.set_enabled(connection, args.id, enabled=False)
    print(f"webhook {subscription.id} disabled")
    return 0


async def _enable(connection: asyncpg.Connection, args: argparse.Namespace) -> int:
    subscription = await subs.set_enabled(connection, args.id, enabled=True)
    print(
        f"webhook {subscription.id} {subscription.state.value} at position {subscription.position}"
    )
    return 0


async def _remove(connection: asyncpg.Connection, args: argparse.Namespace) -> int:
    await subs.remove(connection, args.id)
    print(f"webhook {args.id} removed")
    return 0


async def _redrive(connection: asyncpg.Connection, args: argparse.Namespace) -> int:
    subscription = await subs.redrive(connection, args.id)
    print(f"webhook {subscription.id} active again; resumes after position {subscription.position}")
    return 0


def _moment(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidSubscriptionError(
            f"--since {text!r} is not an ISO 8601 time, e.g. 2026-12-07T08:00+07:00"
        ) from None
    if moment.tzinfo is None:
        raise InvalidSubscriptionError(
            f"--since {text!r} needs a time zone, e.g. 2026-12-07T08:00+07:00"
        )
    return moment


async def _replay(connection: asyncpg.Connection, args: argparse.Namespace) -> int:
    if args.since is not None:
        start = await position_at(connection, _moment(args.since))
    else:
        start = args.from_position
    await subs.rewind(connection, args.id, start)
    subscription = await subs.get(connection, args.id)
    note = (
        ""
        if subscription.state is subs.State.ACTIVE
        else f" once it is active (now {subscription.state.value})"
    )
    print(f"webhook {subscription.id} replays from position {start}{note}")
    return 0


_ACTIONS: Final[dict[str, Action]] = {
    "add": _add,
    "list": _list,
    "show": _show,
    "disable": _disable,
    "enable": _enable,
    "remove": _remove,
    "redrive": _redrive,
    "replay": _replay,
}
