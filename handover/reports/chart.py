"""Bar charts laid out on the server for ``templates/reports/_chart.html`` to draw as SVG, and
the timeliness page's two charts (received, median time to acknowledge) with its durations.

The chart is an image with a title and a description that read out every value, so a screen
reader user hears what a sighted user sees; each bar carries its value as text, so nothing is
told by colour alone. The same figures are always in a table beside it. Styles are classes in
app.scss: the Content-Security-Policy allows no inline styles.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from handover.reports.service import Week

WIDTH, HEIGHT = 480, 260
LEFT, RIGHT, TOP, BOTTOM = 56, 8, 24, 56
BAR_SHARE = 0.6  # of each week's slot; the rest is the gap between bars
NICE_STEPS = (1.0, 2.0, 2.5, 5.0, 10.0)
HOURS_FROM = 180  # minutes: longer times read better as hours on the axis


@dataclass(frozen=True)
class Bar:
    """One bar as the caller gives it: its label, its value (None: nothing to show), and the
    value as the description reads it out ("20 minutes")."""

    label: str
    value: float | None
    text: str


@dataclass(frozen=True)
class PlacedBar:
    """A bar in SVG coordinates, with where its label and value text go."""

    label: str
    mark: str  # shown above the bar: its text, or a dash when there is no value
    x: float
    y: float
    width: float
    height: float
    centre: float


@dataclass(frozen=True)
class Tick:
    """A line across the plot at a value of the y axis, and that value as text."""

    y: float
    text: str


@dataclass(frozen=True)
class Chart:
    """Everything the template needs to draw the chart."""

    id: str
    title: str
    description: str
    x_label: str
    y_label: str
    width: int
    height: int
    left: int
    right: int
    top: int
    bottom: int
    bars: list[PlacedBar]
    ticks: list[Tick]


def _step(raw: float, whole: bool) -> float:
    """The smallest round step (1, 2, 2.5 or 5 times a power of ten) at least ``raw``."""
    exponent = math.floor(math.log10(raw))
    for base in NICE_STEPS:
        step = base * 10.0**exponent
        if step >= raw and (not whole or step == int(step)):
            return max(step, 1.0) if whole else step
    return float(10.0 ** (exponent + 1))


def number(value: float) -> str:
    return f"{value:,.0f}" if value == int(value) else f"{value:,.1f}"


def scale(values: Sequence[float | None], *, whole: bool, ticks: int = 4) -> list[float]:
    """Round tick values from 0 up to at least the largest value."""
    largest = max((v for v in values if v is not None), default=0.0)
    if largest <= 0:
        return [float(i) for i in range(ticks + 1)] if whole else [0.0, 1.0]
    step = _step(largest / ticks, whole)
    count = math.ceil(largest / step - 1e-9)
    return [step * i for i in range(count + 1)]


def bar_chart(
    *,
    id: str,
    title: str,
    summary: str,
    bars: Sequence[Bar],
    x_label: str,
    y_label: str,
    whole: bool = False,
) -> Chart:
    """Lay out a bar chart; the description is ``summary`` followed by every bar's value."""
    values = scale([bar.value for bar in bars], whole=whole)
    top_value = values[-1] or 1.0
    plot_height = HEIGHT - TOP - BOTTOM
    bottom = HEIGHT - BOTTOM
    slot = (WIDTH - LEFT - RIGHT) / max(len(bars), 1)
    placed = []
    for index, bar in enumerate(bars):
        height = plot_height * (bar.value or 0.0) / top_value
        centre = LEFT + slot * (index + 0.5)
        placed.append(
            PlacedBar(
                label=bar.label,
                mark="–" if bar.value is None else number(bar.value),
                x=round(centre - slot * BAR_SHARE / 2, 2),
                y=round(bottom - height, 2),
                width=round(slot * BAR_SHARE, 2),
                height=round(height, 2),
                centre=round(centre, 2),
            )
        )
    ticks = [Tick(y=round(bottom - plot_height * v / top_value, 2), text=number(v)) for v in values]
    readings = "; ".join(f"{bar.label}: {bar.text}" for bar in bars)
    return Chart(
        id=id,
        title=title,
        description=f"{summary} {readings}.",
        x_label=x_label,
        y_label=y_label,
        width=WIDTH,
        height=HEIGHT,
        left=LEFT,
        right=WIDTH - RIGHT,
        top=TOP,
        bottom=bottom,
        bars=placed,
        ticks=ticks,
    )


# The timeliness page's two charts, and how it writes durations.


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def duration(minutes: float | None) -> str:
    """20 minutes, 1 hour 30 minutes, 2 days 3 hours; an em dash when there is nothing."""
    if minutes is None:
        return "—"
    total = round(minutes)
    if total < 60:
        return _plural(total, "minute")
    hours, rest = divmod(total, 60)
    if hours < 48:
        return _plural(hours, "hour") + (f" {_plural(rest, 'minute')}" if rest else "")
    days, hours = divmod(hours, 24)
    return _plural(days, "day") + (f" {_plural(hours, 'hour')}" if hours else "")


def _week_label(week: Week) -> str:
    return f"{week.starts.day} {week.starts:%b}"


def timeliness_charts(weeks: Sequence[Week], team_name: str) -> list[Chart]:
    """The received counts and the median time to acknowledge, week by week."""
    first, last = weeks[0].starts, weeks[-1].starts
    span = (
        f"the {len(weeks)} weeks from the week beginning {first.day} {first:%B %Y} "
        f"to the week beginning {last.day} {last:%B %Y}"
    )
    return [_received(weeks, team_name, span), _median(weeks, team_name, span)]


def _received(weeks: Sequence[Week], team_name: str, span: str) -> Chart:
    return bar_chart(
        id="chart-received",
        title=f"Handovers received by {team_name}, week by week",
        summary=f"Bar chart of handovers delivered to the team in {span}.",
        bars=[Bar(_week_label(w), w.received, _plural(w.received, "handover")) for w in weeks],
        x_label="Week beginning",
        y_label="Handovers",
        whole=True,
    )


def _median(weeks: Sequence[Week], team_name: str, span: str) -> Chart:
    medians = [w.median_minutes for w in weeks]
    hours = max((m for m in medians if m is not None), default=0) >= HOURS_FROM
    divisor, unit = (60.0, "Hours") if hours else (1.0, "Minutes")
    bars = [
        Bar(
            _week_label(w),
            None if w.median_minutes is None else w.median_minutes / divisor,
            "none acknowledged" if w.median_minutes is None else duration(w.median_minutes),
        )
        for w in weeks
    ]
    return bar_chart(
        id="chart-median",
        title=f"Median time to acknowledge at {team_name}, week by week",
        summary=f"Bar chart of the median time from delivery to acknowledgement, in "
        f"{unit.lower()}, for handovers delivered in {span}.",
        bars=bars,
        x_label="Week beginning",
        y_label=unit,
    )
