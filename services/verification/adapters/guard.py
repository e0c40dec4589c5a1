"""What the officer web application checks before any route runs (ASGI middleware).

* Every ``/api`` request from an address with too many failed sign-ins is answered 429
  with ``Retry-After`` (:mod:`.throttle`; the console's login counts into the same).
* Every ``/api`` request is authenticated from its ``Authorization`` header before a byte
  of its body is read: a wrong or missing token is answered 401 at once, and a wrong one
  counts as a failure of its address.
* Every request body, API or console, is at most :data:`MAX_BODY` bytes: a larger
  ``Content-Length`` is answered 413 before reading, and a body without one is counted as
  it arrives and refused (413) once past the limit. The body is then handed to the route
  as it came.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Final

from services.verification.adapters.api import Authenticator, Unauthorized

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

MAX_BODY: Final = 64 * 1024
"""The largest request body: ten reasons of 500 characters, or a complaint's answer of
3,000, fit many times over, even with every character escaped."""


def client_address(scope: Scope) -> str:
    """The address the throttle counts: the peer's, or the one a trusted proxy forwarded
    (uvicorn applies ``X-Forwarded-For`` from the proxies it trusts)."""
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


def bearer_token(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name.lower() == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() != "bearer":
                return None
            return token.strip() or None
    return None


class OfficerAppGuard:
    def __init__(self, app: ASGIApp, *, auth: Authenticator, max_body: int = MAX_BODY) -> None:
        self.app = app
        self.auth = auth
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        api = path == "/api" or path.startswith("/api/")
        if api:
            address = client_address(scope)
            wait = self.auth.throttle.retry_after(address)
            if wait:
                await _answer(
                    send,
                    429,
                    "too many failed sign-ins from this address; try again later",
                    {"Retry-After": str(wait)},
                )
                return
            token = bearer_token(scope)
            try:
                officer = await self.auth.officer(token)
            except Unauthorized as error:
                if token:
                    self.auth.throttle.failed(address)
                await _answer(send, 401, str(error), {"WWW-Authenticate": "Bearer"})
                return
            scope.setdefault("state", {})["officer"] = officer
        declared = _content_length(scope)
        if declared is not None and declared > self.max_body:
            await _answer(send, 413, self._too_large())
            return
        body = await self._read(receive)
        if body is None:
            await _answer(send, 413, self._too_large())
            return
        await self.app(scope, _replay(body, receive), send)

    def _too_large(self) -> str:
        return f"request body larger than {self.max_body} bytes"

    async def _read(self, receive: Receive) -> bytes | None:
        """The whole body, or None once it passes the limit (the rest is not read)."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name.lower() == b"content-length":
            # Malformed: the server refuses it before us; taken as too large otherwise.
            return int(value) if value.isdigit() else sys.maxsize
    return None


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed


async def _answer(
    send: Send, status: int, detail: str, headers: dict[str, str] | None = None
) -> None:
    body = json.dumps({"detail": detail}).encode()
    raw = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"),
        *((k.lower().encode(), v.encode()) for k, v in (headers or {}).items()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})
