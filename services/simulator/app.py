"""HTTP side of the WhatsApp simulator.

Cloud API side (what the services call; base URL ``http://{host}:{port}/v21.0``, any
``v<major>.<minor>`` accepted, bearer token ``WHATSAPP_ACCESS_TOKEN``):

- ``POST /{version}/{phone_number_id}/messages``: send a text, interactive (button, list),
  document, image or template message; validated as the real API does (templates against
  the approved ones given to :func:`create_app`). ``biz_opaque_callback_data`` (at most 512
  characters) is echoed in every status webhook of the message.
- ``GET /{version}/{media_id}``: media metadata with a download URL valid for 5 minutes.
- ``GET /simulator/media/{token}``: the bytes behind that URL (bearer token required).
- ``POST /{version}/{phone_number_id}/media``: upload a file (multipart), answers its id.
- ``DELETE /{version}/{media_id}``: forget a medium.

Citizen side (the chat page and tests):

- ``POST /simulator/api/messages``: a citizen's text, photo or PDF, sent to intake as a
  signed webhook; ``sent_at`` (unix seconds, up to 7 days back) backdates it, as a webhook
  Meta kept retrying would be.
- ``POST /simulator/api/replies``: a citizen's tap on a reply button or list row (also
  ``sent_at``).
- ``GET /simulator/api/conversations`` and ``GET /simulator/api/conversations/{phone}``,
  ``GET /simulator/api/outbox``, ``DELETE /simulator/api/conversations`` (reset).
- ``PUT /simulator/api/conversations/{phone}/window``: when the citizen last wrote, for
  tests that post their own webhooks to intake (the simulator never sees those).
- ``GET /simulator/api/media/{media_id}``: media bytes for the chat page (no token).
- ``POST|GET|DELETE /simulator/api/failures``: make the next N send calls fail.
- ``GET /``: the chat page.

SIAK side (the national population system, for issuance; see ``services/simulator/siak.py``):
``POST /siak/v1/dokumen`` with an ``Idempotency-Key``, and ``/siak/_sim/...`` to switch an
outage on or off and to list the documents made.

Failure injection: ``POST /simulator/api/failures`` with ``{"count": N, "status": 429,
"code": 130429, "message": "optional"}`` queues a plan; the next N calls of
``POST /{version}/{phone_number_id}/messages`` that pass authentication then answer that
HTTP status with the Cloud API error body (``error.code`` = ``code``) and record nothing.
Plans queue up in order (2 x 429, then 1 x 500, ...); ``GET`` answers ``{"pending": n}``,
``DELETE`` (or resetting the conversations) drops them. Media uploads and lookups are not
affected: the throughput and server errors worth rehearsing are the sends'.

The 24-hour window: with ``enforce_service_window`` (on in the runtime), a free-form
message (text, interactive, document, image) to a citizen whose latest message is more
than 24 hours old is accepted with a wamid and then fails with 131047 in a ``failed``
status webhook, as on Meta; a template always goes out. The window runs from the
``timestamp`` of the citizen's latest message (``sent_at`` when backdated).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

from fastapi import APIRouter, FastAPI, HTTPException, Request, Response, status
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse
from pydantic import BaseModel, ConfigDict, Field, model_validator
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException

from services.simulator.cloud import (
    ApprovedTemplate,
    CloudApiError,
    invalid,
    invalid_token,
    recipient,
    unknown_object,
    unknown_version,
    validate_send,
)
from services.simulator.siak import SiakSimulator, siak_router
from services.simulator.state import WEBHOOK_RETRY_PERIOD, Media, Simulator, new_wamid
from shared.config import Settings

VERSION = re.compile(r"v\d+\.\d+")
PHONE = re.compile(r"\d{8,15}")

CITIZEN_MEDIA_TYPES = ("image/jpeg", "image/png", "application/pdf")
IMAGE_MAX_BYTES = 5 * 1024 * 1024
DOCUMENT_MAX_BYTES = 100 * 1024 * 1024
TEXT_MAX = 4096

DEFAULT_DISPLAY_PHONE_NUMBER = "6281100000001"
DEFAULT_BUSINESS_ACCOUNT_ID = "100000000000002"

PAGE_PATH = Path(__file__).resolve().parent / "static" / "chat.html"


# --- request models of the citizen side ---------------------------------------------------


class ButtonReply(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(min_length=1, max_length=256)
    title: str = Field(min_length=1, max_length=20)


class ListReply(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(min_length=1, max_length=200)
    title: str = Field(min_length=1, max_length=24)
    description: str | None = Field(default=None, max_length=72)


SENT_AT_DESCRIPTION = (
    "When the citizen sent it, in unix seconds (default: now): the webhook message's "
    "`timestamp`, and the time the citizen's 24-hour window runs from. Meta retries a "
    "webhook for up to 7 days, so a message may reach the office that late: at most 7 days "
    "back, never in the future (else 422)."
)


class ReplyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    sender: str = Field(alias="from", pattern=r"^\d{8,15}$")
    name: str = Field(default="Warga", min_length=1, max_length=100)
    context_message_id: str = Field(min_length=1, max_length=256)
    button_reply: ButtonReply | None = None
    list_reply: ListReply | None = None
    sent_at: int | None = Field(default=None, description=SENT_AT_DESCRIPTION)

    @model_validator(mode="after")
    def _exactly_one_reply(self) -> ReplyRequest:
        if (self.button_reply is None) == (self.list_reply is None):
            raise ValueError("give exactly one of button_reply or list_reply")
        return self


class WindowRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    last_inbound_at: int | None = Field(
        description="Unix seconds of the citizen's latest message; null: never wrote."
    )


class FailureRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    count: int = Field(ge=1, le=10_000)
    status: int = Field(ge=400, le=599)
    code: int = Field(ge=1)
    message: str | None = Field(default=None, max_length=500)


# --- helpers ------------------------------------------------------------------------------


def _sniff(data: bytes) -> str | None:
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"%PDF-"):
        return "application/pdf"
    return None


def _content_disposition(kind: Literal["inline", "attachment"], filename: str | None) -> str:
    if not filename:
        return kind
    ascii_name = filename.encode("ascii", "replace").decode().replace('"', "'")
    return f"{kind}; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename)}"


def _media_response(media: Media, data: bytes) -> Response:
    inline = media.mime_type.startswith("image/") or media.mime_type == "application/pdf"
    return Response(
        data,
        media_type=media.mime_type,
        headers={
            "Content-Disposition": _content_disposition(
                "inline" if inline else "attachment", media.filename
            ),
            "X-Content-Type-Options": "nosniff",
            # Office uploads may be any type; never let one run as a page of this origin.
            "Content-Security-Policy": "sandbox",
            "Cache-Control": "private, max-age=300",
        },
    )


def _load_page() -> tuple[bytes, str]:
    """The chat page and a Content-Security-Policy allowing exactly its inline scripts."""
    html = PAGE_PATH.read_text(encoding="utf-8")
    hashes = " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(script.encode()).digest()).decode() + "'"
        for script in re.findall(r"<script>(.*?)</script>", html, flags=re.DOTALL)
    )
    policy = (
        f"default-src 'none'; script-src {hashes}; style-src 'unsafe-inline'; "
        "img-src 'self' blob: data:; connect-src 'self'; base-uri 'none'; form-action 'none'; "
        "frame-ancestors 'none'"
    )
    return html.encode(), policy


@dataclass(frozen=True)
class FilePart:
    filename: str
    content_type: str | None
    data: bytes


@dataclass(frozen=True)
class Form:
    fields: dict[str, str]
    files: dict[str, FilePart]


class MultipartError(ValueError):
    """The body is not valid ``multipart/form-data``."""


async def _read_form(request: Request) -> Form:
    """A ``multipart/form-data`` body parsed by Starlette; the last value of a name wins."""
    fields: dict[str, str] = {}
    files: dict[str, FilePart] = {}
    try:
        async with request.form() as form:
            for name, value in form.multi_items():
                if isinstance(value, UploadFile):
                    data = await value.read()
                    files[name] = FilePart(value.filename or "", value.content_type, data)
                else:
                    fields[name] = value
    except StarletteHTTPException as exc:  # Starlette's answer to a malformed body
        raise MultipartError(exc.detail) from exc
    return Form(fields, files)


def _content_length(request: Request) -> int:
    try:
        return int(request.headers.get("content-length") or 0)
    except ValueError:
        return 0


def _phone(value: str | None) -> str:
    if value is None or not PHONE.fullmatch(value):
        raise HTTPException(422, "'from' must be a phone number of 8 to 15 digits")
    return value


def _name(value: str | None) -> str:
    name = (value or "").strip()
    return name[:100] or "Warga"


def _sent_at(simulator: Simulator, value: str | int | None) -> int:
    """The timestamp of a citizen's message: ``value`` if given and plausible, else now."""
    now = int(simulator.clock())
    if value is None:
        return now
    if isinstance(value, str):
        if not re.fullmatch(r"\d{1,12}", value):
            raise HTTPException(422, "'sent_at' must be unix seconds (an integer)")
        value = int(value)
    if value > now:
        raise HTTPException(422, "'sent_at' is in the future")
    if value < now - WEBHOOK_RETRY_PERIOD:
        raise HTTPException(
            422, "'sent_at' is more than 7 days ago: Meta stops retrying a webhook by then"
        )
    return value


