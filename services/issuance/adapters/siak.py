"""SIAK, the national population system: the port, its HTTP adapter, a circuit breaker and
the backoff of retries.

SIAK is outside the office's control and has outages. Nothing here queues or retries: the
issuance worker keeps submissions in its queue and asks :func:`retry_delay` and
:attr:`Breaker.retry_at` when to try again. What this module guarantees is the error
contract: :class:`SiakUnavailableError` means "try again later with the same idempotency
key" (SIAK may or may not have done the work), :class:`SiakRejectedError` means "SIAK
answered no; retrying will not help".

The breaker is our own, not the ``circuitbreaker`` package: that package reads
``time.monotonic`` from its module (no injectable clock) and lets every caller through once
the cooldown has passed, where we want exactly one probe in the half-open state.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, Final, Literal, Protocol, TypeVar

import httpx
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from shared.config import Settings
from shared.documents import DocType

log = logging.getLogger(__name__)

T = TypeVar("T")

BreakerState = Literal["closed", "open", "half_open"]

# Answers worth trying again: the request timed out or came too early, SIAK is throttling
# us, or SIAK (or a gateway in front of it) failed. Every other 4xx is SIAK saying no.
RETRYABLE_STATUSES: Final = frozenset({408, 425, 429})
_MESSAGE_MAX: Final = 300


class SiakSubmission(BaseModel):
    """One document to issue. ``idempotency_key`` is the same on every attempt of the same
    submission, so a retry after a lost answer cannot create a second document."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    idempotency_key: str = Field(min_length=1, max_length=200)
    ticket: str = Field(min_length=1, max_length=100)
    doc_type: DocType
    region_code: str = Field(pattern=r"^\d{4}$")
    kecamatan_code: str | None = Field(default=None, pattern=r"^\d{6}$")
    # Personal data (nik, no_kk, nama, ...): kept out of repr so it never reaches a log.
    applicant: dict[str, Any] = Field(default_factory=dict, repr=False)


class SiakReceipt(BaseModel):
    """SIAK's answer: the number of the issued document."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    document_number: str = Field(min_length=1, max_length=100)
    issued_at: AwareDatetime


class SiakError(Exception):
    """A submission to SIAK did not give a receipt."""


class SiakUnavailableError(SiakError):
    """SIAK could not be reached or failed; try again later with the same key.

    ``status`` is the HTTP status when SIAK (or a gateway) answered; ``retry_after`` is
    SIAK's ``Retry-After`` or, for an open circuit, the time until the next probe.
    """

    def __init__(
        self, message: str, *, status: int | None = None, retry_after: timedelta | None = None
    ) -> None:
        super().__init__(message if status is None else f"SIAK status {status}: {message}")
        self.status = status
        self.retry_after = retry_after


class SiakCircuitOpenError(SiakUnavailableError):
    """The breaker refused the call without touching SIAK (the attempt never happened)."""

    def __init__(self, retry_after: timedelta | None) -> None:
        super().__init__("circuit open", retry_after=retry_after)


class SiakRejectedError(SiakError):
    """SIAK refused the submission (4xx); retrying the same submission will not help."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"SIAK rejected the submission, status {status}: {message}")
        self.status = status
        self.message = message


class SiakPort(Protocol):
    async def submit(self, submission: SiakSubmission) -> SiakReceipt:
        """Issue the document; raises :class:`SiakUnavailableError` or
        :class:`SiakRejectedError`."""
        ...


# --- HTTP -----------------------------------------------------------------------------------


def _message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:_MESSAGE_MAX] or response.reason_phrase
    if isinstance(body, dict):
        for key in ("error", "message", "detail"):
            if key in body:
                return str(body[key])[:_MESSAGE_MAX]
    return str(body)[:_MESSAGE_MAX]


def _retry_after(response: httpx.Response) -> timedelta | None:
    value = response.headers.get("retry-after", "").strip()
    return timedelta(seconds=int(value)) if value.isdigit() else None


