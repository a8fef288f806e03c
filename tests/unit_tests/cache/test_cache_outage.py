"""`TokenOptCache` when its store goes away: misses and skipped writes, never a failed call.

The store is a real `MemoryStore` with an off switch: while `down`, every call raises
`StoreUnavailableError`, as `RedisStore` does when Redis is unreachable (the same
behaviour against a killed redis-server is in tests/integration_tests/
test_store_outage.py).
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
from langchain_core.language_models import GenericFakeChatModel
from langchain_core.messages import AIMessage
from langchain_core.outputs import ChatGeneration, Generation

from langchain_tokenopt.cache.llm_cache import TokenOptCache
from langchain_tokenopt.errors import StoreUnavailableError
from langchain_tokenopt.stores import MemoryStore
from tests.support.stores import SwitchableStore

CACHE_LOGGER = "langchain_tokenopt.cache.llm_cache"


def answer(text: str, input_tokens: int = 10, output_tokens: int = 5) -> list[Generation]:
    message = AIMessage(
        text,
        response_metadata={"model_name": "gpt-4o"},
        usage_metadata={
            "input_tokens": input_tokens,
            "output_tokens": output_tokens,
            "total_tokens": input_tokens + output_tokens,
        },
    )
    return [ChatGeneration(message=message)]


def outage_warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [
        r
        for r in caplog.records
        if r.name == CACHE_LOGGER
        and r.levelno == logging.WARNING
        and "SwitchableStore is unavailable" in r.getMessage()
    ]


@pytest.fixture
def store() -> SwitchableStore:
    return SwitchableStore()


def test_lookup_during_an_outage_is_a_miss_warned_once(
    store: SwitchableStore, caplog: pytest.LogCaptureFixture
) -> None:
    cache = TokenOptCache(store, flush_interval_seconds=0)
    cache.update("p", "llm", answer("cached"))
    assert cache.lookup("p", "llm") is not None
    store.down = True
    with caplog.at_level(logging.WARNING, logger=CACHE_LOGGER):
        for _ in range(3):
            assert cache.lookup("p", "llm") is None
    assert len(outage_warnings(caplog)) == 1
    store.down = False
    assert cache.lookup("p", "llm") is not None
    stats = cache.stats()
    # The three lookups the store could not answer were misses: the model was called.
    assert (stats.hits, stats.misses) == (2, 3)


def test_update_during_an_outage_is_skipped_without_raising(store: SwitchableStore) -> None:
    cache = TokenOptCache(store, max_entries=10, similarity_threshold=0.7)
    store.down = True
    cache.update("p", "llm", answer("not stored"))
    store.down = False
    assert cache.lookup("p", "llm") is None
    cache.update("p", "llm", answer("stored"))
    found = cache.lookup("p", "llm")
    assert found is not None and found[0].text == "stored"


def test_a_chat_model_still_answers_while_the_cache_store_is_down(
    store: SwitchableStore,
) -> None:
    cache = TokenOptCache(store)
    model = GenericFakeChatModel(messages=iter(["first", "second", "third"]), cache=cache)
    store.down = True
    assert model.invoke("hello").content == "first"
    assert model.invoke("hello").content == "second"  # nothing was cached meanwhile
    store.down = False
    assert model.invoke("hello").content == "third"
    assert model.invoke("hello").content == "third"  # cached: the model has no answer left


async def test_async_lookup_and_update_during_an_outage_degrade(
    store: SwitchableStore, caplog: pytest.LogCaptureFixture
) -> None:
    cache = TokenOptCache(store, flush_interval_seconds=0)
    await cache.aupdate("p", "llm", answer("cached"))
    store.down = True
    with caplog.at_level(logging.WARNING, logger=CACHE_LOGGER):
        assert await cache.alookup("p", "llm") is None
        await cache.aupdate("q", "llm", answer("skipped"))
    assert len(outage_warnings(caplog)) == 1
    store.down = False
    assert await cache.alookup("p", "llm") is not None
    assert await cache.alookup("q", "llm") is None
    stats = await cache.astats()
    assert (stats.hits, stats.misses) == (1, 2)


def test_counters_of_a_flush_cut_short_are_written_once_later(store: SwitchableStore) -> None:
    cache = TokenOptCache(store, flush_interval_seconds=3600)
    cache.update("p", "llm", answer("cached", input_tokens=100, output_tokens=20))
    for _ in range(4):
        assert cache.lookup("p", "llm") is not None
    assert cache.lookup("other", "llm") is None
    store.adds_until_down = 2  # the flush writes two counters, then the store is gone
    cache.flush()
    assert store.down
    store.down = False
    store.adds_until_down = None
    stats = cache.stats()
    assert (stats.hits, stats.misses) == (4, 1)
    assert (stats.saved_input_tokens, stats.saved_output_tokens) == (400, 80)
    assert stats.by_model["gpt-4o"].hits == 4


def test_stats_during_an_outage_raises_and_keeps_the_buffered_counters(
    store: SwitchableStore,
) -> None:
    cache = TokenOptCache(store, flush_interval_seconds=3600)
    cache.update("p", "llm", answer("cached"))
    cache.lookup("p", "llm")
    store.down = True
    with pytest.raises(StoreUnavailableError):
        cache.stats()
    with pytest.raises(StoreUnavailableError):
        cache.clear()
    store.down = False
    stats = cache.stats()
    assert (stats.hits, stats.misses, stats.entries) == (1, 0, 1)


async def test_astats_during_an_outage_raises(store: SwitchableStore) -> None:
    cache = TokenOptCache(store)
    store.down = True
    with pytest.raises(StoreUnavailableError):
        await cache.astats()


def test_access_times_of_a_failed_flush_are_written_later(store: SwitchableStore) -> None:
    cache = TokenOptCache(store, max_entries=10, flush_interval_seconds=3600)
    cache.update("p", "llm", answer("cached"))
    ((access_key, written_at),) = list(store.scan("tokenopt:cache:a:"))
    cache.lookup("p", "llm")
    store.down = True
    cache.flush()
    store.down = False
    cache.flush()
    assert store.get(access_key) > written_at


def test_raise_on_store_error_makes_lookup_and_update_raise(store: SwitchableStore) -> None:
    cache = TokenOptCache(store, raise_on_store_error=True)
    store.down = True
    with pytest.raises(StoreUnavailableError):
        cache.lookup("p", "llm")
    with pytest.raises(StoreUnavailableError):
        cache.update("p", "llm", answer("x"))


async def test_raise_on_store_error_makes_async_lookup_and_update_raise(
    store: SwitchableStore,
) -> None:
    cache = TokenOptCache(store, raise_on_store_error=True)
    store.down = True
    with pytest.raises(StoreUnavailableError):
        await cache.alookup("p", "llm")
    with pytest.raises(StoreUnavailableError):
        await cache.aupdate("p", "llm", answer("x"))


def test_the_next_outage_warning_counts_the_suppressed_ones(
    store: SwitchableStore, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = TokenOptCache(store)
    store.down = True
    with caplog.at_level(logging.WARNING, logger=CACHE_LOGGER):
        for _ in range(4):
            cache.lookup("p", "llm")
        assert len(outage_warnings(caplog)) == 1
        # As if the 30 s window had passed: the next failure warns again.
        monkeypatch.setattr(cache._outage, "interval_seconds", 0.0)
        cache.lookup("p", "llm")
    warnings = outage_warnings(caplog)
    assert len(warnings) == 2
    assert "3 failures since the previous warning were not logged" in warnings[1].getMessage()


def test_the_end_of_an_outage_is_logged_with_its_failures(
    store: SwitchableStore, caplog: pytest.LogCaptureFixture
) -> None:
    cache = TokenOptCache(store)
    store.down = True
    for _ in range(3):
        cache.lookup("p", "llm")
    store.down = False
    with caplog.at_level(logging.INFO, logger=CACHE_LOGGER):
        cache.lookup("p", "llm")
        cache.lookup("p", "llm")
    back = [r.getMessage() for r in caplog.records if "answers again" in r.getMessage()]
    assert back == ["TokenOptCache store answers again after 3 failed calls."]


def test_a_store_error_that_is_not_an_outage_still_raises() -> None:
    class BrokenStore(MemoryStore):
        def get(self, key: str) -> Any:
            raise TypeError("a bug, not an outage")

    with pytest.raises(TypeError, match="a bug"):
        TokenOptCache(BrokenStore()).lookup("p", "llm")
