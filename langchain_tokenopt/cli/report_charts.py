"""The charts of the HTML analysis report, drawn with matplotlib as inline SVG.

SVG keeps the page one self-contained file that needs no script and no network: the
text stays text (selectable, sharp at any zoom) and nothing runs in the reader's browser.
matplotlib comes with the `viz` extra; without it `require` raises `MissingExtraError`
and the page shows its tables alone.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from langchain_tokenopt.core.extras import require

#: Colours: the baseline in a quiet grey, what the package would send in a clear blue.
BASELINE_COLOUR = "#9aa3ad"
AFTER_COLOUR = "#1f6fb2"
#: Long ids are cut to this many characters on an axis (the table shows them whole).
LABEL_CHARS = 28
_INCHES_PER_ROW = 0.55
_WIDTH_INCHES = 10.0
_RC = {
    # Labels come from the user's log: a "$" must print as a dollar, not start mathtext.
    "text.parse_math": False,
    # Text stays <text> in the SVG: smaller, selectable, searchable.
    "svg.fonttype": "none",
    # Stable element ids, so the same report renders to the same page.
    "svg.hashsalt": "langchain-tokenopt",
    "font.size": 10,
    "axes.spines.top": False,
    "axes.spines.right": False,
}


@dataclass(frozen=True)
class PairedBars:
    """Rows of two bars each: what was spent as logged, and what the package would spend.

    `before` and `after` are in one unit (`axis_label`); each bar is labelled with the
    matching string of `before_labels` / `after_labels`, written by the caller so money
    keeps its exact decimal form.
    """

    title: str
    axis_label: str
    rows: Sequence[str]
    before: Sequence[float]
    after: Sequence[float]
    before_labels: Sequence[str]
    after_labels: Sequence[str]


def paired_bars_svg(chart: PairedBars) -> str:
    """Horizontal pairs of bars, first row on top, labelled with their values; the
    legend sits above the plot so it never covers a bar."""
    figure_module = require("matplotlib.figure", "viz")
    matplotlib = require("matplotlib", "viz")
    with matplotlib.rc_context(_RC):
        rows = len(chart.rows)
        figure = figure_module.Figure(
            figsize=(_WIDTH_INCHES, 1.6 + _INCHES_PER_ROW * rows), layout="constrained"
        )
        axes = figure.add_subplot()
        positions = [float(rows - 1 - i) for i in range(rows)]
        height = 0.38
        before = axes.barh(
            [p + height / 2 for p in positions],
            chart.before,
            height=height,
            color=BASELINE_COLOUR,
            label="as logged",
        )
        after = axes.barh(
            [p - height / 2 for p in positions],
            chart.after,
            height=height,
            color=AFTER_COLOUR,
            label="with the package",
        )
        axes.bar_label(before, labels=list(chart.before_labels), padding=3)
        axes.bar_label(after, labels=list(chart.after_labels), padding=3)
        axes.set_yticks(positions, [_short(row) for row in chart.rows])
        largest = max([*chart.before, *chart.after, 0.0])
        # Room on the right for the value labels, which are drawn past the bar ends.
        axes.set_xlim(0, largest * 1.6 if largest > 0 else 1)
        axes.set_xlabel(chart.axis_label)
        axes.set_title(chart.title, loc="left", fontsize=12)
        figure.legend(loc="outside upper right", ncols=2, frameon=False)
        return _svg(figure)


def calls_svg(index: Sequence[int], before: Sequence[int], after: Sequence[int], every: int) -> str:
    """Input tokens of each call in log order, as logged and after every lever."""
    figure_module = require("matplotlib.figure", "viz")
    matplotlib = require("matplotlib", "viz")
    with matplotlib.rc_context(_RC):
        figure = figure_module.Figure(figsize=(_WIDTH_INCHES, 4.2), layout="constrained")
        axes = figure.add_subplot()
        axes.fill_between(
            index, before, color=BASELINE_COLOUR, alpha=0.45, linewidth=0, label="as logged"
        )
        axes.plot(index, after, color=AFTER_COLOUR, linewidth=0.9, label="with every lever")
        axes.set_xlim(min(index), max(index))
        axes.set_ylim(bottom=0)
        axes.set_xlabel(
            "call, in log order" + (f" (one in every {every} shown)" if every > 1 else "")
        )
        axes.set_ylabel("input tokens")
        axes.set_title("Input tokens per call", loc="left", fontsize=12)
        ticker = require("matplotlib.ticker", "viz")
        axes.yaxis.set_major_formatter(ticker.StrMethodFormatter("{x:,.0f}"))
        figure.legend(loc="outside upper right", ncols=2, frameon=False)
        return _svg(figure)


def _short(label: str) -> str:
    return label if len(label) <= LABEL_CHARS else label[: LABEL_CHARS - 1] + "…"


def _svg(figure: Any) -> str:
    """The figure as an <svg> element to inline (no XML prolog, no date)."""
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", metadata={"Date": None})
    text = buffer.getvalue()
    return text[text.index("<svg") :]
