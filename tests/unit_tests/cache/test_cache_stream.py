"""`CachedStreamRunnable`: cached `stream()` / `astream()` over langchain-core's fake model.

`GenericFakeChatModel` streams its answers word by word from an iterator, so a stream
that reaches the model consumes the next answer and a replayed one does not.
ChatOpenAI against the local server is covered in tests/integration_tests.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.language_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, LLMResult

from langchain_tokenopt.cache.llm_cache import TokenOptCache
from langchain_tokenopt.cache.streaming import CachedStreamRunnable
from langchain_tokenopt.core.markers import CACHE_HIT_KEY
from langchain_tokenopt.errors import InvalidArgumentError

NOT_CALLED = "the model was called although the answer was cached"


def fake_model(*answers: str | AIMessage) -> GenericFakeChatModel:
    messages = [AIMessage(a) if isinstance(a, str) else a for a in answers]
    return GenericFakeChatModel(messages=iter([*messages, AIMessage(NOT_CALLED)]))


def text_of(chunks: list[BaseMessage]) -> str:
    return "".join(str(chunk.content) for chunk in chunks)


def total(chunks: list[BaseMessage]) -> AIMessageChunk:
    result = chunks[0]
    assert isinstance(result, AIMessageChunk)
    for chunk in chunks[1:]:
        assert isinstance(chunk, AIMessageChunk)
        result = result + chunk
    return result


class Recorder(BaseCallbackHandler):
    """Keeps what LangChain reports to callbacks."""

    def __init__(self) -> None:
        self.starts = 0
        self.tokens: list[str] = []
        self.ends: list[LLMResult] = []

    def on_chat_model_start(self, serialized: Any, messages: Any, **kwargs: Any) -> None:
        self.starts += 1

    def on_llm_new_token(self, token: Any, **kwargs: Any) -> None:
        self.tokens.append(str(token))

    def on_llm_end(self, response: LLMResult, **kwargs: Any) -> None:
        self.ends.append(response)


def test_second_identical_stream_is_replayed_without_calling_the_model() -> None:
    model = fake_model("Paris is the capital of France")
    streaming = CachedStreamRunnable(model, TokenOptCache())
    first = list(streaming.stream("Capital of France?"))
    second = list(streaming.stream("Capital of France?"))
    assert len(first) > 1  # the model really streamed
    assert text_of(first) == text_of(second) == "Paris is the capital of France"
    assert all(isinstance(chunk, AIMessageChunk) for chunk in second)
    assert second[-1].response_metadata[CACHE_HIT_KEY] is True
    assert CACHE_HIT_KEY not in total(first).response_metadata
    assert model.invoke("anything").content == NOT_CALLED


def test_replayed_chunks_add_up_to_the_cached_message() -> None:
    cached = AIMessage(
        content="Let me look that up.",
        tool_calls=[{"name": "search", "args": {"q": "Paris", "n": 3}, "id": "call_1"}],
        usage_metadata={"input_tokens": 30, "output_tokens": 12, "total_tokens": 42},
        response_metadata={"model_name": "gpt-4o", "finish_reason": "tool_calls"},
    )
    cache = TokenOptCache()
    model = fake_model(cached)
    model.cache = cache
    model.invoke("Where is Paris?")  # fills the cache through invoke()
    model.cache = None
    streaming = CachedStreamRunnable(model, cache, replay_chunk_chars=5)
    chunks = list(streaming.stream("Where is Paris?"))
    assert len(chunks) == 4  # 20 characters in pieces of 5
    replayed = total(chunks)
    assert replayed.content == cached.content
    assert replayed.tool_calls == cached.tool_calls
    assert replayed.usage_metadata == cached.usage_metadata
    assert replayed.response_metadata["finish_reason"] == "tool_calls"
    assert replayed.response_metadata[CACHE_HIT_KEY] is True
    assert cache.stats().by_model["gpt-4o"].saved_input_tokens == 30


def test_a_streamed_answer_is_served_to_a_later_invoke() -> None:
    cache = TokenOptCache()
    model = fake_model("streamed answer")
    list(CachedStreamRunnable(model, cache).stream("question"))
    model.cache = cache
    hit = model.invoke("question")
    assert hit.content == "streamed answer"
    assert hit.response_metadata[CACHE_HIT_KEY] is True


def test_an_abandoned_stream_is_not_cached() -> None:
    model = fake_model("one two three", "one two three")
    streaming = CachedStreamRunnable(model, TokenOptCache())
    stream = streaming.stream("count")
    next(stream)
    stream.close()  # type: ignore[attr-defined]
    assert text_of(list(streaming.stream("count"))) == "one two three"
    assert text_of(list(streaming.stream("count"))) == "one two three"
    assert model.invoke("x").content == NOT_CALLED  # exactly two model calls


def test_bound_arguments_and_stop_sequences_are_part_of_the_key() -> None:
    cache = TokenOptCache()
    model = fake_model("plain", "bound", "with stop")
    assert text_of(list(CachedStreamRunnable(model, cache).stream("q"))) == "plain"
    bound = model.bind(response_format={"type": "json_object"})
    assert text_of(list(CachedStreamRunnable(bound, cache).stream("q"))) == "bound"
    assert text_of(list(CachedStreamRunnable(model, cache).stream("q", stop=["."]))) == "with stop"
    assert text_of(list(CachedStreamRunnable(bound, cache).stream("q"))) == "bound"


def test_a_replayed_stream_reports_to_callbacks_like_a_cache_hit() -> None:
    model = fake_model(
        AIMessage(
            "cached words",
            usage_metadata={"input_tokens": 5, "output_tokens": 2, "total_tokens": 7},
        )
    )
    cache = TokenOptCache()
    model.cache = cache
    model.invoke("q")  # the fake model streams no usage; invoke() caches it with usage
    model.cache = None
    streaming = CachedStreamRunnable(model, cache, replay_chunk_chars=6)
    recorder = Recorder()
    list(streaming.stream("q", config={"callbacks": [recorder]}))
    assert recorder.starts == 1
    assert "".join(recorder.tokens) == "cached words"
    (end,) = recorder.ends
    generation = end.generations[0][0]
    assert isinstance(generation, ChatGeneration) and isinstance(generation.message, AIMessage)
    assert generation.message.response_metadata[CACHE_HIT_KEY] is True
    assert generation.message.usage_metadata is not None
    assert generation.message.usage_metadata["input_tokens"] == 5


def test_invoke_returns_the_whole_answer_from_the_stream() -> None:
    model = fake_model("a whole answer")
    streaming = CachedStreamRunnable(model, TokenOptCache())
    first = streaming.invoke("q")
    second = streaming.invoke("q")
    assert isinstance(first, AIMessage) and isinstance(second, AIMessage)
    assert first.content == second.content == "a whole answer"
    assert second.response_metadata[CACHE_HIT_KEY] is True


async def test_async_stream_is_cached_and_replayed() -> None:
    model = fake_model("async answer here")
    cache = TokenOptCache()
    streaming = CachedStreamRunnable(model, cache)
    first = [chunk async for chunk in streaming.astream("q")]
    second = [chunk async for chunk in streaming.astream("q")]
    assert text_of(first) == text_of(second) == "async answer here"
    assert second[-1].response_metadata[CACHE_HIT_KEY] is True
    assert (await streaming.ainvoke("q")).content == "async answer here"
    assert (await cache.astats()).hits == 2


async def test_async_replay_reports_to_callbacks() -> None:
    model = fake_model("cached")
    streaming = CachedStreamRunnable(model, TokenOptCache())
    [chunk async for chunk in streaming.astream("q")]
    recorder = Recorder()
    [chunk async for chunk in streaming.astream("q", config={"callbacks": [recorder]})]
    assert recorder.starts == 1 and len(recorder.ends) == 1


def test_only_chat_models_can_be_wrapped() -> None:
    with pytest.raises(TypeError, match="chat model"):
        CachedStreamRunnable(TokenOptCache(), TokenOptCache())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="TokenOptCache"):
        CachedStreamRunnable(fake_model(), object())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="replay_chunk_chars"):
        CachedStreamRunnable(fake_model(), TokenOptCache(), replay_chunk_chars=0)


class _SilentModel(GenericFakeChatModel):
    """A chat model whose stream ends without a chunk (stream() bypassed on purpose)."""

    def stream(self, *args: Any, **kwargs: Any) -> Any:
        return iter(())

    async def astream(self, *args: Any, **kwargs: Any) -> Any:
        nothing: tuple[AIMessageChunk, ...] = ()
        for chunk in nothing:
            yield chunk


def test_invoke_on_a_stream_without_chunks_is_a_typed_error_and_caches_nothing() -> None:
    cache = TokenOptCache()
    streaming = CachedStreamRunnable(_SilentModel(messages=iter([])), cache)
    with pytest.raises(InvalidArgumentError, match="streamed no chunks"):
        streaming.invoke("hi")
    with pytest.raises(InvalidArgumentError, match="streamed no chunks"):
        asyncio.run(streaming.ainvoke("hi"))
    assert cache.stats().entries == 0
