"""The rules of sending: throughput, pacing, backoff, error verdicts, the window, and the
one-way order of delivery statuses."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import permutations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.notify.domain.delivery import (
    RecipientPacer,
    TokenBucket,
    advances,
    backoff,
    failure_reason,
    in_window,
    verdict,
)
from shared.contracts import DeliveryState


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_bucket_allows_its_rate_and_no_more() -> None:
    clock = Clock()
    bucket = TokenBucket(rate=80, capacity=80, clock=clock)
    sent = 0
    while bucket.wait() == 0:
        bucket.take()
        sent += 1
    assert sent == 80  # the saved-up second
    assert bucket.wait() == pytest.approx(1 / 80)
    clock.now += 0.5
    allowed = 0
    while bucket.wait() == 0:
        bucket.take()
        allowed += 1
    assert allowed == 40


def test_a_pause_stops_the_bucket_for_that_long() -> None:
    clock = Clock()
    bucket = TokenBucket(rate=80, capacity=80, clock=clock)
    bucket.pause(2.0)
    assert bucket.wait() == pytest.approx(2.0)
    clock.now += 2.0
    assert bucket.wait() == pytest.approx(1 / 80)  # empty, refilling from the pause on


def test_a_citizen_gets_a_small_burst_then_one_message_per_interval() -> None:
    clock = Clock()
    pacer = RecipientPacer(interval=6.0, burst=3, clock=clock)
    for _ in range(3):
        assert pacer.wait("a") == 0
        pacer.take("a")
    assert pacer.wait("a") == pytest.approx(6.0)
    assert pacer.wait("b") == 0  # others are not held up
    clock.now += 6.0
    assert pacer.wait("a") == 0


def test_idle_citizens_are_forgotten() -> None:
    clock = Clock()
    pacer = RecipientPacer(interval=6.0, burst=3, clock=clock)
    pacer.take("a")
    pacer.forget_idle()
    assert len(pacer) == 1
    clock.now += 6.0
    pacer.forget_idle()
    assert len(pacer) == 0


@given(st.integers(min_value=1, max_value=40), st.floats(min_value=0, max_value=1))
def test_backoff_grows_within_its_cap(attempt: int, draw: float) -> None:
    base, cap = timedelta(seconds=1), timedelta(minutes=5)
    delay = backoff(attempt, base, cap, rand=lambda: draw)
    ceiling = min(cap, base * 2 ** (attempt - 1))
    assert ceiling * 0.1 <= delay <= ceiling + timedelta(microseconds=1)


@pytest.mark.parametrize(
    ("status", "code", "retryable", "expected"),
    [
        (429, 130429, True, "throttled"),
        (400, 131056, True, "paced"),
        (400, 131047, False, "outside_window"),
        (500, 131000, True, "retry"),
        (503, None, True, "retry"),
        (None, None, True, "retry"),  # time-out
        (401, 190, False, "auth"),
        (400, 131026, False, "final"),
        (400, 132001, False, "final"),
        (403, 368, False, "final"),
        (403, None, False, "auth"),
        (400, 368, False, "final"),
    ],
)
def test_what_an_error_means(
    status: int | None, code: int | None, retryable: bool, expected: str
) -> None:
    assert verdict(status, code, retryable) == expected


def test_final_failures_have_reasons_officers_can_read() -> None:
    assert "tidak dapat menerima" in failure_reason(131026, 400)
    assert "template" in failure_reason(132000, 400)
    assert "diblokir" in failure_reason(368, 400)
    assert "HTTP 400" in failure_reason(None, 400)


def test_the_window_is_24_hours_from_the_last_message_minus_the_margin() -> None:
    now = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    margin = timedelta(minutes=10)
    assert in_window(now - timedelta(hours=23, minutes=49), now, margin)
    assert not in_window(now - timedelta(hours=23, minutes=51), now, margin)
    assert not in_window(now - timedelta(days=3), now, margin)
    assert not in_window(None, now, margin)


STATES: tuple[DeliveryState, ...] = ("sent", "delivered", "read", "failed")


def _final(arrivals: tuple[DeliveryState, ...]) -> DeliveryState | None:
    state: DeliveryState | None = None
    for status in arrivals:
        if advances(state, status):
            state = status
    return state


@pytest.mark.parametrize("arrivals", list(permutations(("sent", "delivered", "read"))))
def test_statuses_in_any_order_end_read(arrivals: tuple[DeliveryState, ...]) -> None:
    assert _final(arrivals) == "read"


def test_a_late_status_never_moves_a_message_back() -> None:
    assert not advances("read", "delivered")
    assert not advances("delivered", "sent")
    assert not advances("read", "failed")
    assert not advances("delivered", "delivered")


def test_failed_counts_until_delivery_is_proved() -> None:
    assert advances(None, "failed")
    assert advances("sent", "failed")
    assert not advances("failed", "sent")
    assert advances("failed", "delivered")


@given(st.lists(st.sampled_from(STATES), max_size=8))
def test_the_state_only_moves_forward(arrivals: list[DeliveryState]) -> None:
    rank = {None: 0, "sent": 1, "failed": 1, "delivered": 2, "read": 3}
    state: DeliveryState | None = None
    for status in arrivals:
        if advances(state, status):
            assert rank[status] >= rank[state] or state == "failed"
            state = status
