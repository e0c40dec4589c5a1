"""Guided mode's decisions: every document walked step by step to the request its ``#``
format gives, refusals with the parser's words, the buttons and the typed keywords,
sessions that lapse, and the conversation's fold of the guided events."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from types import MappingProxyType
from typing import Any

import pytest

from services.intake.domain.conversation import ATTACH_WINDOW, Conversation, GuidedState
from services.intake.domain.guided import (
    SESSION_ENDED,
    Ask,
    Decision,
    Handle,
    Inbound,
    Leave,
    Submit,
    interpret,
)
from services.intake.domain.parser import (
    DocumentRequest,
    Invalid,
    MenuRequest,
    ParsedMessage,
    Problem,
    StatusQuery,
    Unrecognised,
    check_field,
    compose_format,
    parse_message,
)
from shared import reply_ids
from shared.contracts import (
    GUIDED_CHOOSE_DOCUMENT,
    GUIDED_CONFIRM,
    Attachment,
    AttachmentStored,
    GuidedEnded,
    GuidedStepAsked,
    RequestSubmitted,
    WhatsAppMessageReceived,
)
from shared.documents import CATALOGUE, DocType, FormField, document
from shared.eventstore.envelope import Event, Metadata, RecordedEvent
from shared.identity import OfficeArea
from tests.support import decode_all, decoded

TODAY = date(2026, 11, 23)
AREA = OfficeArea("3603")
NOW = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)
IDLE = timedelta(minutes=30)
PHONE = "6281234567890"

NIK = "3603015708990001"
NO_KK = "3603012001180003"
KTP_ANSWERS = {
    "NIK": NIK,
    "NO_KK": NO_KK,
    "NAMA": "SITI AMINAH",
    "DESA": "SENTUL",
    "KECAMATAN": "Balaraja",
    "PEMULA/HILANG/RUSAK": "PEMULA",
}


def example_values(doc_type: DocType) -> list[str]:
    """The columns of the catalogue's example of ``doc_type``, after the keyword."""
    return document(doc_type).example.strip("#").split("#")[1:]


def state(
    doc_type: DocType | None,
    field: str,
    answers: Mapping[str, str] | None = None,
    *,
    asked_at: datetime = NOW,
) -> GuidedState:
    return GuidedState(
        doc_type=None if doc_type is None else doc_type.value,
        field=field,
        answers=MappingProxyType(dict(answers or {})),
        asked_at=asked_at,
        started_at=asked_at,
    )


def after(decision: Decision, *, at: datetime = NOW) -> GuidedState:
    """The state the conversation folds from the step ``decision`` records."""
    assert isinstance(decision, Ask), decision
    return state(decision.doc_type, decision.field, decision.answers, asked_at=at)


def send(
    current: GuidedState | None,
    text: str | None = None,
    reply_id: str | None = None,
    *,
    now: datetime = NOW,
    media: bool = False,
) -> Decision:
    return interpret(
        current,
        Inbound(text, reply_id, has_media=media),
        now=now,
        idle=IDLE,
        area=AREA,
        today=TODAY,
    )


def ask(decision: Decision) -> Ask:
    assert isinstance(decision, Ask), decision
    return decision


# -- whole walks ---------------------------------------------------------------------------


@pytest.mark.parametrize("doc_type", list(CATALOGUE))
@pytest.mark.parametrize("confirm", ["button", "typed"])
def test_every_document_walked_step_by_step_is_its_formats_request(
    doc_type: DocType, confirm: str
) -> None:
    spec = document(doc_type)
    current = after(send(None, "halo"))
    decision = send(current, spec.name[:24], reply_ids.choose_service(doc_type.value))
    for column, value in zip(spec.fields, example_values(doc_type), strict=True):
        step = ask(decision)
        assert (step.doc_type, step.field, step.problem) == (doc_type, column.value, None)
        # Typed as people type: lower case, spaces around.
        decision = send(after(step), f"  {value.lower()} ")
    summary = ask(decision)
    assert summary.field == GUIDED_CONFIRM
    assert list(summary.answers) == [column.value for column in spec.fields]

    if confirm == "button":
        done = send(after(summary), "Kirim", reply_ids.GUIDED_CONFIRM)
    else:
        done = send(after(summary), "Ya")
    assert isinstance(done, Submit), done
    assert done.request == parse_message(spec.example, area=AREA, today=TODAY)
    assert parse_message(done.text, area=AREA, today=TODAY) == done.request


