"""Automatic checks of a request: papers, NIK and No. KK regions, age, duplicates, and
when to run them (the grace period for files sent after the text)."""

from __future__ import annotations

import copy
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from services.verification.domain.checks import (
    CheckPolicy,
    papers_required,
    ready_for_checks,
    run_checks,
)
from services.verification.domain.request import Request, State
from shared.contracts import (
    Attachment,
    AttachmentAdded,
    ChangesRequested,
    CheckResult,
    RequestAmended,
    RequestChecked,
    RequestClaimed,
    RequestReceived,
)
from shared.eventstore.envelope import Event, RecordedEvent
from shared.identity import OfficeArea
from tests.builders import recorded as build_recorded
from tests.support import decode_all, decoded

AREA = OfficeArea("3603")
GRACE = timedelta(minutes=30)
POLICY = CheckPolicy(area=AREA, papers_grace=GRACE)
TODAY = date(2025, 11, 3)
T0 = datetime(2025, 11, 3, 2, 0, tzinfo=UTC)
TICKET = "AB12CD"

KK = "Kartu Keluarga (KK)"
SURAT_HILANG = "Surat keterangan hilang dari kepolisian"
KTP_RUSAK = "KTP-el yang rusak"
KIA_PAPERS = (
    "Akta kelahiran anak",
    "KTP-el kedua orang tua",
    "Kartu Keluarga (KK) dengan kedua orang tua dalam satu KK",
)
KIA_PHOTO = "Pas foto anak berwarna ukuran 2x3 atau 4x6 (untuk anak usia 5 tahun ke atas)"

BALARAJA, CIKUPA = "360301", "360318"
SITI_NIK = "3603015708990001"  # Balaraja, woman born 17-08-1999: 26 on TODAY
SITI_KK = "3603012001180003"  # Balaraja
CIKUPA_NIK = "3603185708990001"  # the same person registered in Cikupa, same regency
CIKUPA_KK = "3603182001180003"
JAKARTA_NIK = "3171015708990001"  # Kec. Gambir, Kota Jakarta Pusat
JAKARTA_KK = "3171012001180003"
CHILD_6 = "3603015203190002"  # girl born 12-03-2019
CHILD_4 = "3603011001210002"  # boy born 10-01-2021
CHILD_5_TODAY = "3603010311200002"  # boy born 03-11-2020: 5 on TODAY, 4 the day before
TEEN_16 = "3603010105090001"  # born 01-05-2009
TEEN_17_TODAY = "3603010311080001"  # born 03-11-2008: 17 on TODAY, 16 the day before
UNKNOWN_REGION_NIK = "9999015708990001"
FUTURE_BIRTH_NIK = "3603011512250001"  # 15-12-2025, after TODAY


def attachment(n: int) -> Attachment:
    return Attachment(
        sha256=f"{n:064x}", content_type="image/jpeg", size=50_000 + n, message_id=f"wamid.{n}"
    )


def files(count: int) -> tuple[Attachment, ...]:
    return tuple(attachment(n) for n in range(1, count + 1))


def ktp_applicant(
    nik: str = SITI_NIK, no_kk: str = SITI_KK, reason: str = "PEMULA"
) -> dict[str, Any]:
    return {
        "nik": nik,
        "no_kk": no_kk,
        "nama": "SITI AMINAH",
        "desa": "SENTUL",
        "kecamatan_code": BALARAJA,
        "kecamatan_name": "Balaraja",
        "reason": reason,
    }


def kia_applicant(nik: str) -> dict[str, Any]:
    return {
        "nik": nik,
        "no_kk": SITI_KK,
        "nama": "RIZKI PRATAMA",
        "desa": "SENTUL",
        "kecamatan_code": BALARAJA,
        "kecamatan_name": "Balaraja",
    }


def recorded(event: Event, version: int, at: datetime) -> RecordedEvent:
    return build_recorded(event, version=version, stream_id=f"request-{TICKET}", at=at)


def received_event(
    doc_type: str, applicant: dict[str, Any], attachments: tuple[Attachment, ...]
) -> RequestReceived:
    return RequestReceived(
        ticket=TICKET,
        doc_type=doc_type,
        citizen="citizen-3f9a",
        phone="6281234567890",
        kecamatan_code=BALARAJA,
        applicant=applicant,
        attachments=attachments,
        message_id="wamid.request",
        received_at=T0,
    )