# --- the app ------------------------------------------------------------------------------


def create_app(
    settings: Settings,
    *,
    intake_webhook_url: str | None = None,
    send_statuses: bool = True,
    status_delay: float = 1.0,
    enforce_service_window: bool = False,
    display_phone_number: str = DEFAULT_DISPLAY_PHONE_NUMBER,
    business_account_id: str = DEFAULT_BUSINESS_ACCOUNT_ID,
    webhook_timeout: float = 10.0,
    clock: Callable[[], float] = time.time,
    siak: SiakSimulator | None = None,
    templates: Mapping[str, ApprovedTemplate] | None = None,
    template_language: str = "id",
) -> FastAPI:
    """The simulator as an ASGI app; :func:`simulator_of` gives its state.

    ``send_statuses`` switches the ``sent``/``delivered``/``read`` webhooks off;
    ``status_delay`` is the pause in seconds before each of them. With
    ``enforce_service_window`` a free-form message to a citizen who has not written in the
    last 24 hours is accepted but answered by a ``failed`` status (error 131047), as on the
    real API. ``clock`` (unix seconds) lets tests age media URLs and windows.

    ``templates`` are the approved templates by approved name, each with one translation in
    ``template_language``: a template send is refused as Meta refuses it (132001 unknown
    name or language, 132000 wrong number of parameters, 132012 a missing document header)
    and recorded with its body rendered. None accepts any template (tests that do not care).
    """
    simulator = Simulator(
        settings,
        intake_webhook_url=intake_webhook_url
        or f"http://{settings.local_host}:{settings.intake_port}/webhook/whatsapp",
        send_statuses=send_statuses,
        status_delay=status_delay,
        enforce_service_window=enforce_service_window,
        display_phone_number=display_phone_number,
        business_account_id=business_account_id,
        webhook_timeout=webhook_timeout,
        clock=clock,
        templates=templates,
        template_language=template_language,
    )
    app = FastAPI(
        title="adminduk WhatsApp simulator",
        description="A stand-in for the WhatsApp Cloud API, with a chat page for the citizen",
        version="0.1.0",
    )
    app.state.simulator = simulator
    # The SIAK simulator keeps its documents in a journal, as SIAK would not forget them.
    app.state.siak = siak or SiakSimulator.from_settings(
        settings, journal=settings.data_dir / "siak" / "documents.jsonl"
    )

    @app.exception_handler(CloudApiError)
    async def cloud_api_error(_request: Request, exc: CloudApiError) -> JSONResponse:
        return exc.response()

    # Order matters: the simulator's own paths would also match the Cloud API patterns
    # (``/{version}/{phone_number_id}/messages``), so they are registered first.
    app.include_router(_page_routes())
    app.include_router(_citizen_routes(simulator))
    app.include_router(_control_routes(simulator))
    app.include_router(siak_router(app.state.siak))
    app.include_router(_cloud_routes(simulator))
    return app


