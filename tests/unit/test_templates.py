"""The approved templates: each rendered for each document through the real events, within
Meta's rules, as the Cloud API body, and documented in docs/TEMPLATES.md."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from services.notify.domain.messages import SURVEY_QUESTION, render
from services.notify.domain.outbound import OutboundMessage, TemplateCall, cloud_payload
from services.notify.domain.templates import (
    TEMPLATES,
    TemplateSpec,
    by_name,
    examples,
    markdown,
    review_problems,
    template_name,
)
from shared.calendar import OfficeHours, WorkingCalendar
from shared.contracts import (
    Attachment,
    ChangesRequested,
    ComplaintAnswered,
    ComplaintReceived,
    Delivery,
    DocumentCollected,
    DocumentIssued,
    DocumentReady,
    IssuanceDelayed,
    IssuanceScheduled,
    RequestAmended,
    RequestCancelled,
    RequestReceived,
    RequestRejected,
    RequestVerified,
)
from shared.documents import CATALOGUE, DocType, KtpReason, document
from shared.eventstore.envelope import Event

PHONE = "6281234567890"
PROMISED = date(2026, 12, 7)
LATER = date(2026, 12, 9)
PLACE = "Loket 3, Kantor Disdukcapil Kabupaten Tangerang, Tigaraksa"
HOURS = OfficeHours(opens=time(8, 0), closes=time(15, 30))
CALENDAR = WorkingCalendar(HOURS)
MONDAY_MORNING = datetime(2026, 12, 7, 3, 0, tzinfo=UTC)  # 10.00 in Jakarta
LETTER = Attachment(
    sha256="c" * 64,
    content_type="application/pdf",
    size=2048,
    filename="surat.pdf",
    message_id="issuance:letter",
)
REPO = Path(__file__).resolve().parents[2]


def ticket_of(doc_type: DocType) -> str:
    return f"{doc_type.value}-7Q2M9XAB"


def office(bring: tuple[str, ...]) -> Delivery:
    return Delivery(channel="office", place=PLACE, bring=bring)


def template_events(doc_type: DocType) -> Iterator[tuple[str, Event]]:
    """Every event whose message has a template, for ``doc_type``, with the key expected."""
    ticket = ticket_of(doc_type)
    doc = doc_type.value
    bring = document(doc_type).collect_with_for()
    reason = {"reason": KtpReason.RUSAK.value} if doc_type is DocType.KTP else {}
    yield (
        "request_received",
        RequestReceived(
            ticket=ticket,
            doc_type=doc,
            citizen="c",
            phone=PHONE,
            kecamatan_code="360301",
            applicant=reason,
            message_id="m",
            received_at=MONDAY_MORNING,
        ),
    )
    yield (
        "correction_received",
        RequestAmended(ticket=ticket, message_id="m", attachments=(LETTER,), phone=PHONE),
    )
    yield (
        "changes_requested",
        ChangesRequested(
            ticket=ticket,
            reasons=("Foto KK buram.", "Lampirkan KTP-el\nkedua orang tua"),
            officer_id="o",
            phone=PHONE,
            doc_type=doc,
        ),
    )
    yield (
        "request_verified",
        RequestVerified(ticket=ticket, officer_id="o", phone=PHONE, doc_type=doc),
    )
    yield (
        "request_rejected",
        RequestRejected(
            ticket=ticket,
            officer_id="o",
            reason="Data tidak sesuai\tdengan KK.",
            phone=PHONE,
            doc_type=doc,
        ),
    )
    yield (
        "request_cancelled",
        RequestCancelled(ticket=ticket, reason="citizen", phone=PHONE, doc_type=doc),
    )
    yield (
        "duplicate_cancelled",
        RequestCancelled(
            ticket=ticket,
            reason="duplicate",
            duplicate_of=f"{doc}-KEPT0001",
            phone=PHONE,
            doc_type=doc,
        ),
    )
    yield (
        "pickup_date",
        IssuanceScheduled(
            ticket=ticket,
            doc_type=doc,
            phone=PHONE,
            promised_on=PROMISED,
            working_days=1,
            delivery=office(bring),
        ),
    )
    yield (
        "letter_scheduled",
        IssuanceScheduled(
            ticket=ticket,
            doc_type=doc,
            phone=PHONE,
            promised_on=PROMISED,
            working_days=1,
            delivery=Delivery(channel="whatsapp"),
        ),
    )
    yield (
        "issuance_delayed",
        IssuanceDelayed(
            ticket=ticket,
            doc_type=doc,
            phone=PHONE,
            previous_date=PROMISED,
            promised_on=LATER,
            reason="siak_refused",
        ),
    )
    yield (
        "document_ready",
        DocumentReady(
            ticket=ticket,
            doc_type=doc,
            phone=PHONE,
            document_number="3603-LU-07122026-0001",
            ready_on=PROMISED,
            delivery=office(bring),
        ),
    )
    yield (
        "letter",
        DocumentIssued(
            ticket=ticket,
            doc_type=doc,
            phone=PHONE,
            document_number="SKPWNI/3603/07122026/0021",
            issued_at=MONDAY_MORNING,
            ready_on=PROMISED,
            delivery=Delivery(channel="whatsapp"),
            letter=LETTER,
        ),
    )
    yield (
        "document_collected",
        DocumentCollected(ticket=ticket, doc_type=doc, phone=PHONE, officer_id="o"),
    )


COMPLAINT_EVENTS: list[tuple[str, Event]] = [
    (
        "complaint_received",
        ComplaintReceived(
            ticket="ADUAN-7Q2M9XAB",
            citizen="c",
            phone=PHONE,
            text="Antrean lama",
            message_id="m",
            received_at=MONDAY_MORNING,
        ),
    ),
    (
        "complaint_answered",
        ComplaintAnswered(
            ticket="ADUAN-7Q2M9XAB",
            officer_id="o",
            answer="Mohon maaf.\n\nMulai Senin loket KIA dibuka dua.",
            phone=PHONE,
        ),
    ),
]

CASES = [
    pytest.param(doc_type, key, event, id=f"{doc_type.value}-{key}")
    for doc_type in CATALOGUE
    for key, event in template_events(doc_type)
]


def filled(message: OutboundMessage) -> str:
    """The template's text as the citizen reads it outside the window."""
    call = message.template
    assert call is not None, message.kind
    return TEMPLATES[call.key].render(call.parameters)


