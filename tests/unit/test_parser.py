"""Parsing WhatsApp messages: every format, every wrong field, and what people really type."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.intake.domain.parser import (
    MAX_INPUT_CHARS,
    PARSED_MESSAGE,
    Cancellation,
    Command,
    Complaint,
    DocumentRequest,
    InfoQuery,
    Invalid,
    MenuRequest,
    ParsedMessage,
    Problem,
    Resubmission,
    StatusQuery,
    Unrecognised,
    parse_message,
)
from shared.documents import CATALOGUE, DocType, KtpReason, document
from shared.identity import OfficeArea
from tests.builders import SITI

TODAY = date(2026, 11, 23)
AREA = OfficeArea("3603")

NIK = SITI.nik  # a woman of Balaraja, born 17-08-1999
NO_KK = SITI.no_kk
KTP = f"#KTP#{NIK}#{NO_KK}#SITI AMINAH#SENTUL#BALARAJA#PEMULA#"

PARSED_TYPES = (
    DocumentRequest,
    StatusQuery,
    InfoQuery,
    MenuRequest,
    Resubmission,
    Cancellation,
    Complaint,
    Invalid,
    Unrecognised,
)


def parse(text: str) -> object:
    return parse_message(text, area=AREA, today=TODAY)


def request(text: str) -> DocumentRequest:
    parsed = parse(text)
    assert isinstance(parsed, DocumentRequest), parsed
    return parsed


def invalid(text: str) -> Invalid:
    parsed = parse(text)
    assert isinstance(parsed, Invalid), parsed
    return parsed


def problems(text: str) -> dict[str, str]:
    return {problem.field: problem.message for problem in invalid(text).problems}


def only_problem(text: str) -> Problem:
    found = invalid(text).problems
    assert len(found) == 1, found
    return found[0]


def with_column(doc_type: DocType, index: int, value: str) -> str:
    """The catalogue's example of ``doc_type`` with column ``index`` (0 = first after the
    keyword) replaced."""
    columns = document(doc_type).example.strip("#").split("#")
    columns[index + 1] = value
    return "#" + "#".join(columns)


# -- every format, valid ---------------------------------------------------------------------


def test_kk() -> None:
    parsed = request("#KK#3603012001180003#AHMAD SUBARDI#SENTUL#BALARAJA")
    assert parsed == DocumentRequest(
        doc_type=DocType.KK,
        no_kk=NO_KK,
        nama="AHMAD SUBARDI",
        desa="SENTUL",
        kecamatan_code="360301",
        kecamatan_name="Balaraja",
    )


@pytest.mark.parametrize("reason", list(KtpReason))
def test_ktp(reason: KtpReason) -> None:
    parsed = request(KTP.replace("PEMULA", reason.value))
    assert parsed == DocumentRequest(
        doc_type=DocType.KTP,
        nik=NIK,
        no_kk=NO_KK,
        nama="SITI AMINAH",
        desa="SENTUL",
        kecamatan_code="360301",
        kecamatan_name="Balaraja",
        reason=reason,
    )


def test_kia() -> None:
    parsed = request("#KIA#3603031203190002#3603031505150007#RIZKI PRATAMA#MARGASARI#TIGARAKSA")
    assert parsed.doc_type is DocType.KIA
    assert parsed.nik == "3603031203190002"
    assert parsed.no_kk == "3603031505150007"
    assert (parsed.nama, parsed.desa) == ("RIZKI PRATAMA", "MARGASARI")
    assert (parsed.kecamatan_code, parsed.kecamatan_name) == ("360303", "Tigaraksa")


def test_skpwni() -> None:
    parsed = request(f"#SKPWNI#{NIK}#{NO_KK}#Siti Aminah#Jl. Mawar No. 5, RT 002/RW 004, Bandung")
    assert parsed == DocumentRequest(
        doc_type=DocType.SKPWNI,
        nik=NIK,
        no_kk=NO_KK,
        nama="SITI AMINAH",
        alamat_pindah="JL. MAWAR NO. 5, RT 002/RW 004, BANDUNG",
    )


def test_skdwni() -> None:
    parsed = request("#SKDWNI#skpwni/3671/14112025/0021#pindah tugas kerja")
    assert parsed == DocumentRequest(
        doc_type=DocType.SKDWNI,
        no_skpwni="SKPWNI/3671/14112025/0021",
        keperluan="PINDAH TUGAS KERJA",
    )


def test_akta_kelahiran() -> None:
    parsed = request(f"#AKTA#{NO_KK}#Muhammad Rafa#05-11-2025#Sentul#Balaraja")
    assert parsed == DocumentRequest(
        doc_type=DocType.AKTA_KELAHIRAN,
        no_kk=NO_KK,
        nama_anak="MUHAMMAD RAFA",
        tanggal_lahir=date(2025, 11, 5),
        desa="SENTUL",
        kecamatan_code="360301",
        kecamatan_name="Balaraja",
    )


def test_akta_kematian_keeps_the_deceased_in_nik_and_nama() -> None:
    parsed = request(
        f"#AKTAMATI#3603011203450001#{NO_KK}#H. Abdul Rohim#02-11-2025#Sentul#Balaraja"
    )
    assert parsed == DocumentRequest(
        doc_type=DocType.AKTA_KEMATIAN,
        nik="3603011203450001",
        no_kk=NO_KK,
        nama="H. ABDUL ROHIM",
        tanggal_meninggal=date(2025, 11, 2),
        desa="SENTUL",
        kecamatan_code="360301",
        kecamatan_name="Balaraja",
    )


def test_validasi_nik() -> None:
    parsed = request(f"#VALIDASI#{NIK}#{NO_KK}#Siti Aminah#Pendaftaran BPJS")
    assert parsed == DocumentRequest(
        doc_type=DocType.VALIDASI_NIK,
        nik=NIK,
        no_kk=NO_KK,
        nama="SITI AMINAH",
        keperluan="PENDAFTARAN BPJS",
    )


@pytest.mark.parametrize("spec", CATALOGUE.values(), ids=lambda spec: spec.keyword)
def test_examples_round_trip_as_json(spec: object) -> None:
    parsed = parse(document(DocType(spec.keyword)).example)  # type: ignore[attr-defined]
    assert isinstance(parsed, DocumentRequest)
    assert PARSED_MESSAGE.validate_json(PARSED_MESSAGE.dump_json(parsed)) == parsed


# -- every field, invalid ------------------------------------------------------------------

INVALID_FIELDS = [
    # (doc, column, value, field, part of the message)
    (DocType.KTP, 0, "36030157089900", "NIK", "NIK harus 16 angka, yang Anda kirim 14 angka."),
    (DocType.KTP, 0, "3603013102990001", "NIK", "tidak ada di kalender"),
    (DocType.KTP, 0, "9999015708990001", "NIK", "bukan kode kecamatan"),
    (DocType.KTP, 0, "3603012411260001", "NIK", "belum terjadi"),
    (DocType.KTP, 1, "360301200118", "NO_KK", "No. KK harus 16 angka, yang Anda kirim 12 angka."),
    (DocType.KTP, 1, "3603015708990001", "NO_KK", "angka ke-7 dan ke-8 adalah tanggal (01-31)"),
    (DocType.KTP, 2, "S", "NAMA", "paling sedikit 2 huruf"),
    (DocType.KTP, 2, "SITI 123", "NAMA", "tidak boleh berisi angka"),
    (DocType.KTP, 2, "<b>SITI</b>", "NAMA", "kode HTML"),
    (DocType.KTP, 2, "SITI 😊", "NAMA", "emoji"),
    (DocType.KTP, 2, "SITI'); DROP TABLE x;--", "NAMA", "hapus: ) ;"),
    (DocType.KTP, 2, "SITI' OR 'A'--", "NAMA", "berturut-turut"),
    (DocType.KTP, 2, "A" * 101, "NAMA", "paling banyak 100 karakter, yang Anda kirim 101"),
    (DocType.KTP, 2, "-SITI", "NAMA", "diawali huruf"),
    (DocType.KTP, 3, "X", "DESA", "paling sedikit 2 huruf"),
    (DocType.KTP, 3, "SENTUL<br>", "DESA", "kode HTML"),
    (DocType.KTP, 3, "S" * 61, "DESA", "paling banyak 60"),
    (DocType.KTP, 4, "BALARAJAAX", "KECAMATAN", "Maksud Anda: Balaraja?"),
    (DocType.KTP, 4, "CILEDUG", "KECAMATAN", "Kota Tangerang"),
    (DocType.KTP, 4, "CISAKA", "KECAMATAN", "lebih dari satu"),
    (
        DocType.KTP,
        5,
        "GANTI",
        "PEMULA/HILANG/RUSAK",
        "Pilih salah satu: PEMULA, HILANG atau RUSAK.",
    ),
    (DocType.KTP, 5, "HILANG RUSAK", "PEMULA/HILANG/RUSAK", "hanya boleh satu"),
    (DocType.KIA, 0, "123", "NIK", "NIK harus 16 angka, yang Anda kirim 3 angka."),
    (DocType.KK, 1, "AHMAD 😀", "NAMA KEPALA KELUARGA", "emoji"),
    (DocType.SKPWNI, 3, "JL", "ALAMAT_PINDAH", "paling sedikit 5"),
    (DocType.SKPWNI, 3, "JL. " + "A" * 200, "ALAMAT_PINDAH", "paling banyak 200"),
    (DocType.SKPWNI, 3, "<script>alert(1)</script>", "ALAMAT_PINDAH", "kode HTML"),
    (DocType.SKPWNI, 3, "JL. MAWAR 🏠", "ALAMAT_PINDAH", "emoji"),
    (DocType.SKPWNI, 3, "JL. MAWAR {5}", "ALAMAT_PINDAH", "hapus: { }"),
    (DocType.SKDWNI, 0, "1234", "NO_SKPWNI", "5 sampai 40 karakter, yang Anda kirim 4"),
    (DocType.SKDWNI, 0, "1" * 41, "NO_SKPWNI", "5 sampai 40 karakter, yang Anda kirim 41"),
    (DocType.SKDWNI, 0, "SKPWNI_3671", "NO_SKPWNI", "garis miring"),
    (DocType.SKDWNI, 0, "SKPWNI/ABC", "NO_SKPWNI", "harus memuat angka"),
    (DocType.SKDWNI, 1, "OK", "KEPERLUAN", "paling sedikit 3"),
    (DocType.SKDWNI, 1, "K" * 201, "KEPERLUAN", "paling banyak 200"),
    (DocType.AKTA_KELAHIRAN, 1, "RAFA 2", "NAMA_ANAK", "tidak boleh berisi angka"),
    (DocType.AKTA_KELAHIRAN, 2, "31-02-2025", "TANGGAL_LAHIR", "tidak ada di kalender"),
    (DocType.AKTA_KELAHIRAN, 2, "24-11-2026", "TANGGAL_LAHIR", "belum terjadi: 24-11-2026"),
    (DocType.AKTA_KELAHIRAN, 2, "05-11-25", "TANGGAL_LAHIR", "4 angka"),
    (DocType.AKTA_KELAHIRAN, 2, "kemarin", "TANGGAL_LAHIR", "tanggal-bulan-tahun"),
    (DocType.AKTA_KELAHIRAN, 2, "05-13-2025", "TANGGAL_LAHIR", "tidak ada di kalender"),
    (DocType.AKTA_KELAHIRAN, 2, "05-11-1850", "TANGGAL_LAHIR", "tidak masuk akal"),
    (DocType.AKTA_KEMATIAN, 0, "123", "NIK_ALMARHUM", "NIK almarhum harus 16 angka"),
    (DocType.AKTA_KEMATIAN, 2, "ALM. <i>", "NAMA_ALMARHUM", "kode HTML"),
    (DocType.AKTA_KEMATIAN, 3, "30-02-2025", "TANGGAL_MENINGGAL", "tidak ada di kalender"),
    (DocType.AKTA_KEMATIAN, 3, "01-01-1940", "TANGGAL_MENINGGAL", "lebih awal dari tanggal lahir"),
    (DocType.VALIDASI_NIK, 3, "🙏🙏", "KEPERLUAN", "emoji"),
]


@pytest.mark.parametrize(
    ("doc_type", "index", "value", "field", "message"),
    INVALID_FIELDS,
    ids=[f"{row[0].value}-{row[3]}-{n}" for n, row in enumerate(INVALID_FIELDS)],
)
def test_each_invalid_field_is_named_with_what_is_wrong(
    doc_type: DocType, index: int, value: str, field: str, message: str
) -> None:
    parsed = invalid(with_column(doc_type, index, value))
    assert parsed.doc_type is doc_type
    assert parsed.command is None
    assert [problem.field for problem in parsed.problems] == [field]
    assert message in parsed.problems[0].message


@pytest.mark.parametrize("spec", CATALOGUE.values(), ids=lambda spec: spec.keyword)
def test_each_column_left_blank_is_named(spec: object) -> None:
    example = document(DocType(spec.keyword)).example  # type: ignore[attr-defined]
    columns = example.strip("#").split("#")
    for index in range(1, len(columns) - 1):
        blanked = "#" + "#".join([*columns[:index], " ", *columns[index + 1 :]])
        problem = only_problem(blanked)
        label = document(DocType(columns[0])).fields[index - 1].value
        assert problem == Problem(field=label, message=f"{label} belum diisi.")
    # A blank last column cannot be told from a trailing '#': the count is reported.
    problem = only_problem("#" + "#".join([*columns[:-1], " "]))
    assert problem.message.startswith("Jumlah kolom kurang")


def test_all_problems_are_reported_not_only_the_first() -> None:
    found = invalid(f"#KTP#36030157089900#{NO_KK}#SITI 99#SENTUL#BALARAJAAX#GANTI?!").problems
    assert [problem.field for problem in found] == [
        "NIK",
        "NAMA",
        "KECAMATAN",
        "PEMULA/HILANG/RUSAK",
    ]
    assert found[0].message == "NIK harus 16 angka, yang Anda kirim 14 angka."
    assert found[2].message == (
        "Kecamatan 'BALARAJAAX' tidak ditemukan di Kab. Tangerang. Maksud Anda: Balaraja?"
    )


def test_too_few_columns() -> None:
    assert only_problem(f"#KTP#{NIK}#{NO_KK}#SITI AMINAH#SENTUL") == Problem(
        field="FORMAT", message="Jumlah kolom kurang: format KTP punya 7 kolom, Anda mengirim 5."
    )


def test_too_many_columns() -> None:
    problem = only_problem(KTP + "TERIMA KASIH#")
    assert problem.field == "FORMAT"
    assert problem.message.startswith(
        "Jumlah kolom lebih: format KTP punya 7 kolom, Anda mengirim 8."
    )


def test_request_typed_without_separators() -> None:
    parsed = invalid(f"KTP {NIK} {NO_KK} SITI AMINAH SENTUL BALARAJA PEMULA")
    assert parsed.doc_type is DocType.KTP
    assert parsed.problems[0].field == "FORMAT"
    assert "#" in parsed.problems[0].message


# -- jurisdiction --------------------------------------------------------------------------


def test_an_applicant_who_moved_in_keeps_a_nik_from_elsewhere() -> None:
    """A NIK keeps the region where it was first issued; the local family card decides."""
    born_in_jakarta = "3171015708990001"  # Gambir, Kota Jakarta Pusat
    for doc_type in (DocType.KTP, DocType.KIA, DocType.SKPWNI, DocType.VALIDASI_NIK):
        parsed = request(with_column(doc_type, 0, born_in_jakarta))
        assert parsed.nik == born_in_jakarta


def test_the_deceaseds_nik_may_be_from_elsewhere() -> None:
    parsed = request(with_column(DocType.AKTA_KEMATIAN, 0, "3171011203450001"))
    assert parsed.nik == "3171011203450001"


def test_the_family_card_must_be_in_the_area() -> None:
    outside_kk = "3171012001180003"
    for doc_type in (
        DocType.KK,
        DocType.KTP,
        DocType.KIA,
        DocType.SKPWNI,
        DocType.VALIDASI_NIK,
        DocType.AKTA_KELAHIRAN,
        DocType.AKTA_KEMATIAN,
    ):
        column = document(doc_type).fields.index(document(DocType.KK).fields[0])
        problem = only_problem(with_column(doc_type, column, outside_kk))
        assert problem.field == "NO_KK"
        assert "di luar Kab. Tangerang" in problem.message


def test_kecamatan_of_another_regency_is_refused() -> None:
    problem = only_problem(KTP.replace("BALARAJA", "Serpong"))
    assert problem.field == "KECAMATAN"
    assert "Kota Tangerang Selatan" in problem.message


# -- tolerance -------------------------------------------------------------------------------

CANONICAL = request(KTP)


@pytest.mark.parametrize(
    "typed",
    [
        KTP.lower(),
        KTP.removeprefix("#"),
        KTP.removesuffix("#"),
        KTP.strip("#"),
        " # KTP # " + " # ".join(KTP.strip("#").split("#")[1:]) + " # ",
        KTP.replace("#", "#\n"),
        KTP.replace("SITI AMINAH", "SITI\nAMINAH"),
        KTP.replace("SITI AMINAH", "  siti    aminah "),
        KTP.replace("#", "＃"),  # full-width number sign  # noqa: RUF001
        KTP.replace("#KTP#", "#ktp-el#"),
        KTP.replace("#KTP#", "#KTP "),  # first column after a space
        f"*{KTP}*",  # WhatsApp bold
        f"_{KTP}_",
        KTP.replace("\n", "\r\n"),
        KTP.replace(NIK, "3603 0157 0899 0001"),
        KTP.replace(NIK, "NIK: " + NIK),
        KTP.replace(NIK, "NIKS " + NIK),
        KTP.replace(NO_KK, "No. KK: " + NO_KK),
        KTP.replace(NO_KK, "KK" + NO_KK),
        KTP.replace("SITI AMINAH", "Nama: Siti Aminah"),
        KTP.replace("SENTUL", "Desa Sentul"),
        KTP.replace("SENTUL", "ds. sentul"),
        KTP.replace("BALARAJA", "Kec. Balaraja"),
        KTP.replace("BALARAJA", "kecamatan balarajaa"),
        KTP.replace("PEMULA", "pemulaa"),
        KTP.replace("PEMULA", "Baru"),
        KTP.replace("PEMULA", "PEMULA/HILANG/RUSAK: PEMULA"),
        "Selamat pagi min\n" + KTP,
        "Assalamualaikum, saya mau buat KTP " + KTP,
        "Halo\n" + KTP.removeprefix("#"),
        "#Halo min" + KTP,
        KTP.replace(f"#{NO_KK}#", f"##{NO_KK}#"),  # a doubled separator, nothing missing
        "\u200b" + KTP + "\ufeff",
        # As docs/FORMATS.md shows it.
        "#KTP#NIK: 3603 0157 0899 0001#No. KK: 3603012001180003#Nama: Siti\n"
        "Aminah#Desa Sentul#Kec. Balarajaa#pemulaa#",
        "Halo min #KTP#3603015708990001#3603012001180003#SITI AMINAH#SENTUL#BALARAJA#PEMULA",
        KTP.translate({ord(c): ord(c) + 0xFEE0 for c in "#0123456789KTP"}),
    ],
)
def test_what_people_really_type(typed: str) -> None:
    assert parse(typed) == CANONICAL


def test_doubled_separator_that_would_shift_columns_is_a_blank_column() -> None:
    # Six columns counting the empty one: the NO_KK was left out, not a slip of the finger.
    assert only_problem(f"#KTP#{NIK}##SITI AMINAH#SENTUL#BALARAJA#PEMULA#") == Problem(
        field="NO_KK", message="NO_KK belum diisi."
    )


def test_doubled_separators_with_a_column_missing_are_not_guessed() -> None:
    problem = only_problem(f"#KTP#{NIK}####SITI AMINAH#SENTUL#BALARAJA#PEMULA#")
    assert problem.message == "Jumlah kolom kurang: format KTP punya 7 kolom, Anda mengirim 6."


def test_published_misspellings() -> None:
    assert request("#SKDWN#SKPWNI/3671/14112025/0021#PINDAH KERJA").doc_type is DocType.SKDWNI
    parsed = request("#SKDWN#NO-SKPWNI: SKPWNI/3671/14112025/0021#PINDAH KERJA")
    assert parsed.no_skpwni == "SKPWNI/3671/14112025/0021"
    assert request(f"#SKPWNI#NIKS:{NIK}#{NO_KK}#SITI#JL. MAWAR 5").nik == NIK


def test_the_format_sent_back_unfilled_says_so() -> None:
    found = problems("#SKPWNI#NIKS#NO_KK#NAMA#ALAMAT PINDAH")
    assert set(found) == {"NIK", "NO_KK", "NAMA", "ALAMAT_PINDAH"}
    assert found["NIK"] == (
        "Kolom NIK masih berisi tulisan 'NIKS' dari format; ganti dengan isian Anda."
    )
    assert set(problems("#SKDWN#NO-SKPWNI#KEPERLUAN")) == {"NO_SKPWNI", "KEPERLUAN"}
    reason = problems(f"#KTP#{NIK}#{NO_KK}#SITI#SENTUL#BALARAJA#PEMULA/HILANG/RUSAK#")
    assert reason == {"PEMULA/HILANG/RUSAK": "Pilih salah satu: PEMULA, HILANG atau RUSAK."}


def test_keyword_spellings() -> None:
    example = document(DocType.AKTA_KELAHIRAN).example
    for keyword in ("AKTA KELAHIRAN", "aktalahir", "akte"):
        assert request(example.replace("#AKTA#", f"#{keyword}#")).doc_type is (
            DocType.AKTA_KELAHIRAN
        )
    example = document(DocType.AKTA_KEMATIAN).example
    for keyword in ("AKTA MATI", "AKTAKEMATIAN", "akta kematian"):
        assert request(example.replace("#AKTAMATI#", f"#{keyword}#")).doc_type is (
            DocType.AKTA_KEMATIAN
        )
    example = document(DocType.VALIDASI_NIK).example
    assert request(example.replace("#VALIDASI#", "#validasi nik#")).doc_type is (
        DocType.VALIDASI_NIK
    )


def test_names_are_cleaned() -> None:
    assert request(KTP.replace("SITI AMINAH", "ma\u2019ruf amin")).nama == "MA'RUF AMIN"
    assert request(KTP.replace("SITI AMINAH", "José  Rizal")).nama == "JOSE RIZAL"
    assert request(KTP.replace("SITI AMINAH", "Siti-Aminah binti H. Umar")).nama == (
        "SITI-AMINAH BINTI H. UMAR"
    )
    assert request(KTP.replace("SENTUL", "Sumbersari 2")).desa == "SUMBERSARI 2"


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("05-11-2025", date(2025, 11, 5)),
        ("5/11/2025", date(2025, 11, 5)),
        ("05.11.2025", date(2025, 11, 5)),
        ("05 - 11 - 2025", date(2025, 11, 5)),
        ("5 November 2025", date(2025, 11, 5)),
        ("5 Nopember 2025", date(2025, 11, 5)),
        ("17 agt 2025", date(2025, 8, 17)),
        ("2025-11-05", date(2025, 11, 5)),
        ("Tgl lahir: 05-11-2025", date(2025, 11, 5)),
        ("29-02-2024", date(2024, 2, 29)),
    ],
)
def test_dates(typed: str, expected: date) -> None:
    parsed = request(with_column(DocType.AKTA_KELAHIRAN, 2, typed))
    assert parsed.tanggal_lahir == expected


def test_leap_day_of_a_common_year() -> None:
    problem = only_problem(with_column(DocType.AKTA_KELAHIRAN, 2, "29-02-2025"))
    assert problem.field == "TANGGAL_LAHIR"


@pytest.mark.parametrize(
    ("typed", "reason"),
    [
        ("pemula", KtpReason.PEMULA),
        ("PEMULAA", KtpReason.PEMULA),
        ("pmula", KtpReason.PEMULA),
        ("baru", KtpReason.PEMULA),
        ("hilang", KtpReason.HILANG),
        ("HILANK", KtpReason.HILANG),
        ("kehilangan", KtpReason.HILANG),
        ("Rusak", KtpReason.RUSAK),
        ("RUSAAK", KtpReason.RUSAK),
    ],
)
def test_ktp_reasons(typed: str, reason: KtpReason) -> None:
    assert request(KTP.replace("PEMULA", typed)).reason is reason


def test_no_skpwni_spaces_are_dropped_and_case_raised() -> None:
    parsed = request("#SKDWNI# skpwni / 3671 / 14112025 / 0021 #PINDAH KERJA")
    assert parsed.no_skpwni == "SKPWNI/3671/14112025/0021"


# -- commands --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "typed",
    [
        "#STATUS#KTP-7Q2M9XAB",
        "#status#ktp-7q2m9xab",
        "#CEK#KTP-7Q2M9XAB#",
        "STATUS#KTP-7Q2M9XAB",
        " # Status # KTP-7Q2M9XAB ",
        "#STATUS KTP-7Q2M9XAB",
        "#CEK STATUS#KTP-7Q2M9XAB",
        "status ktp-7q2m9xab",
        "cek KTP-7Q2M9XAB",
        "#STATUS#Nomor tiket: KTP-7Q2M9XAB",
        "#STATUS#KTP 7Q2M9XAB",
        "#STATSU#KTP-7Q2M9XAB",  # a swap in a long keyword
    ],
)
def test_status(typed: str) -> None:
    assert parse(typed) == StatusQuery(ticket="KTP-7Q2M9XAB")


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("#STATUS#", "belum diisi"),
        ("#STATUS#ABC", "6 sampai 24"),
        ("#CEK#KTP_7Q2M9XAB", "6 sampai 24"),
        ("#STATUS#" + "A" * 25, "6 sampai 24"),
    ],
)
def test_status_with_a_bad_ticket(typed: str, message: str) -> None:
    parsed = invalid(typed)
    assert parsed.command is Command.STATUS
    assert parsed.doc_type is None
    assert parsed.problems[0].field == "NOMOR_TIKET"
    assert message in parsed.problems[0].message


def test_resubmission_and_cancellation() -> None:
    assert parse("#LENGKAPI#KTP-7Q2M9XAB") == Resubmission(ticket="KTP-7Q2M9XAB")
    assert parse("#lengkapi#ktp-7q2m9xab#ini fotonya") == Resubmission(ticket="KTP-7Q2M9XAB")
    assert parse("#BATAL#KTP-7Q2M9XAB") == Cancellation(ticket="KTP-7Q2M9XAB")
    assert invalid("#BATAL#").command is Command.BATAL
    assert invalid("#LENGKAPI#?").command is Command.LENGKAPI


def test_chat_that_merely_starts_like_a_command_is_not_one() -> None:
    assert parse("batal ya min") == Unrecognised()
    assert parse("status saya bagaimana") == Unrecognised()
    assert parse("status permohonan") == Unrecognised()
    assert invalid("#STATUS#saya bagaimana").command is Command.STATUS


@pytest.mark.parametrize(
    ("typed", "doc_type"),
    [
        ("#INFO#KTP", DocType.KTP),
        ("#info#kia", DocType.KIA),
        ("#INFO#AKTA KELAHIRAN", DocType.AKTA_KELAHIRAN),
        ("#INFO#SKDWN", DocType.SKDWNI),
        ("#INFO KK", DocType.KK),
        ("INFO#AKTA MATI", DocType.AKTA_KEMATIAN),
        ("info validasi nik", DocType.VALIDASI_NIK),
        ("#SYARAT#KIA", DocType.KIA),
        ("#INFO#SIM", None),
        ("#INFO#???", None),
        ("#KTP", DocType.KTP),  # the keyword alone asks about the document
        ("#KTP#", DocType.KTP),
        ("ktp", DocType.KTP),
        ("KTP saya hilang, bagaimana?", DocType.KTP),
    ],
)
def test_info(typed: str, doc_type: DocType | None) -> None:
    assert parse(typed) == InfoQuery(doc_type=doc_type)


MENU_COMMANDS = ("#MENU", "#MENU#", "MENU", "menu", "#INFO", "#BANTUAN")


@pytest.mark.parametrize(
    "typed",
    [
        *MENU_COMMANDS,
        "halo",
        "Hallo",
        "haloooo min",
        "Hai",
        "hi",
        "HI!",
        "Assalamualaikum",
        "assalamu'alaikum wr. wb.",
        "Asslamualaikum",
        "selamat pagi",
        "Selamat siang, Pak",
        "SELAMAT SORE",
        "selamat malam...",
        "permisi",
        "p",
        "P",
        "ping",
        "punten",
        "#halo",
        "Halo, mau tanya",
    ],
)
def test_menu(typed: str) -> None:
    # A greeting (which starts guided mode) is told from the command (the menu only).
    assert parse(typed) == MenuRequest(greeting=typed not in MENU_COMMANDS)


def test_complaint() -> None:
    parsed = parse("#ADUAN#Sudah 5 hari KTP-7Q2M9XAB belum jadi 😡")
    assert parsed == Complaint(
        text="Sudah 5 hari KTP-7Q2M9XAB belum jadi 😡", ticket="KTP-7Q2M9XAB"
    )


def test_complaint_keeps_case_lines_and_hashes() -> None:
    parsed = parse("#aduan#  Petugas   tidak membalas.\n\n\nTiket: kia-ab12cd34 #tolong")
    assert parsed == Complaint(
        text="Petugas tidak membalas.\nTiket: kia-ab12cd34 #tolong", ticket="KIA-AB12CD34"
    )


def test_complaint_without_ticket_does_not_mistake_words_or_dates() -> None:
    parsed = parse("#PENGADUAN#Antre dari 24-11-2026 sampai sore, COVID-19 protokol tidak ada")
    assert isinstance(parsed, Complaint)
    assert parsed.ticket is None


def test_complaint_length() -> None:
    assert invalid("#ADUAN#ok").problems == (
        Problem(
            field="ISI_ADUAN", message="Isi pengaduan terlalu pendek: tulis paling sedikit 5 huruf."
        ),
    )
    too_long = invalid("#ADUAN#" + "lambat " * 200)
    assert too_long.command is Command.ADUAN
    assert "paling banyak 1000" in too_long.problems[0].message
    assert isinstance(parse("#ADUAN#" + "x" * 1000), Complaint)


@pytest.mark.parametrize(
    "typed",
    [
        "",
        "   ",
        "#",
        "###",
        "terima kasih",
        "ok",
        "#SIM#123",
        "Bagaimana cara membuat paspor?",
        "\x00\x01\x02",
        "<script>alert(1)</script>",
        "'; DROP TABLE events; --",
    ],
)
def test_unrecognised(typed: str) -> None:
    assert parse(typed) == Unrecognised()


# -- models ----------------------------------------------------------------------------------


def test_request_repr_masks_personal_data() -> None:
    text = repr(CANONICAL) + str(CANONICAL)
    assert NIK not in text
    assert NO_KK not in text
    assert "SITI AMINAH" not in text
    assert "3603********0001" in text
    assert CANONICAL.model_dump()["nik"] == NIK  # events inside the system keep the value


def test_request_must_have_exactly_its_formats_columns() -> None:
    with pytest.raises(ValueError, match="missing"):
        DocumentRequest(doc_type=DocType.KK, no_kk=NO_KK)
    with pytest.raises(ValueError, match="not part of the format"):
        DocumentRequest(doc_type=DocType.SKDWNI, no_skpwni="SKPWNI/1", keperluan="KERJA", nik=NIK)


def test_models_are_frozen() -> None:
    with pytest.raises(ValueError, match="frozen"):
        CANONICAL.nama = "X"  # type: ignore[misc]


def test_every_kind_serialises_and_comes_back() -> None:
    samples: list[ParsedMessage] = [
        CANONICAL,
        StatusQuery(ticket="KTP-7Q2M9XAB"),
        InfoQuery(doc_type=None),
        MenuRequest(),
        Resubmission(ticket="KTP-7Q2M9XAB"),
        Cancellation(ticket="KTP-7Q2M9XAB"),
        Complaint(text="lambat sekali", ticket=None),
        invalid("#STATUS#"),
        invalid(KTP.replace(NIK, "1")),
        Unrecognised(),
    ]
    for sample in samples:
        assert PARSED_MESSAGE.validate_json(PARSED_MESSAGE.dump_json(sample)) == sample


def test_huge_input_is_bounded() -> None:
    assert isinstance(parse("#ADUAN#" + "a" * (MAX_INPUT_CHARS * 10)), Invalid)
    assert isinstance(parse(KTP + "x" * (MAX_INPUT_CHARS * 10)), Invalid)


# -- properties ----------------------------------------------------------------------------

_pieces = st.one_of(
    st.sampled_from(
        [
            "KTP",
            "KK",
            "KIA",
            "SKPWNI",
            "SKDWN",
            "AKTA",
            "AKTA MATI",
            "VALIDASI",
            "STATUS",
            "CEK",
            "INFO",
            "MENU",
            "LENGKAPI",
            "BATAL",
            "ADUAN",
            NIK,
            NO_KK,
            "NIKS",
            "NO-SKPWNI",
            "BALARAJA",
            "Kec. Tigaraksaa",
            "PEMULA",
            "05-11-2025",
            "KTP-7Q2M9XAB",
            "",
            " ",
            "\n",
            "<b>",
            "😀",
            "\ud800",
            "\x00",
        ]
    ),
    st.text(max_size=30),
)
_messages = st.one_of(
    st.text(),
    st.text(alphabet="#KTPSAIN0123456789 \n-/.'", max_size=200),
    st.lists(_pieces, max_size=10).map("#".join),
    st.lists(_pieces, max_size=10).map(lambda parts: "#" + "#".join(parts) + "#"),
    st.binary(max_size=200).map(lambda raw: raw.decode("latin-1")),
)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=_messages)
def test_no_input_crashes_the_parser(text: str) -> None:
    parsed = parse(text)
    assert isinstance(parsed, PARSED_TYPES)
    # Whatever it is, it can become an event.
    assert PARSED_MESSAGE.validate_json(PARSED_MESSAGE.dump_json(parsed)) == parsed
    if isinstance(parsed, Invalid):
        assert parsed.problems
        assert all(problem.message.strip() for problem in parsed.problems)


_NAMES = ["SITI", "AMINAH", "BUDI", "SANTOSO", "DEWI", "LESTARI", "H.", "MA'RUF", "NUR-AINI"]
_VILLAGES = ["SENTUL", "MARGASARI", "PASIR JAYA", "CIKUPA", "SUKAMULYA 2"]
_PURPOSES = ["PINDAH KERJA", "IKUT SUAMI", "PENDAFTARAN BPJS", "SEKOLAH ANAK"]
_ADDRESSES = ["JL. MAWAR NO. 5, BANDUNG", "RT 002/RW 004 KEL. SUKASARI", "PERUM INDAH BLOK C-7"]


def _words(vocabulary: list[str]) -> st.SearchStrategy[str]:
    first = st.sampled_from([word for word in vocabulary if word[0].isalpha() and "." not in word])
    more = st.lists(st.sampled_from(vocabulary), max_size=2)
    return st.tuples(first, more).map(lambda parts: " ".join([parts[0], *parts[1]]))


@st.composite
def _identity_number(draw: st.DrawFn, *, nik: bool, earliest: date = date(1930, 1, 1)) -> str:
    kecamatan = draw(st.sampled_from(AREA.kecamatan()))
    when = draw(st.dates(min_value=earliest, max_value=TODAY))
    day = when.day + (40 if nik and draw(st.booleans()) else 0)
    serial = draw(st.integers(min_value=1, max_value=9999))
    return f"{kecamatan.code}{day:02d}{when:%m%y}{serial:04d}"


_DATE_TEXT = st.dates(min_value=date(1990, 1, 1), max_value=TODAY).map(
    lambda day: f"{day:%d-%m-%Y}"
)
_COLUMN_VALUES = {
    "NIK": _identity_number(nik=True),
    "NIK_ALMARHUM": _identity_number(nik=True, earliest=date(1930, 1, 1)).filter(
        lambda number: int(number[10:12]) <= 89 and int(number[10:12]) >= 30
    ),
    "NO_KK": _identity_number(nik=False, earliest=date(2000, 1, 1)),
    "NAMA": _words(_NAMES),
    "NAMA KEPALA KELUARGA": _words(_NAMES),
    "NAMA_ANAK": _words(_NAMES),
    "NAMA_ALMARHUM": _words(_NAMES),
    "DESA": st.sampled_from(_VILLAGES),
    "KECAMATAN": st.sampled_from([k.name for k in AREA.kecamatan()]),
    "PEMULA/HILANG/RUSAK": st.sampled_from([reason.value for reason in KtpReason]),
    "ALAMAT_PINDAH": st.sampled_from(_ADDRESSES),
    "NO_SKPWNI": st.sampled_from(["SKPWNI/3671/14112025/0021", "474.2/123/DKCS-2025"]),
    "KEPERLUAN": st.sampled_from(_PURPOSES),
    "TANGGAL_LAHIR": _DATE_TEXT,
    "TANGGAL_MENINGGAL": _DATE_TEXT,
}


@st.composite
def _valid_request(draw: st.DrawFn) -> str:
    spec = draw(st.sampled_from(list(CATALOGUE.values())))
    columns = [draw(_COLUMN_VALUES[field.value]) for field in spec.fields]
    return "#" + "#".join([spec.keyword, *columns])


@st.composite
def _as_typed(draw: st.DrawFn, canonical: str) -> str:
    """``canonical`` with random casing, spaces around '#', leading/trailing '#' or not."""
    cased = "".join(
        char.swapcase() if draw(st.booleans()) else char for char in canonical.strip("#")
    )
    space = st.sampled_from(["", " ", "  ", "\n", " \n "])
    columns = cased.split("#")
    text = "#".join(draw(space) + column + draw(space) for column in columns)
    if draw(st.booleans()):
        text = "#" + text
    if draw(st.booleans()):
        text += "#"
    return text


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_casing_spaces_and_edge_separators_do_not_change_a_request(data: st.DataObject) -> None:
    canonical = data.draw(_valid_request())
    expected = parse(canonical)
    assert isinstance(expected, DocumentRequest), (canonical, expected)
    typed = data.draw(_as_typed(canonical))
    assert parse(typed) == expected, typed
