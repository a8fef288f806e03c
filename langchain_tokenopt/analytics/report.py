"""`UsageReport`: totals of usage events per agent, model and day, as tables, JSON,
data frames and charts, with the optimizations the numbers call for."""

from __future__ import annotations

import datetime as _dt
import json
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from typing_extensions import Unpack

from langchain_tokenopt.analytics.events import UsageEvent, checked_events
from langchain_tokenopt.analytics.plots import plot_usage
from langchain_tokenopt.analytics.suggestions import Suggestion, SuggestionThresholds, suggest
from langchain_tokenopt.analytics.totals import UsageTotals
from langchain_tokenopt.core.extras import require
from langchain_tokenopt.core.formatting import decimal_str, plural
from langchain_tokenopt.core.pricing import PriceTable
from langchain_tokenopt.core.validation import (
    MAX_DEPTH,
    instance_of,
    json_too_deep,
    optional,
    shown,
)
from langchain_tokenopt.errors import ArgumentTypeError, InvalidArgumentError

if TYPE_CHECKING:
    import pandas
    from matplotlib.figure import Figure

__all__ = ["UNKNOWN_MODEL", "UsageReport"]

#: `by_model` key of calls whose model is not known.
UNKNOWN_MODEL = "unknown"
_UTC = _dt.timezone.utc


def _event_of(line: str) -> UsageEvent:
    """One JSON Lines event; ValueError naming what is wrong with it."""
    if json_too_deep(line) is not None:
        raise InvalidArgumentError(f"JSON nested more than {MAX_DEPTH} levels deep")
    try:
        value = json.loads(line)
    except json.JSONDecodeError as exc:
        raise InvalidArgumentError(f"invalid JSON at column {exc.colno}: {exc.msg}") from None
    except ValueError as exc:  # e.g. an integer of more than 4,300 digits
        raise InvalidArgumentError(f"invalid JSON: {exc}") from None
    return UsageEvent.from_dict(value)


def _tz(timezone: str | _dt.tzinfo) -> _dt.tzinfo:
    if isinstance(timezone, _dt.tzinfo):
        return timezone
    if isinstance(timezone, str):
        try:
            return ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise InvalidArgumentError(
                f"unknown timezone {shown(timezone)}: give an IANA name"
            ) from exc
    raise ArgumentTypeError(f"timezone must be a tzinfo or an IANA name, got {shown(timezone)}")


