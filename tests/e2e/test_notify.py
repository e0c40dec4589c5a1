"""Notify from outside: a citizen who cannot type the format is walked through a request;
a message owed to a citizen who last wrote days ago goes out as a template; a notify
killed between a send and its record does not send it twice; a throttled Cloud API
still gets every acknowledgement exactly once."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from shared.runtime.processes import free_port
from tests.e2e.harness import Runtime, embedded_dsn, serving
from tests.e2e.test_verification import BOOTSTRAP, PHOTO, TICKET, Office, wait
from tests.e2e.test_whatsapp import FakeCloudApi, post, webhook

pytestmark = pytest.mark.e2e

PHONE = "6281298765432"
ENV = {
    "ADMINDUK_BOOTSTRAP_TOKEN": BOOTSTRAP,
    "ADMINDUK_PAPERS_GRACE": "PT1S",
    "ADMINDUK_VERIFICATION_SWEEP_INTERVAL": "0.5",
    "ADMINDUK_NOTIFY_SEND_LEASE": "PT3S",
    "ADMINDUK_NOTIFY_RECONCILE_AFTER": "PT20S",
}


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[Runtime]:
    runtime = Runtime(tmp_path / "data", ENV)
    with serving(runtime):
        yield runtime


class Chat:
    """One citizen's chat in the built-in simulator, as the citizen's phone sees it."""

    def __init__(self, runtime: Runtime, phone: str = PHONE) -> None:
        self.base = f"http://127.0.0.1:{runtime.env['ADMINDUK_SIMULATOR_PORT']}/simulator/api"
        self.phone = phone

    def messages(self) -> list[dict[str, Any]]:
        answer = httpx.get(f"{self.base}/conversations/{self.phone}", timeout=5)
        answer.raise_for_status()
        return [m for m in answer.json()["messages"] if m["direction"] == "out"]

    def write(self, text: str, **extra: Any) -> None:
        sent = httpx.post(
            f"{self.base}/messages", json={"from": self.phone, "text": text, **extra}, timeout=10
        )
        assert sent.status_code == 200, sent.text

    def next_message(
        self, seen: int, predicate: Callable[[dict[str, Any]], bool]
    ) -> dict[str, Any]:
        """The first message after the ``seen`` first ones that matches."""
        return wait(
            lambda: next((m for m in self.messages()[seen:] if predicate(m)), None), timeout=30
        )

    def tap(self, message: dict[str, Any], reply_id: str) -> None:
        """Tap the button or list row ``reply_id`` of an interactive ``message``."""
        interactive = message["payload"]["interactive"]
        action = interactive["action"]
        if interactive["type"] == "button":
            [title] = [
                b["reply"]["title"] for b in action["buttons"] if b["reply"]["id"] == reply_id
            ]
            reply = {"button_reply": {"id": reply_id, "title": title}}
        else:
            [row] = [r for s in action["sections"] for r in s["rows"] if r["id"] == reply_id]
            reply = {"list_reply": {"id": reply_id, "title": row["title"]}}
        sent = httpx.post(
            f"{self.base}/replies",
            json={"from": self.phone, "context_message_id": message["id"], **reply},
            timeout=10,
        )
        assert sent.status_code == 200, sent.text


def interactive(message: dict[str, Any]) -> bool:
    return bool(message["type"] == "interactive")


def options(message: dict[str, Any]) -> list[str]:
    action = message["payload"]["interactive"]["action"]
    if "buttons" in action:
        return [button["reply"]["id"] for button in action["buttons"]]
    return [row["id"] for section in action["sections"] for row in section["rows"]]


def test_halo_walks_a_citizen_through_a_ktp_request_without_the_format(runtime: Runtime) -> None:
    chat = Chat(runtime)
    chat.write("halo")
    menu = chat.next_message(0, interactive)
    assert menu["payload"]["interactive"]["type"] == "list"
    assert "svc:KTP" in options(menu)

    seen = len(chat.messages())
    chat.tap(menu, "svc:KTP")
    chat.next_message(seen, lambda m: "NIK" in (m["text"] or ""))
    # A wrong answer is refused at once, with what is wrong: the same question again.
    seen = len(chat.messages())
    chat.write("12345")
    refused = chat.next_message(seen, lambda m: True)
    assert "NIK" in refused["text"]
    assert "16" in refused["text"]
    for answer in (
        "3603015708990001",  # NIK
        "3603012001180003",  # No. KK
        "Siti Aminah",
        "Sentul",
        "Balaraja",
    ):
        seen = len(chat.messages())
        chat.write(answer)
        chat.next_message(seen, lambda m: True)
    reason = chat.messages()[-1]
    assert interactive(reason)
    [pemula] = [option for option in options(reason) if option.endswith("PEMULA")]
    seen = len(chat.messages())
    chat.tap(reason, pemula)

    summary = chat.next_message(seen, interactive)
    assert "3603015708990001" in summary["text"]
    assert "guided:confirm" in options(summary)
    seen = len(chat.messages())
    chat.tap(summary, "guided:confirm")

    ack = chat.next_message(seen, lambda m: "Nomor tiket: KTP-" in (m["text"] or ""))
    match = TICKET.search(ack["text"])
    assert match is not None
    office = Office(runtime)
    request = office.state(match[1], BOOTSTRAP)
    assert request["doc_type"] == "KTP"
    assert request["kecamatan_code"] == "360301"
    assert [m["text"] for m in chat.messages()].count(ack["text"]) == 1


def test_a_pickup_date_for_a_citizen_who_wrote_three_days_ago_goes_as_a_template(
    runtime: Runtime,
) -> None:
    office = Office(runtime)
    chat = Chat(runtime, "6281277776666")
    three_days_ago = int(time.time()) - 3 * 24 * 3600
    # The request with its papers (a photo), as a webhook Meta delivered three days late.
    sent = httpx.post(
        f"{chat.base}/messages",
        data={
            "from": chat.phone,
            "caption": "#KTP#3603015708990001#3603012001180003#SITI AMINAH#SENTUL#BALARAJA#HILANG#",
            "sent_at": str(three_days_ago),
        },
        files={"file": ("berkas.jpg", PHOTO, "image/jpeg")},
        timeout=10,
    )
    assert sent.status_code == 200, sent.text
    # Even the acknowledgement is a template: Meta delivered the webhook days late.
    ack = chat.next_message(0, lambda m: m["type"] == "template")
    assert ack["template"] == "adminduk_request_received"
    match = TICKET.search(ack["text"])  # the template's text as the citizen reads it
    assert match is not None, ack
    ticket = match[1]
    wait(lambda: office.state(ticket, BOOTSTRAP)["state"] == "in_queue" or None, timeout=60)
    seen = len(chat.messages())
    approved = office.call("POST", f"/api/requests/{ticket}/approve", BOOTSTRAP)
    assert approved.status_code == 200, approved.text

    pickup = chat.next_message(seen, lambda m: "DIPROSES" in (m["text"] or ""))
    assert pickup["type"] == "template", pickup
    assert pickup["template"] == "adminduk_pickup_date"
    assert "Dokumen dapat diambil mulai" in pickup["text"]
    assert ticket in json.dumps(pickup["payload"]["template"])
    free_form = [m for m in chat.messages() if m["type"] != "template"]
    assert free_form == [], "free-form outside the 24-hour window"
    history = office.state(ticket, BOOTSTRAP)["history"]
    forms = [h["data"]["form"] for h in history if h["type"] == "NotificationSent"]
    assert forms, "the messages are in the request's history"
    assert set(forms) == {"template"}


async def _notification_events(runtime: Runtime, kind: str) -> list[dict[str, Any]]:
    connection = await asyncpg.connect(embedded_dsn(runtime.data_dir))
    try:
        rows = await connection.fetch(
            "SELECT event_type, data FROM events WHERE stream_id LIKE 'notification-%' "
            "AND data->>'kind' = $1 ORDER BY position",
            kind,
        )
    finally:
        await connection.close()
    return [{"type": row["event_type"], **json.loads(row["data"])} for row in rows]


def test_notify_killed_between_a_send_and_its_record_does_not_send_twice(
    runtime: Runtime,
) -> None:
    faults = runtime.data_dir / "faults"
    faults.mkdir(parents=True, exist_ok=True)
    (faults / "notify-crash-after-send").touch()
    chat = Chat(runtime, "6281255554444")

    chat.write("#KTP#3603015708990001#3603012001180003#SITI AMINAH#SENTUL#BALARAJA#RUSAK#")

    wait(lambda: "notify exited with code -9" in runtime.output() or None, timeout=60)
    assert not (faults / "notify-crash-after-send").exists()
    sent = wait(
        lambda: (
            [
                e
                for e in asyncio.run(_notification_events(runtime, "request-received"))
                if e["type"] == "NotificationSent"
            ]
            or None
        ),
        timeout=90,
    )
    assert [event["reconciled"] for event in sent] == [True]
    time.sleep(3)  # anything sent twice would be in the chat by now
    acks = [m for m in chat.messages() if "Nomor tiket:" in (m["text"] or "")]
    assert len(acks) == 1, acks


@pytest.fixture
def throttled(tmp_path: Path) -> Iterator[tuple[Runtime, FakeCloudApi]]:
    intake_port = free_port()
    fake = FakeCloudApi(tmp_path, intake_port)
    runtime = Runtime(
        tmp_path / "data",
        {
            "WHATSAPP_API_BASE_URL": f"{fake.base}/v21.0",
            "WHATSAPP_APP_SECRET": "e2e-app-secret",
            "ADMINDUK_NOTIFY_RETRY_BASE": "PT0.2S",
            "ADMINDUK_NOTIFY_RETRY_MAX": "PT2S",
        },
    )
    runtime.intake_port = intake_port
    runtime.env["ADMINDUK_INTAKE_PORT"] = str(intake_port)
    try:
        with serving(runtime):
            yield runtime, fake
    finally:
        fake.stop()


def test_200_acknowledgements_arrive_once_each_when_the_first_50_sends_are_throttled(
    throttled: tuple[Runtime, FakeCloudApi],
) -> None:
    runtime, fake = throttled
    injected = httpx.post(
        f"{fake.base}/simulator/api/failures",
        json={"count": 50, "status": 429, "code": 130429},
        timeout=5,
    )
    assert injected.status_code < 300, injected.text
    phones = [f"62812{n:08d}" for n in range(200)]
    for n, phone in enumerate(phones):
        nik = f"36030157089{n:05d}"
        name = "WARGA " + "".join(chr(ord("A") + int(digit)) for digit in f"{n:03d}")
        text = f"#KTP#{nik}#3603012001180003#{name}#SENTUL#BALARAJA#PEMULA#"
        body = json.dumps(webhook(text, f"wamid.E2E-BULK-{n}", phone)).encode()
        assert post(runtime, body) == 200

    def acknowledged() -> dict[str, int] | None:
        counts = {
            phone: sum("Nomor tiket:" in text for text in fake.outbox(phone)) for phone in phones
        }
        return counts if all(counts.values()) else None

    wait(acknowledged, timeout=120)
    time.sleep(2)  # a message sent twice would be there by now
    counts = {p: sum("Nomor tiket:" in t for t in fake.outbox(p)) for p in phones}
    assert set(counts.values()) == {1}
    remaining = httpx.get(f"{fake.base}/simulator/api/failures", timeout=5).json()
    assert remaining == {"pending": 0}  # all 50 refusals happened
