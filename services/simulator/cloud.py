"""Cloud API error shapes and the validation of send-message bodies.

The simulator checks what the real Cloud API checks, so a malformed message fails in
development the way it would fail in production: HTTP 400 with error code 100 (invalid
parameter) and a message naming the offending parameter; a template the business number
has no approved translation of, or called with the wrong parameters, fails with the
template error codes (132001, 132000, 132012, 132018, 132005).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from fastapi.responses import JSONResponse

INVALID_PARAMETER = 100
INVALID_TOKEN = 190
TEMPLATE_PARAMETER_COUNT = 132000
TEMPLATE_NOT_FOUND = 132001
TEMPLATE_TEXT_TOO_LONG = 132005
TEMPLATE_PARAMETER_FORMAT = 132012
TEMPLATE_PARAMETER_TEXT = 132018

CALLBACK_DATA_MAX = 512
TEMPLATE_BODY_MAX = 1024

TEXT_BODY_MAX = 4096
CAPTION_MAX = 1024
INTERACTIVE_BODY_MAX = 1024
HEADER_TEXT_MAX = 60
FOOTER_TEXT_MAX = 60
BUTTONS_MAX = 3
BUTTON_TITLE_MAX = 20
BUTTON_ID_MAX = 256
LIST_BUTTON_MAX = 20
LIST_SECTIONS_MAX = 10
LIST_ROWS_MAX = 10
SECTION_TITLE_MAX = 24
ROW_ID_MAX = 200
ROW_TITLE_MAX = 24
ROW_DESCRIPTION_MAX = 72

MESSAGE_TYPES = ("text", "interactive", "document", "image", "template")

# Messages the real API gives for the error codes tests usually inject.
KNOWN_ERRORS: Mapping[int, tuple[str, str]] = {
    4: ("Application request limit reached", "Too many calls from this application."),
    368: ("Temporarily blocked for policies violations", "The account is restricted."),
    130429: ("Rate limit hit", "Cloud API message throughput has been reached."),
    131000: ("Something went wrong", "Message failed to send because of an unknown error."),
    131026: ("Message undeliverable", "Unable to deliver the message."),
    131047: (
        "Re-engagement message",
        "More than 24 hours have passed since the recipient last replied.",
    ),
    131056: (
        "(Business Account, Consumer Account) pair rate limit hit",
        "Too many messages sent from this phone number to the same phone number.",
    ),
    132000: (
        "Number of parameters does not match the expected number of params",
        "The number of template parameters does not match.",
    ),
    132001: ("Template name does not exist in the translation", "Template not found."),
    132005: ("Translated text too long", "Translated text is too long."),
    132012: (
        "Parameter format does not match format in the created template",
        "The parameters do not match the format of the approved template.",
    ),
    132018: (
        "There was an issue with the parameters in your template.",
        "Param text cannot have new-line/tab characters or more than 4 consecutive spaces.",
    ),
}

_PLACEHOLDER = re.compile(r"\{\{(\d+)\}\}")
_BODY_PARAMETER_TYPES = ("text", "currency", "date_time")


class ApprovedTemplate(Protocol):
    """What Meta keeps of an approved template (one translation): its body as registered,
    with numbered placeholders ``{{1}}``, ``{{2}}``..., and whether it has a document
    header. ``services.notify.domain.templates.TemplateSpec`` is one."""

    @property
    def body(self) -> str: ...

    @property
    def document_header(self) -> bool: ...


def fbtrace_id() -> str:
    return "A" + secrets.token_urlsafe(16)[:22]


class CloudApiError(Exception):
    """An error answered in the Cloud API's JSON shape."""

    def __init__(
        self,
        status: int,
        code: int,
        message: str,
        *,
        details: str | None = None,
        error_type: str = "OAuthException",
        subcode: int | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.error_type = error_type
        self.subcode = subcode

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {
            "message": self.message,
            "type": self.error_type,
            "code": self.code,
        }
        if self.subcode is not None:
            error["error_subcode"] = self.subcode
        if self.details is not None:
            error["error_data"] = {"messaging_product": "whatsapp", "details": self.details}
        error["fbtrace_id"] = fbtrace_id()
        return {"error": error}

    def response(self) -> JSONResponse:
        headers = {"WWW-Authenticate": 'OAuth "Facebook Platform" "invalid_token"'}
        return JSONResponse(
            self.body(),
            status_code=self.status,
            headers=headers if self.status == 401 else None,
        )


def invalid_token() -> CloudApiError:
    return CloudApiError(
        401, INVALID_TOKEN, "Invalid OAuth access token - Cannot parse access token"
    )


def unknown_object(object_id: str, method: str = "post", *, status: int = 400) -> CloudApiError:
    return CloudApiError(
        status,
        INVALID_PARAMETER,
        f"Unsupported {method} request. Object with ID '{object_id}' does not exist, "
        "cannot be loaded due to missing permissions, or does not support this operation.",
        error_type="GraphMethodException",
        subcode=33,
    )


def unknown_version(version: str) -> CloudApiError:
    return CloudApiError(400, 2500, f"Unknown path components: /{version}")


def invalid(details: str) -> CloudApiError:
    return CloudApiError(400, INVALID_PARAMETER, "(#100) Invalid parameter", details=details)


def template_error(code: int, details: str) -> CloudApiError:
    title, _ = KNOWN_ERRORS[code]
    return CloudApiError(400, code, f"(#{code}) {title}", details=details)


def injected(status: int, code: int, message: str | None) -> CloudApiError:
    title, details = KNOWN_ERRORS.get(code, ("Injected failure", "Injected by the simulator."))
    return CloudApiError(status, code, f"(#{code}) {message or title}", details=details)


# --- validation ---------------------------------------------------------------------------


def _object(value: object, name: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise invalid(f"Param {name} must be an object")
    return value


def _list(value: object, name: str) -> Sequence[Any]:
    if not isinstance(value, list):
        raise invalid(f"Param {name} must be an array")
    return value


def _string(
    value: object, name: str, *, max_length: int, min_length: int = 1, required: bool = True
) -> str | None:
    if value is None and not required:
        return None
    if not isinstance(value, str):
        raise invalid(f"Param {name} is required and must be a string")
    if len(value) < min_length:
        raise invalid(f"Param {name} must be at least {min_length} characters long")
    if len(value) > max_length:
        raise invalid(f"Param {name} must be at most {max_length} characters long")
    return value


def recipient(body: Mapping[str, Any]) -> str:
    """The digits of ``to``; the conversation key and the ``wa_id`` answered."""
    to = body.get("to")
    if not isinstance(to, str) or not to.strip():
        raise invalid("The parameter to is required.")
    digits = "".join(ch for ch in to if ch.isdigit())
    if not 7 <= len(digits) <= 15 or any(ch not in "+0123456789 -()" for ch in to):
        raise invalid(f"Param to must be a phone number, got {to!r}")
    return digits


def validate_send(
    body: object,
    known_media: set[str] | Mapping[str, object],
    templates: Mapping[str, ApprovedTemplate] | None = None,
    template_language: str = "id",
) -> None:
    """Raise :class:`CloudApiError` when the real API would refuse ``body``: 400 with code
    100 for a malformed body, or a template error (132xxx) for a template that is not one
    of ``templates`` (by approved name) in ``template_language``, or is called with other
    parameters than it was approved with. ``templates`` None accepts any template."""
    message = _object(body, "body")
    if message.get("messaging_product") != "whatsapp":
        raise invalid("The parameter messaging_product is required and must be 'whatsapp'.")
    recipient(message)
    recipient_type = message.get("recipient_type", "individual")
    if recipient_type != "individual":
        raise invalid("Param recipient_type must be 'individual'")
    kind = message.get("type")
    if kind not in MESSAGE_TYPES:
        raise invalid(
            f"Param type must be one of {', '.join(MESSAGE_TYPES)} (the simulator supports "
            f"these), got {kind!r}"
        )
    if "biz_opaque_callback_data" in message:
        _string(
            message["biz_opaque_callback_data"],
            "biz_opaque_callback_data",
            max_length=CALLBACK_DATA_MAX,
            min_length=0,
        )
    if "context" in message:
        context = _object(message["context"], "context")
        _string(context.get("message_id"), "context['message_id']", max_length=256)
    if kind not in message:
        raise invalid(f"Param {kind} is required for a message of type {kind}")
    part = _object(message[kind], kind)
    if kind == "text":
        _string(part.get("body"), "text['body']", max_length=TEXT_BODY_MAX)
        if not isinstance(part.get("preview_url", False), bool):
            raise invalid("Param text['preview_url'] must be a boolean")
    elif kind in ("document", "image"):
        _validate_media(part, kind, known_media)
    elif kind == "interactive":
        _validate_interactive(part, known_media)
    else:
        _validate_template(part)
        if templates is not None:
            _check_approved(part, templates, template_language, known_media)


def _validate_media(
    part: Mapping[str, Any], name: str, known_media: set[str] | Mapping[str, object]
) -> None:
    media_id, link = part.get("id"), part.get("link")
    if (media_id is None) == (link is None):
        raise invalid(f"Param {name} must have exactly one of 'id' or 'link'")
    if media_id is not None:
        if not isinstance(media_id, str) or media_id not in known_media:
            raise invalid(f"Param {name}['id'] is not a valid media id: {media_id!r}")
    elif not isinstance(link, str) or not link.startswith(("http://", "https://")):
        raise invalid(f"Param {name}['link'] must be an http(s) URL")
    _string(part.get("caption"), f"{name}['caption']", max_length=CAPTION_MAX, required=False)
    if name == "document":
        _string(part.get("filename"), "document['filename']", max_length=240, required=False)


def _validate_interactive(
    part: Mapping[str, Any], known_media: set[str] | Mapping[str, object]
) -> None:
    kind = part.get("type")
    if kind not in ("button", "list"):
        raise invalid(f"Param interactive['type'] must be 'button' or 'list', got {kind!r}")
    body = _object(part.get("body"), "interactive['body']")
    _string(body.get("text"), "interactive['body']['text']", max_length=INTERACTIVE_BODY_MAX)
    if "footer" in part:
        footer = _object(part["footer"], "interactive['footer']")
        _string(footer.get("text"), "interactive['footer']['text']", max_length=FOOTER_TEXT_MAX)
    if "header" in part:
        header = _object(part["header"], "interactive['header']")
        header_type = header.get("type")
        allowed = ("text",) if kind == "list" else ("text", "image", "document")
        if header_type not in allowed:
            raise invalid(f"Param interactive['header']['type'] must be one of {allowed}")
        if header_type == "text":
            _string(header.get("text"), "interactive['header']['text']", max_length=HEADER_TEXT_MAX)
        else:
            media = _object(header.get(str(header_type)), f"interactive['header']['{header_type}']")
            _validate_media(media, f"interactive['header']['{header_type}']", known_media)
    action = _object(part.get("action"), "interactive['action']")
    if kind == "button":
        _validate_buttons(action)
    else:
        _validate_list(action)


def _validate_buttons(action: Mapping[str, Any]) -> None:
    buttons = _list(action.get("buttons"), "interactive['action']['buttons']")
    if not 1 <= len(buttons) <= BUTTONS_MAX:
        raise invalid(
            f"Param interactive['action']['buttons'] must have 1 to {BUTTONS_MAX} elements, "
            f"got {len(buttons)}"
        )
    ids: set[str] = set()
    titles: set[str] = set()
    for index, raw in enumerate(buttons):
        name = f"interactive['action']['buttons'][{index}]"
        button = _object(raw, name)
        if button.get("type") != "reply":
            raise invalid(f"Param {name}['type'] must be 'reply'")
        reply = _object(button.get("reply"), f"{name}['reply']")
        button_id = _string(reply.get("id"), f"{name}['reply']['id']", max_length=BUTTON_ID_MAX)
        title = _string(
            reply.get("title"), f"{name}['reply']['title']", max_length=BUTTON_TITLE_MAX
        )
        if button_id in ids or title in titles:
            raise invalid("Buttons must have unique ids and unique titles")
        ids.add(str(button_id))
        titles.add(str(title))


def _validate_list(action: Mapping[str, Any]) -> None:
    _string(action.get("button"), "interactive['action']['button']", max_length=LIST_BUTTON_MAX)
    sections = _list(action.get("sections"), "interactive['action']['sections']")
    if not 1 <= len(sections) <= LIST_SECTIONS_MAX:
        raise invalid(
            f"Param interactive['action']['sections'] must have 1 to {LIST_SECTIONS_MAX} "
            f"elements, got {len(sections)}"
        )
    row_ids: set[str] = set()
    rows_total = 0
    for index, raw in enumerate(sections):
        name = f"interactive['action']['sections'][{index}]"
        section = _object(raw, name)
        _string(
            section.get("title"),
            f"{name}['title']",
            max_length=SECTION_TITLE_MAX,
            required=len(sections) > 1,
        )
        rows = _list(section.get("rows"), f"{name}['rows']")
        if not rows:
            raise invalid(f"Param {name}['rows'] must not be empty")
        rows_total += len(rows)
        for row_index, raw_row in enumerate(rows):
            row_name = f"{name}['rows'][{row_index}]"
            row = _object(raw_row, row_name)
            row_id = _string(row.get("id"), f"{row_name}['id']", max_length=ROW_ID_MAX)
            _string(row.get("title"), f"{row_name}['title']", max_length=ROW_TITLE_MAX)
            _string(
                row.get("description"),
                f"{row_name}['description']",
                max_length=ROW_DESCRIPTION_MAX,
                required=False,
            )
            if row_id in row_ids:
                raise invalid(f"Row ids must be unique, {row_id!r} is repeated")
            row_ids.add(str(row_id))
    if rows_total > LIST_ROWS_MAX:
        raise invalid(
            f"Param interactive['action']['sections'] must have at most {LIST_ROWS_MAX} rows "
            f"in total, got {rows_total}"
        )


def _validate_template(part: Mapping[str, Any]) -> None:
    _string(part.get("name"), "template['name']", max_length=512)
    language = _object(part.get("language"), "template['language']")
    _string(language.get("code"), "template['language']['code']", max_length=16)
    if "components" not in part:
        return
    components = _list(part["components"], "template['components']")
    for index, raw in enumerate(components):
        name = f"template['components'][{index}]"
        component = _object(raw, name)
        if component.get("type") not in ("header", "body", "button", "footer"):
            raise invalid(f"Param {name}['type'] must be header, body, button or footer")
        for p_index, raw_parameter in enumerate(
            _list(component.get("parameters", []), f"{name}['parameters']")
        ):
            p_name = f"{name}['parameters'][{p_index}]"
            parameter = _object(raw_parameter, p_name)
            p_type = parameter.get("type")
            if not isinstance(p_type, str):
                raise invalid(f"Param {p_name}['type'] is required")
            if p_type == "text":
                _string(parameter.get("text"), f"{p_name}['text']", max_length=32768)
            elif p_type not in parameter:
                raise invalid(f"Param {p_name}['{p_type}'] is required")


def template_parameters(template: Mapping[str, Any]) -> list[str]:
    """The human-readable values of a template's parameters, in order."""
    return [
        shown
        for component in template.get("components") or []
        if isinstance(component, Mapping)
        for parameter in component.get("parameters") or []
        if isinstance(parameter, Mapping) and (shown := _shown(parameter)) is not None
    ]


def _parameters(part: Mapping[str, Any], component_type: str) -> list[Mapping[str, Any]]:
    """The parameters of every component of ``component_type`` (shape already validated)."""
    return [
        parameter
        for component in part.get("components") or []
        if component.get("type") == component_type
        for parameter in component.get("parameters") or []
    ]


def placeholders(body: str) -> int:
    """How many parameters a template body takes (its highest ``{{n}}``)."""
    return max((int(number) for number in _PLACEHOLDER.findall(body)), default=0)


def _check_approved(
    part: Mapping[str, Any],
    templates: Mapping[str, ApprovedTemplate],
    language: str,
    known_media: set[str] | Mapping[str, object],
) -> None:
    name = str(part["name"])
    code = str(part["language"]["code"])
    template = templates.get(name)
    if template is None or code != language:
        raise template_error(TEMPLATE_NOT_FOUND, f"template name ({name}) does not exist in {code}")
    body = _parameters(part, "body")
    expected = placeholders(template.body)
    if len(body) != expected:
        raise template_error(
            TEMPLATE_PARAMETER_COUNT,
            f"body: number of localizable_params ({len(body)}) does not match the expected "
            f"number of params ({expected})",
        )
    header = _parameters(part, "header")
    if template.document_header:
        received = str(header[0].get("type")).upper() if len(header) == 1 else "UNKNOWN"
        if received != "DOCUMENT":
            raise template_error(
                TEMPLATE_PARAMETER_FORMAT,
                f"header: Format mismatch, expected DOCUMENT, received {received}",
            )
        document = header[0].get("document")
        if not isinstance(document, Mapping) or not (document.get("id") or document.get("link")):
            raise template_error(
                TEMPLATE_PARAMETER_FORMAT,
                "header: a DOCUMENT parameter needs the id of an uploaded medium or a link",
            )
        _validate_media(document, "template header['document']", known_media)
    elif header:
        raise template_error(
            TEMPLATE_PARAMETER_COUNT,
            f"header: number of localizable_params ({len(header)}) does not match the "
            "expected number of params (0)",
        )
    for parameter in body:
        if parameter.get("type") not in _BODY_PARAMETER_TYPES:
            received = str(parameter.get("type")).upper()
            raise template_error(
                TEMPLATE_PARAMETER_FORMAT,
                f"body: Format mismatch, expected TEXT, received {received}",
            )
        text = parameter.get("text")
        if isinstance(text, str) and ("\n" in text or "\t" in text or "     " in text):
            raise template_error(
                TEMPLATE_PARAMETER_TEXT,
                "Param text cannot have new-line/tab characters or more than 4 consecutive spaces",
            )
    rendered = render_template(part, template)
    if len(rendered) > TEMPLATE_BODY_MAX:
        raise template_error(
            TEMPLATE_TEXT_TOO_LONG,
            f"body: {len(rendered)} characters with its parameters, at most {TEMPLATE_BODY_MAX}",
        )


def _shown(parameter: Mapping[str, Any]) -> str | None:
    p_type = parameter.get("type")
    value = parameter.get(p_type) if isinstance(p_type, str) else None
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        label = value.get("fallback_value") or value.get("filename") or value.get("id")
        return str(label or p_type)
    return None


def render_template(part: Mapping[str, Any], template: ApprovedTemplate) -> str:
    """What the citizen reads: the approved body with the call's body parameters filled in
    (a call already checked against ``template``)."""
    values = [_shown(parameter) or "" for parameter in _parameters(part, "body")]
    return _PLACEHOLDER.sub(lambda match: values[int(match.group(1)) - 1], template.body)


def template_header_media(part: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The document or image object in the header of a template call, if any."""
    for parameter in _parameters(part, "header"):
        p_type = parameter.get("type")
        media = parameter.get(p_type) if p_type in ("document", "image") else None
        if isinstance(media, Mapping):
            return media
    return None