def check_call(call: TemplateCall) -> None:
    spec = TEMPLATES[call.key]
    assert len(call.parameters) == len(spec.parameters)
    assert call.document_header is spec.document_header
    for parameter in call.parameters:
        assert parameter.strip()
        assert "\n" not in parameter and "\t" not in parameter and "     " not in parameter
        assert parameter == parameter.strip()


@pytest.mark.parametrize(("doc_type", "key", "event"), CASES)
def test_each_template_renders_for_each_document(doc_type: DocType, key: str, event: Event) -> None:
    message = render(event, calendar=CALENDAR, office_hours=HOURS, at=MONDAY_MORNING)
    assert message is not None
    assert message.template is not None
    assert message.template.key == key
    check_call(message.template)
    text = filled(message)
    assert ticket_of(doc_type) in text
    assert "{{" not in text and "}}" not in text
    assert "None" not in text
    assert ".." not in text  # a parameter's own full stop is not doubled by the body's
    assert len(text) <= 1024
    if key not in ("correction_received",):
        assert document(doc_type).name in text


@pytest.mark.parametrize(("key", "event"), COMPLAINT_EVENTS)
def test_complaint_templates(key: str, event: Event) -> None:
    message = render(event, calendar=CALENDAR)
    assert message is not None and message.template is not None
    assert message.template.key == key
    check_call(message.template)
    text = filled(message)
    assert "Nomor tiket: ADUAN-7Q2M9XAB" in text
    assert "{{" not in text
    if key == "complaint_answered":
        assert "Jawaban: Mohon maaf. Mulai Senin loket KIA dibuka dua." in text


def test_every_template_in_the_catalogue_is_used_by_some_event() -> None:
    used = {key for doc_type in CATALOGUE for key, _ in template_events(doc_type)}
    used |= {key for key, _ in COMPLAINT_EVENTS}
    assert used == set(TEMPLATES)


