"""Notify's delivery, against a real Postgres and the simulator as the Cloud API: every
message exactly once through throttling and server errors, final failures recorded for
officers, a crash between a send and its record, the 24-hour window, and delivery
statuses as a one-way state machine."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest

from services.notify.adapters import outbox
from services.notify.handlers import CALLBACK_PREFIX
from shared.contracts import (
    Delivery,
    IssuanceScheduled,
    RequestReceived,
    RequestVerified,
    StatusReported,
    WhatsAppMessageReceived,
    citizen_stream,
    request_stream,
)
from shared.eventstore.envelope import RecordedEvent
from shared.eventstore.store import EventStore
from shared.whatsapp.client import CloudApiError

from .notifying import FAST, START, Notifying, notifying

pytestmark = pytest.mark.integration


def phone(n: int) -> str:
    return f"628123{n:07d}"


def ticket(n: int) -> str:
    return f"KTP-T{n:06d}"


def received(n: int, key: bytes, at: datetime = START) -> RequestReceived:
    return RequestReceived(
        ticket=ticket(n),
        doc_type="KTP",
        citizen=citizen_stream(phone(n), key),
        phone=phone(n),
        kecamatan_code="360301",
        applicant={"nik": "3603010101900001", "nama": "BUDI"},
        message_id=f"wamid.request-{n}",
        received_at=at,
    )


async def acknowledge(office: Notifying, count: int) -> list[RecordedEvent]:
    return [
        await office.cause(request_stream(ticket(n)), received(n, office.key)) for n in range(count)
    ]


async def test_200_acknowledgements_arrive_once_each_through_50_throttled_sends(
    event_store: EventStore, data_dir: Path
) -> None:
    async with notifying(event_store, data_dir) as office:
        office.simulator.add_failure(50, 429, 130429, None)
        causes = await acknowledge(office, 200)
        # A redelivered cause owes nothing more.
        await office.deliver(causes[0])

        await office.drain()

        assert office.simulator.pending_failures() == 0  # all 50 refusals happened
        per_phone = Counter(entry.phone for entry in office.simulator.outbox)
        assert per_phone == Counter(phone(n) for n in range(200))
        for n, cause in enumerate(causes):
            [entry] = office.sent_to(phone(n))
            assert f"Nomor tiket: {ticket(n)}" in (entry.text or "")
            assert entry.payload["biz_opaque_callback_data"] == f"{CALLBACK_PREFIX}{cause.event_id}"
            types = [event.event_type for event in await office.notifications(cause)]
            assert types == ["NotificationQueued", "NotificationSent"]
        attempts = await event_store.pool.fetchval("SELECT sum(attempts) FROM notification_outbox")
        assert attempts == 250


async def test_server_errors_and_time_outs_are_retried_until_the_message_goes(
    event_store: EventStore, data_dir: Path
) -> None:
    async with notifying(event_store, data_dir) as office:
        office.simulator.add_failure(20, 500, 131000, None)
        office.simulator.add_failure(5, 503, 2, None)
        causes = await acknowledge(office, 10)

        await office.drain()

        assert sorted(e.phone for e in office.simulator.outbox) == [phone(n) for n in range(10)]
        rows = [await office.row(cause) for cause in causes]
        assert {row["state"] for row in rows} == {"sent"}
        assert sum(row["attempts"] for row in rows) == 35


@pytest.mark.parametrize(
    ("code", "reason"),
    [(131026, "tidak dapat menerima"), (132001, "template"), (368, "diblokir")],
)
async def test_a_final_refusal_is_recorded_with_its_reason_and_not_retried(
    event_store: EventStore, data_dir: Path, code: int, reason: str
) -> None:
    async with notifying(event_store, data_dir) as office:
        office.simulator.add_failure(1, 400, code, None)
        [cause] = await acknowledge(office, 1)

        await office.drain()

        assert office.simulator.outbox == []
        _, failed = await office.notifications(cause)
        assert failed.event_type == "NotificationFailed"
        assert failed.data["error_code"] == code
        assert reason in failed.data["reason"]
        assert failed.data["ticket"] == ticket(0)
        [shown] = await outbox.for_ticket(event_store.pool, ticket(0))
        assert shown["state"] == "failed"
        assert reason in shown["reason"]


async def test_a_citizen_gets_messages_in_order_and_paced(
    event_store: EventStore, data_dir: Path
) -> None:
    policy = replace(FAST, recipient_interval=timedelta(seconds=60), recipient_burst=3)
    async with notifying(event_store, data_dir, policy) as office:
        [first] = await acknowledge(office, 1)
        verified = [
            await office.cause(
                request_stream(ticket(0)),
                RequestVerified(ticket=ticket(0), officer_id="o-1", doc_type="KTP", phone=phone(0)),
            )
            for _ in range(2)
        ]
        # The first answer fails once: the others wait behind it rather than overtake it.
        office.simulator.add_failure(1, 500, 131000, None)
        assert await office.notify.drain_once() == 1
        assert office.simulator.outbox == []
        office.clock.now += timedelta(seconds=5)
        assert await office.notify.drain_once() == 1  # the retry of the first
        assert await office.notify.drain_once() == 1  # the second: the burst's last
        assert await office.notify.drain_once() == 0  # the third waits for the pace
        third = await office.row(verified[1])
        assert third["state"] == "queued"
        assert third["attempts"] == 0
        assert third["next_at"] > office.clock.now
        kinds = [entry.text or "" for entry in office.sent_to(phone(0))]
        assert len(kinds) == 2
        assert "Nomor tiket" in kinds[0]
        assert (await office.row(first))["state"] == "sent"


async def test_a_crash_after_the_send_is_settled_by_the_delivery_status_without_a_second_send(
    event_store: EventStore, data_dir: Path
) -> None:
    async with notifying(event_store, data_dir) as office:
        [cause] = await acknowledge(office, 1)
        [row] = await outbox.lease(event_store.pool, office.clock.now, 10, timedelta(seconds=60))
        # The attempt reaches the Cloud API; the process dies before recording it.
        await office.notify._send(row, "text")
        [entry] = office.simulator.outbox

        office.clock.now += timedelta(seconds=61)  # the lease ran out; nothing proves it yet
        assert await office.notify.reconcile() == 0
        await office.status(entry, "sent", f"{CALLBACK_PREFIX}{cause.event_id}")
        assert await office.notify.reconcile() == 1
        await office.drain()
        office.clock.now += timedelta(hours=1)
        await office.notify.reconcile()
        await office.drain()

        assert office.simulator.outbox == [entry]
        types = [event.event_type for event in await office.notifications(cause)]
        assert types == ["NotificationQueued", "NotificationStatusChanged", "NotificationSent"]
        sent = (await office.notifications(cause))[-1]
        assert sent.data["reconciled"] is True
        assert sent.data["wamid"] == entry.id


async def test_a_time_out_after_the_api_accepted_is_settled_by_the_status_not_resent(
    event_store: EventStore, data_dir: Path
) -> None:
    async with notifying(event_store, data_dir) as office:
        [cause] = await acknowledge(office, 1)
        [row] = await outbox.lease(event_store.pool, office.clock.now, 10, timedelta(seconds=60))
        await office.notify._send(row, "text")  # accepted by the API...
        [entry] = office.simulator.outbox
        # ... but the answer never came back: the outcome is unknown.
        await office.notify._refused(
            row, "text", CloudApiError(None, None, "time-out: ReadTimeout", unanswered=True)
        )
        waiting = await office.row(cause)
        assert waiting["state"] == "queued"
        assert waiting["next_at"] >= office.clock.now + FAST.reconcile_after

        await office.status(entry, "delivered", f"{CALLBACK_PREFIX}{cause.event_id}")
        office.clock.now += timedelta(hours=1)
        await office.drain()

        assert office.simulator.outbox == [entry]
        assert (await office.row(cause))["state"] == "sent"
        sent = [e for e in await office.notifications(cause) if e.event_type == "NotificationSent"]
        assert [(e.data["wamid"], e.data["reconciled"]) for e in sent] == [(entry.id, True)]


async def test_an_attempt_that_never_reached_the_api_is_sent_after_the_wait(
    event_store: EventStore, data_dir: Path
) -> None:
    async with notifying(event_store, data_dir) as office:
        [cause] = await acknowledge(office, 1)
        await outbox.lease(event_store.pool, office.clock.now, 10, timedelta(seconds=60))
        # The process died before the call: no status will ever come.

        office.clock.now += timedelta(seconds=61)
        assert await office.notify.reconcile() == 0  # not yet: a status may still come
        office.clock.now += FAST.reconcile_after
        assert await office.notify.reconcile() == 1
        await office.drain()

        assert len(office.simulator.outbox) == 1
        sent = (await office.notifications(cause))[-1]
        assert sent.event_type == "NotificationSent"
        assert sent.data["reconciled"] is False
        assert sent.data["attempts"] == 2


async def test_statuses_move_a_message_forward_only(
    event_store: EventStore, data_dir: Path
) -> None:
    async with notifying(event_store, data_dir) as office:
        [cause] = await acknowledge(office, 1)
        await office.drain()
        [entry] = office.simulator.outbox
        callback = f"{CALLBACK_PREFIX}{cause.event_id}"

        for status in ("read", "delivered", "sent", "read", "failed"):
            await office.status(entry, status, callback)
        await office.status("wamid.someone-else", "delivered", "notification:unknown")

        changes = [
            event.data["status"]
            for event in await office.notifications(cause)
            if event.event_type == "NotificationStatusChanged"
        ]
        assert changes == ["read"]
        assert (await office.row(cause))["delivery"] == "read"


async def test_a_batch_of_statuses_moves_each_message_as_one_by_one_would(
    event_store: EventStore, data_dir: Path
) -> None:
    """The bulk handler of a pulled batch: the same events and rows as one status at a time,
    a failure in the middle (the window closed) handled as the one-by-one path does."""
    async with notifying(event_store, data_dir) as office:
        causes = await acknowledge(office, 3)
        await office.drain()
        entries = office.simulator.outbox
        callbacks = [f"{CALLBACK_PREFIX}{cause.event_id}" for cause in causes]
        by_callback = dict(zip(callbacks, entries, strict=True))
        first, second, third = callbacks

        await office.statuses_in_one_batch(
            [
                (by_callback[first], "sent", first, None),
                (by_callback[second], "read", second, None),
                (by_callback[first], "delivered", first, None),
                (by_callback[second], "delivered", second, None),  # late: not recorded
                (by_callback[third], "failed", third, 131026),
                (by_callback[first], "read", first, None),
                ("wamid.someone-else", "delivered", "notification:unknown", None),
            ]
        )

        async def changes(cause: RecordedEvent) -> list[str]:
            return [
                event.data["status"]
                for event in await office.notifications(cause)
                if event.event_type == "NotificationStatusChanged"
            ]

        assert await changes(causes[0]) == ["sent", "delivered", "read"]
        assert await changes(causes[1]) == ["read"]
        assert await changes(causes[2]) == ["failed"]
        assert [(await office.row(cause))["delivery"] for cause in causes] == [
            "read",
            "read",
            "failed",
        ]
        inbox = "SELECT count(*) FROM inbox WHERE consumer = 'notify-statuses'"
        assert await event_store.pool.fetchval(inbox) == 5  # one per status that moved one


async def test_a_batch_of_messages_and_replies_queues_as_one_by_one_would(
    event_store: EventStore, data_dir: Path
) -> None:
    """The replies consumer's bulk handler: each citizen's latest message opens the window,
    each cause owes its message once, every event gets its receipt, all in one commit."""
    async with notifying(event_store, data_dir) as office:
        wrote = [START - timedelta(minutes=10 - n) for n in range(4)]
        inbound = [
            await office.record(
                citizen_stream(phone(n % 2), office.key),
                WhatsAppMessageReceived(
                    message_id=f"wamid.batch-{n}",
                    phone=phone(n % 2),
                    sent_at=wrote[n],
                    message_type="text",
                    text="halo",
                    phone_number_id="1",
                ),
            )
            for n in range(4)
        ]
        causes = [
            await office.record(request_stream(ticket(n)), received(n, office.key))
            for n in range(3)
        ]
        # Later messages first for citizen 0: the window keeps the latest, not the last read.
        await office.replies_in_one_batch(
            [inbound[2], causes[0], inbound[0], causes[1], inbound[3], inbound[1], causes[2]]
        )

        contacts = {
            row["recipient"]: row["last_inbound_at"]
            for row in await event_store.pool.fetch("SELECT * FROM whatsapp_contact")
        }
        assert contacts == {
            citizen_stream(phone(0), office.key): wrote[2],
            citizen_stream(phone(1), office.key): wrote[3],
        }
        for cause in causes:
            assert [e.event_type for e in await office.notifications(cause)] == [
                "NotificationQueued"
            ]
            assert (await office.row(cause))["state"] == "queued"
        receipts = "SELECT count(*) FROM inbox WHERE consumer = 'notify-replies'"
        assert await event_store.pool.fetchval(receipts) == 7

        await office.drain()
        for n in range(3):
            [entry] = office.sent_to(phone(n))
            assert f"Nomor tiket: {ticket(n)}" in (entry.text or "")


async def test_a_message_refused_for_the_window_after_acceptance_goes_again_as_its_template(
    event_store: EventStore, data_dir: Path
) -> None:
    async with notifying(event_store, data_dir) as office:
        verified = RequestVerified(
            ticket=ticket(0), officer_id="o-1", doc_type="KTP", phone=phone(0)
        )
        await office.citizen_wrote(phone(0), office.clock.now - timedelta(hours=1))
        cause = await office.cause(request_stream(ticket(0)), verified)
        await office.drain()
        [free_form] = office.simulator.outbox
        assert free_form.type == "interactive"  # with its "Cek status" button

        await office.status(free_form, "failed", f"{CALLBACK_PREFIX}{cause.event_id}", 131047)
        await office.drain()

        first, second = office.sent_to(phone(0))
        assert first.id == free_form.id
        assert second.type == "template"
        types = [event.event_type for event in await office.notifications(cause)]
        assert types == [
            "NotificationQueued",
            "NotificationSent",
            "NotificationStatusChanged",
            "NotificationSent",
        ]
        last = (await office.notifications(cause))[-1]
        assert last.data["form"] == "template"


def scheduled(key_phone: str) -> IssuanceScheduled:
    return IssuanceScheduled(
        ticket=ticket(0),
        doc_type="KTP",
        phone=key_phone,
        promised_on=date(2026, 11, 24),
        working_days=1,
        delivery=Delivery(channel="office", place="Kantor Disdukcapil", bring=("Tiket",)),
    )


@pytest.mark.parametrize(
    ("last_message", "form"),
    [
        (timedelta(hours=1), "text"),
        (timedelta(hours=23, minutes=40), "text"),
        (timedelta(hours=23, minutes=55), "template"),  # inside the margin
        (timedelta(days=3), "template"),
        (None, "template"),
    ],
)
async def test_the_pickup_date_goes_free_form_inside_the_window_and_as_a_template_outside(
    event_store: EventStore, data_dir: Path, last_message: timedelta | None, form: str
) -> None:
    async with notifying(event_store, data_dir) as office:
        if last_message is not None:
            await office.citizen_wrote(phone(0), office.clock.now - last_message)
        cause = await office.cause(request_stream(ticket(0)), scheduled(phone(0)))

        await office.drain()

        [entry] = office.simulator.outbox
        assert entry.type == form
        sent = (await office.notifications(cause))[-1]
        assert sent.data["form"] == form
        if form == "template":
            template = entry.payload["template"]
            assert template["name"] == sent.data["template"]
            assert template["language"] == {"code": "id"}
            parameters = [
                p["text"] for c in template.get("components", []) for p in c["parameters"]
            ]
            assert ticket(0) in parameters
            assert any("2026" in parameter for parameter in parameters)
        else:
            assert ticket(0) in (entry.text or "")


async def test_an_answer_outside_the_window_without_a_template_is_not_sent(
    event_store: EventStore, data_dir: Path
) -> None:
    async with notifying(event_store, data_dir) as office:
        answer = StatusReported(
            phone=phone(0), message_id="wamid.old", ticket=ticket(0), status="DITERIMA"
        )
        # Meta delivered the question's webhook three days late.
        await office.citizen_wrote(phone(0), office.clock.now - timedelta(days=3))
        cause = await office.cause(citizen_stream(phone(0), office.key), answer)

        await office.drain()

        assert office.simulator.outbox == []
        failed = (await office.notifications(cause))[-1]
        assert failed.event_type == "NotificationFailed"
        assert failed.data["error_code"] == 131047


async def test_the_window_is_read_from_the_latest_message(
    event_store: EventStore, data_dir: Path
) -> None:
    async with notifying(event_store, data_dir) as office:
        await office.citizen_wrote(phone(0), office.clock.now - timedelta(hours=2))
        await office.citizen_wrote(phone(0), office.clock.now - timedelta(days=5))  # late
        await office.cause(request_stream(ticket(0)), scheduled(phone(0)))

        await office.drain()

        [entry] = office.simulator.outbox
        assert entry.type == "text"
        last = await event_store.pool.fetchval("SELECT last_inbound_at FROM whatsapp_contact")
        assert last == START - timedelta(hours=2)


async def test_the_acknowledgement_of_a_request_received_days_late_is_a_template(
    event_store: EventStore, data_dir: Path
) -> None:
    async with notifying(event_store, data_dir) as office:
        late = received(0, office.key, at=START - timedelta(days=3))
        await office.cause(request_stream(ticket(0)), late)

        await office.drain()

        [entry] = office.simulator.outbox
        assert entry.type == "template"
        assert ticket(0) in str(entry.payload["template"])
