"""A citizen's WhatsApp conversation, folded from its stream.

It answers the questions intake asks about a new message: which files did this number
send recently that belong to no request yet, which request did it make just now (so
that a file sent right after it belongs to it), and which guided-mode question is open?
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Final

from shared.contracts import (
    Attachment,
    AttachmentLinked,
    AttachmentStored,
    CorrectionSubmitted,
    GuidedEnded,
    GuidedStepAsked,
    RequestSubmitted,
    WhatsAppMessageReceived,
)
from shared.eventstore.envelope import Decoded, Event, RecordedEvent

ATTACH_WINDOW: Final = timedelta(minutes=30)
"""Files sent this long before or after a request text belong to that request."""


@dataclass(frozen=True)
class GuidedState:
    """The open question of a guided request: the last ``GuidedStepAsked`` with no
    ``GuidedEnded`` after it.

    ``doc_type`` and ``field`` are as the event recorded them (a document keyword or None;
    ``doc_type``, a ``FormField`` value or ``confirm``): the guided-mode decisions check
    them against today's catalogue. Times are those of the citizen's messages (WhatsApp's
    ``sent_at``), so a backlog in the office's queues never makes a session look idle.
    """

    doc_type: str | None
    field: str
    answers: Mapping[str, str]
    asked_at: datetime
    """When the message this question answers was sent."""
    started_at: datetime
    """When the message that opened the session was sent."""
    problem: str | None = None

    def expired(self, now: datetime, idle: timedelta) -> bool:
        """Whether the citizen has been quiet for longer than ``idle`` at ``now``."""
        return now - self.asked_at > idle


@dataclass
class Conversation:
    sent_at: dict[str, datetime] = field(default_factory=dict)
    unclaimed: dict[str, Attachment] = field(default_factory=dict)
    requests: list[tuple[str, datetime]] = field(default_factory=list)
    subjects: dict[str, list[str]] = field(default_factory=dict)
    guided: GuidedState | None = None
    """The open guided-mode question, however old (see :meth:`GuidedState.expired`)."""

    @classmethod
    def fold(cls, events: Iterable[Decoded]) -> Conversation:
        conversation = cls()
        for recorded, event in events:
            conversation.apply(recorded, event)
        return conversation

    def apply(self, recorded: RecordedEvent, event: Event) -> None:
        match event:
            case WhatsAppMessageReceived() as message:
                self.sent_at[message.message_id] = message.sent_at
            case AttachmentStored(attachment=stored):
                self.unclaimed[stored.sha256] = stored
            case RequestSubmitted() as submitted:
                for digest in submitted.attachments:
                    self.unclaimed.pop(digest, None)
                at = self.sent_at.get(submitted.message_id, recorded.occurred_at)
                self.requests.append((submitted.ticket, at))
                if submitted.subject_key is not None:
                    self.subjects.setdefault(submitted.subject_key, []).append(submitted.ticket)
            case CorrectionSubmitted() as correction:
                for attachment in correction.attachments:
                    self.unclaimed.pop(attachment.sha256, None)
                at = self.sent_at.get(correction.message_id, recorded.occurred_at)
                # Files that follow a correction belong to its request, as after a request.
                self.requests.append((correction.ticket, at))
            case AttachmentLinked() as linked:
                self.unclaimed.pop(linked.sha256, None)
            case GuidedStepAsked() as step:
                at = self.sent_at.get(step.message_id, recorded.occurred_at)
                self.guided = GuidedState(
                    doc_type=step.doc_type,
                    field=step.field,
                    answers=MappingProxyType(dict(step.answers)),
                    asked_at=at,
                    started_at=at if self.guided is None else self.guided.started_at,
                    problem=step.problem,
                )
            case GuidedEnded():
                self.guided = None
            case _:
                pass

    def recent_attachments(
        self, now: datetime, *, since: datetime | None = None
    ) -> list[Attachment]:
        """Unclaimed files sent within the window before ``now``, oldest first; with
        ``since`` (the start of a guided request, which may take longer than the window),
        also those sent from the window before ``since`` on."""
        earliest = now - ATTACH_WINDOW
        if since is not None:
            earliest = min(earliest, since - ATTACH_WINDOW)
        recent = [
            attachment
            for attachment in self.unclaimed.values()
            if self.sent_at.get(attachment.message_id, now) >= earliest
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