def simulator_of(app: FastAPI) -> Simulator:
    """The state behind an app made by :func:`create_app`."""
    simulator = app.state.simulator
    if not isinstance(simulator, Simulator):
        raise TypeError("not a simulator app")
    return simulator


def _page_routes() -> APIRouter:
    router = APIRouter()
    page, page_policy = _load_page()

    @router.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def chat_page() -> Response:
        """The citizen's chat page."""
        return HTMLResponse(
            page,
            headers={
                "Content-Security-Policy": page_policy,
                "X-Content-Type-Options": "nosniff",
                "Referrer-Policy": "no-referrer",
                "Cache-Control": "no-cache",
            },
        )

    @router.get("/healthz", response_class=PlainTextResponse)
    async def health() -> str:
        return "ok"

    return router


# --- citizen side -------------------------------------------------------------------------


async def _read_citizen_request(request: Request) -> tuple[dict[str, str], FilePart | None]:
    """The string fields and the optional file of a JSON or multipart citizen message."""
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        if _content_length(request) > DOCUMENT_MAX_BYTES + 65536:
            raise HTTPException(413, "file too large (documents up to 100 MB)")
        try:
            form = await _read_form(request)
        except MultipartError as exc:
            raise HTTPException(400, str(exc)) from exc
        upload = form.files.get("file")
        if upload is not None and not (upload.filename or upload.data):
            upload = None  # a browser's empty file field
        fields = dict(form.fields)
        fields.setdefault("text", fields.get("caption", ""))
        fields.setdefault("caption", fields["text"])
        return fields, upload
    try:
        payload = json.loads(await request.body())
    except ValueError as exc:
        raise HTTPException(400, "body must be JSON or multipart/form-data") from exc
    if not isinstance(payload, dict):
        raise HTTPException(400, "body must be a JSON object")
    fields = {k: v for k, v in payload.items() if isinstance(v, str)}
    sent_at = payload.get("sent_at")
    if sent_at is not None and not isinstance(sent_at, str):
        # A JSON number; anything but an integer then fails the digits check.
        fields["sent_at"] = json.dumps(sent_at)
    return fields, None


