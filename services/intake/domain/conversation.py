"""A citizen's WhatsApp conversation, folded from its stream.

It answers the questions intake asks about a new message: which files did this number
send recently that belong to no request yet, and which request did it make just now (so
that a file sent right after it belongs to it)?
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final

from shared.contracts import (
    Attachment,
    AttachmentLinked,
    AttachmentStored,
    CorrectionSubmitted,
    RequestSubmitted,
    WhatsAppMessageReceived,
)
from shared.eventstore.envelope import RecordedEvent

ATTACH_WINDOW: Final = timedelta(minutes=30)
"""Files sent this long before or after a request text belong to that request."""


@dataclass
class Conversation:
    sent_at: dict[str, datetime] = field(default_factory=dict)
    unclaimed: dict[str, Attachment] = field(default_factory=dict)
    requests: list[tuple[str, datetime]] = field(default_factory=list)
    subjects: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def fold(cls, events: Iterable[RecordedEvent]) -> Conversation:
        conversation = cls()
        for event in events:
            conversation.apply(event)
        return conversation

    def apply(self, event: RecordedEvent) -> None:
        match event.event_type:
            case WhatsAppMessageReceived.event_type:
                message = WhatsAppMessageReceived.model_validate(event.data)
                self.sent_at[message.message_id] = message.sent_at
            case AttachmentStored.event_type:
                stored = AttachmentStored.model_validate(event.data).attachment
                self.unclaimed[stored.sha256] = stored
            case RequestSubmitted.event_type:
                submitted = RequestSubmitted.model_validate(event.data)
                for digest in submitted.attachments:
                    self.unclaimed.pop(digest, None)
                at = self.sent_at.get(submitted.message_id, event.occurred_at)
                self.requests.append((submitted.ticket, at))
                if submitted.subject_key is not None:
                    self.subjects.setdefault(submitted.subject_key, []).append(submitted.ticket)
            case CorrectionSubmitted.event_type:
                correction = CorrectionSubmitted.model_validate(event.data)
                for attachment in correction.attachments:
                    self.unclaimed.pop(attachment.sha256, None)
                at = self.sent_at.get(correction.message_id, event.occurred_at)
                # Files that follow a correction belong to its request, as after a request.
                self.requests.append((correction.ticket, at))
            case AttachmentLinked.event_type:
                self.unclaimed.pop(AttachmentLinked.model_validate(event.data).sha256, None)
            case _:
                pass

    def recent_attachments(self, now: datetime) -> list[Attachment]:
        """Unclaimed files sent within the window before ``now``, oldest first."""
        recent = [
            attachment
            for attachment in self.unclaimed.values()
            if now - self.sent_at.get(attachment.message_id, now) <= ATTACH_WINDOW
        ]
        return sorted(recent, key=lambda a: self.sent_at.get(a.message_id, now))

    def tickets_for(self, subject_key: str) -> list[str]:
        """Tickets this number was given for the same person and document, oldest first."""
        return list(self.subjects.get(subject_key, ()))

    def owns(self, ticket: str) -> bool:
        """Whether this number was given ``ticket`` (known before any read model has it)."""
        return any(known == ticket for known, _ in self.requests)

    def recent_ticket(self, now: datetime) -> str | None:
        """The request made within the window before ``now``, if any (the latest)."""
        for ticket, at in reversed(self.requests):
            if timedelta(0) <= now - at <= ATTACH_WINDOW:
                return ticket
        return None
