"""Letters the office sends back electronically, signed with its Tanda Tangan Elektronik (TTE).

The first such letter is the SKPWNI (Surat Keterangan Pindah WNI): a one-page A4 PDF in
Bahasa Indonesia, signed with a PAdES signature (``ETSI.CAdES.detached``) so any PDF reader,
and :func:`verify_letter`, can tell whether it was changed after signing.

Values come from what citizens typed, so they may hold any Unicode. The PDF uses the core
Helvetica font because fpdf2 ships no Unicode TrueType font and the office must not depend on
fonts installed on the host; core fonts only encode Latin-1, so text is folded into Latin-1
(accents are kept where Latin-1 has them, other letters lose their accents, what cannot be
folded becomes ``?``) instead of crashing the issuance.

Signing and verifying never go online: no timestamp authority, no OCSP or CRL fetching. The
office's own key comes from a PKCS#12 file (:meth:`LetterSigner.from_pkcs12`); development
and tests use a self-signed key kept next to the service's data
(:meth:`LetterSigner.development`), which no verifier outside the office trusts.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import unicodedata
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from io import BytesIO
from pathlib import Path
from typing import Final

from asn1crypto import x509 as asn1_x509  # type: ignore[import-untyped]  # no py.typed
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID
from fpdf import FPDF
from fpdf.enums import Align, XPos, YPos
from pyhanko.pdf_utils.incremental_writer import (
    IncrementalPdfFileWriter,
)
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.fields import SigSeedSubFilter, enumerate_sig_fields
from pyhanko.sign.signers import (
    PdfSignatureMetadata,
    PdfSigner,
    SimpleSigner,
)
from pyhanko.sign.validation import (
    EmbeddedPdfSignature,
    SignatureCoverageLevel,
    async_validate_pdf_signature,
)
from pyhanko_certvalidator import ValidationContext

from shared.calendar import format_tanggal

log = logging.getLogger(__name__)

SIGNATURE_FIELD: Final = "TTE"
SIGNATURE_REASON: Final = "Tanda Tangan Elektronik"
DEVELOPMENT_KEY_FILE: Final = "dev-signing.p12"
DEVELOPMENT_SUBJECT: Final = "adminduk development signing key (NOT VALID)"
DEVELOPMENT_VALIDITY: Final = timedelta(days=730)

_PADES_SUBFILTER: Final = "/ETSI.CAdES.detached"
_MARGIN_MM: Final = 20.0
_LABEL_SHARE: Final = 0.32
# Letters without a Latin-1 form that Unicode decomposition cannot reduce to one.
_FOLDS: Final = str.maketrans(
    {
        "\u2018": "'",
        "\u2019": "'",
        "\u201a": ",",
        "\u201b": "'",
        "\u2032": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u201e": '"',
        "\u2033": '"',
        "\u2010": "-",
        "\u2011": "-",
        "\u2012": "-",
        "\u2013": "-",
        "\u2014": "-",
        "\u2212": "-",
        "\u2026": "...",
        "\u2022": "-",
        "\u20ac": "EUR",
        "\u0141": "L",
        "\u0142": "l",
        "\u0110": "D",
        "\u0111": "d",
        "\u0152": "OE",
        "\u0153": "oe",
        "\u0131": "i",
    }
)


@dataclass(frozen=True, slots=True)
class LetterContent:
    """What a letter says: its number, the document, the citizen's data as label/value rows."""

    document_number: str
    doc_name: str
    ticket: str
    issued_on: date
    office_name: str
    fields: tuple[tuple[str, str], ...]

    def __post_init__(self) -> None:
        if not self.document_number.strip():
            raise ValueError("a letter needs a document number")


@dataclass(frozen=True, slots=True)
class LetterCheck:
    """What a verifier learns from a signed letter.

    ``valid`` is the only verdict to act on: the signature is intact, made by a trusted
    certificate, and covers every byte of the file (nothing was appended after signing).
    """

    intact: bool
    valid: bool
    signer: str
    covers_whole_document: bool
    pades: bool


