"""Guided mode through intake, against a real Postgres and the WhatsApp simulator as the
Cloud API: a citizen who writes ``halo`` gets a KTP-el request through buttons and list rows
without typing a ``#`` format, and the session lives in the event store."""

from __future__ import annotations

import hashlib
import time
from collections.abc import AsyncIterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.intake.domain.guided import SESSION_ENDED
from services.intake.handlers import Intake
from services.intake.inbound import webhook_appends
from services.simulator.app import create_app as create_simulator
from shared import reply_ids
from shared.bus.consumer import HandlerContext
from shared.config import Settings
from shared.contracts import (
    GUIDED_CHOOSE_DOCUMENT,
    GUIDED_CONFIRM,
    Delivery,
    DocumentCollected,
    IssuanceScheduled,
    RequestRejected,
    citizen_stream,
    request_stream,
)
from shared.eventstore.envelope import RecordedEvent
from shared.eventstore.store import EventStore
from shared.identity import OfficeArea
from shared.mediastore import FileMediaStore
from shared.whatsapp.client import CloudApiClient
from shared.whatsapp.webhook import WebhookPayload

pytestmark = pytest.mark.integration

PHONE = "6281234567890"
OTHER_PHONE = "6289876543210"
NIK = "3603015708990001"
NO_KK = "3603012001180003"
KTP = f"#KTP#{NIK}#{NO_KK}#SITI AMINAH#SENTUL#BALARAJA#PEMULA#"
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(256)) * 4
IDLE = timedelta(minutes=30)


class Citizen:
    """Sends messages the way the webhook records them (text, files, button and list
    replies, at chosen times), and lets intake handle them."""

    def __init__(self, intake: Intake, settings: Settings, cloud: httpx.AsyncClient) -> None:
        self.intake = intake
        self.settings = settings
        self.cloud = cloud
        self.count = 0
        self.projected = 0
        self.clock = int(time.time()) - 3600

    async def upload(self, data: bytes, mime: str) -> str:
        answer = await self.cloud.post(
            f"/v21.0/{self.settings.whatsapp_phone_number_id}/media",
            data={"messaging_product": "whatsapp", "type": mime},
            files={"file": ("f", data, mime)},
        )
        answer.raise_for_status()
        return str(answer.json()["id"])

    async def send(
        self,
        text: str | None = None,
        *,
        button: tuple[str, str] | None = None,
        row: tuple[str, str] | None = None,
        media: tuple[bytes, str] | None = None,
        phone: str = PHONE,
        after: timedelta = timedelta(minutes=1),
    ) -> RecordedEvent:
        """One message, ``after`` the previous one. ``button``/``row``: (id, title)."""
        self.count += 1
        self.clock += int(after.total_seconds())
        message: dict[str, Any] = {
            "from": phone,
            "id": f"wamid.G{self.count}",
            "timestamp": str(self.clock),
            "type": "text",
        }
        if button is not None or row is not None:
            kind = "button_reply" if button is not None else "list_reply"
            reply_id, title = button or row or ("", "")
            message["type"] = "interactive"
            message["interactive"] = {"type": kind, kind: {"id": reply_id, "title": title}}
        elif media is not None:
            data, mime = media
            message["type"] = "image"
            message["image"] = {
                "id": await self.upload(data, mime),
                "mime_type": mime,
                "sha256": hashlib.sha256(data).hexdigest(),
                **({"caption": text} if text else {}),
            }
        else:
            message["text"] = {"body": text or ""}
        payload = WebhookPayload.model_validate(
            {
                "object": "whatsapp_business_account",
                "entry": [
                    {
                        "id": "1",
                        "changes": [
                            {
                                "field": "messages",
                                "value": {
                                    "messaging_product": "whatsapp",
                                    "metadata": {
                                        "phone_number_id": self.settings.whatsapp_phone_number_id
                                    },
                                    "contacts": [{"wa_id": phone, "profile": {"name": "Warga"}}],
                                    "messages": [message],
                                },
                            }
                        ],
                    }
                ],
            }
        )
        [append] = webhook_appends(payload, self.settings.key)
        result = await self.intake.store.append_streams([append])
        [event] = result.events
        await self.handle(event)
        return event

    async def handle(self, event: RecordedEvent) -> None:
        context = HandlerContext(
            consumer="intake-messages", store=self.intake.store, event=event, deliveries=1
        )
        await self.intake.on_message(context)

    async def project(self) -> None:
        for event in await self.intake.store.read_category(
            "request", after_position=self.projected
        ):
            self.projected = event.position
            context = HandlerContext(
                consumer="intake-request-status",
                store=self.intake.store,
                event=event,
                deliveries=1,
            )
            await self.intake.project_status(context)

    async def events(self, phone: str = PHONE) -> list[RecordedEvent]:
        return await self.intake.store.read_stream(citizen_stream(phone, self.settings.key))

    async def answer_to(self, sent: RecordedEvent, phone: str = PHONE) -> list[RecordedEvent]:
        """The events intake appended because of message ``sent``."""
        return [
            event
            for event in await self.events(phone)
            if event.metadata.causation_id == sent.event_id
        ]

    async def step(self, sent: RecordedEvent) -> dict[str, Any]:
        """The guided question intake asked in answer to ``sent``."""
        [asked] = [e for e in await self.answer_to(sent) if e.event_type == "GuidedStepAsked"]
        return asked.data