@pytest.mark.parametrize("doc_type", list(CATALOGUE))
def test_check_field_and_compose_format_give_back_the_example(doc_type: DocType) -> None:
    spec = document(doc_type)
    values: dict[FormField, str] = {}
    for column, raw in zip(spec.fields, example_values(doc_type), strict=True):
        checked = check_field(column, raw, area=AREA, today=TODAY, doc_type=doc_type)
        assert isinstance(checked, str), checked
        assert "#" not in checked
        values[column] = checked
    text = compose_format(doc_type, values)
    assert text.startswith(f"#{spec.keyword}#")
    assert parse_message(text, area=AREA, today=TODAY) == parse_message(
        spec.example, area=AREA, today=TODAY
    )


def test_check_field_gives_the_value_as_the_format_carries_it() -> None:
    def check(column: FormField, raw: str) -> str | Problem:
        return check_field(column, raw, area=AREA, today=TODAY)

    assert check(FormField.NIK, "NIK: 3603 0157 0899 0001") == NIK
    assert check(FormField.NAMA, "*siti   aminah*") == "SITI AMINAH"
    assert check(FormField.KECAMATAN, "kec. balaraja") == "Balaraja"
    assert check(FormField.ALASAN_KTP, "baru") == "PEMULA"
    assert check(FormField.TANGGAL_LAHIR, "5 november 2025") == "05-11-2025"
    refused = check(FormField.NIK, "12345")
    assert isinstance(refused, Problem)
    assert refused.field == "NIK"


# -- starting -----------------------------------------------------------------------------


def test_a_greeting_starts_at_the_choice_of_document_and_the_menu_command_does_not() -> None:
    assert send(None, "Assalamualaikum") == Ask(None, GUIDED_CHOOSE_DOCUMENT, {})
    assert send(None, "#MENU") == Handle(MenuRequest(greeting=False))
    assert send(None, "terima kasih") == Handle(Unrecognised())


@pytest.mark.parametrize(
    "typed", ["KTP", "ktp", " 2 ", "2.", "Kartu Tanda Penduduk elektronik (KTP-el)", "ktp hilang"]
)
def test_the_document_is_chosen_by_keyword_number_or_name(typed: str) -> None:
    # The menu's numbering is the catalogue's order: KTP-el is the second.
    assert list(CATALOGUE).index(DocType.KTP) == 1
    decision = send(state(None, GUIDED_CHOOSE_DOCUMENT), typed)
    assert decision == Ask(DocType.KTP, "NIK", {})


def test_an_unknown_document_is_asked_again_and_a_greeting_is_no_mistake() -> None:
    first = state(None, GUIDED_CHOOSE_DOCUMENT)
    refused = ask(send(first, "paspor"))
    assert (refused.field, refused.doc_type) == (GUIDED_CHOOSE_DOCUMENT, None)
    assert refused.problem is not None and "daftar" in refused.problem
    assert ask(send(first, "99")).problem is not None
    assert send(first, "halo") == Ask(None, GUIDED_CHOOSE_DOCUMENT, {})


def test_a_service_button_starts_at_its_first_question_whatever_the_state() -> None:
    expected = Ask(DocType.SKDWNI, "NO_SKPWNI", {})
    assert send(None, "Pindah datang", reply_ids.choose_service("SKDWNI")) == expected
    assert send(None, "Isi langkah demi langkah", reply_ids.guided_start("SKDWNI")) == expected
    midway = state(DocType.KTP, "NAMA", {"NIK": NIK, "NO_KK": NO_KK})
    assert send(midway, "x", reply_ids.choose_service("SKDWNI")) == expected
    unknown = ask(send(None, "SIM", reply_ids.choose_service("SIM")))
    assert (unknown.field, unknown.problem is not None) == (GUIDED_CHOOSE_DOCUMENT, True)


