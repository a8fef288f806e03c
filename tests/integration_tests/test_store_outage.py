"""A real redis-server killed (or frozen) mid-test: caches miss, histories trim, calls answer.

`TokenOptCache` and `SummarizingChatMessageHistory` keep their state in a `RedisStore`;
when that Redis goes away the application must keep working: cache lookups are misses
(the model is called), cache writes are skipped, the history still stores every
message and shows a view within its budget. Each outage is logged once, not per call.
"""

from __future__ import annotations

import logging

import pytest
from langchain_core._api import suppress_langchain_deprecation_warning
from langchain_core.chat_history import InMemoryChatMessageHistory
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.outputs import Generation
from langchain_openai import ChatOpenAI

from langchain_tokenopt.cache.llm_cache import TokenOptCache
from langchain_tokenopt.chat_history.history import SummarizingChatMessageHistory
from langchain_tokenopt.core.markers import CACHE_HIT_KEY
from langchain_tokenopt.core.tokens import TokenCounter
from langchain_tokenopt.errors import StoreUnavailableError
from langchain_tokenopt.stores import RedisStore
from tests.support.openai_server import FakeOpenAIServer
from tests.support.redis_server import RedisServer

pytestmark = pytest.mark.redis

COUNTER = TokenCounter("gpt-4o")
BUDGET = 150
QUESTION = "What is the capital of France?"


def fast_store(server: RedisServer) -> RedisStore:
    """A RedisStore that gives up on a dead or frozen server within 0.2 s."""
    return RedisStore(server.url, socket_timeout_seconds=0.2, retries=0)


def outage_warnings(caplog: pytest.LogCaptureFixture, logger: str) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == logger and r.levelno == logging.WARNING and "is unavailable" in r.getMessage()
    ]


def chat(server: FakeOpenAIServer, cache: TokenOptCache) -> ChatOpenAI:
    return ChatOpenAI(
        model="gpt-4o", base_url=server.base_url, api_key="test", max_retries=0, cache=cache
    )


# -- TokenOptCache ---------------------------------------------------------------


