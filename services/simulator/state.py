"""The simulator's memory and its webhooks: conversations, media, injected failures.

Everything is kept in memory: the simulator is a development and test tool, and a restart
starts a fresh phone. Media are content-addressed (one copy of the bytes per sha256), each
upload still getting its own media id as on the real API.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import itertools
import json
import logging
import secrets
from collections import deque
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx

from services.simulator.cloud import (
    ApprovedTemplate,
    injected,
    render_template,
    template_header_media,
    template_parameters,
)
from shared.config import Settings

log = logging.getLogger(__name__)

MEDIA_URL_TTL = 300.0
"""Seconds a media URL answered by ``GET /{version}/{media_id}`` stays valid (as on Meta)."""

SERVICE_WINDOW = 24 * 3600.0
"""Free-form messages are allowed this long after the citizen's last message."""

WEBHOOK_RETRY_PERIOD = 7 * 24 * 3600
"""Meta retries an unanswered webhook for up to this long: a message may reach intake this
late after the citizen sent it (see ``sent_at`` of the citizen endpoints)."""

Direction = Literal["in", "out"]


def new_wamid() -> str:
    return "wamid.HBgN" + secrets.token_hex(18).upper()


def new_media_id() -> str:
    return str(10**15 + secrets.randbelow(9 * 10**15))


@dataclass
class Media:
    id: str
    sha256: str
    mime_type: str
    size: int
    filename: str | None
    created_at: float

    def describe(self) -> dict[str, Any]:
        """How the conversation API and the chat page see a stored media object."""
        return {
            "id": self.id,
            "url": f"/simulator/api/media/{self.id}",
            "mime_type": self.mime_type,
            "sha256": self.sha256,
            "file_size": self.size,
            "filename": self.filename,
        }


@dataclass
class Entry:
    """One message of a conversation, either direction."""

    seq: int
    id: str
    direction: Direction
    phone: str
    type: str
    text: str | None
    timestamp: int
    payload: dict[str, Any]
    media: dict[str, Any] | None = None
    context_message_id: str | None = None
    webhook_status: int | None = None
    statuses: list[dict[str, Any]] = field(default_factory=list)
    callback_data: str | None = None
    """The send's ``biz_opaque_callback_data``, echoed in each of its status webhooks."""
    template: str | None = None
    """The approved name of the template an outbound template message called."""

    def to_json(self) -> dict[str, Any]:
        item: dict[str, Any] = {
            "seq": self.seq,
            "id": self.id,
            "direction": self.direction,
            "phone": self.phone,
            "type": self.type,
            "text": self.text,
            "timestamp": self.timestamp,
            "payload": self.payload,
            "media": self.media,
            "context_message_id": self.context_message_id,
        }
        if self.direction == "in":
            item["webhook_status"] = self.webhook_status
        else:
            item["template"] = self.template
            item["biz_opaque_callback_data"] = self.callback_data
            item["statuses"] = list(self.statuses)
            item["status"] = self.statuses[-1]["status"] if self.statuses else "accepted"
        return item


@dataclass
class Failure:
    remaining: int
    status: int
    code: int
    message: str | None


@dataclass
class MediaUrl:
    media_id: str
    expires_at: float


