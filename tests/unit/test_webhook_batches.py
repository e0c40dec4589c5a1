"""How intake splits a large webhook's appends (``services.intake.inbound``): bounded
batches, every stream's events in order, one batch for an ordinary webhook."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from services.intake.inbound import _batches
from shared.eventstore.envelope import NewEvent
from shared.eventstore.store import StreamAppend


def appends_of(sizes: list[int]) -> list[StreamAppend]:
    return [
        StreamAppend(f"s-{n}", [NewEvent(event_type="E", data={"i": i}) for i in range(size)])
        for n, size in enumerate(sizes)
    ]


def test_an_ordinary_webhook_is_one_batch_of_the_same_appends() -> None:
    appends = appends_of([1, 2])
    assert list(_batches(appends, 250)) == [appends]


@given(st.lists(st.integers(1, 40), min_size=1, max_size=30), st.integers(1, 25))
def test_batches_are_bounded_and_keep_each_streams_order(sizes: list[int], size: int) -> None:
    appends = appends_of(sizes)
    batches = list(_batches(appends, size))
    assert all(sum(len(a.events) for a in batch) <= size for batch in batches)
    assert all(len({a.stream_id for a in batch}) == len(batch) for batch in batches)
    again: dict[str, list[NewEvent]] = {}
    for batch in batches:
        for append in batch:
            again.setdefault(append.stream_id, []).extend(append.events)
    assert again == {a.stream_id: list(a.events) for a in appends}
