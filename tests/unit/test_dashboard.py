"""The dashboard's pure parts: percentiles, working-time latencies, promises kept, the
words for durations and shares, and the SVG charts' escaping."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.verification.dashboard import (
    DELIVERY_FAILED,
    NO_DATA,
    Backlog,
    DashboardFigures,
    NotificationFailures,
    Promises,
    RequestsPerDay,
    ResponseLatency,
    Scope,
    SiakBacklog,
    day_starts,
    format_ratio,
    format_working,
    local_days,
    notification_failures,
    page_view,
    percentile,
    percentiles,
    promises_kept,
    siak_backlog,
    within,
    working_seconds,
)
from services.verification.dashboard.charts import Bar, bar_chart, column_chart
from services.verification.dashboard.figures import tickets_of
from shared.calendar import OfficeHours, WorkingCalendar
from shared.figures import FailedMessages, SiakWait

JAKARTA = ZoneInfo("Asia/Jakarta")
CALENDAR = WorkingCalendar()
SVG = "{http://www.w3.org/2000/svg}"


def wib(month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=JAKARTA)


# -- percentiles ----------------------------------------------------------------------------


def test_nearest_rank_percentiles_of_ten_values_are_the_fifth_ninth_and_tenth() -> None:
    values = [10.0, 1.0, 9.0, 2.0, 8.0, 3.0, 7.0, 4.0, 6.0, 5.0]
    assert (percentile(values, 50), percentile(values, 90), percentile(values, 99)) == (5, 9, 10)
    assert percentile(values, 100) == 10
    assert percentile(values, 10) == 1
    assert percentile(values, 0.1) == 1


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [
        ([42.0], 50, 42),
        ([42.0], 99, 42),
        ([3.0, 1.0, 2.0], 50, 2),
        ([1.0, 2.0, 3.0, 4.0], 50, 2),  # rank ceil(2.0) = 2, no interpolation to 2.5
        ([1.0, 2.0, 3.0, 4.0], 75, 3),
        ([1.0, 2.0, 3.0, 4.0], 76, 4),
        (list(map(float, range(1, 101))), 99, 99),
        (list(map(float, range(1, 1001))), 99.9, 999),  # exact rank, not 1000 by rounding
    ],
)
def test_known_small_cases(values: list[float], q: float, expected: float) -> None:
    assert percentile(values, q) == expected


def test_no_values_have_no_percentile_not_a_zero() -> None:
    assert percentiles([]) is None
    with pytest.raises(ValueError, match="no values"):
        percentile([], 50)


@pytest.mark.parametrize("q", [0, -1, 100.5])
def test_a_percentile_outside_the_scale_is_refused(q: float) -> None:
    with pytest.raises(ValueError, match="between 0"):
        percentile([1.0], q)


@given(
    st.lists(
        st.floats(min_value=0, max_value=10**7, allow_nan=False, allow_infinity=False),
        min_size=1,
        max_size=300,
    )
)
def test_percentiles_are_ordered_observed_values_within_the_range(values: list[float]) -> None:
    summary = percentiles(values)
    assert summary is not None
    assert summary.count == len(values)
    assert min(values) <= summary.p50 <= summary.p90 <= summary.p99 <= max(values)
    assert {summary.p50, summary.p90, summary.p99} <= set(values)


@given(
    st.lists(st.integers(min_value=0, max_value=10**6), min_size=1, max_size=200),
    st.integers(min_value=1, max_value=100),
)
def test_at_least_q_percent_of_values_do_not_exceed_the_qth_percentile(
    values: list[int], q: int
) -> None:
    floats = [float(v) for v in values]
    value = percentile(floats, q)
    share_at_or_below = sum(v <= value for v in floats) / len(floats)
    share_below = sum(v < value for v in floats) / len(floats)
    assert share_at_or_below * 100 >= q
    assert share_below * 100 < q  # and it is the smallest such value


# -- working time ---------------------------------------------------------------------------


def test_a_wait_over_a_weekend_and_the_chinese_new_year_counts_office_hours_only() -> None:
    # Friday 13 Feb 2026 15:00 to Wednesday 18 Feb 09:00: Saturday, Sunday, the joint leave
    # day on Monday and Imlek on Tuesday do not count; Friday 15-16 and Wednesday 8-9 do.
    [seconds] = working_seconds(CALENDAR, [(wib(2, 13, 15), wib(2, 18, 9))])
    assert seconds == 2 * 3600


def test_working_time_in_one_day_and_outside_office_hours() -> None:
    spans = [
        (wib(2, 9, 9), wib(2, 9, 11, 15)),  # Monday morning: 2 h 15 min
        (wib(2, 9, 17), wib(2, 9, 20)),  # after closing: nothing
        (wib(2, 14, 9), wib(2, 15, 12)),  # a weekend: nothing
        (wib(2, 9, 12), wib(2, 9, 11)),  # backwards: nothing, never negative
    ]
    assert working_seconds(CALENDAR, spans) == [8100, 0, 0, 0]


def test_an_office_with_saturday_service_counts_saturday() -> None:
    calendar = WorkingCalendar(OfficeHours.parse("08:00-12:00", "1-6"))
    [seconds] = working_seconds(calendar, [(wib(2, 13, 11), wib(2, 14, 9))])
    assert seconds == 2 * 3600  # Friday 11-12, Saturday 8-9


# -- promises -----------------------------------------------------------------------------


def test_promises_kept_count_the_first_promise_and_renewals_as_broken() -> None:
    day = date(2026, 2, 20)
    promises = promises_kept(
        [
            (day, day, day),  # ready on the promised day: kept
            (day - timedelta(days=1), day, day),  # early: kept
            (day + timedelta(days=3), day, day + timedelta(days=3)),  # renewed: broken
            (day + timedelta(days=1), day, day),  # simply late: broken
        ]
    )
    assert promises == Promises(issued=4, kept=2, renewed=1)
    assert promises.kept_ratio == 0.5


# -- what issuance and notify answer, kept to the scope --------------------------------------


def test_failed_messages_are_summed_by_reason_most_frequent_first() -> None:
    failures = notification_failures(
        [
            FailedMessages("KTP-1", "nomor tidak valid", 1),
            FailedMessages("KTP-2", "nomor tidak valid", 2),
            FailedMessages("KTP-2", None, 3),  # undelivered, no reason given
            FailedMessages(None, "batas pesan tercapai", 3),
            FailedMessages("KK-3", "antrean penuh", 1),
        ]
    )
    assert failures.by_reason == (
        ("batas pesan tercapai", 3),
        ("nomor tidak valid", 3),
        (DELIVERY_FAILED, 3),
        ("antrean penuh", 1),
    )
    assert failures.total == 10
    assert notification_failures([]) == NotificationFailures(by_reason=())


def test_answers_are_kept_to_the_scopes_tickets_and_all_kept_office_wide() -> None:
    answers = [
        FailedMessages("KTP-1", "a", 1),
        FailedMessages(None, "b", 1),
        FailedMessages("KTP-2", "c", 1),
        FailedMessages("KTP-1", "d", 1),
    ]
    assert within(answers, None) == answers
    assert within(answers, frozenset({"KTP-1"})) == [answers[0], answers[3]]
    assert within(answers, frozenset()) == []
    waits = [SiakWait("KK-9", date(2026, 2, 20), 0, wib(2, 19, 9))]
    assert tickets_of(answers, waits) == ["KK-9", "KTP-1", "KTP-2"]


def test_the_siak_backlog_counts_past_promises_retries_and_the_first_as_oldest() -> None:
    today = date(2026, 2, 20)
    waits = [  # oldest first, as issuance answers them
        SiakWait("KTP-A", today - timedelta(days=1), 2, wib(2, 19, 15)),
        SiakWait("KTP-B", today, 0, wib(2, 20, 8)),
        SiakWait("KTP-C", today + timedelta(days=1), 1, wib(2, 20, 9)),
    ]
    backlog = siak_backlog(waits, today, CALENDAR, wib(2, 20, 10))
    assert (backlog.waiting, backlog.past_promise, backlog.retrying) == (3, 2, 2)
    assert backlog.oldest is not None
    assert (backlog.oldest.ticket, backlog.oldest.since) == ("KTP-A", wib(2, 19, 15))
    assert backlog.oldest.working == timedelta(hours=3)  # Thu 15:00-16:00, Fri 08:00-10:00
    assert siak_backlog([], today, CALENDAR, wib(2, 20, 10)) == SiakBacklog(
        waiting=0, past_promise=0, retrying=0, oldest=None
    )


def test_no_issued_document_has_no_ratio() -> None:
    assert promises_kept([]).kept_ratio is None
    assert format_ratio(None) == NO_DATA


@pytest.mark.parametrize(
    ("ratio", "text"), [(0.875, "87,5%"), (1.0, "100%"), (0.0, "0%"), (2 / 3, "66,7%")]
)
def test_shares_are_written_the_indonesian_way(ratio: float, text: str) -> None:
    assert format_ratio(ratio) == text


# -- words ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (None, "belum ada data"),
        (0, "kurang dari 1 menit kerja"),
        (59, "kurang dari 1 menit kerja"),
        (60, "1 menit kerja"),
        (45 * 60, "45 menit kerja"),
        (2 * 3600, "2 jam kerja"),
        (2 * 3600 + 15 * 60 + 30, "2 jam 15 menit kerja"),
        (8 * 3600, "1 hari kerja"),
        (9 * 3600 + 5 * 60, "1 hari 1 jam 5 menit kerja"),
        (17 * 3600, "2 hari 1 jam kerja"),
    ],
)
def test_working_durations_read_as_officers_say_them(seconds: float | None, text: str) -> None:
    assert format_working(seconds) == text


def test_a_working_day_is_the_offices_own_length() -> None:
    assert format_working(5 * 3600, timedelta(hours=4)) == "1 hari 1 jam kerja"


def test_days_are_counted_from_midnight_in_the_office_zone() -> None:
    days = local_days(date(2026, 2, 20), 3)
    assert days == [date(2026, 2, 18), date(2026, 2, 19), date(2026, 2, 20)]
    bounds = day_starts(days, JAKARTA)
    assert len(bounds) == 4
    assert bounds[0] == datetime(2026, 2, 17, 17, 0, tzinfo=UTC)
    assert bounds[-1] == datetime(2026, 2, 20, 17, 0, tzinfo=UTC)


# -- charts -------------------------------------------------------------------------------


HOSTILE = '<script>alert("x")</script> & "quotes" \'too\''


def _parsed(svg: str) -> ET.Element:
    root = ET.fromstring(svg)  # our own output, parsed to prove it is well-formed
    assert root.tag == f"{SVG}svg"
    return root


def test_bar_chart_escapes_labels_captions_and_titles() -> None:
    svg = bar_chart(
        "chart-test",
        f"Judul {HOSTILE}",
        f"Keterangan {HOSTILE}",
        [Bar(HOSTILE, 3, HOSTILE), Bar("KTP", 5, "5 permohonan")],
    )
    assert "<script>" not in svg
    assert "&lt;script&gt;" in svg
    root = _parsed(str(svg))
    texts = [element.text for element in root.iter(f"{SVG}text")]
    assert HOSTILE in texts  # shown as text, exactly as given
    assert root.find(f"{SVG}title") is not None
    assert root.findtext(f"{SVG}title") == f"Judul {HOSTILE}"
    assert root.get("role") == "img"
    assert root.get("aria-labelledby") == "chart-test-title chart-test-desc"
    bars = list(root.iter(f"{SVG}rect"))
    assert [float(bar.get("width", "0")) > 0 for bar in bars] == [True, True]
    # The longest bar is the largest value.
    assert float(bars[1].get("width", "0")) > float(bars[0].get("width", "0"))


def test_column_chart_escapes_and_titles_every_bar() -> None:
    bars = [Bar(f"{day} Feb", day, f"{day} permohonan", f"{HOSTILE} {day}") for day in range(1, 8)]
    svg = column_chart("chart-days", HOSTILE, HOSTILE, bars, label_every=3)
    assert "<script>" not in svg
    root = _parsed(str(svg))
    rects = list(root.iter(f"{SVG}rect"))
    assert len(rects) == 7
    assert [rect.findtext(f"{SVG}title") for rect in rects] == [
        f"{HOSTILE} {d}" for d in range(1, 8)
    ]
    labels = [t.text for t in root.iter(f"{SVG}text")]
    assert "1 Feb" in labels and "4 Feb" in labels and "7 Feb" in labels  # every 3rd and last
    assert "2 Feb" not in labels


def test_a_chart_of_zeros_draws_no_bar_and_no_division_by_zero() -> None:
    svg = column_chart("chart-zero", "t", "d", [Bar("a", 0, "0"), Bar("b", 0, "0")])
    heights = [float(r.get("height", "1")) for r in _parsed(str(svg)).iter(f"{SVG}rect")]
    assert heights == [0, 0]


@pytest.mark.parametrize("chart_id", ['x" onload="alert(1)', "Chart", "", "1chart"])
def test_a_chart_id_that_is_not_a_plain_word_is_refused(chart_id: str) -> None:
    with pytest.raises(ValueError, match="chart ids"):
        bar_chart(chart_id, "t", "d", [])


# -- the page's view --------------------------------------------------------------------------


def _empty_figures() -> DashboardFigures:
    today = date(2026, 2, 20)
    days = tuple(local_days(today, 30))
    return DashboardFigures(
        generated_at=wib(2, 20, 10),
        today=today,
        scope=Scope(None),
        requests=RequestsPerDay(days=days, total=(0,) * 30, by_document=(), by_kecamatan=()),
        backlog=Backlog(by_state=(), waiting=0, oldest_waiting=None),
        latency=ResponseLatency(first_action=None, decision=None, by_document=()),
        promises=Promises(issued=0, kept=0, renewed=0),
        notifications=NotificationFailures(by_reason=()),
        siak=SiakBacklog(waiting=0, past_promise=0, retrying=0, oldest=None),
    )


def test_without_data_the_page_says_so_and_draws_nothing() -> None:
    page = page_view(_empty_figures(), CALENDAR)
    assert page.charts == {}
    assert [row.texts for row in page.latency_rows] == [(NO_DATA,) * 3, (NO_DATA,) * 3]
    assert page.ratio(page.figures.promises.kept_ratio) == NO_DATA
