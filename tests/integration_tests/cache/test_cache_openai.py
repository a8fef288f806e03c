"""`TokenOptCache` end to end with `ChatOpenAI` against the local OpenAI-compatible server.

The server counts the HTTP requests it receives, so "served from the cache" means
"no request was sent", checked on the wire.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import openai
import pytest
from langchain_core.globals import set_llm_cache
from langchain_core.messages import AIMessageChunk, BaseMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI

from langchain_tokenopt.cache.llm_cache import TokenOptCache
from langchain_tokenopt.cache.streaming import CachedStreamRunnable
from langchain_tokenopt.core.markers import CACHE_HIT_KEY
from langchain_tokenopt.core.pricing import price
from tests.support.openai_server import FakeOpenAIServer


@tool
def get_weather(city: str) -> str:
    """Return the weather for a city."""
    return f"sunny in {city}"


@tool
def get_time(city: str) -> str:
    """Return the local time in a city."""
    return f"noon in {city}"


def chat(server: FakeOpenAIServer, cache: Any = None, **kwargs: Any) -> ChatOpenAI:
    kwargs.setdefault("model", "gpt-4o")
    return ChatOpenAI(
        base_url=server.base_url, api_key="test", max_retries=0, cache=cache, **kwargs
    )


@pytest.fixture(params=["memory", "sqlite"])
def cache(request: pytest.FixtureRequest, tmp_path: Path) -> TokenOptCache:
    if request.param == "memory":
        return TokenOptCache()
    return TokenOptCache.sqlite(str(tmp_path / "cache.db"), ttl_seconds=3600, max_entries=1000)


@pytest.fixture
def global_cache(cache: TokenOptCache) -> Iterator[TokenOptCache]:
    set_llm_cache(cache)
    try:
        yield cache
    finally:
        set_llm_cache(None)


def aggregate(chunks: Sequence[BaseMessage]) -> AIMessageChunk:
    typed = [chunk for chunk in chunks if isinstance(chunk, AIMessageChunk)]
    assert len(typed) == len(chunks) > 0
    total = typed[0]
    for chunk in typed[1:]:
        total = total + chunk
    return total


def test_second_identical_call_sends_no_request(
    openai_server: FakeOpenAIServer, cache: TokenOptCache
) -> None:
    openai_server.enqueue("Paris.")
    llm = chat(openai_server, cache)
    first = llm.invoke("What is the capital of France?")
    second = llm.invoke("What is the capital of France?")
    assert openai_server.request_count == 1
    assert first.content == second.content == "Paris."
    assert second.response_metadata[CACHE_HIT_KEY] is True
    assert first.usage_metadata is not None
    assert second.usage_metadata == {**first.usage_metadata, "total_cost": 0}


def test_different_tools_temperature_stop_or_model_each_send_a_request(
    openai_server: FakeOpenAIServer, cache: TokenOptCache
) -> None:
    question = "What is the weather in Paris?"
    llm = chat(openai_server, cache)
    variants: list[Callable[[], BaseMessage]] = [
        lambda: llm.invoke(question),
        lambda: llm.bind_tools([get_weather]).invoke(question),
        lambda: llm.bind_tools([get_time]).invoke(question),
        lambda: chat(openai_server, cache, temperature=0.9).invoke(question),
        lambda: llm.invoke(question, stop=["\n"]),
        lambda: chat(openai_server, cache, model="gpt-4o-mini").invoke(question),
    ]
    for sent, variant in enumerate(variants, start=1):
        variant()
        assert openai_server.request_count == sent
    for variant in variants:  # every variant is now cached on its own
        variant()
    assert openai_server.request_count == len(variants)


def test_global_cache_and_savings_from_the_servers_usage(
    openai_server: FakeOpenAIServer, global_cache: TokenOptCache
) -> None:
    openai_server.enqueue(
        "A long answer.",
        usage={"prompt_tokens": 3000, "completion_tokens": 800, "cached_tokens": 1024},
    )
    llm = chat(openai_server)
    first = llm.invoke("Write an essay.")
    for _ in range(3):
        llm.invoke("Write an essay.")
    assert openai_server.request_count == 1
    stats = global_cache.stats()
    model = first.response_metadata["model_name"]
    assert (stats.hits, stats.misses) == (3, 1)
    assert stats.saved_input_tokens == 3 * 3000
    assert stats.saved_output_tokens == 3 * 800
    assert stats.by_model[model].saved_usd == 3 * price(model, first.usage_metadata or {})


async def test_async_second_identical_call_sends_no_request(
    openai_server: FakeOpenAIServer, cache: TokenOptCache
) -> None:
    llm = chat(openai_server, cache)
    first = await llm.ainvoke("Say hello")
    second = await llm.ainvoke("Say hello")
    assert openai_server.request_count == 1
    assert first.content == second.content
    assert second.response_metadata[CACHE_HIT_KEY] is True


def test_second_identical_stream_sends_no_request(
    openai_server: FakeOpenAIServer, cache: TokenOptCache
) -> None:
    openai_server.enqueue("Paris is the capital of France.")
    streaming = CachedStreamRunnable(chat(openai_server, stream_usage=True), cache)
    first = list(streaming.stream("What is the capital of France?"))
    second = list(streaming.stream("What is the capital of France?"))
    assert openai_server.request_count == 1
    assert openai_server.requests[0]["stream"] is True
    assert len(first) > 2
    streamed, replayed = aggregate(first), aggregate(second)
    assert replayed.content == streamed.content == "Paris is the capital of France."
    assert replayed.usage_metadata == streamed.usage_metadata
    assert replayed.response_metadata[CACHE_HIT_KEY] is True
    assert streamed.usage_metadata is not None
    assert cache.stats().saved_output_tokens == streamed.usage_metadata["output_tokens"]


def test_streamed_tool_calls_are_replayed(
    openai_server: FakeOpenAIServer, cache: TokenOptCache
) -> None:
    openai_server.enqueue(
        "", tool_calls=[{"name": "get_weather", "arguments": {"city": "Paris"}, "id": "call_1"}]
    )
    streaming = CachedStreamRunnable(chat(openai_server).bind_tools([get_weather]), cache)
    first = aggregate(list(streaming.stream("Weather in Paris?")))
    second = aggregate(list(streaming.stream("Weather in Paris?")))
    assert openai_server.request_count == 1
    assert second.tool_calls == first.tool_calls
    assert second.tool_calls[0]["args"] == {"city": "Paris"}


def test_invoke_and_stream_share_one_entry(
    openai_server: FakeOpenAIServer, cache: TokenOptCache
) -> None:
    llm = chat(openai_server, cache, stream_usage=True)
    answer = llm.invoke("Say something")
    replayed = aggregate(list(CachedStreamRunnable(llm, cache).stream("Say something")))
    assert openai_server.request_count == 1
    assert replayed.content == answer.content


async def test_async_second_identical_stream_sends_no_request(
    openai_server: FakeOpenAIServer, cache: TokenOptCache
) -> None:
    streaming = CachedStreamRunnable(chat(openai_server, stream_usage=True), cache)
    first = [chunk async for chunk in streaming.astream("Echo this")]
    second = [chunk async for chunk in streaming.astream("Echo this")]
    assert openai_server.request_count == 1
    assert aggregate(first).content == aggregate(second).content
    assert aggregate(second).response_metadata[CACHE_HIT_KEY] is True


def test_a_failed_call_is_not_cached(openai_server: FakeOpenAIServer, cache: TokenOptCache) -> None:
    openai_server.fail_next(500)
    llm = chat(openai_server, cache)
    with pytest.raises(openai.InternalServerError):
        llm.invoke("hello")
    openai_server.enqueue("hi there")
    assert llm.invoke("hello").content == "hi there"
    assert llm.invoke("hello").content == "hi there"
    assert openai_server.request_count == 2
