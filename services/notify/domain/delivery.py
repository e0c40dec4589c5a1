"""The rules of sending, without I/O: throughput and pacing, which errors are worth a retry
and when, the 24-hour window, and the order of delivery statuses.

Meta's numbers (DOMAIN.md): 80 messages/s per business number by default, up to 1,000/s
after an upgrade (error 130429 above it); about one message per 6 s to the same citizen
with short bursts (131056); free-form only within 24 hours of the citizen's last message
(131047); retry 130429, 131056, 131000, 5xx and time-outs; never retry 131026
(undeliverable), 132xxx (template errors) or 368 (policy block).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final, Literal

from shared.contracts import DeliveryState

SERVICE_WINDOW: Final = timedelta(hours=24)


def in_window(
    last_inbound: datetime | None, now: datetime, margin: timedelta = timedelta(0)
) -> bool:
    """Whether a free-form message may go to a citizen whose last message was sent at
    ``last_inbound`` (None: never wrote), keeping ``margin`` in hand for queues and clocks."""
    return last_inbound is not None and now - last_inbound < SERVICE_WINDOW - margin


class TokenBucket:
    """``rate`` tokens a second, at most ``capacity`` saved up; time from ``clock`` (s)."""

    def __init__(self, rate: float, capacity: float, clock: Callable[[], float]) -> None:
        if rate <= 0 or capacity < 1:
            raise ValueError("a bucket needs a positive rate and room for one token")
        self.rate = rate
        self.capacity = capacity
        self._clock = clock
        self._tokens = capacity
        self._at = clock()
        self._paused_until = float("-inf")

    def _refill(self) -> float:
        now = self._clock()
        start = max(self._at, min(self._paused_until, now))  # nothing saved while paused
        if now > start:
            self._tokens = min(self.capacity, self._tokens + (now - start) * self.rate)
        self._at = now
        return now

    def wait(self) -> float:
        """Seconds until a token is there (0: take one now with :meth:`take`)."""
        now = self._refill()
        if now < self._paused_until:
            return self._paused_until - now
        return 0.0 if self._tokens >= 1 else (1 - self._tokens) / self.rate

    def take(self) -> None:
        self._refill()
        self._tokens -= 1

    def pause(self, seconds: float) -> None:
        """No tokens for ``seconds`` (the API said the number's throughput is reached)."""
        now = self._refill()
        self._paused_until = max(self._paused_until, now + seconds)
        self._tokens = 0

    @property
    def full(self) -> bool:
        self._refill()
        return self._tokens >= self.capacity


@dataclass
class RecipientPacer:
    """About one message per ``interval`` to the same citizen, with bursts of ``burst``."""

    interval: float
    burst: int
    clock: Callable[[], float]
    _buckets: dict[str, TokenBucket] = field(default_factory=dict)

    def wait(self, recipient: str) -> float:
        bucket = self._buckets.get(recipient)
        return 0.0 if bucket is None else bucket.wait()

    def take(self, recipient: str) -> None:
        bucket = self._buckets.get(recipient)
        if bucket is None:
            bucket = TokenBucket(1 / self.interval, self.burst, self.clock)
            self._buckets[recipient] = bucket
        bucket.take()

    def slow_down(self, recipient: str) -> None:
        """The API said 131056: this citizen gets nothing for one interval."""
        self.take(recipient)
        self._buckets[recipient].pause(self.interval)

    def forget_idle(self) -> None:
        """Drop citizens whose burst is whole again (they would start full anyway)."""
        for recipient in [r for r, bucket in self._buckets.items() if bucket.full]:
            del self._buckets[recipient]

    def __len__(self) -> int:
        return len(self._buckets)


def backoff(
    attempt: int,
    base: timedelta,
    cap: timedelta,
    rand: Callable[[], float] = random.random,
) -> timedelta:
    """Exponential backoff with full jitter: a random wait up to ``base`` * 2^(attempt-1),
    at most ``cap``, at least a tenth of the ceiling (so retries never hammer at once)."""
    ceiling = min(cap.total_seconds(), base.total_seconds() * 2 ** max(attempt - 1, 0))
    return timedelta(seconds=ceiling * (0.1 + 0.9 * rand()))


# -- what an error from the Cloud API means ----------------------------------------------

THROUGHPUT: Final = 130429
PAIR_RATE: Final = 131056
OUTSIDE_WINDOW: Final = 131047
AUTH_CODES: Final = frozenset({190, 0})
FINAL_CODES: Final = frozenset({131026, 131051, 368})
"""Token expired or invalid: the office's configuration, not the message."""

Verdict = Literal["retry", "throttled", "paced", "outside_window", "auth", "final"]


_BY_CODE: Final[dict[int, Verdict]] = {
    THROUGHPUT: "throttled",
    PAIR_RATE: "paced",
    OUTSIDE_WINDOW: "outside_window",
}


def verdict(status: int | None, code: int | None, retryable: bool) -> Verdict:
    """What to do after a refused or failed send."""
    if code is not None and code in _BY_CODE:
        return _BY_CODE[code]
    if code is not None and (code in FINAL_CODES or 132000 <= code < 133000):
        return "final"  # about this message or number, whatever the HTTP status
    if status in (401, 403) or code in AUTH_CODES:
        return "auth"
    return "retry" if retryable else "final"


FINAL_REASONS: Final = {
    131026: "nomor tidak dapat menerima pesan WhatsApp",
    131047: "di luar jendela 24 jam dan tidak ada template",
    131051: "jenis pesan tidak didukung",
    368: "nomor kantor diblokir sementara karena kebijakan WhatsApp",
}


def failure_reason(code: int | None, status: int | None) -> str:
    """An officer-readable reason for a final failure (Indonesian, like the console)."""
    if code is not None and code in FINAL_REASONS:
        return FINAL_REASONS[code]
    if code is not None and 132000 <= code < 133000:
        return f"template ditolak WhatsApp (kode {code})"
    if code is not None:
        return f"ditolak WhatsApp (kode {code})"
    return f"ditolak WhatsApp (HTTP {status})"


# -- delivery statuses: a one-way state machine -----------------------------------------

_RANK: Final[dict[str, int]] = {"sent": 1, "delivered": 2, "read": 3}


def advances(current: DeliveryState | None, new: DeliveryState) -> bool:
    """Whether status ``new`` moves a message on from ``current``.

    Statuses arrive out of order and some never arrive: ``read`` may come before
    ``delivered`` (which then says nothing new), and a late ``sent`` never undoes
    ``delivered``. ``failed`` counts until the message is known delivered; nothing moves a
    message out of ``failed`` except a later proof of delivery (``delivered``/``read``)."""
    if current == new:
        return False
    if new == "failed":
        return current in (None, "sent")
    if current == "failed":
        return new in ("delivered", "read")
    return _RANK[new] > (0 if current is None else _RANK[current])
