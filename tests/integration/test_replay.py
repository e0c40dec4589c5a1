"""``adminduk events`` against a real Postgres: replaying to notify sends no WhatsApp
message again (with and without ``--reprocess``) while a consumer that never saw events
handles them; selection by position, time, type and stream; failures to dead letters;
webhook replay; and ``tail``/``show`` without personal data.

The commands run as an operator runs them (``adminduk.cli.main``, in a thread with its own
event loop) against the test's database; notify's sending worker runs in the test, with
the simulator as the WhatsApp Cloud API, and is the only thing that can send.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest

from adminduk.cli import main
from adminduk.ops.selection import Selection, select
from shared.contracts import (
    ComplaintReceived,
    RequestReceived,
    RequestSubmitted,
    RequestVerified,
    StatusReported,
    WhatsAppMessageReceived,
    citizen_stream,
    complaint_stream,
    request_stream,
)
from shared.eventstore.envelope import Metadata, NewEvent, RecordedEvent
from shared.eventstore.store import EventStore

from .notifying import START, Notifying, notifying

pytestmark = pytest.mark.integration

NIK, NO_KK, NAME, PHONE = "3603015708990001", "3603012001180003", "SITI AMINAH", "6281234567890"
OTHER_PHONE = "6281298765432"
PERSONAL = (NIK, NO_KK, NAME, PHONE, OTHER_PHONE, "SENTUL", "Warga Siti")
NOTIFY_EVENTS = ["NotificationQueued", "NotificationSent"]


@dataclass
class Cli:
    """``adminduk ...`` as an operator types it: exit code and what it printed."""

    capsys: pytest.CaptureFixture[str]

    async def __call__(self, *argv: str) -> tuple[int, str, str]:
        self.capsys.readouterr()
        try:
            code = await asyncio.to_thread(main, list(argv))
        except SystemExit as stop:
            code = int(stop.code) if isinstance(stop.code, int) else 1
        out, err = self.capsys.readouterr()
        return code, out, err


@pytest.fixture
def cli(
    database_url: str,
    data_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> Cli:
    monkeypatch.setenv("ADMINDUK_DATABASE_URL", database_url)
    monkeypatch.setenv("ADMINDUK_DATA_DIR", str(data_dir))
    return Cli(capsys)


@pytest.fixture
async def office(event_store: EventStore, data_dir: Path) -> AsyncIterator[Notifying]:
    async with notifying(event_store, data_dir) as office:
        yield office


def received(n: int, phone: str, key: bytes) -> RequestReceived:
    return RequestReceived(
        ticket=f"KTP-R{n:06d}",
        doc_type="KTP",
        citizen=citizen_stream(phone, key),
        phone=phone,
        kecamatan_code="360301",
        applicant={"nik": NIK, "no_kk": NO_KK, "nama": NAME, "desa": "SENTUL"},
        message_id=f"wamid.request-{n}",
        received_at=START,
    )


async def history(office: Notifying, count: int, phone: str = PHONE) -> list[RecordedEvent]:
    """Requests received and verified, each answered by notify and sent."""
    await office.citizen_wrote(phone, START)
    causes = []
    for n in range(count):
        ticket = f"KTP-R{n:06d}"
        causes.append(await office.cause(request_stream(ticket), received(n, phone, office.key)))
        verified = RequestVerified(ticket=ticket, officer_id="off_ani", phone=phone, doc_type="KTP")
        causes.append(await office.cause(request_stream(ticket), verified))
    await office.drain()
    return causes


async def count(store: EventStore, types: list[str]) -> int:
    return len(await store.read_all(event_types=types, limit=100_000))


async def receipts(store: EventStore, consumer: str) -> set[str]:
    rows = await store.pool.fetch("SELECT message_id FROM inbox WHERE consumer = $1", consumer)
    return {row["message_id"] for row in rows}


def tally(out: str) -> dict[str, int]:
    """The counts of the replay's summary line."""
    found = re.search(
        r"(\d+) events selected: (\d+) delivered, (\d+) already handled, (\d+) failed", out
    )
    assert found is not None, out
    selected, delivered, handled, failed = map(int, found.groups())
    return {"selected": selected, "delivered": delivered, "handled": handled, "failed": failed}


# -- replay never repeats a side effect ------------------------------------------------------


