"""Citizen messages render for every document, in Indonesian, with ticket and next step."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.notify.domain.messages import menu_text, render
from shared.contracts import (
    Attachment,
    AttachmentRejected,
    ChangesRequested,
    ComplaintAnswered,
    ComplaintReceived,
    CorrectionRefused,
    DuplicateRequestReceived,
    InfoRequested,
    InvalidRequestReceived,
    MenuRequested,
    Problem,
    RequestAmended,
    RequestCancelled,
    RequestReceived,
    RequestRejected,
    RequestVerified,
    StatusReported,
)
from shared.documents import CATALOGUE, DocType, KtpReason, document

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
