"""The document catalogue: one spec per document, coherent formats, examples that parse."""

from __future__ import annotations

import dataclasses
from datetime import date
from pathlib import Path

import pytest

from services.intake.domain.parser import DocumentRequest, parse_message
from shared.documents import CATALOGUE, DocType, DocumentSpec, KtpReason, by_keyword, document
from shared.identity import OfficeArea

FORMATS_DOC = Path(__file__).resolve().parents[2] / "docs" / "FORMATS.md"
TODAY = date(2026, 11, 23)
AREA = OfficeArea("3603")


def test_every_doc_type_has_exactly_one_spec() -> None:
    assert list(CATALOGUE) == list(DocType)
    for doc_type, spec in CATALOGUE.items():
        assert spec.doc_type is doc_type
        assert document(doc_type) is spec


def test_doc_type_values_are_the_keywords() -> None:
    assert DocType.AKTA_KELAHIRAN.value == "AKTA"
    assert DocType.AKTA_KEMATIAN.value == "AKTAMATI"
    assert DocType.VALIDASI_NIK.value == "VALIDASI"
    for spec in CATALOGUE.values():
        assert spec.keyword == spec.doc_type.value


@pytest.mark.parametrize("spec", CATALOGUE.values(), ids=lambda spec: spec.keyword)
def test_format_lists_the_keyword_and_the_fields_in_order(spec: DocumentSpec) -> None:
    expected = "#" + "#".join([spec.keyword, *spec.fields])
    assert spec.format.removesuffix("#") == expected


def test_published_formats_are_kept() -> None:
    assert document(DocType.KTP).format == (
        "#KTP#NIK#NO_KK#NAMA#DESA#KECAMATAN#PEMULA/HILANG/RUSAK#"
    )
    assert document(DocType.KK).format == "#KK#NO_KK#NAMA KEPALA KELUARGA#DESA#KECAMATAN"
    assert document(DocType.KIA).format == "#KIA#NIK#NO_KK#NAMA#DESA#KECAMATAN"
    assert document(DocType.SKPWNI).format == "#SKPWNI#NIK#NO_KK#NAMA#ALAMAT_PINDAH"
    assert document(DocType.SKDWNI).format == "#SKDWNI#NO_SKPWNI#KEPERLUAN"
    assert document(DocType.AKTA_KELAHIRAN).format == (
        "#AKTA#NO_KK#NAMA_ANAK#TANGGAL_LAHIR#DESA#KECAMATAN"
    )
    assert document(DocType.AKTA_KEMATIAN).format == (
        "#AKTAMATI#NIK_ALMARHUM#NO_KK#NAMA_ALMARHUM#TANGGAL_MENINGGAL#DESA#KECAMATAN"
    )
    assert document(DocType.VALIDASI_NIK).format == "#VALIDASI#NIK#NO_KK#NAMA#KEPERLUAN"


@pytest.mark.parametrize("spec", CATALOGUE.values(), ids=lambda spec: spec.keyword)
def test_every_example_parses_to_a_request_of_its_type(spec: DocumentSpec) -> None:
    parsed = parse_message(spec.example, area=AREA, today=TODAY)
    assert isinstance(parsed, DocumentRequest), parsed
    assert parsed.doc_type is spec.doc_type


@pytest.mark.parametrize("spec", CATALOGUE.values(), ids=lambda spec: spec.keyword)
def test_every_spec_is_described_for_citizens(spec: DocumentSpec) -> None:
    assert spec.name
    assert spec.requirements
    assert all(item.strip() for item in spec.requirements)
    assert spec.example.startswith("#" + spec.keyword + "#")


def test_promised_turnaround() -> None:
    assert document(DocType.KIA).turnaround_working_days == 14
    assert document(DocType.KIA).turnaround_text == "14 hari kerja"
    for doc_type in DocType:
        if doc_type is not DocType.KIA:
            assert document(doc_type).turnaround_working_days == 1
            assert document(doc_type).turnaround_text == "1 hari kerja"


