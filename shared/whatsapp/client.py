"""A small client of the WhatsApp Cloud API (or the built-in simulator, which speaks the
same wire format): send messages, fetch media in its two steps.

The media steps carry the office's access token, and what they are given comes from a
webhook (the media id) and from an answer (the download URL): a media id is Meta's (ASCII
digits) or it is not looked up, and the bytes are fetched only from Meta's media host or
the configured Cloud API itself (the simulator in development), over https when
``https_only`` (production)."""

from __future__ import annotations

import re
from typing import Any, Final, Self
from urllib.parse import urlsplit

import httpx
from pydantic import BaseModel, ConfigDict

from shared.config import Environment, Settings

# Meta's error codes worth a retry: throughput (130429), pair rate (131056), generic
# temporary error (131000), service unavailable (131016); 5xx and time-outs likewise.
RETRYABLE_CODES: Final = frozenset({130429, 131056, 131000, 131016, 2, 4, 80007})


class CloudApiError(Exception):
    """The Cloud API refused or failed a call. ``retryable`` says whether trying again
    later may succeed; ``code`` is Meta's error code when the answer carried one."""

    def __init__(
        self, status: int | None, code: int | None, message: str, *, unanswered: bool = False
    ) -> None:
        super().__init__(f"Cloud API error status={status} code={code}: {message}")
        self.status = status
        self.code = code
        self.retryable = status is None or status >= 500 or code in RETRYABLE_CODES
        self.unanswered = unanswered
        """The request may have reached the API but no answer came (a time-out, a dropped
        connection): it may have been carried out."""


class MediaTooLargeError(CloudApiError):
    def __init__(self, limit: int) -> None:
        super().__init__(413, None, f"media larger than {limit} bytes")
        self.retryable = False


class MediaRefusedError(CloudApiError):
    """A media id or download URL the client will not use: never retried, never sent."""

    def __init__(self, message: str) -> None:
        super().__init__(None, None, message)
        self.retryable = False


MEDIA_ID: Final = re.compile(r"[0-9]{1,32}")
"""Meta's media ids: decimal digits (``1037543291543636``); with ``fullmatch``, nothing else
can reach the URL path (``../``, ``?``, ``#``, ``%2F``, another script's digits)."""

META_MEDIA_HOSTS: Final = frozenset({"lookaside.fbsbx.com"})
"""Where the Cloud API's media lookup points its short-lived download URLs."""


def _origin(url: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) of an absolute http(s) URL without credentials, else None."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in {"http", "https"} or not parts.hostname or "@" in parts.netloc:
        return None
    return parts.scheme, parts.hostname.lower(), port or (443 if parts.scheme == "https" else 80)


