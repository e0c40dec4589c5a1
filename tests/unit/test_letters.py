"""Signed letters (SKPWNI with TTE): rendering any citizen input, PAdES signing, offline checks."""

from __future__ import annotations

import dataclasses
import re
import socket
import stat
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from io import BytesIO
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID
from fpdf import FPDF
from pyhanko.pdf_utils.reader import PdfFileReader

from services.issuance.adapters.letters import (
    DEVELOPMENT_KEY_FILE,
    DEVELOPMENT_SUBJECT,
    LetterContent,
    LetterSigner,
    render_letter,
    verify_letter,
)

OFFICE = "Dinas Kependudukan dan Pencatatan Sipil Kabupaten Tangerang"
NUMBER = "SKPWNI/3603/07122026/0001"
LETTER = LetterContent(
    document_number=NUMBER,
    doc_name="Surat Keterangan Pindah WNI (SKPWNI, pindah keluar)",
    ticket="ADM-2026-000123",
    issued_on=date(2026, 12, 7),
    office_name=OFFICE,
    fields=(
        ("Nama", "BUDI SANTOSO"),
        ("NIK", "3603281011850004"),
        ("Alamat asal", "JL. MELATI NO. 1 RT 001 RW 002 KEL. CIKUPA KEC. CIKUPA"),
        ("Alamat tujuan", "JL. MAWAR NO. 5 RT 003 RW 004 KEL. MENTENG KEC. MENTENG JAKARTA PUSAT"),
        ("Alasan pindah", "Pekerjaan"),
    ),
)
_SHOWN_STRING = re.compile(rb"\(((?:\\.|[^\\)])*)\)\s*Tj", re.DOTALL)
_ESCAPE = re.compile(rb"\\(.)", re.DOTALL)


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to reach the network (OCSP, CRL, AIA, timestamping) fails the test."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"letters must work offline, tried to connect: {args!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


@pytest.fixture
def dev_signer(tmp_path: Path) -> LetterSigner:
    return LetterSigner.development(tmp_path / "keys", OFFICE)


def shown_text(pdf: bytes) -> tuple[int, str]:
    """The page count and every string the pages draw, in drawing order, one per line."""
    pages = PdfFileReader(BytesIO(pdf)).root["/Pages"]
    lines: list[str] = []
    for page in pages["/Kids"]:
        stream: bytes = page.get_object()["/Contents"].data
        for shown in _SHOWN_STRING.findall(stream):
            lines.append(_ESCAPE.sub(rb"\1", shown).decode("latin-1"))
    return int(pages["/Count"]), "\n".join(lines)


def with_field(label: str, value: str) -> LetterContent:
    return dataclasses.replace(LETTER, fields=(*LETTER.fields, (label, value)))


def flip(data: bytes, at: int) -> bytes:
    changed = bytearray(data)
    changed[at] ^= 0x01
    return bytes(changed)


def test_letter_is_one_a4_page_in_indonesian() -> None:
    pages, text = shown_text(render_letter(LETTER))

    assert pages == 1
    assert f"Nomor: {NUMBER}" in text
    assert "Surat Keterangan Pindah WNI (SKPWNI, pindah keluar)" in text
    assert "Senin, 7 Desember 2026" in text
    assert "ADM-2026-000123" in text
    assert "3603281011850004" in text
    assert "ditandatangani secara elektronik" in text
    pages_node = PdfFileReader(BytesIO(render_letter(LETTER))).root["/Pages"]
    media_box = pages_node["/Kids"][0].get_object().get("/MediaBox") or pages_node["/MediaBox"]
    assert [round(float(v)) for v in media_box] == [0, 0, 595, 842]  # A4 in points


def test_rendering_is_reproducible() -> None:
    assert render_letter(LETTER) == render_letter(LETTER)


async def test_signed_letter_verifies(dev_signer: LetterSigner, offline: None) -> None:
    unsigned = render_letter(LETTER)

    signed = await dev_signer.sign(unsigned)
    check = await verify_letter(signed, dev_signer.certificate_pem)

    assert signed.startswith(unsigned), "the signature is an incremental update"
    assert check.valid
    assert check.intact
    assert check.pades
    assert check.covers_whole_document
    assert check.signer == DEVELOPMENT_SUBJECT


async def test_a_changed_byte_breaks_the_signature(dev_signer: LetterSigner, offline: None) -> None:
    signed = await dev_signer.sign(render_letter(LETTER))
    # The number in the document information is plain text inside the signed range:
    # turning ...0001 into ...0000 is exactly the forgery the signature must reveal.
    last_digit = signed.index(NUMBER.encode()) + len(NUMBER) - 1

    check = await verify_letter(flip(signed, last_digit), dev_signer.certificate_pem)

    assert not check.intact
    assert not check.valid


async def test_a_damaged_signature_is_a_verdict_not_an_error(
    dev_signer: LetterSigner, offline: None
) -> None:
    signed = await dev_signer.sign(render_letter(LETTER))
    # The first hex digit of the CMS blob: its outer DER tag no longer says SEQUENCE.
    cms_tag = signed.index(b"/Contents <") + len(b"/Contents <")

    check = await verify_letter(flip(signed, cms_tag), dev_signer.certificate_pem)

    assert not check.valid
    assert not check.intact


async def test_content_appended_after_signing_is_not_valid(
    dev_signer: LetterSigner, offline: None
) -> None:
    signed = await dev_signer.sign(render_letter(LETTER))

    check = await verify_letter(signed + b"\n% appended later\n", dev_signer.certificate_pem)

    assert check.intact
    assert not check.covers_whole_document
    assert not check.valid


async def test_a_signer_not_trusted_is_not_valid(
    dev_signer: LetterSigner, tmp_path: Path, offline: None
) -> None:
    stranger = LetterSigner.development(tmp_path / "elsewhere", "Kantor Lain")
    signed = await stranger.sign(render_letter(LETTER))

    check = await verify_letter(signed, dev_signer.certificate_pem)

    assert stranger.certificate_pem != dev_signer.certificate_pem
    assert check.intact
    assert not check.valid


async def test_an_unsigned_pdf_cannot_be_verified(dev_signer: LetterSigner) -> None:
    with pytest.raises(ValueError, match="no electronic signature"):
        await verify_letter(render_letter(LETTER), dev_signer.certificate_pem)


async def test_something_else_than_a_pdf_cannot_be_verified(dev_signer: LetterSigner) -> None:
    with pytest.raises(ValueError, match="not a readable PDF"):
        await verify_letter(b"<html>surat</html>", dev_signer.certificate_pem)


def test_development_key_is_created_once_and_reused(tmp_path: Path) -> None:
    directory = tmp_path / "state" / "keys"

    first = LetterSigner.development(directory, OFFICE)
    second = LetterSigner.development(directory, OFFICE)

    assert first.certificate_pem == second.certificate_pem
    key_file = directory / DEVELOPMENT_KEY_FILE
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert [path.name for path in directory.iterdir()] == [DEVELOPMENT_KEY_FILE]
    certificate = x509.load_pem_x509_certificate(first.certificate_pem)
    assert certificate.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == OFFICE
    usage = certificate.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature
    assert usage.content_commitment


def test_processes_starting_together_share_one_development_key(tmp_path: Path) -> None:
    directory = tmp_path / "keys"

    with ThreadPoolExecutor(max_workers=8) as pool:
        signers = list(pool.map(lambda _: LetterSigner.development(directory, OFFICE), range(8)))

    assert len({signer.certificate_pem for signer in signers}) == 1
    assert [path.name for path in directory.iterdir()] == [DEVELOPMENT_KEY_FILE]


async def test_office_key_from_password_protected_pkcs12(tmp_path: Path, offline: None) -> None:
    path = tmp_path / "tte.p12"
    path.write_bytes(office_pkcs12("TTE Kepala Dinas", b"rahasia-kantor"))

    signer = LetterSigner.from_pkcs12(path, b"rahasia-kantor")
    check = await verify_letter(await signer.sign(render_letter(LETTER)), signer.certificate_pem)

    assert check.valid
    assert check.signer == "TTE Kepala Dinas"
    with pytest.raises(ValueError, match="wrong password"):
        LetterSigner.from_pkcs12(path, b"salah")


HOSTILE = {
    "script": "<script>alert(1)</script>",
    "accents_apostrophe": "Ñoño O'Neil",
    "emoji": "Budi 👍🏽 Santoso 🇮🇩",
    "long_address": "JL. " + "KENANGA INDAH BLOK " * 31 + "NO. 5",
    "long_word": "X" * 600,
    "empty": "",
    "controls": "baris\nbaru\tdan\x00nol\u202edibalik",
    "other_scripts": "Łódź Ελλάδα 東京 ﬁle",
}


@pytest.mark.parametrize("value", HOSTILE.values(), ids=list(HOSTILE))
def test_any_citizen_input_renders_on_one_page(value: str) -> None:
    pages, text = shown_text(render_letter(with_field("Alamat tujuan", value)))

    assert pages == 1
    assert f"Nomor: {NUMBER}" in text
    assert "BUDI SANTOSO" in text
    assert "ditandatangani secara elektronik" in text


@pytest.mark.parametrize("value", HOSTILE.values(), ids=list(HOSTILE))
def test_any_text_anywhere_renders(value: str) -> None:
    content = LetterContent(
        document_number=f"{NUMBER} {value}",
        doc_name=value,
        ticket=value,
        issued_on=LETTER.issued_on,
        office_name=value,
        fields=((value, value), (value, value)),
    )

    _, text = shown_text(render_letter(content))

    assert NUMBER in text


def test_latin_text_survives_and_the_rest_is_folded() -> None:
    fields = (
        ("Nama", "Ñoño O\N{RIGHT SINGLE QUOTATION MARK}Neil"),
        ("Catatan", "<script>alert(1)</script>"),
        ("Kota", "Łódź"),
        ("Pesan", "Terima kasih 🙏"),
    )
    content = LetterContent(NUMBER, LETTER.doc_name, "T-1", LETTER.issued_on, OFFICE, fields)

    _, text = shown_text(render_letter(content))

    assert "Ñoño O'Neil" in text
    assert "<script>alert(1)</script>" in text
    assert "Lódz" in text
    assert "Terima kasih ?" in text


@pytest.mark.parametrize("value", [HOSTILE["long_address"], HOSTILE["long_word"]])
def test_long_values_wrap_inside_their_column(value: str) -> None:
    _, text = shown_text(render_letter(with_field("Alamat tujuan", value)))

    lines = [line for line in text.splitlines() if line in value]
    assert len(lines) > 3
    assert "".join(lines).replace(" ", "") == value.replace(" ", "")
    metrics = FPDF(format="A4")
    metrics.set_font("Helvetica", size=10)
    value_column = 0.68 * (210 - 2 * 20)
    assert max(metrics.get_string_width(line) for line in lines) <= value_column


def test_a_letter_needs_a_number() -> None:
    with pytest.raises(ValueError, match="document number"):
        LetterContent(" ", LETTER.doc_name, "T-1", LETTER.issued_on, OFFICE, ())


def office_pkcs12(common_name: str, password: bytes) -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, OFFICE),
        ]
    )
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(days=30))
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=True,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    return pkcs12.serialize_key_and_certificates(
        name=b"tte",
        key=key,
        cert=certificate,
        cas=None,
        encryption_algorithm=serialization.BestAvailableEncryption(password),
    )