def _store_citizen_upload(simulator: Simulator, upload: FilePart) -> Media:
    declared = (upload.content_type or "").split(";")[0].strip().lower()
    mime_type = _sniff(upload.data) or declared
    if mime_type not in CITIZEN_MEDIA_TYPES:
        raise HTTPException(415, "attach a photo (JPEG or PNG) or a PDF")
    limit = DOCUMENT_MAX_BYTES if mime_type == "application/pdf" else IMAGE_MAX_BYTES
    if len(upload.data) > limit:
        raise HTTPException(413, f"file too large: at most {limit // (1024 * 1024)} MB")
    if not upload.data:
        raise HTTPException(422, "the file is empty")
    filename = Path(upload.filename).name if upload.filename else None
    return simulator.store_media(upload.data, mime_type, filename)


def _media_message(media: Media, caption: str | None) -> tuple[str, dict[str, Any]]:
    """The ``type`` and the media object of an inbound image or document message."""
    kind = "document" if media.mime_type == "application/pdf" else "image"
    part: dict[str, Any] = {}
    if kind == "document":
        part["filename"] = media.filename or "dokumen.pdf"
    if caption:
        part["caption"] = caption
    part |= {"mime_type": media.mime_type, "sha256": media.sha256, "id": media.id}
    return kind, part