@pytest.mark.parametrize("reprocess", [False, True])
async def test_replaying_notify_from_position_0_sends_nothing_again(
    office: Notifying, cli: Cli, reprocess: bool
) -> None:
    causes = await history(office, 4)
    sent = len(office.simulator.outbox)
    assert sent == len(causes)  # each request's acknowledgement and decision went out
    notifications = await count(office.store, NOTIFY_EVENTS)
    handled = await receipts(office.store, "notify-replies")

    code, out, err = await cli(
        "events",
        "replay",
        "--from-position",
        "0",
        "--to",
        "consumer:notify-replies",
        *(["--reprocess"] if reprocess else []),
    )
    assert code == 0, err
    counts = tally(out)
    # The window-opening message and the causes: every event on notify's subjects.
    assert counts["selected"] == len(causes) + 1
    if reprocess:
        assert (counts["delivered"], counts["handled"]) == (len(causes) + 1, 0)
    else:
        assert (counts["delivered"], counts["handled"]) == (0, len(causes) + 1)

    await office.drain()  # the worker sends whatever a replay queued: nothing
    assert len(office.simulator.outbox) == sent
    assert await count(office.store, NOTIFY_EVENTS) == notifications
    assert await receipts(office.store, "notify-replies") == handled
    assert await office.open_rows() == 0


async def test_replaying_delivery_statuses_changes_nothing(office: Notifying, cli: Cli) -> None:
    await history(office, 2)
    for entry in office.simulator.outbox:
        await office.status(entry, "delivered", entry.callback_data or "")
    changes = await count(office.store, ["NotificationStatusChanged"])
    assert changes == len(office.simulator.outbox)

    code, out, err = await cli(
        "events",
        "replay",
        "--from-position",
        "1",
        "--to",
        "consumer:notify-statuses",
        "--reprocess",
    )
    assert code == 0, err
    assert tally(out)["delivered"] == changes
    assert await count(office.store, ["NotificationStatusChanged"]) == changes


async def test_a_consumer_that_lost_its_receipts_handles_those_events_again_harmlessly(
    office: Notifying, cli: Cli
) -> None:
    causes = await history(office, 4)
    sent, notifications = len(office.simulator.outbox), await count(office.store, NOTIFY_EVENTS)
    lost = {str(cause.event_id) for cause in causes[2:6]}
    await office.store.pool.execute(
        "DELETE FROM inbox WHERE consumer = 'notify-replies' AND message_id = ANY($1::text[])",
        list(lost),
    )

    code, out, err = await cli(
        "events",
        "replay",
        "--from-position",
        str(causes[2].position),
        "--until-position",
        str(causes[5].position),
        "--to",
        "consumer:notify-replies",
    )
    assert code == 0, err
    assert tally(out) == {"selected": 4, "delivered": 4, "handled": 0, "failed": 0}
    assert lost <= await receipts(office.store, "notify-replies")
    await office.drain()
    assert len(office.simulator.outbox) == sent
    assert await count(office.store, NOTIFY_EVENTS) == notifications


async def test_events_notify_never_saw_are_handled_and_sent_once(
    office: Notifying, cli: Cli
) -> None:
    await history(office, 1)
    sent = len(office.simulator.outbox)
    # Requests recorded while notify was away: nobody answered them yet.
    unseen = [
        await office.record(request_stream(f"KTP-R{n:06d}"), received(n, PHONE, office.key))
        for n in range(10, 13)
    ]

    code, out, err = await cli(
        "events",
        "replay",
        "--since",
        unseen[0].recorded_at.isoformat(),
        "--to",
        "consumer:notify-replies",
    )
    assert code == 0, err
    assert tally(out) == {"selected": 3, "delivered": 3, "handled": 0, "failed": 0}
    for cause in unseen:
        assert [e.event_type for e in await office.notifications(cause)] == ["NotificationQueued"]
    await office.drain()
    assert len(office.simulator.outbox) == sent + 3

    code, out, _ = await cli(
        "events", "replay", "--from-position", "0", "--to", "consumer:notify-replies", "--reprocess"
    )
    assert code == 0
    await office.drain()
    assert len(office.simulator.outbox) == sent + 3


async def test_a_dry_run_counts_and_changes_nothing(office: Notifying, cli: Cli) -> None:
    await history(office, 2)
    await office.record(request_stream("KTP-R000010"), received(10, PHONE, office.key))
    code, out, err = await cli(
        "events",
        "replay",
        "--from-position",
        "1",
        "--type",
        "RequestReceived",
        "--to",
        "consumer:notify-replies",
        "--dry-run",
    )
    assert code == 0, err
    assert "dry run: 3 events selected, 1 would be delivered, 2 already handled" in out
    assert await count(office.store, ["NotificationQueued"]) == 4


