"""SIAK without SIAK: the breaker's states on a fake clock, the backoff, the outage windows."""

from __future__ import annotations

import asyncio
from collections import deque
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.issuance.adapters.siak import (
    Breaker,
    BreakingSiak,
    SiakCircuitOpenError,
    SiakPort,
    SiakReceipt,
    SiakRejectedError,
    SiakSubmission,
    SiakUnavailableError,
    retry_delay,
)
from services.simulator.siak import OutageWindow, parse_outages
from shared.documents import DocType

COOLDOWN = timedelta(seconds=30)
WIB = timezone(timedelta(hours=7))
SUBMISSION = SiakSubmission(
    idempotency_key="key-1",
    ticket="KTP-0001",
    doc_type=DocType.KTP,
    region_code="3603",
    applicant={"nik": "3603015708990001", "nama": "SITI AMINAH"},
)
RECEIPT = SiakReceipt(
    document_number="KTP/3603/07122026/0001", issued_at=datetime(2026, 12, 7, tzinfo=UTC)
)

Outcome = SiakReceipt | Exception


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta.total_seconds()


class FakeSiak(SiakPort):
    """Answers the scripted outcomes in order (then receipts); can hold a call open."""

    def __init__(self, *outcomes: Outcome) -> None:
        self.outcomes: deque[Outcome] = deque(outcomes)
        self.calls = 0
        self.gate: asyncio.Event | None = None

    async def submit(self, submission: SiakSubmission) -> SiakReceipt:
        self.calls += 1
        if self.gate is not None:
            await self.gate.wait()
        outcome = self.outcomes.popleft() if self.outcomes else RECEIPT
        if isinstance(outcome, Exception):
            raise outcome
        return outcome


def down() -> SiakUnavailableError:
    return SiakUnavailableError("SIAK sedang dalam pemeliharaan", status=503)


def breaking(*outcomes: Outcome, failures: int = 3) -> tuple[BreakingSiak, FakeSiak, Clock]:
    clock = Clock()
    fake = FakeSiak(*outcomes)
    return BreakingSiak(fake, Breaker(failures, COOLDOWN, now=clock)), fake, clock


def state(siak: BreakingSiak) -> str:
    """The breaker's state, read afresh (a property mypy would otherwise narrow)."""
    return siak.breaker.state


async def fail(siak: BreakingSiak, times: int) -> None:
    for _ in range(times):
        with pytest.raises(SiakUnavailableError):
            await siak.submit(SUBMISSION)


# --- breaker --------------------------------------------------------------------------------


async def test_closed_breaker_passes_calls_through() -> None:
    siak, fake, _ = breaking()
    assert await siak.submit(SUBMISSION) == RECEIPT
    assert state(siak) == "closed"
    assert siak.breaker.retry_at is None
    assert fake.calls == 1


async def test_opens_after_consecutive_failures_only() -> None:
    siak, _, _ = breaking(down(), down(), RECEIPT, down(), down())
    await fail(siak, 2)
    await siak.submit(SUBMISSION)  # a success in between starts the count again
    await fail(siak, 2)
    assert state(siak) == "closed"
    assert siak.breaker.consecutive_failures == 2


async def test_open_breaker_fails_fast_without_calling_siak() -> None:
    siak, fake, clock = breaking(down(), down(), down())
    await fail(siak, 3)
    assert state(siak) == "open"
    assert siak.breaker.retry_at == clock.now + 30
    assert siak.breaker.retry_after == COOLDOWN

    clock.advance(timedelta(seconds=10))
    with pytest.raises(SiakCircuitOpenError) as raised:
        await siak.submit(SUBMISSION)
    assert isinstance(raised.value, SiakUnavailableError)
    assert str(raised.value) == "circuit open"
    assert raised.value.retry_after == timedelta(seconds=20)
    assert fake.calls == 3