# -- answers ------------------------------------------------------------------------------


def test_a_refused_answer_asks_the_same_question_with_the_parsers_words() -> None:
    current = state(DocType.KTP, "NIK")
    decision = ask(send(current, "36030157089900"))
    expected = parse_message(
        document(DocType.KTP).example.replace(NIK, "36030157089900"), area=AREA, today=TODAY
    )
    assert isinstance(expected, Invalid)
    assert decision == Ask(DocType.KTP, "NIK", {}, expected.problems[0].message)
    # Then a good answer moves on.
    assert send(after(decision), NIK) == Ask(DocType.KTP, "NO_KK", {"NIK": NIK})


def test_a_family_card_outside_the_regency_is_refused_at_once() -> None:
    current = state(DocType.KTP, "NO_KK", {"NIK": NIK})
    decision = ask(send(current, "3171012001180003"))  # Jakarta Pusat
    assert (decision.field, decision.answers) == ("NO_KK", {"NIK": NIK})
    assert decision.problem is not None and "di luar" in decision.problem


def test_a_death_before_the_birth_in_the_nik_is_refused_at_once() -> None:
    answers = {"NIK_ALMARHUM": "3603011203450001", "NO_KK": NO_KK, "NAMA_ALMARHUM": "ABDUL"}
    current = state(DocType.AKTA_KEMATIAN, "TANGGAL_MENINGGAL", answers)
    refused = ask(send(current, "01-01-1940"))
    assert refused.field == "TANGGAL_MENINGGAL"
    assert refused.problem is not None and "lebih awal" in refused.problem
    assert ask(send(current, "02-11-2025")).field == "DESA"


def test_a_fixed_choice_is_answered_by_its_row_or_typed() -> None:
    answers = {k: v for k, v in KTP_ANSWERS.items() if k != "PEMULA/HILANG/RUSAK"}
    current = state(DocType.KTP, "PEMULA/HILANG/RUSAK", answers)
    for decision in (
        send(current, "Hilang", reply_ids.guided_answer("HILANG")),
        send(current, " hilang "),
        send(current, "KEHILANGAN"),
    ):
        step = ask(decision)
        assert (step.field, step.answers["PEMULA/HILANG/RUSAK"]) == (GUIDED_CONFIRM, "HILANG")
    typo = ask(send(current, "dicuri"))
    assert typo.field == "PEMULA/HILANG/RUSAK"
    assert typo.problem is not None and "PEMULA, HILANG atau RUSAK" in typo.problem


def test_a_choice_for_another_question_is_not_taken_as_this_answer() -> None:
    at_name = state(DocType.KTP, "NAMA", {"NIK": NIK, "NO_KK": NO_KK})
    stale = ask(send(at_name, "Pemula", reply_ids.guided_answer("PEMULA")))
    assert (stale.field, stale.answers) == ("NAMA", {"NIK": NIK, "NO_KK": NO_KK})
    assert stale.problem is not None
    at_reason = state(DocType.KTP, "PEMULA/HILANG/RUSAK", {"NIK": NIK})
    assert ask(send(at_reason, "x", reply_ids.guided_answer("SIM"))).problem is not None


def test_words_that_look_like_commands_are_answers_in_a_session() -> None:
    at_name = state(DocType.KTP, "NAMA", {"NIK": NIK, "NO_KK": NO_KK})
    assert ask(send(at_name, "Selamat Riyadi")).answers["NAMA"] == "SELAMAT RIYADI"
    validasi = {"NIK": NIK, "NO_KK": NO_KK, "NAMA": "SITI AMINAH"}
    at_purpose = state(DocType.VALIDASI_NIK, "KEPERLUAN", validasi)
    assert ask(send(at_purpose, "bantuan sosial")).answers["KEPERLUAN"] == "BANTUAN SOSIAL"


