"""Personal data (NIK, No. KK, names, phone numbers) must never leave in clear.

Two tools: masking for people who need a hint (``3603********0001``), and keyed
pseudonyms for machines that need to join records without learning the value. What an
error record says of an exception (:func:`describe_error`) never quotes validated input.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from typing import Final

from pydantic import ValidationError

# 16 digits, possibly grouped by spaces, dots or dashes as people type them.
_IDENTITY_NUMBER: Final = re.compile(r"(?<!\d)\d(?:[ .\-]?\d){15}(?!\d)")
# Indonesian mobile numbers as WhatsApp sends them (62...) or as people type them (08...,
# +62 812-..., 0812 ...).
_PHONE: Final = re.compile(r"(?<![\d+])(?:\+?62|0)[ .\-]?8(?:[ .\-]?\d){7,12}(?!\d)")
# A query parameter's value after ``?`` or ``&`` (a token, a challenge, a search).
_QUERY_VALUE: Final = re.compile(r"(?<=[?&])([^=&#\s\"'?]+)=[^&#\s\"']*")
REDACTED: Final = "***"


def mask_identity_number(value: str) -> str:
    """``3603015708990001`` -> ``3603********0001`` (NIK and No. KK)."""
    digits = re.sub(r"\D", "", value)
    if len(digits) < 8:
        return "*" * len(digits)
    return digits[:4] + "*" * (len(digits) - 8) + digits[-4:]


def mask_phone(value: str) -> str:
    """``6281234567890`` -> ``62*******7890``."""
    digits = re.sub(r"\D", "", value)
    if len(digits) < 6:
        return "*" * len(digits)
    return digits[:2] + "*" * (len(digits) - 6) + digits[-4:]


def pseudonym(value: str, key: bytes, *, purpose: str) -> str:
    """A stable keyed pseudonym: the same value and key give the same string, and without
    the key nobody can confirm a guess. ``purpose`` keeps pseudonyms of different uses apart."""
    digest = hmac.new(key, f"{purpose}\x1f{value}".encode(), hashlib.sha256).hexdigest()
    return f"{purpose}_{digest[:32]}"


def redact(text: str) -> str:
    """Mask every NIK/No. KK-like number and phone number in free text (logs, errors), and
    the values of query parameters in URLs (see :func:`redact_query`)."""
    text = _IDENTITY_NUMBER.sub(lambda m: mask_identity_number(m[0]), text)
    return redact_query(_PHONE.sub(lambda m: mask_phone(m[0]), text))


def redact_query(text: str) -> str:
    """``/webhook?hub.verify_token=abc&x=1`` -> ``/webhook?hub.verify_token=***&x=***``: the
    names of query parameters stay (they say what was asked), their values go (a verify
    token, a wrong guess of one, whatever a caller typed)."""
    if "=" not in text:
        return text
    return _QUERY_VALUE.sub(rf"\1={REDACTED}", text)


MAX_PROBLEMS: Final = 10
"""Validation problems an error description lists; the rest are counted."""


def describe_error(error: BaseException) -> str:
    """What a dead letter, a span's status or a log line may say of ``error``: its type and,
    for a validation error (also one quoted by the error it caused), the type and location
    of each problem and never the input (which may be a name, where masking numbers does not
    help); any other error's message with NIK-, No. KK- and phone-like numbers masked."""
    name = type(error).__name__
    if isinstance(error, ValidationError):
        problems = error.errors(include_url=False, include_context=False, include_input=False)
        listed = "; ".join(
            f"{problem['type']} at {'.'.join(str(part)[:40] for part in problem['loc']) or '-'}"
            for problem in problems[:MAX_PROBLEMS]
        )
        more = f" and {len(problems) - MAX_PROBLEMS} more" if len(problems) > MAX_PROBLEMS else ""
        return redact(f"{name}: {error.title}: {listed}{more}")
    cause = error.__cause__
    if isinstance(cause, ValidationError) and str(cause) in str(error):
        return f"{name} from {describe_error(cause)}"
    return redact(f"{name}: {error}")
