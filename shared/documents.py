"""The one catalogue of documents the office serves: formats, requirements, promised times.

Every service reads documents from here (intake parses the formats, notify shows the
requirements and the format with its example, issuance computes pickup dates from the
promised working days), so a change to a document is made once.

Formats of KK, KTP-el, KIA, SKPWNI and SKDWNI are the ones Disdukcapil Kabupaten Tangerang
published; akta kelahiran, akta kematian and validasi NIK follow the same style (see
``docs/FORMATS.md``). Requirements of KK, akta kematian and validasi NIK are not in the field
studies and follow common Disdukcapil practice; the office should confirm them.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Final


class DocType(StrEnum):
    """A document the office issues. The value is the keyword of its WhatsApp format."""

    KK = "KK"
    KTP = "KTP"
    KIA = "KIA"
    SKPWNI = "SKPWNI"
    SKDWNI = "SKDWNI"
    AKTA_KELAHIRAN = "AKTA"
    AKTA_KEMATIAN = "AKTAMATI"
    VALIDASI_NIK = "VALIDASI"


class KtpReason(StrEnum):
    """Why a KTP-el is requested: the last column of the KTP format."""

    PEMULA = "PEMULA"  # first card
    HILANG = "HILANG"  # lost
    RUSAK = "RUSAK"  # damaged


class FormField(StrEnum):
    """A column of a WhatsApp format, named by the label the published format shows.

    The label is also what a :class:`Problem` of the parser names, so a citizen sees the
    same word in the error as in the format.
    """

    NIK = "NIK"
    NO_KK = "NO_KK"
    NAMA = "NAMA"
    NAMA_KEPALA_KELUARGA = "NAMA KEPALA KELUARGA"
    DESA = "DESA"
    KECAMATAN = "KECAMATAN"
    ALASAN_KTP = "PEMULA/HILANG/RUSAK"
    ALAMAT_PINDAH = "ALAMAT_PINDAH"
    NO_SKPWNI = "NO_SKPWNI"
    KEPERLUAN = "KEPERLUAN"
    NAMA_ANAK = "NAMA_ANAK"
    TANGGAL_LAHIR = "TANGGAL_LAHIR"
    NIK_ALMARHUM = "NIK_ALMARHUM"
    NAMA_ALMARHUM = "NAMA_ALMARHUM"
    TANGGAL_MENINGGAL = "TANGGAL_MENINGGAL"


@dataclass(frozen=True, slots=True)
class DocumentSpec:
    """Everything a citizen and a service need to know about one document.

    ``format`` and ``example`` are shown verbatim to citizens; ``fields`` are the columns
    of ``format`` after the keyword, in order. ``requirements`` are the papers every
    applicant attaches; :meth:`requirements_for` adds those that depend on the KTP reason.
    """

    doc_type: DocType
    name: str
    keyword: str
    fields: tuple[FormField, ...]
    format: str
    example: str
    requirements: tuple[str, ...]
    turnaround_working_days: int
    electronic: bool
    reason_requirements: Mapping[KtpReason, tuple[str, ...]] = field(
        default_factory=lambda: MappingProxyType({})
    )
    collect_with: tuple[str, ...] = ()
    """Originals to show at the counter when collecting, besides the ticket."""
    reason_collect_with: Mapping[KtpReason, tuple[str, ...]] = field(
        default_factory=lambda: MappingProxyType({})
    )

    def __post_init__(self) -> None:
        # A plain dict handed in could still be changed by whoever holds it.
        object.__setattr__(
            self, "reason_requirements", MappingProxyType(dict(self.reason_requirements))
        )
        object.__setattr__(
            self, "reason_collect_with", MappingProxyType(dict(self.reason_collect_with))
        )

    @property
    def turnaround_text(self) -> str:
        """The promise in the words citizens read, e.g. ``14 hari kerja``."""
        return f"{self.turnaround_working_days} hari kerja"

    def requirements_for(self, reason: KtpReason | None = None) -> tuple[str, ...]:
        """The papers to attach for this document, including those ``reason`` adds."""
        if reason is None:
            return self.requirements
        return self.requirements + self.reason_requirements.get(reason, ())

    def collect_with_for(self, reason: KtpReason | None = None) -> tuple[str, ...]:
        """What to bring to the counter: the ticket, then the originals to show."""
        extra = self.reason_collect_with.get(reason, ()) if reason is not None else ()
        return (TICKET_PROOF, *self.collect_with, *extra)


_KK = "Kartu Keluarga (KK)"
_KTP_ORANG_TUA = "KTP-el kedua orang tua"
TICKET_PROOF: Final = "Bukti permohonan: pesan WhatsApp ini atau nomor tiket Anda"
_KK_ASLI = "Kartu Keluarga (KK) asli"

_SPECS: Final = (
    DocumentSpec(
        doc_type=DocType.KK,
        name="Kartu Keluarga (KK)",
        keyword="KK",
        fields=(
            FormField.NO_KK,
            FormField.NAMA_KEPALA_KELUARGA,
            FormField.DESA,
            FormField.KECAMATAN,
        ),
        format="#KK#NO_KK#NAMA KEPALA KELUARGA#DESA#KECAMATAN",
        example="#KK#3603012001180003#AHMAD SUBARDI#SENTUL#BALARAJA",
        requirements=(
            "Kartu Keluarga (KK) lama",
            "KTP-el kepala keluarga",
            "Dokumen yang mendasari perubahan data, bila ada (mis. akta kelahiran, buku nikah)",
        ),
        turnaround_working_days=1,
        electronic=False,
        collect_with=("Kartu Keluarga (KK) lama", "KTP-el kepala keluarga"),
    ),
    DocumentSpec(
        doc_type=DocType.KTP,
        name="Kartu Tanda Penduduk elektronik (KTP-el)",
        keyword="KTP",
        fields=(
            FormField.NIK,
            FormField.NO_KK,
            FormField.NAMA,
            FormField.DESA,
            FormField.KECAMATAN,
            FormField.ALASAN_KTP,
        ),
        format="#KTP#NIK#NO_KK#NAMA#DESA#KECAMATAN#PEMULA/HILANG/RUSAK#",
        example="#KTP#3603015708990001#3603012001180003#SITI AMINAH#SENTUL#BALARAJA#PEMULA#",
        requirements=(_KK,),
        reason_requirements={
            KtpReason.HILANG: ("Surat keterangan hilang dari kepolisian",),
            KtpReason.RUSAK: ("KTP-el yang rusak",),
        },
        # Printed within one day: ready on the next working day.
        turnaround_working_days=1,
        electronic=False,
        collect_with=(_KK_ASLI,),
        reason_collect_with={
            KtpReason.HILANG: ("Surat keterangan hilang dari kepolisian (asli)",),
            KtpReason.RUSAK: ("KTP-el yang rusak",),
        },
    ),
    DocumentSpec(
        doc_type=DocType.KIA,
        name="Kartu Identitas Anak (KIA)",
        keyword="KIA",
        fields=(
            FormField.NIK,
            FormField.NO_KK,
            FormField.NAMA,
            FormField.DESA,
            FormField.KECAMATAN,
        ),
        format="#KIA#NIK#NO_KK#NAMA#DESA#KECAMATAN",
        example="#KIA#3603031203190002#3603031505150007#RIZKI PRATAMA#MARGASARI#TIGARAKSA",
        requirements=(
            "Akta kelahiran anak",
            _KTP_ORANG_TUA,
            "Kartu Keluarga (KK) dengan kedua orang tua dalam satu KK",
            "Pas foto anak berwarna ukuran 2x3 atau 4x6 (untuk anak usia 5 tahun ke atas)",
        ),
        turnaround_working_days=14,
        electronic=False,
        collect_with=("Akta kelahiran anak (asli)", _KK_ASLI),
    ),
    DocumentSpec(
        doc_type=DocType.SKPWNI,
        name="Surat Keterangan Pindah WNI (SKPWNI, pindah keluar)",
        keyword="SKPWNI",
        fields=(FormField.NIK, FormField.NO_KK, FormField.NAMA, FormField.ALAMAT_PINDAH),
        format="#SKPWNI#NIK#NO_KK#NAMA#ALAMAT_PINDAH",
        example=(
            "#SKPWNI#3603281011850004#3603282306100002#BUDI SANTOSO"
            "#JL. MAWAR NO. 5 RT 002/RW 004, KEL. SUKASARI, KEC. TANGERANG, KOTA TANGERANG"
        ),
        requirements=(_KK, "KTP-el"),
        turnaround_working_days=1,
        # Kupang sends moving letters back as a PDF with an electronic signature (TTE).
        electronic=True,
    ),
    DocumentSpec(
        doc_type=DocType.SKDWNI,
        name="Surat Keterangan Datang WNI (SKDWNI, pindah datang)",
        keyword="SKDWNI",
        fields=(FormField.NO_SKPWNI, FormField.KEPERLUAN),
        format="#SKDWNI#NO_SKPWNI#KEPERLUAN",
        example="#SKDWNI#SKPWNI/3671/14112025/0021#PINDAH TUGAS KERJA",
        requirements=("Surat Keterangan Pindah WNI (SKPWNI) dari daerah asal",),
        turnaround_working_days=1,
        electronic=False,
    ),
    DocumentSpec(
        doc_type=DocType.AKTA_KELAHIRAN,
        name="Akta Kelahiran",
        keyword="AKTA",
        fields=(
            FormField.NO_KK,
            FormField.NAMA_ANAK,
            FormField.TANGGAL_LAHIR,
            FormField.DESA,
            FormField.KECAMATAN,
        ),
        format="#AKTA#NO_KK#NAMA_ANAK#TANGGAL_LAHIR#DESA#KECAMATAN",
        example="#AKTA#3603012001180003#MUHAMMAD RAFA#05-11-2025#SENTUL#BALARAJA",
        requirements=(
            "Surat Keterangan Kelahiran dari rumah sakit, puskesmas atau bidan",
            _KK,
            _KTP_ORANG_TUA,
        ),
        turnaround_working_days=1,
        electronic=False,
    ),
    DocumentSpec(
        doc_type=DocType.AKTA_KEMATIAN,
        name="Akta Kematian",
        keyword="AKTAMATI",
        fields=(
            FormField.NIK_ALMARHUM,
            FormField.NO_KK,
            FormField.NAMA_ALMARHUM,
            FormField.TANGGAL_MENINGGAL,
            FormField.DESA,
            FormField.KECAMATAN,
        ),
        format="#AKTAMATI#NIK_ALMARHUM#NO_KK#NAMA_ALMARHUM#TANGGAL_MENINGGAL#DESA#KECAMATAN",
        example=(
            "#AKTAMATI#3603011203450001#3603012001180003#H. ABDUL ROHIM#02-11-2025#SENTUL#BALARAJA"
        ),
        requirements=(
            "Surat keterangan kematian dari rumah sakit, puskesmas atau kepala desa/lurah",
            "Kartu Keluarga (KK) almarhum",
            "KTP-el almarhum",
            "KTP-el pelapor",
        ),
        turnaround_working_days=1,
        electronic=False,
    ),
    DocumentSpec(
        doc_type=DocType.VALIDASI_NIK,
        name="Validasi NIK",
        keyword="VALIDASI",
        fields=(FormField.NIK, FormField.NO_KK, FormField.NAMA, FormField.KEPERLUAN),
        format="#VALIDASI#NIK#NO_KK#NAMA#KEPERLUAN",
        example=(
            "#VALIDASI#3603015708990001#3603012001180003#SITI AMINAH#PENDAFTARAN BPJS KESEHATAN"
        ),
        requirements=("Foto KTP-el atau Kartu Keluarga (KK)",),
        turnaround_working_days=1,
        electronic=False,
    ),
)

CATALOGUE: Final[Mapping[DocType, DocumentSpec]] = MappingProxyType(
    {spec.doc_type: spec for spec in _SPECS}
)
"""Every document, in the order the menu lists them."""


def document(doc_type: DocType) -> DocumentSpec:
    """The spec of ``doc_type``."""
    return CATALOGUE[doc_type]


# Keywords as citizens type them, compared without case, spaces or punctuation. The first
# block are the spellings in the published tables; the rest are the documents' names.
_ALIASES: Final[Mapping[str, DocType]] = MappingProxyType(
    {
        "SKDWN": DocType.SKDWNI,
        "AKTAKELAHIRAN": DocType.AKTA_KELAHIRAN,
        "AKTALAHIR": DocType.AKTA_KELAHIRAN,
        "AKTAKEMATIAN": DocType.AKTA_KEMATIAN,
        "VALIDASINIK": DocType.VALIDASI_NIK,
        # "Akte" is the older spelling and still what many people write.
        "AKTE": DocType.AKTA_KELAHIRAN,
        "AKTEKELAHIRAN": DocType.AKTA_KELAHIRAN,
        "AKTELAHIR": DocType.AKTA_KELAHIRAN,
        "AKTEKEMATIAN": DocType.AKTA_KEMATIAN,
        "AKTEMATI": DocType.AKTA_KEMATIAN,
        "KARTUKELUARGA": DocType.KK,
        "KTPEL": DocType.KTP,
        "EKTP": DocType.KTP,
        "KTPELEKTRONIK": DocType.KTP,
        "KARTUIDENTITASANAK": DocType.KIA,
        "SKPWN": DocType.SKPWNI,
        "PINDAHKELUAR": DocType.SKPWNI,
        "SURATPINDAHKELUAR": DocType.SKPWNI,
        "PINDAHDATANG": DocType.SKDWNI,
        "SURATPINDAHDATANG": DocType.SKDWNI,
    }
)
_NOT_ALNUM: Final = re.compile(r"[^0-9A-Z]+")


def by_keyword(word: str) -> DocType | None:
    """The document a citizen's keyword names, or None.

    Case, spaces, underscores, dashes and other punctuation are ignored, and the published
    misspellings are accepted: ``SKDWN``, ``AKTA KELAHIRAN``, ``AKTALAHIR``, ``AKTA MATI``,
    ``AKTAKEMATIAN``, ``VALIDASINIK``, ``KTP-el``.
    """
    key = _NOT_ALNUM.sub("", unicodedata.normalize("NFKC", word).upper())
    if not key:
        return None
    for doc_type in DocType:
        if key == doc_type.value:
            return doc_type
    return _ALIASES.get(key)
