"""Charts of usage totals (needs the `viz` extra: matplotlib)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from langchain_tokenopt.analytics.totals import UsageTotals
from langchain_tokenopt.core.extras import require

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["plot_usage"]


def plot_usage(
    by_day: Mapping[str, UsageTotals],
    by_model: Mapping[str, UsageTotals],
    by_agent: Mapping[str, UsageTotals],
    path: str | Path | None = None,
) -> Figure:
    """Cost per day, tokens per model and cost per agent, as one matplotlib Figure.

    Uses no pyplot state, so it is safe in servers and under the Agg backend; with
    `path` the figure is also saved there (format from the suffix).
    """
    figure_module = require("matplotlib.figure", "viz")
    figure: Figure = figure_module.Figure(figsize=(12, 4), layout="constrained")
    ax_day, ax_model, ax_agent = figure.subplots(1, 3)

    days = list(by_day)
    ax_day.bar(days, [float(t.cost_usd) for t in by_day.values()], color="#4C72B0")
    ax_day.set_title("Cost per day (USD)")
    ax_day.tick_params(axis="x", labelrotation=45)

    models = list(by_model)
    uncached = [t.input_tokens - t.cache_read_tokens for t in by_model.values()]
    cached = [t.cache_read_tokens for t in by_model.values()]
    output = [t.output_tokens for t in by_model.values()]
    ax_model.barh(models, uncached, label="input", color="#4C72B0")
    ax_model.barh(models, cached, left=uncached, label="cache read", color="#55A868")
    lefts = [a + b for a, b in zip(uncached, cached, strict=True)]
    ax_model.barh(models, output, left=lefts, label="output", color="#C44E52")
    ax_model.set_title("Tokens per model")
    ax_model.legend(loc="lower right", fontsize="small")

    agents = list(by_agent)
    ax_agent.barh(agents, [float(t.cost_usd) for t in by_agent.values()], color="#8172B2")
    ax_agent.set_title("Cost per agent (USD)")

    if path is not None:
        figure.savefig(path)
    return figure