async def test_after_cooldown_a_successful_probe_closes_the_circuit() -> None:
    siak, fake, clock = breaking(down(), down(), down())
    await fail(siak, 3)
    clock.advance(COOLDOWN)
    assert state(siak) == "half_open"
    assert siak.breaker.retry_at is None

    assert await siak.submit(SUBMISSION) == RECEIPT
    assert state(siak) == "closed"
    assert siak.breaker.consecutive_failures == 0
    assert fake.calls == 4


async def test_failed_probe_reopens_for_another_cooldown() -> None:
    siak, fake, clock = breaking(down(), down(), down(), down())
    await fail(siak, 3)
    clock.advance(COOLDOWN + timedelta(seconds=5))
    await fail(siak, 1)  # the probe

    assert state(siak) == "open"
    assert siak.breaker.retry_at == clock.now + 30
    with pytest.raises(SiakCircuitOpenError):
        await siak.submit(SUBMISSION)
    assert fake.calls == 4

    clock.advance(COOLDOWN)
    assert await siak.submit(SUBMISSION) == RECEIPT
    assert state(siak) == "closed"


async def test_half_open_lets_one_probe_through_at_a_time() -> None:
    siak, fake, clock = breaking(down(), down(), down())
    await fail(siak, 3)
    clock.advance(COOLDOWN)
    fake.gate = asyncio.Event()

    probe = asyncio.create_task(siak.submit(SUBMISSION))
    await asyncio.sleep(0)
    assert fake.calls == 4
    assert state(siak) == "half_open"
    assert siak.breaker.retry_at == clock.now + 30
    for _ in range(3):
        with pytest.raises(SiakCircuitOpenError):
            await siak.submit(SUBMISSION)
    assert fake.calls == 4

    fake.gate.set()
    assert await probe == RECEIPT
    assert state(siak) == "closed"


async def test_cancelled_probe_frees_the_probe_slot() -> None:
    siak, fake, clock = breaking(down(), down(), down())
    await fail(siak, 3)
    clock.advance(COOLDOWN)
    fake.gate = asyncio.Event()
    probe = asyncio.create_task(siak.submit(SUBMISSION))
    await asyncio.sleep(0)
    probe.cancel()
    with pytest.raises(asyncio.CancelledError):
        await probe

    fake.gate = None
    assert await siak.submit(SUBMISSION) == RECEIPT
    assert state(siak) == "closed"


async def test_rejections_are_answers_not_failures() -> None:
    rejected = SiakRejectedError(422, "doc_type tidak dikenal")
    siak, fake, clock = breaking(down(), down(), rejected, down(), down(), down(), rejected)
    await fail(siak, 2)
    with pytest.raises(SiakRejectedError):
        await siak.submit(SUBMISSION)
    assert siak.breaker.consecutive_failures == 0
    await fail(siak, 2)
    assert state(siak) == "closed"

    # A rejected probe also proves SIAK is back.
    await fail(siak, 1)
    clock.advance(COOLDOWN)
    with pytest.raises(SiakRejectedError):
        await siak.submit(SUBMISSION)
    assert state(siak) == "closed"
    assert fake.calls == 7


async def test_other_errors_neither_count_nor_close() -> None:
    siak, _, _ = breaking(down(), down(), RuntimeError("bug"), down())
    await fail(siak, 2)
    with pytest.raises(RuntimeError):
        await siak.submit(SUBMISSION)
    await fail(siak, 1)
    assert state(siak) == "open"


def test_breaker_refuses_nonsense_settings() -> None:
    with pytest.raises(ValueError, match="failures"):
        Breaker(0, COOLDOWN)
    with pytest.raises(ValueError, match="cooldown"):
        Breaker(1, -COOLDOWN)


def test_submission_keeps_personal_data_out_of_its_repr() -> None:
    assert "3603015708990001" not in repr(SUBMISSION)
    assert "SITI" not in str(SUBMISSION)


# --- backoff --------------------------------------------------------------------------------

BASE = timedelta(seconds=2)
CAP = timedelta(minutes=5)