class UsageReport:
    """Totals of a list of `UsageEvent`s, per agent, model and day, and what to do next.

    Example:
        >>> report = UsageReport([
        ...     UsageEvent(run_id="1", agent="a", model="gpt-4o", input_tokens=100),
        ...     UsageEvent(run_id="2", agent="b", model="gpt-4o", input_tokens=50)])
        >>> report.totals.input_tokens, sorted(report.by_agent)
        (150, ['a', 'b'])
    """

    def __init__(
        self,
        events: Iterable[UsageEvent],
        *,
        timezone: str | _dt.tzinfo = _UTC,
        prices: PriceTable | None = None,
    ) -> None:
        self.events: tuple[UsageEvent, ...] = checked_events(events)
        optional(instance_of, prices, "prices", PriceTable, "a PriceTable or None")
        #: Lines `from_jsonl(skip_invalid=True)` left out, each naming its file and line.
        self.skipped: tuple[str, ...] = ()
        self.timezone = _tz(timezone)
        self.prices = prices
        self.totals = UsageTotals()
        by_agent: defaultdict[str, UsageTotals] = defaultdict(UsageTotals)
        by_model: defaultdict[str, UsageTotals] = defaultdict(UsageTotals)
        by_day: defaultdict[str, UsageTotals] = defaultdict(UsageTotals)
        for event in self.events:
            self.totals.add(event)
            by_agent[event.agent].add(event)
            by_model[event.model or UNKNOWN_MODEL].add(event)
            by_day[event.started_at.astimezone(self.timezone).date().isoformat()].add(event)
        self.by_agent: dict[str, UsageTotals] = dict(sorted(by_agent.items()))
        self.by_model: dict[str, UsageTotals] = dict(sorted(by_model.items()))
        self.by_day: dict[str, UsageTotals] = dict(sorted(by_day.items()))

    def __repr__(self) -> str:
        return (
            f"UsageReport(calls={self.totals.calls}, tokens={self.totals.total_tokens}, "
            f"cost_usd={decimal_str(self.totals.cost_usd)})"
        )

    # -- exports -------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """`{"totals", "by_agent", "by_model", "by_day", "suggestions"}`, JSON-ready."""
        return {
            "totals": self.totals.to_dict(),
            "by_agent": {k: v.to_dict() for k, v in self.by_agent.items()},
            "by_model": {k: v.to_dict() for k, v in self.by_model.items()},
            "by_day": {k: v.to_dict() for k, v in self.by_day.items()},
            "suggestions": [s.to_dict() for s in self.suggestions()],
        }

    def to_jsonl(self, path: str | Path) -> int:
        """Write one JSON event per line to `path`; returns how many were written."""
        with Path(path).open("w", encoding="utf-8") as out:
            for event in self.events:
                out.write(json.dumps(event.to_dict(), separators=(",", ":")))
                out.write("\n")
        return len(self.events)

    @classmethod
    def from_jsonl(
        cls,
        path: str | Path,
        *,
        timezone: str | _dt.tzinfo = _UTC,
        skip_invalid: bool = False,
    ) -> UsageReport:
        """Read events written by `to_jsonl`.

        A line that is not a valid event raises `InvalidArgumentError` (a ValueError)
        naming the file, the line and the field; with `skip_invalid=True` it is left out
        and described in the report's `skipped` list instead. A file that cannot be read
        raises OSError.
        """
        data = Path(path).read_bytes()
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise InvalidArgumentError(
                f"{path} is not UTF-8 text ({exc.reason} at byte {exc.start})"
            ) from None
        events: list[UsageEvent] = []
        skipped: list[str] = []
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                events.append(_event_of(line))
            except ValueError as exc:
                problem = f"{path}, line {number}: {exc}"
                if not skip_invalid:
                    raise InvalidArgumentError(problem) from None
                skipped.append(problem)
        report = cls(events, timezone=timezone)
        report.skipped = tuple(skipped)
        return report

    def to_dataframe(self) -> pandas.DataFrame:
        """One row per event (needs the `viz` extra); dollars as floats for charting."""
        pd = require("pandas", "viz")
        rows = []
        for event in self.events:
            row = event.to_dict()
            row["started_at"] = event.started_at
            row["cost_usd"] = None if event.cost_usd is None else float(event.cost_usd)
            row["saved_cost_usd"] = (
                None if event.saved_cost_usd is None else float(event.saved_cost_usd)
            )
            rows.append(row)
        columns = [f.name for f in fields(UsageEvent)]
        frame: pandas.DataFrame = pd.DataFrame.from_records(rows, columns=columns)
        return frame

    def plot(self, path: str | Path | None = None) -> Figure:
        """Cost per day, tokens per model and cost per agent, as one matplotlib Figure.

        Uses no pyplot state, so it is safe in servers and under the Agg backend; with
        `path` the figure is also saved there (format from the suffix).
        """
        return plot_usage(self.by_day, self.by_model, self.by_agent, path)

    def render_table(self) -> str:
        """A plain-text table (totals, per model, per agent, per day) and suggestions."""
        header = (
            "calls",
            "errors",
            "cache hits",
            "input",
            "cache read",
            "output",
            "reasoning",
            "cost USD",
            "saved USD",
        )
        rows: list[tuple[str, ...]] = []

        def section(title: str, groups: Mapping[str, UsageTotals]) -> None:
            rows.append((f"{title}",) + ("",) * len(header))
            for name, totals in groups.items():
                rows.append((f"  {name}", *_table_cells(totals)))

        rows.append(("total", *_table_cells(self.totals)))
        section("by model", self.by_model)
        section("by agent", self.by_agent)
        section("by day", self.by_day)
        first = max(len(r[0]) for r in rows)
        widths = [max(len(h), *(len(r[i + 1]) for r in rows)) for i, h in enumerate(header)]
        lines = [
            " ".ljust(first)
            + "  "
            + "  ".join(h.rjust(w) for h, w in zip(header, widths, strict=True))
        ]
        lines.append("-" * len(lines[0]))
        for row in rows:
            cells = "  ".join(c.rjust(w) for c, w in zip(row[1:], widths, strict=True))
            lines.append(row[0].ljust(first) + "  " + cells)
        notes = []
        if self.totals.estimated_calls:
            notes.append(
                f"{plural(self.totals.estimated_calls, 'call')} estimated (no provider usage)"
            )
        if self.totals.unpriced_calls:
            notes.append(
                f"{plural(self.totals.unpriced_calls, 'call')} of unknown price not in cost"
            )
        if notes:
            lines.append("note: " + "; ".join(notes))
        suggestions = self.suggestions()
        if suggestions:
            lines.append("")
            lines.append("suggestions:")
            lines.extend(f"- {s.message}" for s in suggestions)
        return "\n".join(lines)

    def suggestions(self, **thresholds: Unpack[SuggestionThresholds]) -> list[Suggestion]:
        """Optimizations the numbers call for; each carries the figures behind it.

        `thresholds` are those of `suggest` (`min_calls`, `long_input_tokens`, ...).
        """
        return suggest(self.events, prices=self.prices, **thresholds)


def _table_cells(totals: UsageTotals) -> tuple[str, ...]:
    return (
        f"{totals.calls:,}",
        f"{totals.errors:,}",
        f"{totals.cache_hits:,}",
        f"{totals.input_tokens:,}",
        f"{totals.cache_read_tokens:,}",
        f"{totals.output_tokens:,}",
        f"{totals.reasoning_tokens:,}",
        f"{totals.cost_usd:.6f}",
        f"{totals.saved_cost_usd:.6f}",
    )
