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
  few times, as Meta retries. They go out over a few persistent HTTP/1.1 connections, each
  drained by one task from a due-ordered heap (:class:`StatusSender`): a minimal keep-alive
  client on asyncio streams, since it only ever talks to intake's webhook on loopback
  (httpx, and a task per status, cost several times the rest of the process).
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
import contextlib
import hashlib
import heapq
import hmac
import itertools
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import parse_qs, urlsplit

import orjson
import uvicorn
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

log = logging.getLogger("bench.fake_cloud")

STATUSES: Final = ("sent", "delivered", "read")
STATUS_ATTEMPTS: Final = 4
"""Tries per status webhook (Meta retries for days; a benchmark run is minutes)."""
STATUS_RETRY_PAUSE: Final = 1.0
STATUS_CONNECTIONS: Final = 32
"""Connections kept to intake for the status webhooks (each with its own sender task);
statuses due beyond wait in a FIFO."""
STATUS_TIMEOUT: Final = 15.0
"""Seconds a status POST may take (connect, send, answer) before it counts as failed."""
MAX_ANSWER_HEAD: Final = 64 * 1024
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


def status_item(
    *, wamid: str, status: str, phone: str, kind: str, callback: str | None, at: int
) -> dict[str, Any]:
    """The ``statuses[0]`` of a delivery-status webhook: conversation and pricing on sent
    and delivered, the send's callback data echoed."""
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
            "id": _conversation_id(phone),
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
    return item


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
    item = status_item(wamid=wamid, status=status, phone=phone, kind=kind, callback=callback, at=at)
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


def status_body(
    *,
    wamid: str,
    status: str,
    phone: str,
    kind: str,
    callback: str | None,
    at: int,
    phone_number_id: str,
) -> bytes:
    """``orjson.dumps(status_payload(...))``, byte for byte, with the constant envelope
    serialised once."""
    item = status_item(wamid=wamid, status=status, phone=phone, kind=kind, callback=callback, at=at)
    head, tail = _envelope(phone_number_id)
    return head + orjson.dumps(item) + tail


_ENVELOPES: dict[str, tuple[bytes, bytes]] = {}


def _envelope(phone_number_id: str) -> tuple[bytes, bytes]:
    """The serialised status payload around its one status item, split at the item."""
    envelope = _ENVELOPES.get(phone_number_id)
    if envelope is None:
        whole = orjson.dumps(
            status_payload(
                wamid="",
                status="",
                phone="",
                kind="",
                callback=None,
                at=0,
                phone_number_id=phone_number_id,
            )
        )
        item = orjson.dumps({"id": "", "status": "", "timestamp": "0", "recipient_id": ""})
        head, found, tail = whole.partition(item)
        assert found, "the status item is where status_payload puts it"
        envelope = _ENVELOPES[phone_number_id] = (head, tail)
    return envelope


_CONVERSATIONS: dict[str, str] = {}


def _conversation_id(phone: str) -> str:
    conversation = _CONVERSATIONS.get(phone)
    if conversation is None:
        conversation = hashlib.sha256(f"conversation:{phone}".encode()).hexdigest()[:32]
        if len(_CONVERSATIONS) > 100_000:
            _CONVERSATIONS.clear()
        _CONVERSATIONS[phone] = conversation
    return conversation


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
    statuses: StatusSender | None = None
    _seq: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def __post_init__(self) -> None:
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
            await _answer(send, 200, {**vars(self.counters), "pending": self._pending()})
        elif method == "GET" and path == "/healthz":
            await _answer(send, 200, {"ok": True})
        else:
            await _answer(send, 404, _error(100, f"Unknown path {method} {path}"))

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self.statuses = StatusSender(self.config, self.outbox, self.counters)
                self.statuses.start()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self.statuses is not None:
                    await self.statuses.stop()
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
        if self.statuses is not None:
            self.statuses.schedule(index)
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

    def _pending(self) -> int:
        return self.statuses.pending() if self.statuses is not None else 0

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


class StatusPostError(Exception):
    """A status POST that got no HTTP answer: refused, reset, cut short, malformed."""