_CITIZEN_MESSAGE_FIELDS: dict[str, Any] = {
    "from": {"type": "string", "pattern": r"^\d{8,15}$", "description": "The citizen's number"},
    "name": {"type": "string", "maxLength": 100, "default": "Warga"},
    "sent_at": {"type": "integer", "description": SENT_AT_DESCRIPTION},
}
CITIZEN_MESSAGE_BODY: dict[str, Any] = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["from", "text"],
                "properties": _CITIZEN_MESSAGE_FIELDS
                | {"text": {"type": "string", "maxLength": TEXT_MAX}},
            }
        },
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["from", "file"],
                "properties": _CITIZEN_MESSAGE_FIELDS
                | {
                    "caption": {"type": "string", "maxLength": TEXT_MAX},
                    "file": {
                        "type": "string",
                        "format": "binary",
                        "description": "A JPEG or PNG photo (5 MB) or a PDF (100 MB)",
                    },
                },
            }
        },
    },
}


def _citizen_routes(simulator: Simulator) -> APIRouter:
    router = APIRouter(prefix="/simulator/api", tags=["citizen"])

    @router.post("/messages", openapi_extra={"requestBody": CITIZEN_MESSAGE_BODY})
    async def citizen_message(request: Request) -> dict[str, Any]:
        """A citizen's text (JSON) or photo/PDF with optional caption (multipart).

        ``sent_at`` (unix seconds, optional) backdates the message: it becomes the
        webhook's ``timestamp`` and the time the citizen's 24-hour window runs from, as for
        a webhook Meta delivered late after retrying (at most 7 days back; 422 for a time
        in the future or older than that). So a citizen whose last message is three days
        old is ``{"from": ..., "text": ..., "sent_at": now - 3 * 86400}``.
        """
        fields, upload = await _read_citizen_request(request)
        phone = _phone(fields.get("from"))
        name = _name(fields.get("name"))
        sent_at = _sent_at(simulator, fields.get("sent_at"))
        text = (fields.get("caption") if upload is not None else fields.get("text")) or None
        if text is not None and len(text) > TEXT_MAX:
            raise HTTPException(422, f"text must be at most {TEXT_MAX} characters")
        message: dict[str, Any] = {
            "from": phone,
            "id": new_wamid(),
            "timestamp": str(sent_at),
        }
        media: Media | None = None
        if upload is None:
            if text is None or not text.strip():
                raise HTTPException(422, "give a non-empty 'text', or a 'file'")
            message |= {"type": "text", "text": {"body": text}}
        else:
            media = _store_citizen_upload(simulator, upload)
            kind, part = _media_message(media, text)
            message |= {"type": kind, kind: part}
        entry = await simulator.send_inbound(phone, name, message, text=text, media=media)
        answer: dict[str, Any] = {"message_id": entry.id, "webhook_status": entry.webhook_status}
        if media is not None:
            answer["media_id"] = media.id
        return answer

    @router.post("/replies")
    async def citizen_reply(reply: ReplyRequest) -> dict[str, Any]:
        """A citizen's tap on a reply button or a list row of an office message.

        ``sent_at`` backdates it as for ``POST /simulator/api/messages``."""
        sent_at = _sent_at(simulator, reply.sent_at)
        interactive: dict[str, Any]
        if reply.button_reply is not None:
            title = reply.button_reply.title
            interactive = {"type": "button_reply", "button_reply": reply.button_reply.model_dump()}
        else:
            assert reply.list_reply is not None
            title = reply.list_reply.title
            interactive = {
                "type": "list_reply",
                "list_reply": reply.list_reply.model_dump(exclude_none=True),
            }
        message = {
            "from": reply.sender,
            "id": new_wamid(),
            "timestamp": str(sent_at),
            "type": "interactive",
            "context": {"from": simulator.display_phone_number, "id": reply.context_message_id},
            "interactive": interactive,
        }
        entry = await simulator.send_inbound(
            reply.sender,
            reply.name,
            message,
            text=title,
            context_message_id=reply.context_message_id,
        )
        return {"message_id": entry.id, "webhook_status": entry.webhook_status}

    @router.get("/media/{media_id}", include_in_schema=False)
    async def page_media(media_id: str) -> Response:
        """Media bytes for the chat page (no token: the page plays the citizen's phone)."""
        media = simulator.media.get(media_id)
        if media is None:
            raise HTTPException(404, "unknown media")
        return _media_response(media, simulator.media_bytes(media))

    return router


