"""What several test suites need to play WhatsApp's part."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from shared.config import DEV_PHONE_NUMBER_ID
from shared.contracts import registry
from shared.eventstore.envelope import Decoded, RecordedEvent


def text_webhook(
    phone: str, message_id: str, text: str, *, phone_number_id: str = DEV_PHONE_NUMBER_ID
) -> dict[str, Any]:
    """A Cloud API webhook carrying one text message, in the shape Meta sends."""
    return {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": "102290129340398",
                "changes": [
                    {
                        "field": "messages",
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {
                                "display_phone_number": "6281282372016",
                                "phone_number_id": phone_number_id,
                            },
                            "contacts": [{"profile": {"name": "Warga"}, "wa_id": phone}],
                            "messages": [
                                {
                                    "from": phone,
                                    "id": message_id,
                                    "timestamp": str(int(time.time())),
                                    "type": "text",
                                    "text": {"body": text},
                                }
                            ],
                        },
                    }
                ],
            }
        ],
    }


def decoded(recorded: RecordedEvent) -> Decoded:
    """A stored event with its form decoded through the contracts' registry (upcast): what
    an aggregate's ``apply`` takes."""
    return recorded, registry.decode(recorded)


def decode_all(events: Iterable[RecordedEvent]) -> list[Decoded]:
    """Stored events decoded for an aggregate's ``fold``."""
    return registry.decode_all(events)