class MediaInfo(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    url: str
    mime_type: str | None = None
    sha256: str | None = None
    file_size: int | None = None


def _error(response: httpx.Response) -> CloudApiError:
    code, message = None, response.text[:300]
    try:
        body = response.json()
        error = body.get("error", {}) if isinstance(body, dict) else {}
        code = error.get("code")
        message = str(error.get("message", message))[:300]
    except ValueError:
        pass
    return CloudApiError(response.status_code, code if isinstance(code, int) else None, message)


CONNECTIONS: Final = 64
"""Connections to the Cloud API per process: more than notify's concurrent sends (32)."""


class CloudApiClient:
    """One per process; safe to share between tasks."""

    def __init__(
        self,
        base_url: str,
        access_token: str,
        phone_number_id: str,
        *,
        timeout: float = 15.0,
        transport: httpx.AsyncBaseTransport | None = None,
        https_only: bool = False,
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self._https_only = https_only
        self._media_origins = {("https", host, 443) for host in META_MEDIA_HOSTS}
        base = _origin(self._base_url)
        if base is not None:
            self._media_origins.add(base)
        self._phone_number_id = phone_number_id
        self._http = httpx.AsyncClient(
            headers={"Authorization": f"Bearer {access_token}"},
            timeout=timeout,
            transport=transport,
            # Every connection the senders open is kept: with fewer kept than in use, each
            # busy moment closes and reopens connections (measured: 15-27 % of notify's CPU).
            limits=httpx.Limits(max_connections=CONNECTIONS, max_keepalive_connections=CONNECTIONS),
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> CloudApiClient:
        """The configured Cloud API, or the built-in simulator when none is configured;
        media over https only in production."""
        return cls(
            settings.whatsapp_base_url,
            settings.whatsapp_access_token.get_secret_value(),
            settings.whatsapp_phone_number_id,
            https_only=settings.environment is Environment.PRODUCTION,
        )

    async def close(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    async def _call(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        try:
            response = await self._http.request(method, url, **kwargs)
        except (httpx.ConnectError, httpx.ConnectTimeout) as error:  # it never left
            raise CloudApiError(None, None, f"connect: {type(error).__name__}") from error
        except httpx.TimeoutException as error:
            raise CloudApiError(
                None, None, f"time-out: {type(error).__name__}", unanswered=True
            ) from error
        except httpx.TransportError as error:
            raise CloudApiError(
                None, None, f"transport: {type(error).__name__}", unanswered=True
            ) from error
        if response.status_code >= 400:
            raise _error(response)
        return response

    async def send(self, payload: dict[str, Any]) -> str:
        """POST a message; returns its ``wamid``."""
        body = {"messaging_product": "whatsapp", "recipient_type": "individual", **payload}
        response = await self._call(
            "POST", f"{self._base_url}/{self._phone_number_id}/messages", json=body
        )
        try:
            return str(response.json()["messages"][0]["id"])
        except (ValueError, KeyError, IndexError, TypeError) as error:
            raise CloudApiError(
                response.status_code, None, "answer without a message id"
            ) from error

    async def upload_media(self, data: bytes, mime_type: str, filename: str) -> str:
        """Upload a file to send (e.g. a letter as a document message); returns its media
        id. Each upload gets a new id, so a retried send may leave an unused one behind;
        Meta deletes those after 30 days."""
        response = await self._call(
            "POST",
            f"{self._base_url}/{self._phone_number_id}/media",
            data={"messaging_product": "whatsapp", "type": mime_type},
            files={"file": (filename, data, mime_type)},
        )
        try:
            return str(response.json()["id"])
        except (ValueError, KeyError, TypeError) as error:
            raise CloudApiError(response.status_code, None, "answer without a media id") from error

    async def media_info(self, media_id: str) -> MediaInfo:
        """Step one: the media's short-lived URL, type and digest. A ``media_id`` that is
        not Meta's raises :class:`MediaRefusedError` without a request."""
        if not MEDIA_ID.fullmatch(media_id):
            raise MediaRefusedError("not a Cloud API media id")
        response = await self._call("GET", f"{self._base_url}/{media_id}")
        try:
            return MediaInfo.model_validate(response.json())
        except ValueError as error:
            raise CloudApiError(response.status_code, None, "malformed media answer") from error

    async def download(self, url: str, *, max_bytes: int) -> bytes:
        """Step two: the bytes, streamed, refusing anything over ``max_bytes``. A URL on
        another host than Meta's media host or the configured Cloud API (or plain http when
        ``https_only``) raises :class:`MediaRefusedError` without a request: the access
        token goes with it."""
        origin = _origin(url)
        if origin is None or origin not in self._media_origins:
            raise MediaRefusedError(f"download URL on a host not allowed: {origin and origin[1]}")
        if self._https_only and origin[0] != "https":
            raise MediaRefusedError("download URL not https")
        try:
            async with self._http.stream("GET", url) as response:
                if response.status_code >= 400:
                    await response.aread()
                    raise _error(response)
                declared = response.headers.get("content-length")
                if declared is not None and declared.isdigit() and int(declared) > max_bytes:
                    raise MediaTooLargeError(max_bytes)
                chunks, size = [], 0
                async for chunk in response.aiter_bytes():
                    size += len(chunk)
                    if size > max_bytes:
                        raise MediaTooLargeError(max_bytes)
                    chunks.append(chunk)
                return b"".join(chunks)
        except httpx.TimeoutException as error:
            raise CloudApiError(None, None, f"time-out: {type(error).__name__}") from error
        except httpx.TransportError as error:
            raise CloudApiError(None, None, f"transport: {type(error).__name__}") from error
