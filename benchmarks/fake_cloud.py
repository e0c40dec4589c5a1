"""A lean fake WhatsApp Cloud API for the webhook benchmark, run as its own process.

It speaks the wire format adminduk's client (``shared/whatsapp/client.py``) uses and
nothing more, at a fraction of the simulator's CPU per message:

- ``POST /{version}/{phone_number_id}/messages`` with ``Authorization: Bearer <token>``:
  answers ``{"messaging_product": "whatsapp", "contacts": [...], "messages": [{"id":
  "wamid..."}]}`` as Meta does, records the message, and schedules its delivery statuses;
- ``POST /{version}/{phone_number_id}/media``: answers a media id (the benchmark's replies
  carry no media; here so that a letter would not fail);
- for every accepted message, the statuses ``sent``, ``delivered`` and ``read``, each its
  own signed POST (``X-Hub-Signature-256``, HMAC-SHA256 of the raw body with the app
  secret) to adminduk's ``/webhook/whatsapp``, ``--status-delay`` seconds apart, in Meta's
  shape: ``entry[].changes[].value.statuses[]`` with ``id``, ``status``, ``timestamp``,
  ``recipient_id``, the send's ``biz_opaque_callback_data`` echoed, and ``conversation`` /
  ``pricing`` on ``sent`` and ``delivered``. A refused or failed status POST is retried a
  few times, as Meta retries.
- ``POST /integrator/webhook``: the receiver of adminduk's integrator webhooks; each is
  verified (Standard Webhooks, ``--integrator-secret``) and recorded with its arrival time.

The benchmark reads what happened without polling whole conversations:
``GET /bench/outbox?after=N`` gives the messages received after sequence number N,
``GET /bench/integrator?after=N`` the integrator webhooks, ``GET /bench/stats`` counters.
Times are ``time.time()`` at receipt, comparable with Postgres' ``recorded_at`` on the same
machine. A raw ASGI app on uvicorn (uvloop, httptools), orjson, no framework: the process
stands in for Meta, so its CPU is the harness's, not adminduk's.

Run: ``python -m benchmarks.fake_cloud --port P --webhook-url URL --app-secret S``.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import hashlib
import hmac
import itertools
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import parse_qs

import httpx
import orjson
import uvicorn
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

log = logging.getLogger("bench.fake_cloud")

STATUSES: Final = ("sent", "delivered", "read")
STATUS_ATTEMPTS: Final = 4
"""Tries per status webhook (Meta retries for days; a benchmark run is minutes)."""
STATUS_RETRY_PAUSE: Final = 1.0
STATUS_CONNECTIONS: Final = 32
"""Connections kept to intake for the status webhooks; requests beyond wait in a FIFO."""
DISPLAY_PHONE_NUMBER: Final = "6281282372016"
BUSINESS_ACCOUNT_ID: Final = "102290129340398"
MAX_BODY: Final = 1 << 20

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


def new_wamid() -> str:
    return "wamid.HBgN" + secrets.token_hex(18).upper()


def signature(secret: bytes, raw: bytes) -> str:
    return "sha256=" + hmac.new(secret, raw, hashlib.sha256).hexdigest()


def text_of(body: dict[str, Any]) -> str:
    """What the citizen reads, as far as the benchmark cares: a text's or caption's body, an
    interactive message's text, a template's name and parameters."""
    kind = str(body.get("type"))
    part = body.get(kind)
    if not isinstance(part, dict):
        return ""
    if kind == "text":
        return str(part.get("body") or "")
    if kind == "interactive":
        inner = part.get("body")
        return str(inner.get("text") or "") if isinstance(inner, dict) else ""
    if kind in ("document", "image"):
        return str(part.get("caption") or "")
    if kind == "template":
        parameters = [
            str(parameter.get("text"))
            for component in part.get("components") or []
            if isinstance(component, dict)
            for parameter in component.get("parameters") or []
            if isinstance(parameter, dict) and "text" in parameter
        ]
        return f"template {part.get('name')}: " + " | ".join(parameters)
    return ""


def status_payload(
    *,
    wamid: str,
    status: str,
    phone: str,
    kind: str,
    callback: str | None,
    at: int,
    phone_number_id: str,
) -> dict[str, Any]:
    """One delivery status as Meta sends it (one webhook, one entry, one change)."""
    item: dict[str, Any] = {
        "id": wamid,
        "status": status,
        "timestamp": str(at),
        "recipient_id": phone,
    }
    if callback is not None:
        item["biz_opaque_callback_data"] = callback
    if status in ("sent", "delivered"):
        category = "utility" if kind == "template" else "service"
        conversation: dict[str, Any] = {
            "id": hashlib.sha256(f"conversation:{phone}".encode()).hexdigest()[:32],
            "origin": {"type": category},
        }
        if status == "sent":
            conversation["expiration_timestamp"] = str(at + 24 * 3600)
        item["conversation"] = conversation
        item["pricing"] = {
            "billable": kind == "template",
            "pricing_model": "PMP",
            "category": category,
        }
    return {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": BUSINESS_ACCOUNT_ID,
                "changes": [
                    {
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {
                                "display_phone_number": DISPLAY_PHONE_NUMBER,
                                "phone_number_id": phone_number_id,
                            },
                            "statuses": [item],
                        },
                        "field": "messages",
                    }
                ],
            }
        ],
    }


@dataclass(frozen=True)
class Config:
    port: int
    webhook_url: str
    app_secret: str
    access_token: str
    phone_number_id: str
    status_delay: float
    integrator_secret: str | None
    host: str = "127.0.0.1"


@dataclass
class Counters:
    sends: int = 0
    refused: int = 0
    statuses_posted: int = 0
    statuses_retried: int = 0
    statuses_given_up: int = 0
    statuses_due: int = 0
    integrator_received: int = 0
    integrator_bad_signature: int = 0


@dataclass
class FakeCloud:
    """State and behaviour behind :meth:`__call__`, the ASGI entry point."""

    config: Config
    outbox: list[list[Any]] = field(default_factory=list)
    """[seq, phone, wamid, type, text, received at, callback data] per accepted send."""
    integrator: list[list[Any]] = field(default_factory=list)
    """[seq, event id, type, position, received at, signature ok] per integrator webhook."""
    counters: Counters = field(default_factory=Counters)
    _due: collections.deque[tuple[float, int, int]] = field(default_factory=collections.deque)
    """(when, outbox index, status index): the delay is constant, so this stays sorted."""
    _wake: asyncio.Event = field(default_factory=asyncio.Event)
    _client: httpx.AsyncClient | None = None
    _slots: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(STATUS_CONNECTIONS))
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _seq: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def __post_init__(self) -> None:
        self._secret = self.config.app_secret.encode()
        self._bearer = f"Bearer {self.config.access_token}".encode()
        self._verifier = (
            Webhook(self.config.integrator_secret) if self.config.integrator_secret else None
        )

    # -- ASGI ----------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        method, path = scope["method"], scope["path"]
        parts = path.strip("/").split("/")
        if method == "POST" and len(parts) == 3 and parts[2] == "messages":
            await self._send_message(scope, receive, send, parts[1])
        elif method == "POST" and len(parts) == 3 and parts[2] == "media":
            await self._upload_media(scope, receive, send, parts[1])
        elif method == "POST" and path == "/integrator/webhook":
            await self._integrator_webhook(scope, receive, send)
        elif method == "GET" and path == "/bench/outbox":
            after = _after(scope)
            await _answer(send, 200, {"items": self.outbox[after:], "next": len(self.outbox)})
        elif method == "GET" and path == "/bench/integrator":
            after = _after(scope)
            items = self.integrator[after:]
            await _answer(send, 200, {"items": items, "next": len(self.integrator)})
        elif method == "GET" and path == "/bench/stats":
            await _answer(send, 200, {**vars(self.counters), "pending": len(self._due)})
        elif method == "GET" and path == "/healthz":
            await _answer(send, 200, {"ok": True})
        else:
            await _answer(send, 404, _error(100, f"Unknown path {method} {path}"))

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                limits = httpx.Limits(
                    max_connections=STATUS_CONNECTIONS,
                    max_keepalive_connections=STATUS_CONNECTIONS,
                    keepalive_expiry=30,
                )
                self._client = httpx.AsyncClient(limits=limits, timeout=15, trust_env=False)
                self._tasks.add(asyncio.create_task(self._dispatch()))
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                for task in list(self._tasks):
                    task.cancel()
                if self._client is not None:
                    await self._client.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    # -- the Cloud API -------------------------------------------------------------------

    def _authorised(self, scope: Scope) -> bool:
        for name, value in scope["headers"]:
            if name == b"authorization":
                return hmac.compare_digest(value, self._bearer)
        return False

    async def _send_message(
        self, scope: Scope, receive: Receive, send: Send, phone_number_id: str
    ) -> None:
        raw = await _body(receive)
        if not self._authorised(scope):
            self.counters.refused += 1
            await _answer(send, 401, _error(190, "Invalid OAuth access token"))
            return
        if phone_number_id != self.config.phone_number_id:
            self.counters.refused += 1
            await _answer(send, 400, _error(100, f"Object with ID '{phone_number_id}' unknown"))
            return
        try:
            body = orjson.loads(raw)
            to = str(body["to"])
            kind = str(body["type"])
            if body.get("messaging_product") != "whatsapp" or not isinstance(body[kind], dict):
                raise ValueError("not a WhatsApp message")
        except (ValueError, KeyError, TypeError) as error:
            self.counters.refused += 1
            await _answer(send, 400, _error(100, f"(#100) Invalid parameter: {error}"))
            return
        phone = "".join(char for char in to if char.isdigit())
        wamid = new_wamid()
        callback = body.get("biz_opaque_callback_data")
        received = time.time()
        index = len(self.outbox)
        self.outbox.append(
            [
                next(self._seq),
                phone,
                wamid,
                kind,
                text_of(body),
                received,
                callback if isinstance(callback, str) else None,
            ]
        )
        self.counters.sends += 1
        now = time.monotonic()
        for number in range(len(STATUSES)):
            self._due.append((now + (number + 1) * self.config.status_delay, index, number))
        self.counters.statuses_due += len(STATUSES)
        self._wake.set()
        await _answer(
            send,
            200,
            {
                "messaging_product": "whatsapp",
                "contacts": [{"input": to, "wa_id": phone}],
                "messages": [{"id": wamid}],
            },
        )

    async def _upload_media(
        self, scope: Scope, receive: Receive, send: Send, phone_number_id: str
    ) -> None:
        await _body(receive)
        if not self._authorised(scope) or phone_number_id != self.config.phone_number_id:
            await _answer(send, 401, _error(190, "Invalid OAuth access token"))
            return
        await _answer(send, 200, {"id": str(10**15 + secrets.randbelow(9 * 10**15))})

    # -- delivery statuses ---------------------------------------------------------------

    async def _dispatch(self) -> None:
        """One task for every status due: sleeps until the next is due, then hands each
        due status to its own short task (so a slow intake never delays the schedule)."""
        while True:
            if not self._due:
                self._wake.clear()
                await self._wake.wait()
                continue
            due, index, number = self._due[0]
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
                continue
            self._due.popleft()
            task = asyncio.create_task(self._post_status(index, number))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _post_status(self, index: int, number: int) -> None:
        _, phone, wamid, kind, _, _, callback = self.outbox[index]
        raw = orjson.dumps(
            status_payload(
                wamid=wamid,
                status=STATUSES[number],
                phone=phone,
                kind=kind,
                callback=callback,
                at=int(time.time()),
                phone_number_id=self.config.phone_number_id,
            )
        )
        headers = {
            "Content-Type": "application/json",
            "X-Hub-Signature-256": signature(self._secret, raw),
            "User-Agent": "facebookexternalua",
        }
        assert self._client is not None
        for attempt in range(STATUS_ATTEMPTS):
            if attempt:
                self.counters.statuses_retried += 1
                await asyncio.sleep(STATUS_RETRY_PAUSE * attempt)
            try:
                async with self._slots:
                    response = await self._client.post(
                        self.config.webhook_url, content=raw, headers=headers
                    )
            except httpx.HTTPError as error:
                log.warning("status webhook not delivered: %s", type(error).__name__)
                continue
            if response.status_code == 200:
                self.counters.statuses_posted += 1
                return
            log.warning("status webhook answered HTTP %d", response.status_code)
        self.counters.statuses_given_up += 1

    # -- integrator webhooks -------------------------------------------------------------

    async def _integrator_webhook(self, scope: Scope, receive: Receive, send: Send) -> None:
        raw = await _body(receive)
        received = time.time()
        headers = {
            name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]
        }
        verified = False
        if self._verifier is not None:
            try:
                self._verifier.verify(raw, headers, json_parse=False)
                verified = True
            except WebhookVerificationError:
                self.counters.integrator_bad_signature += 1
        self.counters.integrator_received += 1
        try:
            event = orjson.loads(raw)
            item = [event.get("id"), event.get("type"), event.get("position")]
        except (ValueError, AttributeError):
            item = [None, None, None]
        self.integrator.append([len(self.integrator) + 1, *item, received, verified])
        await _answer(send, 200 if verified else 401, {"ok": verified})


def _after(scope: Scope) -> int:
    values = parse_qs(scope.get("query_string", b"").decode()).get("after", ["0"])
    with contextlib.suppress(ValueError):
        return max(0, int(values[0]))
    return 0


def _error(code: int, message: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": "OAuthException", "code": code}}


async def _body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size <= MAX_BODY:
            chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _answer(send: Send, status: int, body: object) -> None:
    raw = orjson.dumps(body)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(raw)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": raw})


def parse_config(argv: Sequence[str] | None = None) -> Config:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.fake_cloud")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--webhook-url", required=True, help="adminduk's /webhook/whatsapp")
    parser.add_argument("--app-secret", required=True)
    parser.add_argument("--access-token", default="dev-access-token")
    parser.add_argument("--phone-number-id", default="109876543210")
    parser.add_argument("--status-delay", type=float, default=1.0, help="seconds")
    parser.add_argument("--integrator-secret", default=None, help="whsec_...")
    arguments = parser.parse_args(argv)
    return Config(
        port=arguments.port,
        webhook_url=arguments.webhook_url,
        app_secret=arguments.app_secret,
        access_token=arguments.access_token,
        phone_number_id=arguments.phone_number_id,
        status_delay=arguments.status_delay,
        integrator_secret=arguments.integrator_secret,
    )


def main(argv: Sequence[str] | None = None) -> None:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(message)s")
    config = parse_config(argv)
    uvicorn.run(
        FakeCloud(config),
        host=config.host,
        port=config.port,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        access_log=False,
        log_level="warning",
    )


if __name__ == "__main__":
    main()