# -- the summary, leaving, starting again ---------------------------------------------------


def test_the_summary_is_sent_changed_or_asked_again() -> None:
    summary = state(DocType.KTP, GUIDED_CONFIRM, KTP_ANSWERS)
    assert isinstance(send(summary, "kirim"), Submit)
    assert isinstance(send(summary, "OK"), Submit)
    edit = Ask(DocType.KTP, "NIK", {})
    assert send(summary, "Ubah", reply_ids.GUIDED_EDIT) == edit
    assert send(summary, "ubah") == edit
    unclear = ask(send(summary, "nanti dulu"))
    assert (unclear.field, unclear.answers) == (GUIDED_CONFIRM, KTP_ANSWERS)
    assert unclear.problem is not None and "KIRIM" in unclear.problem


def test_an_old_send_button_while_answers_are_missing_asks_the_open_question() -> None:
    at_name = state(DocType.KTP, "NAMA", {"NIK": NIK, "NO_KK": NO_KK})
    decision = ask(send(at_name, "Kirim", reply_ids.GUIDED_CONFIRM))
    assert (decision.field, decision.answers) == ("NAMA", {"NIK": NIK, "NO_KK": NO_KK})
    assert decision.problem is not None


def test_a_summary_the_format_refuses_goes_back_to_the_column_at_fault() -> None:
    # Each answer passed on its own when given; together they do not (the death is
    # before the birth the NIK tells), so the final parse catches it.
    answers = {
        "NIK_ALMARHUM": "3603011203450001",
        "NO_KK": NO_KK,
        "NAMA_ALMARHUM": "ABDUL ROHIM",
        "TANGGAL_MENINGGAL": "01-01-1940",
        "DESA": "SENTUL",
        "KECAMATAN": "Balaraja",
    }
    summary = state(DocType.AKTA_KEMATIAN, GUIDED_CONFIRM, answers)
    decision = ask(send(summary, "Kirim", reply_ids.GUIDED_CONFIRM))
    assert decision.field == "TANGGAL_MENINGGAL"
    assert "TANGGAL_MENINGGAL" not in decision.answers
    assert decision.answers["NIK_ALMARHUM"] == "3603011203450001"
    assert decision.problem is not None and "lebih awal" in decision.problem


def test_a_summary_missing_a_column_asks_for_it() -> None:
    answers = {k: v for k, v in KTP_ANSWERS.items() if k != "DESA"}
    decision = ask(send(state(DocType.KTP, GUIDED_CONFIRM, answers), "ya"))
    assert (decision.field, decision.problem) == ("DESA", None)


@pytest.mark.parametrize(
    ("text", "reply_id"),
    [("Keluar", reply_ids.GUIDED_LEAVE), ("keluar", None), ("BATAL", None), ("stop!", None)],
)
def test_leaving_at_any_step(text: str, reply_id: str | None) -> None:
    for current in (
        state(None, GUIDED_CHOOSE_DOCUMENT),
        state(DocType.KTP, "NAMA", {"NIK": NIK}),
        state(DocType.KTP, GUIDED_CONFIRM, KTP_ANSWERS),
    ):
        assert send(current, text, reply_id) == Leave()
    [ended] = Leave().events(PHONE, "wamid.1")
    assert ended == GuidedEnded(phone=PHONE, message_id="wamid.1", reason="left")


@pytest.mark.parametrize(
    ("text", "reply_id"),
    [("Mulai ulang", reply_ids.GUIDED_RESTART), ("mulai lagi", None), ("ulang", None)],
)
def test_starting_again_goes_back_to_the_choice_of_document(
    text: str, reply_id: str | None
) -> None:
    current = state(DocType.KTP, "DESA", {"NIK": NIK, "NO_KK": NO_KK, "NAMA": "SITI"})
    assert send(current, text, reply_id) == Ask(None, GUIDED_CHOOSE_DOCUMENT, {})


