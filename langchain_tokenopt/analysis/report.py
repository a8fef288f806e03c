"""What `tokenopt analyze` found, as data (`Report.to_dict`, schema in docs/analyze-json.md)
and as the terminal table (`Report.render_table`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from langchain_tokenopt.analysis.replay import (
    OPENAI_MIN_PREFIX_TOKENS,
    OPENAI_PREFIX_STEP_TOKENS,
    Charge,
)
from langchain_tokenopt.core.formatting import decimal_str, plural, usd

__all__ = [
    "SCHEMA_NAME",
    "SCHEMA_VERSION",
    "ConversationRow",
    "LeverResult",
    "ModelRow",
    "Report",
    "Totals",
]

SCHEMA_NAME = "langchain-tokenopt/analyze"
SCHEMA_VERSION = 1

#: Levers whose savings overlap, and why (reported when both save something).
_OVERLAPS = (
    ("history", "dedup", "a folded message cannot also be removed as a duplicate"),
    ("history", "compression", "a folded message is not sent, compressed or not"),
    ("dedup", "compression", "a removed duplicate is not sent, compressed or not"),
    ("cache", "history", "a request the cache answers sends nothing to shrink"),
    ("cache", "routing", "a request the cache answers costs nothing on any model"),
    ("routing", "history", "routing prices the tokens history leaves at the cheaper rate"),
)


def _share(part: Decimal | int | None, whole: Decimal | int | None) -> float | None:
    if part is None or not whole:
        return None
    return float(part) / float(whole)


@dataclass
class Totals:
    """Tokens and dollars of one replay chain over the log."""

    requests: int = 0
    input_tokens: int = 0
    cached_input_tokens: int = 0
    cache_write_tokens: int = 0
    output_tokens: int = 0
    cost_usd: Decimal = Decimal(0)
    unpriced_requests: int = 0
    priced_requests: int = 0

    def add(self, charge: Charge, cost: Decimal | None) -> None:
        self.requests += 1
        self.input_tokens += charge.input_tokens
        self.cached_input_tokens += charge.cache_read_tokens
        self.cache_write_tokens += charge.cache_write_tokens
        self.output_tokens += charge.output_tokens
        if cost is None:
            self.unpriced_requests += 1
        else:
            self.priced_requests += 1
            self.cost_usd += cost

    @property
    def cost(self) -> Decimal | None:
        """Dollars, or None when no request could be priced."""
        return self.cost_usd if self.priced_requests else None

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def to_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "input_tokens": self.input_tokens,
            "cached_input_tokens": self.cached_input_tokens,
            "cache_write_tokens": self.cache_write_tokens,
            "output_tokens": self.output_tokens,
            "cost_usd": decimal_str(self.cost),
            "unpriced_requests": self.unpriced_requests,
        }


def _saved(baseline: Totals, after: Totals) -> Decimal | None:
    if baseline.cost is None or after.cost is None:
        return None
    return baseline.cost_usd - after.cost_usd


@dataclass
class LeverResult:
    """One lever replayed alone over the log."""

    name: str
    label: str
    after: Totals
    requests_changed: int
    note: str
    details: dict[str, Any]

    def to_dict(self, baseline: Totals) -> dict[str, Any]:
        saved = _saved(baseline, self.after)
        share = (
            _share(saved, baseline.cost)
            if saved is not None
            else _share(baseline.tokens - self.after.tokens, baseline.tokens)
        )
        details = {
            key: decimal_str(value) if isinstance(value, Decimal) else value
            for key, value in self.details.items()
        }
        return {
            "name": self.name,
            "label": self.label,
            "after": self.after.to_dict(),
            "input_tokens_saved": baseline.input_tokens - self.after.input_tokens,
            "output_tokens_saved": baseline.output_tokens - self.after.output_tokens,
            "cost_saved_usd": decimal_str(saved),
            "share_saved": share,
            "requests_changed": self.requests_changed,
            "note": self.note,
            "details": details,
        }


@dataclass
class ModelRow:
    """One model as logged: its requests, tokens and dollars per chain."""

    model: str
    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    priced: bool = False
    costs: list[Decimal] = field(default_factory=list)

    def add(self, charge: Charge, cost: Decimal | None) -> None:
        self.requests += 1
        self.input_tokens += charge.input_tokens
        self.output_tokens += charge.output_tokens
        self.priced = self.priced or cost is not None


@dataclass
class ConversationRow:
    """One conversation: its id, requests, models, input tokens and dollars per chain."""

    id: str
    requests: int
    models: list[str]
    input_tokens: int
    costs: list[Decimal]


def _by_lever(costs: list[Decimal], names: list[str], priced: bool) -> dict[str, str | None]:
    if not priced:
        return {name: None for name in [*names, "combined"]}
    saved = {name: decimal_str(costs[0] - costs[n + 1]) for n, name in enumerate(names)}
    saved["combined"] = decimal_str(costs[0] - costs[-1])
    return saved


@dataclass
class Report:
    """What every lever would save on a log, priced per request (see docs/analyze-json.md)."""

    requests: int
    conversations: int
    grouping: dict[str, int]
    baseline: Totals
    levers: list[LeverResult]
    combined: Totals
    models: list[ModelRow]
    conversations_top: list[ConversationRow]
    usage_check: dict[str, int]
    budget: dict[str, Any] | None
    calls: dict[str, Any]
    settings: dict[str, Any]
    lever_names: list[str]
    baseline_uncached_cost_usd: Decimal | None = None
    sources: list[str] = field(default_factory=list)
    format: str = "requests"
    skipped: int = 0
    skipped_examples: list[str] = field(default_factory=list)
    input_bytes: int = 0

    def lever(self, name: str) -> LeverResult:
        """The lever called `name`."""
        for result in self.levers:
            if result.name == name:
                return result
        raise KeyError(name)

    def overlaps(self) -> list[dict[str, Any]]:
        saving = {
            r.name
            for r in self.levers
            if r.after.tokens < self.baseline.tokens
            or (
                self.baseline.cost is not None
                and r.after.cost is not None
                and r.after.cost_usd < self.baseline.cost_usd
            )
        }
        return [
            {"levers": [a, b], "note": note}
            for a, b, note in _OVERLAPS
            if a in saving and b in saving
        ]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the data model of docs/analyze-json.md."""
        check: dict[str, Any] = dict(self.usage_check)
        check["input_difference_share"] = _share(
            check["logged_input_tokens"] - check["counted_input_tokens"],
            check["counted_input_tokens"],
        )
        combined_saved = _saved(self.baseline, self.combined)
        discount = (
            self.baseline_uncached_cost_usd - self.baseline.cost_usd
            if self.baseline_uncached_cost_usd is not None and self.baseline.cost is not None
            else None
        )
        budget = None
        if self.budget is not None:
            budget = {
                key: decimal_str(value) if isinstance(value, Decimal) else value
                for key, value in self.budget.items()
            }
        settings = {
            key: decimal_str(value) if isinstance(value, Decimal) else value
            for key, value in self.settings.items()
        }
        return {
            "schema": SCHEMA_NAME,
            "version": SCHEMA_VERSION,
            "sources": list(self.sources),
            "format": self.format,
            "requests": self.requests,
            "conversations": self.conversations,
            "grouping": dict(self.grouping),
            "skipped": {"count": self.skipped, "examples": list(self.skipped_examples)},
            "settings": settings,
            "baseline": self.baseline.to_dict(),
            "usage_check": check,
            "provider_cache": {
                "openai_min_prefix_tokens": OPENAI_MIN_PREFIX_TOKENS,
                "openai_step_tokens": OPENAI_PREFIX_STEP_TOKENS,
                "anthropic": "cache_control",
                "baseline_cached_input_tokens": self.baseline.cached_input_tokens,
                "baseline_discount_usd": decimal_str(discount),
            },
            "levers": [result.to_dict(self.baseline) for result in self.levers],
            "combined": {
                **self.combined.to_dict(),
                "levers": list(self.lever_names),
                "cost_saved_usd": decimal_str(combined_saved),
                "share_saved": _share(combined_saved, self.baseline.cost),
            },
            "overlaps": self.overlaps(),
            "budget": budget,
            "models": [
                {
                    "model": row.model,
                    "requests": row.requests,
                    "input_tokens": row.input_tokens,
                    "output_tokens": row.output_tokens,
                    "cost_usd": decimal_str(row.costs[0]) if row.priced else None,
                    "priced": row.priced,
                    "cost_saved_usd_by_lever": _by_lever(row.costs, self.lever_names, row.priced),
                }
                for row in self.models
            ],
            "conversations_top": [
                {
                    "id": row.id,
                    "requests": row.requests,
                    "models": row.models,
                    "input_tokens": row.input_tokens,
                    "cost_usd": decimal_str(row.costs[0]),
                    "cost_saved_usd_by_lever": _by_lever(row.costs, self.lever_names, True),
                }
                for row in self.conversations_top
            ],
            "calls": self.calls,
            "input_bytes": self.input_bytes,
        }

    def render_table(self) -> str:
        """The report for a terminal."""
        base = self.baseline
        source = ", ".join(self.sources) or "<input>"
        what = f"{self.format}, {plural(self.requests, 'request')} in " + plural(
            self.conversations, "conversation"
        )
        if self.skipped:
            what += f", {plural(self.skipped, 'invalid record')} skipped"
        mix = ", ".join(f"{row.model} {row.requests:,}" for row in self.models[:6])
        lines = [
            f"log:     {source} ({what})",
            f"models:  {mix}",
            "",
            "baseline, as logged (each request priced with its own model, net of the",
            "provider's prefix caching):",
            f"  input tokens  {base.input_tokens:>14,}  ({base.cached_input_tokens:,} read "
            "from the provider's prefix cache)",
            f"  output tokens {base.output_tokens:>14,}",
            f"  cost          {usd(base.cost):>14}",
        ]
        if self.baseline_uncached_cost_usd is not None and base.cost is not None:
            lines.append(
                f"                {'':>14}  (the provider's caching already saves "
                f"{usd(self.baseline_uncached_cost_usd - base.cost_usd)})"
            )
        if base.unpriced_requests:
            lines.append(f"  {plural(base.unpriced_requests, 'request')} on models without a price")
        check = self.usage_check
        if check["requests_with_usage"]:
            difference = check["logged_input_tokens"] - check["counted_input_tokens"]
            lines.append(
                f"  logged usage on {check['requests_with_usage']:,} requests: "
                f"{check['logged_input_tokens']:,} input tokens vs "
                f"{check['counted_input_tokens']:,} counted ({difference:+,}); "
                "the logged figures are used"
            )
        lines += ["", "what each lever would save on its own (they overlap; not additive):"]
        header = f"  {'lever':<46}{'changed':>9}{'tokens saved':>14}{'share':>8}{'dollars':>12}"
        lines += [header, "  " + "-" * (len(header) - 2)]
        for result in self.levers:
            lines.append(self._row(result.label, result.after, result.requests_changed))
            if result.note:
                lines.append(f"    {result.note}")
        lines.append("  " + "-" * (len(header) - 2))
        lines.append(self._row("all together (replayed in this order)", self.combined, None))
        overlaps = self.overlaps()
        if overlaps:
            lines += ["", "overlaps (why the rows do not add up):"]
            lines += [f"  {' + '.join(o['levers'])}: {o['note']}" for o in overlaps]
        if self.budget is not None:
            b = self.budget
            lines += [
                "",
                f"budget {usd(b['budget_usd'])}: would have stopped "
                f"{plural(b['stopped_requests'], 'request')} ({usd(b['stopped_cost_usd'])})"
                + (
                    f", from request {b['first_stopped_request'] + 1:,} on"
                    if b["first_stopped_request"] is not None
                    else ""
                ),
            ]
        return "\n".join(lines)

    def _row(self, label: str, after: Totals, changed: int | None) -> str:
        base = self.baseline
        tokens = base.tokens - after.tokens
        saved = _saved(base, after)
        share = _share(saved, base.cost) if saved is not None else _share(tokens, base.tokens)
        shown_share = f"{100 * share:.1f}%" if share is not None else "-"
        shown_changed = f"{changed:,}" if changed is not None else ""
        return f"  {label:<46}{shown_changed:>9}{tokens:>14,}{shown_share:>8}{usd(saved):>12}"
