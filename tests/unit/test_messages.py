"""Citizen messages render for every document, in Indonesian, with ticket and next step."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Literal
from zoneinfo import ZoneInfo

import pytest

from services.notify.domain.messages import (
    CAPTION_MAX,
    SURVEY_QUESTION,
    menu_text,
    render,
)
from services.notify.domain.outbound import OutboundMessage
from services.notify.handlers import REPLY_EVENTS
from shared import reply_ids
from shared.calendar import OfficeHours, WorkingCalendar, format_tanggal
from shared.contracts import (
    GUIDED_CHOOSE_DOCUMENT,
    GUIDED_CONFIRM,
    Attachment,
    AttachmentHeld,
    AttachmentLinked,
    AttachmentRejected,
    CancellationRefused,
    CancellationRequested,
    ChangesRequested,
    ComplaintAnswered,
    ComplaintReceived,
    CorrectionRefused,
    Delivery,
    DocumentCollected,
    DocumentIssued,
    DocumentReady,
    DuplicateRequestReceived,
    GuidedEnded,
    GuidedStepAsked,
    HandedToSiak,
    InfoRequested,
    InvalidRequestReceived,
    IssuanceDelayed,
    IssuanceFailed,
    IssuanceScheduled,
    MenuRequested,
    Problem,
    RequestAmended,
    RequestCancelled,
    RequestReceived,
    RequestRejected,
    RequestVerified,
    StatusReported,
    SurveyAnswered,
    UnsupportedCommandReceived,
)
from shared.documents import CATALOGUE, DocType, FormField, KtpReason, document
from shared.eventstore.envelope import Event

PHONE = "6281234567890"


@pytest.mark.parametrize("doc_type", list(DocType))
def test_acknowledgement_for_every_document(doc_type: DocType) -> None:
    received = RequestReceived(
        ticket=f"{doc_type.value}-7Q2M9XAB",
        doc_type=doc_type.value,
        citizen="citizen-x",
        phone=PHONE,
        kecamatan_code="360301",
        applicant={"reason": "HILANG"} if doc_type is DocType.KTP else {},
        attachments=(
            Attachment(sha256="a" * 64, content_type="image/jpeg", size=10, message_id="m"),
        ),
        message_id="wamid.1",
        received_at=datetime(2026, 11, 23, tzinfo=UTC),
    )
    reply = render(received)
    assert reply is not None
    assert reply.to == PHONE
    spec = document(doc_type)
    assert f"Nomor tiket: {doc_type.value}-7Q2M9XAB" in reply.text
    assert spec.name in reply.text
    assert spec.turnaround_text in reply.text
    assert f"#STATUS#{doc_type.value}-7Q2M9XAB" in reply.text
    assert "Berkas yang sudah kami terima: 1." in reply.text
    papers = spec.requirements_for(KtpReason.HILANG if doc_type is DocType.KTP else None)
    assert all(paper in reply.text for paper in papers)


@pytest.mark.parametrize("doc_type", list(DocType))
def test_invalid_request_explains_and_shows_the_format(doc_type: DocType) -> None:
    invalid = InvalidRequestReceived(
        phone=PHONE,
        message_id="wamid.1",
        doc_type=doc_type.value,
        problems=(Problem(field="NIK", message="NIK harus 16 angka, yang Anda kirim 14 angka."),),
    )
    reply = render(invalid)
    assert reply is not None
    assert "NIK harus 16 angka, yang Anda kirim 14 angka." in reply.text
    assert document(doc_type).format in reply.text
    assert document(doc_type).example in reply.text
    assert "Nomor tiket" not in reply.text


@pytest.mark.parametrize("doc_type", list(DocType))
def test_info_gives_requirements_time_and_format(doc_type: DocType) -> None:
    reply = render(InfoRequested(phone=PHONE, message_id="m", doc_type=doc_type.value))
    assert reply is not None
    spec = document(doc_type)
    assert spec.turnaround_text in reply.text
    assert spec.format in reply.text
    assert all(item in reply.text for item in spec.requirements)


def test_status_answers_in_contract_words_or_not_found() -> None:
    found = render(
        StatusReported(phone=PHONE, message_id="m", ticket="KTP-7Q2M9XAB", status="DITERIMA")
    )
    assert found is not None
    assert "KTP-7Q2M9XAB" in found.text
    assert "DITERIMA" in found.text
    missing = render(
        StatusReported(phone=PHONE, message_id="m", ticket="KTP-00000000", status=None)
    )
    assert missing is not None
    assert "tidak ditemukan" in missing.text


def test_menu_lists_every_service_and_admits_confusion() -> None:
    for spec in CATALOGUE.values():
        assert f"#INFO#{spec.keyword}" in menu_text()
    reply = render(MenuRequested(phone=PHONE, message_id="m", understood=False))
    assert reply is not None
    assert reply.text.startswith("Maaf, pesan Anda belum kami pahami.")


def test_other_replies() -> None:
    complaint = render(
        ComplaintReceived(
            ticket="ADUAN-7Q2M9XAB",
            citizen="citizen-x",
            phone=PHONE,
            text="Pelayanan lambat",
            message_id="m",
            received_at=datetime(2026, 11, 23, tzinfo=UTC),
        )
    )
    assert complaint is not None
    assert "Nomor tiket: ADUAN-7Q2M9XAB" in complaint.text
    rejected = render(
        AttachmentRejected(
            phone=PHONE, message_id="m", reason="too_large", detail="lebih dari 5 MB"
        )
    )
    assert rejected is not None
    assert "lebih dari 5 MB" in rejected.text


TICKET = "KTP-7Q2M9XAB"


@pytest.mark.parametrize("doc_type", list(DocType))
def test_every_decision_names_the_document_the_ticket_and_the_status(doc_type: DocType) -> None:
    name = document(doc_type).name
    cases = [
        (
            ChangesRequested(
                ticket=TICKET,
                reasons=("Foto KK buram", "Lampirkan KTP-el kedua orang tua"),
                officer_id="off_1",
                phone=PHONE,
                doc_type=doc_type.value,
            ),
            ["PERLU PERBAIKAN", "- Foto KK buram", "- Lampirkan KTP-el", f"#LENGKAPI#{TICKET}"],
        ),
        (
            RequestVerified(
                ticket=TICKET, officer_id="off_1", phone=PHONE, doc_type=doc_type.value
            ),
            ["DIVERIFIKASI", f"#STATUS#{TICKET}"],
        ),
        (
            RequestRejected(
                ticket=TICKET,
                officer_id="off_1",
                reason="Pemohon belum berusia 17 tahun",
                phone=PHONE,
                doc_type=doc_type.value,
            ),
            ["DITOLAK", "Alasan: Pemohon belum berusia 17 tahun", "#ADUAN#"],
        ),
    ]
    for event, expected in cases:
        reply = render(event)
        assert reply is not None
        assert reply.to == PHONE
        assert name in reply.text
        assert TICKET in reply.text
        for text in expected:
            assert text in reply.text, (type(event).__name__, text)


def test_corrections_duplicates_and_complaint_answers() -> None:
    attachment = Attachment(sha256="b" * 64, content_type="image/png", size=5, message_id="m")
    amended = render(
        RequestAmended(ticket=TICKET, message_id="m", attachments=(attachment,), phone=PHONE)
    )
    assert amended is not None
    assert f"Perbaikan untuk tiket {TICKET} sudah kami terima (1 berkas)" in amended.text

    duplicate = render(
        DuplicateRequestReceived(
            phone=PHONE,
            message_id="m",
            doc_type="KTP",
            existing_ticket=TICKET,
            status="DITERIMA",
        )
    )
    assert duplicate is not None
    assert f"Tiket Anda: {TICKET}" in duplicate.text
    # Not an acknowledgement of a new request: no "Nomor tiket:" line.
    assert "Nomor tiket:" not in duplicate.text

    cancelled = render(
        RequestCancelled(
            ticket="KTP-SECOND01",
            reason="duplicate",
            duplicate_of=TICKET,
            phone=PHONE,
            doc_type="KTP",
        )
    )
    assert cancelled is not None
    assert TICKET in cancelled.text and "KTP-SECOND01" in cancelled.text

    for reason, expected in [
        ("unknown_ticket", "tidak ditemukan"),
        ("not_pending", "tidak sedang menunggu perbaikan"),
        ("no_files", f"#LENGKAPI#{TICKET}"),
    ]:
        refused = render(
            CorrectionRefused(phone=PHONE, message_id="m", ticket=TICKET, reason=reason)  # type: ignore[arg-type]
        )
        assert refused is not None
        assert expected in refused.text

    answer = render(
        ComplaintAnswered(
            ticket="ADUAN-1234ABCD",
            officer_id="off_1",
            answer="Berkas sudah kami cek.",
            phone=PHONE,
        )
    )
    assert answer is not None
    assert "ADUAN-1234ABCD" in answer.text and "Berkas sudah kami cek." in answer.text


# -- issuance: promised date, delays, the document, the survey -------------------------

PROMISED = date(2026, 12, 7)
LATER = date(2026, 12, 9)
PLACE = "Loket 3, Kantor Disdukcapil Kabupaten Tangerang, Jl. Abdul Hamid No. 1, Tigaraksa"
BRING = ("Pesan WhatsApp ini atau nomor tiket", "KTP-el asli pemohon")
LONG_PLACE = "Gedung Pelayanan Terpadu, " * 19 + "Loket 3"  # about 500 characters
LONG_BRING = tuple(f"Dokumen asli nomor {i}: " + "x" * 40 for i in range(8))  # about 500
LETTER = Attachment(
    sha256="c" * 64,
    content_type="application/pdf",
    size=2048,
    filename="surat.pdf",
    message_id="issuance:letter",
)
HOURS = OfficeHours(opens=time(8, 0), closes=time(15, 30))
Channel = Literal["office", "whatsapp"]
CHANNELS: tuple[Channel, ...] = ("office", "whatsapp")
DOC_TYPES = list(CATALOGUE)


def ticket_of(doc_type: DocType) -> str:
    return f"{doc_type.value}-7Q2M9XAB"


def delivery(channel: Channel, place: str = PLACE, bring: tuple[str, ...] = BRING) -> Delivery:
    if channel == "whatsapp":
        return Delivery(channel="whatsapp")
    return Delivery(channel="office", place=place, bring=bring)


def issued(
    doc_type: DocType,
    channel: Channel,
    *,
    place: str = PLACE,
    bring: tuple[str, ...] = BRING,
    number: str = "3603-LU-07122026-0001",
) -> DocumentIssued:
    return DocumentIssued(
        ticket=ticket_of(doc_type),
        doc_type=doc_type.value,
        phone=PHONE,
        document_number=number,
        issued_at=datetime(2026, 12, 4, 3, 0, tzinfo=UTC),
        ready_on=PROMISED,
        delivery=(
            Delivery(channel="whatsapp", place=place, bring=bring)
            if channel == "whatsapp"
            else delivery("office", place, bring)
        ),
        letter=LETTER if channel == "whatsapp" else None,
    )


def rendered(event: Event, office_hours: OfficeHours | None = None) -> OutboundMessage:
    """The reply to ``event``, checked for what every citizen message must be."""
    reply = render(event, office_hours=office_hours)
    assert reply is not None, type(event).__name__
    assert reply.to == PHONE
    for leak in ("None", "{", "}"):
        assert leak not in reply.text, (type(event).__name__, leak)
    assert len(reply.text) <= 4096
    return reply


@pytest.mark.parametrize("channel", CHANNELS)
@pytest.mark.parametrize("doc_type", DOC_TYPES)
def test_the_promised_date_says_when_where_and_what_to_bring(
    doc_type: DocType, channel: Channel
) -> None:
    ticket = ticket_of(doc_type)
    reply = rendered(
        IssuanceScheduled(
            ticket=ticket,
            doc_type=doc_type.value,
            phone=PHONE,
            promised_on=PROMISED,
            working_days=document(doc_type).turnaround_working_days,
            delivery=delivery(channel),
        )
    )
    assert f"Nomor tiket: {ticket}" in reply.text
    assert document(doc_type).name in reply.text
    assert "DIPROSES" in reply.text
    assert format_tanggal(PROMISED) in reply.text
    assert "Senin, 7 Desember 2026" in reply.text
    assert f"#STATUS#{ticket}" in reply.text
    assert reply.document is None
    if channel == "office":
        assert "diambil mulai Senin, 7 Desember 2026, pada jam layanan kantor" in reply.text
        assert PLACE in reply.text
        assert "Bawa:\n- Pesan WhatsApp ini atau nomor tiket\n- KTP-el asli pemohon" in (reply.text)
    else:
        assert "dikirim melalui WhatsApp ini" in reply.text
        assert "paling lambat Senin, 7 Desember 2026" in reply.text
        assert "tidak perlu membawa apa pun" in reply.text
        assert "Bawa:" not in reply.text


def test_office_hours_are_said_when_known_and_an_unknown_place_is_the_office() -> None:
    event = IssuanceScheduled(
        ticket=TICKET,
        doc_type="KTP",
        phone=PHONE,
        promised_on=PROMISED,
        working_days=1,
        delivery=Delivery(channel="office"),
    )
    reply = rendered(event, office_hours=HOURS)
    assert "pukul 08.00 sampai 15.30" in reply.text
    assert "Tempat: kantor Disdukcapil" in reply.text
    assert "Bawa:" not in reply.text


@pytest.mark.parametrize("reason", ["siak_unavailable", "siak_refused"])
@pytest.mark.parametrize("doc_type", DOC_TYPES)
def test_a_delay_apologises_explains_and_gives_the_new_date(
    doc_type: DocType, reason: Literal["siak_unavailable", "siak_refused"]
) -> None:
    reply = rendered(
        IssuanceDelayed(
            ticket=ticket_of(doc_type),
            doc_type=doc_type.value,
            phone=PHONE,
            previous_date=PROMISED,
            promised_on=LATER,
            reason=reason,
        )
    )
    assert reply.text.startswith("Mohon maaf")
    assert f"Nomor tiket: {ticket_of(doc_type)}" in reply.text
    assert document(doc_type).name in reply.text
    assert "sistem kependudukan nasional (SIAK)" in reply.text
    assert format_tanggal(PROMISED) in reply.text
    assert "Perkiraan selesai yang baru: Rabu, 9 Desember 2026." in reply.text
    assert "tidak perlu melakukan apa pun" in reply.text


@pytest.mark.parametrize("doc_type", DOC_TYPES)
def test_a_document_issued_for_the_office_waits_for_its_ready_day_silently(
    doc_type: DocType,
) -> None:
    assert render(issued(doc_type, "office"), office_hours=HOURS) is None


@pytest.mark.parametrize("doc_type", DOC_TYPES)
def test_a_ready_document_is_siap_diambil(doc_type: DocType) -> None:
    reply = rendered(
        DocumentReady(
            ticket=ticket_of(doc_type),
            doc_type=doc_type.value,
            phone=PHONE,
            document_number="3603-LU-07122026-0001",
            ready_on=PROMISED,
            delivery=delivery("office"),
        )
    )
    assert "SIAP DIAMBIL" in reply.text
    assert f"Nomor tiket: {ticket_of(doc_type)}" in reply.text
    assert document(doc_type).name in reply.text
    assert "mulai Senin, 7 Desember 2026" in reply.text
    assert PLACE in reply.text and all(item in reply.text for item in BRING)
    assert "Tunjukkan pesan ini atau nomor tiket" in reply.text


@pytest.mark.parametrize("doc_type", DOC_TYPES)
def test_a_letter_in_the_chat_is_a_signed_pdf_with_a_short_caption_and_the_survey(
    doc_type: DocType,
) -> None:
    reply = rendered(
        issued(doc_type, "whatsapp", place=LONG_PLACE, bring=LONG_BRING, number="SKPWNI/0021")
    )
    assert reply.document is not None
    assert reply.document.sha256 == LETTER.sha256
    assert reply.document.content_type == "application/pdf"
    assert reply.document.filename == f"{ticket_of(doc_type)}.pdf"
    assert len(reply.text) <= CAPTION_MAX
    assert f"Nomor tiket: {ticket_of(doc_type)}" in reply.text
    assert "Nomor dokumen: SKPWNI/0021" in reply.text
    assert document(doc_type).name in reply.text
    assert "(TTE)" in reply.text
    assert SURVEY_QUESTION in reply.text
    assert reply.text.endswith("4 = sangat puas")


def test_an_absurd_document_number_still_fits_a_caption() -> None:
    reply = rendered(issued(DocType.SKPWNI, "whatsapp", number="9" * 2000))
    assert len(reply.text) <= CAPTION_MAX


def test_a_letter_is_named_after_its_document_and_ticket() -> None:
    event = issued(DocType.SKPWNI, "whatsapp").model_copy(update={"ticket": "ABC-12345678"})
    document_file = rendered(event).document
    assert document_file is not None
    assert document_file.filename == "SKPWNI-ABC-12345678.pdf"


def test_a_letter_the_event_lacks_is_still_a_document_reply_notify_can_refuse() -> None:
    event = issued(DocType.SKPWNI, "whatsapp").model_copy(update={"letter": None})
    reply = rendered(event)
    assert reply.document is not None
    assert reply.document.sha256 is None


@pytest.mark.parametrize("doc_type", DOC_TYPES)
def test_collection_closes_the_request_and_asks_the_survey(doc_type: DocType) -> None:
    reply = rendered(
        DocumentCollected(
            ticket=ticket_of(doc_type), doc_type=doc_type.value, phone=PHONE, officer_id="off_1"
        )
    )
    assert f"Nomor tiket: {ticket_of(doc_type)}" in reply.text
    assert document(doc_type).name in reply.text
    assert "Terima kasih" in reply.text
    assert "SELESAI" in reply.text
    assert SURVEY_QUESTION in reply.text
    for answer in ("1 = tidak puas", "2 = kurang puas", "3 = puas", "4 = sangat puas"):
        assert answer in SURVEY_QUESTION


@pytest.mark.parametrize("score", [1, 2, 3, 4])
def test_a_survey_answer_is_thanked(score: int) -> None:
    reply = rendered(SurveyAnswered(ticket=TICKET, phone=PHONE, message_id="m", score=score))
    assert reply.text.startswith("Terima kasih atas penilaian Anda")
    assert f"({score} = " in reply.text
    assert reply.text.endswith(f"Nomor tiket: {TICKET}")
    assert SURVEY_QUESTION not in reply.text


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("DIPROSES", "sistem kependudukan nasional (SIAK)"),
        ("SIAP DIAMBIL", "sudah terbit"),
        ("SELESAI", "sudah terbit dan diserahkan"),
        ("DITOLAK", "sudah ditutup"),
        ("DIBATALKAN", "sudah DIBATALKAN sebelumnya"),
        ("DIVERIFIKASI", "tidak dapat dibatalkan saat ini"),
        (None, "tidak dapat dibatalkan saat ini"),
    ],
)
def test_a_refused_cancellation_says_why(status: str | None, expected: str) -> None:
    reply = rendered(
        CancellationRefused(
            phone=PHONE, message_id="m", ticket=TICKET, reason="not_cancellable", status=status
        )
    )
    assert reply.text.startswith("Maaf, permohonan Anda tidak dapat dibatalkan.")
    assert f"Nomor tiket: {TICKET}" in reply.text
    assert expected in reply.text
    assert f"#STATUS#{TICKET}" in reply.text
    assert "#ADUAN#" in reply.text
    if status in ("DIPROSES", "SIAP DIAMBIL"):
        assert "tidak perlu diambil" in reply.text


def test_a_cancellation_of_an_unknown_ticket_is_not_found() -> None:
    reply = rendered(
        CancellationRefused(phone=PHONE, message_id="m", ticket=TICKET, reason="unknown_ticket")
    )
    assert f"Tiket {TICKET} tidak ditemukan untuk nomor WhatsApp ini" in reply.text
    assert "Nomor tiket:" not in reply.text  # the ticket is not the sender's


@pytest.mark.parametrize("doc_type", DOC_TYPES)
def test_a_cancellation_by_the_citizen_is_confirmed(doc_type: DocType) -> None:
    reply = rendered(
        RequestCancelled(
            ticket=ticket_of(doc_type), reason="citizen", phone=PHONE, doc_type=doc_type.value
        )
    )
    assert "DIBATALKAN atas permintaan Anda" in reply.text
    assert f"Nomor tiket: {ticket_of(doc_type)}" in reply.text
    assert document(doc_type).name in reply.text
    assert "permohonan baru" in reply.text


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("DIPROSES", "Perkiraan selesai: Senin, 7 Desember 2026."),
        ("SIAP DIAMBIL", "Dapat diambil mulai: Senin, 7 Desember 2026."),
    ],
)
def test_a_status_in_issuance_gives_the_promised_date(status: str, expected: str) -> None:
    reply = rendered(
        StatusReported(
            phone=PHONE,
            message_id="m",
            ticket=TICKET,
            status=status,
            doc_type="KTP",
            promised_on=PROMISED,
        )
    )
    assert f"Status tiket {TICKET}: {status}" in reply.text
    assert expected in reply.text
    without = rendered(
        StatusReported(phone=PHONE, message_id="m", ticket=TICKET, status=status, doc_type="KTP")
    )
    assert "2026" not in without.text
    done = rendered(
        StatusReported(
            phone=PHONE, message_id="m", ticket=TICKET, status="SELESAI", promised_on=PROMISED
        )
    )
    assert "2026" not in done.text


def test_the_office_steps_and_the_cancellation_request_say_nothing() -> None:
    assert render(HandedToSiak(ticket=TICKET, idempotency_key="k")) is None
    assert render(IssuanceFailed(ticket=TICKET, status=422, message="NIK tidak dikenal")) is None
    assert render(CancellationRequested(phone=PHONE, ticket=TICKET, message_id="m")) is None


def test_notify_subscribes_to_every_new_citizen_facing_event() -> None:
    for stream, event_type in [
        ("citizen", CancellationRefused.event_type),
        ("request", IssuanceScheduled.event_type),
        ("request", IssuanceDelayed.event_type),
        ("request", DocumentIssued.event_type),
        ("request", DocumentReady.event_type),
        ("request", DocumentCollected.event_type),
        ("request", SurveyAnswered.event_type),
    ]:
        assert (stream, event_type) in REPLY_EVENTS
    subscribed = {event_type for _, event_type in REPLY_EVENTS}
    assert HandedToSiak.event_type not in subscribed
    assert IssuanceFailed.event_type not in subscribed


# -- one catalogue: tickets, choices within the API's limits, templates only where due --

KTP_HILANG = {"reason": "HILANG"}
JAKARTA = ZoneInfo("Asia/Jakarta")
CALENDAR = WorkingCalendar(OfficeHours(opens=time(8, 0), closes=time(16, 0)))


def received(doc_type: DocType, at: datetime) -> RequestReceived:
    return RequestReceived(
        ticket=ticket_of(doc_type),
        doc_type=doc_type.value,
        citizen="citizen-x",
        phone=PHONE,
        kecamatan_code="360301",
        applicant=KTP_HILANG if doc_type is DocType.KTP else {},
        message_id="wamid.1",
        received_at=at,
    )


def every_event(doc_type: DocType) -> list[Event]:
    """One event of every kind a citizen hears of, for ``doc_type``."""
    ticket = ticket_of(doc_type)
    doc = doc_type.value
    attachment = Attachment(sha256="b" * 64, content_type="image/png", size=5, message_id="m")
    spec = document(doc_type)
    answers = dict(zip((f.value for f in spec.fields), ("X",) * len(spec.fields), strict=True))
    events: list[Event] = [
        received(doc_type, datetime(2026, 12, 7, 2, 0, tzinfo=UTC)),
        InvalidRequestReceived(
            phone=PHONE,
            message_id="m",
            doc_type=doc,
            problems=(Problem(field="NIK", message="NIK harus 16 angka."),),
        ),
        InvalidRequestReceived(phone=PHONE, message_id="m", doc_type=None, problems=()),
        StatusReported(phone=PHONE, message_id="m", ticket=ticket, status="DITERIMA"),
        InfoRequested(phone=PHONE, message_id="m", doc_type=doc),
        InfoRequested(phone=PHONE, message_id="m", doc_type=None),
        MenuRequested(phone=PHONE, message_id="m", understood=True),
        MenuRequested(phone=PHONE, message_id="m", understood=False),
        AttachmentRejected(phone=PHONE, message_id="m", reason="too_large", detail="> 5 MB"),
        AttachmentLinked(phone=PHONE, ticket=ticket, sha256="d" * 64),
        AttachmentHeld(phone=PHONE, message_id="m"),
        UnsupportedCommandReceived(phone=PHONE, message_id="m", command="SIM", ticket=ticket),
        ComplaintReceived(
            ticket="ADUAN-7Q2M9XAB",
            citizen="c",
            phone=PHONE,
            text="Lama",
            message_id="m",
            received_at=datetime(2026, 12, 7, 2, 0, tzinfo=UTC),
        ),
        ChangesRequested(
            ticket=ticket, reasons=("Foto KK buram",), officer_id="o", phone=PHONE, doc_type=doc
        ),
        RequestVerified(ticket=ticket, officer_id="o", phone=PHONE, doc_type=doc),
        RequestRejected(ticket=ticket, officer_id="o", reason="Salah", phone=PHONE, doc_type=doc),
        RequestAmended(ticket=ticket, message_id="m", attachments=(attachment,), phone=PHONE),
        RequestCancelled(ticket=ticket, reason="citizen", phone=PHONE, doc_type=doc),
        RequestCancelled(
            ticket=ticket, reason="duplicate", duplicate_of=TICKET, phone=PHONE, doc_type=doc
        ),
        DuplicateRequestReceived(
            phone=PHONE, message_id="m", doc_type=doc, existing_ticket=ticket, status="DITERIMA"
        ),
        CorrectionRefused(phone=PHONE, message_id="m", ticket=ticket, reason="not_pending"),
        CorrectionRefused(phone=PHONE, message_id="m", ticket=ticket, reason="no_files"),
        ComplaintAnswered(ticket="ADUAN-7Q2M9XAB", officer_id="o", answer="Sudah.", phone=PHONE),
        CancellationRefused(
            phone=PHONE, message_id="m", ticket=ticket, reason="not_cancellable", status="SELESAI"
        ),
        *(
            IssuanceScheduled(
                ticket=ticket,
                doc_type=doc,
                phone=PHONE,
                promised_on=PROMISED,
                working_days=1,
                delivery=delivery(channel),
            )
            for channel in CHANNELS
        ),
        IssuanceDelayed(
            ticket=ticket,
            doc_type=doc,
            phone=PHONE,
            previous_date=PROMISED,
            promised_on=LATER,
            reason="siak_unavailable",
        ),
        issued(doc_type, "whatsapp"),
        DocumentReady(
            ticket=ticket,
            doc_type=doc,
            phone=PHONE,
            document_number="1",
            ready_on=PROMISED,
            delivery=delivery("office"),
        ),
        DocumentCollected(ticket=ticket, doc_type=doc, phone=PHONE, officer_id="o"),
        SurveyAnswered(ticket=ticket, phone=PHONE, message_id="m", score=3),
        GuidedStepAsked(phone=PHONE, message_id="m", doc_type=None, field=GUIDED_CHOOSE_DOCUMENT),
        *(
            GuidedStepAsked(phone=PHONE, message_id="m", doc_type=doc, field=field.value)
            for field in spec.fields
        ),
        GuidedStepAsked(
            phone=PHONE, message_id="m", doc_type=doc, field=GUIDED_CONFIRM, answers=answers
        ),
        GuidedEnded(phone=PHONE, message_id="m", reason="left"),
    ]
    return events


DIRECT_ANSWERS = {
    "invalid-request",
    "status",
    "info",
    "menu",
    "attachment-rejected",
    "attachment-linked",
    "attachment-held",
    "unsupported",
    "duplicate-request",
    "correction-refused",
    "cancellation-refused",
    "survey-answered",
    "guided-step",
    "guided-left",
}


@pytest.mark.parametrize("doc_type", DOC_TYPES)
def test_every_message_names_its_ticket_and_keeps_choices_within_the_api(
    doc_type: DocType,
) -> None:
    for event in every_event(doc_type):
        name = type(event).__name__
        message = render(event, calendar=CALENDAR, office_hours=HOURS)
        assert message is not None, name
        assert message.to == PHONE
        event_ticket = getattr(event, "ticket", None)
        # The ticket of a command nothing answers for is not known to be the sender's.
        if event_ticket is not None and not isinstance(event, UnsupportedCommandReceived):
            assert message.ticket == event_ticket, name
            assert event_ticket in message.text, name
        for leak in ("None", "{", "}"):
            assert leak not in message.text, (name, leak)
        # Outside the window only a template may go; a direct answer never needs one.
        if message.kind in DIRECT_ANSWERS:
            assert message.template is None, name
        else:
            assert message.template is not None, name
        if message.choices is not None:
            choices = message.choices
            assert len(choices.body) <= 1024
            if choices.style == "buttons":
                assert len(choices.options) <= 3
                assert all(len(option.title) <= 20 for option in choices.options)
            else:
                assert choices.button and len(choices.button) <= 20
                assert len(choices.options) <= 10
                for option in choices.options:
                    assert len(option.title) <= 24
                    assert option.description is None or len(option.description) <= 72
            for option in choices.options:
                assert reply_ids.parse(option.id) is not None, (name, option.id)
            assert len({option.id for option in choices.options}) == len(choices.options)


def test_the_acknowledgement_and_the_status_stay_plain_text() -> None:
    ack = render(received(DocType.KIA, datetime(2026, 12, 7, 2, 0, tzinfo=UTC)))
    status = render(StatusReported(phone=PHONE, message_id="m", ticket=TICKET, status="DIPROSES"))
    assert ack is not None and status is not None
    assert ack.choices is None
    assert status.choices is None
    assert status.ticket == TICKET


def test_a_ticket_that_is_not_the_senders_is_not_attached_to_the_answer() -> None:
    missing = render(StatusReported(phone=PHONE, message_id="m", ticket=TICKET, status=None))
    refused = render(
        CancellationRefused(phone=PHONE, message_id="m", ticket=TICKET, reason="unknown_ticket")
    )
    assert missing is not None and refused is not None
    assert missing.ticket is None and refused.ticket is None
    assert refused.choices is None


# -- office hours ---------------------------------------------------------------------


SATURDAY = datetime(2026, 12, 5, 10, 0, tzinfo=JAKARTA)
CHRISTMAS = datetime(2026, 12, 25, 10, 0, tzinfo=JAKARTA)
WEEKDAY_NIGHT = datetime(2026, 12, 8, 20, 0, tzinfo=JAKARTA)
WEEKDAY_MORNING = datetime(2026, 12, 8, 10, 0, tzinfo=JAKARTA)


@pytest.mark.parametrize(
    ("at", "why", "opens"),
    [
        (SATURDAY, "(akhir pekan)", "mulai Senin, 7 Desember 2026 pukul 08.00."),
        # Christmas is a Friday; the 24th is joint leave, the weekend follows.
        (CHRISTMAS, "(hari libur: Hari Raya Natal)", "mulai Senin, 28 Desember 2026 pukul 08.00."),
        (WEEKDAY_NIGHT, "(di luar jam kerja)", "mulai Rabu, 9 Desember 2026 pukul 08.00."),
    ],
)
@pytest.mark.parametrize("doc_type", DOC_TYPES)
def test_an_acknowledgement_while_the_office_is_closed_says_when_officers_look(
    doc_type: DocType, at: datetime, why: str, opens: str
) -> None:
    message = render(received(doc_type, at), calendar=CALENDAR)
    assert message is not None
    assert f"Kantor sedang tutup {why}." in message.text
    assert f"Petugas akan memeriksa permohonan Anda {opens}" in message.text
    assert f"Nomor tiket: {ticket_of(doc_type)}" in message.text


def test_closed_office_notice_for_complaints_and_corrections() -> None:
    complaint = render(
        ComplaintReceived(
            ticket="ADUAN-7Q2M9XAB",
            citizen="c",
            phone=PHONE,
            text="Antrean lama",
            message_id="m",
            received_at=SATURDAY,
        ),
        calendar=CALENDAR,
    )
    assert complaint is not None
    assert "Kantor sedang tutup (akhir pekan)." in complaint.text
    assert "memeriksa pengaduan Anda mulai Senin, 7 Desember 2026 pukul 08.00." in complaint.text
    amended = RequestAmended(ticket=TICKET, message_id="m", attachments=(), phone=PHONE)
    at_night = render(amended, calendar=CALENDAR, at=WEEKDAY_NIGHT)
    assert at_night is not None
    assert "memeriksa perbaikan Anda mulai Rabu, 9 Desember 2026 pukul 08.00." in at_night.text
    # Without the moment it happened, nothing is claimed about the office.
    unknown = render(amended, calendar=CALENDAR)
    assert unknown is not None
    assert "tutup" not in unknown.text


@pytest.mark.parametrize("doc_type", DOC_TYPES)
def test_an_acknowledgement_in_office_hours_or_without_a_calendar_adds_nothing(
    doc_type: DocType,
) -> None:
    inside = render(received(doc_type, WEEKDAY_MORNING), calendar=CALENDAR)
    no_calendar = render(received(doc_type, SATURDAY))
    assert inside is not None and no_calendar is not None
    for message in (inside, no_calendar):
        assert "tutup" not in message.text
        assert "Petugas akan memeriksa" not in message.text


def test_pickup_hours_default_to_the_calendars() -> None:
    event = IssuanceScheduled(
        ticket=TICKET,
        doc_type="KTP",
        phone=PHONE,
        promised_on=PROMISED,
        working_days=1,
        delivery=Delivery(channel="office"),
    )
    message = render(event, calendar=CALENDAR)
    assert message is not None
    assert "pukul 08.00 sampai 16.00" in message.text


# -- the menu and guided mode ------------------------------------------------------------


@pytest.mark.parametrize("understood", [True, False])
def test_the_menu_is_a_list_of_every_service_with_the_services_in_its_body(
    understood: bool,
) -> None:
    message = render(MenuRequested(phone=PHONE, message_id="m", understood=understood))
    assert message is not None
    assert message.choices is not None
    assert message.choices.style == "list"
    assert message.choices.button == "Pilih layanan"
    assert [option.id for option in message.choices.options] == [
        reply_ids.choose_service(doc_type.value) for doc_type in CATALOGUE
    ]
    for spec in CATALOGUE.values():
        assert spec.name in message.choices.body
        assert f"#INFO#{spec.keyword}" in message.text  # the text fallback
    assert "HALO" in message.text
    assert message.choices.body.startswith("Maaf") is not understood


def test_every_document_has_a_short_name_for_its_row() -> None:
    message = render(MenuRequested(phone=PHONE, message_id="m", understood=True))
    assert message is not None and message.choices is not None
    titles = [option.title for option in message.choices.options]
    assert len(set(titles)) == len(CATALOGUE)
    assert all(title not in CATALOGUE for title in titles)  # a name, not a bare keyword


@pytest.mark.parametrize("problem", [None, "Layanan itu tidak dikenal. Pilih dari daftar layanan."])
def test_guided_mode_begins_with_the_list_of_services(problem: str | None) -> None:
    message = render(
        GuidedStepAsked(
            phone=PHONE,
            message_id="m",
            doc_type=None,
            field=GUIDED_CHOOSE_DOCUMENT,
            problem=problem,
        )
    )
    assert message is not None
    assert message.kind == "guided-step"
    assert message.template is None
    assert message.choices is not None and message.choices.style == "list"
    ids = [option.id for option in message.choices.options]
    assert ids[: len(CATALOGUE)] == [reply_ids.choose_service(d.value) for d in CATALOGUE]
    assert reply_ids.GUIDED_LEAVE in ids
    for number, spec in enumerate(CATALOGUE.values(), start=1):
        assert f"{number}. {spec.name}" in message.text
    if problem is None:
        assert message.text.startswith("Kami bantu")
    else:
        assert message.text.startswith(problem + "\n")


def guided_questions() -> list[tuple[DocType, FormField]]:
    return [(spec.doc_type, field) for spec in CATALOGUE.values() for field in spec.fields]


@pytest.mark.parametrize(("doc_type", "field"), guided_questions())
def test_every_guided_question_says_the_step_what_to_type_and_how_to_stop(
    doc_type: DocType, field: FormField
) -> None:
    spec = document(doc_type)
    step = spec.fields.index(field) + 1
    answers = {earlier.value: "X" for earlier in spec.fields[: step - 1]}
    problem = f"{field.value} belum benar."
    message = render(
        GuidedStepAsked(
            phone=PHONE,
            message_id="m",
            doc_type=doc_type.value,
            field=field.value,
            answers=answers,
            problem=problem,
        )
    )
    assert message is not None
    assert message.kind == "guided-step"
    assert message.template is None
    assert message.text.startswith(problem + "\n")
    assert f"Langkah {step} dari {len(spec.fields) + 1}" in message.text
    assert spec.name in message.text
    assert "Ketik" in message.text and "KELUAR" in message.text and "ULANG" in message.text
    assert message.choices is not None
    ids = [option.id for option in message.choices.options]
    assert reply_ids.GUIDED_RESTART in ids and reply_ids.GUIDED_LEAVE in ids
    if field is FormField.ALASAN_KTP:
        assert message.choices.style == "list"
        for reason in KtpReason:
            assert reply_ids.guided_answer(reason.value) in ids
            assert reason.value in message.text
    else:
        assert message.choices.style == "buttons"
        # The example is the document's own published example, column by column.
        value = spec.example.strip("#").split("#")[1:][spec.fields.index(field)]
        assert f"Contoh: {value}" in message.text
    if field in (FormField.NIK, FormField.NO_KK, FormField.NIK_ALMARHUM):
        assert "16 angka" in message.text


def test_every_published_example_has_a_value_per_column() -> None:
    for spec in CATALOGUE.values():
        assert len(spec.example.strip("#").split("#")[1:]) == len(spec.fields), spec.keyword


@pytest.mark.parametrize("doc_type", DOC_TYPES)
def test_the_guided_summary_shows_every_answer_with_send_edit_and_leave(
    doc_type: DocType,
) -> None:
    spec = document(doc_type)
    answers = {field.value: f"JAWABAN {i}" for i, field in enumerate(spec.fields)}
    message = render(
        GuidedStepAsked(
            phone=PHONE,
            message_id="m",
            doc_type=doc_type.value,
            field=GUIDED_CONFIRM,
            answers=answers,
        )
    )
    assert message is not None
    steps = len(spec.fields) + 1
    assert f"Langkah {steps} dari {steps}" in message.text
    for value in answers.values():
        assert f": {value}\n" in message.text
    assert "KIRIM" in message.text and "UBAH" in message.text and "KELUAR" in message.text
    assert message.choices is not None and message.choices.style == "buttons"
    assert [(option.id, option.title) for option in message.choices.options] == [
        (reply_ids.GUIDED_CONFIRM, "Kirim"),
        (reply_ids.GUIDED_EDIT, "Ubah"),
        (reply_ids.GUIDED_LEAVE, "Keluar"),
    ]


def test_leaving_guided_mode_says_how_to_start_again_and_other_endings_say_nothing() -> None:
    left = render(GuidedEnded(phone=PHONE, message_id="m", reason="left"))
    assert left is not None
    assert left.kind == "guided-left"
    assert "HALO" in left.text and "#MENU" in left.text
    assert left.choices is not None
    assert [option.id for option in left.choices.options] == [reply_ids.MENU]
    for reason in ("submitted", "expired", "replaced"):
        ended = GuidedEnded(phone=PHONE, message_id="m", reason=reason, ticket=TICKET)
        assert render(ended) is None


# -- buttons under decisions and prompts ---------------------------------------------------


@pytest.mark.parametrize("doc_type", DOC_TYPES)
def test_a_broken_format_offers_help_and_information_offers_to_apply(doc_type: DocType) -> None:
    invalid = render(
        InvalidRequestReceived(
            phone=PHONE,
            message_id="m",
            doc_type=doc_type.value,
            problems=(Problem(field="NIK", message="NIK harus 16 angka."),),
        )
    )
    info = render(InfoRequested(phone=PHONE, message_id="m", doc_type=doc_type.value))
    assert invalid is not None and info is not None
    assert invalid.choices is not None and info.choices is not None
    assert [(o.id, o.title) for o in invalid.choices.options] == [
        (reply_ids.guided_start(doc_type.value), "Bantu isi"),
        (reply_ids.MENU, "Lihat layanan"),
    ]
    assert [(o.id, o.title) for o in info.choices.options] == [
        (reply_ids.guided_start(doc_type.value), "Ajukan sekarang"),
    ]
    # Typed, it is the same offer.
    assert "Ketik HALO" in invalid.text and "Ketik HALO" in info.text


def test_changes_requested_offer_the_status_unless_the_text_is_too_long() -> None:
    short = render(
        ChangesRequested(
            ticket=TICKET, reasons=("Foto KK buram",), officer_id="o", phone=PHONE, doc_type="KTP"
        )
    )
    assert short is not None and short.choices is not None
    assert [o.id for o in short.choices.options] == [reply_ids.status_of(TICKET)]
    assert short.choices.body == short.text
    long_reasons = tuple(f"Alasan nomor {i}: " + "foto kurang jelas " * 5 for i in range(12))
    long = render(
        ChangesRequested(
            ticket=TICKET, reasons=long_reasons, officer_id="o", phone=PHONE, doc_type="KTP"
        )
    )
    assert long is not None
    assert len(long.text) > 1024
    assert long.choices is None
    assert long.template is not None  # still said outside the window


def test_collection_asks_the_survey_as_a_list_of_the_four_scores() -> None:
    message = render(
        DocumentCollected(ticket=TICKET, doc_type="KTP", phone=PHONE, officer_id="off_1")
    )
    assert message is not None and message.choices is not None
    assert message.choices.style == "list"
    assert [o.id for o in message.choices.options] == [reply_ids.survey(n) for n in (1, 2, 3, 4)]
    assert [o.title for o in message.choices.options][-1] == "4 = sangat puas"
