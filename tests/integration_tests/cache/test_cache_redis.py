"""`TokenOptCache` on a real redis-server: LangChain's standard suites, native TTL,
garbage written straight into Redis, the LRU bound and semantic matching."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from langchain_core.caches import BaseCache
from langchain_core.load import dumps
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.outputs import ChatGeneration, Generation
from langchain_tests.integration_tests.cache import AsyncCacheTestSuite, SyncCacheTestSuite

from langchain_tokenopt.cache.llm_cache import TokenOptCache
from langchain_tokenopt.core.markers import CACHE_HIT_KEY
from tests.unit_tests.cache.test_cache_fast_hits import (
    count_decodes,
    scribble_on_hit,
    usage_answer,
)

pytestmark = pytest.mark.redis

ENTRY_PREFIX = "tokenopt:cache:e:"


class TestRedisSync(SyncCacheTestSuite):
    @pytest.fixture
    def cache(self, redis_client: Any, redis_url: str) -> Iterator[BaseCache]:
        yield TokenOptCache.redis(redis_url, ttl_seconds=3600, max_entries=100)


class TestRedisAsync(AsyncCacheTestSuite):
    @pytest.fixture
    async def cache(self, redis_client: Any, redis_url: str) -> AsyncIterator[BaseCache]:
        yield TokenOptCache.redis(redis_url, ttl_seconds=3600, max_entries=100)


class TestRedisSemanticSync(SyncCacheTestSuite):
    @pytest.fixture
    def cache(self, redis_client: Any, redis_url: str) -> Iterator[BaseCache]:
        yield TokenOptCache.redis(redis_url, similarity_threshold=0.7)


def entry_keys(client: Any) -> list[bytes]:
    return sorted(client.scan_iter(match=ENTRY_PREFIX + "*"))


def test_entries_expire_natively_in_redis(redis_client: Any, redis_url: str) -> None:
    cache = TokenOptCache.redis(redis_url, ttl_seconds=120, max_entries=10)
    cache.update("p", "llm", [Generation(text="x")])
    (key,) = entry_keys(redis_client)
    assert 0 < redis_client.pttl(key) <= 120_000
    access_keys = list(redis_client.scan_iter(match="tokenopt:cache:a:*"))
    assert len(access_keys) == 1 and 0 < redis_client.pttl(access_keys[0]) <= 120_000


def test_redis_expiry_removes_the_entry(redis_client: Any, redis_url: str) -> None:
    cache = TokenOptCache.redis(redis_url, ttl_seconds=3600)
    cache.update("p", "llm", [Generation(text="x")])
    (key,) = entry_keys(redis_client)
    redis_client.pexpire(key, 1)  # what Redis does when the TTL runs out, now
    while redis_client.exists(key):  # readiness poll for Redis's own expiry
        pass
    assert cache.lookup("p", "llm") is None


@pytest.mark.parametrize(
    "raw",
    [b"\x80\x04not json at all", b'"a json string"', b'{"v": 1, "g": "[{\\"lc\\": 2}]"}'],
)
def test_garbage_written_into_redis_is_a_logged_miss_and_is_deleted(
    redis_client: Any, redis_url: str, raw: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    cache = TokenOptCache.redis(redis_url)
    cache.update("p", "llm", [Generation(text="good")])
    (key,) = entry_keys(redis_client)
    redis_client.set(key, raw)
    with caplog.at_level(logging.WARNING):
        assert cache.lookup("p", "llm") is None
    assert not redis_client.exists(key)
    assert caplog.records, "the dropped entry was not logged"


def test_lru_bound_on_redis(redis_client: Any, redis_url: str) -> None:
    cache = TokenOptCache.redis(redis_url, max_entries=3)
    for name in ("a", "b", "c"):
        cache.update(name, "llm", [Generation(text=name)])
    assert cache.lookup("a", "llm") is not None
    cache.update("d", "llm", [Generation(text="d")])
    assert cache.lookup("b", "llm") is None
    assert len(entry_keys(redis_client)) == 3


async def test_async_hits_and_stats_on_redis(redis_client: Any, redis_url: str) -> None:
    # no time-based flush during the test (a loaded machine can take over 1 s): only
    # the explicit one below publishes the counters
    cache = TokenOptCache.redis(redis_url, ttl_seconds=60, flush_interval_seconds=3600)
    message = AIMessage(
        "Paris",
        usage_metadata={"input_tokens": 100, "output_tokens": 5, "total_tokens": 105},
        response_metadata={"model_name": "gpt-4o"},
    )
    await cache.aupdate("p", "llm", [ChatGeneration(message=message)])
    hit = await cache.alookup("p", "llm")
    assert hit is not None
    assert hit[0].message.response_metadata[CACHE_HIT_KEY] is True  # type: ignore[attr-defined]
    assert await cache.alookup("q", "llm") is None
    other_process = TokenOptCache.redis(redis_url)
    stats = await other_process.astats()
    assert (stats.hits, stats.misses, stats.saved_input_tokens) == (0, 0, 0)
    await cache.aflush()
    stats = await other_process.astats()
    assert (stats.hits, stats.misses, stats.saved_input_tokens, stats.entries) == (1, 1, 100, 1)


def test_semantic_entries_of_another_client_are_found(redis_client: Any, redis_url: str) -> None:
    writer = TokenOptCache.redis(redis_url, similarity_threshold=0.7)
    reader = TokenOptCache.redis(redis_url, similarity_threshold=0.7)
    prompt = dumps([HumanMessage("Tell me a joke about cats")])
    writer.update(prompt, "llm", [Generation(text="Meow.")])
    paraphrase = dumps([HumanMessage("Tell me a joke about cats!")])
    assert reader.lookup(paraphrase, "llm") == [Generation(text="Meow.")]
    assert reader.lookup(dumps([HumanMessage("Tell me 2 jokes about cats")]), "llm") is None


class TestRedisWordingSync(SyncCacheTestSuite):
    @pytest.fixture
    def cache(self, redis_client: Any, redis_url: str) -> Iterator[BaseCache]:
        yield TokenOptCache.redis(redis_url, semantic=True, max_entries=100)


def test_semantic_true_on_redis_answers_rewordings_and_evicts_pointers(
    redis_client: Any, redis_url: str
) -> None:
    writer = TokenOptCache.redis(redis_url, semantic=True, max_entries=10)
    reader = TokenOptCache.redis(redis_url, semantic=True)
    writer.update(dumps([HumanMessage("Convert miles to km")]), "llm", [Generation(text="x1.6")])
    assert reader.lookup(dumps([HumanMessage("please convert miles to km")]), "llm") == [
        Generation(text="x1.6")
    ]
    assert reader.lookup(dumps([HumanMessage("convert km to miles")]), "llm") is None
    for i in range(40):
        writer.update(dumps([HumanMessage(f"Fact {i}")]), "llm", [Generation(text=str(i))])
    pointers = list(redis_client.scan_iter(match="tokenopt:cache:w:*"))
    assert len(pointers) == len(entry_keys(redis_client)) <= 10


def test_access_times_of_many_hits_reach_redis_in_one_flush_and_steer_eviction(
    redis_client: Any, redis_url: str
) -> None:
    cache = TokenOptCache.redis(
        redis_url, ttl_seconds=600, max_entries=20, flush_interval_seconds=60
    )
    for i in range(20):
        cache.update(f"p{i}", "llm", [Generation(text=str(i))])
    access = sorted(redis_client.scan_iter(match="tokenopt:cache:a:*"))
    written = dict(zip(access, redis_client.mget(access), strict=True))
    for i in range(10):
        assert cache.lookup(f"p{i}", "llm") is not None
    cache.flush()  # the ten access times, in one pipeline
    now = dict(zip(access, redis_client.mget(access), strict=True))
    assert sum(now[key] != written[key] for key in access) == 10
    assert all(0 < redis_client.pttl(key) <= 600_000 for key in access)
    cache.update("p20", "llm", [Generation(text="20")])  # 21 > 20: evicts down to 18
    kept = [i for i in range(21) if cache.lookup(f"p{i}", "llm") is not None]
    assert kept == [*range(10), *range(13, 21)]


def commands_since_reset(redis_client: Any) -> dict[str, int]:
    """Calls per command since CONFIG RESETSTAT, without the test's own INFO."""
    stats = redis_client.info("commandstats")
    return {
        name.removeprefix("cmdstat_"): int(stat["calls"])
        for name, stat in stats.items()
        if not name.startswith(("cmdstat_info", "cmdstat_config"))
    }


