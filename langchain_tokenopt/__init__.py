"""langchain-tokenopt: spend fewer tokens, less money and less time in LangChain apps.

This module is the whole public API. Names are imported lazily, so importing the
package is cheap and optional extras (redis, langchain, pandas, matplotlib) are only
needed by the features that use them.

Example:
    >>> from langchain_tokenopt import TokenCounter
    >>> TokenCounter("gpt-4o").count_text("hello world")
    2
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from langchain_tokenopt.analytics import (
        Suggestion,
        TaskEfficiency,
        UsageEvent,
        UsageReport,
        UsageTotals,
        UsageTracker,
        analyze_token_efficiency,
        track_usage,
    )
    from langchain_tokenopt.analyze import (
        Analysis,
        analyze_transcript,
        read_transcript,
    )
    from langchain_tokenopt.batching import CoalescingRunnable, CoalescingStats
    from langchain_tokenopt.budget import BudgetRemaining, TokenBudget
    from langchain_tokenopt.cache import (
        CacheStats,
        ModelCacheStats,
        TokenOptCache,
    )
    from langchain_tokenopt.cache_stream import (
        CachedStreamRunnable,
    )
    from langchain_tokenopt.chunking import TokenAwareTextSplitter
    from langchain_tokenopt.compression import CompressionResult, PromptCompressor
    from langchain_tokenopt.dedup import (
        DedupResult,
        MessageDeduplicator,
        deduplicate_messages,
    )
    from langchain_tokenopt.errors import (
        BudgetExceededError,
        EncodingUnavailableError,
        MissingExtraError,
        StoreUnavailableError,
        TokenOptError,
        UnknownModelError,
    )
    from langchain_tokenopt.history import (
        SummarizingChatMessageHistory,
    )
    from langchain_tokenopt.middleware import (
        CompressionMiddleware,
        ModelRouterMiddleware,
        SummarizingMiddleware,
        TokenBudgetMiddleware,
        ToolRetrievalMiddleware,
    )
    from langchain_tokenopt.pricing import ModelPrice, PriceTable, price
    from langchain_tokenopt.routing import (
        ComplexityScorer,
        HeuristicScorer,
        LearnedScorer,
        ModelRouter,
        RouteDecision,
        RouterStats,
        ScoreExplanation,
        Tier,
    )
    from langchain_tokenopt.stores import MemoryStore, RedisStore, SQLiteStore, Store
    from langchain_tokenopt.summarizers import (
        BaseSummarizer,
        ExtractiveSummarizer,
        LLMSummarizer,
        SummaryRequest,
    )
    from langchain_tokenopt.textindex import TextIndex
    from langchain_tokenopt.tokens import TokenCount, TokenCounter
    from langchain_tokenopt.tools import (
        RelevantToolsRunnable,
        ToolMatch,
        ToolRetriever,
        bind_relevant_tools,
    )

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS: dict[str, str] = {
    # errors
    "BudgetExceededError": "langchain_tokenopt.errors",
    "EncodingUnavailableError": "langchain_tokenopt.errors",
    "MissingExtraError": "langchain_tokenopt.errors",
    "StoreUnavailableError": "langchain_tokenopt.errors",
    "TokenOptError": "langchain_tokenopt.errors",
    "UnknownModelError": "langchain_tokenopt.errors",
    # core
    "TokenCount": "langchain_tokenopt.tokens",
    "TokenCounter": "langchain_tokenopt.tokens",
    "ModelPrice": "langchain_tokenopt.pricing",
    "PriceTable": "langchain_tokenopt.pricing",
    "price": "langchain_tokenopt.pricing",
    "Store": "langchain_tokenopt.stores",
    "MemoryStore": "langchain_tokenopt.stores",
    "SQLiteStore": "langchain_tokenopt.stores",
    "RedisStore": "langchain_tokenopt.stores",
    "TextIndex": "langchain_tokenopt.textindex",
    # usage analytics and budgets
    "Suggestion": "langchain_tokenopt.analytics",
    "TaskEfficiency": "langchain_tokenopt.analytics",
    "UsageEvent": "langchain_tokenopt.analytics",
    "UsageReport": "langchain_tokenopt.analytics",
    "UsageTotals": "langchain_tokenopt.analytics",
    "UsageTracker": "langchain_tokenopt.analytics",
    "analyze_token_efficiency": "langchain_tokenopt.analytics",
    "track_usage": "langchain_tokenopt.analytics",
    "BudgetRemaining": "langchain_tokenopt.budget",
    "TokenBudget": "langchain_tokenopt.budget",
    # compression, chunking, coalescing
    "CompressionResult": "langchain_tokenopt.compression",
    "PromptCompressor": "langchain_tokenopt.compression",
    "TokenAwareTextSplitter": "langchain_tokenopt.chunking",
    "CoalescingRunnable": "langchain_tokenopt.batching",
    "CoalescingStats": "langchain_tokenopt.batching",
    "RelevantToolsRunnable": "langchain_tokenopt.tools",
    "ToolMatch": "langchain_tokenopt.tools",
    "ToolRetriever": "langchain_tokenopt.tools",
    "bind_relevant_tools": "langchain_tokenopt.tools",
    "CacheStats": "langchain_tokenopt.cache",
    "ModelCacheStats": "langchain_tokenopt.cache",
    "TokenOptCache": "langchain_tokenopt.cache",
    "CachedStreamRunnable": "langchain_tokenopt.cache_stream",
    "SummarizingChatMessageHistory": "langchain_tokenopt.history",
    "BaseSummarizer": "langchain_tokenopt.summarizers",
    "ExtractiveSummarizer": "langchain_tokenopt.summarizers",
    "LLMSummarizer": "langchain_tokenopt.summarizers",
    "SummaryRequest": "langchain_tokenopt.summarizers",
    "DedupResult": "langchain_tokenopt.dedup",
    "MessageDeduplicator": "langchain_tokenopt.dedup",
    "deduplicate_messages": "langchain_tokenopt.dedup",
    "ComplexityScorer": "langchain_tokenopt.routing",
    "HeuristicScorer": "langchain_tokenopt.routing",
    "LearnedScorer": "langchain_tokenopt.routing",
    "ModelRouter": "langchain_tokenopt.routing",
    "RouteDecision": "langchain_tokenopt.routing",
    "RouterStats": "langchain_tokenopt.routing",
    "ScoreExplanation": "langchain_tokenopt.routing",
    "Tier": "langchain_tokenopt.routing",
    "CompressionMiddleware": "langchain_tokenopt.middleware",
    "ModelRouterMiddleware": "langchain_tokenopt.middleware",
    "SummarizingMiddleware": "langchain_tokenopt.middleware",
    "TokenBudgetMiddleware": "langchain_tokenopt.middleware",
    "ToolRetrievalMiddleware": "langchain_tokenopt.middleware",
    "Analysis": "langchain_tokenopt.analyze",
    "analyze_transcript": "langchain_tokenopt.analyze",
    "read_transcript": "langchain_tokenopt.analyze",
}

__all__ = [
    "Analysis",
    "BaseSummarizer",
    "BudgetExceededError",
    "BudgetRemaining",
    "CacheStats",
    "CachedStreamRunnable",
    "CoalescingRunnable",
    "CoalescingStats",
    "ComplexityScorer",
    "CompressionMiddleware",
    "CompressionResult",
    "DedupResult",
    "EncodingUnavailableError",
    "ExtractiveSummarizer",
    "HeuristicScorer",
    "LLMSummarizer",
    "LearnedScorer",
    "MemoryStore",
    "MessageDeduplicator",
    "MissingExtraError",
    "ModelCacheStats",
    "ModelPrice",
    "ModelRouter",
    "ModelRouterMiddleware",
    "PriceTable",
    "PromptCompressor",
    "RedisStore",
    "RelevantToolsRunnable",
    "RouteDecision",
    "RouterStats",
    "SQLiteStore",
    "ScoreExplanation",
    "Store",
    "StoreUnavailableError",
    "Suggestion",
    "SummarizingChatMessageHistory",
    "SummarizingMiddleware",
    "SummaryRequest",
    "TaskEfficiency",
    "TextIndex",
    "Tier",
    "TokenAwareTextSplitter",
    "TokenBudget",
    "TokenBudgetMiddleware",
    "TokenCount",
    "TokenCounter",
    "TokenOptCache",
    "TokenOptError",
    "ToolMatch",
    "ToolRetrievalMiddleware",
    "ToolRetriever",
    "UnknownModelError",
    "UsageEvent",
    "UsageReport",
    "UsageTotals",
    "UsageTracker",
    "__version__",
    "analyze_token_efficiency",
    "analyze_transcript",
    "bind_relevant_tools",
    "deduplicate_messages",
    "price",
    "read_transcript",
    "track_usage",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'langchain_tokenopt' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
