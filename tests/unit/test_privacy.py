"""Personal data masking and the log filter that backs it up."""

from __future__ import annotations

import logging
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, Field, ValidationError

from shared.logging import RedactingFilter
from shared.privacy import describe_error, mask_identity_number, mask_phone, pseudonym, redact
from tests.builders import SITI

NIK = SITI.nik


def test_masks() -> None:
    assert mask_identity_number(NIK) == "3603********0001"
    assert mask_phone("6281234567890") == "62*******7890"
    assert mask_identity_number("123") == "***"


def test_pseudonyms_are_stable_keyed_and_separated_by_purpose() -> None:
    key = b"k" * 32
    assert pseudonym(NIK, key, purpose="nik") == pseudonym(NIK, key, purpose="nik")
    assert pseudonym(NIK, key, purpose="nik") != pseudonym(NIK, b"x" * 32, purpose="nik")
    assert pseudonym(NIK, key, purpose="nik") != pseudonym(NIK, key, purpose="kk")
    assert NIK not in pseudonym(NIK, key, purpose="nik")


def test_redact_free_text() -> None:
    typed_ways = (
        NIK,
        "3603012001180003",
        "3603 0157 0899 0001",
        "3603-0157-0899-0001",
        "6281234567890",
        "0812-3456-7890",
        "+62 812-3456-7890",
        "0812 3456 7890",
    )
    cleaned = redact("#KTP#" + "#".join(typed_ways) + "#SITI#")
    for secret in typed_ways:
        assert secret not in cleaned
    assert "7890" in cleaned, "the last digits stay as a hint"
    assert "SITI" in cleaned  # names cannot be found by pattern: code must never log them


@given(
    st.lists(st.sampled_from("0123456789"), min_size=16, max_size=16),
    st.lists(st.sampled_from(["", " ", "-", "."]), min_size=15, max_size=15),
    st.text(alphabet=st.characters(exclude_categories=["Nd"]), max_size=40),
)
def test_no_sixteen_digit_number_survives_redaction(
    digits: list[str], separators: list[str], around: str
) -> None:
    number = digits[0] + "".join(
        sep + digit for sep, digit in zip(separators, digits[1:], strict=True)
    )
    cleaned = redact(f"{around} {number} {around}")
    assert number not in cleaned
    assert "".join(digits) not in "".join(ch for ch in cleaned if ch.isdigit() or ch == "*")


def test_the_log_filter_masks_messages_and_tracebacks(caplog: object) -> None:
    logger = logging.getLogger("test.redaction")
    handler_records: list[logging.LogRecord] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            handler_records.append(record)

    handler = Collect()
    handler.addFilter(RedactingFilter())
    logger.addHandler(handler)
    try:
        logger.warning("bad request for %s", NIK)
        try:
            raise ValueError(f"invalid NIK {NIK}")
        except ValueError:
            logger.exception("failed")
    finally:
        logger.removeHandler(handler)

    assert NIK not in handler_records[0].getMessage()
    assert NIK not in (handler_records[1].exc_text or "")
    assert "3603********0001" in (handler_records[1].exc_text or "")


class Applicant(BaseModel):
    name: str = Field(max_length=5)
    nik: str = Field(pattern=r"^\d{16}$")
    age: int


FORM = {"name": "SITI AMINAH", "nik": "SITI 3603015708990001", "age": "x"}


def _validation_error() -> ValidationError:
    with pytest.raises(ValidationError) as raised:
        Applicant.model_validate(FORM)
    return raised.value


def test_a_validation_error_is_described_by_types_and_locations_never_input() -> None:
    described = describe_error(_validation_error())
    assert described == (
        "ValidationError: Applicant: string_too_long at name; string_pattern_mismatch at nik; "
        "int_parsing at age"
    )


def test_an_error_quoting_a_validation_error_is_described_by_it() -> None:
    error = _validation_error()
    try:
        raise ValueError(f"cannot decode: {error}") from error
    except ValueError as wrapping:
        described = describe_error(wrapping)
    assert described.startswith("ValueError from ValidationError: Applicant: string_too_long")
    assert "SITI" not in described


def test_other_errors_keep_their_message_masked() -> None:
    assert describe_error(KeyError(NIK)) == "KeyError: '3603********0001'"
    assert describe_error(RuntimeError("SIAK down")) == "RuntimeError: SIAK down"


def test_the_log_filter_leaves_validation_input_out_of_tracebacks() -> None:
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", None, None)
    try:
        raise _validation_error()
    except ValidationError:
        record.exc_info = sys.exc_info()
    RedactingFilter().filter(record)
    assert record.exc_text is not None
    assert "Traceback" in record.exc_text
    assert "string_too_long at name" in record.exc_text
    assert "SITI" not in record.exc_text
    assert "AMINAH" not in record.exc_text