# -- what ends a session --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "reply_id", "parsed"),
    [
        ("#STATUS#KTP-7Q2M9XAB", None, StatusQuery(ticket="KTP-7Q2M9XAB")),
        ("status KTP-7Q2M9XAB", None, StatusQuery(ticket="KTP-7Q2M9XAB")),
        ("Cek status", reply_ids.status_of("KTP-7Q2M9XAB"), StatusQuery(ticket="KTP-7Q2M9XAB")),
        ("menu", None, MenuRequest()),
        ("Menu", reply_ids.MENU, MenuRequest()),
    ],
)
def test_a_command_replaces_the_session(
    text: str, reply_id: str | None, parsed: ParsedMessage
) -> None:
    current = state(DocType.KTP, "NAMA", {"NIK": NIK})
    assert send(current, text, reply_id) == Handle(parsed, "replaced")


def test_the_format_typed_in_a_session_replaces_it() -> None:
    example = document(DocType.KTP).example
    decision = send(state(None, GUIDED_CHOOSE_DOCUMENT), example)
    assert isinstance(decision, Handle)
    assert isinstance(decision.parsed, DocumentRequest)
    assert decision.ended == "replaced"
    broken = send(state(DocType.KTP, "NIK"), "#KTP#123#")
    assert isinstance(broken, Handle) and isinstance(broken.parsed, Invalid)


def test_a_file_in_a_session_is_kept_and_the_question_stays_open() -> None:
    current = state(DocType.KTP, "NAMA", {"NIK": NIK})
    assert send(current, None, media=True) == Handle(None)
    assert send(current, "ini foto KK saya", media=True) == Handle(None)
    with_command = send(current, "#LENGKAPI#KTP-7Q2M9XAB", media=True)
    assert isinstance(with_command, Handle) and with_command.ended == "replaced"


def test_the_survey_button_is_left_to_the_survey() -> None:
    for current in (None, state(DocType.KTP, "NAMA")):
        assert send(current, "Puas", reply_ids.survey(3)) == Handle(Unrecognised())


# -- sessions that lapse --------------------------------------------------------------------


def test_a_session_lapses_after_the_quiet_period() -> None:
    asked = NOW - IDLE
    on_time = send(state(DocType.KTP, "NIK", asked_at=asked), NIK)
    assert on_time == Ask(DocType.KTP, "NO_KK", {"NIK": NIK})

    lapsed = state(DocType.KTP, "NIK", asked_at=asked - timedelta(seconds=1))
    late_answer = send(lapsed, NIK)
    assert late_answer == Ask(None, GUIDED_CHOOSE_DOCUMENT, {}, SESSION_ENDED, "expired")
    assert send(lapsed, "Kirim", reply_ids.GUIDED_CONFIRM) == late_answer
    assert send(lapsed, "halo") == Ask(None, GUIDED_CHOOSE_DOCUMENT, {}, None, "expired")
    assert send(lapsed, "#STATUS#KTP-7Q2M9XAB") == Handle(
        StatusQuery(ticket="KTP-7Q2M9XAB"), "expired"
    )
    assert send(lapsed, "x", reply_ids.choose_service("KIA")) == Ask(
        DocType.KIA, "NIK", {}, None, "expired"
    )
    assert send(lapsed, None, media=True) == Handle(None, "expired")


def test_a_lapsed_session_is_closed_before_the_new_question() -> None:
    decision = Ask(None, GUIDED_CHOOSE_DOCUMENT, {}, SESSION_ENDED, "expired")
    ended, asked = decision.events(PHONE, "wamid.9")
    assert ended == GuidedEnded(phone=PHONE, message_id="wamid.9", reason="expired")
    assert asked == GuidedStepAsked(
        phone=PHONE,
        message_id="wamid.9",
        doc_type=None,
        field=GUIDED_CHOOSE_DOCUMENT,
        problem=SESSION_ENDED,
    )


def test_a_button_of_a_finished_session_starts_again_with_a_note() -> None:
    for reply_id in (reply_ids.GUIDED_CONFIRM, reply_ids.GUIDED_EDIT, reply_ids.GUIDED_RESTART):
        assert send(None, "Kirim", reply_id) == Ask(None, GUIDED_CHOOSE_DOCUMENT, {}, SESSION_ENDED)
    assert send(None, "Keluar", reply_ids.GUIDED_LEAVE) == Leave()


