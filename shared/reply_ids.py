"""Ids of the buttons and list rows notify sends, which come back to intake as a
``button_reply`` or ``list_reply``: the contract between the two services' ends of an
interactive message.

The citizen may also answer in text (the text fallback, an old WhatsApp, or simply typing);
intake understands both, so an id only ever saves typing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

MENU: Final = "menu"
"""Show the list of services."""
GUIDED_RESTART: Final = "guided:restart"
"""Start the guided request again from the choice of document."""
GUIDED_LEAVE: Final = "guided:leave"
"""Leave guided mode."""
GUIDED_CONFIRM: Final = "guided:confirm"
"""Send the request as summarised."""
GUIDED_EDIT: Final = "guided:edit"
"""Answer the document's questions again (the document stays chosen)."""


def choose_service(doc_type: str) -> str:
    """A row of the menu list: start a guided request for ``doc_type``."""
    return f"svc:{doc_type}"


def guided_start(doc_type: str) -> str:
    """A button under a broken format or a document's information: fill it in step by step."""
    return f"guided:start:{doc_type}"


def guided_answer(value: str) -> str:
    """A button or row that answers the current guided question with ``value`` (e.g. the
    reason for a KTP)."""
    return f"guided:answer:{value}"


def status_of(ticket: str) -> str:
    """Ask for a ticket's status (as ``#STATUS#<ticket>``)."""
    return f"status:{ticket}"


def survey(score: int) -> str:
    """Answer the satisfaction survey with ``score`` (1..4)."""
    return f"survey:{score}"


@dataclass(frozen=True)
class ReplyId:
    """A parsed reply id: ``action`` (``svc``, ``guided:start``, ``guided:answer``,
    ``status``, ``survey``, or one of the bare constants) and its ``value``."""

    action: str
    value: str | None = None


_PREFIXES: Final = ("guided:start:", "guided:answer:", "svc:", "status:", "survey:")
_BARE: Final = frozenset({MENU, GUIDED_RESTART, GUIDED_LEAVE, GUIDED_CONFIRM, GUIDED_EDIT})


def parse(reply_id: str | None) -> ReplyId | None:
    """The reply id's meaning, or None for an id that is not ours (or is empty)."""
    if not reply_id:
        return None
    if reply_id in _BARE:
        return ReplyId(reply_id)
    for prefix in _PREFIXES:
        if reply_id.startswith(prefix):
            value = reply_id.removeprefix(prefix)
            return ReplyId(prefix.rstrip(":"), value) if value else None
    return None