class HttpSiak:
    """SIAK over HTTP: ``POST {base_url}/dokumen`` with a bearer token and an
    ``Idempotency-Key`` header. One per process; safe to share between tasks.

    A client passed in stays the caller's to close; token and timeout apply per request.
    """

    def __init__(
        self,
        base_url: str,
        token: str,
        timeout: float,
        *,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self._url = base_url.rstrip("/") + "/dokumen"
        self._token = token
        self._timeout = httpx.Timeout(timeout)
        self._owns_client = client is None
        self._http = httpx.AsyncClient(timeout=self._timeout) if client is None else client

    @classmethod
    def from_settings(
        cls, settings: Settings, *, client: httpx.AsyncClient | None = None
    ) -> HttpSiak:
        """The configured SIAK, or the simulator's when none is configured."""
        return cls(
            settings.siak_base_url,
            settings.siak_token.get_secret_value(),
            settings.siak_timeout,
            client=client,
        )

    async def aclose(self) -> None:
        if self._owns_client:
            await self._http.aclose()

    async def submit(self, submission: SiakSubmission) -> SiakReceipt:
        body = submission.model_dump(mode="json", exclude={"idempotency_key"})
        try:
            response = await self._http.post(
                self._url,
                json=body,
                headers={
                    "Authorization": f"Bearer {self._token}",
                    "Idempotency-Key": submission.idempotency_key,
                },
                timeout=self._timeout,
            )
        except httpx.TimeoutException as error:
            raise SiakUnavailableError(f"time-out: {type(error).__name__}") from error
        except httpx.TransportError as error:
            raise SiakUnavailableError(f"transport: {type(error).__name__}") from error
        status = response.status_code
        if status in RETRYABLE_STATUSES or status >= 500:
            raise SiakUnavailableError(
                _message(response), status=status, retry_after=_retry_after(response)
            )
        if not response.is_success:
            raise SiakRejectedError(status, _message(response))
        try:
            return SiakReceipt.model_validate_json(response.content)
        except ValidationError as error:
            # SIAK said yes but we cannot read the number: asking again with the same key
            # returns the same document, so this is a retry, not a loss.
            raise SiakUnavailableError("answer without a readable document number") from error


# --- circuit breaker ------------------------------------------------------------------------


class Breaker:
    """Stops calling SIAK while it is down, then lets one probe find out whether it is back.

    Closed: calls go through; ``failures`` consecutive :class:`SiakUnavailableError` open
    the circuit. Open: calls fail fast with :class:`SiakCircuitOpenError` until ``cooldown``
    has passed. Half-open: the next call is the probe, and every other call fails fast
    while it runs; the probe's success closes the circuit, its failure re-opens it.

    Any answer of SIAK, a :class:`SiakRejectedError` included, proves SIAK is up and counts
    as a success. Meant for one event loop (no thread safety); ``now`` is monotonic seconds.
    """

    def __init__(
        self,
        failures: int,
        cooldown: timedelta,
        *,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        if failures < 1:
            raise ValueError("failures must be at least 1")
        if cooldown < timedelta(0):
            raise ValueError("cooldown must not be negative")
        self._threshold = failures
        self._cooldown = cooldown.total_seconds()
        self._now = now
        self._failures = 0
        self._opened_at: float | None = None
        self._probe_started_at: float | None = None

    @classmethod
    def from_settings(
        cls, settings: Settings, *, now: Callable[[], float] = time.monotonic
    ) -> Breaker:
        return cls(settings.siak_breaker_failures, settings.siak_breaker_cooldown, now=now)

    @property
    def state(self) -> BreakerState:
        """``half_open`` once the cooldown has passed (a probe may go) or while it runs."""
        if self._opened_at is None:
            return "closed"
        if self._probe_started_at is not None or self._now() >= self._probe_due(self._opened_at):
            return "half_open"
        return "open"

    @property
    def retry_at(self) -> float | None:
        """When (on the ``now`` clock) the next call may go through; ``None`` if it may now.

        While a probe runs, the earliest a next probe could start should the probe fail.
        """
        if self._probe_started_at is not None:
            return self._probe_due(self._probe_started_at)
        if self._opened_at is None or self._now() >= self._probe_due(self._opened_at):
            return None
        return self._probe_due(self._opened_at)

    @property
    def retry_after(self) -> timedelta:
        """How long until the next call may go through (zero if it may now)."""
        retry_at = self.retry_at
        return timedelta(0) if retry_at is None else timedelta(seconds=retry_at - self._now())

    @property
    def consecutive_failures(self) -> int:
        return self._failures

    async def call(self, attempt: Callable[[], Awaitable[T]]) -> T:
        """Run ``attempt`` unless the circuit refuses it."""
        probe = self._admit()
        try:
            result = await attempt()
        except SiakRejectedError:
            self._succeeded()
            raise
        except SiakUnavailableError:
            self._failed()
            raise
        except BaseException:
            # Neither proof of life nor of failure (a bug, a cancellation): free the probe
            # slot so the next caller probes instead.
            if probe:
                self._probe_started_at = None
            raise
        self._succeeded()
        return result

    def _probe_due(self, since: float) -> float:
        return since + self._cooldown

    def _admit(self) -> bool:
        """Whether the call is admitted as the half-open probe; raises if refused."""
        if self._opened_at is None:
            return False
        if self._probe_started_at is None and self._now() >= self._probe_due(self._opened_at):
            self._probe_started_at = self._now()
            log.info("SIAK circuit half-open: probing")
            return True
        raise SiakCircuitOpenError(self.retry_after)

    def _succeeded(self) -> None:
        if self._opened_at is not None:
            log.info("SIAK circuit closed: SIAK answers again")
        self._failures = 0
        self._opened_at = None
        self._probe_started_at = None

    def _failed(self) -> None:
        self._failures += 1
        if self._probe_started_at is not None or self._failures >= self._threshold:
            if self._opened_at is None:
                log.warning("SIAK circuit open after %d consecutive failures", self._failures)
            self._opened_at = self._now()
            self._probe_started_at = None


class BreakingSiak:
    """A :class:`SiakPort` behind a :class:`Breaker`."""

    def __init__(self, port: SiakPort, breaker: Breaker) -> None:
        self.port = port
        self.breaker = breaker

    async def submit(self, submission: SiakSubmission) -> SiakReceipt:
        return await self.breaker.call(lambda: self.port.submit(submission))


# --- backoff --------------------------------------------------------------------------------

_MICROSECOND: Final = timedelta(microseconds=1)
# 2**64 times any base already exceeds every cap a timedelta can hold.
_MAX_DOUBLINGS: Final = 64


def retry_delay(
    attempt: int,
    base: timedelta,
    cap: timedelta,
    rand: Callable[[], float] = random.random,
) -> timedelta:
    """The pause after failed attempt number ``attempt`` (1 for the first failure).

    Exponential backoff ``base * 2**(attempt - 1)``, capped at ``cap``, with "equal
    jitter": half of it fixed, half random. The fixed half makes delays grow with the
    attempt; the random half spreads the retries of many submissions queued during the
    same outage so they do not all hit SIAK the moment it returns.
    """
    if attempt < 1:
        raise ValueError("attempt counts failed attempts and starts at 1")
    if base < timedelta(0) or cap < timedelta(0):
        raise ValueError("base and cap must not be negative")
    cap_us = cap // _MICROSECOND
    ceiling_us = min(cap_us, (base // _MICROSECOND) << min(attempt - 1, _MAX_DOUBLINGS))
    fixed_us = ceiling_us // 2
    jitter = min(max(rand(), 0.0), 1.0)
    return timedelta(microseconds=fixed_us + round(jitter * (ceiling_us - fixed_us)))
