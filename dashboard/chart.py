"""The Logs page's chart of requests per hour by outcome, laid out here and drawn by
the template as inline SVG (attributes and classes only: the CSP allows no inline style).

The counts come from the log's hourly counts (`provisioning_log.hourly_outcomes`),
never from the log itself, so the chart costs the same at 10 million rows as at ten.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from dashboard.pages import iso

OUTCOMES = ("success", "warning", "failure")  # stacked from the bottom
# The chart's own coordinates (the SVG's viewBox); CSS scales it to the page.
WIDTH, HEIGHT = 1000, 200
LEFT, RIGHT, TOP, BOTTOM = 44, 8, 10, 26
PLOT_HEIGHT = HEIGHT - TOP - BOTTOM
# Four days of whole hours (the first one partly in the range); a week is in 2-hour bars.
MAX_BARS = 97
BUCKET_HOURS = (1, 2, 3, 4, 6, 8, 12, 24)
# A longer range is shown as its last 92 days (the log keeps 90 by default).
MAX_SPAN = timedelta(days=92)
DEFAULT_SPAN = timedelta(hours=24)
MAX_TICK_LABELS = 8
# A segment of a few requests among thousands stays visible.
MIN_SEGMENT = 2.0
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Segment:
    outcome: str
    count: int
    y: float
    height: float


def _utc_text(when: datetime) -> str:
    return when.strftime("%Y-%m-%d %H:%M UTC")


@dataclass(frozen=True, slots=True)
class Bar:
    """A bucket with requests. Its strings are made here, once: a week of bars is 169 of
    them, and the template only puts them in place."""

    start: datetime
    end: datetime
    counts: dict[str, int]
    x: float
    width: float
    segments: list[Segment]
    total: int
    # The numbers, for the bar's title (app.js puts local times in front).
    summary: str
    # Formatted counts for the table: success, warning, failure, all.
    cells: tuple[str, str, str, str]
    start_iso: str
    end_iso: str
    start_utc: str
    end_utc: str

    @classmethod
    def make(
        cls, start: datetime, end: datetime, counts: dict[str, int], x: float, width: float,
        segments: list[Segment],
    ) -> Bar:  # fmt: skip
        by_outcome = [counts.get(o, 0) for o in OUTCOMES]
        total = sum(by_outcome)
        parts = ", ".join(f"{n:,} {o}" for n, o in zip(by_outcome, OUTCOMES, strict=True))
        success, warning, failure = (f"{n:,}" for n in by_outcome)
        return cls(
            start=start, end=end, counts=counts, x=x, width=width, segments=segments,
            total=total, summary=f"{total:,} request{'' if total == 1 else 's'}: {parts}",
            cells=(success, warning, failure, f"{total:,}"), start_iso=iso(start),
            end_iso=iso(end), start_utc=_utc_text(start), end_utc=_utc_text(end),
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class Tick:
    value: int
    y: float


@dataclass(frozen=True, slots=True)
class Label:
    at: datetime
    x: float

    @property
    def iso(self) -> str:
        return iso(self.at)


@dataclass(frozen=True, slots=True)
class HourlyChart:
    start: datetime
    end: datetime
    bucket_hours: int
    bars: list[Bar]
    ticks: list[Tick]
    labels: list[Label]
    totals: dict[str, int]

    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    right_edge: int = WIDTH - RIGHT
    base_y: int = HEIGHT - BOTTOM
    top: int = TOP
    plot_height: int = PLOT_HEIGHT

    @property
    def total(self) -> int:
        return sum(self.totals.values())

    @property
    def busiest(self) -> Bar | None:
        return max(self.bars, key=lambda b: b.total, default=None)

    @property
    def per(self) -> str:
        return "hour" if self.bucket_hours == 1 else f"{self.bucket_hours} hours"


@dataclass(frozen=True, slots=True)
class ChartWindow:
    """What the chart shows: `start` to `end`, in buckets of whole UTC hours (or of
    2 … 24 hours for long ranges) from `first`, the bucket `start` falls in."""

    start: datetime
    end: datetime
    bucket_hours: int
    first: datetime

    @property
    def step(self) -> timedelta:
        return timedelta(hours=self.bucket_hours)


def chart_window(
    now: datetime, since: datetime | None, until: datetime | None
) -> ChartWindow | None:
    """The chart's range for a Logs view: its range (the last 24 hours without one),
    never past now, at most MAX_SPAN; None when it is empty."""
    end = min(until or now, now)
    start = max(since or end - DEFAULT_SPAN, end - MAX_SPAN)
    if start >= end:
        return None
    hours = math.ceil((end - start) / timedelta(hours=1)) + 1
    size = next((b for b in BUCKET_HOURS if math.ceil(hours / b) <= MAX_BARS), BUCKET_HOURS[-1])
    step = timedelta(hours=size)
    first = _EPOCH + ((start - _EPOCH) // step) * step
    return ChartWindow(start, end, size, first)


def _scale_max(largest: int) -> int:
    """A round top for the y axis: 1, 2 or 5 times a power of ten, at least `largest`."""
    if largest <= 1:
        return 1
    power: int = 10 ** math.floor(math.log10(largest))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= largest)


def build_chart(counts: dict[datetime, dict[str, int]], window: ChartWindow) -> HourlyChart:
    """Bars of the window's buckets from hourly counts by outcome."""
    step = window.step
    starts = []
    at = window.first
    while at < window.end:
        starts.append(at)
        at += step
    buckets: list[dict[str, int]] = [{} for _ in starts]
    for hour, by_outcome in counts.items():
        index = (hour - window.first) // step
        if 0 <= index < len(buckets):
            for outcome, n in by_outcome.items():
                buckets[index][outcome] = buckets[index].get(outcome, 0) + n
    top = _scale_max(max((sum(b.values()) for b in buckets), default=0))
    slot = (WIDTH - RIGHT - LEFT) / max(len(starts), 1)
    bars = []
    for i, (bucket_start, bucket) in enumerate(zip(starts, buckets, strict=True)):
        if not any(bucket.values()):
            continue  # an empty bucket draws nothing; the axis labels still place it
        y = float(HEIGHT - BOTTOM)
        segments = []
        for outcome in OUTCOMES:
            n = bucket.get(outcome, 0)
            if n:
                height = max(n / top * PLOT_HEIGHT, MIN_SEGMENT)
                y = max(y - height, TOP)
                segments.append(Segment(outcome, n, round(y, 2), round(height, 2)))
        bars.append(
            Bar.make(
                bucket_start, bucket_start + step, bucket, round(LEFT + i * slot + slot * 0.1, 2),
                round(slot * 0.8, 2), segments,
            )
        )  # fmt: skip
    every = max(1, math.ceil(len(starts) / MAX_TICK_LABELS))
    labels = [
        Label(at, round(LEFT + (i + 0.5) * slot, 2))
        for i, at in enumerate(starts)
        if i % every == 0
    ]
    ticks = [
        Tick(v, round(HEIGHT - BOTTOM - v / top * PLOT_HEIGHT, 2))
        for v in sorted({0, top // 2, top})
        if v == 0 or v * 2 >= top
    ]
    totals = {o: sum(b.get(o, 0) for b in buckets) for o in OUTCOMES}
    return HourlyChart(
        start=window.start,
        end=window.end,
        bucket_hours=window.bucket_hours,
        bars=bars,
        ticks=ticks,
        labels=labels,
        totals=totals,
    )