def request(
    doc_type: str = "KTP",
    applicant: dict[str, Any] | None = None,
    attachments: tuple[Attachment, ...] = files(1),
    *later: Event,
) -> Request:
    """A request received at T0 (recorded then), followed by ``later`` events a minute apart."""
    events = [received_event(doc_type, applicant or ktp_applicant(), attachments), *later]
    return Request.fold(
        decode_all(
            recorded(event, i, T0 + timedelta(minutes=i - 1)) for i, event in enumerate(events, 1)
        )
    )


def by_check(results: tuple[CheckResult, ...]) -> dict[str, CheckResult]:
    checks = [result.check for result in results]
    assert len(checks) == len(set(checks)), f"a check ran twice: {checks}"
    return {result.check: result for result in results}


def test_the_example_kecamatan_are_in_the_office_area() -> None:
    assert AREA.name == "Kab. Tangerang"
    balaraja, cikupa = AREA.kecamatan_by_code(BALARAJA), AREA.kecamatan_by_code(CIKUPA)
    assert balaraja is not None
    assert balaraja.name == "Balaraja"
    assert cikupa is not None
    assert cikupa.name == "Cikupa"
    assert not AREA.contains("317101")


# -- papers ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reason", "papers"),
    [
        ("PEMULA", (KK,)),
        ("HILANG", (KK, SURAT_HILANG)),
        ("RUSAK", (KK, KTP_RUSAK)),
        ("LAINNYA", (KK,)),
        ("", (KK,)),
    ],
)
def test_papers_of_a_ktp_depend_on_the_reason(reason: str, papers: tuple[str, ...]) -> None:
    assert papers_required(request("KTP", ktp_applicant(reason=reason)), TODAY) == papers


def test_papers_of_a_ktp_without_a_reason_are_the_common_ones() -> None:
    applicant = ktp_applicant()
    del applicant["reason"]
    assert papers_required(request("KTP", applicant), TODAY) == (KK,)


@pytest.mark.parametrize(
    ("nik", "today", "photo"),
    [
        (CHILD_6, TODAY, True),
        (CHILD_4, TODAY, False),
        (CHILD_5_TODAY, TODAY, True),
        (CHILD_5_TODAY, TODAY - timedelta(days=1), False),
        # An unreadable NIK says no age: the photo stays required.
        (UNKNOWN_REGION_NIK, TODAY, True),
    ],
    ids=["six", "four", "fifth-birthday", "day-before-fifth-birthday", "unreadable-nik"],
)
def test_the_kia_child_photo_is_required_from_age_five(nik: str, today: date, photo: bool) -> None:
    papers = papers_required(request("KIA", kia_applicant(nik)), today)
    assert papers == ((*KIA_PAPERS, KIA_PHOTO) if photo else KIA_PAPERS)


def test_only_the_kia_drops_a_photo_for_small_children() -> None:
    applicant = {"nik": CHILD_4, "no_kk": SITI_KK, "nama": "RIZKI", "keperluan": "SEKOLAH"}
    papers = papers_required(request("VALIDASI", applicant), TODAY)
    assert papers == ("Foto KTP-el atau Kartu Keluarga (KK)",)


def test_no_file_at_all_is_for_the_citizen_to_fix() -> None:
    result = by_check(run_checks(request(attachments=()), POLICY, TODAY, None))["papers"]
    assert result == CheckResult(
        check="papers",
        passed=False,
        fixable=True,
        reason="Belum ada foto atau PDF persyaratan. Kirimkan: Kartu Keluarga (KK).",
    )


def test_no_file_lists_every_paper_required() -> None:
    lost = request("KTP", ktp_applicant(reason="HILANG"), ())
    result = by_check(run_checks(lost, POLICY, TODAY, None))["papers"]
    assert result.fixable
    assert result.reason == (
        f"Belum ada foto atau PDF persyaratan. Kirimkan: {KK}; {SURAT_HILANG}."
    )


def test_fewer_files_than_papers_is_for_an_officer_to_judge() -> None:
    lost = request("KTP", ktp_applicant(reason="HILANG"), files(1))
    result = by_check(run_checks(lost, POLICY, TODAY, None))["papers"]
    assert result == CheckResult(
        check="papers",
        passed=False,
        fixable=False,
        reason="Berkas 1 dari 2 persyaratan; periksa kelengkapannya.",
    )


