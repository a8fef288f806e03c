"""The usage charts: spend and savings side by side, value labels, legends off the data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from langchain_tokenopt.analytics.report import UsageReport
from tests.unit_tests.analytics.test_report import _events

pytest.importorskip("matplotlib")


@pytest.fixture
def figure(tmp_path: Path) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    figure = UsageReport(_events()).plot(tmp_path / "usage.png")
    FigureCanvasAgg(figure).draw()  # type: ignore[no-untyped-call]  # lay out first
    return figure


def test_spent_and_saved_stand_side_by_side_per_day_and_per_agent(figure: Any) -> None:
    ax_day, _, ax_agent = figure.axes
    for ax in (ax_day, ax_agent):
        names = [container.get_label() for container in ax.containers]
        assert names == ["spent", "saved (cache hits)"]
        spent, saved = ax.containers
        assert len(spent.patches) == len(saved.patches) >= 2
    # day 2 had the cache hit: its saved bar is the hit's $0.0035
    saved_day2 = ax_day.containers[1].patches[1]
    assert saved_day2.get_height() == pytest.approx(0.0035)


def test_every_bar_carries_its_value(figure: Any) -> None:
    ax_day, ax_model, ax_agent = figure.axes
    day_labels = [t.get_text() for t in ax_day.texts]
    assert "$0.0035" in day_labels and "$0.0032" in day_labels  # saved day 2, spent day 1
    assert len(ax_day.texts) == sum(len(c.patches) for c in ax_day.containers)
    assert len(ax_agent.texts) == sum(len(c.patches) for c in ax_agent.containers)
    # spent tokens per model (the cache hit's tokens count as saved, not spent)
    assert [t.get_text() for t in ax_model.texts] == ["1,100", "550"]


def test_no_legend_covers_a_bar(figure: Any) -> None:
    renderer = figure.canvas.get_renderer()  # the Agg canvas of the fixture
    for ax in figure.axes:
        legend = ax.get_legend()
        assert legend is not None
        box = legend.get_window_extent(renderer)
        for container in ax.containers:
            for bar in container.patches:
                assert not box.overlaps(bar.get_window_extent(renderer))
        assert not box.overlaps(ax.get_window_extent(renderer))  # outside the axes
        for tick in ax.get_xticklabels():  # and below the tick labels
            assert not box.overlaps(tick.get_window_extent(renderer))
