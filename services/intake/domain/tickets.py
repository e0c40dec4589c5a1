"""Tickets: short, readable, and impossible to guess from another ticket.

A ticket is derived from the WhatsApp message id with the office's secret key (HMAC), so
the same message always gets the same ticket (a redelivery cannot mint a second one),
while without the key neither the next nor any other ticket can be predicted.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from typing import Final

# Crockford's base 32: no I, L, O, U, so nothing reads as another character.
ALPHABET: Final = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
TICKET_PATTERN: Final = re.compile(r"^[A-Z0-9-]{6,24}$")
_LENGTH: Final = 8  # 40 bits: collisions are retried, guessing is hopeless


def ticket_for(prefix: str, cause: str, key: bytes, attempt: int = 0) -> str:
    """``KTP-7Q2M9XAB``: ``prefix`` names the service, the rest is keyed randomness.

    ``attempt`` > 0 gives the alternatives to use if a ticket is already taken.
    """
    digest = hmac.new(key, f"ticket\x1f{cause}\x1f{attempt}".encode(), hashlib.sha256).digest()
    number = int.from_bytes(digest[:5], "big")
    chars = []
    for _ in range(_LENGTH):
        number, index = divmod(number, 32)
        chars.append(ALPHABET[index])
    return f"{prefix}-{''.join(chars)}"
