"""`adminduk deadletters` and `adminduk migrate` against a real database."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from adminduk.cli import main
from shared.bus.consumer import record_dead_letter
from shared.eventstore.store import create_pool

pytestmark = pytest.mark.integration


async def _park(database_url: str, count: int) -> None:
    pool = await create_pool(database_url, min_size=1, max_size=1)
    try:
        for i in range(count):
            await record_dead_letter(
                pool,
                consumer="notify-acks" if i else "verification-checks",
                message_id=f"evt-{i}",
                subject="adminduk.events.request.RequestReceived",
                payload=b"{}",
                headers={"Adminduk-Event-Type": "RequestReceived", "Adminduk-Position": str(i)},
                error="ValueError: boom",
                deliveries=8,
            )
    finally:
        await pool.close()


async def _statuses(database_url: str) -> dict[str, str]:
    connection = await asyncpg.connect(database_url)
    try:
        rows = await connection.fetch("SELECT message_id, status FROM dead_letters")
        return {row["message_id"]: row["status"] for row in rows}
    finally:
        await connection.close()


def test_list_redrive_and_discard(
    database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ADMINDUK_DATABASE_URL", database_url)
    asyncio.run(_park(database_url, 3))

    assert main(["deadletters", "list"]) == 0
    listing = capsys.readouterr().out
    assert listing.count("RequestReceived") == 3
    assert "ValueError: boom" in listing

    main(["deadletters", "redrive", "1"])
    assert "1 dead letter(s) marked for re-drive" in capsys.readouterr().out
    main(["deadletters", "discard", "--consumer", "notify-acks"])
    assert "2 dead letter(s) discarded" in capsys.readouterr().out
    assert asyncio.run(_statuses(database_url)) == {
        "evt-0": "redrive",
        "evt-1": "discarded",
        "evt-2": "discarded",
    }

    main(["deadletters", "list"])
    assert capsys.readouterr().out.count("RequestReceived") == 1
    with pytest.raises(SystemExit):
        main(["deadletters", "redrive"])


def test_migrate_reports_an_up_to_date_schema(
    database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ADMINDUK_DATABASE_URL", database_url)
    assert main(["migrate"]) == 0
    assert "schema is up to date" in capsys.readouterr().out


def test_officers_add_list_disable(
    database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ADMINDUK_DATABASE_URL", database_url)
    assert main(["officers", "add", "Ani", "--kecamatan", "360301"]) == 0
    added = capsys.readouterr().out
    token = added.split("token (shown once, keep it safe): ")[1].strip()
    assert token.startswith("adk_")
    officer_id = added.split()[1]

    assert main(["officers", "add", "Budi", "--role", "operator"]) == 2
    assert "at least one kecamatan" in capsys.readouterr().out
    assert main(["officers", "add", "Citra", "--kecamatan", "317101"]) == 2
    assert "not a kecamatan of" in capsys.readouterr().out

    assert main(["officers", "list"]) == 0
    listing = capsys.readouterr().out
    assert "Ani" in listing and "360301" in listing and "active" in listing
    assert token not in listing

    assert main(["officers", "disable", officer_id]) == 0
    assert main(["officers", "list"]) == 0
    assert "disabled" in capsys.readouterr().out
    assert main(["officers", "disable", "off_nobody"]) == 1
