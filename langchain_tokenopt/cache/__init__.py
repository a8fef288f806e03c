"""LangChain `BaseCache` that counts what it saves, and cached streaming."""

from langchain_tokenopt.cache.llm_cache import CacheStats, ModelCacheStats, TokenOptCache
from langchain_tokenopt.cache.streaming import CachedStreamRunnable

__all__ = ["CacheStats", "CachedStreamRunnable", "ModelCacheStats", "TokenOptCache"]
