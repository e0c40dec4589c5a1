"""Citizen messages render for every document, in Indonesian, with ticket and next step."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Literal

import pytest

from services.notify.domain.messages import (
    CAPTION_MAX,
    SURVEY_QUESTION,
    Reply,
    menu_text,
    render,
)
from services.notify.handlers import REPLY_EVENTS
from shared.calendar import OfficeHours, format_tanggal
from shared.contracts import (
    Attachment,
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
)
from shared.documents import CATALOGUE, DocType, KtpReason, document
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
    assert f"Nomor tiket: {doc_type.value}-7Q2M9XAB" in reply.body
    assert spec.name in reply.body
    assert spec.turnaround_text in reply.body
    assert f"#STATUS#{doc_type.value}-7Q2M9XAB" in reply.body
    assert "Berkas yang sudah kami terima: 1." in reply.body
    papers = spec.requirements_for(KtpReason.HILANG if doc_type is DocType.KTP else None)
    assert all(paper in reply.body for paper in papers)


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
    assert "NIK harus 16 angka, yang Anda kirim 14 angka." in reply.body
    assert document(doc_type).format in reply.body
    assert document(doc_type).example in reply.body
    assert "Nomor tiket" not in reply.body


@pytest.mark.parametrize("doc_type", list(DocType))
def test_info_gives_requirements_time_and_format(doc_type: DocType) -> None:
    reply = render(InfoRequested(phone=PHONE, message_id="m", doc_type=doc_type.value))
    assert reply is not None
    spec = document(doc_type)
    assert spec.turnaround_text in reply.body
    assert spec.format in reply.body
    assert all(item in reply.body for item in spec.requirements)


def test_status_answers_in_contract_words_or_not_found() -> None:
    found = render(
        StatusReported(phone=PHONE, message_id="m", ticket="KTP-7Q2M9XAB", status="DITERIMA")
    )
    assert found is not None
    assert "KTP-7Q2M9XAB" in found.body
    assert "DITERIMA" in found.body
    missing = render(
        StatusReported(phone=PHONE, message_id="m", ticket="KTP-00000000", status=None)
    )
    assert missing is not None
    assert "tidak ditemukan" in missing.body


def test_menu_lists_every_service_and_admits_confusion() -> None:
    for spec in CATALOGUE.values():
        assert f"#INFO#{spec.keyword}" in menu_text()
    reply = render(MenuRequested(phone=PHONE, message_id="m", understood=False))
    assert reply is not None
    assert reply.body.startswith("Maaf, pesan Anda belum kami pahami.")


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
    assert "Nomor tiket: ADUAN-7Q2M9XAB" in complaint.body
    rejected = render(
        AttachmentRejected(
            phone=PHONE, message_id="m", reason="too_large", detail="lebih dari 5 MB"
        )
    )
    assert rejected is not None
    assert "lebih dari 5 MB" in rejected.body


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
        assert name in reply.body
        assert TICKET in reply.body
        for text in expected:
            assert text in reply.body, (type(event).__name__, text)


def test_corrections_duplicates_and_complaint_answers() -> None:
    attachment = Attachment(sha256="b" * 64, content_type="image/png", size=5, message_id="m")
    amended = render(
        RequestAmended(ticket=TICKET, message_id="m", attachments=(attachment,), phone=PHONE)
    )
    assert amended is not None
    assert f"Perbaikan untuk tiket {TICKET} sudah kami terima (1 berkas)" in amended.body

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
    assert f"Tiket Anda: {TICKET}" in duplicate.body
    # Not an acknowledgement of a new request: no "Nomor tiket:" line.
    assert "Nomor tiket:" not in duplicate.body

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
    assert TICKET in cancelled.body and "KTP-SECOND01" in cancelled.body

    for reason, expected in [
        ("unknown_ticket", "tidak ditemukan"),
        ("not_pending", "tidak sedang menunggu perbaikan"),
        ("no_files", f"#LENGKAPI#{TICKET}"),
    ]:
        refused = render(
            CorrectionRefused(phone=PHONE, message_id="m", ticket=TICKET, reason=reason)  # type: ignore[arg-type]
        )
        assert refused is not None
        assert expected in refused.body

    answer = render(
        ComplaintAnswered(
            ticket="ADUAN-1234ABCD",
            officer_id="off_1",
            answer="Berkas sudah kami cek.",
            phone=PHONE,
        )
    )
    assert answer is not None
    assert "ADUAN-1234ABCD" in answer.body and "Berkas sudah kami cek." in answer.body


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


def rendered(event: Event, office_hours: OfficeHours | None = None) -> Reply:
    """The reply to ``event``, checked for what every citizen message must be."""
    reply = render(event, office_hours=office_hours)
    assert reply is not None, type(event).__name__
    assert reply.to == PHONE
    for leak in ("None", "{", "}"):
        assert leak not in reply.body, (type(event).__name__, leak)
    assert len(reply.body) <= 4096
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
    assert f"Nomor tiket: {ticket}" in reply.body
    assert document(doc_type).name in reply.body
    assert "DIPROSES" in reply.body
    assert format_tanggal(PROMISED) in reply.body
    assert "Senin, 7 Desember 2026" in reply.body
    assert f"#STATUS#{ticket}" in reply.body
    assert reply.document is None
    if channel == "office":
        assert "diambil mulai Senin, 7 Desember 2026, pada jam layanan kantor" in reply.body
        assert PLACE in reply.body
        assert "Bawa:\n- Pesan WhatsApp ini atau nomor tiket\n- KTP-el asli pemohon" in (reply.body)
    else:
        assert "dikirim melalui WhatsApp ini" in reply.body
        assert "paling lambat Senin, 7 Desember 2026" in reply.body
        assert "tidak perlu membawa apa pun" in reply.body
        assert "Bawa:" not in reply.body


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
    assert "pukul 08.00 sampai 15.30" in reply.body
    assert "Tempat: kantor Disdukcapil" in reply.body
    assert "Bawa:" not in reply.body


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
    assert reply.body.startswith("Mohon maaf")
    assert f"Nomor tiket: {ticket_of(doc_type)}" in reply.body
    assert document(doc_type).name in reply.body
    assert "sistem kependudukan nasional (SIAK)" in reply.body
    assert format_tanggal(PROMISED) in reply.body
    assert "Perkiraan selesai yang baru: Rabu, 9 Desember 2026." in reply.body
    assert "tidak perlu melakukan apa pun" in reply.body


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
    assert "SIAP DIAMBIL" in reply.body
    assert f"Nomor tiket: {ticket_of(doc_type)}" in reply.body
    assert document(doc_type).name in reply.body
    assert "mulai Senin, 7 Desember 2026" in reply.body
    assert PLACE in reply.body and all(item in reply.body for item in BRING)
    assert "Tunjukkan pesan ini atau nomor tiket" in reply.body


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
    assert len(reply.body) <= CAPTION_MAX
    assert f"Nomor tiket: {ticket_of(doc_type)}" in reply.body
    assert "Nomor dokumen: SKPWNI/0021" in reply.body
    assert document(doc_type).name in reply.body
    assert "(TTE)" in reply.body
    assert SURVEY_QUESTION in reply.body
    assert reply.body.endswith("4 = sangat puas")


def test_an_absurd_document_number_still_fits_a_caption() -> None:
    reply = rendered(issued(DocType.SKPWNI, "whatsapp", number="9" * 2000))
    assert len(reply.body) <= CAPTION_MAX


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
    assert f"Nomor tiket: {ticket_of(doc_type)}" in reply.body
    assert document(doc_type).name in reply.body
    assert "Terima kasih" in reply.body
    assert "SELESAI" in reply.body
    assert SURVEY_QUESTION in reply.body
    for answer in ("1 = tidak puas", "2 = kurang puas", "3 = puas", "4 = sangat puas"):
        assert answer in SURVEY_QUESTION


@pytest.mark.parametrize("score", [1, 2, 3, 4])
def test_a_survey_answer_is_thanked(score: int) -> None:
    reply = rendered(SurveyAnswered(ticket=TICKET, phone=PHONE, message_id="m", score=score))
    assert reply.body.startswith("Terima kasih atas penilaian Anda")
    assert f"({score} = " in reply.body
    assert reply.body.endswith(f"Nomor tiket: {TICKET}")
    assert SURVEY_QUESTION not in reply.body


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
    assert reply.body.startswith("Maaf, permohonan Anda tidak dapat dibatalkan.")
    assert f"Nomor tiket: {TICKET}" in reply.body
    assert expected in reply.body
    assert f"#STATUS#{TICKET}" in reply.body
    assert "#ADUAN#" in reply.body
    if status in ("DIPROSES", "SIAP DIAMBIL"):
        assert "tidak perlu diambil" in reply.body


def test_a_cancellation_of_an_unknown_ticket_is_not_found() -> None:
    reply = rendered(
        CancellationRefused(phone=PHONE, message_id="m", ticket=TICKET, reason="unknown_ticket")
    )
    assert f"Tiket {TICKET} tidak ditemukan untuk nomor WhatsApp ini" in reply.body
    assert "Nomor tiket:" not in reply.body  # the ticket is not the sender's


@pytest.mark.parametrize("doc_type", DOC_TYPES)
def test_a_cancellation_by_the_citizen_is_confirmed(doc_type: DocType) -> None:
    reply = rendered(
        RequestCancelled(
            ticket=ticket_of(doc_type), reason="citizen", phone=PHONE, doc_type=doc_type.value
        )
    )
    assert "DIBATALKAN atas permintaan Anda" in reply.body
    assert f"Nomor tiket: {ticket_of(doc_type)}" in reply.body
    assert document(doc_type).name in reply.body
    assert "permohonan baru" in reply.body


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
    assert f"Status tiket {TICKET}: {status}" in reply.body
    assert expected in reply.body
    without = rendered(
        StatusReported(phone=PHONE, message_id="m", ticket=TICKET, status=status, doc_type="KTP")
    )
    assert "2026" not in without.body
    done = rendered(
        StatusReported(
            phone=PHONE, message_id="m", ticket=TICKET, status="SELESAI", promised_on=PROMISED
        )
    )
    assert "2026" not in done.body


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
