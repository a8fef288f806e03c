"""What the recorded numbers call for: summarize, cache, route or retrieve tools.

Each `Suggestion` names the optimization, what it is about (an agent or a model) and
the figures that triggered it, so a report can show them and a program can act on them.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypedDict

from langchain_tokenopt.analytics.events import UsageEvent
from langchain_tokenopt.core.formatting import decimal_str
from langchain_tokenopt.core.pricing import PriceTable, price
from langchain_tokenopt.core.usage import Usage
from langchain_tokenopt.errors import UnknownModelError

__all__ = ["Suggestion", "SuggestionThresholds", "suggest"]


@dataclass(frozen=True, slots=True)
class Suggestion:
    """An optimization the recorded numbers call for, with the figures behind it.

    `kind` is one of "summarize_history", "cache", "route", "tool_retrieval";
    `scope` the agent or model it is about (None for all calls).

    Example:
        >>> s = Suggestion(kind="cache", message="Cache answers.",
        ...                figures={"repeated_cost_usd": Decimal("0.5")})
        >>> s.to_dict()["figures"]
        {'repeated_cost_usd': '0.5'}
    """

    kind: str
    message: str
    figures: Mapping[str, Any]
    scope: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        figures = {
            k: decimal_str(v) if isinstance(v, Decimal) else v for k, v in self.figures.items()
        }
        return {"kind": self.kind, "scope": self.scope, "message": self.message, "figures": figures}


class SuggestionThresholds(TypedDict, total=False):
    """The thresholds of `suggest`, for methods that pass them on."""

    min_calls: int
    long_input_tokens: int
    short_output_tokens: int
    expensive_input_usd_per_mtok: Decimal
    many_tools: int
    min_repeated_calls: int


def _agents_averaging_at_least(
    events: Sequence[UsageEvent],
    value: Callable[[UsageEvent], int],
    min_calls: int,
    threshold: float,
) -> Iterator[tuple[str, float, int]]:
    """(agent, average value per call, calls) of agents with >= `min_calls` calls whose
    average `value` is >= `threshold`, by agent name."""
    per_agent: defaultdict[str, list[int]] = defaultdict(list)
    for event in events:
        per_agent[event.agent].append(value(event))
    for agent, values in sorted(per_agent.items()):
        average = sum(values) / len(values)
        if len(values) >= min_calls and average >= threshold:
            yield agent, average, len(values)


def suggest(
    events: Iterable[UsageEvent],
    *,
    prices: PriceTable | None = None,
    min_calls: int = 5,
    long_input_tokens: int = 4000,
    short_output_tokens: int = 60,
    expensive_input_usd_per_mtok: Decimal = Decimal(2),
    many_tools: int = 10,
    min_repeated_calls: int = 2,
) -> list[Suggestion]:
    """Optimizations the numbers of `events` call for; each carries its figures.

    - an agent averaging >= `long_input_tokens` input tokens per call over
      `min_calls` calls -> summarize its history;
    - >= `min_repeated_calls` calls that repeat an identical earlier prompt (same
      model and messages) -> cache answers;
    - a model priced >= `expensive_input_usd_per_mtok` per million input tokens
      whose median answer is <= `short_output_tokens` tokens, without tools ->
      route such calls to a cheaper model;
    - an agent binding >= `many_tools` tools per call on average -> retrieve the
      relevant tools per call.
    """
    spent = [e for e in events if e.status == "ok" and not e.cache_hit]
    found: list[Suggestion] = []
    found.extend(_suggest_summaries(spent, min_calls, long_input_tokens))
    found.extend(_suggest_cache(spent, min_repeated_calls))
    found.extend(
        _suggest_router(spent, min_calls, short_output_tokens, expensive_input_usd_per_mtok, prices)
    )
    found.extend(_suggest_tool_retrieval(spent, min_calls, many_tools))
    return found


def _suggest_summaries(
    spent: Sequence[UsageEvent], min_calls: int, long_input_tokens: int
) -> Iterator[Suggestion]:
    for agent, average, calls in _agents_averaging_at_least(
        spent, lambda e: e.input_tokens, min_calls, long_input_tokens
    ):
        yield Suggestion(
            kind="summarize_history",
            scope=agent,
            message=(
                f"Agent {agent!r} sends {average:,.0f} input tokens per call on "
                f"average over {calls} calls: summarize its history "
                "(SummarizingChatMessageHistory) to bound the context."
            ),
            figures={"avg_input_tokens": round(average, 1), "calls": calls},
        )


def _suggest_cache(spent: Sequence[UsageEvent], min_repeated_calls: int) -> Iterator[Suggestion]:
    seen: set[str] = set()
    repeats = 0
    repeat_tokens = 0
    repeat_cost = Decimal(0)
    for event in sorted(spent, key=lambda e: e.started_at):
        if event.prompt_hash is None:
            continue
        if event.prompt_hash in seen:
            repeats += 1
            repeat_tokens += event.total_tokens
            repeat_cost += event.cost_usd or Decimal(0)
        else:
            seen.add(event.prompt_hash)
    if repeats >= min_repeated_calls:
        share = repeats / len(spent)
        yield Suggestion(
            kind="cache",
            message=(
                f"{repeats} of {len(spent)} calls ({share:.0%}) repeated an identical "
                f"earlier prompt, spending {repeat_tokens:,} tokens "
                f"(${decimal_str(repeat_cost)}): cache answers (TokenOptCache)."
            ),
            figures={
                "repeated_calls": repeats,
                "calls": len(spent),
                "repeated_share": round(share, 4),
                "repeated_tokens": repeat_tokens,
                "repeated_cost_usd": repeat_cost,
            },
        )


def _suggest_router(
    spent: Sequence[UsageEvent],
    min_calls: int,
    short_output_tokens: int,
    expensive_input_usd_per_mtok: Decimal,
    prices: PriceTable | None,
) -> Iterator[Suggestion]:
    per_model: defaultdict[str, list[UsageEvent]] = defaultdict(list)
    for event in spent:
        if event.model is not None and event.tools_count == 0:
            per_model[event.model].append(event)
    for model, events in sorted(per_model.items()):
        if len(events) < min_calls:
            continue
        median_output = statistics.median(e.output_tokens for e in events)
        if median_output > short_output_tokens:
            continue
        try:
            input_price = price(model, Usage(input_tokens=1_000_000), table=prices)
        except UnknownModelError:
            continue
        if input_price < expensive_input_usd_per_mtok:
            continue
        short = [e for e in events if e.output_tokens <= short_output_tokens]
        cost = sum((e.cost_usd or Decimal(0) for e in short), Decimal(0))
        yield Suggestion(
            kind="route",
            scope=model,
            message=(
                f"{len(short)} of {len(events)} calls to {model} (${decimal_str(input_price)}"
                f" per million input tokens) answered in <= {short_output_tokens} tokens "
                f"(median {median_output:g}), costing ${decimal_str(cost)}: a ModelRouter "
                "could send such simple calls to a cheaper model."
            ),
            figures={
                "calls": len(events),
                "short_calls": len(short),
                "median_output_tokens": median_output,
                "input_usd_per_mtok": input_price,
                "short_calls_cost_usd": cost,
            },
        )


def _suggest_tool_retrieval(
    spent: Sequence[UsageEvent], min_calls: int, many_tools: int
) -> Iterator[Suggestion]:
    for agent, average, calls in _agents_averaging_at_least(
        spent, lambda e: e.tools_count, min_calls, many_tools
    ):
        yield Suggestion(
            kind="tool_retrieval",
            scope=agent,
            message=(
                f"Agent {agent!r} binds {average:.1f} tools per call on average over "
                f"{calls} calls: bind only the relevant ones per call "
                "(bind_relevant_tools / ToolRetriever)."
            ),
            figures={"avg_tools_per_call": round(average, 2), "calls": calls},
        )