class Connection:
    """One persistent HTTP/1.1 connection to intake's webhook: the request written in one
    go, the answer's status line and head read, then its body by ``Content-Length`` (or by
    chunks, or to the end when the server closes). Reconnects on the next request after an
    error or a ``Connection: close``."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, request: bytes) -> int:
        """The answer's status code; :class:`StatusPostError` when there is none."""
        reused = self.writer is not None
        if self.reader is not None and self.reader.at_eof():
            self.close()  # the server closed it while idle (uvicorn's keep-alive time-out)
            reused = False
        try:
            return await self._exchange(request)
        except StatusPostError:
            if not reused:
                raise
        except (OSError, asyncio.IncompleteReadError) as error:
            if not reused:
                raise StatusPostError(type(error).__name__) from error
        # A kept-alive connection the server dropped just as the request went out: nothing
        # was answered, so once more on a new connection (a first failure there counts).
        try:
            return await self._exchange(request)
        except (OSError, asyncio.IncompleteReadError) as error:
            raise StatusPostError(type(error).__name__) from error

    async def _exchange(self, request: bytes) -> int:
        try:
            if self.writer is None:
                self.reader, self.writer = await asyncio.open_connection(
                    self.host, self.port, limit=MAX_ANSWER_HEAD
                )
            assert self.reader is not None
            self.writer.write(request)
            return await self._read_answer(self.reader)
        except BaseException:
            self.close()
            raise

    async def _read_answer(self, reader: asyncio.StreamReader) -> int:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.LimitOverrunError as error:
                raise StatusPostError("answer head too large") from error
            lines = head[:-4].split(b"\r\n")
            version, _, rest = lines[0].partition(b" ")
            try:
                code = int(rest[:3])
            except ValueError as error:
                raise StatusPostError("not an HTTP answer") from error
            if not 100 <= code < 200:
                break
        length, chunked, close = _framing(version, lines[1:])
        if chunked:
            await _skip_chunks(reader)
        elif length is not None:
            if length:
                await reader.readexactly(length)
        elif code not in (204, 304):
            await reader.read()  # no length: the body runs to the end of the connection
            close = True
        if close:
            self.close()
        return code

    def close(self) -> None:
        if self.writer is not None:
            self.writer.transport.abort()
        self.reader = self.writer = None


def _framing(version: bytes, lines: list[bytes]) -> tuple[int | None, bool, bool]:
    """An answer head's ``Content-Length``, whether it is chunked, whether the server closes."""
    length: int | None = None
    chunked = False
    close = version != b"HTTP/1.1"
    for line in lines:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            try:
                length = int(value)
            except ValueError as error:
                raise StatusPostError("bad Content-Length") from error
        elif name == b"transfer-encoding":
            chunked = b"chunked" in value.lower()
        elif name == b"connection":
            close = b"close" in value.lower()
    return length, chunked, close


async def _skip_chunks(reader: asyncio.StreamReader) -> None:
    while True:
        try:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
        except (ValueError, asyncio.LimitOverrunError) as error:
            raise StatusPostError("bad chunk") from error
        if size == 0:
            while await reader.readuntil(b"\r\n") != b"\r\n":
                pass  # trailers
            return
        await reader.readexactly(size + 2)


