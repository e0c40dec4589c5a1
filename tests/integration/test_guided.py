"""Guided mode through intake, against a real Postgres and the WhatsApp simulator as the
Cloud API: a citizen who writes ``halo`` gets a KTP-el request through buttons and list rows
without typing a ``#`` format, and the session lives in the event store."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from datetime import date, timedelta
from pathlib import Path

import pytest

from services.intake.domain.guided import SESSION_ENDED
from shared import reply_ids
from shared.contracts import (
    GUIDED_CHOOSE_DOCUMENT,
    GUIDED_CONFIRM,
    Delivery,
    DocumentCollected,
    IssuanceScheduled,
    RequestRejected,
    request_stream,
)
from shared.eventstore.envelope import RecordedEvent
from shared.eventstore.store import EventStore
from tests.builders import SITI

from .citizens import Citizen, citizen_of, new_intake

pytestmark = pytest.mark.integration

PHONE = "6281234567890"
OTHER_PHONE = "6289876543210"
NIK = SITI.nik
NO_KK = SITI.no_kk
KTP = f"#KTP#{NIK}#{NO_KK}#SITI AMINAH#SENTUL#BALARAJA#PEMULA#"
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(256)) * 4
IDLE = timedelta(minutes=30)


@pytest.fixture
async def citizen(event_store: EventStore, tmp_path: Path) -> AsyncIterator[Citizen]:
    async with citizen_of(event_store, tmp_path) as citizen:
        yield citizen


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