# --- inspection and control (tests, the chat page) ----------------------------------------


def _control_routes(simulator: Simulator) -> APIRouter:
    router = APIRouter(prefix="/simulator/api", tags=["control"])

    @router.get("/conversations")
    async def conversations() -> list[dict[str, Any]]:
        """The phone numbers that have a conversation."""
        return simulator.phones()

    @router.get("/conversations/{phone}")
    async def conversation(phone: str) -> dict[str, Any]:
        """One phone's messages in order, both directions, and its 24-hour window.

        An outbound message has its ``type``, ``template`` (the approved name, for a
        template), ``text`` (what the citizen reads: a template's body rendered),
        ``biz_opaque_callback_data``, ``statuses`` and latest ``status``."""
        last = simulator.last_inbound.get(phone)
        return {
            "phone": phone,
            "name": simulator.names.get(phone),
            "last_inbound_at": int(last) if last is not None else None,
            "service_window_open": simulator.window_open(phone),
            "messages": simulator.conversation(phone),
        }

    @router.put("/conversations/{phone}/window")
    async def set_window(phone: str, window: WindowRequest) -> dict[str, Any]:
        """Set when the citizen last wrote, without a message or a webhook.

        For tests that sign and post webhooks to intake themselves: Meta saw those
        messages, the simulator did not, and its window would stay shut."""
        _phone(phone)
        if window.last_inbound_at is None:
            simulator.last_inbound.pop(phone, None)
        elif window.last_inbound_at > simulator.clock():
            raise HTTPException(422, "'last_inbound_at' is in the future")
        else:
            simulator.last_inbound[phone] = window.last_inbound_at
        return {
            "phone": phone,
            "last_inbound_at": window.last_inbound_at,
            "service_window_open": simulator.window_open(phone),
        }

    @router.delete("/conversations", status_code=status.HTTP_204_NO_CONTENT)
    async def reset() -> None:
        """Forget everything: conversations, outbox, media, injected failures."""
        simulator.reset()

    @router.get("/outbox")
    async def outbox() -> list[dict[str, Any]]:
        """Every message the office sent, in order."""
        return [entry.to_json() for entry in simulator.outbox]

    @router.post("/failures")
    async def add_failures(failure: FailureRequest) -> dict[str, int]:
        """Make the next ``count`` send calls fail with ``status`` and error ``code``."""
        pending = simulator.add_failure(
            failure.count, failure.status, failure.code, failure.message
        )
        return {"pending": pending}

    @router.get("/failures")
    async def pending_failures() -> dict[str, int]:
        """How many send calls will still fail."""
        return {"pending": simulator.pending_failures()}

    @router.delete("/failures", status_code=status.HTTP_204_NO_CONTENT)
    async def clear_failures() -> None:
        simulator.failures.clear()

    return router


# --- Cloud API side -----------------------------------------------------------------------


def _check_version(version: str) -> None:
    if not VERSION.fullmatch(version):
        raise unknown_version(version)


def _authenticate(simulator: Simulator, request: Request) -> None:
    if not simulator.token_ok(request.headers.get("authorization")):
        raise invalid_token()


def _check_phone_number_id(simulator: Simulator, phone_number_id: str) -> None:
    if phone_number_id != simulator.phone_number_id:
        raise unknown_object(phone_number_id)