def test_retry_delay_doubles_with_equal_jitter() -> None:
    assert retry_delay(1, BASE, CAP, rand=lambda: 0.0) == timedelta(seconds=1)
    assert retry_delay(1, BASE, CAP, rand=lambda: 1.0) == timedelta(seconds=2)
    assert retry_delay(3, BASE, CAP, rand=lambda: 0.5) == timedelta(seconds=6)
    assert retry_delay(20, BASE, CAP, rand=lambda: 1.0) == CAP
    assert retry_delay(20, BASE, CAP, rand=lambda: 0.0) == CAP / 2


def test_retry_delay_refuses_attempt_zero() -> None:
    with pytest.raises(ValueError, match="attempt"):
        retry_delay(0, BASE, CAP)


def _us(duration: timedelta) -> int:
    return duration // timedelta(microseconds=1)


durations = st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=1))
unit = st.floats(min_value=0.0, max_value=1.0)


@given(st.integers(min_value=1, max_value=10_000), durations, durations, unit)
def test_retry_delay_stays_within_the_cap(
    attempt: int, base: timedelta, cap: timedelta, jitter: float
) -> None:
    delay = retry_delay(attempt, base, cap, rand=lambda: jitter)
    assert timedelta(0) <= delay <= cap
    ceiling = min(_us(cap), _us(base) * 2 ** (attempt - 1))
    assert _us(delay) >= ceiling // 2


@given(st.integers(min_value=1, max_value=200), durations, durations, unit)
def test_retry_delay_never_shrinks_with_the_attempt(
    attempt: int, base: timedelta, cap: timedelta, jitter: float
) -> None:
    earlier = retry_delay(attempt, base, cap, rand=lambda: jitter)
    assert retry_delay(attempt + 1, base, cap, rand=lambda: jitter) >= earlier


# --- outage windows -------------------------------------------------------------------------


def test_outage_with_duration() -> None:
    (window,) = parse_outages("2026-12-07T08:00+07:00/PT2H")
    assert window == OutageWindow(
        datetime(2026, 12, 7, 8, tzinfo=WIB), datetime(2026, 12, 7, 10, tzinfo=WIB)
    )
    assert datetime(2026, 12, 7, 1, tzinfo=UTC) in window
    assert datetime(2026, 12, 7, 3, tzinfo=UTC) not in window  # the end is excluded


def test_outages_with_end_and_mixed_durations() -> None:
    windows = parse_outages(
        " 2026-12-07T22:00+07:00/2026-12-08T02:30+07:00 ,, 2026-12-09T00:00Z/P1DT1H30M,"
        "2026-12-10T00:00+00:00/PT0.5S"
    )
    assert [window.end - window.start for window in windows] == [
        timedelta(hours=4, minutes=30),
        timedelta(days=1, hours=1, minutes=30),
        timedelta(milliseconds=500),
    ]


def test_no_outages() -> None:
    assert parse_outages("") == ()
    assert parse_outages(" , ") == ()


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("2026-12-07T08:00+07:00", "start/end or start/duration"),
        ("2026-12-07T08:00+07:00/PT2H/PT1H", "start/end or start/duration"),
        ("kemarin/PT2H", "not an ISO 8601 date-time"),
        ("2026-12-07T08:00/PT2H", "needs a UTC offset"),
        ("2026-12-07T08:00+07:00/2026-12-07T10:00", "needs a UTC offset"),
        ("2026-12-07T08:00+07:00/P1M", "bad duration"),
        ("2026-12-07T08:00+07:00/PT", "bad duration"),
        ("2026-12-07T08:00+07:00/P1DT", "bad duration"),
        ("2026-12-07T08:00+07:00/2H", "not an ISO 8601 date-time"),
        ("2026-12-07T08:00+07:00/2026-12-07T07:00+07:00", "ends before it starts"),
        ("2026-12-07T08:00+07:00/PT0S", "ends before it starts"),
    ],
)
def test_bad_outages_say_what_is_wrong(text: str, complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint) as raised:
        parse_outages(f"2026-12-01T00:00Z/PT1H, {text}")
    assert repr(text.strip()) in str(raised.value)