@pytest.mark.parametrize("count", [2, 3])
def test_as_many_files_as_papers_or_more_pass(count: int) -> None:
    lost = request("KTP", ktp_applicant(reason="HILANG"), files(count))
    assert by_check(run_checks(lost, POLICY, TODAY, None))["papers"].passed


def test_files_added_later_and_with_a_correction_count() -> None:
    amended = request(
        "KTP",
        ktp_applicant(reason="RUSAK"),
        (),
        AttachmentAdded(ticket=TICKET, attachment=attachment(1)),
        RequestChecked(ticket=TICKET, round=1, results=(), outcome="passed"),
        ChangesRequested(
            ticket=TICKET, reasons=("x",), officer_id="o1", phone="62812", doc_type="KTP"
        ),
        RequestAmended(
            ticket=TICKET, message_id="wamid.fix", attachments=(attachment(2),), phone="62812"
        ),
    )
    assert by_check(run_checks(amended, POLICY, TODAY, None))["papers"].passed


# -- all checks of a good request -----------------------------------------------------------


def test_a_good_ktp_request_passes_every_check() -> None:
    assert run_checks(request(), POLICY, TODAY, None) == (
        CheckResult(check="papers", passed=True),
        CheckResult(check="nik_region", passed=True),
        CheckResult(check="kk_region", passed=True),
        CheckResult(check="age", passed=True),
        CheckResult(check="duplicate", passed=True),
    )


# -- regions --------------------------------------------------------------------------------


def test_a_nik_from_outside_the_regency_is_flagged() -> None:
    outsider = request("KTP", ktp_applicant(nik=JAKARTA_NIK, no_kk=JAKARTA_KK))
    results = by_check(run_checks(outsider, POLICY, TODAY, None))
    assert results["nik_region"] == CheckResult(
        check="nik_region",
        passed=False,
        reason=(
            "NIK diterbitkan di Kec. Gambir, Kota Jakarta Pusat, di luar Kab. Tangerang "
            "(penduduk pindahan?)."
        ),
    )
    # Family card and NIK of the same place: no second flag.
    assert results["kk_region"].passed


def test_a_nik_from_another_kecamatan_of_the_regency_passes() -> None:
    # The request says Balaraja, the NIK is from Cikupa: both are the office's.
    moved = request("KTP", ktp_applicant(nik=CIKUPA_NIK, no_kk=SITI_KK))
    results = by_check(run_checks(moved, POLICY, TODAY, None))
    assert results["nik_region"].passed
    assert results["kk_region"].passed


def test_a_family_card_from_another_regency_than_the_nik_is_flagged() -> None:
    mixed = request("KTP", ktp_applicant(nik=SITI_NIK, no_kk=JAKARTA_KK))
    results = by_check(run_checks(mixed, POLICY, TODAY, None))
    assert results["nik_region"].passed
    assert results["kk_region"] == CheckResult(
        check="kk_region",
        passed=False,
        reason=(
            "No. KK dari Kec. Gambir, Kota Jakarta Pusat, NIK dari Kec. Balaraja, "
            "Kab. Tangerang: pastikan data pindah datang."
        ),
    )


def test_a_nik_from_outside_with_a_local_family_card_is_flagged_twice() -> None:
    newcomer = request("KTP", ktp_applicant(nik=JAKARTA_NIK, no_kk=CIKUPA_KK))
    results = by_check(run_checks(newcomer, POLICY, TODAY, None))
    assert not results["nik_region"].passed
    assert not results["kk_region"].passed
    assert results["kk_region"].reason.startswith("No. KK dari Kec. Cikupa, Kab. Tangerang, NIK")
    assert not results["nik_region"].fixable
    assert not results["kk_region"].fixable


def test_no_family_card_number_leaves_nothing_to_compare() -> None:
    applicant = ktp_applicant()
    del applicant["no_kk"]
    assert by_check(run_checks(request("KTP", applicant), POLICY, TODAY, None))["kk_region"].passed


