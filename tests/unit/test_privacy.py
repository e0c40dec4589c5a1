"""Personal data masking and the log filter that backs it up."""

from __future__ import annotations

import logging

from hypothesis import given
from hypothesis import strategies as st

from shared.logging import RedactingFilter
from shared.privacy import mask_identity_number, mask_phone, pseudonym, redact

NIK = "3603015708990001"


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
    text = f"#KTP#{NIK}#3603012001180003#SITI#from 6281234567890 or 0812-3456-7890"
    cleaned = redact(text)
    for secret in (NIK, "3603012001180003", "6281234567890", "0812-3456-7890"):
        assert secret not in cleaned
    assert "SITI" in cleaned  # names cannot be found by pattern: code must never log them


@given(st.text(alphabet="0123456789", min_size=16, max_size=16), st.text(max_size=40))
def test_no_sixteen_digit_number_survives_redaction(number: str, around: str) -> None:
    assert number not in redact(f"{around} {number} {around}")


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