class StatusSender:
    """The delivery statuses of every accepted send, each a signed POST to intake's webhook
    ``status_delay`` seconds after the previous one (the first that long after the send).

    Due statuses and retries wait in one heap ordered by due time; a single timer (re-armed
    for the earliest) moves those due to a FIFO, which :data:`STATUS_CONNECTIONS` sender
    tasks drain, each over its own persistent :class:`Connection`. A failed POST goes back
    into the heap, ``STATUS_RETRY_PAUSE`` times the attempt number later, with the same
    body (so the same timestamp and signature), up to :data:`STATUS_ATTEMPTS` tries."""

    def __init__(self, config: Config, outbox: list[list[Any]], counters: Counters) -> None:
        url = urlsplit(config.webhook_url)
        if url.scheme != "http" or not url.hostname:
            raise ValueError(f"status webhooks go to a plain http:// URL, not {url.geturl()!r}")
        self.config = config
        self.outbox = outbox
        self.counters = counters
        self.host = url.hostname
        self.port = url.port or 80
        target = (url.path or "/") + (f"?{url.query}" if url.query else "")
        netloc = url.netloc.rpartition("@")[2]
        self._head = (
            f"POST {target} HTTP/1.1\r\n"
            f"Host: {netloc}\r\n"
            "Accept: */*\r\n"
            "Accept-Encoding: gzip, deflate\r\n"
            "Connection: keep-alive\r\n"
            "User-Agent: facebookexternalua\r\n"
            "Content-Type: application/json\r\n"
            "X-Hub-Signature-256: sha256="
        ).encode()
        self._mac = hmac.new(config.app_secret.encode(), digestmod=hashlib.sha256)
        self._heap: list[tuple[float, int, int, int, int, bytes | None]] = []
        """(due, order, outbox index, status index, attempt, request or None if not built)"""
        self._order = itertools.count()
        self._ready: asyncio.Queue[tuple[int, int, int, bytes | None]] = asyncio.Queue()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = float("inf")
        self._tasks: list[asyncio.Task[None]] = []
        self._connections: list[Connection] = []
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        for _ in range(STATUS_CONNECTIONS):
            connection = Connection(self.host, self.port)
            self._connections.append(connection)
            self._tasks.append(asyncio.create_task(self._sender(connection)))

    async def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for connection in self._connections:
            connection.close()

    def pending(self) -> int:
        """Statuses (and retries) waiting for their time or for a free connection."""
        return len(self._heap) + self._ready.qsize()

    def schedule(self, index: int) -> None:
        """The statuses of the send at ``outbox[index]``, from now."""
        assert self._loop is not None
        now = self._loop.time()
        delay = self.config.status_delay
        for number in range(len(STATUSES)):
            self._push(now + (number + 1) * delay, index, number, 0, None)
        self.counters.statuses_due += len(STATUSES)

    def _push(
        self, due: float, index: int, number: int, attempt: int, request: bytes | None
    ) -> None:
        heapq.heappush(self._heap, (due, next(self._order), index, number, attempt, request))
        if due < self._timer_at:
            assert self._loop is not None
            if self._timer is not None:
                self._timer.cancel()
            self._timer = self._loop.call_at(due, self._release)
            self._timer_at = due

    def _release(self) -> None:
        """The timer: everything due goes to the senders' FIFO, in due order."""
        assert self._loop is not None
        self._timer = None
        self._timer_at = float("inf")
        heap = self._heap
        now = self._loop.time()
        while heap and heap[0][0] <= now:
            _, _, index, number, attempt, request = heapq.heappop(heap)
            self._ready.put_nowait((index, number, attempt, request))
        if heap:
            self._timer_at = heap[0][0]
            self._timer = self._loop.call_at(self._timer_at, self._release)

    async def _sender(self, connection: Connection) -> None:
        ready = self._ready
        while True:
            index, number, attempt, request = await ready.get()
            try:
                await self._post_status(connection, index, number, attempt, request)
            except Exception:  # one status's bug must not stop its sender
                log.exception("status webhook failed unexpectedly")
                self.counters.statuses_given_up += 1

    async def _post_status(
        self,
        connection: Connection,
        index: int,
        number: int,
        attempt: int,
        request: bytes | None,
    ) -> None:
        if request is None:
            request = self._request(index, number)
        try:
            async with asyncio.timeout(STATUS_TIMEOUT):
                code = await connection.post(request)
        except (StatusPostError, TimeoutError) as error:
            connection.close()
            log.warning("status webhook not delivered: %s", str(error) or type(error).__name__)
        else:
            if code == 200:
                self.counters.statuses_posted += 1
                return
            log.warning("status webhook answered HTTP %d", code)
        attempt += 1
        if attempt >= STATUS_ATTEMPTS:
            self.counters.statuses_given_up += 1
            return
        self.counters.statuses_retried += 1
        assert self._loop is not None
        self._push(
            self._loop.time() + STATUS_RETRY_PAUSE * attempt, index, number, attempt, request
        )

    def _request(self, index: int, number: int) -> bytes:
        _, phone, wamid, kind, _, _, callback = self.outbox[index]
        raw = status_body(
            wamid=wamid,
            status=STATUSES[number],
            phone=phone,
            kind=kind,
            callback=callback,
            at=int(time.time()),
            phone_number_id=self.config.phone_number_id,
        )
        mac = self._mac.copy()
        mac.update(raw)
        return b"".join(
            (
                self._head,
                mac.hexdigest().encode(),
                b"\r\nContent-Length: ",
                str(len(raw)).encode(),
                b"\r\n\r\n",
                raw,
            )
        )


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
