"""The hourly chart's layout: which buckets a range gets and what each bar holds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from dashboard.chart import MAX_BARS, build_chart, chart_window

NOW = datetime(2026, 11, 30, 14, 25, tzinfo=UTC)
HOUR = timedelta(hours=1)


def test_the_window_is_the_views_range_or_the_last_day() -> None:
    day = chart_window(NOW, None, None)
    assert day is not None
    assert (day.start, day.end, day.bucket_hours) == (NOW - 24 * HOUR, NOW, 1)
    assert day.first == datetime(2026, 11, 29, 14, tzinfo=UTC)
    days = chart_window(NOW, NOW - timedelta(days=4), None)
    assert days is not None
    assert days.bucket_hours == 1
    week = chart_window(NOW, NOW - timedelta(days=7), None)
    assert week is not None
    assert week.bucket_hours == 2
    month = chart_window(NOW, NOW - timedelta(days=30), None)
    assert month is not None
    assert month.bucket_hours == 8
    assert month.first == datetime(2026, 10, 31, 8, tzinfo=UTC)
    # Never past now; at most 92 days; nothing for a range that has not begun.
    ahead = chart_window(NOW, NOW - HOUR, NOW + 5 * HOUR)
    assert ahead is not None
    assert ahead.end == NOW
    ages = chart_window(NOW, datetime(2000, 1, 1, tzinfo=UTC), None)
    assert ages is not None
    assert ages.start == NOW - timedelta(days=92)
    assert ages.bucket_hours == 24
    assert chart_window(NOW, NOW + HOUR, None) is None
    for since in (NOW - timedelta(days=d) for d in (1, 3, 4, 7, 8, 30, 92)):
        window = chart_window(NOW, since, None)
        assert window is not None
        busy = {window.first + timedelta(hours=h): {"success": 1} for h in range(92 * 24)}
        assert len(build_chart(busy, window).bars) <= MAX_BARS


def test_bars_sum_their_hours_by_outcome() -> None:
    window = chart_window(NOW, NOW - timedelta(days=30), None)
    assert window is not None
    counts = {
        datetime(2026, 11, 30, 12, tzinfo=UTC): {"success": 5, "failure": 1},
        datetime(2026, 11, 30, 13, tzinfo=UTC): {"success": 2, "warning": 3},
        datetime(2026, 11, 29, 23, tzinfo=UTC): {"success": 7},
        # Outside the window: not shown.
        datetime(2026, 10, 1, tzinfo=UTC): {"success": 100},
    }
    chart = build_chart(counts, window)
    # Only buckets with requests are drawn (and listed in the table).
    filled = {b.start: b for b in chart.bars}
    assert all(b.total for b in chart.bars)
    assert list(filled) == [
        datetime(2026, 11, 29, 16, tzinfo=UTC),
        datetime(2026, 11, 30, 8, tzinfo=UTC),
    ]
    noon = filled[datetime(2026, 11, 30, 8, tzinfo=UTC)]
    assert noon.counts == {"success": 7, "failure": 1, "warning": 3}
    assert noon.end - noon.start == 8 * HOUR
    assert noon.summary == "11 requests: 7 success, 3 warning, 1 failure"
    assert chart.totals == {"success": 14, "warning": 3, "failure": 1}
    assert chart.per == "8 hours"
    # Stacked success, warning, failure from the axis up; the tallest bar fits the scale.
    assert [s.outcome for s in noon.segments] == ["success", "warning", "failure"]
    assert noon.segments[0].y + noon.segments[0].height == chart.base_y
    assert chart.ticks[-1].value == 20
    assert min(s.y for b in chart.bars for s in b.segments) >= chart.top
    # One failure among thousands still shows.
    crowded = build_chart({NOW.replace(minute=0): {"success": 5000, "failure": 1}}, window)
    (busy,) = crowded.bars
    assert busy.segments[-1].height >= 2