def new_intake(store: EventStore, settings: Settings, cloud: CloudApiClient) -> Intake:
    return Intake(
        store=store,
        media=FileMediaStore(settings.data_dir / "media"),
        cloud=cloud,
        area=OfficeArea("3603"),
        key=settings.key,
        today=lambda: date(2026, 11, 23),
        guided_idle=IDLE,
    )


@pytest.fixture
async def citizen(event_store: EventStore, tmp_path: Path) -> AsyncIterator[Citizen]:
    settings = Settings(data_dir=tmp_path)
    simulator = create_simulator(settings, intake_webhook_url="http://127.0.0.1:9/unused")
    transport = httpx.ASGITransport(app=simulator)
    cloud = CloudApiClient(
        "http://simulator/v21.0",
        settings.whatsapp_access_token.get_secret_value(),
        settings.whatsapp_phone_number_id,
        transport=transport,
    )
    raw = httpx.AsyncClient(
        transport=transport,
        base_url="http://simulator",
        headers={"Authorization": f"Bearer {settings.whatsapp_access_token.get_secret_value()}"},
    )
    yield Citizen(new_intake(event_store, settings, cloud), settings, raw)
    await cloud.close()
    await raw.aclose()


def types(events: list[RecordedEvent]) -> list[str]:
    return [event.event_type for event in events]


async def test_halo_becomes_a_ktp_request_without_typing_the_format(
    citizen: Citizen, event_store: EventStore
) -> None:
    halo = await citizen.send("halo")
    assert types(await citizen.answer_to(halo)) == ["GuidedStepAsked"]
    assert await citizen.step(halo) == {
        "phone": PHONE,
        "message_id": halo.data["message_id"],
        "doc_type": None,
        "field": GUIDED_CHOOSE_DOCUMENT,
        "answers": {},
        "problem": None,
    }
    chosen = await citizen.send(row=(reply_ids.choose_service("KTP"), "KTP-el"))
    assert (await citizen.step(chosen))["field"] == "NIK"
    # A photo of the KK while answering: held, and the question stays open.
    await citizen.send(media=(JPEG, "image/jpeg"), after=timedelta(minutes=2))

    wrong = await citizen.send("3603 0157 0899 00", after=timedelta(minutes=10))
    refused = await citizen.step(wrong)
    assert (refused["field"], refused["answers"]) == ("NIK", {})
    assert "16 angka" in refused["problem"]

    answers = [
        (NIK, "NO_KK"),
        (NO_KK, "NAMA"),
        ("siti aminah", "DESA"),
        ("Sentul", "KECAMATAN"),
        ("kec. balaraja", "PEMULA/HILANG/RUSAK"),
    ]
    for typed, next_field in answers:
        sent = await citizen.send(typed, after=timedelta(minutes=5))
        asked = await citizen.step(sent)
        assert (asked["field"], asked["problem"]) == (next_field, None)
    reason = await citizen.send(
        button=(reply_ids.guided_answer("PEMULA"), "Pemula"), after=timedelta(minutes=5)
    )
    summary = await citizen.step(reason)
    assert summary["field"] == GUIDED_CONFIRM
    assert summary["answers"] == {
        "NIK": NIK,
        "NO_KK": NO_KK,
        "NAMA": "SITI AMINAH",
        "DESA": "SENTUL",
        "KECAMATAN": "Balaraja",
        "PEMULA/HILANG/RUSAK": "PEMULA",
    }
    assert await event_store.read_category("request") == []

    send = await citizen.send(
        button=(reply_ids.GUIDED_CONFIRM, "Kirim"), after=timedelta(minutes=5)
    )
    await citizen.handle(send)  # JetStream redelivered it
    [received] = await event_store.read_category("request")
    ticket = received.data["ticket"]
    assert received.data["message_id"] == send.data["message_id"]
    # The photo came 33 minutes before "Kirim", beyond the 30-minute window: it belongs
    # to the request because it came during the session.
    assert [a["sha256"] for a in received.data["attachments"]] == [hashlib.sha256(JPEG).hexdigest()]
    answer = await citizen.answer_to(send)
    assert types(answer) == ["RequestSubmitted", "GuidedEnded"]
    assert answer[1].data["reason"] == "submitted"
    assert answer[1].data["ticket"] == ticket
    assert len({event.metadata.causation_id for event in answer}) == 1  # one append

    # The same values typed in the format give the same applicant (once the guided
    # request is closed, so the format is not answered as a duplicate of it).
    await event_store.append(
        request_stream(ticket),
        [
            RequestRejected(
                ticket=ticket, officer_id="o-1", reason="x", phone=PHONE, doc_type="KTP"
            ).to_new_event()
        ],
    )
    await citizen.project()
    await citizen.send(KTP, phone=OTHER_PHONE)
    [_, from_format] = [
        e for e in await event_store.read_category("request") if e.event_type == "RequestReceived"
    ]
    assert from_format.data["ticket"] != ticket
    assert from_format.data["applicant"] == received.data["applicant"]
    assert from_format.data["kecamatan_code"] == received.data["kecamatan_code"] == "360301"