@pytest.mark.parametrize("doc_type", list(CATALOGUE))
def test_each_template_says_what_its_message_says(doc_type: DocType) -> None:
    """The template replaces the free-form text: the same status word and next step."""
    expected = {
        "request_received": ("sudah kami terima", "Nomor tiket: ", "#STATUS#"),
        "correction_received": ("Perbaikan untuk tiket", "sudah kami terima"),
        "changes_requested": (
            "PERLU PERBAIKAN",
            "Foto KK buram; Lampirkan KTP-el kedua orang tua.",
            f"#LENGKAPI#{ticket_of(doc_type)}",
        ),
        "request_verified": ("DIVERIFIKASI",),
        "request_rejected": ("DITOLAK", "Alasan: Data tidak sesuai dengan KK.", "#ADUAN#"),
        "request_cancelled": ("DIBATALKAN", "#MENU"),
        "duplicate_cancelled": ("DIBATALKAN", f"Nomor tiket: {doc_type.value}-KEPT0001"),
        "pickup_date": (
            "DIPROSES",
            "mulai Senin, 7 Desember 2026, pukul 08.00 sampai 15.30.",
            f"Tempat: {PLACE}",
            "Bawa: Bukti permohonan: pesan WhatsApp ini atau nomor tiket Anda",
        ),
        "letter_scheduled": ("DIPROSES", "paling lambat Senin, 7 Desember 2026", "(TTE)"),
        "issuance_delayed": ("Mohon maaf", "Senin, 7 Desember 2026", "Rabu, 9 Desember 2026"),
        "document_ready": ("SIAP DIAMBIL", "mulai Senin, 7 Desember 2026", f"Tempat: {PLACE}"),
        "letter": ("sudah terbit", "SELESAI", "Nomor dokumen: SKPWNI/3603/07122026/0021"),
        "document_collected": ("Terima kasih", "SELESAI"),
    }
    for key, event in template_events(doc_type):
        message = render(event, calendar=CALENDAR, office_hours=HOURS, at=MONDAY_MORNING)
        assert message is not None
        text = filled(message)
        for phrase in expected[key]:
            assert phrase in text, (key, phrase)
        if key in ("letter", "document_collected"):
            assert text.endswith(SURVEY_QUESTION)


def test_the_acknowledgement_template_says_when_officers_look() -> None:
    event = next(event for key, event in template_events(DocType.KIA) if key == "request_received")
    christmas = event.model_copy(
        update={"received_at": datetime(2026, 12, 25, 10, 0, tzinfo=ZoneInfo("Asia/Jakarta"))}
    )
    closed = render(christmas, calendar=CALENDAR)
    open_ = render(event, calendar=CALENDAR)
    assert closed is not None and open_ is not None
    assert "memeriksa permohonan Anda mulai Senin, 28 Desember 2026 pukul 08.00." in filled(closed)
    assert "memeriksa permohonan Anda pada jam kerja." in filled(open_)
    ktp = next(event for key, event in template_events(DocType.KTP) if key == "request_received")
    ktp_message = render(ktp)
    assert ktp_message is not None
    assert "Kartu Keluarga (KK); KTP-el yang rusak." in filled(ktp_message)


LONG = "Gedung Pelayanan Terpadu lantai dua, " * 60  # about 2,000 characters


def test_long_free_text_still_fits_the_template_limits() -> None:
    events: list[Event] = [
        IssuanceScheduled(
            ticket="KIA-7Q2M9XAB",
            doc_type="KIA",
            phone=PHONE,
            promised_on=PROMISED,
            working_days=14,
            delivery=Delivery(channel="office", place=LONG, bring=(LONG, LONG)),
        ),
        ChangesRequested(
            ticket="KIA-7Q2M9XAB", reasons=(LONG,) * 5, officer_id="o", phone=PHONE, doc_type="KIA"
        ),
        RequestRejected(
            ticket="KIA-7Q2M9XAB", officer_id="o", reason=LONG, phone=PHONE, doc_type="KIA"
        ),
        ComplaintAnswered(ticket="ADUAN-7Q2M9XAB", officer_id="o", answer=LONG, phone=PHONE),
        DocumentIssued(
            ticket="SKPWNI-7Q2M9XAB",
            doc_type="SKPWNI",
            phone=PHONE,
            document_number="9" * 2000,
            issued_at=MONDAY_MORNING,
            ready_on=PROMISED,
            delivery=Delivery(channel="whatsapp"),
            letter=LETTER,
        ),
    ]
    for event in events:
        message = render(event, office_hours=HOURS)
        assert message is not None and message.template is not None
        check_call(message.template)
        text = filled(message)
        assert len(text) <= 1024, type(event).__name__
        assert "7Q2M9XAB" in text


