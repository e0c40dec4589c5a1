"""``adminduk projections``: the read models that can be rebuilt, and rebuilding one from
position 0 beside the live tables, swapped in while the system runs (docs/OPERATIONS.md)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Final

import asyncpg

from adminduk.ops import catalogue
from adminduk.ops.catalogue import UnknownTargetError
from adminduk.ops.progress import ProgressLine
from adminduk.ops.rebuild import RebuildError, ident, rebuild
from adminduk.ops.selection import PAGE
from shared.config import load_settings
from shared.privacy import redact

COMMAND: Final = "projections"


def projection_name(text: str) -> str:
    try:
        return catalogue.projection(text).name
    except UnknownTargetError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, not {text}")
    return value


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    projections = commands.add_parser(
        COMMAND, help="read models: list them, rebuild one from the log (docs/OPERATIONS.md)"
    )
    actions = projections.add_subparsers(dest="action", required=True)
    actions.add_parser("list", help="the projections, their consumers, tables and rows")
    rebuild_parser = actions.add_parser(
        "rebuild", help="rebuild from position 0 beside the live tables, then swap them in"
    )
    rebuild_parser.add_argument("name", type=projection_name)
    rebuild_parser.add_argument(
        "--keep-old",
        action="store_true",
        help="keep the replaced tables in a schema retired_<name>_<time> instead of dropping",
    )
    rebuild_parser.add_argument(
        "--lock-timeout",
        type=positive,
        default=5.0,
        metavar="SECONDS",
        help="longest wait for the live tables' lock at the swap (retried; default 5)",
    )
    rebuild_parser.add_argument(
        "--batch",
        type=lambda text: int(positive(text)),
        default=PAGE,
        metavar="N",
        help=f"events read per query (default {PAGE})",
    )


def run(args: argparse.Namespace) -> int:
    from shared.runtime.database import dsn  # noqa: PLC0415 - the CLI imports this module

    try:
        if args.action == "list":
            return asyncio.run(_list(dsn()))
        return asyncio.run(_rebuild(dsn(), args))
    except RebuildError as error:
        print(f"adminduk projections {args.action}: {error}", file=sys.stderr)
        return 1
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
        print(
            f"adminduk projections {args.action}: the database failed: "
            f"{type(error).__name__}: {redact(str(error))}",
            file=sys.stderr,
        )
        return 1
    except KeyboardInterrupt:
        print("interrupted: the live tables are as they were", file=sys.stderr)
        return 130


async def _list(database: str) -> int:
    connection = await asyncpg.connect(database)
    try:
        for projection in catalogue.PROJECTIONS.values():
            tables = []
            for table in projection.tables:
                rows = await connection.fetchval(f"SELECT count(*) FROM public.{ident(table)}")
                tables.append(f"{table} ({rows} rows)")
            print(
                f"{projection.name:<16} consumer {projection.consumer:<26} "
                f"tables {', '.join(tables)}\n{'':<17}{projection.summary}"
            )
            shadow = f"rebuild_{projection.name}"
            if await connection.fetchval(
                "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)", shadow
            ):
                print(f"{'':<17}schema {shadow} exists: a rebuild is running or was interrupted")
    finally:
        await connection.close()
    return 0


async def _rebuild(database: str, args: argparse.Namespace) -> int:
    projection = catalogue.projection(args.name)

    line = ProgressLine(f"{projection.name}: rebuilding", 0)

    def report(text: str) -> None:
        line.interrupt()
        print(text, file=sys.stderr, flush=True)

    def advance(applied: int, position: int, head: int) -> None:
        line.update(position, total=head, note=f"{applied:,} events applied")

    try:
        result = await rebuild(
            database,
            load_settings(),
            projection,
            keep_old=args.keep_old,
            lock_timeout=args.lock_timeout,
            page=args.batch,
            report=report,
            advance=advance,
        )
    finally:
        line.close()
    swap = result.swap
    print(
        f"{projection.name}: rebuilt from {result.applied} events up to position "
        f"{result.head} ({swap.applied_under_lock} applied during the swap) and swapped in"
    )
    for table, (before, after) in swap.rows.items():
        print(f"  {table}: {before} rows before, {after} rows now")
    if swap.retired_schema:
        print(f"  the replaced tables are kept in schema {swap.retired_schema}")
    return 0