async def _read_office_upload(request: Request) -> tuple[FilePart, str]:
    """The file and MIME type of a media upload, checked as the Cloud API checks them."""
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("multipart/form-data"):
        raise invalid("Upload media as multipart/form-data with file, type, messaging_product")
    try:
        form = await _read_form(request)
    except MultipartError as exc:
        raise invalid(str(exc)) from exc
    if form.fields.get("messaging_product") != "whatsapp":
        raise invalid("The parameter messaging_product is required and must be 'whatsapp'.")
    upload = form.files.get("file")
    if upload is None or not upload.data:
        raise invalid("The parameter file is required.")
    mime_type = (form.fields.get("type") or upload.content_type or "").split(";")[0].strip()
    if "/" not in mime_type:
        raise invalid("The parameter type is required (the file's MIME type).")
    limit = IMAGE_MAX_BYTES if mime_type.startswith("image/") else DOCUMENT_MAX_BYTES
    if len(upload.data) > limit:
        raise invalid(f"File too large: {len(upload.data)} bytes, at most {limit}")
    return upload, mime_type


def _cloud_routes(simulator: Simulator) -> APIRouter:
    router = APIRouter(tags=["cloud api"])

    @router.get("/simulator/media/{token}", name="download_media", include_in_schema=False)
    async def download_media(token: str, request: Request) -> Response:
        """The URL answered by the media lookup: bearer token required, 5 minutes valid."""
        _authenticate(simulator, request)
        media = simulator.resolve_media_url(token)
        if media is None:
            raise CloudApiError(404, 100, "Media URL is unknown or expired")
        return _media_response(media, simulator.media_bytes(media))

    @router.post("/{version}/{phone_number_id}/messages")
    async def send_message(version: str, phone_number_id: str, request: Request) -> Any:
        """Send a message to a citizen (text, interactive, document, image, template)."""
        _check_version(version)
        _authenticate(simulator, request)
        _check_phone_number_id(simulator, phone_number_id)
        simulator.raise_if_failure_injected()
        try:
            body = json.loads(await request.body())
        except ValueError as exc:
            raise invalid("The request body must be JSON") from exc
        validate_send(body, simulator.media, simulator.templates, simulator.template_language)
        phone = recipient(body)
        entry = simulator.record_outbound(phone, body)
        return {
            "messaging_product": "whatsapp",
            "contacts": [{"input": body["to"], "wa_id": phone}],
            "messages": [{"id": entry.id}],
        }

    @router.post("/{version}/{phone_number_id}/media")
    async def upload_media(version: str, phone_number_id: str, request: Request) -> Any:
        """Upload a file (multipart: file, type, messaging_product); answers its media id."""
        _check_version(version)
        _authenticate(simulator, request)
        _check_phone_number_id(simulator, phone_number_id)
        upload, mime_type = await _read_office_upload(request)
        media = simulator.store_media(upload.data, mime_type, upload.filename or None)
        return {"id": media.id}

    @router.get("/{version}/{media_id}")
    async def media_lookup(version: str, media_id: str, request: Request) -> Any:
        """A medium's metadata and a download URL valid for 5 minutes."""
        _check_version(version)
        _authenticate(simulator, request)
        requested_number = request.query_params.get("phone_number_id")
        if requested_number is not None:
            _check_phone_number_id(simulator, requested_number)
        media = simulator.media.get(media_id)
        if media is None:
            raise unknown_object(media_id, "get", status=404)
        token = simulator.issue_media_url(media_id)
        return {
            "messaging_product": "whatsapp",
            "url": str(request.url_for("download_media", token=token)),
            "mime_type": media.mime_type,
            "sha256": media.sha256,
            "file_size": str(media.size),
            "id": media.id,
        }

    @router.delete("/{version}/{media_id}")
    async def media_delete(version: str, media_id: str, request: Request) -> Any:
        """Forget a medium."""
        _check_version(version)
        _authenticate(simulator, request)
        if simulator.media.pop(media_id, None) is None:
            raise unknown_object(media_id, "delete", status=404)
        return {"success": True}

    return router
