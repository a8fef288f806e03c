"""What a `ModelRouter` did: answers per tier, fallbacks, and real cost against always-strongest.

The cost of an answer is priced from the usage the call reported (`usage_metadata`, or
the provider's token usage in `response_metadata`); only an answer that reports none is
estimated (exact input tokens plus the tier's expected output), and such answers are
counted apart. Always-strongest's cost prices the same input and output tokens at the
strongest tier. Answers served from a cache (`CACHE_HIT_KEY`) cost nothing routed and are
counted apart.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from langchain_core.messages import BaseMessage

from langchain_tokenopt.core.markers import CACHE_HIT_KEY
from langchain_tokenopt.core.usage import Usage

__all__ = ["AnswerUsage", "RouterStats", "StatsBook", "answer_usage"]


@dataclass(frozen=True)
class AnswerUsage:
    """What an answer says about its own call: the usage it reported and a cache hit."""

    usage: Usage | None
    cache_hit: bool


def _message_of(answer: Any) -> BaseMessage | None:
    if isinstance(answer, BaseMessage):
        return answer
    raw = answer.get("raw") if isinstance(answer, Mapping) else None
    return raw if isinstance(raw, BaseMessage) else None


def answer_usage(answer: Any) -> AnswerUsage:
    """The usage and cache-hit flag an answer carries (a message, or `{"raw": message}`)."""
    message = _message_of(answer)
    if message is None:
        return AnswerUsage(None, False)
    metadata = message.response_metadata or {}
    cache_hit = bool(metadata.get(CACHE_HIT_KEY))
    reported = getattr(message, "usage_metadata", None)
    usage = None
    counts = ("input_tokens", "output_tokens")
    if isinstance(reported, Mapping) and any(key in reported for key in counts):
        if reported.get("total_cost", None) == 0:  # langchain-core's mark of a cache replay
            cache_hit = True
        usage = Usage.parse(reported, strict=False)
    if usage is None:
        raw = metadata.get("token_usage") or metadata.get("usage")
        if isinstance(raw, Mapping) and any(
            key in raw for key in ("prompt_tokens", "completion_tokens", "input_tokens")
        ):
            usage = Usage.parse(raw, strict=False)
    return AnswerUsage(usage, cache_hit)


@dataclass(frozen=True)
class RouterStats:
    """What a router did since it was made (or `reset_stats`).

    `calls` counts answers per tier (cache hits included), `failures` errors per tier,
    `fallbacks` how often a request moved on to another tier, `unanswered` requests
    every tier failed, `cache_hits` answers served from a cache (no routed spend).
    Money covers the other answers: `reported_cost_usd` is priced from the usage the
    `reported_calls` returned, `estimated_cost_usd` is the estimate for the
    `estimated_calls` that reported none; `strongest_cost_usd` prices the same tokens
    (reported, else estimated) at the strongest tier.

    Example:
        >>> stats = RouterStats(requests=3, calls={"mini": 3}, failures={}, fallbacks=0,
        ...     unanswered=0, reported_calls=2, estimated_calls=0, cache_hits=1,
        ...     reported_cost_usd=Decimal("0.01"), estimated_cost_usd=Decimal(0),
        ...     strongest_cost_usd=Decimal("0.04"))
        >>> stats.cost_usd, stats.savings_usd, stats.cost_share
        (Decimal('0.01'), Decimal('0.03'), 0.25)
    """

    requests: int
    calls: Mapping[str, int]
    failures: Mapping[str, int]
    fallbacks: int
    unanswered: int
    reported_calls: int
    estimated_calls: int
    cache_hits: int
    reported_cost_usd: Decimal
    estimated_cost_usd: Decimal
    strongest_cost_usd: Decimal

    @property
    def cost_usd(self) -> Decimal:
        """Routed spend: reported plus estimated (cache hits excluded)."""
        return self.reported_cost_usd + self.estimated_cost_usd

    @property
    def savings_usd(self) -> Decimal:
        """Dollars saved against calling the strongest tier for the same requests."""
        return self.strongest_cost_usd - self.cost_usd

    @property
    def cost_share(self) -> float | None:
        """Routed spend as a share of always-strongest's (None before any paid answer)."""
        if self.strongest_cost_usd <= 0:
            return None
        return float(self.cost_usd / self.strongest_cost_usd)


@dataclass
class StatsBook:
    """The running counts behind `RouterStats`, safe to update from several threads."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    requests: int = 0
    calls: Counter[str] = field(default_factory=Counter)
    failures: Counter[str] = field(default_factory=Counter)
    fallbacks: int = 0
    unanswered: int = 0
    reported_calls: int = 0
    estimated_calls: int = 0
    cache_hits: int = 0
    reported: Decimal = Decimal(0)
    estimated: Decimal = Decimal(0)
    strongest: Decimal = Decimal(0)

    def record(
        self,
        answered: str | None,
        failed: Sequence[str],
        *,
        cost_usd: Decimal = Decimal(0),
        strongest_cost_usd: Decimal = Decimal(0),
        reported: bool = False,
        cache_hit: bool = False,
    ) -> None:
        """Count one request: the tier that answered (None if all failed), the tiers that
        failed before, and the cost on the answering and the strongest tier, from
        reported usage (`reported`) or estimated; a cache hit costs nothing routed."""
        with self.lock:
            self.requests += 1
            self.failures.update(failed)
            if answered is None:
                self.unanswered += 1
                self.fallbacks += max(len(failed) - 1, 0)
                return
            self.fallbacks += len(failed)
            self.calls[answered] += 1
            if cache_hit:
                self.cache_hits += 1
            elif reported:
                self.reported_calls += 1
                self.reported += cost_usd
                self.strongest += strongest_cost_usd
            else:
                self.estimated_calls += 1
                self.estimated += cost_usd
                self.strongest += strongest_cost_usd

    def snapshot(self) -> RouterStats:
        with self.lock:
            return RouterStats(
                requests=self.requests,
                calls=dict(self.calls),
                failures=dict(self.failures),
                fallbacks=self.fallbacks,
                unanswered=self.unanswered,
                reported_calls=self.reported_calls,
                estimated_calls=self.estimated_calls,
                cache_hits=self.cache_hits,
                reported_cost_usd=self.reported,
                estimated_cost_usd=self.estimated,
                strongest_cost_usd=self.strongest,
            )

    def reset(self) -> None:
        with self.lock:
            self.requests = self.fallbacks = self.unanswered = 0
            self.reported_calls = self.estimated_calls = self.cache_hits = 0
            self.calls.clear()
            self.failures.clear()
            self.reported = self.estimated = self.strongest = Decimal(0)