async def test_a_failing_event_goes_to_dead_letters_and_can_be_inspected(
    office: Notifying, cli: Cli
) -> None:
    await history(office, 1)
    broken = (
        await office.store.append(
            request_stream("KTP-BROKEN01"),
            [
                NewEvent(
                    event_type="RequestReceived", data={"ticket": "KTP-BROKEN01", "phone": PHONE}
                )
            ],
        )
    ).events[0]

    code, out, err = await cli(
        "events",
        "replay",
        "--from-position",
        str(broken.position),
        "--to",
        "consumer:notify-replies",
    )
    assert code == 1
    assert tally(out) == {"selected": 1, "delivered": 0, "handled": 0, "failed": 1}
    assert "adminduk deadletters list --consumer notify-replies" in out
    row = await office.store.pool.fetchrow(
        "SELECT id, consumer, message_id, status FROM dead_letters"
    )
    assert row is not None
    assert (row["consumer"], row["message_id"], row["status"]) == (
        "notify-replies",
        str(broken.event_id),
        "dead",
    )

    code, out, err = await cli("deadletters", "show", str(row["id"]))
    assert code == 0, err
    assert "RequestReceived" in out and "KTP-BROKEN01" in out and "ValidationError" in out
    assert PHONE not in out


async def test_an_unknown_consumer_of_a_known_service_is_a_usage_error(cli: Cli) -> None:
    code, _, err = await cli(
        "events", "replay", "--from-position", "1", "--to", "consumer:notify-sms"
    )
    assert code == 2
    assert "no consumer named 'notify-sms'; notify has notify-replies, notify-statuses" in err


# -- selection ---------------------------------------------------------------------------------


async def test_selection_by_position_time_type_and_stream(event_store: EventStore) -> None:
    written: list[RecordedEvent] = []
    for n in range(6):
        stream = f"request-KTP-S{n % 2}"
        kind = "RequestVerified" if n % 3 == 2 else "RequestReceived"
        result = await event_store.append(stream, [NewEvent(event_type=kind, data={"n": n})])
        written.extend(result.events)
    head = written[-1].position

    async def chosen(selection: Selection, subjects: list[str] | None = None) -> list[int]:
        return [
            event.data["n"]
            async for event in select(event_store, selection, until=head, subjects=subjects)
        ]

    assert await chosen(Selection(from_position=written[2].position)) == [2, 3, 4, 5]
    assert await chosen(Selection(from_position=1, until_position=written[1].position)) == [0, 1]
    assert await chosen(Selection(since=written[4].recorded_at)) == [4, 5]
    assert await chosen(Selection(types=("RequestVerified",))) == [2, 5]
    assert await chosen(Selection(stream="request-KTP-S1", from_position=written[2].position)) == [
        3,
        5,
    ]
    assert await chosen(Selection(), subjects=["adminduk.events.request.RequestVerified"]) == [2, 5]
    assert await event_store.position_at(written[3].recorded_at) == written[3].position
    later = written[-1].recorded_at + timedelta(seconds=1)
    assert await event_store.position_at(later) == head + 1


# -- webhook subscribers -----------------------------------------------------------------------


async def test_a_webhook_subscriber_is_rewound(event_store: EventStore, cli: Cli) -> None:
    from services.integrations import subscriptions  # noqa: PLC0415
    from services.integrations.destinations import Destinations  # noqa: PLC0415

    for n in range(3):
        await event_store.append(
            f"request-KTP-W{n}", [NewEvent(event_type="RequestReceived", data={})]
        )
    async with event_store.pool.acquire() as connection:
        subscription, _ = await subscriptions.add(
            connection,
            url="https://agency.example/hooks",
            known_types=["RequestReceived"],
            created_by="test",
            destinations=Destinations(),
        )
    assert subscription.position == 3

    code, out, _ = await cli(
        "events",
        "replay",
        "--from-position",
        "2",
        "--to",
        f"webhook:{subscription.id}",
        "--dry-run",
    )
    assert (code, out.strip()) == (
        0,
        f"dry run: webhook subscriber {subscription.id} would be replayed from position 2",
    )
    code, out, err = await cli(
        "events", "replay", "--from-position", "2", "--to", f"webhook:{subscription.id}"
    )
    assert code == 0, err
    async with event_store.pool.acquire() as connection:
        assert (await subscriptions.get(connection, subscription.id)).position == 1

    code, _, err = await cli(
        "events", "replay", "--from-position", "1", "--to", "webhook:wh_nobody"
    )
    assert code == 1
    assert "no webhook subscription wh_nobody" in err


# -- reading the log without personal data ------------------------------------------------------


