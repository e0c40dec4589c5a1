"""A citizen's complaint (``#ADUAN#``): open until an officer answers it in writing."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from services.verification.domain.request import InvalidDecisionError, Officer
from shared.contracts import ComplaintAnswered, ComplaintReceived
from shared.eventstore.envelope import Decoded, Event, RecordedEvent

MAX_ANSWER_LENGTH: Final = 3000
"""Leaves room in WhatsApp's 4,096 characters for the lines around the answer."""


class ComplaintClosedError(Exception):
    """The complaint was answered already (the API answers 409)."""


@dataclass
class Complaint:
    ticket: str = ""
    version: int = 0
    phone: str = ""
    text: str = ""
    related_ticket: str | None = None
    received_at: datetime | None = None
    answer: str | None = None
    answered_by: str | None = None
    answered_at: datetime | None = None

    @classmethod
    def fold(cls, events: Iterable[Decoded]) -> Complaint:
        complaint = cls()
        for recorded, event in events:
            complaint.apply(recorded, event)
        return complaint

    def apply(self, recorded: RecordedEvent, event: Event) -> None:
        self.version = recorded.stream_version
        match event:
            case ComplaintReceived() as received:
                self.ticket, self.phone, self.text = received.ticket, received.phone, received.text
                self.related_ticket = received.related_ticket
                self.received_at = recorded.recorded_at
            case ComplaintAnswered() as answered:
                self.answer, self.answered_by = answered.answer, answered.officer_id
                self.answered_at = recorded.recorded_at
            case _:
                pass

    @property
    def is_open(self) -> bool:
        return self.answer is None

    def answer_with(self, officer: Officer, answer: str) -> list[Event]:
        text = answer.strip()
        if not text:
            raise InvalidDecisionError("the answer is empty")
        if len(text) > MAX_ANSWER_LENGTH:
            raise InvalidDecisionError(f"an answer has at most {MAX_ANSWER_LENGTH} characters")
        if not self.is_open:
            raise ComplaintClosedError(f"complaint {self.ticket} was answered already")
        return [
            ComplaintAnswered(
                ticket=self.ticket, officer_id=officer.id, answer=text, phone=self.phone
            )
        ]
