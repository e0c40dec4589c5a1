"""The `adminduk` command: run the system, run one part of it, operate it."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import sys
from collections.abc import Sequence
from typing import Any

import asyncpg

from shared.config import Replicas, load_settings
from shared.logging import setup_logging
from shared.runtime.database import dsn
from shared.runtime.definition import rows_touched


async def _migrate() -> None:
    connection = await asyncpg.connect(dsn())
    try:
        from adminduk.services import MIGRATIONS  # noqa: PLC0415
        from shared.eventstore.migrations import migrate  # noqa: PLC0415

        applied = await migrate(connection, MIGRATIONS)
    finally:
        await connection.close()
    print(f"applied {applied}" if applied else "schema is up to date")


async def _deadletters(args: argparse.Namespace) -> None:
    connection = await asyncpg.connect(dsn())
    try:
        if args.action == "show":
            from adminduk.ops.deadletters import show  # noqa: PLC0415

            await show(connection, args.ids)
            return
        if args.action == "list":
            rows = await connection.fetch(
                "SELECT id, consumer, status, event_type, position, deliveries, last_failed_at, "
                "error FROM dead_letters WHERE ($1::text IS NULL OR consumer = $1) "
                "AND ($2 OR status IN ('dead', 'redrive')) ORDER BY id",
                args.consumer,
                args.all,
            )
            if not rows:
                print("no dead letters")
            for row in rows:
                print(
                    f"#{row['id']:<6} {row['status']:<9} {row['consumer']:<24} "
                    f"{row['event_type'] or '-':<28} pos={row['position']} "
                    f"deliveries={row['deliveries']} at={row['last_failed_at']:%Y-%m-%d %H:%M:%S}"
                    f"\n        {row['error']}"
                )
            return
        status = "redrive" if args.action == "redrive" else "discarded"
        resolved = "NULL" if status == "redrive" else "now()"
        if args.ids:
            result = await connection.execute(
                f"UPDATE dead_letters SET status = $1, resolved_at = {resolved} "
                "WHERE id = ANY($2::bigint[]) AND status = 'dead'",
                status,
                args.ids,
            )
        elif args.consumer:
            result = await connection.execute(
                f"UPDATE dead_letters SET status = $1, resolved_at = {resolved} "
                "WHERE consumer = $2 AND status = 'dead'",
                status,
                args.consumer,
            )
        else:
            raise SystemExit("name dead letters by id, or all of one --consumer")
        count = rows_touched(result)
        verb = "marked for re-drive" if status == "redrive" else "discarded"
        print(f"{count} dead letter(s) {verb}")
    finally:
        await connection.close()


PLUGINS: dict[str, str] = {
    "traces": "adminduk.ops.traces",
    "webhooks": "services.integrations.cli",
    "citizens": "adminduk.ops.erasure",
    "events": "adminduk.ops.events_cli",
    "projections": "adminduk.ops.projections_cli",
}
"""Commands from modules of their own, by name: each module has ``add_parser(commands)``
(the sub-command of that name) and ``run(args) -> int``."""


BUILT_IN: frozenset[str] = frozenset(
    {"run", "serve", "relay", "migrate", "deadletters", "officers"}
)


def _plugins(command: str | None = None) -> dict[str, Any]:
    """The plugin modules a command line needs: none for a built-in command, its own for a
    plugin's, all of them otherwise (help, a mistyped command). A command imports what it
    needs, not every tool's stack (``adminduk run`` and ``adminduk relay`` start processes)."""
    if command in BUILT_IN:
        names: list[str] = []
    elif command in PLUGINS:
        names = [command]
    else:
        names = list(PLUGINS)
    return {name: importlib.import_module(PLUGINS[name]) for name in names}


def _replicas(text: str) -> str:
    try:
        return str(Replicas.parse(text))
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The command line, with the plugins command ``only`` needs (see :func:`_plugins`)."""
    parser = argparse.ArgumentParser(prog="adminduk", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser(
        "run", help="start everything (embedded NATS and Postgres unless configured)"
    )
    run.add_argument(
        "--replicas",
        type=_replicas,
        metavar="N|NAME=N,...",
        help="processes per consuming service, e.g. 2 or intake=2,notify=2 "
        "(default: ADMINDUK_REPLICAS, else 1)",
    )
    serve = commands.add_parser(
        "serve", help="run one of the system's processes (what `adminduk run` starts)"
    )
    serve.add_argument("name", help="relay, intake, verification, issuance, notify, ...")
    commands.add_parser("relay", help="run the outbox relay (one process)")
    commands.add_parser("migrate", help="apply database migrations")
    dead = commands.add_parser("deadletters", help="inspect and re-drive dead letters")
    dead.add_argument("action", choices=["list", "show", "redrive", "discard"])
    dead.add_argument("ids", nargs="*", type=int, help="dead letter ids")
    dead.add_argument("--consumer", help="only this consumer's dead letters")
    dead.add_argument("--all", action="store_true", help="list resolved ones too")
    from services.verification import cli as officers_cli  # noqa: PLC0415

    officers_cli.add_parser(commands)
    for plugin in _plugins(only).values():
        plugin.add_parser(commands)
    return parser


def _serve(name: str) -> int:
    from adminduk.services import BY_NAME  # noqa: PLC0415
    from shared.runtime.definition import (  # noqa: PLC0415
        DevelopmentOnlyError,
        refuse_in_production,
    )
    from shared.runtime.service import run_service  # noqa: PLC0415

    definition = BY_NAME.get(name)
    if definition is None or definition.run is None:
        print(
            f"adminduk serve: no process named {name!r}; known: {', '.join(BY_NAME)}",
            file=sys.stderr,
        )
        return 2
    try:
        refuse_in_production(definition, load_settings())
    except DevelopmentOnlyError as error:
        print(f"adminduk serve: {error}", file=sys.stderr)
        return 2
    run_service(definition.name, definition.run)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(arguments[0] if arguments else None).parse_args(arguments)
    if args.command == "run":
        from adminduk.supervisor import run  # noqa: PLC0415

        setup_logging("supervisor")
        overrides = {} if args.replicas is None else {"replicas": args.replicas}
        return run(load_settings(**overrides))
    if args.command == "serve":
        return _serve(args.name)
    if args.command == "relay":
        from shared.bus.relay import main as relay_main  # noqa: PLC0415

        relay_main()
        return 0
    setup_logging("cli", "WARNING")
    if args.command in PLUGINS:
        return int(_plugins(args.command)[args.command].run(args))
    if args.command == "migrate":
        asyncio.run(_migrate())
    elif args.command == "deadletters":
        asyncio.run(_deadletters(args))
    elif args.command == "officers":
        from services.verification import cli as officers_cli  # noqa: PLC0415
        from shared.identity import OfficeArea  # noqa: PLC0415

        area = OfficeArea(load_settings().office_region)
        return asyncio.run(officers_cli.run(args, dsn(), area))
    return 0


if __name__ == "__main__":
    sys.exit(main())
