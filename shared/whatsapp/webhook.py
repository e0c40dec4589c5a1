"""The WhatsApp Cloud API webhook: signature check and the payload's shape.

Only what adminduk uses is modelled; unknown fields are ignored (Meta adds fields over
time), but the envelope must be a WhatsApp Business Account change or the request is
refused with 400.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

SIGNATURE_HEADER = "X-Hub-Signature-256"


def signature(body: bytes, app_secret: str) -> str:
    """The header value Meta sends: ``sha256=<hex HMAC-SHA256 of the raw body>``."""
    return "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()


def signature_is_valid(body: bytes, header: str | None, app_secret: str) -> bool:
    """Constant-time comparison over the raw bytes, as received."""
    if not header:
        return False
    return hmac.compare_digest(header.strip().encode(), signature(body, app_secret).encode())


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)


class Profile(_Model):
    name: str | None = None


class Contact(_Model):
    wa_id: str
    profile: Profile = Field(default_factory=Profile)


class Text(_Model):
    body: str = Field(max_length=65536)


class Media(_Model):
    """An image or document as announced by the webhook: the bytes come separately."""

    id: str = Field(min_length=1, max_length=200)
    mime_type: str | None = None
    sha256: str | None = None
    caption: str | None = None
    filename: str | None = None


class ButtonReply(_Model):
    id: str
    title: str


class ListReply(_Model):
    id: str
    title: str
    description: str | None = None


class Interactive(_Model):
    type: str
    button_reply: ButtonReply | None = None
    list_reply: ListReply | None = None


class Context(_Model):
    id: str | None = None
    from_: str | None = Field(default=None, alias="from")


class Message(_Model):
    # ASCII digits: the pattern's ``\d`` would take any script's (Arabic-Indic, full-width).
    from_: str = Field(alias="from", pattern=r"^[0-9]{6,20}$")
    id: str = Field(min_length=1, max_length=200)
    timestamp: str
    type: str
    text: Text | None = None
    image: Media | None = None
    document: Media | None = None
    interactive: Interactive | None = None
    context: Context | None = None


class StatusError(_Model):
    code: int
    title: str | None = None


class Status(_Model):
    # Becomes part of a stream id (``delivery-<id>``): no whitespace, bounded.
    id: str = Field(min_length=1, max_length=150, pattern=r"^\S+$")
    status: str
    timestamp: str
    recipient_id: str | None = None
    biz_opaque_callback_data: str | None = None
    errors: tuple[StatusError, ...] = ()


class ValueMetadata(_Model):
    phone_number_id: str = Field(max_length=64)
    display_phone_number: str | None = None


class Value(_Model):
    messaging_product: Literal["whatsapp"]
    metadata: ValueMetadata
    contacts: tuple[Contact, ...] = ()
    messages: tuple[Message, ...] = ()
    statuses: tuple[Status, ...] = ()


class Change(_Model):
    field: str
    value: Value


class Entry(_Model):
    id: str
    changes: tuple[Change, ...]


class WebhookPayload(_Model):
    """``{"object": "whatsapp_business_account", "entry": [...]}``"""

    object: Literal["whatsapp_business_account"]
    entry: tuple[Entry, ...] = Field(min_length=1)

    def messages(self, phone_number_id: str | None = None) -> list[tuple[Value, Message]]:
        """Every message of every change of every entry, with its change's value; only those
        to the business number ``phone_number_id`` when given."""
        return [
            (change.value, message)
            for entry in self.entry
            for change in entry.changes
            if phone_number_id is None or change.value.metadata.phone_number_id == phone_number_id
            for message in change.value.messages
        ]

    def statuses(self, phone_number_id: str | None = None) -> list[tuple[Value, Status]]:
        """Every delivery status, as :meth:`messages`."""
        return [
            (change.value, status)
            for entry in self.entry
            for change in entry.changes
            if phone_number_id is None or change.value.metadata.phone_number_id == phone_number_id
            for status in change.value.statuses
        ]

    def item_count(self) -> int:
        """Messages and statuses, whatever business number they are for."""
        return sum(
            len(change.value.messages) + len(change.value.statuses)
            for entry in self.entry
            for change in entry.changes
        )

    def foreign_items(self, phone_number_id: str) -> dict[str, int]:
        """Messages and statuses for another business number than ``phone_number_id``, by
        that number's id (a Meta app can serve several numbers; this office has one)."""
        foreign: dict[str, int] = {}
        for entry in self.entry:
            for change in entry.changes:
                value = change.value
                if value.metadata.phone_number_id != phone_number_id:
                    other = value.metadata.phone_number_id
                    foreign[other] = (
                        foreign.get(other, 0) + len(value.messages) + len(value.statuses)
                    )
        return foreign
