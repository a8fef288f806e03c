"""LangChain's standard `BaseCache` suites, sync and async, on the memory and SQLite stores.

The Redis backend runs the same suites in tests/integration_tests/cache/test_cache_redis.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from langchain_core.caches import BaseCache
from langchain_tests.integration_tests.cache import AsyncCacheTestSuite, SyncCacheTestSuite

from langchain_tokenopt.cache.llm_cache import TokenOptCache
from langchain_tokenopt.stores import MemoryStore


class TestMemorySync(SyncCacheTestSuite):
    @pytest.fixture
    def cache(self) -> BaseCache:
        return TokenOptCache(MemoryStore(), ttl_seconds=3600, max_entries=100)


class TestMemoryAsync(AsyncCacheTestSuite):
    @pytest.fixture
    async def cache(self) -> BaseCache:
        return TokenOptCache(MemoryStore(), ttl_seconds=3600, max_entries=100)


class TestSQLiteSync(SyncCacheTestSuite):
    @pytest.fixture
    def cache(self, tmp_path: Path) -> Iterator[BaseCache]:
        yield TokenOptCache.sqlite(str(tmp_path / "cache.db"), ttl_seconds=3600, max_entries=100)


class TestSQLiteAsync(AsyncCacheTestSuite):
    @pytest.fixture
    async def cache(self, tmp_path: Path) -> AsyncIterator[BaseCache]:
        yield TokenOptCache.sqlite(str(tmp_path / "cache.db"), ttl_seconds=3600, max_entries=100)


class TestSemanticSync(SyncCacheTestSuite):
    """With semantic matching on, exact behaviour is unchanged."""

    @pytest.fixture
    def cache(self) -> BaseCache:
        return TokenOptCache(similarity_threshold=0.7)


class TestSemanticAsync(AsyncCacheTestSuite):
    @pytest.fixture
    async def cache(self) -> BaseCache:
        return TokenOptCache(similarity_threshold=0.7)
