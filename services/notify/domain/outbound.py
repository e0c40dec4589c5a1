"""A message the office owes a citizen, as rendered, and the Cloud API bodies that say it.

A message is rendered once, when its cause is handled, and recorded with the intent to send
it (``NotificationQueued``). How it goes out is decided at each attempt, because a message
that waits (rate limits, an outage) may leave the citizen's 24-hour window meanwhile:

* inside the window: free-form, as a ``document`` (a letter, the text as caption), an
  ``interactive`` message (reply buttons or a list, when it has choices and interactive
  messages are enabled) or plain ``text`` (the full text, which always says how to answer
  by typing: the text fallback);
* outside the window: the approved ``template`` that says the same, with typed
  parameters; a message without one is not sent at all (Meta would refuse it with 131047).

The limits are the Cloud API's: at most 3 reply buttons with titles of at most 20
characters, at most 10 list rows with titles of at most 24 characters and descriptions of
at most 72, an interactive body of at most 1,024 characters, a text of at most 4,096.
"""

from __future__ import annotations

from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared.contracts import SendForm

TEXT_MAX: Final = 4096
INTERACTIVE_BODY_MAX: Final = 1024
CAPTION_MAX: Final = 1024
BUTTONS_MAX: Final = 3
BUTTON_TITLE_MAX: Final = 20
LIST_ROWS_MAX: Final = 10
LIST_BUTTON_MAX: Final = 20
ROW_TITLE_MAX: Final = 24
ROW_DESCRIPTION_MAX: Final = 72
TEMPLATE_PARAMETER_MAX: Final = 1024