class Simulator:
    """State and behaviour behind the HTTP routes of :func:`services.simulator.app.create_app`."""

    def __init__(
        self,
        settings: Settings,
        *,
        intake_webhook_url: str,
        send_statuses: bool,
        status_delay: float,
        enforce_service_window: bool,
        display_phone_number: str,
        business_account_id: str,
        webhook_timeout: float,
        clock: Callable[[], float],
        templates: Mapping[str, ApprovedTemplate] | None = None,
        template_language: str = "id",
    ) -> None:
        self.phone_number_id = settings.whatsapp_phone_number_id
        self.access_token = settings.whatsapp_access_token.get_secret_value().encode()
        self._app_secret = settings.whatsapp_app_secret.get_secret_value().encode()
        self.intake_webhook_url = intake_webhook_url
        self.send_statuses = send_statuses
        self.status_delay = status_delay
        self.enforce_service_window = enforce_service_window
        self.display_phone_number = display_phone_number
        self.business_account_id = business_account_id
        self.webhook_timeout = webhook_timeout
        self.clock = clock
        self.templates = templates
        self.template_language = template_language
        self._seq = itertools.count(1)
        self._client: httpx.AsyncClient | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.conversations: dict[str, list[Entry]] = {}
        self.names: dict[str, str] = {}
        self.last_inbound: dict[str, float] = {}
        self.outbox: list[Entry] = []
        self.entries: dict[str, Entry] = {}
        self.blobs: dict[str, bytes] = {}
        self.media: dict[str, Media] = {}
        self.media_urls: dict[str, MediaUrl] = {}
        self.failures: deque[Failure] = deque()

    # --- lifecycle ----------------------------------------------------------------------

    def reset(self) -> None:
        """Forget every conversation, medium and injected failure; stop pending statuses."""
        for task in self._tasks:
            task.cancel()
        self._tasks.clear()
        self.conversations.clear()
        self.names.clear()
        self.last_inbound.clear()
        self.outbox.clear()
        self.entries.clear()
        self.blobs.clear()
        self.media.clear()
        self.media_urls.clear()
        self.failures.clear()

    async def aclose(self) -> None:
        """Cancel the pending status webhooks and close the HTTP client."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            # trust_env=False: a proxy configured for the internet must not see local calls.
            self._client = httpx.AsyncClient(timeout=self.webhook_timeout, trust_env=False)
        return self._client

    # --- authentication ------------------------------------------------------------------

    def token_ok(self, authorization: str | None) -> bool:
        if authorization is None:
            return False
        scheme, _, token = authorization.partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(
            token.strip().encode(), self.access_token
        )

    # --- media ---------------------------------------------------------------------------

    def store_media(self, data: bytes, mime_type: str, filename: str | None) -> Media:
        digest = hashlib.sha256(data).hexdigest()
        self.blobs.setdefault(digest, data)
        media = Media(new_media_id(), digest, mime_type, len(data), filename, self.clock())
        self.media[media.id] = media
        return media

    def media_bytes(self, media: Media) -> bytes:
        return self.blobs[media.sha256]

    def issue_media_url(self, media_id: str) -> str:
        """A fresh download token for ``media_id``, valid for :data:`MEDIA_URL_TTL`."""
        now = self.clock()
        for token, url in list(self.media_urls.items()):
            if url.expires_at <= now:
                del self.media_urls[token]
        token = secrets.token_urlsafe(24)
        self.media_urls[token] = MediaUrl(media_id, now + MEDIA_URL_TTL)
        return token

    def resolve_media_url(self, token: str) -> Media | None:
        url = self.media_urls.get(token)
        if url is None or url.expires_at <= self.clock():
            return None
        return self.media.get(url.media_id)

    # --- failures ------------------------------------------------------------------------

    def add_failure(self, count: int, status: int, code: int, message: str | None) -> int:
        self.failures.append(Failure(count, status, code, message))
        return self.pending_failures()

    def pending_failures(self) -> int:
        return sum(failure.remaining for failure in self.failures)

    def take_failure(self) -> Failure | None:
        if not self.failures:
            return None
        failure = self.failures[0]
        failure.remaining -= 1
        if failure.remaining <= 0:
            self.failures.popleft()
        return failure

    def raise_if_failure_injected(self) -> None:
        failure = self.take_failure()
        if failure is not None:
            raise injected(failure.status, failure.code, failure.message)

    # --- conversation --------------------------------------------------------------------

    def _record(self, entry: Entry) -> Entry:
        self.conversations.setdefault(entry.phone, []).append(entry)
        self.entries[entry.id] = entry
        if entry.direction == "out":
            self.outbox.append(entry)
        return entry

    def conversation(self, phone: str) -> list[dict[str, Any]]:
        return [entry.to_json() for entry in self.conversations.get(phone, [])]

    def phones(self) -> list[dict[str, Any]]:
        return [
            {"phone": phone, "name": self.names.get(phone), "messages": len(entries)}
            for phone, entries in self.conversations.items()
        ]

    # --- the 24-hour customer service window ----------------------------------------------

    def citizen_wrote(self, phone: str, at: float) -> None:
        """The citizen sent a message at ``at`` (unix seconds): the window runs from their
        latest message, so an older one arriving late does not shorten it."""
        self.last_inbound[phone] = max(self.last_inbound.get(phone, at), at)

    def window_open(self, phone: str) -> bool:
        """Whether a free-form message to ``phone`` may go out now."""
        return self.clock() - self.last_inbound.get(phone, float("-inf")) <= SERVICE_WINDOW

    def record_outbound(self, phone: str, body: dict[str, Any]) -> Entry:
        """Record an accepted send and schedule its status webhooks.

        A free-form message outside the window is accepted (it has a wamid) and then fails
        with 131047 in a status webhook, as on the real API; a template never does."""
        kind = str(body["type"])
        part = body.get(kind)
        part = part if isinstance(part, Mapping) else {}
        text: str | None = None
        media: dict[str, Any] | None = None
        template: str | None = None
        if kind == "text":
            text = part.get("body")
        elif kind == "interactive":
            body_part = part.get("body")
            text = body_part.get("text") if isinstance(body_part, Mapping) else None
        elif kind in ("document", "image"):
            text = part.get("caption")
            media = self._media_reference(part)
        elif kind == "template":
            template = str(part.get("name"))
            approved = self.templates.get(template) if self.templates is not None else None
            if approved is not None:
                text = render_template(part, approved)
            else:
                parameters = template_parameters(part)
                text = f"{template}: {', '.join(parameters)}" if parameters else template
            header = template_header_media(part)
            if header is not None:
                media = self._media_reference(header)
        context = body.get("context")
        callback_data = body.get("biz_opaque_callback_data")
        entry = self._record(
            Entry(
                seq=next(self._seq),
                id=new_wamid(),
                direction="out",
                phone=phone,
                type=kind,
                text=text,
                timestamp=int(self.clock()),
                payload=body,
                media=media,
                context_message_id=(
                    context.get("message_id") if isinstance(context, Mapping) else None
                ),
                callback_data=callback_data if isinstance(callback_data, str) else None,
                template=template,
            )
        )
        outside_window = (
            self.enforce_service_window and kind != "template" and not self.window_open(phone)
        )
        if self.send_statuses or outside_window:
            self._spawn(self._deliver_statuses(entry, failed=outside_window))
        return entry

    def _media_reference(self, part: Mapping[str, Any]) -> dict[str, Any] | None:
        media_id = part.get("id")
        if isinstance(media_id, str) and media_id in self.media:
            described = self.media[media_id].describe()
            if part.get("filename"):
                described["filename"] = part["filename"]
            return described
        link = part.get("link")
        if isinstance(link, str):
            return {"id": None, "url": link, "filename": part.get("filename")}
        return None

    def record_inbound(
        self,
        phone: str,
        name: str,
        message: dict[str, Any],
        *,
        text: str | None,
        media: Media | None = None,
        context_message_id: str | None = None,
    ) -> Entry:
        self.names[phone] = name
        self.citizen_wrote(phone, int(message["timestamp"]))
        return self._record(
            Entry(
                seq=next(self._seq),
                id=str(message["id"]),
                direction="in",
                phone=phone,
                type=str(message["type"]),
                text=text,
                timestamp=int(message["timestamp"]),
                payload=message,
                media=media.describe() if media is not None else None,
                context_message_id=context_message_id,
            )
        )

    # --- webhooks ------------------------------------------------------------------------

    def envelope(self, value: dict[str, Any]) -> dict[str, Any]:
        """A webhook body in the Cloud API's shape around one change ``value``."""
        return {
            "object": "whatsapp_business_account",
            "entry": [
                {
                    "id": self.business_account_id,
                    "changes": [
                        {
                            "value": {
                                "messaging_product": "whatsapp",
                                "metadata": {
                                    "display_phone_number": self.display_phone_number,
                                    "phone_number_id": self.phone_number_id,
                                },
                                **value,
                            },
                            "field": "messages",
                        }
                    ],
                }
            ],
        }

    def sign(self, raw: bytes) -> str:
        return "sha256=" + hmac.new(self._app_secret, raw, hashlib.sha256).hexdigest()

    async def post_webhook(self, body: dict[str, Any]) -> int | None:
        """POST one signed webhook to intake; its HTTP status, or None if unreachable."""
        # Meta escapes non-ASCII characters; ensure_ascii does the same, so a receiver that
        # re-serialises instead of verifying the raw bytes fails here as it would there.
        raw = json.dumps(body, separators=(",", ":")).encode()
        headers = {
            "Content-Type": "application/json",
            "X-Hub-Signature-256": self.sign(raw),
            "User-Agent": "facebookexternalua",
        }
        try:
            response = await self._http().post(
                self.intake_webhook_url, content=raw, headers=headers
            )
        except httpx.HTTPError as exc:
            log.warning(
                "webhook to %s not delivered: %s", self.intake_webhook_url, type(exc).__name__
            )
            return None
        if response.status_code != 200:
            log.warning(
                "webhook to %s answered HTTP %d", self.intake_webhook_url, response.status_code
            )
        return response.status_code

    async def send_inbound(
        self,
        phone: str,
        name: str,
        message: dict[str, Any],
        *,
        text: str | None,
        media: Media | None = None,
        context_message_id: str | None = None,
    ) -> Entry:
        """Record a citizen's message and deliver it to intake as a signed webhook."""
        entry = self.record_inbound(
            phone, name, message, text=text, media=media, context_message_id=context_message_id
        )
        body = self.envelope(
            {"contacts": [{"profile": {"name": name}, "wa_id": phone}], "messages": [message]}
        )
        entry.webhook_status = await self.post_webhook(body)
        return entry

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver_statuses(self, entry: Entry, *, failed: bool) -> None:
        steps: tuple[str, ...] = ("failed",) if failed else ("sent", "delivered", "read")
        try:
            for status in steps:
                await asyncio.sleep(self.status_delay)
                await self.send_status(entry, status)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("status webhook for an outbound message failed")

    async def send_status(self, entry: Entry, status: str) -> None:
        timestamp = int(self.clock())
        item: dict[str, Any] = {
            "id": entry.id,
            "status": status,
            "timestamp": str(timestamp),
            "recipient_id": entry.phone,
        }
        if entry.callback_data is not None:
            item["biz_opaque_callback_data"] = entry.callback_data
        if status in ("sent", "delivered"):
            item["conversation"] = {
                "id": hashlib.sha256(f"conversation:{entry.phone}".encode()).hexdigest()[:32],
                "origin": {"type": "utility" if entry.type == "template" else "service"},
            }
            item["pricing"] = {
                "billable": entry.type == "template",
                "pricing_model": "PMP",
                "category": "utility" if entry.type == "template" else "service",
            }
        if status == "failed":
            item["errors"] = [
                {
                    "code": 131047,
                    "title": "Re-engagement message",
                    "message": "Re-engagement message",
                    "error_data": {
                        "details": "Message failed to send because more than 24 hours have "
                        "passed since the customer last replied to this number."
                    },
                }
            ]
        record: dict[str, Any] = {"status": status, "timestamp": timestamp}
        entry.statuses.append(record)
        record["webhook_status"] = await self.post_webhook(self.envelope({"statuses": [item]}))