def render_letter(content: LetterContent) -> bytes:
    """The letter as an unsigned A4 PDF; the same content always gives the same bytes."""
    pdf = FPDF(orientation="portrait", unit="mm", format="A4")
    pdf.set_margins(_MARGIN_MM, _MARGIN_MM, _MARGIN_MM)
    pdf.set_auto_page_break(auto=True, margin=_MARGIN_MM)
    # A fixed creation date (the issue date) makes the output, and so its digest, reproducible.
    pdf.set_creation_date(datetime.combine(content.issued_on, time(), tzinfo=UTC))
    pdf.set_title(_latin1(content.doc_name))
    pdf.set_subject(_latin1(content.document_number))
    pdf.set_author(_latin1(content.office_name))
    pdf.set_creator("adminduk")
    pdf.set_lang("id")
    pdf.add_page()
    width = pdf.epw

    pdf.set_font("Helvetica", style="B", size=12)
    _paragraph(pdf, content.office_name.upper(), align=Align.C, height=6)
    pdf.ln(1)
    pdf.set_line_width(0.6)
    pdf.line(pdf.l_margin, pdf.get_y(), pdf.l_margin + width, pdf.get_y())
    pdf.ln(7)

    pdf.set_font("Helvetica", style="BU", size=12)
    _paragraph(pdf, content.doc_name, align=Align.C, height=6)
    pdf.set_font("Helvetica", size=11)
    _paragraph(pdf, f"Nomor: {content.document_number}", align=Align.C, height=6)
    pdf.ln(6)

    _paragraph(pdf, "Dengan ini menerangkan data sebagai berikut:", align=Align.L, height=6)
    pdf.ln(2)
    pdf.set_font("Helvetica", size=10)
    with pdf.table(
        col_widths=(_LABEL_SHARE, 1 - _LABEL_SHARE),
        first_row_as_headings=False,
        text_align=(Align.L, Align.L),
        line_height=5,
        padding=1.2,
        width=width,
    ) as table:
        for label, value in content.fields:
            row = table.row()
            row.cell(_latin1(label))
            row.cell(_latin1(value))
    pdf.ln(6)

    pdf.set_font("Helvetica", size=11)
    _paragraph(pdf, f"Nomor tiket: {content.ticket}", align=Align.L, height=6)
    _paragraph(
        pdf, f"Diterbitkan pada: {format_tanggal(content.issued_on)}", align=Align.L, height=6
    )
    pdf.ln(8)

    pdf.set_font("Helvetica", style="I", size=9)
    _paragraph(
        pdf,
        "Dokumen ini ditandatangani secara elektronik (Tanda Tangan Elektronik) oleh "
        f"{content.office_name}, sehingga tidak memerlukan tanda tangan basah dan cap. "
        "Keaslian dokumen dapat diperiksa pada panel tanda tangan aplikasi pembaca PDF; "
        "setiap perubahan setelah penandatanganan membuat tanda tangan tidak sah.",
        align=Align.J,
        height=4.5,
    )
    return bytes(pdf.output())


class LetterSigner:
    """Signs letters with one key, as PAdES signatures in a field named ``TTE``."""

    def __init__(self, signer: SimpleSigner, location: str | None = None) -> None:
        if signer.signing_cert is None:
            raise ValueError("the signing key comes without its certificate")
        der: bytes = signer.signing_cert.dump()
        self._signer = signer
        self._certificate = x509.load_der_x509_certificate(der)
        self._location = location or _organization(self._certificate) or None

    @classmethod
    def from_pkcs12(
        cls, path: Path, password: bytes | None, *, location: str | None = None
    ) -> LetterSigner:
        """The office's own key and certificate (chain included) from a PKCS#12 file.

        The signature's location is ``location``, else the certificate's organization.
        """
        return cls(_load_pkcs12(path.read_bytes(), password, source=path), location)

    @classmethod
    def development(cls, directory: Path, office_name: str) -> LetterSigner:
        """A self-signed key for development, created once in ``directory`` and then reused.

        Several processes may start at once: each writes a complete candidate to a private
        temporary file and publishes it with a hard link, which fails if another process was
        first, so every process ends up signing with the one key on disk. Letters it signs
        are not valid for anyone outside the office; production uses :meth:`from_pkcs12`.
        """
        path = directory / DEVELOPMENT_KEY_FILE
        if not path.exists():
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            _publish_once(path, _development_pkcs12(office_name))
        return cls(_load_pkcs12(path.read_bytes(), None, source=path), office_name)

    @property
    def certificate_pem(self) -> bytes:
        """The signing certificate, for verifiers that must trust it."""
        return self._certificate.public_bytes(serialization.Encoding.PEM)

    async def sign(self, pdf: bytes) -> bytes:
        """The PDF with a PAdES signature added as an incremental update covering it all."""
        metadata = PdfSignatureMetadata(
            field_name=SIGNATURE_FIELD,
            reason=SIGNATURE_REASON,
            location=self._location,
            subfilter=SigSeedSubFilter.PADES,
            md_algorithm="sha256",
        )
        writer = IncrementalPdfFileWriter(BytesIO(pdf))
        output = BytesIO()
        await PdfSigner(metadata, signer=self._signer).async_sign_pdf(writer, output=output)
        return output.getvalue()