class _Part(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Choice(_Part):
    """A reply button (``title`` <= 20) or a list row (``title`` <= 24, ``description``)."""

    id: str = Field(min_length=1, max_length=200)
    title: str = Field(min_length=1, max_length=ROW_TITLE_MAX)
    description: str | None = Field(default=None, max_length=ROW_DESCRIPTION_MAX)


class Choices(_Part):
    """The interactive part of a message: reply buttons, or a list behind a button."""

    style: Literal["buttons", "list"]
    body: str = Field(min_length=1, max_length=INTERACTIVE_BODY_MAX)
    """The interactive message's body (the full text is the fallback when it is longer)."""
    options: tuple[Choice, ...] = Field(min_length=1, max_length=LIST_ROWS_MAX)
    button: str | None = Field(default=None, max_length=LIST_BUTTON_MAX)
    """The label of the button that opens a list (required for a list)."""
    section: str | None = Field(default=None, max_length=24)
    footer: str | None = Field(default=None, max_length=60)

    @model_validator(mode="after")
    def _within_the_api_limits(self) -> Choices:
        if self.style == "buttons":
            if len(self.options) > BUTTONS_MAX:
                raise ValueError(f"at most {BUTTONS_MAX} reply buttons")
            for option in self.options:
                if len(option.title) > BUTTON_TITLE_MAX or option.description is not None:
                    raise ValueError(f"button titles: at most {BUTTON_TITLE_MAX} characters")
        elif not self.button:
            raise ValueError("a list needs the label of its button")
        return self


class Attached(_Part):
    """A file sent as a document message (or a template's document header).

    ``sha256`` names the bytes in the media store; None when the cause should have carried
    a file and did not (the message then fails for good)."""

    sha256: str | None
    filename: str
    content_type: str = "application/pdf"


class TemplateCall(_Part):
    """An approved template by its catalogue key, with its body parameters in order.

    Parameters are single lines (the Cloud API refuses new lines, tabs and more than four
    spaces in a row); a template with a document header takes the message's file."""

    key: str = Field(min_length=1)
    parameters: tuple[str, ...] = ()
    document_header: bool = False

    @model_validator(mode="after")
    def _single_line_parameters(self) -> TemplateCall:
        for parameter in self.parameters:
            if not parameter.strip():
                raise ValueError(f"template {self.key}: an empty parameter")
            if "\n" in parameter or "\t" in parameter or "     " in parameter:
                raise ValueError(f"template {self.key}: a parameter must be one line")
            if len(parameter) > TEMPLATE_PARAMETER_MAX:
                raise ValueError(f"template {self.key}: a parameter is too long")
        return self


class OutboundMessage(_Part):
    """One message for one citizen, every way it may be said."""

    to: str
    kind: str
    """What it is about (``request-received``, ``issuance-scheduled``...), for officers,
    logs and metrics."""
    text: str = Field(min_length=1, max_length=TEXT_MAX)
    """The full text: the body of a text message, and the caption of a document."""
    ticket: str | None = None
    choices: Choices | None = None
    document: Attached | None = None
    template: TemplateCall | None = None
    """How to say it outside the 24-hour window; None: only inside (a direct answer)."""

    @model_validator(mode="after")
    def _caption_fits(self) -> OutboundMessage:
        if self.document is not None and len(self.text) > CAPTION_MAX:
            raise ValueError(f"a document's caption: at most {CAPTION_MAX} characters")
        return self


def choose_form(
    message: OutboundMessage, *, in_window: bool, interactive: bool = True
) -> SendForm | None:
    """How to send ``message`` now; None when it may not be sent at all (outside the
    window, with no template)."""
    if not in_window:
        return "template" if message.template is not None else None
    if message.document is not None:
        return "document"
    if message.choices is not None and interactive:
        return "interactive"
    return "text"


def _interactive(choices: Choices) -> dict[str, Any]:
    action: dict[str, Any]
    if choices.style == "buttons":
        action = {
            "buttons": [
                {"type": "reply", "reply": {"id": option.id, "title": option.title}}
                for option in choices.options
            ]
        }
    else:
        rows = []
        for option in choices.options:
            row = {"id": option.id, "title": option.title}
            if option.description:
                row["description"] = option.description
            rows.append(row)
        section: dict[str, Any] = {"rows": rows}
        if choices.section:
            section["title"] = choices.section
        action = {"button": choices.button, "sections": [section]}
    part: dict[str, Any] = {
        "type": "button" if choices.style == "buttons" else "list",
        "body": {"text": choices.body},
        "action": action,
    }
    if choices.footer:
        part["footer"] = {"text": choices.footer}
    return part


def cloud_payload(
    message: OutboundMessage,
    form: SendForm,
    *,
    template_name: str | None = None,
    language: str = "id",
    media_id: str | None = None,
) -> dict[str, Any]:
    """The body of ``POST /{phone_number_id}/messages`` without the envelope fields
    (``messaging_product``, ``recipient_type``) and the callback data, which the client adds.

    ``media_id`` is the uploaded file of a document or of a template's document header;
    ``template_name`` the approved name of the message's template (configurable per office).
    """
    match form:
        case "text":
            return {"to": message.to, "type": "text", "text": {"body": message.text}}
        case "interactive":
            if message.choices is None:
                raise ValueError("an interactive message without choices")
            return {
                "to": message.to,
                "type": "interactive",
                "interactive": _interactive(message.choices),
            }
        case "document":
            if message.document is None or media_id is None:
                raise ValueError("a document message needs its uploaded file")
            return {
                "to": message.to,
                "type": "document",
                "document": {
                    "id": media_id,
                    "filename": message.document.filename,
                    "caption": message.text,
                },
            }
        case "template":
            call = message.template
            if call is None or template_name is None:
                raise ValueError("a template message needs its template and name")
            components: list[dict[str, Any]] = []
            if call.document_header:
                if message.document is None or media_id is None:
                    raise ValueError("a template with a document header needs the file")
                components.append(
                    {
                        "type": "header",
                        "parameters": [
                            {
                                "type": "document",
                                "document": {
                                    "id": media_id,
                                    "filename": message.document.filename,
                                },
                            }
                        ],
                    }
                )
            if call.parameters:
                components.append(
                    {
                        "type": "body",
                        "parameters": [
                            {"type": "text", "text": parameter} for parameter in call.parameters
                        ],
                    }
                )
            template: dict[str, Any] = {"name": template_name, "language": {"code": language}}
            if components:
                template["components"] = components
            return {"to": message.to, "type": "template", "template": template}
