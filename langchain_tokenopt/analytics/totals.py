"""`UsageTotals`: sums over a set of usage events (spent and saved, tokens and dollars)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from langchain_tokenopt.analytics.events import UsageEvent
from langchain_tokenopt.core.formatting import decimal_str

__all__ = ["UsageTotals"]


@dataclass(slots=True)
class UsageTotals:
    """Sums over a set of calls. Tokens of cache hits count as saved, not spent.

    Example:
        >>> t = UsageTotals()
        >>> t.add(UsageEvent(run_id="r", agent="a", model="m", input_tokens=5))
        >>> t.calls, t.input_tokens
        (1, 5)
    """

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    cost_usd: Decimal = Decimal(0)
    calls: int = 0
    errors: int = 0
    cache_hits: int = 0
    estimated_calls: int = 0
    unpriced_calls: int = 0
    saved_tokens: int = 0
    saved_cost_usd: Decimal = Decimal(0)
    latency_seconds: float = 0.0

    @property
    def total_tokens(self) -> int:
        """Spent input plus output tokens."""
        return self.input_tokens + self.output_tokens

    def add(self, event: UsageEvent) -> None:
        """Count one event in."""
        self.calls += 1
        self.latency_seconds += event.latency_seconds
        if event.status != "ok":
            self.errors += 1
        if event.estimated:
            self.estimated_calls += 1
        if event.cache_hit:
            self.cache_hits += 1
            self.saved_tokens += event.total_tokens
            if event.saved_cost_usd is not None:
                self.saved_cost_usd += event.saved_cost_usd
            return
        self.input_tokens += event.input_tokens
        self.output_tokens += event.output_tokens
        self.cache_read_tokens += event.cache_read_tokens
        self.cache_write_tokens += event.cache_write_tokens
        self.reasoning_tokens += event.reasoning_tokens
        if event.cost_usd is None:
            self.unpriced_calls += 1
        else:
            self.cost_usd += event.cost_usd

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: dollars as decimal strings (exact), everything else numbers."""
        return {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cache_read_tokens": self.cache_read_tokens,
            "cache_write_tokens": self.cache_write_tokens,
            "reasoning_tokens": self.reasoning_tokens,
            "total_tokens": self.total_tokens,
            "cost_usd": decimal_str(self.cost_usd),
            "calls": self.calls,
            "errors": self.errors,
            "cache_hits": self.cache_hits,
            "estimated_calls": self.estimated_calls,
            "unpriced_calls": self.unpriced_calls,
            "saved_tokens": self.saved_tokens,
            "saved_cost_usd": decimal_str(self.saved_cost_usd),
            "latency_seconds": self.latency_seconds,
        }