# -- age ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("doc_type", "nik", "today", "passed"),
    [
        ("KTP", SITI_NIK, TODAY, True),
        ("KTP", TEEN_17_TODAY, TODAY, True),
        ("KTP", TEEN_17_TODAY, TODAY - timedelta(days=1), False),
        ("KTP", TEEN_16, TODAY, False),
        ("KIA", CHILD_4, TODAY, True),
        ("KIA", TEEN_16, TODAY, True),
        ("KIA", TEEN_17_TODAY, TODAY - timedelta(days=1), True),
        ("KIA", TEEN_17_TODAY, TODAY, False),
        ("KIA", SITI_NIK, TODAY, False),
    ],
    ids=[
        "ktp-26",
        "ktp-17th-birthday",
        "ktp-day-before-17",
        "ktp-16",
        "kia-4",
        "kia-16",
        "kia-day-before-17",
        "kia-17th-birthday",
        "kia-26",
    ],
)
def test_the_age_must_fit_the_document(doc_type: str, nik: str, today: date, passed: bool) -> None:
    applicant = ktp_applicant(nik=nik) if doc_type == "KTP" else kia_applicant(nik)
    result = by_check(run_checks(request(doc_type, applicant), POLICY, today, None))["age"]
    assert result.passed is passed
    assert not result.fixable
    assert (result.reason == "") is passed


def test_age_reasons_name_the_age_and_the_rule() -> None:
    teen = request("KTP", ktp_applicant(nik=TEEN_16))
    assert by_check(run_checks(teen, POLICY, TODAY, None))["age"].reason == (
        "Menurut NIK pemohon berusia 16 tahun; KTP-el mulai usia 17 tahun "
        "(atau sudah/pernah kawin)."
    )
    adult = request("KIA", kia_applicant(SITI_NIK))
    assert by_check(run_checks(adult, POLICY, TODAY, None))["age"].reason == (
        "Menurut NIK pemohon berusia 26 tahun; KIA hanya untuk anak di bawah 17 tahun."
    )


@pytest.mark.parametrize("doc_type", ["SKPWNI", "VALIDASI", "AKTAMATI"])
def test_other_documents_with_a_nik_have_no_age_check(doc_type: str) -> None:
    applicant = {"nik": TEEN_16, "no_kk": SITI_KK, "nama": "BUDI"}
    results = by_check(run_checks(request(doc_type, applicant, files(4)), POLICY, TODAY, None))
    assert set(results) == {"papers", "nik_region", "kk_region", "duplicate"}


@pytest.mark.parametrize("nik", [UNKNOWN_REGION_NIK, FUTURE_BIRTH_NIK, "12345", None], ids=str)
def test_without_a_readable_nik_only_papers_and_duplicates_are_checked(nik: str | None) -> None:
    applicant = ktp_applicant()
    if nik is None:
        del applicant["nik"]
    else:
        applicant["nik"] = nik
    results = run_checks(request("KTP", applicant), POLICY, TODAY, None)
    assert [result.check for result in results] == ["papers", "duplicate"]


def test_a_family_card_request_has_no_nik_checks() -> None:
    applicant = {"no_kk": SITI_KK, "nama_kepala_keluarga": "AHMAD", "desa": "SENTUL"}
    results = run_checks(request("KK", applicant, files(3)), POLICY, TODAY, None)
    assert results == (
        CheckResult(check="papers", passed=True),
        CheckResult(check="duplicate", passed=True),
    )


# -- duplicates -----------------------------------------------------------------------------


def test_another_open_request_makes_this_one_a_duplicate() -> None:
    results = by_check(run_checks(request(), POLICY, TODAY, "XY98ZW"))
    assert results["duplicate"] == CheckResult(
        check="duplicate",
        passed=False,
        reason="Permohonan yang sama masih diproses dengan tiket XY98ZW.",
        related_ticket="XY98ZW",
    )


def test_duplicates_are_looked_for_only_on_receipt() -> None:
    amended = request(
        "KTP",
        ktp_applicant(),
        (),
        RequestChecked(ticket=TICKET, round=1, results=(), outcome="changes_needed"),
        ChangesRequested(
            ticket=TICKET, reasons=("x",), officer_id=None, phone="62812", doc_type="KTP"
        ),
        RequestAmended(
            ticket=TICKET, message_id="wamid.fix", attachments=(attachment(1),), phone="62812"
        ),
    )
    assert amended.check_round == 1
    results = by_check(run_checks(amended, POLICY, TODAY, "XY98ZW"))
    assert "duplicate" not in results


# -- the verdict the aggregate draws from the checks ----------------------------------------