def test_empty_lists_and_unknown_places_still_give_non_empty_parameters() -> None:
    message = render(
        DocumentReady(
            ticket="KTP-7Q2M9XAB",
            doc_type="KTP",
            phone=PHONE,
            document_number="1",
            ready_on=PROMISED,
            delivery=Delivery(channel="office"),
        )
    )
    assert message is not None and message.template is not None
    check_call(message.template)
    text = filled(message)
    assert "pada jam layanan kantor" in text
    assert "Tempat: kantor Disdukcapil" in text
    assert "Bawa: bukti permohonan (pesan ini atau nomor tiket)." in text


# -- Meta's rules ---------------------------------------------------------------------------


@pytest.mark.parametrize("spec", list(TEMPLATES.values()), ids=list(TEMPLATES))
def test_each_template_passes_metas_review_rules(spec: TemplateSpec) -> None:
    assert review_problems(spec) == []
    assert spec.category == "UTILITY"
    assert len(spec.body) <= 1024
    assert spec.key in spec.name


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ("{{1}} adalah nomor tiket Anda untuk permohonan ini sekarang.", "start or end"),
        ("Nomor tiket permohonan Anda untuk layanan ini adalah {{1}}.", "start or end"),
        ("Nomor tiket Anda {{1}} {{2}} untuk permohonan ini ya dan seterusnya.", "next to"),
        ("Tiket {{1}} di {{2}}, ok.", "too many"),
        ("Tiket {{2}} lalu {{1}} untuk permohonan Anda yang diproses hari ini.", "in order"),
    ],
)
def test_the_review_rules_catch_what_meta_refuses(body: str, problem: str) -> None:
    parameters = ("a", "b") if "{{2}}" in body else ("a",)
    spec = TemplateSpec(key="k", name="adminduk_k", body=body, parameters=parameters)
    assert any(problem in found for found in review_problems(spec))


def test_names_are_unique_and_renamable() -> None:
    names = [spec.name for spec in TEMPLATES.values()]
    assert len(set(names)) == len(names)
    overrides = {"pickup_date": "jadwal_ambil_v2"}
    assert template_name("pickup_date", overrides) == "jadwal_ambil_v2"
    assert template_name("letter", overrides) == "adminduk_letter"
    approved = by_name(overrides)
    assert approved["jadwal_ambil_v2"] is TEMPLATES["pickup_date"]
    assert "adminduk_pickup_date" not in approved


def test_a_letter_outside_the_window_is_the_template_with_the_pdf_as_header() -> None:
    event = next(event for key, event in template_events(DocType.SKPWNI) if key == "letter")
    message = render(event)
    assert message is not None and message.template is not None and message.document
    payload = cloud_payload(
        message, "template", template_name="adminduk_letter", language="id", media_id="media-9"
    )
    template = payload["template"]
    assert payload["to"] == PHONE and payload["type"] == "template"
    assert template["name"] == "adminduk_letter"
    assert template["language"] == {"code": "id"}
    header, body = template["components"]
    assert header == {
        "type": "header",
        "parameters": [
            {
                "type": "document",
                "document": {"id": "media-9", "filename": "SKPWNI-7Q2M9XAB.pdf"},
            }
        ],
    }
    assert [p["text"] for p in body["parameters"]] == list(message.template.parameters)
    assert body["parameters"][1]["text"] == "SKPWNI-7Q2M9XAB"


# -- docs/TEMPLATES.md ------------------------------------------------------------------------


def test_the_committed_template_sheet_is_the_generated_one() -> None:
    committed = (REPO / "docs" / "TEMPLATES.md").read_text(encoding="utf-8")
    assert committed == markdown(), (
        "docs/TEMPLATES.md is stale: run .venv/bin/python -m adminduk.docs"
    )


def test_the_sheet_shows_every_template_with_its_samples() -> None:
    sheet = markdown()
    samples = examples()
    assert set(samples) == set(TEMPLATES)
    assert 'ADMINDUK_WHATSAPP_TEMPLATES=\'{"pickup_date": "my_name"}\'' in sheet
    assert "ADMINDUK_WHATSAPP_TEMPLATE_LANGUAGE=id" in sheet
    for key, spec in TEMPLATES.items():
        check_call(samples[key])
        assert f"## `{spec.name}`" in sheet
        assert spec.body in sheet
        assert spec.render(samples[key].parameters) in sheet
        for meaning in spec.parameters:
            assert meaning.replace("|", "/") in sheet
