"""What an operator may see of an event's data.

Operators read the log to find out what happened to a request, not who asked: they need
tickets, types, ids, states and dates, never a NIK, a family-card number, a name or a
phone number. So the fields shown in clear are an allow-list (:data:`SAFE_FIELDS`); an
identity number or phone number is masked (a hint such as ``3603********0001``), and every
other value becomes ``***``. A field added to an event later is therefore hidden until
someone decides it is safe, which is the mistake to prefer. Clear values still pass through
:func:`shared.privacy.redact`, in case a number was typed where it does not belong.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

from shared.privacy import mask_identity_number, mask_phone, redact

HIDDEN: Final = "***"

SAFE_FIELDS: Final = frozenset(
    {
        # what the request is and where it stands
        "ticket", "doc_type", "kecamatan_code", "kecamatan_name", "status", "outcome",
        "round", "check", "passed", "fixable", "channel", "working_days", "score",
        "understood", "state", "expired",
        # the tickets it relates to
        "existing_ticket", "related_ticket", "duplicate_of", "idempotency_key",
        # dates and times
        "promised_on", "previous_promised_on", "ready_on", "received_at", "sent_at", "at",
        "issued_at", "occurred_at",
        # ids of messages, files, officers and notifications (no person in them)
        "message_id", "context_message_id", "reply_id", "message_type", "media_id",
        "mime_type", "sha256", "content_type", "size", "officer_id", "by", "kind",
        "cause_event_id", "wamid", "template", "form", "attempts", "reconciled",
        "error_code", "error_codes", "error_title", "error_titles", "callback_data",
        "phone_number_id", "citizen", "field",
    }
)  # fmt: skip
"""Fields shown as they are (``citizen`` is a keyed pseudonym of the number, not the number)."""

CODE_FIELDS: Final = frozenset({"reason"})
"""Fields that hold either a code (``duplicate``, ``unknown_ticket``) or an officer's free
text, which may name people: shown only when the value looks like a code."""

PHONE_FIELDS: Final = frozenset({"phone", "to", "recipient", "wa_id", "from"})
IDENTITY_FIELDS: Final = frozenset({"nik", "no_kk", "nik_almarhum"})

_CODE: Final = re.compile(r"[a-z][a-z0-9_]{0,39}")
_LONGEST_SAFE_NUMBER: Final = 10**9
"""Integers with ten or more digits could be a NIK or a phone number typed as a number."""


def redact_data(data: Mapping[str, Any]) -> dict[str, Any]:
    """``data`` with every value an operator must not read masked (see module doc)."""
    return {key: _field(key, value) for key, value in data.items()}


def _field(key: str, value: Any) -> Any:
    if isinstance(value, Mapping):
        return redact_data(value)
    if isinstance(value, list | tuple):
        return [_field(key, item) for item in value]
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value if abs(value) < _LONGEST_SAFE_NUMBER else HIDDEN
    return _text(key, str(value))


def _text(key: str, text: str) -> str:
    if key in SAFE_FIELDS or (key in CODE_FIELDS and _CODE.fullmatch(text)):
        return redact(text)
    if key in PHONE_FIELDS:
        return mask_phone(text)
    if key in IDENTITY_FIELDS:
        return mask_identity_number(text)
    return HIDDEN


def describe(data: Mapping[str, Any]) -> str:
    """``key=value`` pairs of redacted data on one line, nested values in braces."""
    return " ".join(f"{key}={_describe_value(value)}" for key, value in redact_data(data).items())


def _describe_value(value: Any) -> str:
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k}={_describe_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_describe_value(item) for item in value) + "]"
    if value is None:
        return "-"
    return str(value)