async def test_the_session_survives_a_restart_and_the_citizen_can_leave(
    citizen: Citizen, event_store: EventStore
) -> None:
    await citizen.send("Selamat pagi")
    await citizen.send(row=(reply_ids.choose_service("KTP"), "KTP-el"))
    await citizen.send(NIK)

    # Intake restarts: a new instance knows only what the store holds.
    citizen.intake = new_intake(event_store, citizen.settings, citizen.intake.cloud)
    kk = await citizen.send(NO_KK)
    assert await citizen.step(kk) == {
        "phone": PHONE,
        "message_id": kk.data["message_id"],
        "doc_type": "KTP",
        "field": "NAMA",
        "answers": {"NIK": NIK, "NO_KK": NO_KK},
        "problem": None,
    }

    leave = await citizen.send(button=(reply_ids.GUIDED_LEAVE, "Keluar"))
    [ended] = await citizen.answer_to(leave)
    assert (ended.event_type, ended.data["reason"]) == ("GuidedEnded", "left")
    # Out of the session, a name is no answer any more.
    late = await citizen.send("siti aminah")
    assert types(await citizen.answer_to(late)) == ["MenuRequested"]
    assert await event_store.read_category("request") == []


async def test_a_command_replaces_the_session_and_a_quiet_one_lapses(
    citizen: Citizen, event_store: EventStore
) -> None:
    await citizen.send("halo")
    await citizen.send("ktp")
    menu = await citizen.send("#MENU")
    assert types(await citizen.answer_to(menu)) == ["GuidedEnded", "MenuRequested"]
    assert (await citizen.answer_to(menu))[0].data["reason"] == "replaced"

    await citizen.send(row=(reply_ids.choose_service("KIA"), "KIA"))
    lapsed = await citizen.send(NIK, after=IDLE + timedelta(minutes=1))
    answer = await citizen.answer_to(lapsed)
    assert types(answer) == ["GuidedEnded", "GuidedStepAsked"]
    assert answer[0].data["reason"] == "expired"
    assert (answer[1].data["field"], answer[1].data["problem"]) == (
        GUIDED_CHOOSE_DOCUMENT,
        SESSION_ENDED,
    )

    # The format typed in a session is a request as always, and ends the session.
    typed = await citizen.send(KTP)
    assert types(await citizen.answer_to(typed)) == ["GuidedEnded", "RequestSubmitted"]
    assert len(await event_store.read_category("request")) == 1
    stale = await citizen.send(button=(reply_ids.GUIDED_CONFIRM, "Kirim"))
    assert (await citizen.step(stale))["problem"] == SESSION_ENDED


async def test_a_digit_answers_the_open_question_and_the_survey_button_the_survey(
    citizen: Citizen, event_store: EventStore
) -> None:
    await citizen.send(KTP)
    [received] = await event_store.read_category("request")
    ticket = str(received.data["ticket"])
    scheduled = IssuanceScheduled(
        ticket=ticket,
        doc_type="KTP",
        phone=PHONE,
        promised_on=date(2026, 12, 8),
        working_days=1,
        delivery=Delivery(channel="office", place="Loket 3"),
    )
    collected = DocumentCollected(ticket=ticket, doc_type="KTP", phone=PHONE, officer_id="o-1")
    await event_store.append(
        request_stream(ticket), [scheduled.to_new_event(), collected.to_new_event()]
    )
    await citizen.project()  # the survey question waits for an answer

    await citizen.send("halo")
    two = await citizen.send("2")
    assert (await citizen.step(two))["doc_type"] == "KTP"
    survey = await citizen.send(button=(reply_ids.survey(4), "Sangat puas"))
    assert await citizen.answer_to(survey) == []
    answers = [
        e.data["score"]
        for e in await event_store.read_stream(request_stream(ticket))
        if e.event_type == "SurveyAnswered"
    ]
    assert answers == [4]
    nik = await citizen.send(NIK)
    assert (await citizen.step(nik))["answers"] == {"NIK": NIK}