# -- the conversation's fold ----------------------------------------------------------------


def recorded(events: list[tuple[Event, datetime]]) -> list[RecordedEvent]:
    return [
        RecordedEvent(
            event_id=uuid.uuid4(),
            event_type=type(event).event_type,
            stream_id="citizen-x",
            stream_version=index + 1,
            position=index + 1,
            schema_version=1,
            data=event.model_dump(mode="json", exclude={"schema_version"}),
            metadata=Metadata(),
            occurred_at=at,
            recorded_at=at + timedelta(hours=1),  # handled late: sent_at counts
        )
        for index, (event, at) in enumerate(events)
    ]


def message(message_id: str, at: datetime, **extra: Any) -> tuple[Event, datetime]:
    received = WhatsAppMessageReceived(
        message_id=message_id,
        phone=PHONE,
        sent_at=at,
        message_type="text",
        phone_number_id="1",
        **extra,
    )
    return received, at


def step(message_id: str, field: str, at: datetime, **answers: str) -> tuple[Event, datetime]:
    asked = GuidedStepAsked(
        phone=PHONE,
        message_id=message_id,
        doc_type="KTP" if field != GUIDED_CHOOSE_DOCUMENT else None,
        field=field,
        answers=answers,
    )
    return asked, at


def test_the_conversation_folds_the_open_question_with_the_citizens_times() -> None:
    start = NOW - timedelta(minutes=50)
    events = recorded(
        [
            message("m1", start),
            step("m1", GUIDED_CHOOSE_DOCUMENT, start),
            message("m2", start + timedelta(minutes=20)),
            step("m2", "NIK", start + timedelta(minutes=21)),
            message("m3", start + timedelta(minutes=40)),
            step("m3", "NO_KK", start + timedelta(minutes=45), NIK=NIK),
        ]
    )
    guided = Conversation.fold(decode_all(events)).guided
    assert guided is not None
    assert (guided.doc_type, guided.field, dict(guided.answers)) == ("KTP", "NO_KK", {"NIK": NIK})
    assert guided.asked_at == start + timedelta(minutes=40)  # m3's sent_at
    assert guided.started_at == start
    assert not guided.expired(start + timedelta(minutes=70), IDLE)
    assert guided.expired(start + timedelta(minutes=71), IDLE)

    ended = GuidedEnded(phone=PHONE, message_id="m4", reason="left")
    assert Conversation.fold(decode_all([*events, *recorded([(ended, NOW)])])).guided is None


def test_files_since_a_long_session_began_belong_to_its_request() -> None:
    start = NOW - timedelta(minutes=50)
    photo = Attachment(sha256="a" * 64, content_type="image/jpeg", size=10, message_id="m0")
    earlier = Attachment(sha256="b" * 64, content_type="image/jpeg", size=10, message_id="mx")
    conversation = Conversation.fold(
        decode_all(
            recorded(
                [
                    message("mx", start - ATTACH_WINDOW - timedelta(minutes=1)),
                    (AttachmentStored(phone=PHONE, attachment=earlier), start),
                    message("m0", start - timedelta(minutes=5)),
                    (AttachmentStored(phone=PHONE, attachment=photo), start),
                    message("m1", start),
                    step("m1", GUIDED_CHOOSE_DOCUMENT, start),
                ]
            )
        )
    )
    assert conversation.recent_attachments(NOW) == []  # outside the window of NOW alone
    guided = conversation.guided
    assert guided is not None
    assert conversation.recent_attachments(NOW, since=guided.started_at) == [photo]

    submitted = RequestSubmitted(
        ticket="KTP-ABCDEFGH", doc_type="KTP", message_id="m1", attachments=(photo.sha256,)
    )
    conversation.apply(*decoded(recorded([(submitted, NOW)])[0]))
    assert conversation.recent_attachments(NOW, since=guided.started_at) == []