async def verify_letter(pdf: bytes, trusted_certificate_pem: bytes) -> LetterCheck:
    """Check the letter's last signature offline against the one certificate trusted.

    A changed or untrusted letter gives ``valid=False``; a file that is not a PDF or has no
    signature at all raises :class:`ValueError`, because there is nothing to judge.
    """
    trusted = _asn1_certificate(trusted_certificate_pem)
    try:
        reader = PdfFileReader(BytesIO(pdf), strict=False)
        fields = list(enumerate_sig_fields(reader, filled_status=True))
    except Exception as error:
        # The parser meets hostile bytes and fails in many ways (PdfReadError, KeyError, ...).
        raise ValueError(f"not a readable PDF: {error}") from error
    if not fields:
        raise ValueError("the PDF has no electronic signature (TTE) to verify")
    context = ValidationContext(
        trust_roots=[trusted],
        # Offline by design: no OCSP or CRL requests; revocation data the letter does not
        # carry is not demanded (soft-fail), since nothing may be fetched to complete it.
        allow_fetching=False,
        revocation_mode="soft-fail",
    )
    try:
        # Only the newest signature is judged: it is the one that must cover the whole file.
        embedded = max(
            (EmbeddedPdfSignature(reader, field, name) for name, _, field in fields),
            key=lambda signature: int(signature.signed_revision),
        )
        pades = str(embedded.sig_object.get("/SubFilter", "")) == _PADES_SUBFILTER
        status = await async_validate_pdf_signature(embedded, signer_validation_context=context)
        signer = x509.load_der_x509_certificate(status.signing_cert.dump())
    except Exception:
        # A damaged signature is a verdict, not an error: whatever pyHanko or asn1crypto
        # raise on it (ValueError, KeyError, SignatureValidationError, ...), it is not valid.
        log.warning("a letter's signature could not be validated", exc_info=True)
        return LetterCheck(
            intact=False, valid=False, signer="", covers_whole_document=False, pades=False
        )
    whole = bool(status.coverage == SignatureCoverageLevel.ENTIRE_FILE)
    intact = bool(status.intact)
    return LetterCheck(
        intact=intact,
        valid=bool(intact and status.valid and status.trusted and whole),
        signer=_common_name(signer),
        covers_whole_document=whole,
        pades=pades,
    )


def _paragraph(pdf: FPDF, text: str, *, align: Align, height: float) -> None:
    pdf.multi_cell(
        w=0, h=height, text=_latin1(text), align=align, new_x=XPos.LMARGIN, new_y=YPos.NEXT
    )


def _latin1(text: str) -> str:
    """Text the core PDF fonts can draw: Latin-1, printable, one line, spaces collapsed."""
    folded: list[str] = []
    for char in unicodedata.normalize("NFC", text).translate(_FOLDS):
        if char.isspace():
            folded.append(" ")
        elif _drawable(char):
            folded.append(char)
        elif unicodedata.category(char) == "Cf":
            continue  # joiners, direction marks, soft hyphens: invisible anyway
        else:
            base = "".join(
                part
                for part in unicodedata.normalize("NFKD", char)
                if _drawable(part) and not unicodedata.combining(part)
            )
            folded.append(base or "?")
    return " ".join("".join(folded).split())


def _drawable(char: str) -> bool:
    return ord(char) < 0x100 and not unicodedata.category(char).startswith("C")


def _load_pkcs12(data: bytes, password: bytes | None, *, source: Path) -> SimpleSigner:
    try:
        signer: SimpleSigner = SimpleSigner.load_pkcs12_data(
            data, other_certs=(), passphrase=password
        )
    except ValueError as error:
        raise ValueError(
            f"cannot load the signing key from {source}: wrong password or not PKCS#12"
        ) from error
    return signer


def _common_name(certificate: x509.Certificate) -> str:
    names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else ""


def _organization(certificate: x509.Certificate) -> str:
    names = certificate.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    return str(names[0].value) if names else ""


def _development_pkcs12(office_name: str) -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, DEVELOPMENT_SUBJECT),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, office_name or "adminduk"),
            x509.NameAttribute(NameOID.COUNTRY_NAME, "ID"),
        ]
    )
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + DEVELOPMENT_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=True,  # nonRepudiation
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
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return pkcs12.serialize_key_and_certificates(
        name=DEVELOPMENT_SUBJECT.encode(),
        key=key,
        cert=certificate,
        cas=None,
        encryption_algorithm=serialization.NoEncryption(),
    )


def _publish_once(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` unless it exists; readers never see a partial file."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # 0o600
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        try:
            os.link(temporary, path)
        except FileExistsError:
            pass  # another process published its key first: everyone uses that one
        except OSError:
            os.replace(temporary, path)  # no hard links here: last writer wins, still whole
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)


def _asn1_certificate(data: bytes) -> object:
    """A PEM (or DER) certificate as the asn1crypto object pyHanko's validator takes."""
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            certificate = x509.load_pem_x509_certificate(data)
        else:
            certificate = x509.load_der_x509_certificate(data)
    except ValueError as error:
        raise ValueError(f"the trusted certificate is not PEM or DER: {error}") from error
    return asn1_x509.Certificate.load(certificate.public_bytes(serialization.Encoding.DER))