def test_only_skpwni_is_sent_back_electronically() -> None:
    assert [spec.doc_type for spec in CATALOGUE.values() if spec.electronic] == [DocType.SKPWNI]


def test_requirements_from_the_field_studies() -> None:
    assert any("Kartu Keluarga" in item for item in document(DocType.KTP).requirements)
    kia = " ".join(document(DocType.KIA).requirements)
    assert "Akta kelahiran" in kia
    assert "kedua orang tua" in kia
    assert "foto" in kia
    akta = " ".join(document(DocType.AKTA_KELAHIRAN).requirements)
    assert "Surat Keterangan Kelahiran" in akta
    assert "KTP-el kedua orang tua" in akta
    assert "SKPWNI" in " ".join(document(DocType.SKDWNI).requirements)


def test_ktp_requirements_depend_on_the_reason() -> None:
    ktp = document(DocType.KTP)
    assert ktp.requirements_for(None) == ktp.requirements
    assert ktp.requirements_for(KtpReason.PEMULA) == ktp.requirements
    hilang = ktp.requirements_for(KtpReason.HILANG)
    assert hilang[: len(ktp.requirements)] == ktp.requirements
    assert any("kepolisian" in item for item in hilang)
    assert any("rusak" in item for item in ktp.requirements_for(KtpReason.RUSAK))
    # Other documents have no reason-specific papers.
    kk = document(DocType.KK)
    assert kk.requirements_for(KtpReason.HILANG) == kk.requirements


def test_catalogue_and_specs_cannot_be_changed() -> None:
    with pytest.raises(TypeError):
        CATALOGUE[DocType.KK] = document(DocType.KTP)  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        document(DocType.KK).keyword = "X"  # type: ignore[misc]
    with pytest.raises(TypeError):
        document(DocType.KTP).reason_requirements[KtpReason.PEMULA] = ("x",)  # type: ignore[index]


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("KTP", DocType.KTP),
        ("ktp", DocType.KTP),
        (" Kk ", DocType.KK),
        ("KIA", DocType.KIA),
        ("SKPWNI", DocType.SKPWNI),
        ("SKDWNI", DocType.SKDWNI),
        ("SKDWN", DocType.SKDWNI),
        ("skdwn", DocType.SKDWNI),
        ("AKTA", DocType.AKTA_KELAHIRAN),
        ("AKTA KELAHIRAN", DocType.AKTA_KELAHIRAN),
        ("akta_kelahiran", DocType.AKTA_KELAHIRAN),
        ("AKTALAHIR", DocType.AKTA_KELAHIRAN),
        ("akte", DocType.AKTA_KELAHIRAN),
        ("AKTAMATI", DocType.AKTA_KEMATIAN),
        ("AKTA MATI", DocType.AKTA_KEMATIAN),
        ("akta-mati", DocType.AKTA_KEMATIAN),
        ("AKTAKEMATIAN", DocType.AKTA_KEMATIAN),
        ("Akta Kematian", DocType.AKTA_KEMATIAN),
        ("VALIDASI", DocType.VALIDASI_NIK),
        ("VALIDASINIK", DocType.VALIDASI_NIK),
        ("validasi nik", DocType.VALIDASI_NIK),
        ("KTP-el", DocType.KTP),
        ("ＫＴＰ", DocType.KTP),  # full-width letters  # noqa: RUF001
    ],
)
def test_by_keyword_accepts_published_spellings(word: str, expected: DocType) -> None:
    assert by_keyword(word) is expected


@pytest.mark.parametrize("word", ["", "  ", "SIM", "PASPOR", "KTPP", "STATUS", "#"])
def test_by_keyword_unknown(word: str) -> None:
    assert by_keyword(word) is None


@pytest.mark.parametrize("spec", CATALOGUE.values(), ids=lambda spec: spec.keyword)
def test_the_formats_page_shows_the_catalogue(spec: DocumentSpec) -> None:
    page = FORMATS_DOC.read_text(encoding="utf-8")
    assert f"\n{spec.format}\n" in page
    assert f"\n{spec.example}\n" in page
    assert f"{spec.turnaround_text}" in page