def test_cache_lookups_on_a_killed_redis_are_misses_logged_once(
    private_redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    cache = TokenOptCache(fast_store(private_redis_server), flush_interval_seconds=0)
    cache.update("p", "llm", [Generation(text="cached")])
    hit = cache.lookup("p", "llm")
    assert hit is not None and hit[0].text == "cached"
    private_redis_server.kill()
    with caplog.at_level(logging.WARNING, logger="langchain_tokenopt.cache.llm_cache"):
        for _ in range(3):
            assert cache.lookup("p", "llm") is None
        cache.update("q", "llm", [Generation(text="not stored")])  # does not raise
    assert len(outage_warnings(caplog, "langchain_tokenopt.cache.llm_cache")) == 1
    with pytest.raises(StoreUnavailableError):
        cache.stats()  # an explicit read of shared state: the caller decides


async def test_async_cache_lookups_on_a_killed_redis_are_misses_logged_once(
    private_redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    store = fast_store(private_redis_server)
    cache = TokenOptCache(store, flush_interval_seconds=0)
    await cache.aupdate("p", "llm", [Generation(text="cached")])
    assert await cache.alookup("p", "llm") is not None
    private_redis_server.kill()
    with caplog.at_level(logging.WARNING, logger="langchain_tokenopt.cache.llm_cache"):
        for _ in range(3):
            assert await cache.alookup("p", "llm") is None
        await cache.aupdate("q", "llm", [Generation(text="not stored")])
    assert len(outage_warnings(caplog, "langchain_tokenopt.cache.llm_cache")) == 1
    with pytest.raises(StoreUnavailableError):
        await cache.astats()
    await store.aclose()


def test_cache_on_a_frozen_redis_misses_and_hits_again_once_it_resumes(
    private_redis_server: RedisServer,
) -> None:
    cache = TokenOptCache(fast_store(private_redis_server))
    cache.update("p", "llm", [Generation(text="cached")])
    private_redis_server.pause()  # connections stay open, nothing answers: timeouts
    try:
        assert cache.lookup("p", "llm") is None
    finally:
        private_redis_server.resume()
    hit = cache.lookup("p", "llm")
    assert hit is not None and hit[0].text == "cached"


def test_chat_openai_still_answers_while_the_cache_redis_is_down(
    private_redis_server: RedisServer,
    openai_server: FakeOpenAIServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    openai_server.enqueue("Paris.")
    openai_server.enqueue("Paris, still.")
    llm = chat(openai_server, TokenOptCache.redis(private_redis_server.url))
    assert llm.invoke(QUESTION).content == "Paris."
    cached = llm.invoke(QUESTION)
    assert cached.response_metadata[CACHE_HIT_KEY] is True
    assert openai_server.request_count == 1
    private_redis_server.kill()
    with caplog.at_level(logging.WARNING, logger="langchain_tokenopt.cache.llm_cache"):
        during = llm.invoke(QUESTION)
    assert during.content == "Paris, still."  # answered by the server, on the wire
    assert openai_server.request_count == 2
    assert CACHE_HIT_KEY not in during.response_metadata
    assert len(outage_warnings(caplog, "langchain_tokenopt.cache.llm_cache")) == 1


async def test_async_chat_openai_still_answers_while_the_cache_redis_is_down(
    private_redis_server: RedisServer, openai_server: FakeOpenAIServer
) -> None:
    openai_server.enqueue("Paris.")
    openai_server.enqueue("Paris, still.")
    store = RedisStore(private_redis_server.url)
    llm = chat(openai_server, TokenOptCache(store))
    assert (await llm.ainvoke(QUESTION)).content == "Paris."
    assert (await llm.ainvoke(QUESTION)).response_metadata[CACHE_HIT_KEY] is True
    private_redis_server.kill()
    assert (await llm.ainvoke(QUESTION)).content == "Paris, still."
    assert openai_server.request_count == 2
    await store.aclose()


# -- SummarizingChatMessageHistory --------------------------------------------------


def in_memory() -> InMemoryChatMessageHistory:
    with suppress_langchain_deprecation_warning():
        return InMemoryChatMessageHistory()


def turn(i: int) -> list[BaseMessage]:
    return [HumanMessage(f"Invoice {i} for 3{i} USD is due on June {i % 28 + 1}."), AIMessage("ok")]


def history_over(state: RedisStore) -> SummarizingChatMessageHistory:
    return SummarizingChatMessageHistory(
        in_memory(), max_tokens=BUDGET, state_store=state, session_id="s1", token_counter=COUNTER
    )


def test_history_with_a_killed_redis_state_store_keeps_every_message_within_budget(
    private_redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    history = history_over(fast_store(private_redis_server))
    for i in range(15):
        history.add_messages(turn(i))
    assert history.summary  # folded and saved while Redis was up
    private_redis_server.kill()
    with caplog.at_level(logging.WARNING, logger="langchain_tokenopt.chat_history.history"):
        history.add_messages(turn(15))  # may fold once more; saving that fails
        summary = history.summary
        for i in range(16, 40):
            history.add_messages(turn(i))
            view = history.messages
            assert COUNTER.count_messages(view) <= BUDGET
    assert history.full_messages == [m for i in range(40) for m in turn(i)]
    assert view[-2:] == turn(39)
    assert history.summary == summary  # no fold while its result cannot be saved
    assert view[0].text.endswith(summary)  # the last summary stays in view
    assert len(outage_warnings(caplog, "langchain_tokenopt.chat_history.history")) == 1


async def test_async_history_with_a_killed_redis_state_store_keeps_every_message(
    private_redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    history = history_over(fast_store(private_redis_server))
    for i in range(15):
        await history.aadd_messages(turn(i))
    private_redis_server.kill()
    with caplog.at_level(logging.WARNING, logger="langchain_tokenopt.chat_history.history"):
        for i in range(15, 40):
            await history.aadd_messages(turn(i))
            view = await history.aget_messages()
            assert COUNTER.count_messages(view) <= BUDGET
    assert history.full_messages == [m for i in range(40) for m in turn(i)]
    assert view[-2:] == turn(39)
    assert len(outage_warnings(caplog, "langchain_tokenopt.chat_history.history")) == 1


def test_redis_cache_takes_store_options_for_short_timeouts(
    private_redis_server: RedisServer,
) -> None:
    cache = TokenOptCache.redis(
        private_redis_server.url, store_options={"socket_timeout_seconds": 0.2, "retries": 0}
    )
    assert isinstance(cache.store, RedisStore)
    cache.update("p", "llm", [Generation(text="cached")])
    private_redis_server.pause()
    try:
        assert cache.lookup("p", "llm") is None
    finally:
        private_redis_server.resume()
    with pytest.raises(TypeError, match="no_such_option"):
        TokenOptCache.redis(private_redis_server.url, store_options={"no_such_option": 1})
