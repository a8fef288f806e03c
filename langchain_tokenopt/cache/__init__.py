"""LangChain `BaseCache` that counts what it saves, and cached streaming.

One module per job: `llm_cache` (the `BaseCache`), `serialization` (entries as
stored), `savings` (what a hit saves), `exactness` and `semantic` (guarded semantic
matching), `stats` (what the cache reports), `streaming` (cached `stream()`).
"""

from langchain_tokenopt.cache.llm_cache import TokenOptCache
from langchain_tokenopt.cache.stats import CacheStats, ModelCacheStats
from langchain_tokenopt.cache.streaming import CachedStreamRunnable

__all__ = ["CacheStats", "CachedStreamRunnable", "ModelCacheStats", "TokenOptCache"]