@pytest.mark.parametrize(
    ("req", "duplicate_of", "outcome", "state"),
    [
        (request(), None, "passed", State.IN_QUEUE),
        (request(attachments=()), None, "changes_needed", State.CHANGES_REQUESTED),
        (request("KTP", ktp_applicant(nik=JAKARTA_NIK)), None, "flagged", State.IN_QUEUE),
        (request(attachments=()), "XY98ZW", "duplicate", State.CANCELLED),
    ],
    ids=["passed", "no-files", "outsider", "duplicate"],
)
def test_checks_lead_to_the_queue_a_correction_or_a_cancellation(
    req: Request, duplicate_of: str | None, outcome: str, state: State
) -> None:
    req = copy.deepcopy(req)  # the parameter is shared by reruns
    events = req.record_checks(run_checks(req, POLICY, TODAY, duplicate_of))
    checked = events[0]
    assert isinstance(checked, RequestChecked)
    assert checked.outcome == outcome
    for i, event in enumerate(events, req.version + 1):
        req.apply(*decoded(recorded(event, i, T0 + timedelta(hours=1))))
    assert req.state == state


# -- when to check --------------------------------------------------------------------------


def test_a_request_with_a_file_for_every_paper_is_checked_at_once() -> None:
    assert ready_for_checks(request(), POLICY, T0)


def test_a_request_missing_files_waits_for_the_grace_period() -> None:
    lost = request("KTP", ktp_applicant(reason="HILANG"), files(1))
    assert not ready_for_checks(lost, POLICY, T0)
    assert not ready_for_checks(lost, POLICY, T0 + GRACE - timedelta(seconds=1))
    assert ready_for_checks(lost, POLICY, T0 + GRACE)
    assert ready_for_checks(lost, POLICY, T0 + 3 * GRACE)


def test_a_request_without_files_is_checked_when_the_grace_period_is_over() -> None:
    bare = request(attachments=())
    assert not ready_for_checks(bare, POLICY, T0 + timedelta(minutes=29))
    assert ready_for_checks(bare, POLICY, T0 + GRACE)


def test_a_file_sent_after_the_text_makes_the_request_ready() -> None:
    bare = request(
        "KTP", ktp_applicant(), (), AttachmentAdded(ticket=TICKET, attachment=attachment(1))
    )
    assert ready_for_checks(bare, POLICY, T0 + timedelta(minutes=2))


def test_a_small_child_needs_no_photo_to_be_ready() -> None:
    small = request("KIA", kia_applicant(CHILD_4), files(3))
    assert ready_for_checks(small, POLICY, T0)
    older = request("KIA", kia_applicant(CHILD_6), files(3))
    assert not ready_for_checks(older, POLICY, T0)
    assert ready_for_checks(request("KIA", kia_applicant(CHILD_6), files(4)), POLICY, T0)


def test_an_amended_request_is_checked_at_once() -> None:
    amended = request(
        "KTP",
        ktp_applicant(reason="HILANG"),
        (),
        RequestChecked(ticket=TICKET, round=1, results=(), outcome="changes_needed"),
        ChangesRequested(
            ticket=TICKET, reasons=("x",), officer_id=None, phone="62812", doc_type="KTP"
        ),
        RequestAmended(ticket=TICKET, message_id="wamid.fix", attachments=(), phone="62812"),
    )
    assert amended.state == State.AMENDED
    assert ready_for_checks(amended, POLICY, T0 + timedelta(minutes=3))


@pytest.mark.parametrize(
    "later",
    [
        (RequestChecked(ticket=TICKET, round=1, results=(), outcome="passed"),),
        (
            RequestChecked(ticket=TICKET, round=1, results=(), outcome="passed"),
            RequestClaimed(ticket=TICKET, officer_id="o1", officer_name="Ani", by="o1"),
        ),
        (
            RequestChecked(ticket=TICKET, round=1, results=(), outcome="changes_needed"),
            ChangesRequested(
                ticket=TICKET, reasons=("x",), officer_id=None, phone="62812", doc_type="KTP"
            ),
        ),
    ],
    ids=["in_queue", "claimed", "changes_requested"],
)
def test_requests_past_their_checks_are_not_checked_again(later: tuple[Event, ...]) -> None:
    checked = request("KTP", ktp_applicant(), (), *later)
    assert checked.state != State.RECEIVED
    assert not ready_for_checks(checked, POLICY, T0 + 10 * GRACE)


def test_nothing_received_is_never_ready() -> None:
    assert not ready_for_checks(Request(), POLICY, T0 + 10 * GRACE)