async def a_request_with_its_whole_history(office: Notifying) -> str:
    """A citizen's message making a request, its answer sent, a status question, a
    complaint about it; every event carrying the planted personal data."""
    key, ticket = office.key, "KTP-H0000001"
    citizen = citizen_stream(PHONE, key)
    text = f"#KTP#{NIK}#{NO_KK}#{NAME}#SENTUL#BALARAJA#PEMULA#"
    message = WhatsAppMessageReceived(
        message_id="wamid.H1",
        phone=PHONE,
        profile_name="Warga Siti",
        sent_at=START,
        message_type="text",
        text=text,
        phone_number_id="1",
    )
    wrote = await office.cause(citizen, message)
    caused = Metadata(
        causation_id=wrote.event_id, correlation_id=wrote.event_id, actor="system:intake"
    )
    submitted = RequestSubmitted(ticket=ticket, doc_type="KTP", message_id="wamid.H1")
    await office.store.append(citizen, [submitted.to_new_event(metadata=caused)])
    request = received(1, PHONE, key).model_copy(update={"ticket": ticket})
    recorded = (
        await office.store.append(request_stream(ticket), [request.to_new_event(metadata=caused)])
    ).events[0]
    await office.deliver(recorded)
    asked = await office.record(
        citizen,
        WhatsAppMessageReceived(
            message_id="wamid.H2",
            phone=PHONE,
            sent_at=START + timedelta(minutes=5),
            message_type="text",
            text=f"#STATUS#{ticket}",
            phone_number_id="1",
        ),
    )
    status = StatusReported(phone=PHONE, message_id="wamid.H2", ticket=ticket, status="DITERIMA")
    await office.store.append(
        citizen,
        [
            status.to_new_event(
                metadata=Metadata(causation_id=asked.event_id, actor="system:intake")
            )
        ],
    )
    complaint = ComplaintReceived(
        ticket="ADUAN-H0000001",
        citizen=citizen,
        phone=PHONE,
        text=f"Saya {NAME}, NIK {NIK}, belum dapat kabar",
        related_ticket=ticket,
        message_id="wamid.H3",
        received_at=START + timedelta(hours=1),
    )
    await office.record(complaint_stream("ADUAN-H0000001"), complaint)
    # Another citizen's message that must not appear in this request's history.
    await office.citizen_wrote(OTHER_PHONE, START)
    await office.drain()
    return ticket


async def test_tail_and_show_print_no_personal_data(office: Notifying, cli: Cli) -> None:
    ticket = await a_request_with_its_whole_history(office)
    outputs = []
    for argv in (
        ("events", "tail", "--from-position", "1"),
        ("events", "tail", "--from-position", "1", "--json"),
        ("events", "tail", "-n", "5", "--type", "RequestReceived", "ComplaintReceived"),
        ("events", "show", ticket),
        ("events", "show", ticket.lower(), "--json"),
    ):
        code, out, err = await cli(*argv)
        assert code == 0, err
        outputs.append(out)
        for secret in PERSONAL:
            assert secret not in out, (argv, secret)
    tail_text, tail_json, last_two, shown, shown_json = outputs
    assert "RequestReceived" in tail_text and f"ticket={ticket}" in tail_text
    assert len(tail_json.splitlines()) == len(tail_text.splitlines())
    assert [row.split()[3] for row in last_two.splitlines()] == [
        "RequestReceived",
        "ComplaintReceived",
    ]
    types = [row.split()[3] for row in shown.splitlines() if re.match(r"\s+\d+\s+\d{4}-", row)]
    assert types == [
        "WhatsAppMessageReceived",
        "RequestSubmitted",
        "RequestReceived",
        "NotificationQueued",
        "WhatsAppMessageReceived",
        "StatusReported",
        "ComplaintReceived",
        "NotificationSent",
    ]
    assert f"ticket {ticket}  document KTP  kecamatan 360301  status DITERIMA" in shown
    assert "nik=3603********0001" in shown and "nama=***" in shown
    assert len(shown_json.splitlines()) == len(types)


async def test_show_of_an_unknown_ticket_says_so(cli: Cli) -> None:
    code, _, err = await cli("events", "show", "KTP-NOBODY01")
    assert code == 1
    assert "no request or complaint with ticket KTP-NOBODY01" in err


async def test_tail_follow_prints_new_events_until_stopped(event_store: EventStore) -> None:
    import io  # noqa: PLC0415

    from adminduk.ops.history import TailOptions, tail  # noqa: PLC0415

    await event_store.append("request-KTP-F1", [NewEvent(event_type="RequestReceived", data={})])
    out, stop = io.StringIO(), asyncio.Event()
    follower = asyncio.create_task(
        tail(event_store, TailOptions(Selection(), follow=True, poll_interval=0.2), out, stop)
    )
    await event_store.append("request-KTP-F2", [NewEvent(event_type="RequestVerified", data={})])
    for _ in range(200):
        if "RequestVerified" in out.getvalue():
            break
        await asyncio.sleep(0.02)
    stop.set()
    assert await asyncio.wait_for(follower, 5) == 2
    assert [row.split()[3] for row in out.getvalue().splitlines()] == [
        "RequestReceived",
        "RequestVerified",
    ]
