"""What a cache reports: hits, misses and what the hits saved, per model.

The cache keeps plain integer counters in its store (so every process sharing the
store adds to the same totals); `build_stats` turns them into these objects.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from langchain_tokenopt.cache.savings import PICO, int_or_zero

__all__ = ["MODEL_FIELDS", "CacheStats", "ModelCacheStats", "build_stats"]

#: Per-model counters kept in the store, as key suffixes.
MODEL_FIELDS = ("hits", "in", "out", "usd", "unpriced")


@dataclass(frozen=True)
class ModelCacheStats:
    """What cache hits saved for one model.

    `unpriced_hits` counts hits whose model has no known price: their tokens are
    counted, their dollars are not.

    Example:
        >>> from langchain_core.messages import AIMessage
        >>> from langchain_core.outputs import ChatGeneration
        >>> from langchain_tokenopt import TokenOptCache
        >>> answer = AIMessage("Paris.", response_metadata={"model_name": "gpt-4o-mini"},
        ...     usage_metadata={"input_tokens": 1000, "output_tokens": 100, "total_tokens": 1100})
        >>> cache = TokenOptCache()
        >>> cache.update("Capital of France?", "llm", [ChatGeneration(message=answer)])
        >>> _ = cache.lookup("Capital of France?", "llm")
        >>> saved = cache.stats().by_model["gpt-4o-mini"]
        >>> (saved.hits, saved.saved_input_tokens, saved.saved_output_tokens, saved.saved_usd)
        (1, 1000, 100, Decimal('0.00021'))
    """

    hits: int = 0
    saved_input_tokens: int = 0
    saved_output_tokens: int = 0
    saved_usd: Decimal = Decimal(0)
    unpriced_hits: int = 0


@dataclass(frozen=True)
class CacheStats:
    """Hits, misses and what the hits saved, summed over every process sharing the store.

    Example:
        >>> from langchain_core.outputs import Generation
        >>> from langchain_tokenopt import TokenOptCache
        >>> cache = TokenOptCache()
        >>> cache.update("prompt", "llm", [Generation(text="answer")])
        >>> _ = cache.lookup("prompt", "llm"), cache.lookup("other prompt", "llm")
        >>> stats = cache.stats()
        >>> (stats.hits, stats.misses, stats.hit_rate, stats.entries, stats.saved_usd)
        (1, 1, 0.5, 1, Decimal('0'))
    """

    hits: int
    misses: int
    semantic_hits: int
    entries: int
    saved_input_tokens: int
    saved_output_tokens: int
    saved_usd: Decimal
    by_model: Mapping[str, ModelCacheStats] = field(default_factory=dict)

    @property
    def hit_rate(self) -> float:
        """Hits over lookups, 0.0 before the first lookup."""
        lookups = self.hits + self.misses
        return self.hits / lookups if lookups else 0.0


def build_stats(
    totals: Mapping[str, Any], model_counters: Mapping[str, Mapping[str, Any]], entries: int
) -> CacheStats:
    """`CacheStats` from the store's counters: totals, per-model counters, live entries."""
    by_model: dict[str, ModelCacheStats] = {}
    for model, counters in sorted(model_counters.items()):
        by_model[model] = ModelCacheStats(
            hits=int_or_zero(counters.get("hits")),
            saved_input_tokens=int_or_zero(counters.get("in")),
            saved_output_tokens=int_or_zero(counters.get("out")),
            saved_usd=Decimal(int_or_zero(counters.get("usd"))) / PICO,
            unpriced_hits=int_or_zero(counters.get("unpriced")),
        )
    return CacheStats(
        hits=int_or_zero(totals.get("hits")),
        misses=int_or_zero(totals.get("misses")),
        semantic_hits=int_or_zero(totals.get("semantic_hits")),
        entries=entries,
        saved_input_tokens=sum(m.saved_input_tokens for m in by_model.values()),
        saved_output_tokens=sum(m.saved_output_tokens for m in by_model.values()),
        saved_usd=sum((m.saved_usd for m in by_model.values()), Decimal(0)),
        by_model=by_model,
    )
