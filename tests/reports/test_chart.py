"""The bar chart's layout: round axis steps, bars in proportion, every value read out."""

from __future__ import annotations

import pytest

from handover.reports import chart


@pytest.mark.parametrize(
    ("values", "whole", "ticks"),
    [
        ([3, 0, None], True, [0, 1, 2, 3]),
        ([90, 20, None], False, [0, 25, 50, 75, 100]),
        ([11], True, [0, 5, 10, 15]),
        ([0.4], False, [0, 0.1, 0.2, 0.3, 0.4]),
        ([None, None], False, [0, 1]),
        ([0], True, [0, 1, 2, 3, 4]),
    ],
)
def test_axis_steps_are_round(values: list[float | None], whole: bool, ticks: list[float]) -> None:
    assert chart.scale(values, whole=whole) == pytest.approx(ticks)


def test_bars_are_in_proportion_and_described() -> None:
    bars = [chart.Bar("5 Oct", 20.0, "20 minutes"), chart.Bar("12 Oct", None, "none acknowledged"),
            chart.Bar("19 Oct", 100.0, "1 hour 40 minutes")]  # fmt: skip
    laid_out = chart.bar_chart(
        id="c", title="T", summary="Median time.", bars=bars, x_label="Week", y_label="Minutes"
    )
    first, empty, last = laid_out.bars
    assert last.height == pytest.approx(5 * first.height)
    assert last.y == laid_out.top and last.y + last.height == laid_out.bottom
    assert (empty.height, empty.mark) == (0, "–")
    assert (first.mark, last.mark) == ("20", "100")
    assert laid_out.description == (
        "Median time. 5 Oct: 20 minutes; 12 Oct: none acknowledged; 19 Oct: 1 hour 40 minutes."
    )
    assert [tick.text for tick in laid_out.ticks] == ["0", "25", "50", "75", "100"]


@pytest.mark.parametrize(
    ("minutes", "text"),
    [(None, "—"), (1.2, "1 minute"), (20, "20 minutes"), (60, "1 hour"), (90, "1 hour 30 minutes"),
     (47 * 60 + 59.6, "2 days"), (50 * 60, "2 days 2 hours")],
)  # fmt: skip
def test_durations_read_as_words(minutes: float | None, text: str) -> None:
    assert chart.duration(minutes) == text
