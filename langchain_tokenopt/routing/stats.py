"""What a `ModelRouter` did: answers per tier, fallbacks, and cost against always-strongest."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

__all__ = ["RouterStats", "StatsBook"]


@dataclass(frozen=True)
class RouterStats:
    """What a router did since it was made (or `reset_stats`).

    `calls` counts answers per tier, `failures` errors per tier, `fallbacks` how often a
    request moved on to another tier, `unanswered` requests every tier failed.
    `estimated_cost_usd` sums the expected cost of each answered request on the tier
    that answered, `strongest_cost_usd` on the strongest tier (always-strongest routing).

    Example:
        >>> stats = RouterStats(requests=2, calls={"mini": 2}, failures={}, fallbacks=0,
        ...     unanswered=0, estimated_cost_usd=Decimal("0.01"),
        ...     strongest_cost_usd=Decimal("0.04"))
        >>> stats.savings_usd, stats.cost_share
        (Decimal('0.03'), 0.25)
    """

    requests: int
    calls: Mapping[str, int]
    failures: Mapping[str, int]
    fallbacks: int
    unanswered: int
    estimated_cost_usd: Decimal
    strongest_cost_usd: Decimal

    @property
    def savings_usd(self) -> Decimal:
        """Estimated dollars saved against calling the strongest tier every time."""
        return self.strongest_cost_usd - self.estimated_cost_usd

    @property
    def cost_share(self) -> float | None:
        """Estimated cost as a share of always-strongest cost (None before any answer)."""
        if self.strongest_cost_usd <= 0:
            return None
        return float(self.estimated_cost_usd / self.strongest_cost_usd)


@dataclass
class StatsBook:
    """The running counts behind `RouterStats`, safe to update from several threads."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    requests: int = 0
    calls: Counter[str] = field(default_factory=Counter)
    failures: Counter[str] = field(default_factory=Counter)
    fallbacks: int = 0
    unanswered: int = 0
    estimated: Decimal = Decimal(0)
    strongest: Decimal = Decimal(0)

    def record(
        self,
        answered: str | None,
        failed: Sequence[str],
        answered_cost_usd: Decimal,
        strongest_cost_usd: Decimal,
    ) -> None:
        """Count one request: the tier that answered (None if all failed), the tiers that
        failed before, and the estimated cost on the answering and the strongest tier."""
        with self.lock:
            self.requests += 1
            self.failures.update(failed)
            if answered is None:
                self.unanswered += 1
                self.fallbacks += max(len(failed) - 1, 0)
                return
            self.fallbacks += len(failed)
            self.calls[answered] += 1
            self.estimated += answered_cost_usd
            self.strongest += strongest_cost_usd

    def snapshot(self) -> RouterStats:
        with self.lock:
            return RouterStats(
                requests=self.requests,
                calls=dict(self.calls),
                failures=dict(self.failures),
                fallbacks=self.fallbacks,
                unanswered=self.unanswered,
                estimated_cost_usd=self.estimated,
                strongest_cost_usd=self.strongest,
            )

    def reset(self) -> None:
        with self.lock:
            self.requests = self.fallbacks = self.unanswered = 0
            self.calls.clear()
            self.failures.clear()
            self.estimated = self.strongest = Decimal(0)