def test_a_redis_hit_is_one_get_and_an_unchanged_entry_is_not_decoded_again(
    redis_client: Any, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    decoded = count_decodes(monkeypatch)
    cache = TokenOptCache.redis(
        redis_url, ttl_seconds=600, max_entries=100, flush_interval_seconds=3600
    )
    cache.update("p", "llm", usage_answer("first"))
    assert cache.lookup("p", "llm") is not None
    redis_client.config_resetstat()
    hits = [cache.lookup("p", "llm") for _ in range(5)]
    # one GET each; access times and counters wait for the flush
    assert commands_since_reset(redis_client) == {"get": 5}
    assert len(decoded) == 1 and all(h is not None and h[0].text == "first" for h in hits)
    TokenOptCache.redis(redis_url).update("p", "llm", usage_answer("second"))
    assert cache.lookup("p", "llm")[0].text == "second"  # type: ignore[index]
    assert len(decoded) == 2
    cache.flush()  # the access time in one pipeline, counters by INCRBY
    stats = cache.stats()
    assert (stats.hits, stats.saved_input_tokens) == (7, 7000)


def test_a_caller_mutating_a_redis_hit_does_not_change_the_next_hit(
    redis_client: Any, redis_url: str
) -> None:
    cache = TokenOptCache.redis(redis_url, ttl_seconds=600, max_entries=100)
    cache.update("p", "llm", usage_answer("Paris"))
    scribble_on_hit(cache.lookup("p", "llm"))
    again = cache.lookup("p", "llm")
    assert again is not None and isinstance(again[0], ChatGeneration)
    fresh = again[0].message
    assert isinstance(fresh, AIMessage)
    assert (fresh.content, fresh.response_metadata["model_name"]) == ("Paris", "gpt-4o-mini")
    assert fresh.tool_calls[0]["args"] == {"x": [1]}
    assert fresh.name is None and "name" not in fresh.model_fields_set
    assert again[0].generation_info == {"finish_reason": "stop"}
