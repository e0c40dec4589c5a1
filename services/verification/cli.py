"""``adminduk officers add|list|disable``: manage officers' accounts from a shell (the
first admin of an office, or when the console is out of reach)."""

from __future__ import annotations

import argparse

import asyncpg

from services.verification.adapters.postgres import Officers
from services.verification.domain.officers import Role
from shared.identity import OfficeArea


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    officers = commands.add_parser("officers", help="manage officers' accounts")
    actions = officers.add_subparsers(dest="action", required=True)
    add = actions.add_parser("add", help="add an officer; prints the bearer token once")
    add.add_argument("name")
    add.add_argument("--role", choices=[role.value for role in Role], default="operator")
    add.add_argument(
        "--kecamatan",
        action="append",
        default=[],
        help="a 6-digit kecamatan code the operator works on (repeatable)",
    )
    actions.add_parser("list", help="list officers")
    disable = actions.add_parser("disable", help="lock an officer out at once")
    disable.add_argument("officer_id")
    enable = actions.add_parser("enable", help="let a disabled officer back in")
    enable.add_argument("officer_id")


def check_scope(role: Role, kecamatan: list[str], area: OfficeArea) -> str | None:
    """What is wrong with an account's scope, in words, or None."""
    unknown = [code for code in kecamatan if area.kecamatan_by_code(code) is None]
    if unknown:
        return f"not a kecamatan of {area.name}: {', '.join(unknown)}"
    if role == Role.OPERATOR and not kecamatan:
        return "an operator needs at least one kecamatan (--kecamatan 360301)"
    return None


async def run(args: argparse.Namespace, dsn: str, area: OfficeArea) -> int:
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=2)
    try:
        officers = Officers(pool)
        if args.action == "add":
            role = Role(args.role)
            if (problem := check_scope(role, args.kecamatan, area)) is not None:
                print(problem)
                return 2
            account, token = await officers.add(args.name, role, args.kecamatan, "cli")
            print(f"officer {account.id} ({account.role.value}) added")
            print(f"token (shown once, keep it safe): {token}")
        elif args.action == "list":
            for account in await officers.list():
                state = "disabled" if account.disabled else "active"
                scope = ",".join(account.kecamatan) or "whole office"
                kind = account.role.value
                print(f"{account.id:<18} {kind:<10} {state:<8} {scope:<30} {account.name}")
        elif not await officers.set_disabled(args.officer_id, args.action == "disable"):
            print(f"no officer {args.officer_id}")
            return 1
        else:
            print(f"officer {args.officer_id} {args.action}d")
        return 0
    finally:
        await pool.close()
