"""Throttling of failed sign-ins: wrong bearer tokens on the officer API and wrong access
codes on the console's login, counted together per client address.

Tokens are 256 random bits, so guessing one is hopeless; the throttle keeps a guesser from
loading the database and the logs for nothing. After :attr:`Throttle.limit` failures in a
window of :attr:`Throttle.window` seconds the address is refused (429 with
``Retry-After``) until the window ends, whatever it sends, the right token included.

Memory is bounded: at most ``max_addresses`` addresses are remembered, the least recently
failed forgotten first (an attacker with that many addresses is not slowed by per-address
counting anyway). The counts live in the process: each replica counts its own.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class _Failures:
    since: float
    count: int


class Throttle:
    def __init__(
        self,
        *,
        limit: int = 10,
        window: float = 60.0,
        max_addresses: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.window = window
        self.max_addresses = max_addresses
        self._clock = clock
        self._failures: OrderedDict[str, _Failures] = OrderedDict()

    def __len__(self) -> int:
        return len(self._failures)

    def retry_after(self, address: str) -> int:
        """Seconds until ``address`` may try again; 0 if it may now."""
        failures = self._failures.get(address)
        if failures is None:
            return 0
        left = failures.since + self.window - self._clock()
        if left <= 0:
            del self._failures[address]
            return 0
        return math.ceil(left) if failures.count >= self.limit else 0

    def failed(self, address: str) -> None:
        """One more failure from ``address``."""
        now = self._clock()
        failures = self._failures.get(address)
        if failures is None or failures.since + self.window <= now:
            failures = _Failures(since=now, count=0)
        failures.count += 1
        self._failures[address] = failures
        self._failures.move_to_end(address)
        while len(self._failures) > self.max_addresses:
            self._failures.popitem(last=False)
