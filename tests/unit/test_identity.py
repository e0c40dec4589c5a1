"""NIK and No. KK rules, and matching kecamatan names the way citizens type them."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.identity import (
    AmbiguousKecamatanError,
    IdentityProblem,
    InvalidIdentityNumberError,
    Kecamatan,
    KecamatanError,
    KecamatanOutsideAreaError,
    Nik,
    NoKk,
    OfficeArea,
    UnknownKecamatanError,
    UnknownRegencyError,
    describe_region,
    parse_nik,
    parse_no_kk,
    typo_distance,
)
from tests.builders import SITI

TODAY = date(2026, 11, 23)
AREA = OfficeArea("3603")
WOMAN = "3603015708990001"  # Balaraja, born 17-08-1999 (57 = 17 + 40)
MAN = "3603011708990001"
NO_KK = SITI.no_kk  # Balaraja, issued 20-01-2018


def nik_error(text: str, today: date = TODAY) -> InvalidIdentityNumberError:
    with pytest.raises(InvalidIdentityNumberError) as caught:
        parse_nik(text, today)
    return caught.value


def no_kk_error(text: str, today: date = TODAY) -> InvalidIdentityNumberError:
    with pytest.raises(InvalidIdentityNumberError) as caught:
        parse_no_kk(text, today)
    return caught.value


# -- NIK -------------------------------------------------------------------------------------


def test_a_womans_nik() -> None:
    nik = parse_nik(WOMAN, TODAY)
    assert nik.value == WOMAN
    assert nik.region_code == "360301"
    assert nik.kecamatan_code == "360301"
    assert nik.regency_code == "3603"
    assert nik.birth_date == date(1999, 8, 17)
    assert nik.is_female
    assert nik.serial == "0001"
    assert nik.age_on(TODAY) == 27
    assert nik.age_on(date(2026, 8, 16)) == 26
    assert nik.age_on(date(2026, 8, 17)) == 27


def test_a_mans_nik() -> None:
    nik = parse_nik(MAN, TODAY)
    assert nik.birth_date == date(1999, 8, 17)
    assert not nik.is_female


@pytest.mark.parametrize("day", [41, 50, 71])
def test_women_add_40_to_the_day(day: int) -> None:
    nik = parse_nik(f"360301{day:02d}0199" + "0001", TODAY)
    assert nik.is_female
    assert nik.birth_date == date(1999, 1, day - 40)


@pytest.mark.parametrize("day", [0, 32, 40, 72, 99])
def test_days_that_are_neither_a_man_nor_a_woman(day: int) -> None:
    error = nik_error(f"360301{day:02d}0199" + "0001")
    assert error.reason_id is IdentityProblem.INVALID_DAY
    assert error.field == "NIK"
    assert "41-71 untuk perempuan" in error.message_id_text


@pytest.mark.parametrize("month", [0, 13, 99])
def test_invalid_month(month: int) -> None:
    assert nik_error(f"36030115{month:02d}99" + "0001").reason_id is IdentityProblem.INVALID_MONTH


def test_leap_years() -> None:
    assert parse_nik("3603012902000001", TODAY).birth_date == date(2000, 2, 29)
    assert parse_nik("3603016902040001", TODAY).birth_date == date(2004, 2, 29)  # a woman
    error = nik_error("3603012902010001")
    assert error.reason_id is IdentityProblem.INVALID_DATE
    assert error.message_id_text == (
        "Tanggal lahir di dalam NIK tidak ada di kalender: 29 Februari 2001 "
        "(2001 bukan tahun kabisat)."
    )


def test_31_february_does_not_exist() -> None:
    error = nik_error("3603013102990001")
    assert error.reason_id is IdentityProblem.INVALID_DATE
    assert "31 Februari 1999" in error.message_id_text


def test_the_century_is_the_most_recent_one_not_after_today() -> None:
    assert parse_nik("3603011203450001", TODAY).birth_date == date(1945, 3, 12)
    assert parse_nik("3603012311260001", TODAY).birth_date == date(2026, 11, 23)  # today
    assert parse_nik("3603010101270001", TODAY).birth_date == date(1927, 1, 1)
    assert parse_nik("3603010101000001", TODAY).birth_date == date(2000, 1, 1)


def test_a_birth_date_in_the_future_is_refused() -> None:
    error = nik_error("3603012411260001")  # tomorrow
    assert error.reason_id is IdentityProblem.FUTURE_DATE
    assert error.message_id_text == "Tanggal lahir di dalam NIK belum terjadi: 24 November 2026."
    # The same digits were a real date a year later.
    assert parse_nik("3603012411260001", date(2027, 1, 1)).birth_date == date(2026, 11, 24)


def test_14_digits_gives_the_exact_message() -> None:
    error = nik_error("36030157089900")
    assert error.reason_id is IdentityProblem.LENGTH
    assert error.field == "NIK"
    assert error.message_id_text == "NIK harus 16 angka, yang Anda kirim 14 angka."
    assert str(error) == error.message_id_text


def test_17_digits() -> None:
    assert nik_error(WOMAN + "1").message_id_text == (
        "NIK harus 16 angka, yang Anda kirim 17 angka."
    )


def test_unknown_region() -> None:
    error = nik_error("9999015708990001")
    assert error.reason_id is IdentityProblem.UNKNOWN_REGION
    assert "999901" in error.message_id_text
    assert nik_error("3603995708990001").reason_id is IdentityProblem.UNKNOWN_REGION


@pytest.mark.parametrize(
    "typed",
    [
        "3603 0157 0899 0001",
        "3603-0157-0899-0001",
        "3603.0157.0899.0001",
        " 3603015708990001 ",
        WOMAN.translate({ord("0") + d: 0xFF10 + d for d in range(10)}),  # full-width digits
    ],
)
def test_separators_people_type_are_ignored(typed: str) -> None:
    assert parse_nik(typed, TODAY).value == WOMAN


def test_letters_are_refused_with_a_hint_for_look_alikes() -> None:
    error = nik_error("36O30157O8990001")
    assert error.reason_id is IdentityProblem.NOT_DIGITS
    assert "huruf O atau I" in error.message_id_text
    other = nik_error("3603/0157/0899/0001")
    assert other.reason_id is IdentityProblem.NOT_DIGITS
    assert "huruf O" not in other.message_id_text


def test_empty() -> None:
    assert nik_error("  ").message_id_text == "NIK belum diisi."


def test_field_and_label_can_be_named() -> None:
    with pytest.raises(InvalidIdentityNumberError) as caught:
        parse_nik("123", TODAY, field="NIK_ALMARHUM", label="NIK almarhum")
    assert caught.value.field == "NIK_ALMARHUM"
    assert caught.value.message_id_text == "NIK almarhum harus 16 angka, yang Anda kirim 3 angka."


def test_the_number_never_shows_in_clear() -> None:
    nik = parse_nik(WOMAN, TODAY)
    assert str(nik) == "3603********0001"
    assert f"{nik}" == "3603********0001"
    assert WOMAN not in repr(nik)
    assert WOMAN not in repr([nik])
    no_kk = parse_no_kk(NO_KK, TODAY)
    assert str(no_kk) == "3603********0003"
    assert NO_KK not in repr(no_kk)


def test_errors_do_not_contain_the_number() -> None:
    for text in ("3603012411260001", "3603013102990001", "360301570899000"):
        error = nik_error(text)
        assert text not in str(error)


def test_a_nik_cannot_be_built_inconsistent() -> None:
    with pytest.raises(ValueError, match="16 digits"):
        Nik(value="123", birth_date=date(1999, 8, 17))
    with pytest.raises(ValueError, match="birth_date"):
        Nik(value=WOMAN, birth_date=date(1999, 8, 18))
    with pytest.raises(ValueError, match="issued_on"):
        NoKk(value=NO_KK, issued_on=date(2018, 1, 21))


@settings(max_examples=200)
@given(
    born=st.dates(min_value=date(1927, 1, 1), max_value=TODAY),
    female=st.booleans(),
    kecamatan=st.sampled_from(AREA.kecamatan()),
    serial=st.integers(min_value=1, max_value=9999),
)
def test_any_real_birth_date_round_trips(
    born: date, female: bool, kecamatan: Kecamatan, serial: int
) -> None:
    day = born.day + (40 if female else 0)
    text = f"{kecamatan.code}{day:02d}{born:%m%y}{serial:04d}"
    nik = parse_nik(text, TODAY)
    assert (nik.birth_date, nik.is_female, nik.region_code) == (born, female, kecamatan.code)
    assert AREA.contains(nik.region_code)


# -- No. KK ----------------------------------------------------------------------------------


def test_no_kk() -> None:
    no_kk = parse_no_kk(NO_KK, TODAY)
    assert no_kk.value == NO_KK
    assert no_kk.issued_on == date(2018, 1, 20)
    assert no_kk.region_code == "360301"
    assert no_kk.kecamatan_code == "360301"
    assert no_kk.regency_code == "3603"


def test_no_kk_has_no_plus_40_rule() -> None:
    error = no_kk_error(WOMAN)  # day 57 is a woman's NIK, never an issue date
    assert error.reason_id is IdentityProblem.INVALID_DAY
    assert error.field == "NO_KK"
    assert "41-71" not in error.message_id_text


def test_no_kk_rules() -> None:
    assert no_kk_error("36030120011800").message_id_text == (
        "No. KK harus 16 angka, yang Anda kirim 14 angka."
    )
    assert no_kk_error("3603012411260003").reason_id is IdentityProblem.FUTURE_DATE
    assert no_kk_error("3603013002180003").reason_id is IdentityProblem.INVALID_DATE
    assert no_kk_error("9999012001180003").reason_id is IdentityProblem.UNKNOWN_REGION
    assert parse_no_kk("3603 0120 0118 0003", TODAY).value == NO_KK


# -- typos ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b", "distance"),
    [
        ("BALARAJA", "BALARAJA", 0),
        ("BALARAJAA", "BALARAJA", 1),
        ("BALARAJ", "BALARAJA", 1),
        ("BALARAAJ", "BALARAJA", 1),  # swap
        ("BELARAJA", "BALARAJA", 1),
        ("BALARAJAAX", "BALARAJA", 2),
        ("", "MAUK", 4),
        ("CISOKA", "CISAUK", 3),
    ],
)
def test_typo_distance(a: str, b: str, distance: int) -> None:
    assert typo_distance(a, b) == distance
    assert typo_distance(b, a) == distance


# -- the office's area ------------------------------------------------------------------------


def test_kabupaten_tangerang() -> None:
    assert AREA.code == "3603"
    assert AREA.name == "Kab. Tangerang"
    assert AREA.province_name == "Banten"
    kecamatan = AREA.kecamatan()
    assert len(kecamatan) == 29
    assert Kecamatan(code="360301", name="Balaraja") in kecamatan
    names = {k.name for k in kecamatan}
    assert {"Tigaraksa", "Kelapa Dua", "Gunung Kaler", "Mekar Baru"} <= names
    assert all(k.code.startswith("3603") for k in kecamatan)


def test_kota_bekasi_has_12_kecamatan() -> None:
    assert len(OfficeArea("3275").kecamatan()) == 12


def test_contains() -> None:
    assert AREA.contains("360301")
    assert AREA.contains("360333")
    assert not AREA.contains("367106")  # Ciledug, Kota Tangerang
    assert not AREA.contains("3603")
    assert not AREA.contains("")
    assert AREA.kecamatan_by_code("360328") == Kecamatan(code="360328", name="Kelapa Dua")
    assert AREA.kecamatan_by_code("999999") is None


@pytest.mark.parametrize("code", ["9999", "36", "abcd", "", "36030"])
def test_unknown_regency(code: str) -> None:
    with pytest.raises(UnknownRegencyError):
        OfficeArea(code)


def test_describe_region() -> None:
    assert describe_region("360301") == "Kec. Balaraja, Kab. Tangerang"
    assert describe_region("999999") is None
    assert describe_region("36") is None


@pytest.mark.parametrize("kecamatan", AREA.kecamatan(), ids=lambda k: k.name)
def test_every_kecamatan_matches_its_own_name_however_written(kecamatan: Kecamatan) -> None:
    for text in (
        kecamatan.name,
        kecamatan.name.lower(),
        kecamatan.name.upper().replace(" ", ""),
        f"  KEC.  {kecamatan.name}  ",
        f"Kecamatan {kecamatan.name}",
        f"kec: {kecamatan.name}",
        f"kec {kecamatan.name.lower()}",
    ):
        assert AREA.match_kecamatan(text) == kecamatan, text


@pytest.mark.parametrize(
    ("typed", "name"),
    [
        ("BALARAJAA", "Balaraja"),
        ("balaraj", "Balaraja"),
        ("BALARAAJ", "Balaraja"),  # two letters swapped
        ("TIGARAKSAA", "Tigaraksa"),
        ("tigaraksa", "Tigaraksa"),
        ("KELAPADUA", "Kelapa Dua"),
        ("kelapa  dua", "Kelapa Dua"),
        ("SEPATAN TIMR", "Sepatan Timur"),
        ("PASARKEMSI", "Pasar Kemis"),
        ("Gunung Kaller", "Gunung Kaler"),
        ("KEC. MEKARBARU", "Mekar Baru"),
    ],
)
def test_a_small_typo_is_accepted_when_only_one_kecamatan_is_close(typed: str, name: str) -> None:
    assert AREA.match_kecamatan(typed).name == name


@pytest.mark.parametrize("typed", ["CISAKA", "CISOUK"])
def test_an_ambiguous_typo_is_refused(typed: str) -> None:
    with pytest.raises(AmbiguousKecamatanError) as caught:
        AREA.match_kecamatan(typed)
    assert {k.name for k in caught.value.candidates} == {"Cisoka", "Cisauk"}
    assert "Cisoka" in caught.value.message_id_text
    assert "Cisauk" in caught.value.message_id_text
    assert caught.value.field == "KECAMATAN"


def test_too_far_is_refused_with_a_suggestion() -> None:
    with pytest.raises(UnknownKecamatanError) as caught:
        AREA.match_kecamatan("BALARAJAAX")
    assert caught.value.message_id_text == (
        "Kecamatan 'BALARAJAAX' tidak ditemukan di Kab. Tangerang. Maksud Anda: Balaraja?"
    )
    assert [k.name for k in caught.value.candidates] == ["Balaraja"]


@pytest.mark.parametrize("typed", ["XYZ", "JAKARTA", "a" * 200, "...", "360301"])
def test_nothing_close_is_refused(typed: str) -> None:
    with pytest.raises(UnknownKecamatanError) as caught:
        AREA.match_kecamatan(typed)
    assert "tidak ditemukan di Kab. Tangerang" in caught.value.message_id_text


def test_short_fragments_are_not_guessed() -> None:
    with pytest.raises(KecamatanError):
        AREA.match_kecamatan("MAU")  # one letter from Mauk, but too short to be sure


def test_empty_kecamatan() -> None:
    with pytest.raises(UnknownKecamatanError) as caught:
        AREA.match_kecamatan("   ")
    assert caught.value.message_id_text == "Nama kecamatan belum diisi."


@pytest.mark.parametrize(
    ("typed", "regency"),
    [
        ("CILEDUG", "Kota Tangerang"),
        ("Serpong", "Kota Tangerang Selatan"),
        ("kec. karawaci", "Kota Tangerang"),
    ],
)
def test_a_kecamatan_of_another_regency_is_refused(typed: str, regency: str) -> None:
    with pytest.raises(KecamatanOutsideAreaError) as caught:
        AREA.match_kecamatan(typed)
    assert regency in caught.value.regencies
    assert regency in caught.value.message_id_text
    assert "Kab. Tangerang" in caught.value.message_id_text


def test_the_name_in_the_message_is_the_citizens_text_quoted_safely() -> None:
    with pytest.raises(UnknownKecamatanError) as caught:
        AREA.match_kecamatan("x'y'z  \n abc" + "d" * 50)
    assert "\n" not in caught.value.message_id_text
    assert "'X" not in caught.value.message_id_text[12:]


@settings(max_examples=200)
@given(kecamatan=st.sampled_from(AREA.kecamatan()), data=st.data())
def test_a_one_letter_typo_never_resolves_to_another_kecamatan(
    kecamatan: Kecamatan, data: st.DataObject
) -> None:
    name = kecamatan.name.upper()
    position = data.draw(st.integers(min_value=0, max_value=len(name) - 1))
    letter = data.draw(st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZ"))
    edit = data.draw(st.sampled_from(["delete", "insert", "replace"]))
    if edit == "delete":
        typed = name[:position] + name[position + 1 :]
    elif edit == "insert":
        typed = name[:position] + letter + name[position:]
    else:
        typed = name[:position] + letter + name[position + 1 :]
    try:
        matched = AREA.match_kecamatan(typed)
    except KecamatanError:
        return
    assert matched == kecamatan
