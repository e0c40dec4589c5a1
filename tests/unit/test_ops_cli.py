"""The operators' tools without a database: what they show of an event, how they read
subjects and durations, and how they refuse arguments that make no sense (exit code 2)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from adminduk.cli import main
from adminduk.ops.history import as_json, duration, line, ticket_of
from adminduk.ops.redaction import HIDDEN, describe, redact_data
from adminduk.ops.selection import subject_matches, types_of
from shared.eventstore.envelope import Metadata, NewEvent, RecordedEvent
from tests.builders import SITI, recorded

NIK, NO_KK, NAME, PHONE = SITI.nik, SITI.no_kk, SITI.name, SITI.phone
PERSONAL = (NIK, NO_KK, NAME, PHONE, SITI.desa)


def stored(
    event_type: str, data: dict[str, Any], stream: str = "request-KTP-7Q2M9XAB"
) -> RecordedEvent:
    """An event of intake's as the store gives it back."""
    event = NewEvent(event_type=event_type, data=data, metadata=Metadata(actor="system:intake"))
    return recorded(
        event, position=42, stream_id=stream, at=datetime(2026, 11, 23, 3, 0, tzinfo=UTC)
    )


RECEIVED: dict[str, Any] = {
    "ticket": "KTP-7Q2M9XAB",
    "doc_type": "KTP",
    "citizen": "citizen-wa_0123abcd",
    "phone": PHONE,
    "kecamatan_code": "360301",
    "applicant": {
        "nik": NIK,
        "no_kk": NO_KK,
        "nama": NAME,
        "desa": "SENTUL",
        "kecamatan_code": "360301",
        "reason": "PEMULA",
    },
    "attachments": [
        {
            "sha256": "ab" * 32,
            "content_type": "image/jpeg",
            "size": 1000,
            "filename": "ktp siti.jpg",
        }
    ],
    "message_id": "wamid.G1",
    "received_at": "2026-11-23T03:00:00+00:00",
}


# -- what an operator sees ------------------------------------------------------------------


def test_personal_data_is_masked_and_the_facts_stay() -> None:
    shown = redact_data(RECEIVED)
    text = json.dumps(shown)
    for secret in (*PERSONAL, "ktp siti.jpg"):
        assert secret not in text
    assert shown["ticket"] == "KTP-7Q2M9XAB"
    assert shown["phone"] == "62*******7890"
    assert shown["applicant"]["nik"] == "3603********0001"
    assert shown["applicant"]["nama"] == HIDDEN
    assert shown["applicant"]["kecamatan_code"] == "360301"
    assert shown["attachments"][0]["sha256"] == "ab" * 32
    assert shown["attachments"][0]["filename"] == HIDDEN


def test_an_unknown_field_is_hidden_and_a_safe_one_is_still_scrubbed() -> None:
    shown = redact_data(
        {"new_field": NAME, "ticket": f"KTP-1 {NIK}", "size": 3603015708990001, "reason": "x y"}
    )
    assert shown["new_field"] == HIDDEN
    assert NIK not in shown["ticket"]
    assert shown["size"] == HIDDEN  # a 16-digit number is not a size
    assert shown["reason"] == HIDDEN  # free text, not a code
    assert redact_data({"reason": "duplicate"})["reason"] == "duplicate"


def test_lines_and_envelopes_carry_no_personal_data() -> None:
    event = stored("RequestReceived", RECEIVED)
    for text in (line(event), as_json(event), describe(event.data)):
        for secret in PERSONAL:
            assert secret not in text
    assert "KTP-7Q2M9XAB" in line(event)
    assert json.loads(as_json(event))["data"]["doc_type"] == "KTP"


def test_the_ticket_of_an_event() -> None:
    assert ticket_of(stored("RequestVerified", {})) == "KTP-7Q2M9XAB"
    assert ticket_of(stored("X", {"ticket": "KIA-1"}, stream="citizen-wa_1")) == "KIA-1"
    assert ticket_of(stored("X", {}, stream="citizen-wa_1")) is None


def test_durations() -> None:
    assert duration(timedelta(seconds=0.25)) == "0.25s"
    assert duration(timedelta(seconds=185)) == "3m05s"
    assert duration(timedelta(hours=2, minutes=1)) == "2h01m"
    assert duration(timedelta(days=1, hours=4, minutes=9)) == "1d04h"


def test_subjects() -> None:
    assert subject_matches("adminduk.events.request.*", "adminduk.events.request.RequestReceived")
    assert subject_matches("adminduk.events.>", "adminduk.events.request.RequestReceived")
    assert not subject_matches("adminduk.events.citizen.*", "adminduk.events.request.X")
    assert not subject_matches("adminduk.events.request", "adminduk.events.request.X")
    assert types_of(["adminduk.events.request.A", "adminduk.events.citizen.B"]) == {"A", "B"}
    assert types_of(["adminduk.events.request.*"]) is None


# -- arguments that make no sense -----------------------------------------------------------


def exit_code(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as stop:
        return int(stop.code or 0)


@pytest.mark.parametrize(
    ("command", "message"),
    [
        ("events replay --to consumer:notify-replies", "--from-position"),
        ("events replay --from-position 1", "--to"),
        (
            "events replay --from-position 1 --since 2026-11-23T10:00Z "
            "--to consumer:notify-replies",
            "not allowed with",
        ),
        ("events replay --since 2026-11-23T10:00 --to consumer:notify-replies", "time zone"),
        ("events replay --from-position -3 --to projection:verification", "0 or more"),
        ("events replay --from-position x --to projection:verification", "position"),
        ("events replay --from-position 1 --to queue:x", "not a target"),
        ("events replay --from-position 1 --to consumer:sms-sender", "no service"),
        ("events replay --from-position 1 --to projection:nope", "no projection"),
        (
            "events replay --from-position 1 --to consumer:notify-replies --type RequestReceivd",
            "unknown event type",
        ),
        (
            "events replay --from-position 5 --until-position 2 --to consumer:notify-replies",
            "before --from-position",
        ),
        (
            "events replay --from-position 1 --to projection:request_status --reprocess",
            "for consumers",
        ),
        (
            "events replay --from-position 1 --to consumer:intake-messages --reprocess",
            "current state",
        ),
        (
            "events replay --from-position 1 --to webhook:wh_1 --type RequestReceived",
            "do not apply",
        ),
        ("events tail --stream NoCategory", "stream id"),
        ("events tail --lines -1", "--lines"),
        ("events show ktp#1", "not a ticket"),
        ("events show", "ticket"),
        ("projections rebuild nope", "no projection"),
        ("projections rebuild verification --lock-timeout 0", "more than 0"),
        ("deadletters show x", "invalid int"),
        ("serve nope", "no process named 'nope'; known: relay, intake, verification"),
        ("serve", "the following arguments are required: name"),
    ],
)
def test_bad_arguments_exit_2_with_a_clear_message(
    command: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert exit_code(command.split()) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


def test_an_unreachable_database_is_one_clear_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ADMINDUK_DATABASE_URL", "postgresql://adminduk@127.0.0.1:1/adminduk")
    assert exit_code(["events", "tail"]) == 1
    assert exit_code(["projections", "list"]) == 1
    err = capsys.readouterr().err
    assert "adminduk events tail: the database failed:" in err
    assert "adminduk projections list: the database failed:" in err
    assert "Traceback" not in err
