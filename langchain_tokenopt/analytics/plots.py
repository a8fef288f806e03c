"""Charts of usage totals (needs the `viz` extra: matplotlib).

Spend and savings stand side by side (a cache hit's dollars count as saved, not
spent), every bar carries its value, and legends sit outside the axes so they never
cover a bar (`tests/unit_tests/analytics/test_plots.py` checks both).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from langchain_tokenopt.analytics.totals import UsageTotals
from langchain_tokenopt.core.extras import require

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["plot_usage"]

SPENT_COLOR = "#4C72B0"
SAVED_COLOR = "#55A868"
OUTPUT_COLOR = "#C44E52"
_BAR = 0.4


def _usd(value: float) -> str:
    return f"${value:,.4f}" if 0 < abs(value) < 1 else f"${value:,.2f}"


def _tokens(value: float) -> str:
    return f"{value / 1000:,.1f}k" if value >= 10_000 else f"{value:,.0f}"


def _legend_below(ax: Any, columns: int, *, below: float = 0.08) -> None:
    """The legend under the axes and their tick labels: it covers no data."""
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -below), ncols=columns, frameon=False)


def _spent_and_saved(
    ax: Any, names: Sequence[str], totals: Sequence[UsageTotals], *, horizontal: bool
) -> None:
    """Two bars per name, spent and saved dollars, each labelled with its value."""
    spent = [float(t.cost_usd) for t in totals]
    saved = [float(t.saved_cost_usd) for t in totals]
    positions = list(range(len(names)))
    draw = ax.barh if horizontal else ax.bar
    for offset, values, label, color in (
        (-_BAR / 2, spent, "spent", SPENT_COLOR),
        (_BAR / 2, saved, "saved (cache hits)", SAVED_COLOR),
    ):
        bars = draw([p + offset for p in positions], values, _BAR, label=label, color=color)
        ax.bar_label(bars, labels=[_usd(v) for v in values], padding=2, fontsize="small")
    if horizontal:
        ax.set_yticks(positions, names)
        ax.invert_yaxis()
        ax.margins(x=0.3)  # room for the value labels
    else:
        ax.set_xticks(positions, names)
        ax.margins(y=0.2)


def plot_usage(
    by_day: Mapping[str, UsageTotals],
    by_model: Mapping[str, UsageTotals],
    by_agent: Mapping[str, UsageTotals],
    path: str | Path | None = None,
) -> Figure:
    """Spent and saved dollars per day and per agent, tokens per model, as one Figure.

    Uses no pyplot state, so it is safe in servers and under the Agg backend; with
    `path` the figure is also saved there (format from the suffix).
    """
    figure_module = require("matplotlib.figure", "viz")
    figure: Figure = figure_module.Figure(figsize=(14, 4.8), layout="constrained")
    ax_day, ax_model, ax_agent = figure.subplots(1, 3)

    _spent_and_saved(ax_day, list(by_day), list(by_day.values()), horizontal=False)
    ax_day.set_title("Dollars per day: spent and saved")
    ax_day.tick_params(axis="x", labelrotation=30)
    _legend_below(ax_day, 2, below=0.2)  # under the rotated dates

    models = list(by_model)
    uncached = [t.input_tokens - t.cache_read_tokens for t in by_model.values()]
    cached = [t.cache_read_tokens for t in by_model.values()]
    output = [t.output_tokens for t in by_model.values()]
    lefts = [a + b for a, b in zip(uncached, cached, strict=True)]
    ax_model.barh(models, uncached, label="input", color=SPENT_COLOR)
    ax_model.barh(models, cached, left=uncached, label="input, cache read", color=SAVED_COLOR)
    totals = ax_model.barh(models, output, left=lefts, label="output", color=OUTPUT_COLOR)
    ax_model.bar_label(
        totals,
        labels=[_tokens(a + b) for a, b in zip(lefts, output, strict=True)],
        padding=2,
        fontsize="small",
    )
    ax_model.invert_yaxis()
    ax_model.margins(x=0.25)
    ax_model.set_title("Tokens per model")
    _legend_below(ax_model, 3)

    _spent_and_saved(ax_agent, list(by_agent), list(by_agent.values()), horizontal=True)
    ax_agent.set_title("Dollars per agent: spent and saved")
    _legend_below(ax_agent, 2)

    if path is not None:
        figure.savefig(path)
    return figure
